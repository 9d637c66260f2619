"""Where the blocks are, which images train them, and how their renders are mixed.

Block-NeRF (Tancik et al., CVPR 2022) splits a scene into blocks, each a NeRF trained only on the
images whose camera lies within the block's radius; neighbouring blocks overlap by 50%. A view is
rendered by the blocks near its camera, minus those whose visibility network says they saw little
of it, blended with inverse-distance weights ``w_i ∝ distance(camera, centre_i)^-p``.

Everything here is plain tensor code on the inputs' device, so it can be tested on constructed
camera layouts without a model.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def farthest_point_init(positions: Tensor, num_blocks: int) -> Tensor:
    """``num_blocks`` well-spread positions, deterministically: the point farthest from the mean, then
    repeatedly the point farthest from those chosen."""
    chosen = [int(torch.argmax((positions - positions.mean(0)).norm(dim=-1)))]
    nearest = (positions - positions[chosen[0]]).norm(dim=-1)
    for _ in range(num_blocks - 1):
        chosen.append(int(torch.argmax(nearest)))
        nearest = torch.minimum(nearest, (positions - positions[chosen[-1]]).norm(dim=-1))
    return positions[chosen].clone()


def place_block_centers(camera_positions: Tensor, num_blocks: int, iterations: int = 25) -> Tensor:
    """Block centres over the region the cameras cover: k-means of the camera positions, seeded by
    farthest-point sampling (so the layout is a deterministic function of the cameras)."""
    if camera_positions.shape[0] < num_blocks:
        raise ValueError(
            f"Block-NeRF needs at least one training camera per block: {camera_positions.shape[0]} cameras, "
            f"{num_blocks} blocks"
        )
    positions = camera_positions.float()
    centers = farthest_point_init(positions, num_blocks)
    for _ in range(iterations):
        cluster = torch.cdist(positions, centers).argmin(dim=1)
        sums = torch.zeros_like(centers).index_add_(0, cluster, positions)
        counts = torch.bincount(cluster, minlength=num_blocks).to(positions.dtype)[:, None]
        # An empty cluster keeps its centre rather than collapsing to the origin.
        centers = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
    return centers


def block_radii(camera_positions: Tensor, centers: Tensor, overlap: float = 0.5) -> Tensor:
    """Each block's radius: large enough that neighbouring blocks overlap by ``overlap`` of their
    diameter (two balls of radius R whose centres are d apart overlap by (2R - d) / 2R, so
    R = d / (2 (1 - overlap)); the paper's 50% gives R = d), and large enough to hold every camera
    of its k-means cluster, so that no training image is left without a block."""
    positions = camera_positions.to(centers)
    num_blocks = centers.shape[0]
    cluster = torch.cdist(positions, centers).argmin(dim=1)
    to_own = (positions - centers[cluster]).norm(dim=-1)
    coverage = torch.zeros(num_blocks, device=centers.device, dtype=centers.dtype).scatter_reduce(
        0, cluster, to_own, reduce="amax", include_self=True
    )
    if num_blocks == 1:
        return coverage
    between = torch.cdist(centers, centers) + torch.diag(torch.full((num_blocks,), float("inf"), device=centers.device))
    overlap_radius = between.min(dim=1).values / (2.0 * (1.0 - overlap))
    return torch.maximum(overlap_radius, coverage)


def assign_images_to_blocks(camera_positions: Tensor, centers: Tensor, radii: Tensor) -> Tensor:
    """(num_images, num_blocks) bool: image i trains block b when its camera lies within b's radius."""
    return torch.cdist(camera_positions.to(centers), centers) <= radii[None, :] * (1.0 + 1e-6)


def select_blocks(positions: Tensor, centers: Tensor, radii: Tensor, available: Optional[Tensor] = None) -> Tensor:
    """(N, num_blocks) bool: the blocks whose radius holds each position, among ``available`` ones.

    A position outside every available block falls back to the nearest available block's surface
    (smallest distance minus radius), so every view is rendered by at least one block."""
    distances = torch.cdist(positions.to(centers), centers)
    allowed = torch.ones_like(radii, dtype=torch.bool) if available is None else available.to(torch.bool)
    if not bool(allowed.any()):
        raise ValueError("no block is available to render from")
    inside = (distances <= radii[None, :]) & allowed[None, :]
    outside_by = (distances - radii[None, :]).masked_fill(~allowed[None, :], float("inf"))
    nearest = torch.nn.functional.one_hot(outside_by.argmin(dim=1), centers.shape[0]).to(torch.bool)
    return torch.where(inside.any(dim=1, keepdim=True), inside, nearest)


def inverse_distance_weights(positions: Tensor, centers: Tensor, selected: Tensor, power: float) -> Tensor:
    """(N, num_blocks) blending weights ``∝ distance(position, centre)^-power`` over the selected
    blocks, zero elsewhere, summing to one per position (computed in log space: a camera standing on
    a centre gets weight one there instead of inf / inf)."""
    distances = torch.cdist(positions.to(centers), centers).clamp_min(1e-6)
    logits = (-power * distances.log()).masked_fill(~selected, float("-inf"))
    return torch.softmax(logits, dim=-1).nan_to_num(0.0)


def filter_by_visibility(mean_visibility: Tensor, candidates: Tensor, threshold: float) -> Tensor:
    """(num_blocks,) bool: the candidate blocks whose mean predicted visibility of the view reaches
    ``threshold``. If none does, the most visible candidate is kept, so the view is still rendered."""
    candidates = candidates.to(torch.bool)
    keep = candidates & (mean_visibility >= threshold)
    if bool(keep.any()) or not bool(candidates.any()):
        return keep
    best = torch.argmax(mean_visibility.masked_fill(~candidates, float("-inf")))
    return torch.nn.functional.one_hot(best, candidates.shape[0]).to(torch.bool)
