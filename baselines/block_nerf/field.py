"""One block's field: a mip-NeRF-style NeRF with an appearance input and a visibility network.

As in Block-NeRF's Fig. 3: ``f_sigma`` maps the integrated positional encoding (IPE) of a sample's
conical frustum to density and a feature; ``f_c`` maps that feature, the encoded view direction and
the image's appearance embedding to colour; ``f_v``, a separate small MLP, maps the encoded
position and direction to the transmittance a training ray had at that point (its supervision is
detached, so it never shapes the density). The exposure input of the paper is left out: our
datasets record no exposure.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from nerfstudio.cameras.rays import RaySamples
from nerfstudio.field_components.encodings import NeRFEncoding
from nerfstudio.field_components.field_heads import DensityFieldHead, FieldHeadNames, RGBFieldHead
from nerfstudio.field_components.mlp import MLP
from nerfstudio.fields.base_field import Field


class ShiftedSoftplus(nn.Module):
    """mip-NeRF's density activation, softplus(x + bias) with bias -1: a freshly initialised block
    starts less opaque. With a plain softplus the first quick batch had 93% accumulation (~0.7
    density per unit everywhere), and Adam then drove every block to an empty scene; with the bias
    it is 70%, and with the lr warm-up the blocks recover instead of collapsing."""

    def __init__(self, bias: float) -> None:
        super().__init__()
        self.bias = bias

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.softplus(x + self.bias)


class BlockNeRFField(Field):
    def __init__(
        self,
        position_frequencies: int,
        direction_frequencies: int,
        appearance_dim: int,
        base_mlp_num_layers: int,
        base_mlp_layer_width: int,
        head_mlp_num_layers: int,
        head_mlp_layer_width: int,
        visibility_mlp_num_layers: int,
        visibility_mlp_layer_width: int,
        use_integrated_encoding: bool = True,
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        # mip-NeRF's frequencies 2^0 .. 2^(L-1); the input itself is kept as in NeRF.
        self.position_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=position_frequencies, min_freq_exp=0.0,
            max_freq_exp=position_frequencies - 1, include_input=True,
        )
        self.direction_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=direction_frequencies, min_freq_exp=0.0,
            max_freq_exp=direction_frequencies - 1, include_input=True,
        )
        self.use_integrated_encoding = use_integrated_encoding
        self.appearance_dim = appearance_dim
        position_dim = self.position_encoding.get_out_dim()
        direction_dim = self.direction_encoding.get_out_dim()
        self.mlp_base = MLP(
            in_dim=position_dim,
            num_layers=base_mlp_num_layers,
            layer_width=base_mlp_layer_width,
            skip_connections=(base_mlp_num_layers // 2,) if base_mlp_num_layers > 4 else None,
            out_activation=nn.ReLU(),
        )
        self.field_output_density = DensityFieldHead(
            in_dim=self.mlp_base.get_out_dim(), activation=ShiftedSoftplus(density_bias)
        )
        self.mlp_head = MLP(
            in_dim=self.mlp_base.get_out_dim() + direction_dim + appearance_dim,
            num_layers=head_mlp_num_layers,
            layer_width=head_mlp_layer_width,
            out_activation=nn.ReLU(),
        )
        self.field_output_rgb = RGBFieldHead(in_dim=self.mlp_head.get_out_dim())
        self.mlp_visibility = MLP(
            in_dim=position_dim + direction_dim,
            num_layers=visibility_mlp_num_layers,
            layer_width=visibility_mlp_layer_width,
            out_dim=1,
            out_activation=nn.Sigmoid(),
        )

    def encode_positions(self, ray_samples: RaySamples) -> Tensor:
        if self.use_integrated_encoding:
            gaussians = ray_samples.frustums.get_gaussian_blob()
            return self.position_encoding(gaussians.mean, covs=gaussians.cov)
        return self.position_encoding(ray_samples.frustums.get_positions())

    def get_density(self, ray_samples: RaySamples) -> Tuple[Tensor, Tensor]:
        features = self.mlp_base(self.encode_positions(ray_samples))
        return self.field_output_density(features), features

    def get_outputs(
        self, ray_samples: RaySamples, density_embedding: Optional[Tensor] = None, appearance: Optional[Tensor] = None
    ) -> Dict[FieldHeadNames, Tensor]:
        assert density_embedding is not None
        encoded_dir = self.direction_encoding(ray_samples.frustums.directions)
        inputs = [encoded_dir, density_embedding]
        if self.appearance_dim > 0:
            assert appearance is not None, "a block with appearance embeddings needs an appearance code per ray"
            inputs.append(appearance[..., None, :].expand(*encoded_dir.shape[:-1], self.appearance_dim))
        rgb = self.field_output_rgb(self.mlp_head(torch.cat(inputs, dim=-1)))
        return {FieldHeadNames.RGB: rgb}

    def forward(  # type: ignore[override]
        self, ray_samples: RaySamples, appearance: Optional[Tensor] = None
    ) -> Dict[FieldHeadNames, Tensor]:
        density, features = self.get_density(ray_samples)
        outputs = self.get_outputs(ray_samples, density_embedding=features, appearance=appearance)
        outputs[FieldHeadNames.DENSITY] = density
        return outputs

    def get_visibility(self, ray_samples: RaySamples) -> Tensor:
        """Predicted transmittance at each sample, shape (*rays, samples, 1), in [0, 1]."""
        encoded_dir = self.direction_encoding(ray_samples.frustums.directions)
        return self.mlp_visibility(torch.cat([self.encode_positions(ray_samples), encoded_dir], dim=-1))
