"""AKDQFF as a nerfstudio model: RBF kernel field + adaptive allocation + quantized features.

Per batch: rays are clipped to the scene box (``AABBBoxCollider``), sampled uniformly inside it
(``UniformSampler``), samples in cells the occupancy grid marks empty are skipped (optionally also
samples the grid estimates as occluded, ``skip_transmittance``), the rest query the kernel field
through the spatial index (ragged (sample, kernel) pairs, no loop), and nerfstudio's renderers composite the result on a
background colour (white unless configured). Training callbacks (as splatfacto's) run, after each optimizer step:

- the AKD strategy (``allocation.AKDStrategy``): statistics every step, split/prune every
  ``strategy.refine_every`` steps, with the optimizer state patched in place;
- the spatial index rebuild and the occupancy-grid update;
- QFF (``quantization``): k-means codebook from ``quantization_start_step`` on, refreshed every
  ``codebook_update_interval`` steps, Q adapted to the features' contribution-weighted
  quantization error (``AdaptiveCodebookRule``).

Every allocation and every codebook decision is appended to ``allocation_history`` and
``codebook_history`` (``adaptation_history()``; plotted by ``akdqff_method.history``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple, Type

import torch
from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.ray_samplers import PDFSampler, UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from nerfstudio.model_components.scene_colliders import AABBBoxCollider
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps, colors
from torch import Tensor, nn
from torch.nn import Parameter
from torch.profiler import record_function
from torchmetrics.functional import structural_similarity_index_measure
from torchmetrics.image import PeakSignalNoiseRatio

from bench_base.lpips import build_lpips_or_missing
from akdqff_method import fused_field
from akdqff_method.allocation import AKDStrategy
from akdqff_method.distributed import RankSync
from akdqff_method.export import StoragePrecision, load_into, write_representation
from akdqff_method.field import KERNEL_PARAMETER_NAMES, RBFKernelField
from akdqff_method.quantization import AdaptiveCodebookRule, kmeans, quantization_distortion, weighted_variance
from akdqff_method.spatial_index import OccupancyGrid

# Optimizer param-group name of each kernel parameter (one group each, as gsplat does).
KERNEL_GROUPS = {name: f"kernel_{name}" for name in KERNEL_PARAMETER_NAMES}


@dataclass
class AKDQFFModelConfig(ModelConfig):
    """AKDQFF; the defaults are the paper-scale (GPU, ``full`` profile) settings."""

    _target: Type = field(default_factory=lambda: AKDQFFModel)
    num_kernels_init: int = 8192
    """K at the start: kernel centres uniformly at random in the scene box (paper §3)."""
    feature_dim: int = 16
    decoder_hidden_dim: int = 64
    sh_levels: int = 3
    """Spherical-harmonic levels of the view-dependent colour (levels² coefficients per channel)."""
    background_color: Literal["white", "black"] = "white"
    """What rays see beyond the scene box: white for NeRF-synthetic scenes, as their ground truth is
    composited; real captures get their layout's setting (the harness sets it)."""
    init_scale: Optional[float] = None
    """Initial bandwidth; None = 0.3 × the mean spacing of the initial kernels."""
    min_scale: float = 1e-3
    max_scale: float = 0.3
    support_cutoff: float = 2.5
    """RBFs are truncated at this many bandwidths (continuously), which bounds the neighbour lists."""
    grid_resolution: int = 64
    """Cells per axis of the spatial index and of the occupancy grid."""
    max_kernels_per_cell: Optional[int] = None
    """A memory guard on the index's per-cell lists; None keeps every kernel that touches a cell
    (exact). When set, crowded cells keep the kernels contributing most there."""
    index_cell_size: Optional[float] = None
    """With a value, the spatial index subdivides its grid (``grid_resolution`` times up to
    ``max_index_subdivision`` per axis) so that a cell's edge stays near this many typical support
    radii as the kernels shrink; None keeps ``grid_resolution`` cells a side."""
    max_index_subdivision: int = 8
    index_update_interval: int = 10
    num_samples: int = 128
    """Uniform samples per ray inside the scene box (before empty-space skipping)."""
    occupancy_update_interval: int = 16
    occupancy_warmup_steps: int = 256
    """Until then every cell some kernel touches is sampled. Cells marked empty get no gradient,
    so marking them too early (or with too high a threshold) freezes holes into the scene."""
    occupancy_alpha_threshold: float = 0.001
    """A cell is empty when a sample step through it would be less opaque than this."""
    occupancy_points_per_cell: int = 2
    skip_transmittance: float = 0.0
    """Samples whose transmittance, estimated from the occupancy grid's densities, is below this
    are skipped (0 disables). Off by default: the cell-level estimate hides samples the surface
    needs, and the loss rose again once skipping began (results/quick/diagnostics/README.md)."""
    sampler: Literal["uniform", "transmittance", "resample"] = "resample"
    """Which samples of a ray the field evaluates with gradients (after empty-space skipping).
    ``uniform``: all of them. ``transmittance``: a density pass without gradients over them first,
    then only those the ray still reaches (transmittance above ``early_stop_transmittance``, as
    nerfacc's early stopping; the render changes by at most that much). ``resample``: the same
    pass gives the ray's weights, from which nerfstudio's ``PDFSampler`` draws ``num_resampled``
    samples, the only ones evaluated with gradients (NeRF's hierarchical sampling with the field
    as its own coarse model)."""
    early_stop_transmittance: float = 1e-3
    num_resampled: int = 32
    strategy: AKDStrategy = field(
        # λ for the full profile: below the quick profile's 3e-6 because 800x800 views show finer
        # detail worth splitting for (λ is per ray, so resolution alone does not change K). Growth
        # as the quick growth sweep chose on both study scenes: every candidate split, every 100
        # steps (a rate limit kept K far below what λ asks within the budget). Untested at this scale.
        default_factory=lambda: AKDStrategy(
            refine_start=500, refine_stop=20_000, refine_every=100, kernel_cost=1e-6, max_split_fraction=1.0,
            max_kernels=1_000_000,
        )
    )
    quantization_start_step: int = 5000
    initial_codebook_size: int = 64
    """Where the adaptive-Q rule starts its search at ``quantization_start_step``."""
    codebook_update_interval: int = 500
    kmeans_iterations: int = 10
    codebook_rule: AdaptiveCodebookRule = field(default_factory=AdaptiveCodebookRule)
    storage: StoragePrecision = field(default_factory=StoragePrecision)
    """Bits of the stored kernel attributes (the exported file; training is full precision)."""
    near_plane: float = 0.0
    """Rays start at the scene box; this only clips boxes that contain the camera."""
    seed: int = 0


class AKDQFFModel(Model):
    config: AKDQFFModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        # The fused op is built (or loaded from torch's cache) now, not in the first timed iteration.
        fused_field.prepare()
        cfg = self.config
        aabb = self.scene_box.aabb.float()
        self.field = RBFKernelField(
            aabb,
            num_kernels=cfg.num_kernels_init,
            feature_dim=cfg.feature_dim,
            decoder_hidden_dim=cfg.decoder_hidden_dim,
            sh_levels=cfg.sh_levels,
            init_scale=cfg.init_scale,
            min_scale=cfg.min_scale,
            max_scale=cfg.max_scale,
            support_cutoff=cfg.support_cutoff,
            grid_resolution=cfg.grid_resolution,
            max_kernels_per_cell=cfg.max_kernels_per_cell,
            index_cell_size=cfg.index_cell_size,
            max_index_subdivision=cfg.max_index_subdivision,
            seed=cfg.seed,
        )
        self.occupancy = OccupancyGrid(aabb, cfg.grid_resolution)
        self.occupancy.occupied = self.field.index.covered_cells()
        self.collider = AABBBoxCollider(self.scene_box, near_plane=cfg.near_plane)
        self.sampler = UniformSampler(num_samples=cfg.num_samples)
        self.resampler = PDFSampler(num_samples=cfg.num_resampled, include_original=False)
        self.renderer_rgb = RGBRenderer(background_color=self.config.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer(method="expected")
        self.rgb_loss = nn.MSELoss()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure
        self.lpips = build_lpips_or_missing()
        self.strategy = cfg.strategy
        self.strategy_state = self.strategy.initialize_state(self.field.num_kernels)
        self.step = 0
        self.optimizers: Any = None
        self._last_batch: Optional[Dict[str, Tensor]] = None
        self.kernels_split_total = 0
        self.kernels_pruned_total = 0
        self.kernels_blocked_by_cap_total = 0
        self.kernels_blocked_by_rate_total = 0
        # Every adaptive decision, for the run record: {step, K, allocation.NO_CHANGE's counts} per
        # allocation and {step, Q, relative_distortion, measured} per codebook update.
        self.allocation_history: List[Dict[str, Any]] = []
        self.codebook_history: List[Dict[str, Any]] = []
        self.last_relative_distortion: Optional[float] = None
        self.last_samples_per_ray = 0.0  # of the last training batch, evaluated with gradients
        self.last_probe_samples_per_ray = 0.0  # and without (the sampler's density pass)
        # Set on N > 1 processes only (akdqff_method.distributed); None keeps every path single-process.
        self.rank_sync: Optional[RankSync] = None
        box_diagonal = float((aabb[1] - aabb[0]).norm())
        step_size = box_diagonal / cfg.num_samples
        self.occupancy_density_threshold = -math.log(1.0 - cfg.occupancy_alpha_threshold) / step_size

    # ------------------------------------------------------------------ nerfstudio interface
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = {KERNEL_GROUPS[name]: [self.field.kernel_params[name]] for name in KERNEL_PARAMETER_NAMES}
        groups["decoder"] = list(self.field.decoder.parameters())
        return groups

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        ray_samples, positions, selected, probed = self.field_samples(ray_bundle)
        num_rays, num_samples = ray_samples.shape[:2]
        if self.training:
            self.last_samples_per_ray = selected.numel() / max(num_rays, 1)
            self.last_probe_samples_per_ray = probed / max(num_rays, 1)
        ray_index = torch.div(selected, num_samples, rounding_mode="floor")
        directions = ray_bundle.directions.reshape(-1, 3)[ray_index]
        field_out = self.field(positions[selected], directions)
        with record_function("compositing"):
            density = positions.new_zeros(num_rays * num_samples, 1).index_copy(0, selected, field_out["density"])
            rgb = positions.new_zeros(num_rays * num_samples, 3).index_copy(0, selected, field_out["rgb"])
            weights = ray_samples.get_weights(density.view(num_rays, num_samples, 1))
            outputs = {
                "rgb": self.renderer_rgb(rgb=rgb.view(num_rays, num_samples, 3), weights=weights),
                "accumulation": self.renderer_accumulation(weights=weights),
                "depth": self.renderer_depth(weights=weights, ray_samples=ray_samples),
            }
        if self.training:
            self._last_batch = {
                "positions": positions[selected].detach(),
                "sample_weights": weights.view(-1)[selected].detach(),
                "ray_index": ray_index,
                "num_rays": num_rays,
            }
        return outputs

    def field_samples(self, ray_bundle: RayBundle) -> Tuple[RaySamples, Tensor, Tensor, int]:
        """The ray samples, their positions [R·S, 3], the flat ids of those the field evaluates with
        gradients (``config.sampler``) and how many the density probe evaluated without."""
        # The record_function labels name the parts of a step in benchmarks/step_profile.py.
        with record_function("sampling"):
            ray_samples = self.sampler(ray_bundle)
            positions, selected = self._skip_empty_space(ray_samples)
        if self.config.sampler == "uniform":
            return ray_samples, positions, selected, 0
        with record_function("density probe"):
            probed = selected.numel()
            density = self._probe_density(positions, selected, ray_samples.shape)
            if self.config.sampler == "transmittance":
                selected = selected[self._reached(density, ray_samples)[selected]]
            else:
                ray_samples = self.resampler(ray_bundle, ray_samples, ray_samples.get_weights(density))
                positions, selected = self._skip_empty_space(ray_samples)
        return ray_samples, positions, selected, probed

    def _skip_empty_space(self, ray_samples: RaySamples) -> Tuple[Tensor, Tensor]:
        """The samples' positions [R·S, 3] and the flat ids of those in occupied cells (of those,
        with ``skip_transmittance``, only the ones the occupancy grid's density estimate says are not
        hidden behind opaque cells)."""
        num_rays, num_samples = ray_samples.shape[:2]
        positions = ray_samples.frustums.get_positions().reshape(-1, 3)
        occupied, cells, grid_density = self.occupancy.lookup(positions.detach())
        if self.config.skip_transmittance > 0:
            occupied = occupied & self._visible(cells, grid_density, ray_samples.deltas, num_rays, num_samples)
        return positions, torch.nonzero(occupied).flatten()

    @torch.no_grad()
    def _probe_density(self, positions: Tensor, selected: Tensor, shape) -> Tensor:
        """The field's density [R, S, 1] at the selected samples (0 elsewhere), without gradients."""
        density = positions.new_zeros(positions.shape[0])
        if selected.numel():
            density[selected] = self.field.density_at(positions[selected].detach())
        return density.view(*shape, 1)

    def _reached(self, density: Tensor, ray_samples: RaySamples) -> Tensor:
        """Flat bool [R·S]: samples in front of which the transmittance is still above
        ``early_stop_transmittance``, so the ones dropped carry at most that much of the colour."""
        tau = (density * ray_samples.deltas).squeeze(-1)
        optical_depth_before = tau.cumsum(-1) - tau
        return (optical_depth_before < -math.log(self.config.early_stop_transmittance)).view(-1)

    def _visible(self, cells: Tensor, grid_density: Tensor, deltas: Tensor, num_rays: int, num_samples: int) -> Tensor:
        """Samples not hidden behind cells the grid estimates as opaque.

        The optical depth in front of a sample counts only *earlier cells* along the ray, so every
        sample of the first opaque cell is still evaluated (the surface may lie anywhere in it)."""
        cells = cells.view(num_rays, num_samples)
        tau = grid_density.view(num_rays, num_samples) * deltas.view(num_rays, num_samples)
        exclusive = tau.cumsum(-1) - tau
        index = torch.arange(num_samples, device=cells.device).expand(num_rays, num_samples)
        new_cell = torch.ones_like(cells, dtype=torch.bool)
        new_cell[:, 1:] = cells[:, 1:] != cells[:, :-1]
        segment_start = torch.cummax(torch.where(new_cell, index, torch.zeros_like(index)), dim=-1).values
        hidden = exclusive.gather(1, segment_start)
        return (hidden < -math.log(self.config.skip_transmittance)).view(-1)

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        image = batch["image"].to(self.device)
        pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb"], pred_accumulation=outputs["accumulation"], gt_image=image
        )
        if self.training and self._last_batch is not None:
            self._last_batch["ray_residual"] = (pred - gt).detach().square().sum(-1)
            # What a ray would lose if its colour went missing (the allocation's prune value).
            background = colors.get_color(self.config.background_color).to(gt)  # the renderer's background
            self._last_batch["ray_signal"] = (gt.detach() - background).square().sum(-1)
            # The allocation's per-kernel sums, from the kernels the batch was rendered with (the
            # optimizer has not stepped yet).
            last = self._last_batch
            with record_function("allocation"):
                sample_weights, ray_index = last["sample_weights"], last["ray_index"]
                values = torch.stack([sample_weights, sample_weights * last["ray_residual"][ray_index],
                                      sample_weights * last["ray_signal"][ray_index]], dim=-1)
                last["kernel_sums"] = self.field.kernel_sums(last["positions"], values)
        return {"rgb_loss": self.rgb_loss(gt, pred)}

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        image = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        return {"psnr": self.psnr(outputs["rgb"], image), "kernels": torch.tensor(float(self.field.num_kernels))}

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        image = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        rgb = outputs["rgb"]
        acc = colormaps.apply_colormap(outputs["accumulation"])
        depth = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        image_nchw = torch.moveaxis(image, -1, 0)[None]
        rgb_nchw = torch.moveaxis(rgb, -1, 0)[None]
        metrics = {
            "psnr": float(self.psnr(image_nchw, rgb_nchw)),
            "ssim": float(self.ssim(rgb_nchw, image_nchw)),  # type: ignore[arg-type]
            "lpips": float(self.lpips(image_nchw, rgb_nchw)),
        }
        return metrics, {"img": torch.cat([image, rgb], dim=1), "accumulation": acc, "depth": depth}

    # ------------------------------------------------------------------ training callbacks
    def enable_rank_sync(self, sync: RankSync) -> None:
        """Train as one model on several processes: start from rank 0's parameters and buffers, then
        keep the ranks in step (gradients, allocation, codebook, occupancy; see ``distributed``)."""
        sync.broadcast_tensors(list(self.field.parameters()) + [self.field.codebook] + list(self.occupancy.buffers()))
        self.field.rebuild_index()
        self.rank_sync = sync

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        if self.rank_sync is not None:
            self.rank_sync.average_gradients_before_each_step(training_callback_attributes.optimizers)
        return [
            TrainingCallback(
                [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], self._before_step, args=[training_callback_attributes.optimizers]
            ),
            TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self.after_train_iteration),
        ]

    def _before_step(self, optimizers, step: int) -> None:
        self.step = step
        self.optimizers = optimizers

    @torch.no_grad()
    def after_train_iteration(self, step: int) -> None:
        cfg = self.config
        field_ = self.field
        if self.strategy_state["contribution"].shape[0] != field_.num_kernels:
            self.strategy.reset(self.strategy_state, field_.num_kernels, self.device)
        for key, value in self.strategy_state.items():
            if isinstance(value, Tensor) and value.device != self.device:
                self.strategy_state[key] = value.to(self.device)
        with record_function("allocation"):
            kernels_changed = self._allocate(step, self._last_batch)
        self._last_batch = None
        if kernels_changed or step % cfg.index_update_interval == 0:
            with record_function("index rebuild"):
                field_.rebuild_index()
        if step % cfg.occupancy_update_interval == 0:
            with record_function("occupancy update"):
                if self.rank_sync is None:
                    self.update_occupancy(step)
                else:
                    self._update_occupancy_on_rank_zero(self.rank_sync, step)
        if step == cfg.quantization_start_step or (
            field_.quantized
            and step > cfg.quantization_start_step
            and (step - cfg.quantization_start_step) % cfg.codebook_update_interval == 0
        ):
            # At quantization_start_step the rule picks the first Q from initial_codebook_size.
            with record_function("codebook"):
                if self.rank_sync is None:
                    self.update_codebook()
                else:
                    self._update_codebook_on_rank_zero(self.rank_sync)

    def _allocate(self, step: int, last: Optional[Dict[str, Tensor]]) -> bool:
        """Fold the last batch into the AKD statistics, then split and prune when it is time;
        whether K's kernels changed."""
        field_ = self.field
        # Statistics keep accumulating after refine_stop: adaptive Q weights the features by them.
        if last is not None and "kernel_sums" in last:
            self.strategy.accumulate(self.strategy_state, last["kernel_sums"], last["num_rays"])
        sync = self.rank_sync
        if sync is not None and self.strategy.should_refine(step):
            # Every rank decides from every rank's rays; the masks applied are rank 0's.
            self.strategy_state = sync.summed_statistics(self.strategy_state)
        changed = self.strategy.step_post_backward(
            field_.kernel_params, self.optimizers, self.strategy_state, step, KERNEL_GROUPS,
            agree=sync.agree if sync is not None else None,
        )
        self.kernels_split_total += changed["split"]
        self.kernels_pruned_total += changed["pruned"]
        self.kernels_blocked_by_cap_total += changed["blocked_by_cap"]
        self.kernels_blocked_by_rate_total += changed["blocked_by_rate"]
        if self.strategy.should_refine(step):
            self.allocation_history.append({"step": int(step), "kernels": int(field_.num_kernels), **changed})
        return bool(changed["split"] or changed["pruned"])

    def _update_occupancy_on_rank_zero(self, sync: RankSync, step: int) -> None:
        if sync.is_leader:
            self.update_occupancy(step)
        sync.broadcast_tensors(list(self.occupancy.buffers()))

    def _update_codebook_on_rank_zero(self, sync: RankSync) -> None:
        """Rank 0 refits (weights from every rank's statistics) and sends the codebook and its
        history entry; k-means is not bit-reproducible across CUDA devices, so ranks do not each run it."""
        summed = sync.summed_statistics(self.strategy_state)

        def refit() -> Dict[str, Any]:
            local, self.strategy_state = self.strategy_state, summed
            try:
                self.update_codebook()
            finally:
                self.strategy_state = local
            return {"codebook": self.field.codebook.cpu(), "entry": self.codebook_history[-1]}

        decision = sync.share_object(refit)
        if not sync.is_leader:
            self.field.set_codebook(decision["codebook"])
            self.codebook_history.append(decision["entry"])
            self.last_relative_distortion = decision["entry"]["relative_distortion"]

    @torch.no_grad()
    def update_occupancy(self, step: int, generator: Optional[torch.Generator] = None) -> None:
        covered = self.field.index.covered_cells()
        if step < self.config.occupancy_warmup_steps:
            self.occupancy.occupied = covered.clone()
            self.occupancy.density.zero_()  # no transmittance-based skipping before the grid is measured
            self.occupancy.mean_density.zero_()
            return
        cells = torch.nonzero(covered).flatten()
        densities = torch.zeros(cells.numel(), device=self.device)
        for _ in range(self.config.occupancy_points_per_cell):
            points = self.occupancy.cell_centres(cells, jitter=True, generator=generator)
            densities = torch.maximum(densities, self.field.density_at(points))
        self.occupancy.update(cells, densities, covered, self.occupancy_density_threshold)

    # ------------------------------------------------------------------ quantized feature fusion
    def feature_weights(self) -> Tensor:
        """w_k of the codebook fit: kernel k's rendering weight per ray (allocation statistics);
        before any ray was seen (or for kernels no ray reached yet, all of them zero) the kernel's
        integral a_k·Π s_k, what it would add to the fused feature over space."""
        features = self.field.kernel_params["features"]
        usage = self.strategy.kernel_usage(self.strategy_state)
        if usage is not None and usage.shape[0] == features.shape[0]:
            return usage.to(features)
        return (self.field.amplitudes() * self.field.scales().prod(-1)).detach().to(features)

    @torch.no_grad()
    def start_quantization(self, codebook_size: int) -> None:
        features = self.field.kernel_params["features"]
        size = max(1, min(codebook_size, features.shape[0]))
        codebook, _ = kmeans(features, size, iterations=self.config.kmeans_iterations, weights=self.feature_weights())
        self.field.set_codebook(codebook)
        self.codebook_history.append({"step": int(self.step), "codebook_size": int(size), "relative_distortion": None, "measured": {}})

    @torch.no_grad()
    def update_codebook(self) -> None:
        """Refit the codebook, with Q chosen by ``AdaptiveCodebookRule`` on the contribution-weighted
        distortion of the raw features (the decoder is not involved, so no codebook is favoured)."""
        features = self.field.kernel_params["features"].detach()
        weights = self.feature_weights()
        variance = weighted_variance(features, weights)
        iterations = self.config.kmeans_iterations
        current = self.field.codebook if self.field.quantized else None
        generator = torch.Generator(device=features.device).manual_seed(self.config.seed + self.step)
        codebooks: Dict[int, Tensor] = {}

        def relative_distortion(size: int) -> float:
            # Warm start from the current codebook (growing keeps its centroids and seeds the rest
            # at the worst-represented features); a smaller Q starts from k-means++.
            init = current if current is not None and size >= current.shape[0] else None
            codebook, assignments = kmeans(features, size, iterations=iterations, init=init, generator=generator, weights=weights)
            codebooks[size] = codebook
            if variance <= 0:
                return 0.0
            return quantization_distortion(features, codebook, assignments, weights) / variance

        size = self.field.codebook_size if self.field.quantized else self.config.initial_codebook_size
        decision = self.config.codebook_rule.decide(size, relative_distortion, features.shape[0])
        self.field.set_codebook(codebooks[decision.size])
        self.last_relative_distortion = decision.relative_distortion
        self.codebook_history.append(
            {
                "step": int(self.step),
                "codebook_size": int(decision.size),
                "relative_distortion": float(decision.relative_distortion),
                "measured": {str(q): float(d) for q, d in sorted(decision.measured.items())},
            }
        )

    def adaptation_history(self) -> Dict[str, List[Dict[str, Any]]]:
        """K and Q over training, one entry per decision (JSON-ready, for the run record)."""
        return {"allocation": list(self.allocation_history), "codebook": list(self.codebook_history)}

    # ------------------------------------------------------------------ harness hooks
    def benchmark_scalars(self) -> Dict[str, float]:
        scalars = {
            "kernels": float(self.field.num_kernels),
            "codebook_size": float(self.field.codebook_size),  # 0 = not quantized yet (warm-up)
            "occupied_fraction": self.occupancy.occupied_fraction(),
            # Per ray of the last training batch: samples the field evaluated with gradients, and
            # those the sampler's density pass evaluated without (0 with the uniform sampler).
            "field_samples_per_ray": float(self.last_samples_per_ray),
            "probe_samples_per_ray": float(self.last_probe_samples_per_ray),
            "kernels_split_total": float(self.kernels_split_total),
            "kernels_pruned_total": float(self.kernels_pruned_total),
            # Splits the memory guard max_kernels refused: 0 means K was set by λ alone.
            "kernels_blocked_by_cap_total": float(self.kernels_blocked_by_cap_total),
            # Splits the objective asked for beyond max_split_fraction: K's growth was rate-limited.
            "kernels_blocked_by_rate_total": float(self.kernels_blocked_by_rate_total),
            # Cells listing more kernels than the index keeps (those contributing most there are
            # kept); 0 whenever max_kernels_per_cell is None. Touched cells give the fraction.
            "index_truncated_cells": float(self.field.index.truncated_cells),
            "index_touched_cells": float(self.field.index.touched_cells),
            "index_cell_resolution": float(self.field.index.cell_resolution),
        }
        if self.last_relative_distortion is not None:
            # D(Q)/D(1) of the last codebook decision (the rule's tolerance is on this number).
            scalars["codebook_relative_distortion"] = float(self.last_relative_distortion)
        return scalars

    def export_representation(self, path) -> int:
        return write_representation(self.field, self.occupancy, path, self.config.storage)

    def load_representation(self, path) -> None:
        load_into(self.field, self.occupancy, path)
        self.strategy.reset(self.strategy_state, self.field.num_kernels, self.device)
