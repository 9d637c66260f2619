"""Block-NeRF (Tancik et al., CVPR 2022) at the scale of one object scene.

Structure, as in the paper:

- The scene is split into ``num_blocks`` blocks whose centres are placed over the region the
  training cameras cover (k-means of the camera positions, farthest-point seeded) with radii giving
  neighbouring blocks ``block_overlap`` = 50% overlap; a training image belongs to every block whose
  radius holds its camera (:mod:`baselines.block_nerf.layout`).
- Each block is its own mip-NeRF-style NeRF (integrated positional encoding, one MLP queried for
  coarse then fine samples) with per-image appearance embeddings and a visibility network
  (:mod:`baselines.block_nerf.field`), trained only on its own images: every training ray is routed
  to the blocks that own its image and each block renders its subset (``train_routing``).
- A view is rendered by the blocks whose radius holds its camera (the nearest one if none does);
  blocks whose visibility network predicts a mean transmittance below ``visibility_threshold`` over
  the view are dropped, and the remaining renders are blended with inverse-distance weights
  ``w_i ∝ |camera - centre_i|^-p``, ``p = idw_power``.
- Test views use a fixed appearance code per block: the mean of the embeddings of the block's
  training images. (The paper instead aligns codes between neighbouring blocks by optimising them
  against each other's renders; on our constant-lighting scenes there is no appearance change to
  align, so we state this simplification. On the real ethiopian-head the choice of code moves the
  quick runs' mean test PSNR by at most 0.2 dB: ``baselines.block_nerf.diagnostics.appearance``.)

Left out: exposure conditioning (no exposure metadata in our data), pose refinement (poses are
exact) and transient-object masks (static scenes).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from torch import Tensor, nn
from torch.nn import Parameter

from nerfstudio.cameras.rays import RayBundle, RaySamples
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.losses import MSELoss
from nerfstudio.model_components.ray_samplers import PDFSampler, UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps

from bench_base.lpips import build_lpips_or_missing
from bench_base.representation import NON_REPRESENTATION_PREFIXES, representation_state_dict
from baselines.block_nerf.field import BlockNeRFField
from baselines.block_nerf.layout import (
    assign_images_to_blocks,
    block_radii,
    filter_by_visibility,
    inverse_distance_weights,
    place_block_centers,
    select_blocks,
)

# State that only training needs (per-training-image codes, which images train which block): kept in
# checkpoints, left out of the exported representation the benchmark renders from and measures.
TRAINING_ONLY_PREFIXES = ("appearance_embeddings.", "image_owners")


@dataclass
class BlockNeRFModelConfig(ModelConfig):
    """Block-NeRF. Defaults: the paper's structure (50% overlap, mip-NeRF blocks, 32-d appearance
    codes) with mip-NeRF's network and samples per block; the block count suits an object scene."""

    _target: Type = field(default_factory=lambda: BlockNeRFModel)
    num_blocks: int = 4
    """Number of blocks (the paper's city scenes use tens; an object ringed by cameras needs few)."""
    block_overlap: float = 0.5
    """Overlap of neighbouring blocks as a fraction of the diameter (paper: 50%)."""
    idw_power: float = 4.0
    """Power p of the inverse-distance blending weights."""
    visibility_threshold: float = 0.1
    """Blocks whose mean predicted visibility of a view is below this are not rendered for it."""
    visibility_num_rays: int = 1024
    """Rays of a view (evenly spaced pixels) on which each candidate block's visibility is averaged."""
    appearance_dim: int = 32
    """Per-image appearance embedding size (0 disables appearance embeddings)."""
    base_mlp_num_layers: int = 8
    """Depth of each block's density MLP f_sigma (mip-NeRF: 8)."""
    base_mlp_layer_width: int = 256
    """Width of each block's density MLP (mip-NeRF: 256)."""
    head_mlp_num_layers: int = 1
    """Depth of the colour MLP f_c."""
    head_mlp_layer_width: int = 128
    visibility_mlp_num_layers: int = 4
    """Depth of the visibility MLP f_v (a small MLP, as in the paper)."""
    visibility_mlp_layer_width: int = 128
    position_frequencies: int = 16
    """Integrated positional-encoding frequencies 2^0..2^(L-1) (mip-NeRF: L=16)."""
    direction_frequencies: int = 4
    use_integrated_encoding: bool = True
    """mip-NeRF's integrated positional encoding of conical frustums (False: NeRF's point encoding)."""
    density_bias: float = -1.0
    """Added to the raw density before the softplus (mip-NeRF: -1)."""
    num_coarse_samples: int = 128
    """Coarse (stratified) samples per ray (mip-NeRF: 128)."""
    num_importance_samples: int = 128
    """Fine (resampled) samples per ray, from the same MLP (mip-NeRF: 128)."""
    coarse_loss_mult: float = 0.1
    """Weight of the coarse colour loss (mip-NeRF: 0.1)."""
    visibility_loss_mult: float = 1.0
    """Weight of the visibility MSE to the (detached) volume-rendered transmittance."""
    train_routing: Literal["all_owners", "one_owner"] = "all_owners"
    """all_owners: each training ray trains every block that owns its image (the paper: each block
    trains on all its images). one_owner: one owner drawn at random, one block pass per ray."""
    background_color: Literal["random", "last_sample", "black", "white"] = "white"


def weights_and_transmittance(ray_samples: RaySamples, densities: Tensor) -> Tuple[Tensor, Tensor]:
    """Volume-rendering weights and the transmittance reaching each sample, both (*rays, samples, 1)."""
    delta_density = ray_samples.deltas * densities
    alphas = 1.0 - torch.exp(-delta_density)
    optical_depth = torch.cumsum(delta_density[..., :-1, :], dim=-2)
    optical_depth = torch.cat([torch.zeros_like(optical_depth[..., :1, :]), optical_depth], dim=-2)
    transmittance = torch.exp(-optical_depth)
    return torch.nan_to_num(alphas * transmittance), transmittance


class BlockNeRFModel(Model):
    config: BlockNeRFModelConfig

    def populate_modules(self):
        super().populate_modules()
        cfg = self.config
        num_blocks = cfg.num_blocks
        self.block_fields = nn.ModuleList(
            [
                BlockNeRFField(
                    position_frequencies=cfg.position_frequencies,
                    direction_frequencies=cfg.direction_frequencies,
                    appearance_dim=cfg.appearance_dim,
                    base_mlp_num_layers=cfg.base_mlp_num_layers,
                    base_mlp_layer_width=cfg.base_mlp_layer_width,
                    head_mlp_num_layers=cfg.head_mlp_num_layers,
                    head_mlp_layer_width=cfg.head_mlp_layer_width,
                    visibility_mlp_num_layers=cfg.visibility_mlp_num_layers,
                    visibility_mlp_layer_width=cfg.visibility_mlp_layer_width,
                    use_integrated_encoding=cfg.use_integrated_encoding,
                    density_bias=cfg.density_bias,
                )
                for _ in range(num_blocks)
            ]
        )
        # Each block has its own code per training image (only its own images' codes ever train).
        self.appearance_embeddings = nn.ModuleList(
            [nn.Embedding(self.num_train_data, cfg.appearance_dim) for _ in range(num_blocks)]
            if cfg.appearance_dim > 0
            else []
        )
        for embedding in self.appearance_embeddings:
            nn.init.normal_(embedding.weight, std=0.01)

        # The layout until place_blocks() sees the training cameras: blocks evenly around a ring at
        # the Blender protocol's camera distance, every image owned by every block.
        azimuths = torch.arange(num_blocks, dtype=torch.float32) * (2 * math.pi / num_blocks)
        ring = torch.stack([azimuths.cos(), azimuths.sin(), torch.full_like(azimuths, 0.5)], dim=-1) * 4.0
        self.register_buffer("block_centers", ring)
        self.register_buffer("block_radii", torch.full((num_blocks,), 8.0))
        self.register_buffer("image_owners", torch.ones(self.num_train_data, num_blocks, dtype=torch.bool))
        self.register_buffer("fixed_appearance", torch.zeros(num_blocks, cfg.appearance_dim))
        # False once a stored representation is loaded: its fixed codes replace the training codes.
        self._appearance_from_embeddings = True
        # Set while one view is rendered: the blocks that passed its visibility test.
        self._view_blocks: Optional[Tensor] = None
        # Set within only_blocks(): the blocks every view renders with, in place of its own choice.
        self._forced_blocks: Optional[Tensor] = None

        self.sampler_uniform = UniformSampler(num_samples=cfg.num_coarse_samples)
        self.sampler_pdf = PDFSampler(num_samples=cfg.num_importance_samples, include_original=False)
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer()
        self.rgb_loss = MSELoss()

        from torchmetrics.functional import structural_similarity_index_measure
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure
        self.lpips = build_lpips_or_missing()

    # ------------------------------------------------------------------ layout
    @torch.no_grad()
    def place_blocks(self, camera_positions: Tensor) -> None:
        """Lay the blocks out over the training cameras and assign each training image to blocks."""
        camera_positions = camera_positions.to(self.device, torch.float32)
        if camera_positions.shape[0] != self.num_train_data:
            raise ValueError(f"{camera_positions.shape[0]} camera positions for {self.num_train_data} training images")
        centers = place_block_centers(camera_positions, self.config.num_blocks)
        radii = block_radii(camera_positions, centers, self.config.block_overlap)
        self.block_centers.copy_(centers)
        self.block_radii.copy_(radii)
        self.image_owners.copy_(assign_images_to_blocks(camera_positions, centers, radii))

    def test_appearance_codes(self) -> Optional[Tensor]:
        """(num_blocks, appearance_dim) fixed codes for views that are not training images: the mean of
        each block's training-image codes, or the stored codes of a loaded representation."""
        if self.config.appearance_dim == 0:
            return None
        if not self._appearance_from_embeddings:
            return self.fixed_appearance
        owners = self.image_owners.to(self.fixed_appearance.dtype)
        codes = [
            (owners[:, b, None] * embedding.weight).sum(0) / owners[:, b].sum().clamp_min(1.0)
            for b, embedding in enumerate(self.appearance_embeddings)
        ]
        return torch.stack(codes)

    # ------------------------------------------------------------------ nerfstudio API
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return {"fields": list(self.block_fields.parameters()) + list(self.appearance_embeddings.parameters())}

    def render_block(
        self, block: int, ray_bundle: RayBundle, appearance: Optional[Tensor], supervise_visibility: bool = False
    ) -> Dict[str, Tensor]:
        """One block's mip-NeRF render of ``ray_bundle`` (rays already through the collider)."""
        block_field = self.block_fields[block]
        samples_coarse = self.sampler_uniform(ray_bundle)
        outputs_coarse = block_field(samples_coarse, appearance)
        weights_coarse, transmittance_coarse = weights_and_transmittance(
            samples_coarse, outputs_coarse[FieldHeadNames.DENSITY]
        )
        samples_fine = self.sampler_pdf(ray_bundle, samples_coarse, weights_coarse)
        outputs_fine = block_field(samples_fine, appearance)
        weights_fine, _ = weights_and_transmittance(samples_fine, outputs_fine[FieldHeadNames.DENSITY])
        outputs = {
            "rgb_coarse": self.renderer_rgb(rgb=outputs_coarse[FieldHeadNames.RGB], weights=weights_coarse),
            "rgb": self.renderer_rgb(rgb=outputs_fine[FieldHeadNames.RGB], weights=weights_fine),
            "accumulation_coarse": self.renderer_accumulation(weights_coarse),
            "accumulation": self.renderer_accumulation(weights_fine),
            "depth": self.renderer_depth(weights_fine, samples_fine),
        }
        if supervise_visibility:
            # f_v learns the transmittance the block's own density gives; no gradient into the density.
            outputs["visibility"] = block_field.get_visibility(samples_coarse)
            outputs["visibility_target"] = transmittance_coarse.detach()
        return outputs

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        if self.training and self._view_blocks is None:
            return self._training_outputs(ray_bundle)
        return self._blended_outputs(ray_bundle)

    def _training_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """Each ray rendered by the block(s) that own its image, with that image's appearance code.
        Outputs are per (ray, block) pair; ``ray_index`` says which batch ray each pair is."""
        assert ray_bundle.camera_indices is not None, "Block-NeRF training needs the rays' image indices"
        image_index = ray_bundle.camera_indices.reshape(-1).long()
        owners = self.image_owners[image_index]
        if self.config.train_routing == "one_owner":
            scores = torch.rand(owners.shape, device=owners.device).masked_fill(~owners, -1.0)
            owners = nn.functional.one_hot(scores.argmax(dim=1), owners.shape[1]).to(torch.bool) & owners
        pieces: Dict[str, List[Tensor]] = {}
        for block in range(self.config.num_blocks):
            rays = owners[:, block].nonzero().reshape(-1)
            if rays.numel() == 0:
                continue
            appearance = self.appearance_embeddings[block](image_index[rays]) if self.config.appearance_dim else None
            outputs = self.render_block(block, ray_bundle[rays], appearance, supervise_visibility=True)
            outputs["ray_index"] = rays
            outputs["block_index"] = torch.full_like(rays, block)
            for key, value in outputs.items():
                pieces.setdefault(key, []).append(value)
        return {key: torch.cat(values) for key, values in pieces.items()}

    def _blended_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """Rays rendered by the blocks near their origin, blended with inverse-distance weights."""
        num_rays = ray_bundle.origins.shape[0]
        selected = select_blocks(ray_bundle.origins, self.block_centers, self.block_radii, self._view_blocks)
        blend = inverse_distance_weights(ray_bundle.origins, self.block_centers, selected, self.config.idw_power)
        codes = self.test_appearance_codes()
        outputs: Dict[str, Tensor] = {}
        for block in range(self.config.num_blocks):
            rays = (blend[:, block] > 0).nonzero().reshape(-1)
            if rays.numel() == 0:
                continue
            appearance = codes[block].expand(rays.numel(), -1) if codes is not None else None
            block_outputs = self.render_block(block, ray_bundle[rays], appearance)
            weight = blend[rays, block, None]
            for key, value in block_outputs.items():
                if key not in outputs:
                    outputs[key] = torch.zeros((num_rays, value.shape[-1]), device=value.device, dtype=value.dtype)
                outputs[key].index_add_(0, rays, weight * value)
        outputs["blocks_rendered"] = selected.sum(dim=-1, keepdim=True).to(blend.dtype)
        return outputs

    @torch.no_grad()
    def view_visibility(self, camera_ray_bundle: RayBundle, candidates: Tensor) -> Tensor:
        """(num_blocks,) mean predicted visibility of the view for each candidate block (0 elsewhere),
        from ``visibility_num_rays`` evenly spaced rays and their coarse samples."""
        rays = camera_ray_bundle.flatten()
        index = torch.linspace(0, len(rays) - 1, min(len(rays), self.config.visibility_num_rays)).round().long()
        rays = rays[index.to(rays.origins.device)].to(self.device)
        if self.collider is not None:
            rays = self.collider(rays)
        samples = self.sampler_uniform(rays)
        visibility = torch.zeros(self.config.num_blocks, device=self.device)
        for block in candidates.nonzero().reshape(-1).tolist():
            visibility[block] = self.block_fields[block].get_visibility(samples).mean()
        return visibility

    @contextlib.contextmanager
    def only_blocks(self, blocks: Tensor):
        """Within: every view renders with the blocks of the boolean mask ``blocks`` (blended by
        distance as usual) instead of those its camera picks; for diagnoses of one block at a time
        (baselines.block_nerf.diagnostics.blocks). The evaluation never sets it."""
        self._forced_blocks = blocks.to(device=self.device, dtype=torch.bool)
        try:
            yield self
        finally:
            self._forced_blocks = None

    @torch.no_grad()
    def get_outputs_for_camera_ray_bundle(self, camera_ray_bundle: RayBundle) -> Dict[str, Tensor]:
        """A view: the blocks near its camera, less those that barely see it, blended by distance."""
        if self._forced_blocks is not None:
            self._view_blocks = self._forced_blocks
        else:
            camera_position = camera_ray_bundle.origins.reshape(-1, 3).mean(dim=0, keepdim=True).to(self.device)
            candidates = select_blocks(camera_position, self.block_centers, self.block_radii)[0]
            visibility = self.view_visibility(camera_ray_bundle, candidates)
            self._view_blocks = filter_by_visibility(visibility, candidates, self.config.visibility_threshold)
        try:
            return super().get_outputs_for_camera_ray_bundle(camera_ray_bundle)
        finally:
            self._view_blocks = None

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        image = batch["image"].to(outputs["rgb"].device)
        metrics = {}
        if "ray_index" in outputs:
            metrics["blocks_per_ray"] = outputs["ray_index"].numel() / max(image.shape[0], 1)
            image = image[outputs["ray_index"]]
        pred, image = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb"], pred_accumulation=outputs["accumulation"], gt_image=image
        )
        metrics["psnr"] = self.psnr(pred, image)
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        image = batch["image"].to(outputs["rgb"].device)
        if "ray_index" in outputs:
            image = image[outputs["ray_index"]]
        losses = {}
        for key, mult in (("rgb_coarse", self.config.coarse_loss_mult), ("rgb", 1.0)):
            pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
                pred_image=outputs[key],
                pred_accumulation=outputs[key.replace("rgb", "accumulation")],
                gt_image=image,
            )
            losses[f"{key}_loss"] = mult * self.rgb_loss(gt, pred)
        if "visibility" in outputs:
            losses["visibility_loss"] = self.config.visibility_loss_mult * self.rgb_loss(
                outputs["visibility"], outputs["visibility_target"]
            )
        return losses

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        rgb = outputs["rgb"]
        image = self.renderer_rgb.blend_background(batch["image"].to(rgb.device))
        to_nchw = lambda x: torch.moveaxis(x, -1, 0)[None, ...]  # noqa: E731
        metrics = {
            "psnr": float(self.psnr(to_nchw(image), to_nchw(rgb))),
            "ssim": float(self.ssim(to_nchw(image), to_nchw(rgb))),  # type: ignore[arg-type]
            "lpips": float(self.lpips(to_nchw(image), to_nchw(rgb.clamp(0, 1)))),
            "blocks_rendered": float(outputs["blocks_rendered"].float().mean()),
        }
        assert self.config.collider_params is not None
        depth = colormaps.apply_depth_colormap(
            outputs["depth"],
            accumulation=outputs["accumulation"],
            near_plane=self.config.collider_params["near_plane"],
            far_plane=self.config.collider_params["far_plane"],
        )
        images = {
            "img": torch.cat([image, rgb], dim=1),
            "accumulation": colormaps.apply_colormap(outputs["accumulation"]),
            "depth": depth,
        }
        return metrics, images

    # ------------------------------------------------------------------ benchmark hooks
    def benchmark_scalars(self) -> Dict[str, float]:
        owners = self.image_owners.float()
        return {
            "blocks": float(self.config.num_blocks),
            "blocks_per_image": float(owners.sum(dim=1).mean()),
            "images_per_block": float(owners.sum(dim=0).mean()),
        }

    def representation(self) -> Dict[str, Tensor]:
        """Everything rendering needs: every block's field (density, colour and visibility MLPs), the
        block layout and the fixed test appearance codes; no training-image codes, no metrics."""
        codes = self.test_appearance_codes()
        state = representation_state_dict(self)
        if codes is not None:
            state["fixed_appearance"] = codes.detach().cpu().float()
        return {
            key: value.float() if value.is_floating_point() else value
            for key, value in state.items()
            if not key.startswith(TRAINING_ONLY_PREFIXES)
        }

    def export_representation(self, path) -> None:
        torch.save(self.representation(), path)

    def load_representation(self, path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(NON_REPRESENTATION_PREFIXES + TRAINING_ONLY_PREFIXES)]
        if missing or unexpected:
            raise RuntimeError(
                f"{path}: stored Block-NeRF does not match the config (missing {missing}, unexpected {unexpected})"
            )
        self._appearance_from_embeddings = False
