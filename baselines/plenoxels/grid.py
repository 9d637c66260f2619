"""The Plenoxels field: a sparse voxel grid of density and degree-2 spherical harmonics.

What is stored (Fridovich-Keil et al. 2022, Sec. 3):

- ``links``: a dense ``R x R x R`` int32 index grid (as svox2's ``links``). ``-1`` marks an empty
  vertex; otherwise it indexes the compact parameter arrays. The compact arrays are always kept in
  the order of the vertices' linear index (``x * R*R + y * R + z``), so the index grid can be
  rebuilt from the occupancy alone (that is how the stored file holds it).
- ``density``: ``(N, 1)`` raw densities; the field's density is ``relu`` of the trilinear blend.
- ``sh``: ``(N, 27)`` SH coefficients, 9 per colour channel (channel-major: ``[r0..r8, g0..g8,
  b0..b8]``); colour is ``relu(sum_j k_j Y_j(d) + 0.5)`` as in svox2's renderer.

Vertex ``i`` sits at ``aabb_min + (i + 0.5) * voxel_size`` (svox2's convention): a sample's
continuous grid coordinate is ``(x - aabb_min) / voxel_size - 0.5``. Empty vertices read as zero
in the trilinear blend, as in svox2.

All functions here are vectorised torch and device-agnostic; the only Python loops run over the
8 corners of a cell or over chunks of vertices.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nerfstudio.utils.math import components_from_spherical_harmonics

SH_DEGREE = 2
SH_COMPONENTS = (SH_DEGREE + 1) ** 2  # 9
SH_CHANNELS = 3 * SH_COMPONENTS  # 27
# The 8 corners of a cell, in (dx, dy, dz) order; corner k = 4*dx + 2*dy + dz.
CORNER_OFFSETS = tuple((dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1))


def sh_basis(directions: Tensor) -> Tensor:
    """Real SH basis up to degree 2 at unit ``directions`` (..., 3) -> (..., 9)."""
    return components_from_spherical_harmonics(SH_DEGREE + 1, directions)


def sh_to_rgb(sh: Tensor, basis: Tensor) -> Tensor:
    """Colour from per-sample coefficients ``sh`` (M, 27) and basis (M, 9): relu(k.Y + 0.5)."""
    coeffs = sh.view(-1, 3, SH_COMPONENTS)
    return torch.relu((coeffs * basis[:, None, :]).sum(-1) + 0.5)


def links_from_occupancy(occupancy: Tensor) -> Tensor:
    """Index grid for a boolean occupancy grid: occupied vertices numbered in linear order."""
    flat = occupancy.reshape(-1)
    links = torch.cumsum(flat.to(torch.int64), 0) - 1
    links = torch.where(flat, links, torch.full_like(links, -1))
    return links.to(torch.int32).view(occupancy.shape)


def cell_corners(grid_coords: Tensor, resolution: int) -> Tuple[Tensor, Tensor]:
    """Lower cell corner (M, 3) int64 and fractional offsets (M, 3) for continuous grid coords.

    Coordinates are clamped to [0, R-1] (a sample within half a voxel of the box face reads the
    outermost vertices), and cells to [0, R-2] so every sample has 8 corners inside the grid.
    """
    coords = grid_coords.clamp(0.0, resolution - 1.0)
    lower = coords.floor().clamp(0, resolution - 2)
    frac = coords - lower
    return lower.to(torch.int64), frac


def corner_indices_and_weights(links: Tensor, grid_coords: Tensor) -> Tuple[Tensor, Tensor]:
    """Compact indices (M, 8), clamped to >= 0, and trilinear weights (M, 8) that are zero for
    empty corners (so an empty vertex reads as zero)."""
    resolution = links.shape[0]
    lower, frac = cell_corners(grid_coords, resolution)
    flat_links = links.reshape(-1)
    indices, weights = [], []
    for dx, dy, dz in CORNER_OFFSETS:
        lin = ((lower[:, 0] + dx) * resolution + (lower[:, 1] + dy)) * resolution + (lower[:, 2] + dz)
        idx = flat_links[lin].to(torch.int64)
        wx = frac[:, 0] if dx else 1.0 - frac[:, 0]
        wy = frac[:, 1] if dy else 1.0 - frac[:, 1]
        wz = frac[:, 2] if dz else 1.0 - frac[:, 2]
        weights.append(wx * wy * wz * (idx >= 0).to(frac.dtype))
        indices.append(idx.clamp(min=0))
    return torch.stack(indices, 1), torch.stack(weights, 1)


class _Trilinear(torch.autograd.Function):
    """sum_k w_k values[idx_k] with a hand-written backward: one zero-filled gradient and eight
    ``index_add_`` calls (autograd's gather backward would allocate a gradient per corner; torch's
    ``embedding_bag`` backward sorts the indices, which is slower on the CPU)."""

    @staticmethod
    def forward(ctx, values: Tensor, indices: Tensor, weights: Tensor) -> Tensor:
        out = weights[:, 0:1] * values.index_select(0, indices[:, 0])
        for k in range(1, indices.shape[1]):
            out.addcmul_(weights[:, k : k + 1], values.index_select(0, indices[:, k]))
        ctx.save_for_backward(indices, weights)
        ctx.num_values = values.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        indices, weights = ctx.saved_tensors
        grad_values = None
        if ctx.needs_input_grad[0]:
            grad_values = grad_out.new_zeros(ctx.num_values, grad_out.shape[1])
            for k in range(indices.shape[1]):
                grad_values.index_add_(0, indices[:, k], grad_out * weights[:, k : k + 1])
        return grad_values, None, None


def trilinear(values: Tensor, indices: Tensor, weights: Tensor) -> Tensor:
    """Blend compact ``values`` (N, C) at corner ``indices``/``weights`` (M, 8) -> (M, C).

    Weights are treated as constants (no gradient to sample positions, which nothing needs)."""
    return _Trilinear.apply(values, indices, weights.detach().to(values.dtype))


def dilate(occupancy: Tensor, radius: int) -> Tensor:
    """Grow a boolean (R, R, R) occupancy by ``radius`` vertices in every direction (a cube)."""
    if radius <= 0:
        return occupancy
    grown = F.max_pool3d(occupancy[None, None].float(), kernel_size=2 * radius + 1, stride=1, padding=radius)
    return grown[0, 0] > 0


def total_variation(
    values: Tensor, links: Tensor, voxel_ids: Tensor, resolution_scale: float, eps: float = 1e-9
) -> Tensor:
    """Plenoxels' TV (paper Eq. 4) over the voxels ``voxel_ids`` (linear vertex indices, occupied).

    ``sum_v sum_d sqrt(eps + (s*Dx)^2 + (s*Dy)^2 + (s*Dz)^2)``, where ``D*`` is the difference
    to the +x/+y/+z neighbour of channel ``d``, an empty neighbour reads as zero (as in svox2's
    ``tv_grad_sparse_kernel``), a neighbour beyond the grid's last vertex reads as the voxel itself,
    and ``s = R / 256`` normalises by the resolution as svox2 does. A sum over the sampled voxels,
    not a mean: svox2's ``tv_grad_sparse_kernel`` adds ``lambda * dTV/dv`` for every sampled voxel,
    so each sampled voxel feels the full weight whatever the sample's size (a mean would divide it
    by the thousands of voxels sampled per step).
    """
    resolution = links.shape[0]
    flat_links = links.reshape(-1)
    x = voxel_ids // (resolution * resolution)
    y = (voxel_ids // resolution) % resolution
    z = voxel_ids % resolution
    # One gather for the voxel and its three neighbours: rows [centre, +x, +y, +z].
    lin = [voxel_ids]
    for axis, coord in enumerate((x, y, z)):
        inside = coord + 1 < resolution
        lin.append(torch.where(inside, voxel_ids + resolution ** (2 - axis), voxel_ids))
    idx = flat_links[torch.stack(lin, 1)].to(torch.int64)
    gathered = F.embedding(idx.clamp(min=0), values) * (idx >= 0).to(values.dtype)[..., None]
    diff = (gathered[:, 1:] - gathered[:, :1]) * resolution_scale
    squared = (diff * diff).sum(1)
    return torch.sqrt(squared + eps).sum()


class SparseVoxelGrid(nn.Module):
    """Index grid + compact density/SH arrays over an axis-aligned box, and the operations on it."""

    links: Tensor
    cell_occupied: Tensor
    max_weight: Tensor

    def __init__(self, aabb: Tensor, resolution: int, init_density: float = 0.1) -> None:
        super().__init__()
        self.register_buffer("aabb", aabb.detach().clone().float(), persistent=True)
        self.density = nn.Parameter(torch.empty(0, 1))
        self.sh = nn.Parameter(torch.empty(0, SH_CHANNELS))
        self.register_buffer("links", torch.empty(0, 0, 0, dtype=torch.int32), persistent=True)
        # Derived, never stored: which cells have any occupied corner (empty-space skipping), and
        # the largest rendering weight each voxel has received since the last stage change.
        self.register_buffer("cell_occupied", torch.empty(0, 0, 0, dtype=torch.bool), persistent=False)
        self.register_buffer("max_weight", torch.empty(0), persistent=False)
        occupancy = torch.ones((resolution,) * 3, dtype=torch.bool, device=self.aabb.device)
        count = resolution**3
        self.set_grid(
            occupancy,
            torch.full((count, 1), init_density, device=self.aabb.device),
            torch.zeros(count, SH_CHANNELS, device=self.aabb.device),
        )

    # ----------------------------------------------------------------------------------------
    # Structure
    @property
    def resolution(self) -> int:
        return int(self.links.shape[0])

    @property
    def num_occupied(self) -> int:
        return int(self.density.shape[0])

    @property
    def voxel_size(self) -> float:
        return float((self.aabb[1] - self.aabb[0]).min()) / self.resolution

    def set_grid(self, occupancy: Tensor, density: Tensor, sh: Tensor) -> None:
        """Replace the grid: ``density``/``sh`` hold the occupied vertices in linear order.

        The parameters become new ``nn.Parameter`` objects: optimizers must be told (see
        ``PlenoxelsModel.refresh_optimizers``)."""
        device = self.aabb.device
        self.links = links_from_occupancy(occupancy.to(device))
        self.density = nn.Parameter(density.detach().to(device=device, dtype=torch.float32).reshape(-1, 1).contiguous())
        self.sh = nn.Parameter(sh.detach().to(device=device, dtype=torch.float32).reshape(-1, SH_CHANNELS).contiguous())
        if self.density.shape[0] != int(occupancy.sum()) or self.sh.shape[0] != self.density.shape[0]:
            raise ValueError("parameter count does not match the occupancy")
        self._refresh_derived()

    def _refresh_derived(self) -> None:
        occupancy = (self.links >= 0).float()[None, None]
        # A cell is worth sampling when any of its 8 corners holds parameters.
        self.cell_occupied = F.max_pool3d(occupancy, kernel_size=2, stride=1)[0, 0] > 0
        self.max_weight = torch.zeros(self.num_occupied, device=self.aabb.device)

    def occupancy(self) -> Tensor:
        return self.links >= 0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint may hold a grid of another size (after upsampling/pruning): resize first.
        links = state_dict.get(prefix + "links")
        density = state_dict.get(prefix + "density")
        if links is not None and density is not None and (
            tuple(links.shape) != tuple(self.links.shape) or tuple(density.shape) != tuple(self.density.shape)
        ):
            occupancy = links >= 0
            self.set_grid(occupancy, state_dict[prefix + "density"], state_dict[prefix + "sh"])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_derived()

    # ----------------------------------------------------------------------------------------
    # Queries
    def world_to_grid(self, positions: Tensor) -> Tensor:
        size = self.aabb[1] - self.aabb[0]
        return (positions - self.aabb[0]) / size * self.resolution - 0.5

    def sample_occupied(self, grid_coords: Tensor) -> Tensor:
        """Whether each sample's cell has any occupied corner (cheap: one gather)."""
        lower, _ = cell_corners(grid_coords, self.resolution)
        r = self.resolution - 1
        return self.cell_occupied.reshape(-1)[(lower[:, 0] * r + lower[:, 1]) * r + lower[:, 2]]

    def query_density(self, grid_coords: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """relu(trilinear density) (M,), plus the corner indices/weights for reuse."""
        indices, weights = corner_indices_and_weights(self.links, grid_coords)
        sigma = torch.relu(trilinear(self.density, indices, weights)[:, 0])
        return sigma, indices, weights

    def query_rgb(self, indices: Tensor, weights: Tensor, directions: Tensor) -> Tensor:
        return sh_to_rgb(trilinear(self.sh, indices, weights), sh_basis(directions))

    @torch.no_grad()
    def raw_values_at(self, grid_coords: Tensor, chunk: int = 1 << 18) -> Tuple[Tensor, Tensor]:
        """Trilinear raw (pre-activation) density (M, 1) and SH (M, 27) at grid coordinates."""
        densities, shs = [], []
        for start in range(0, grid_coords.shape[0], chunk):
            indices, weights = corner_indices_and_weights(self.links, grid_coords[start : start + chunk])
            densities.append(trilinear(self.density, indices, weights))
            shs.append(trilinear(self.sh, indices, weights))
        if not densities:
            empty = grid_coords.new_zeros(0, 1)
            return empty, grid_coords.new_zeros(0, SH_CHANNELS)
        return torch.cat(densities), torch.cat(shs)

    # ----------------------------------------------------------------------------------------
    # Coarse-to-fine
    @torch.no_grad()
    def record_weights(self, indices: Tensor, weights: Tensor, sample_weights: Tensor) -> None:
        """Running max over training rays of the rendering weight each voxel contributed to."""
        contributes = (weights > 0) & (sample_weights[:, None] > 0)
        values = sample_weights[:, None].expand_as(indices)[contributes]
        self.max_weight.scatter_reduce_(0, indices[contributes], values, reduce="amax")

    @torch.no_grad()
    def keep_mask(self, weight_threshold: float, density_threshold: Optional[float]) -> Tensor:
        """Voxels (compact order) that survive pruning: max weight >= threshold and, when a density
        threshold is given, raw density > it."""
        keep = self.max_weight >= weight_threshold
        if density_threshold is not None:
            keep &= self.density[:, 0] > density_threshold
        return keep

    @torch.no_grad()
    def resample(self, new_resolution: int, keep: Tensor, dilation: int = 2, chunk: int = 1 << 18) -> Dict[str, float]:
        """Prune to the ``keep`` voxels, resample the field at ``new_resolution`` (the same
        resolution prunes only) and grow the result by ``dilation`` new vertices. New vertices take the old field's
        trilinear value at their position; a new vertex is allocated where its nearest old vertex
        survives. Returns a summary."""
        old_resolution, before = self.resolution, self.num_occupied
        device = self.aabb.device
        survivors = torch.zeros(old_resolution**3, dtype=torch.bool, device=device)
        survivors[(self.links.reshape(-1) >= 0).nonzero()[:, 0][keep]] = True
        survivors = survivors.view((old_resolution,) * 3)

        # New vertex j is at old continuous coordinate (j + 0.5) * R_old / R_new - 0.5; it is
        # allocated when its nearest old vertex survives, then the mask is dilated at the new
        # resolution (svox2 dilates the resampled mask).
        scale = old_resolution / new_resolution
        axis = (torch.arange(new_resolution, device=device, dtype=torch.float32) + 0.5) * scale - 0.5
        nearest = axis.round().clamp(0, old_resolution - 1).long()
        new_occupancy = dilate(survivors[nearest][:, nearest][:, :, nearest], dilation)
        new_ids = new_occupancy.reshape(-1).nonzero()[:, 0]
        r2 = new_resolution * new_resolution
        coords = torch.stack([axis[new_ids // r2], axis[(new_ids // new_resolution) % new_resolution], axis[new_ids % new_resolution]], -1)
        density, sh = self.raw_values_at(coords, chunk)
        self.set_grid(new_occupancy, density, sh)
        return {"resolution": float(new_resolution), "occupied_before": float(before), "occupied_after": float(self.num_occupied)}
