"""Plenoxels (Fridovich-Keil et al., CVPR 2022) as a nerfstudio model, in plain PyTorch.

No neural network: a sparse voxel grid (``grid.SparseVoxelGrid``) of densities and degree-2 SH
colour coefficients, trilinearly interpolated, volume rendered with the usual quadrature
``C = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i`` over samples spaced ``step_size`` voxels apart
inside the scene box, composited on a white background. Training is coarse to fine: at each
step in ``upsample_steps`` the grid is pruned (voxels whose largest rendering weight stays below a
threshold) and resampled at the next resolution; the optimizers' parameter groups and state are
rebuilt by a training callback. Loss: MSE plus TV on density and SH (paper Eq. 4).

Defaults are the paper's / svox2's synthetic-scene settings; where we depart, the field's
docstring says so and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple, Type

import torch
from torch import Tensor
from torch.nn import Parameter

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.model_components.losses import MSELoss
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from torchmetrics.functional import structural_similarity_index_measure
from torchmetrics.image import PeakSignalNoiseRatio

from bench_base.distributed import world_size_of_this_run
from bench_base.lpips import build_lpips_or_missing
from baselines.plenoxels.grid import SparseVoxelGrid, total_variation
from baselines.plenoxels.storage import export_grid, load_grid


@dataclass
class PlenoxelsModelConfig(ModelConfig):
    """Plenoxels on synthetic scenes; defaults are the paper's (svox2 ``opt/configs/syn.json``)."""

    _target: Type = field(default_factory=lambda: PlenoxelsModel)
    resolutions: Tuple[int, ...] = (128, 256, 512)
    """Grid resolution per stage (coarse to fine). 128 -> 256 -> 512 on synthetic scenes."""
    upsample_steps: Tuple[int, ...] = (38400, 76800)
    """Iterations after which the grid is pruned and upsampled to the next resolution (svox2:
    ``upsamp_every = 38400``). One fewer than ``resolutions``."""
    init_density: float = 0.1
    """Initial density of every voxel of the first (dense) grid; SH start at zero (grey)."""
    step_size: float = 0.5
    """Distance between samples along a ray, in voxels of the current grid (svox2's default)."""
    weight_threshold: float = 0.256
    """Prune voxels whose largest rendering weight is below ``weight_threshold / new resolution``
    (svox2: 0.0005 * 512). svox2 measures the weights by rendering every training ray at the stage
    change; we keep a running maximum over the rays trained on since the last stage change, which
    costs nothing extra and, over a stage of tens of thousands of batches, sees every pixel."""
    weight_window: int = 12800
    """Weights are recorded over this many iterations before each stage change (one epoch of
    the synthetic scenes' 800x800x100 pixels at 5000 rays: 12,800 iterations). Recording from
    the start would remember the initial, uniformly grey fog and prune nothing."""
    density_threshold: Optional[float] = None
    """When set, also prune voxels whose raw density is at most this (svox2's ``thresh_type
    sigma``); off by default, as svox2's synthetic runs prune by weight."""
    dilation: int = 2
    """The resampled mask of surviving voxels is grown by this many vertices (svox2: 2)."""
    capture: Literal["synthetic", "real", "forward-facing"] = "synthetic"
    """Which of svox2's regularisation sets the three TV fields below take when left at None:
    ``synthetic`` (``opt/configs/syn.json``: density 1e-5, SH 1e-3, TV only before the first stage
    change), ``real`` (``opt/configs/tnt.json``, its real 360-degree captures: 5e-5, 5e-3, TV in
    every stage) or ``forward-facing`` (``opt/configs/llff.json``: 1e-3, 1e-2, TV only before the
    first stage change, svox2's default). The harness sets it from the scene's kind
    (``SceneSettings.capture``)."""
    lambda_tv_density: Optional[float] = None
    """TV weight on density (paper / svox2 ``lambda_tv``); None: the ``capture``'s."""
    lambda_tv_sh: Optional[float] = None
    """TV weight on SH coefficients (paper / svox2 ``lambda_tv_sh``); None: the ``capture``'s."""
    tv_sparsity: float = 0.01
    """Fraction of occupied voxels the TV is evaluated on each iteration (svox2 ``tv_sparsity``)."""
    tv_early_only: Optional[bool] = None
    """svox2's ``tv_early_only``: TV only before the first stage change; None: the ``capture``'s."""
    tv_weight_scale: float = 1.0
    """Multiplies both TV weights in force. svox2's weights are set for its 100k-iteration schedules;
    the quick profile's far shorter one takes this factor from its sweep (``PLENOXELS_SWEEP``)."""
    stop_transmittance: float = 1e-7
    """Samples behind this transmittance get no colour evaluation (svox2 ``stop_thresh``)."""
    background_color: str = "white"
    """Ground truth is composited on white."""

    def regularisation(self) -> Dict[str, Any]:
        """The TV settings in force: the fields set here, the ``capture``'s svox2 values elsewhere,
        both weights times ``tv_weight_scale``."""
        if self.capture not in SVOX2_REGULARISATION:
            raise ValueError(f"capture must be one of {sorted(SVOX2_REGULARISATION)}, not {self.capture!r}")
        chosen = dict(SVOX2_REGULARISATION[self.capture])
        for name in chosen:
            if getattr(self, name) is not None:
                chosen[name] = getattr(self, name)
        for name in ("lambda_tv_density", "lambda_tv_sh"):
            chosen[name] *= self.tv_weight_scale
        return chosen


# svox2's TV settings by kind of scene (its opt/configs): syn.json for the synthetic scenes, tnt.json
# for real 360-degree captures (Tanks and Temples), llff.json for forward-facing ones (which svox2
# renders in NDC; here in world space, README departures). tnt.json's background model (an MSI of
# 64 layers) and its beta and sparsity priors are not implemented (README, Data).
SVOX2_REGULARISATION: Dict[str, Dict[str, Any]] = {
    "synthetic": {"lambda_tv_density": 1e-5, "lambda_tv_sh": 1e-3, "tv_early_only": True},
    "real": {"lambda_tv_density": 5e-5, "lambda_tv_sh": 5e-3, "tv_early_only": False},
    "forward-facing": {"lambda_tv_density": 1e-3, "lambda_tv_sh": 1e-2, "tv_early_only": True},
}


class PlenoxelsModel(Model):
    config: PlenoxelsModelConfig

    def populate_modules(self):
        super().populate_modules()
        cfg = self.config
        if world_size_of_this_run() > 1:
            # DDP would keep averaging the first grid's tensors after an upsampling replaced them, and
            # each rank would prune from its own rays' weights: the ranks' grids would drift apart.
            raise NotImplementedError(
                "Plenoxels trains on one process (--machine.num-devices 1): each upsampling prunes from "
                "this process's rendering weights and builds new grid tensors, which DDP does not follow"
            )
        if len(cfg.upsample_steps) != len(cfg.resolutions) - 1:
            raise ValueError("upsample_steps needs one entry fewer than resolutions")
        self.tv = cfg.regularisation()
        self.grid = SparseVoxelGrid(self.scene_box.aabb, cfg.resolutions[0], cfg.init_density)
        self.rgb_loss = MSELoss()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure
        self.lpips = build_lpips_or_missing()
        self._optimizers: Optional[Optimizers] = None

    # ----------------------------------------------------------------------------------------
    # Optimisation plumbing
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return {"density": [self.grid.density], "sh": [self.grid.sh]}

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        self._optimizers = training_callback_attributes.optimizers
        # A resumed checkpoint may have resized the grid after the optimizers were built.
        self.refresh_optimizers()
        window_starts = tuple(max(step - self.config.weight_window, 0) for step in self.config.upsample_steps)
        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                iters=window_starts,
                func=lambda step: self.grid.max_weight.zero_(),
            ),
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                iters=tuple(self.config.upsample_steps),
                func=self._on_stage_step,
            )
        ]

    def _on_stage_step(self, step: int) -> None:
        stage = list(self.config.upsample_steps).index(step) + 1
        self.advance_stage(self.config.resolutions[stage])

    @torch.no_grad()
    def advance_stage(self, new_resolution: int) -> Dict[str, float]:
        """Prune low-weight (and, if configured, low-density) voxels and resample the grid at
        ``new_resolution``; then point the optimizers at the new parameters."""
        keep = self.grid.keep_mask(self.config.weight_threshold / new_resolution, self.config.density_threshold)
        if not bool(keep.any()):
            # Nothing was rendered with weight yet (e.g. a few-iteration smoke run): keep all.
            keep = torch.ones_like(keep)
        summary = self.grid.resample(new_resolution, keep, self.config.dilation)
        self.refresh_optimizers()
        return summary

    @property
    def tv_active(self) -> bool:
        """svox2's ``tv_early_only``: TV only while the grid is at the first stage's resolution."""
        return not self.tv["tv_early_only"] or self.grid.resolution == self.config.resolutions[0]

    def refresh_optimizers(self) -> None:
        """Point the optimizers at the grid's current parameter tensors. Per-element state
        (RMSProp's running mean square) is kept when its shape still fits (a checkpoint loaded
        before training resumes) and otherwise starts afresh: after resampling it refers to voxels
        that no longer exist (svox2 also drops it)."""
        if self._optimizers is None:
            return
        for name, params in self.get_param_groups().items():
            optimizer = self._optimizers.optimizers[name]
            group = optimizer.param_groups[0]
            for old, new in zip(list(group["params"]), params):
                state = optimizer.state.pop(old, None)
                if state and all(v.shape == new.shape for v in state.values() if torch.is_tensor(v) and v.dim() > 0):
                    optimizer.state[new] = state
            group["params"] = list(params)
            self._optimizers.parameters[name] = list(params)

    # ----------------------------------------------------------------------------------------
    # Rendering
    def _ray_box_range(self, ray_bundle: RayBundle) -> Tuple[Tensor, Tensor]:
        origins, directions = ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3)
        safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
        t0 = (self.grid.aabb[0] - origins) / safe
        t1 = (self.grid.aabb[1] - origins) / safe
        t_near = torch.minimum(t0, t1).amax(-1)
        t_far = torch.maximum(t0, t1).amin(-1)
        if ray_bundle.nears is not None:
            t_near = torch.maximum(t_near, ray_bundle.nears.reshape(-1))
        if ray_bundle.fars is not None:
            t_far = torch.minimum(t_far, ray_bundle.fars.reshape(-1))
        return t_near.clamp(min=0.0), t_far

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        shape = ray_bundle.origins.shape[:-1]
        origins = ray_bundle.origins.reshape(-1, 3)
        directions = ray_bundle.directions.reshape(-1, 3)
        num_rays = origins.shape[0]
        device = origins.device
        grid = self.grid
        step = self.config.step_size * grid.voxel_size
        t_near, t_far = self._ray_box_range(ray_bundle)

        # Uniform samples inside the box; keep only those in cells with an occupied corner.
        length = (t_far - t_near).clamp(min=0.0)
        num_steps = max(int(torch.ceil(length.max() / step).item()) if num_rays else 0, 1)
        ts = t_near[:, None] + (torch.arange(num_steps, device=device, dtype=origins.dtype) + 0.5) * step
        in_range = ts < t_far[:, None]
        ray_ids, step_ids = in_range.nonzero(as_tuple=True)
        positions = origins[ray_ids] + ts[ray_ids, step_ids, None] * directions[ray_ids]
        grid_coords = grid.world_to_grid(positions)
        occupied = grid.sample_occupied(grid_coords)
        ray_ids, step_ids, grid_coords = ray_ids[occupied], step_ids[occupied], grid_coords[occupied]

        sigma, indices, weights = grid.query_density(grid_coords)
        tau = torch.zeros(num_rays, num_steps, device=device, dtype=sigma.dtype)
        tau = tau.index_put((ray_ids, step_ids), sigma * step)
        alpha = 1.0 - torch.exp(-tau)
        transmittance = torch.exp(-(torch.cumsum(tau, dim=1) - tau))
        sample_weights = (alpha * transmittance)[ray_ids, step_ids]

        # Colour only where it can matter: density > 0 (relu: otherwise no weight, no gradient)
        # and the ray not yet opaque (svox2's early stop).
        with torch.no_grad():
            live = (sigma > 0) & (transmittance[ray_ids, step_ids] > self.config.stop_transmittance)
        live_ids = live.nonzero()[:, 0]
        rgb_samples = grid.query_rgb(indices[live_ids], weights[live_ids], directions[ray_ids[live_ids]])
        live_weights = sample_weights[live_ids]
        rgb = torch.zeros(num_rays, 3, device=device, dtype=sigma.dtype).index_add(
            0, ray_ids[live_ids], live_weights[:, None] * rgb_samples
        )
        accumulation = torch.zeros(num_rays, device=device, dtype=sigma.dtype).index_add(0, ray_ids, sample_weights)
        depth = torch.zeros(num_rays, device=device, dtype=sigma.dtype).index_add(
            0, ray_ids, sample_weights * ts[ray_ids, step_ids]
        )
        background = self._background(device, sigma.dtype)
        rgb = rgb + (1.0 - accumulation[:, None]) * background
        if self.training:
            grid.record_weights(indices, weights, sample_weights.detach())
        else:
            rgb = rgb.clamp(0.0, 1.0)
        return {
            "rgb": rgb.reshape(*shape, 3),
            "accumulation": accumulation.reshape(*shape, 1),
            "depth": (depth / accumulation.clamp(min=1e-10)).reshape(*shape, 1),
        }

    def _background(self, device, dtype) -> Tensor:
        colours = {"white": 1.0, "black": 0.0}
        if self.config.background_color not in colours:
            raise ValueError(f"background_color must be one of {sorted(colours)}")
        return torch.full((3,), colours[self.config.background_color], device=device, dtype=dtype)

    # ----------------------------------------------------------------------------------------
    # Losses and metrics
    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        image = batch["image"][..., :3].to(self.device)
        return {"psnr": self.psnr(outputs["rgb"].detach().clamp(0, 1), image)}

    def tv_loss(self) -> Dict[str, Tensor]:
        grid = self.grid
        count = grid.num_occupied
        sample_size = max(1, int(round(self.config.tv_sparsity * count)))
        occupied_ids = (grid.links.reshape(-1) >= 0).nonzero()[:, 0]
        chosen = occupied_ids[torch.randint(0, count, (sample_size,), device=occupied_ids.device)]
        scale = grid.resolution / 256.0
        return {
            "tv_density": self.tv["lambda_tv_density"] * total_variation(grid.density, grid.links, chosen, scale),
            "tv_sh": self.tv["lambda_tv_sh"] * total_variation(grid.sh, grid.links, chosen, scale),
        }

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        image = batch["image"][..., :3].to(self.device)
        losses = {"rgb_loss": self.rgb_loss(image, outputs["rgb"])}
        if self.training and self.tv_active and self.grid.num_occupied > 0:
            losses.update(self.tv_loss())
        return losses

    def get_image_metrics_and_images(self, outputs, batch):
        image = batch["image"][..., :3].to(self.device)
        rgb = outputs["rgb"]
        acc = colormaps.apply_colormap(outputs["accumulation"])
        depth = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        image_nchw = torch.moveaxis(image, -1, 0)[None]
        rgb_nchw = torch.moveaxis(rgb, -1, 0)[None]
        metrics = {
            "psnr": float(self.psnr(rgb_nchw, image_nchw).item()),
            "ssim": float(self.ssim(rgb_nchw, image_nchw)),
            "lpips": float(self.lpips(rgb_nchw, image_nchw)),
        }
        metrics.update({k: float(v) for k, v in self.benchmark_scalars().items()})
        images = {"img": torch.cat([image, rgb], dim=1), "accumulation": acc, "depth": depth}
        return metrics, images

    # ----------------------------------------------------------------------------------------
    # Harness hooks
    def export_representation(self, path: Path) -> None:
        export_grid(self.grid, Path(path))

    def load_representation(self, path: Path) -> None:
        load_grid(self.grid, Path(path))
        self.refresh_optimizers()

    def benchmark_scalars(self) -> Dict[str, float]:
        return {"occupied_voxels": float(self.grid.num_occupied), "grid_resolution": float(self.grid.resolution)}
