"""Quantized feature fusion (QFF): k-means codebooks, straight-through quantization, adaptive Q.

The per-kernel feature vectors are replaced by the nearest of ``Q`` k-means centroids. During
training the renderer sees the quantized features (what the exported file will hold) while the
gradient flows to the raw features through a straight-through estimator. ``Q`` itself follows
the measured reconstruction error: :class:`AdaptiveCodebookRule` grows it when a finer codebook
would recover more PSNR than a tolerance and shrinks it when a coarser one would lose much less
(paper §2.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor


def assign_to_codebook(features: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest centroid (squared Euclidean) for every row of ``features``."""
    # ||x||^2 - 2 x.c + ||c||^2; the ||x||^2 term does not change the argmin.
    scores = codebook.square().sum(-1)[None, :] - 2.0 * features @ codebook.T
    return scores.argmin(dim=-1)


def quantization_distortion(features: Tensor, codebook: Tensor, assignments: Optional[Tensor] = None) -> float:
    """Mean squared distance of ``features`` to their assigned centroids."""
    if assignments is None:
        assignments = assign_to_codebook(features, codebook)
    return float((features - codebook[assignments]).square().sum(-1).mean())


def _kmeans_plus_plus_init(features: Tensor, num_centroids: int, generator: Optional[torch.Generator]) -> Tensor:
    n = features.shape[0]
    first = torch.randint(n, (1,), device=features.device, generator=generator)
    centroids = [features[first[0]]]
    min_dist = (features - centroids[0]).square().sum(-1)
    for _ in range(1, num_centroids):
        total = min_dist.sum()
        if float(total) <= 0.0:  # every point already sits on a centroid: any point will do
            index = torch.randint(n, (1,), device=features.device, generator=generator)[0]
        else:
            index = torch.multinomial(min_dist / total, 1, generator=generator)[0]
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
) -> Tuple[Tensor, Tensor]:
    """Lloyd's k-means in torch on ``features``' device.

    ``init`` warm-starts from an existing codebook (rows beyond its length are seeded by
    k-means++ on the residual, rows beyond ``num_centroids`` are dropped). Empty clusters are
    re-seeded at the point farthest from its centroid, so every centroid stays in use when there
    are at least ``num_centroids`` distinct points. Returns ``(codebook [Q, D], assignments [N])``.
    """
    features = features.detach()
    n = features.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one feature vector")
    if init is None:
        codebook = _kmeans_plus_plus_init(features, num_centroids, generator)
    else:
        codebook = init.detach().to(features)[:num_centroids].clone()
        if codebook.shape[0] < num_centroids:
            # Grow: add centroids at the points worst represented by the current codebook.
            extra = num_centroids - codebook.shape[0]
            error = (features - codebook[assign_to_codebook(features, codebook)]).square().sum(-1)
            worst = torch.topk(error, min(extra, n)).indices
            seeds = features[worst]
            if seeds.shape[0] < extra:
                seeds = torch.cat([seeds, features[torch.randint(n, (extra - seeds.shape[0],), device=features.device)]])
            codebook = torch.cat([codebook, seeds])
    for _ in range(iterations):
        assignments = assign_to_codebook(features, codebook)
        sums = torch.zeros_like(codebook).index_add_(0, assignments, features)
        counts = torch.bincount(assignments, minlength=codebook.shape[0]).to(features.dtype)
        used = counts > 0
        codebook = torch.where(used[:, None], sums / counts.clamp(min=1)[:, None], codebook)
        empty = torch.nonzero(~used).flatten()
        if empty.numel() > 0:
            error = (features - codebook[assignments]).square().sum(-1)
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
class AdaptiveCodebookRule:
    """Q follows the PSNR lost to quantization on a held-aside batch (paper §2.2).

    The decoder trains on the quantized features (straight-through), so the raw features are no
    reference for the loss: on synthetic-bed they rendered 2-6 dB *worse* than the codebook they
    were trained through, and a rule comparing against them shrank Q to its minimum every time.
    The loss is therefore measured at the margin, with codebooks refit on the same features and
    rendered through the same decoder: ``finer_gain_db`` = PSNR(factor·Q) − PSNR(Q), the PSNR that
    Q still loses to a finer codebook, and ``coarser_loss_db`` = PSNR(Q) − PSNR(Q / factor), what a
    coarser one would lose. A gain above ``tolerance_db`` multiplies Q by ``factor`` (finer
    quantization); a coarser loss below ``shrink_fraction · tolerance_db`` divides it (cheaper
    storage); otherwise Q stays. Q stays within [min_size, max_size].
    """

    tolerance_db: float = 0.3
    shrink_fraction: float = 0.25
    min_size: int = 4
    max_size: int = 256
    factor: int = 2

    def neighbours(self, codebook_size: int, num_features: int) -> Tuple[int, int]:
        """The (coarser, finer) codebook sizes to measure Q against (Q itself at a bound)."""
        coarser = max(self.min_size, codebook_size // self.factor)
        finer = min(self.max_size, num_features, codebook_size * self.factor)
        return min(coarser, codebook_size), max(finer, codebook_size)

    def next_size(self, codebook_size: int, finer_gain_db: float, coarser_loss_db: float) -> int:
        if finer_gain_db > self.tolerance_db:
            return min(self.max_size, codebook_size * self.factor)
        if coarser_loss_db < self.shrink_fraction * self.tolerance_db:
            return max(self.min_size, codebook_size // self.factor)
        return codebook_size
