"""Spatial index and occupancy grid: bounded work per sample.

:class:`KernelGridIndex` is a uniform grid over the scene box; each cell lists (ragged, optionally
capped at ``max_kernels_per_cell``) the kernels whose support ellipsoid touches the cell. A sample
then looks at the kernels of its own cell instead of all K kernels. The table is rebuilt after
every allocation step (and every few steps, as kernels move).

:class:`OccupancyGrid` marks cells whose density is worth sampling; samples in other cells are
skipped (empty-space skipping). Cells that no kernel touches are empty by construction.
"""

from __future__ import annotations

import math
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


# Up to this many cells (128³) the index also keeps a dense cell -> row table (8 bytes a cell), so
# a sample finds its cell by one lookup; finer grids binary-search the sorted touched cells.
DENSE_LOOKUP_CELLS = 1 << 21

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
    """A grid of cells over the box, each listing the kernels whose support overlaps it, stored
    sparsely in CSR form: ``cell_keys`` (the touched cells' linear ids, sorted), ``starts`` and
    ``counts`` per touched cell, ``kernel_ids`` sorted by cell. Memory is proportional to the
    (kernel, cell) pairs, not to the cells, and a sample costs as many candidates as its own cell
    lists (its cell's row is found in a dense table up to ``DENSE_LOOKUP_CELLS`` cells, by binary
    search in ``cell_keys`` beyond).

    The grid is ``resolution`` cells a side, subdivided ``subdivision`` times per axis. With
    ``cell_size_in_radii`` set, every build chooses the subdivision so that a cell's edge stays
    near that many typical support radii (the median of the kernels' largest semi-axis), at most
    ``max_subdivision``: as splits shrink the kernels the cells shrink with them, and the candidates
    per sample stay near the kernels that actually contain it (on a fixed grid they grow with K).
    ``covered_cells`` always answers on the ``resolution`` grid (the occupancy grid's).

    ``max_kernels_per_cell`` (None or 0: no cap, the index is exact) bounds the work per sample.
    Where more kernels touch a cell, it keeps the ones that can contribute most to a sample in the
    cell: ranked by ``importance_k · exp(-d²/2)``, d the distance from the kernel's centre to the
    cell's nearest point in the kernel's own bandwidths (``support_in_bandwidths`` converts the
    support radii given to :meth:`build`). That is the largest weight the kernel gives any point
    of the cell, so with ``importance`` = amplitude × feature norm (what the field passes) it
    bounds how much dropping the kernel can change the fused feature there. The earlier rule,
    nearest to the cell centre in units of each kernel's own radius, ranked big kernels first and
    dropped the small children that splits create. ``truncated_cells`` counts the cells where the
    cap dropped kernels, ``touched_cells`` the cells any kernel touches (at the index's resolution).
    """

    def __init__(
        self, aabb: Tensor, resolution: int, max_kernels_per_cell: Optional[int] = None, support_in_bandwidths: float = 2.5,
        cell_size_in_radii: Optional[float] = None, max_subdivision: int = 8,
    ) -> None:
        super().__init__()
        if max_kernels_per_cell is not None and max_kernels_per_cell < 0:
            raise ValueError(f"max_kernels_per_cell must be None, 0 (no cap) or positive, got {max_kernels_per_cell}")
        if cell_size_in_radii is not None and cell_size_in_radii <= 0:
            raise ValueError(f"cell_size_in_radii must be None or positive, got {cell_size_in_radii}")
        if max_subdivision < 1:
            raise ValueError(f"max_subdivision must be at least 1, got {max_subdivision}")
        self.resolution = resolution
        self.max_kernels_per_cell = max_kernels_per_cell or None
        self.support_in_bandwidths = support_in_bandwidths
        self.cell_size_in_radii = cell_size_in_radii
        self.max_subdivision = max_subdivision
        self.subdivision = 1
        self.register_buffer("aabb", aabb.clone().float(), persistent=False)
        self.register_buffer("kernel_ids", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("cell_keys", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("starts", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("counts", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("row_of_cell", torch.zeros(0, dtype=torch.long), persistent=False)  # -1: untouched
        self.num_kernels = 0
        self.truncated_cells = 0
        self.touched_cells = 0
        self.max_cell_count = 0  # before any cap

    @property
    def cell_resolution(self) -> int:
        """Cells per axis of the index (``resolution`` × ``subdivision``)."""
        return self.resolution * self.subdivision

    def choose_subdivision(self, support_radii: Tensor) -> int:
        """The largest subdivision (at most ``max_subdivision``) whose cell edge is still at least
        ``cell_size_in_radii`` typical support radii; 1 without ``cell_size_in_radii``."""
        if self.cell_size_in_radii is None or support_radii.shape[0] == 0:
            return 1
        coarse_cell = float(((self.aabb[1] - self.aabb[0]) / self.resolution).min())
        typical_radius = float(support_radii.max(dim=-1).values.median())
        if typical_radius <= 0:
            return self.max_subdivision
        return int(min(self.max_subdivision, max(1, math.floor(coarse_cell / (self.cell_size_in_radii * typical_radius)))))

    @torch.no_grad()
    def build(self, centers: Tensor, support_radii: Tensor, importance: Optional[Tensor] = None) -> None:
        """Rebuild from kernel centres and support semi-axes [K, 3]; ``importance`` [K] (≥ 0, optional)
        weights the ranking in over-full cells (see the class doc)."""
        centers = centers.detach().to(self.aabb)
        support_radii = support_radii.detach().to(self.aabb)
        self.subdivision = self.choose_subdivision(support_radii)
        kernel_ids, cell_ids, nearest2 = kernel_cell_pairs(centers, support_radii, self.aabb, self.cell_resolution)
        cap = self.max_kernels_per_cell
        self.num_kernels = centers.shape[0]
        order = torch.argsort(cell_ids, stable=True)
        cell_keys, counts = torch.unique_consecutive(cell_ids[order], return_counts=True)
        self.touched_cells = int(cell_keys.numel())
        self.max_cell_count = int(counts.max()) if counts.numel() else 0
        self.truncated_cells = 0
        overflow = cap is not None and self.max_cell_count > cap
        if overflow:
            # The largest peak weight first within each cell: sort by -key, then (stably) by cell.
            key = torch.exp(-0.5 * self.support_in_bandwidths**2 * nearest2)
            if importance is not None:
                key = key * importance.detach().to(key)[kernel_ids]
            order = torch.argsort(-key, stable=True)
            order = order[torch.argsort(cell_ids[order], stable=True)]
        kernel_ids = kernel_ids[order]
        if overflow:
            starts = torch.cumsum(counts, 0) - counts
            cell_of_pair = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
            slot = torch.arange(kernel_ids.numel(), device=centers.device) - starts[cell_of_pair]  # rank within its cell
            kernel_ids = kernel_ids[slot < cap]
            self.truncated_cells = int((counts > cap).sum())
            counts = counts.clamp(max=cap)
        # CSR layout: the kernels of touched cell i (linear id cell_keys[i]) are
        # kernel_ids[starts[i] : starts[i] + counts[i]].
        self.kernel_ids = kernel_ids
        self.cell_keys = cell_keys
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts
        if self.cell_resolution**3 <= DENSE_LOOKUP_CELLS:
            self.row_of_cell = torch.full((self.cell_resolution**3,), -1, dtype=torch.long, device=centers.device)
            self.row_of_cell[cell_keys] = torch.arange(cell_keys.numel(), device=centers.device)
        else:
            self.row_of_cell = self.row_of_cell[:0]

    def truncated_fraction(self) -> float:
        """Truncated cells over touched cells (0 when none is touched)."""
        return self.truncated_cells / self.touched_cells if self.touched_cells else 0.0

    def _touched(self, cells: Tensor) -> Tuple[Tensor, Tensor]:
        """For linear cell ids at the index's resolution: the row in ``cell_keys`` and whether the
        cell is touched at all (untouched cells list no kernel)."""
        if self.cell_keys.numel() == 0:
            return torch.zeros_like(cells), torch.zeros_like(cells, dtype=torch.bool)
        if self.row_of_cell.numel():
            rows = self.row_of_cell[cells]
            return rows.clamp(min=0), rows >= 0
        rows = torch.searchsorted(self.cell_keys, cells).clamp(max=self.cell_keys.numel() - 1)
        return rows, self.cell_keys[rows] == cells

    def kernels_in_cell(self, cell: int) -> Tensor:
        """The kernels listed for linear cell id ``cell`` (at the index's resolution)."""
        rows, touched = self._touched(torch.tensor([cell], device=self.cell_keys.device))
        if not bool(touched[0]):
            return self.kernel_ids[:0]
        start = int(self.starts[rows[0]])
        return self.kernel_ids[start : start + int(self.counts[rows[0]])]

    def rows(self, positions: Tensor) -> Tensor:
        """Each of positions [N, 3]: the row of its cell in the lists (``starts``, ``counts``), -1
        where its cell lists no kernel."""
        if self.cell_keys.numel() == 0:  # no kernel touches any cell
            return torch.full((positions.shape[0],), -1, dtype=torch.long, device=positions.device)
        coords, _ = cell_coordinates(positions, self.aabb, self.cell_resolution)
        rows, touched = self._touched(linear_cell_index(coords, self.cell_resolution))
        return torch.where(touched, rows, torch.full_like(rows, -1))

    def pairs(self, positions: Tensor) -> Tuple[Tensor, Tensor]:
        """Every (sample, candidate kernel) pair for positions [N, 3]: two id tensors [P].

        Ragged, not padded: a sample costs as many pairs as its cell lists kernels."""
        if self.cell_keys.numel() == 0:  # no kernel touches any cell
            empty = torch.zeros(0, dtype=torch.long, device=positions.device)
            return empty, empty
        rows = self.rows(positions)
        touched = rows >= 0
        rows = rows.clamp(min=0)
        counts = torch.where(touched, self.counts[rows], 0)
        sample_ids = torch.repeat_interleave(torch.arange(positions.shape[0], device=positions.device), counts)
        first_pair = torch.cumsum(counts, 0) - counts
        slot = torch.arange(sample_ids.numel(), device=positions.device) - first_pair[sample_ids]
        kernel_ids = self.kernel_ids[self.starts[rows][sample_ids] + slot]
        return sample_ids, kernel_ids

    def covered_cells(self) -> Tensor:
        """Bool [resolution³]: cells of the ``resolution`` grid that at least one kernel touches."""
        covered = torch.zeros(self.resolution**3, dtype=torch.bool, device=self.cell_keys.device)
        keys = self.cell_keys
        if self.subdivision > 1 and keys.numel():
            fine, m = self.cell_resolution, self.subdivision
            coords = torch.stack([keys // (fine * fine), (keys // fine) % fine, keys % fine], dim=-1) // m
            keys = linear_cell_index(coords, self.resolution)
        covered[keys] = True
        return covered


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
