"""Spatial index and occupancy grid: bounded work per sample.

:class:`KernelGridIndex` is a uniform grid over the scene box; each cell lists (ragged, optionally
capped at ``max_kernels_per_cell``) the kernels whose support ellipsoid touches the cell. A sample
then looks at the kernels of its own cell instead of all K kernels. The table is rebuilt after
every allocation step (and every few steps, as kernels move).

:class:`OccupancyGrid` marks cells whose density is worth sampling; samples in other cells are
skipped (empty-space skipping). Cells that no kernel touches are empty by construction.
"""

from __future__ import annotations

from typing import Optional, Tuple

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


# (kernel, cell) candidates enumerated at once by ``kernel_cell_pairs``: bounds its working
# memory (~100 bytes a candidate) whatever K and the kernels' sizes are.
DEFAULT_PAIR_CHUNK = 1 << 20


@torch.no_grad()
def kernel_cell_pairs(
    centers: Tensor, support_radii: Tensor, aabb: Tensor, resolution: int, chunk_pairs: int = DEFAULT_PAIR_CHUNK
) -> Tuple[Tensor, Tensor, Tensor]:
    """All (kernel, cell) pairs where the kernel's axis-aligned support ellipsoid meets the cell.

    ``support_radii`` [K, 3] are the ellipsoid's semi-axes. The test is exact: the point of an
    axis-aligned box nearest to the centre in the ellipsoid's (diagonal) metric is the per-axis
    clamp of the centre. Returns ``(kernel_ids, cell_ids, nearest_distance²)``, the last in units
    of the support radii (≤ 1 for every pair returned).

    Memory is proportional to the pairs: each kernel enumerates only the cells of its own bounding
    box (its id repeated box-size times, the offset inside the box recovered by div/mod by the box's
    extents), ``chunk_pairs`` box cells at a time, so one large kernel no longer sizes the work of
    every other one (a dense [K, P] mask with P the largest box was ~30 GB at 200k kernels).
    """
    device = centers.device
    empty = torch.zeros(0, dtype=torch.long, device=device)
    if centers.shape[0] == 0:
        return empty, empty, torch.zeros(0, device=device, dtype=centers.dtype)
    cell_size = (aabb[1] - aabb[0]) / resolution
    lo = ((centers - support_radii - aabb[0]) / cell_size).floor().long().clamp(0, resolution - 1)
    hi = ((centers + support_radii - aabb[0]) / cell_size).floor().long().clamp(0, resolution - 1)
    extent = hi - lo + 1
    box_cells = extent.prod(dim=-1)
    # Chunk boundaries: kernels whose boxes together hold about chunk_pairs cells (a kernel with a
    # larger box is a chunk of its own).
    box_end = torch.cumsum(box_cells, 0)
    total = int(box_end[-1])
    bounds: list = []
    if total > chunk_pairs:
        cuts = torch.arange(chunk_pairs, total, chunk_pairs, device=device)
        bounds = torch.unique(torch.searchsorted(box_end, cuts, right=True).clamp(max=centers.shape[0])).tolist()
    kernel_parts, cell_parts, distance_parts = [], [], []
    for first, last in zip([0] + bounds, bounds + [centers.shape[0]]):
        if last <= first:
            continue
        kernels = torch.arange(first, last, device=device)
        counts = box_cells[first:last]
        kernel_ids = torch.repeat_interleave(kernels, counts)
        first_slot = torch.cumsum(counts, 0) - counts
        slot = torch.arange(kernel_ids.numel(), device=device) - first_slot[kernel_ids - first]
        ny, nz = extent[kernel_ids, 1], extent[kernel_ids, 2]
        offsets = torch.stack([slot // (ny * nz), (slot // nz) % ny, slot % nz], dim=-1)
        cells = lo[kernel_ids] + offsets
        cell_lo = aabb[0] + cells.to(centers.dtype) * cell_size
        centre = centers[kernel_ids]
        nearest = torch.minimum(torch.maximum(centre, cell_lo), cell_lo + cell_size)
        distance2 = ((nearest - centre) / support_radii[kernel_ids]).square().sum(-1)
        touching = torch.nonzero(distance2 <= 1.0).flatten()
        kernel_parts.append(kernel_ids[touching])
        cell_parts.append(linear_cell_index(cells[touching], resolution))
        distance_parts.append(distance2[touching])
    return torch.cat(kernel_parts), torch.cat(cell_parts), torch.cat(distance_parts)


class KernelGridIndex(nn.Module):
    """Uniform grid of cells, each listing the kernels whose support overlaps it, in CSR form
    (``kernel_ids`` sorted by cell, ``starts``, ``counts``): memory is proportional to the
    (kernel, cell) pairs, and a sample costs as many candidates as its own cell lists.

    ``max_kernels_per_cell`` (None or 0: no cap, the index is exact) bounds the work per sample.
    Where more kernels touch a cell, it keeps the ones that can contribute most to a sample in the
    cell: ranked by ``importance_k · exp(-d²/2)``, d the distance from the kernel's centre to the
    cell's nearest point in the kernel's own bandwidths (``support_in_bandwidths`` converts the
    support radii given to :meth:`build`). That is the largest weight the kernel gives any point
    of the cell, so with ``importance`` = amplitude × feature norm (what the field passes) it
    bounds how much dropping the kernel can change the fused feature there. The earlier rule,
    nearest to the cell centre in units of each kernel's own radius, ranked big kernels first and
    dropped the small children that splits create. ``truncated_cells`` counts the cells where the
    cap dropped kernels, ``touched_cells`` the cells any kernel touches.
    """

    def __init__(
        self, aabb: Tensor, resolution: int, max_kernels_per_cell: Optional[int] = None, support_in_bandwidths: float = 2.5
    ) -> None:
        super().__init__()
        if max_kernels_per_cell is not None and max_kernels_per_cell < 0:
            raise ValueError(f"max_kernels_per_cell must be None, 0 (no cap) or positive, got {max_kernels_per_cell}")
        self.resolution = resolution
        self.max_kernels_per_cell = max_kernels_per_cell or None
        self.support_in_bandwidths = support_in_bandwidths
        self.register_buffer("aabb", aabb.clone().float(), persistent=False)
        self.register_buffer("kernel_ids", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("starts", torch.zeros(resolution**3, dtype=torch.long), persistent=False)
        self.register_buffer("counts", torch.zeros(resolution**3, dtype=torch.long), persistent=False)
        self.num_kernels = 0
        self.truncated_cells = 0
        self.touched_cells = 0
        self.max_cell_count = 0  # before any cap

    @torch.no_grad()
    def build(self, centers: Tensor, support_radii: Tensor, importance: Optional[Tensor] = None) -> None:
        """Rebuild from kernel centres and support semi-axes [K, 3]; ``importance`` [K] (≥ 0, optional)
        weights the ranking in over-full cells (see the class doc)."""
        centers = centers.detach().to(self.aabb)
        support_radii = support_radii.detach().to(self.aabb)
        num_cells = self.resolution**3
        kernel_ids, cell_ids, nearest2 = kernel_cell_pairs(centers, support_radii, self.aabb, self.resolution)
        counts = torch.bincount(cell_ids, minlength=num_cells)
        cap = self.max_kernels_per_cell
        self.num_kernels = centers.shape[0]
        self.touched_cells = int((counts > 0).sum())
        self.max_cell_count = int(counts.max()) if counts.numel() else 0
        if cap is not None and self.max_cell_count > cap:
            # The largest peak weight first within each cell: sort by -key, then (stably) by cell.
            key = torch.exp(-0.5 * self.support_in_bandwidths**2 * nearest2)
            if importance is not None:
                key = key * importance.detach().to(key)[kernel_ids]
            order = torch.argsort(-key, stable=True)
            order = order[torch.argsort(cell_ids[order], stable=True)]
            kernel_ids, cell_ids = kernel_ids[order], cell_ids[order]
            starts = torch.cumsum(counts, 0) - counts
            slot = torch.arange(cell_ids.numel(), device=centers.device) - starts[cell_ids]  # rank within its cell
            kernel_ids = kernel_ids[slot < cap]
            self.truncated_cells = int((counts > cap).sum())
            counts = counts.clamp(max=cap)
        else:
            kernel_ids = kernel_ids[torch.argsort(cell_ids, stable=True)]
            self.truncated_cells = 0
        # CSR layout: the kernels of cell c are kernel_ids[starts[c] : starts[c] + counts[c]].
        self.kernel_ids = kernel_ids
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts

    def truncated_fraction(self) -> float:
        """Truncated cells over touched cells (0 when none is touched)."""
        return self.truncated_cells / self.touched_cells if self.touched_cells else 0.0

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
