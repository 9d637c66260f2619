"""The RBF kernel field: K Gaussian kernels, fused features, a tiny decoder.

Kernel k has a centre c_k, per-axis bandwidths s_k (isotropic is the special case s_k = s·1), an
amplitude a_k and a feature vector f_k. The fused feature at x is

    F(x) = sum_k a_k · w((x - c_k) / s_k) · f_k,

with w the Gaussian RBF exp(-|u|²/2), truncated at |u| = ``support_cutoff`` and shifted so it
reaches zero continuously there (w = (exp(-|u|²/2) - e_c) / (1 - e_c), clamped at 0). The compact
support is what lets a spatial index (``KernelGridIndex``) find every kernel that contributes at x
by looking at one grid cell. A small decoder maps F(x) to a density and to spherical-harmonic
colour coefficients evaluated in the view direction.

With quantization on, f_k is replaced by its nearest codebook entry in the forward pass
(straight-through gradient to the raw f_k), so the renderer sees what the exported file holds.

F(x) is computed by one compiled op with its own backward where it can be built
(``fused_field``, the default on the CPU); :meth:`RBFKernelField.fused_features` is the PyTorch
path, kept as the reference the tests hold the op to and as the fallback.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import SHEncoding
from torch import Tensor, nn
from torch.profiler import record_function

from akdqff_method import fused_field
from akdqff_method.quantization import assign_to_codebook, quantize_straight_through
from akdqff_method.spatial_index import KernelGridIndex

KERNEL_PARAMETER_NAMES = ("centers", "log_scales", "log_amplitudes", "features")


def truncated_gaussian(distance2: Tensor, cutoff: float) -> Tensor:
    """exp(-d²/2) shifted and rescaled to reach 0 at d = cutoff (continuous), 0 beyond."""
    floor = math.exp(-0.5 * cutoff**2)
    return torch.clamp((torch.exp(-0.5 * distance2) - floor) / (1.0 - floor), min=0.0)


class RBFKernelField(nn.Module):
    """What AKDQFF stores in space: K Gaussian RBF kernels (centre, per-axis bandwidth, amplitude,
    feature) whose features, fused at a point, a small decoder turns into density and colour. Its
    defaults are ``AKDQFFModelConfig``'s, which is where a run's settings live."""

    def __init__(
        self,
        aabb: Tensor,
        num_kernels: int,
        feature_dim: int = 16,
        decoder_hidden_dim: int = 64,
        sh_levels: int = 3,
        init_scale: Optional[float] = None,
        min_scale: float = 1e-3,
        max_scale: float = 0.3,
        support_cutoff: float = 2.5,
        grid_resolution: int = 64,
        max_kernels_per_cell: Optional[int] = None,
        index_cell_size: Optional[float] = None,
        max_index_subdivision: int = 8,
        index_margin: float = 1.1,
        density_bias: float = -1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.decoder_hidden_dim = decoder_hidden_dim
        self.sh_levels = sh_levels
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.support_cutoff = support_cutoff
        self.index_margin = index_margin
        self.register_buffer("aabb", aabb.clone().float())
        generator = torch.Generator().manual_seed(seed)
        extent = (aabb[1] - aabb[0]).float()
        if init_scale is None:
            # A third of the spacing of K kernels spread evenly over the box: each point starts
            # inside the support of a couple of kernels, which keeps the first iterations cheap.
            init_scale = 0.3 * float(extent.prod() / max(num_kernels, 1)) ** (1.0 / 3.0)
        centers = aabb[0].float() + torch.rand(num_kernels, 3, generator=generator) * extent  # paper §3: random
        self.kernel_params = nn.ParameterDict(
            {
                "centers": nn.Parameter(centers),
                "log_scales": nn.Parameter(torch.full((num_kernels, 3), math.log(init_scale))),
                "log_amplitudes": nn.Parameter(torch.zeros(num_kernels)),
                "features": nn.Parameter(0.1 * torch.randn(num_kernels, feature_dim, generator=generator)),
            }
        )
        self.direction_encoding = SHEncoding(levels=sh_levels, implementation="torch")
        sh_dim = sh_levels**2
        self.decoder = nn.Sequential(
            nn.Linear(feature_dim, decoder_hidden_dim), nn.ReLU(), nn.Linear(decoder_hidden_dim, 1 + 3 * sh_dim)
        )
        with torch.no_grad():
            self.decoder[2].bias[0] = density_bias
        # Quantization state: the codebook is part of the representation (and of checkpoints).
        self.register_buffer("codebook", torch.zeros(0, feature_dim))
        self.index = KernelGridIndex(
            aabb, grid_resolution, max_kernels_per_cell, support_in_bandwidths=support_cutoff * index_margin,
            cell_size_in_radii=index_cell_size, max_subdivision=max_index_subdivision,
        )
        self.rebuild_index()
        # Checkpoints hold whatever K (and Q) training ended with: rebuild the index once loaded.
        self.register_load_state_dict_post_hook(lambda module, _keys: module.rebuild_index())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Resize to the stored K and Q before the tensors are copied in (nn.Module loads the
        # parent before its children, so the ParameterDict sees the new shapes).
        centers = state_dict.get(prefix + "kernel_params.centers")
        if centers is not None and centers.shape[0] != self.num_kernels:
            self.resize_kernels(centers.shape[0])
        codebook = state_dict.get(prefix + "codebook")
        if codebook is not None and codebook.shape != self.codebook.shape:
            self.codebook = torch.zeros_like(codebook, device=self.aabb.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ kernel attributes
    @property
    def num_kernels(self) -> int:
        return self.kernel_params["centers"].shape[0]

    @property
    def quantized(self) -> bool:
        return self.codebook.shape[0] > 0

    @property
    def codebook_size(self) -> int:
        return int(self.codebook.shape[0])

    def scales(self) -> Tensor:
        return torch.exp(self.kernel_params["log_scales"]).clamp(self.min_scale, self.max_scale)

    def inverse_scales(self) -> Tensor:
        return 1.0 / self.scales()

    def amplitudes(self) -> Tensor:
        return torch.exp(self.kernel_params["log_amplitudes"])

    def support_radii(self) -> Tensor:
        return self.support_cutoff * self.scales()

    def codebook_assignments(self) -> Tensor:
        return assign_to_codebook(self.kernel_params["features"].detach(), self.codebook)

    def set_codebook(self, codebook: Optional[Tensor]) -> None:
        if codebook is None:
            codebook = torch.zeros(0, self.feature_dim)
        self.codebook = codebook.detach().to(self.aabb)

    @torch.no_grad()
    def rebuild_index(self) -> None:
        # The margin leaves room for kernels to move and grow a little between rebuilds. Crowded
        # cells (when capped) keep the kernels with the largest a_k·|f_k|·w_k in the cell: the
        # most that dropping one could change F(x) there (see KernelGridIndex).
        features = self.kernel_params["features"]
        if self.quantized:
            features = self.codebook[assign_to_codebook(features, self.codebook)]
        importance = self.amplitudes() * features.norm(dim=-1)
        self.index.build(self.kernel_params["centers"], self.index_margin * self.support_radii(), importance)

    @torch.no_grad()
    def resize_kernels(self, num_kernels: int) -> None:
        """Replace the kernel parameters by zero tensors of K = ``num_kernels`` rows (before loading)."""
        device = self.aabb.device
        shapes = {"centers": (3,), "log_scales": (3,), "log_amplitudes": (), "features": (self.feature_dim,)}
        for name, tail in shapes.items():
            self.kernel_params[name] = nn.Parameter(torch.zeros((num_kernels, *tail), device=device))

    # ------------------------------------------------------------------ evaluation
    def fused_features(self, positions: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """F(x) [N, D] for positions [N, 3], with the contributing (sample, kernel) pairs and a_k·w_k.

        Pairs come from the spatial index; pairs outside the kernel's support (weight exactly 0)
        are dropped before the features are gathered."""
        with record_function("index lookup"):
            sample_ids, kernel_ids = self.index.pairs(positions.detach())
        return self.fused_features_from_pairs(positions, sample_ids, kernel_ids)

    def fused_features_from_pairs(
        self, positions: Tensor, sample_ids: Tensor, kernel_ids: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        dtype = positions.dtype
        params = self.kernel_params
        with record_function("kernel evaluation"), torch.no_grad():
            # Only the kernels the pairs name (U of K, renumbered 0..U-1) enter the step: exp,
            # clamp and the codebook lookup over all K kernels every step made its cost grow with
            # K, not with the samples (the O(K) left is a bool mask and the parameters' gradients).
            used_mask = torch.zeros(params["centers"].shape[0], dtype=torch.bool, device=kernel_ids.device)
            used_mask[kernel_ids] = True
            used = torch.nonzero(used_mask).flatten()
            local = torch.empty(used_mask.shape[0], dtype=torch.long, device=kernel_ids.device)
            local[used] = torch.arange(used.numel(), device=kernel_ids.device)
        features = params["features"].index_select(0, used)
        if self.quantized:
            with record_function("quantization"):
                features, _ = quantize_straight_through(features, self.codebook)
        with record_function("kernel evaluation"):
            # One [U, 3 + 3 + 1 + D] table of everything a pair needs, gathered once per pair with
            # index_select: one gather forward and one index_add backward, instead of one gather and
            # one index_put backward per attribute (results/quick/diagnostics/README.md: what it saved).
            table = torch.cat(
                [
                    params["centers"].index_select(0, used),
                    1.0 / torch.exp(params["log_scales"].index_select(0, used)).clamp(self.min_scale, self.max_scale),
                    torch.exp(params["log_amplitudes"].index_select(0, used))[:, None],
                    features,
                ],
                dim=-1,
            ).to(dtype)
            cutoff2 = self.support_cutoff**2
            with torch.no_grad():  # drop the candidates outside the kernel's support (weight exactly 0)
                pair_rows = local[kernel_ids]
                geometry = table[:, :6].detach().index_select(0, pair_rows)
                offsets = (positions.detach().index_select(0, sample_ids) - geometry[:, :3]) * geometry[:, 3:]
                inside = torch.nonzero(offsets.square().sum(-1) < cutoff2).flatten()
                sample_ids, kernel_ids, pair_rows = sample_ids[inside], kernel_ids[inside], pair_rows[inside]
            per_pair = table.index_select(0, pair_rows)
            offsets = (positions.index_select(0, sample_ids) - per_pair[:, :3]) * per_pair[:, 3:6]
            weights = truncated_gaussian(offsets.square().sum(-1), self.support_cutoff) * per_pair[:, 6]
            fused = positions.new_zeros(positions.shape[0], self.feature_dim).index_add(0, sample_ids, weights[:, None] * per_pair[:, 7:])
            return fused, sample_ids, kernel_ids, weights

    @record_function("decoder")
    def decode(self, fused: Tensor, directions: Tensor) -> Tuple[Tensor, Tensor]:
        raw = self.decoder(fused)
        density = trunc_exp(raw[:, :1])
        sh = self.direction_encoding(directions).to(raw.dtype)  # [N, L²]
        coefficients = raw[:, 1:].view(-1, 3, sh.shape[-1])
        rgb = torch.sigmoid(torch.einsum("ncl,nl->nc", coefficients, sh))
        return density, rgb

    def features_at(self, positions: Tensor) -> Tensor:
        """F(x) [N, D] for positions [N, 3]: the fused op where it runs, else the PyTorch path."""
        if not fused_field.use_fused(positions.device):
            return self.fused_features(positions)[0]
        params = self.kernel_params
        with record_function("kernel evaluation"):
            return fused_field.fused_features(self.index, positions, params["centers"], self.inverse_scales(), self.amplitudes(),
                                              params["features"], self.codebook, self.support_cutoff)

    @torch.no_grad()
    def kernel_sums(self, positions: Tensor, values: Tensor) -> Tensor:
        """[K, C]: per kernel, the sum over samples [N, 3] of its share a_k·w_k / Σ_j a_j·w_j of the
        sample's fused weight times the sample's ``values`` [N, C] (what the allocation accumulates)."""
        if fused_field.use_fused(positions.device):
            params = self.kernel_params
            return fused_field.kernel_sums(self.index, positions, params["centers"], self.inverse_scales(), self.amplitudes(), values,
                                           self.support_cutoff).to(values)
        _, sample_ids, kernel_ids, weights = self.fused_features(positions)
        return kernel_sums_from_pairs(sample_ids, kernel_ids, weights, values, self.num_kernels)

    def forward(self, positions: Tensor, directions: Tensor) -> Dict[str, Tensor]:
        density, rgb = self.decode(self.features_at(positions), directions)
        return {"density": density, "rgb": rgb}

    @torch.no_grad()
    def density_at(self, positions: Tensor) -> Tensor:
        return trunc_exp(self.decoder(self.features_at(positions))[:, 0])


def kernel_sums_from_pairs(sample_ids: Tensor, kernel_ids: Tensor, pair_weights: Tensor, values: Tensor, num_kernels: int) -> Tensor:
    """:meth:`RBFKernelField.kernel_sums` from the (sample, kernel, a_k·w_k) pairs: the reference."""
    pair_weights = pair_weights.detach().to(values)
    totals = torch.zeros(values.shape[0], dtype=values.dtype, device=values.device).index_add_(0, sample_ids, pair_weights)
    share = pair_weights / totals[sample_ids].clamp(min=1e-12)
    return torch.zeros(num_kernels, values.shape[1], dtype=values.dtype, device=values.device).index_add_(
        0, kernel_ids, share[:, None] * values[sample_ids])
