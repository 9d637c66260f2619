"""What a method downloads while it trains, and whether that is already on this machine.

No run downloads (LPIPS's weights are fetched at set-up, never by a run), but some of nerfstudio's
methods fetch a pretrained model themselves when they start training, whatever
``AKDQFF_BENCH_NO_DOWNLOAD`` says: offline that ends in a traceback after the scene was loaded. So
a method with such a need runs only when the model is already in its cache, and is refused before
anything trains otherwise, the way a CUDA-only method is on a CPU. The needs are read from the
method's config (the classes it is built from), not from its name, so a plugin built on the same
nerfstudio pieces is caught too.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Tuple


@dataclass(frozen=True)
class Download:
    what: str
    why: str
    needed_by: Callable[[Any], bool]  # the method's TrainerConfig -> whether it fetches this
    files: Callable[[], Tuple[Path, ...]]  # where its cache keeps it: all present means no download
    fetch: str  # the command that puts it there, once, on a machine with internet


def _torch_hub() -> Path:
    import torch

    return Path(torch.hub.get_dir())


def _builds_depth_dataset(config: Any) -> bool:
    """nerfstudio's DepthDataset runs ZoeDepth (torch.hub) on a scene without depth maps; the suite's
    readers give none."""
    datasets = [arg for arg in typing.get_args(getattr(config.pipeline.datamanager, "_target", None)) if isinstance(arg, type)]
    if not datasets:
        return False
    from nerfstudio.data.datasets.depth_dataset import DepthDataset

    return any(issubclass(dataset, DepthDataset) for dataset in datasets)


DOWNLOADS = (
    Download(what="the ZoeDepth model (torch.hub isl-org/ZoeDepth, ZoeD_NK)",
             why="to make depth maps for a scene that has none",
             needed_by=_builds_depth_dataset,
             # torch.hub keeps the repositories here (ZoeDepth loads MiDaS's for its backbone), and
             # ZoeDepth's loader its weights.
             files=lambda: (_torch_hub() / "isl-org_ZoeDepth_main", _torch_hub() / "intel-isl_MiDaS_master",
                            _torch_hub() / "checkpoints" / "ZoeD_M12_NK.pt"),
             fetch="python -c \"import torch; torch.hub.load('isl-org/ZoeDepth', 'ZoeD_NK', pretrained=True)\""),
)


def missing_downloads(config: Any) -> List[Download]:
    """What training with ``config`` would download because it is not in its cache here."""
    return [need for need in DOWNLOADS if need.needed_by(config) and not all(path.exists() for path in need.files())]


def refusal(name: str, missing: List[Download]) -> str:
    needs = "; ".join(f"{need.what} {need.why}, which is not in its cache ({need.files()[0].parent}); "
                      f"fetch it once with: {need.fetch}" for need in missing)
    return f"{name} would download while it trains, and no run downloads: {needs}. Nothing was run"
