"""nerfstudio's vanilla NeRF, made offline-safe and with its network size exposed in the config.

The model is nerfstudio's ``NeRFModel`` unchanged except for two things the benchmark needs:
LPIPS is built only when its weights are on disk (see ``bench_base.lpips``), and the MLP widths,
depths and positional-encoding frequencies are config fields, so the quick profile can shrink the
network and the record states exactly what ran. The defaults are the NeRF paper's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.field_components.encodings import NeRFEncoding
from nerfstudio.fields.vanilla_nerf_field import NeRFField
from nerfstudio.models.vanilla_nerf import NeRFModel, VanillaModelConfig

from bench_base.lpips import offline_safe_lpips


@dataclass
class BenchNeRFModelConfig(VanillaModelConfig):
    """Vanilla NeRF (Mildenhall et al. 2020); defaults are the paper's network."""

    _target: Type = field(default_factory=lambda: BenchNeRFModel)
    base_mlp_num_layers: int = 8
    """Depth of the density MLP."""
    base_mlp_layer_width: int = 256
    """Width of the density MLP."""
    head_mlp_num_layers: int = 1
    """Depth of the view-dependent colour head (the paper uses one 128-wide layer)."""
    head_mlp_layer_width: int = 128
    position_frequencies: int = 10
    """Positional-encoding frequencies for positions (L=10 in the paper)."""
    direction_frequencies: int = 4
    """Positional-encoding frequencies for view directions (L=4 in the paper)."""


class BenchNeRFModel(NeRFModel):
    config: BenchNeRFModelConfig

    def populate_modules(self):
        with offline_safe_lpips():
            super().populate_modules()
        self.field_coarse = self._make_field()
        self.field_fine = self._make_field()

    def _make_field(self) -> NeRFField:
        cfg = self.config
        position_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=cfg.position_frequencies, min_freq_exp=0.0,
            max_freq_exp=cfg.position_frequencies - 2, include_input=True,
        )
        direction_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=cfg.direction_frequencies, min_freq_exp=0.0,
            max_freq_exp=cfg.direction_frequencies, include_input=True,
        )
        return NeRFField(
            position_encoding=position_encoding,
            direction_encoding=direction_encoding,
            base_mlp_num_layers=cfg.base_mlp_num_layers,
            base_mlp_layer_width=cfg.base_mlp_layer_width,
            head_mlp_num_layers=cfg.head_mlp_num_layers,
            head_mlp_layer_width=cfg.head_mlp_layer_width,
            skip_connections=(cfg.base_mlp_num_layers // 2,) if cfg.base_mlp_num_layers > 4 else (),
        )
