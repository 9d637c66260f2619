"""LPIPS without the network: use the AlexNet weights when they are on disk, else report none.

torchmetrics' LPIPS downloads torchvision's AlexNet weights when it is built. Offline that raises
``URLError`` (or hangs on DNS), so we look for the file first and never try the network. When the
weights are absent LPIPS is *missing* (``None`` in records, an empty cell in tables), never a
made-up value.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Optional

import torch

# torchvision's AlexNet checkpoint, the backbone torchmetrics' LPIPS(net_type="alex") loads.
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
LPIPS_NET = "alex"


def alexnet_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS


def lpips_available() -> bool:
    return alexnet_weights_path().is_file()


class MissingLPIPS(torch.nn.Module):
    """Stands in for LPIPS when its weights are absent: every score is NaN, i.e. 'not measured'."""

    available = False

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float("nan"), device=preds.device)


def build_lpips_or_missing() -> torch.nn.Module:
    """The real LPIPS metric when the weights are local, else :class:`MissingLPIPS`."""
    if not lpips_available():
        return MissingLPIPS()
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type=LPIPS_NET, normalize=True)


@contextlib.contextmanager
def offline_safe_lpips(*modules) -> Iterator[None]:
    """Inside the block, building ``LearnedPerceptualImagePatchSimilarity`` gives the real metric
    only if its weights are on disk, else :class:`MissingLPIPS`. Used around nerfstudio models'
    ``populate_modules``, which build LPIPS unconditionally: vanilla-nerf imports it from
    ``torchmetrics.image.lpip`` at call time (patched here); models that import it at module level
    are passed in ``modules``."""
    import torchmetrics.image.lpip as torchmetrics_lpip

    targets = [torchmetrics_lpip, *[m for m in modules if hasattr(m, "LearnedPerceptualImagePatchSimilarity")]]
    originals = [target.LearnedPerceptualImagePatchSimilarity for target in targets]
    real = originals[0]

    def build(*args, **kwargs):
        return real(*args, **kwargs) if lpips_available() else MissingLPIPS()

    for target in targets:
        target.LearnedPerceptualImagePatchSimilarity = build
    try:
        yield
    finally:
        for target, original in zip(targets, originals):
            target.LearnedPerceptualImagePatchSimilarity = original


def lpips_score(metric: Optional[torch.nn.Module], pred: torch.Tensor, target: torch.Tensor) -> Optional[float]:
    """LPIPS of two HxWx3 images in [0, 1], or None when LPIPS is unavailable."""
    if metric is None or isinstance(metric, MissingLPIPS):
        return None
    to_nchw = lambda image: image.permute(2, 0, 1)[None].clamp(0, 1)  # noqa: E731
    with torch.no_grad():
        return float(metric(to_nchw(pred), to_nchw(target)))
