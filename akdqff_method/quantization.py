"""Quantized feature fusion (QFF): k-means codebooks, straight-through quantization, adaptive Q.

The per-kernel feature vectors are replaced by the nearest of ``Q`` k-means centroids. During
training the renderer sees the quantized features (what the exported file will hold) while the
gradient flows to the raw features through a straight-through estimator. ``Q`` itself follows the
paper's criterion (§2.2), the quantization error of the features: :class:`AdaptiveCodebookRule`
picks the smallest Q whose contribution-weighted distortion Σ_k w_k‖f_k − r_k‖² is within a
tolerance of the features' weighted variance, so Q grows when the features spread into more
distinct values and shrinks when they collapse into fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor


def assign_to_codebook(features: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest centroid (squared Euclidean) for every row of ``features``."""
    # ||x||^2 - 2 x.c + ||c||^2; the ||x||^2 term does not change the argmin.
    scores = codebook.square().sum(-1)[None, :] - 2.0 * features @ codebook.T
    return scores.argmin(dim=-1)


def quantization_distortion(
    features: Tensor, codebook: Tensor, assignments: Optional[Tensor] = None, weights: Optional[Tensor] = None
) -> float:
    """Mean squared distance of ``features`` to their assigned centroids (``weights``-weighted)."""
    if assignments is None:
        assignments = assign_to_codebook(features, codebook)
    squared = (features - codebook[assignments]).square().sum(-1)
    if weights is None:
        return float(squared.mean())
    return float((weights * squared).sum() / weights.sum().clamp(min=1e-30))


def weighted_variance(features: Tensor, weights: Optional[Tensor] = None) -> float:
    """Σ_k w_k‖f_k − f̄‖² / Σ_k w_k: the distortion of a one-centroid codebook (Q = 1)."""
    if weights is None:
        weights = torch.ones(features.shape[0], device=features.device, dtype=features.dtype)
    weights = weights.to(features)
    total = weights.sum().clamp(min=1e-30)
    mean = (weights[:, None] * features).sum(0) / total
    return float((weights * (features - mean).square().sum(-1)).sum() / total)


def _kmeans_plus_plus_init(
    features: Tensor, num_centroids: int, generator: Optional[torch.Generator], weights: Optional[Tensor] = None
) -> Tensor:
    n = features.shape[0]
    if weights is None:
        first = torch.randint(n, (1,), device=features.device, generator=generator)[0]
    else:
        first = torch.multinomial(weights / weights.sum(), 1, generator=generator)[0]
    centroids = [features[first]]
    min_dist = (features - centroids[0]).square().sum(-1)
    for _ in range(1, num_centroids):
        if weights is not None:
            min_dist_weighted = min_dist * weights
        else:
            min_dist_weighted = min_dist
        total = min_dist_weighted.sum()
        if float(total) <= 0.0:  # every point already sits on a centroid: any point will do
            index = torch.randint(n, (1,), device=features.device, generator=generator)[0]
        else:
            index = torch.multinomial(min_dist_weighted / total, 1, generator=generator)[0]
        centroids.append(features[index])
        min_dist = torch.minimum(min_dist, (features - features[index]).square().sum(-1))
    return torch.stack(centroids)


@torch.no_grad()
def kmeans(
    features: Tensor,
    num_centroids: int,
    iterations: int = 10,
    init: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    weights: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Lloyd's k-means in torch on ``features``' device; weighted k-means when ``weights`` [N] (≥ 0,
    not all zero) are given: centroids are weighted means and the seeding follows w·distance².

    ``init`` warm-starts from an existing codebook (rows beyond its length are seeded by
    k-means++ on the residual, rows beyond ``num_centroids`` are dropped). Empty clusters are
    re-seeded at the point farthest from its centroid, so every centroid stays in use when there
    are at least ``num_centroids`` distinct points. Returns ``(codebook [Q, D], assignments [N])``.
    """
    features = features.detach()
    n = features.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one feature vector")
    if weights is not None:
        weights = weights.detach().to(features)
        if weights.shape != (n,) or bool((weights < 0).any()) or not float(weights.sum()) > 0:
            raise ValueError(f"k-means weights must be [{n}] non-negative and not all zero")
    point_weights = weights if weights is not None else torch.ones(n, device=features.device, dtype=features.dtype)
    if init is None:
        codebook = _kmeans_plus_plus_init(features, num_centroids, generator, weights)
    else:
        codebook = init.detach().to(features)[:num_centroids].clone()
        if codebook.shape[0] < num_centroids:
            # Grow: add centroids at the points worst represented by the current codebook.
            extra = num_centroids - codebook.shape[0]
            error = point_weights * (features - codebook[assign_to_codebook(features, codebook)]).square().sum(-1)
            worst = torch.topk(error, min(extra, n)).indices
            seeds = features[worst]
            if seeds.shape[0] < extra:
                seeds = torch.cat([seeds, features[torch.randint(n, (extra - seeds.shape[0],), device=features.device)]])
            codebook = torch.cat([codebook, seeds])
    for _ in range(iterations):
        assignments = assign_to_codebook(features, codebook)
        sums = torch.zeros_like(codebook).index_add_(0, assignments, point_weights[:, None] * features)
        counts = torch.zeros(codebook.shape[0], device=features.device, dtype=features.dtype).index_add_(0, assignments, point_weights)
        used = counts > 0
        codebook = torch.where(used[:, None], sums / counts.clamp(min=1e-30)[:, None], codebook)
        empty = torch.nonzero(~used).flatten()
        if empty.numel() > 0:
            error = point_weights * (features - codebook[assignments]).square().sum(-1)
            worst = torch.topk(error, min(empty.numel(), n)).indices
            codebook[empty[: worst.numel()]] = features[worst]
    assignments = assign_to_codebook(features, codebook)
    return codebook, assignments


def quantize_straight_through(features: Tensor, codebook: Tensor) -> Tuple[Tensor, Tensor]:
    """Quantized features in the forward pass, identity gradient to ``features`` in the backward."""
    assignments = assign_to_codebook(features.detach(), codebook)
    quantized = codebook[assignments].detach()
    return features + (quantized - features).detach(), assignments


def index_bits(codebook_size: int) -> int:
    """Bits per stored index: ceil(log2 Q) (0 when Q == 1)."""
    return int(math.ceil(math.log2(codebook_size))) if codebook_size > 1 else 0


@dataclass
class CodebookDecision:
    """One adaptive-Q decision: the size kept and the relative distortion of every size measured."""

    size: int
    relative_distortion: float
    measured: Dict[int, float]


@dataclass
class AdaptiveCodebookRule:
    """Q from the features' own quantization error (paper §2.2: Q = argmin Σ‖x_i − r_i‖²).

    The distortion D(Q) = Σ_k w_k‖f_k − r_k‖² / Σ_k w_k is measured on the raw kernel features with
    a weighted k-means codebook of Q centroids, w_k being what kernel k contributes to rendering
    (rendering weight per ray, from the allocation statistics), and divided by the features'
    weighted variance D(1), so the tolerance is scale-free. The decoder plays no part: an earlier
    rule rendered a held-aside batch through Q/2, Q and 2Q, but the decoder had been trained
    through Q's codebook, every other codebook measured worse, and Q could only shrink.

    Q is the smallest power-of-``factor`` size in [min_size, max_size] with D(Q)/D(1) ≤
    ``tolerance``, with hysteresis so it does not oscillate: Q grows while D(Q)/D(1) > tolerance,
    and shrinks only while the smaller size is within ``shrink_margin`` × tolerance.
    """

    tolerance: float = 0.05
    """Largest weighted distortion accepted, as a fraction of the features' weighted variance."""
    shrink_margin: float = 0.5
    """Hysteresis: a smaller Q is taken only when its distortion is below shrink_margin × tolerance."""
    min_size: int = 4
    max_size: int = 1024
    factor: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 1:
            raise ValueError(f"codebook tolerance must be in (0, 1), got {self.tolerance}")
        if not 0 < self.shrink_margin <= 1:
            raise ValueError(f"shrink_margin must be in (0, 1], got {self.shrink_margin}")
        if not 1 <= self.min_size <= self.max_size or self.factor < 2:
            raise ValueError(f"need 1 <= min_size <= max_size and factor >= 2, got {self}")

    def clamp(self, size: int, num_features: int) -> int:
        return max(1, min(max(size, self.min_size), self.max_size, num_features))

    def decide(
        self, codebook_size: int, relative_distortion: Callable[[int], float], num_features: int
    ) -> CodebookDecision:
        """Walk from ``codebook_size`` up (while too coarse) or down (while clearly fine enough).

        ``relative_distortion(q)`` fits a codebook of q centroids and returns D(q)/D(1)."""
        size = self.clamp(codebook_size, num_features)
        measured = {size: relative_distortion(size)}
        upper = self.clamp(self.max_size, num_features)
        while measured[size] > self.tolerance and size < upper:
            size = min(size * self.factor, upper)
            measured[size] = relative_distortion(size)
        if measured[size] <= self.tolerance:
            lower = self.clamp(self.min_size, num_features)
            while size > lower:
                smaller = max(size // self.factor, lower)
                if smaller not in measured:
                    measured[smaller] = relative_distortion(smaller)
                if measured[smaller] > self.shrink_margin * self.tolerance:
                    break
                size = smaller
        return CodebookDecision(size, measured[size], measured)
