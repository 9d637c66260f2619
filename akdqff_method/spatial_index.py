"""Spatial index and occupancy grid: bounded work per sample.

:class:`KernelGridIndex` is a uniform grid over the scene box; each cell lists (padded to the
at most ``max_kernels_per_cell``) the kernels whose support ellipsoid touches the
cell. A sample then looks at the kernels of its own cell instead of all K kernels. The table is rebuilt
after every allocation step (and every few steps, as kernels move).

:class:`OccupancyGrid` marks cells whose density is worth sampling; samples in other cells are
skipped (empty-space skipping). Cells that no kernel touches are empty by construction.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn


def cell_coordinates(positions: Tensor, aabb: Tensor, resolution: int) -> Tuple[Tensor, Tensor]:
    """Integer cell coordinates [..., 3] of ``positions`` and a mask of positions inside the box."""
    normalized = (positions - aabb[0]) / (aabb[1] - aabb[0])
    inside = ((normalized >= 0) & (normalized <= 1)).all(dim=-1)
    coords = (normalized * resolution).floor().long().clamp(0, resolution - 1)
    return coords, inside


def linear_cell_index(coords: Tensor, resolution: int) -> Tensor:
    return (coords[..., 0] * resolution + coords[..., 1]) * resolution + coords[..., 2]


@torch.no_grad()
def kernel_cell_pairs(
    centers: Tensor, support_radii: Tensor, aabb: Tensor, resolution: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """All (kernel, cell) pairs where the kernel's axis-aligned support ellipsoid meets the cell.

    ``support_radii`` [K, 3] are the ellipsoid's semi-axes. The test is exact: the point of an
    axis-aligned box nearest to the centre in the ellipsoid's (diagonal) metric is the per-axis
    clamp of the centre. Returns ``(kernel_ids, cell_ids, normalized_distance²)``.
    """
    device = centers.device
    cell_size = (aabb[1] - aabb[0]) / resolution
    lo = ((centers - support_radii - aabb[0]) / cell_size).floor().long().clamp(0, resolution - 1)
    hi = ((centers + support_radii - aabb[0]) / cell_size).floor().long().clamp(0, resolution - 1)
    extent = hi - lo + 1
    if centers.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty, torch.zeros(0, device=device)
    max_extent = extent.max(dim=0).values.tolist()
    axes = [torch.arange(int(e), device=device) for e in max_extent]
    offsets = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # [P, 3]
    valid = (offsets[None] < extent[:, None]).all(dim=-1)  # [K, P]
    kernel_ids, offset_ids = torch.nonzero(valid, as_tuple=True)
    cells = lo[kernel_ids] + offsets[offset_ids]
    cell_lo = aabb[0] + cells.to(centers.dtype) * cell_size
    nearest = torch.minimum(torch.maximum(centers[kernel_ids], cell_lo), cell_lo + cell_size)
    distance2 = ((nearest - centers[kernel_ids]) / support_radii[kernel_ids]).square().sum(-1)
    touching = distance2 <= 1.0
    kernel_ids, cells = kernel_ids[touching], cells[touching]
    cell_centres = aabb[0] + (cells.to(centers.dtype) + 0.5) * cell_size
    centre_distance2 = ((cell_centres - centers[kernel_ids]) / support_radii[kernel_ids]).square().sum(-1)
    return kernel_ids, linear_cell_index(cells, resolution), centre_distance2


class KernelGridIndex(nn.Module):
    """Uniform grid of cells, each listing the kernels that overlap it (CSR: ``kernel_ids``,
    ``starts``, ``counts``). When more than ``max_kernels_per_cell`` kernels touch a cell, the ones
    nearest (in their own metric) to the cell centre are kept and ``truncated_cells`` counts the
    cells where that happened.
    """

    def __init__(self, aabb: Tensor, resolution: int, max_kernels_per_cell: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.max_kernels_per_cell = max_kernels_per_cell
        self.register_buffer("aabb", aabb.clone().float(), persistent=False)
        self.register_buffer("kernel_ids", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("starts", torch.zeros(resolution**3, dtype=torch.long), persistent=False)
        self.register_buffer("counts", torch.zeros(resolution**3, dtype=torch.long), persistent=False)
        self.num_kernels = 0
        self.truncated_cells = 0

    @torch.no_grad()
    def build(self, centers: Tensor, support_radii: Tensor) -> None:
        centers = centers.detach().to(self.aabb)
        support_radii = support_radii.detach().to(self.aabb)
        num_kernels = centers.shape[0]
        num_cells = self.resolution**3
        kernel_ids, cell_ids, rank_key = kernel_cell_pairs(centers, support_radii, self.aabb, self.resolution)
        counts = torch.bincount(cell_ids, minlength=num_cells)
        if int(counts.max()) > self.max_kernels_per_cell:
            # Over-full cells keep their nearest kernels: sort by distance, then (stably) by cell.
            order = torch.argsort(rank_key, stable=True)
            order = order[torch.argsort(cell_ids[order], stable=True)]
        else:
            order = torch.argsort(cell_ids)
        kernel_ids, cell_ids = kernel_ids[order], cell_ids[order]
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(cell_ids.numel(), device=centers.device) - starts[cell_ids]  # rank within its cell
        width = self.max_kernels_per_cell
        keep = slot < width
        kept_counts = counts.clamp(max=width)
        # CSR layout: the kernels of cell c are kernel_ids[starts[c] : starts[c] + counts[c]].
        self.kernel_ids = kernel_ids[keep]
        self.counts = kept_counts
        self.starts = torch.cumsum(kept_counts, 0) - kept_counts
        self.num_kernels = num_kernels
        self.truncated_cells = int((counts > width).sum())

    def pairs(self, positions: Tensor) -> Tuple[Tensor, Tensor]:
        """Every (sample, candidate kernel) pair for positions [N, 3]: two id tensors [P].

        Ragged, not padded: a sample costs as many pairs as its cell lists kernels."""
        coords, _ = cell_coordinates(positions, self.aabb, self.resolution)
        cells = linear_cell_index(coords, self.resolution)
        counts = self.counts[cells]
        sample_ids = torch.repeat_interleave(torch.arange(positions.shape[0], device=positions.device), counts)
        first_pair = torch.cumsum(counts, 0) - counts
        slot = torch.arange(sample_ids.numel(), device=positions.device) - first_pair[sample_ids]
        kernel_ids = self.kernel_ids[self.starts[cells][sample_ids] + slot]
        return sample_ids, kernel_ids

    def covered_cells(self) -> Tensor:
        """Bool [R³]: cells that at least one kernel touches."""
        return self.counts > 0


def brute_force_neighbours(positions: Tensor, centers: Tensor, support_radii: Tensor) -> Tensor:
    """Bool [N, K]: kernel k's support ellipsoid contains position n (the reference for tests)."""
    distance2 = ((positions[:, None, :] - centers[None]) / support_radii[None]).square().sum(-1)
    return distance2 < 1.0


class OccupancyGrid(nn.Module):
    """Which cells are worth sampling: a running max of density, thresholded (empty-space skipping)."""

    def __init__(self, aabb: Tensor, resolution: int, decay: float = 0.9) -> None:
        super().__init__()
        self.resolution = resolution
        self.decay = decay
        self.register_buffer("aabb", aabb.clone().float(), persistent=False)
        self.register_buffer("density", torch.zeros(resolution**3), persistent=False)
        # A running mean of point densities, for the transmittance estimate (the max above would
        # make a cell the surface merely grazes look opaque).
        self.register_buffer("mean_density", torch.zeros(resolution**3), persistent=False)
        # Persistent: checkpoints (ns-eval, ns-render) must skip the same cells the trained model did.
        self.register_buffer("occupied", torch.ones(resolution**3, dtype=torch.bool))

    def cell_centres(self, cell_ids: Tensor, jitter: bool, generator=None) -> Tensor:
        r = self.resolution
        coords = torch.stack([cell_ids // (r * r), (cell_ids // r) % r, cell_ids % r], dim=-1).to(self.aabb)
        offset = (
            torch.rand(coords.shape, device=coords.device, generator=generator) if jitter else torch.full_like(coords, 0.5)
        )
        return self.aabb[0] + (coords + offset) * (self.aabb[1] - self.aabb[0]) / r

    @torch.no_grad()
    def update(self, cell_ids: Tensor, densities: Tensor, covered: Tensor, threshold: float) -> None:
        """Fold new density measurements for ``cell_ids`` in; cells outside ``covered`` are emptied."""
        self.density.mul_(self.decay)
        self.density.index_reduce_(0, cell_ids, densities, reduce="amax")
        self.density.masked_fill_(~covered, 0.0)
        self.mean_density[cell_ids] = 0.5 * (self.mean_density[cell_ids] + densities)
        self.mean_density.masked_fill_(~covered, 0.0)
        # As nerfacc: never stricter than the mean density of the covered cells, so that a field
        # whose density is still low everywhere (early training) keeps its densest cells sampled.
        if bool(covered.any()):
            threshold = min(threshold, float(self.density[covered].mean()))
        self.occupied = self.density > threshold

    def lookup(self, positions: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """For positions [...]: inside the box and in an occupied cell (bool), the cell id, and the
        cell's mean-density estimate (0 where unoccupied)."""
        coords, inside = cell_coordinates(positions, self.aabb, self.resolution)
        cells = linear_cell_index(coords, self.resolution)
        occupied = inside & self.occupied[cells]
        return occupied, cells, torch.where(occupied, self.mean_density[cells], torch.zeros_like(self.mean_density[cells]))

    def occupied_fraction(self) -> float:
        return float(self.occupied.float().mean())
