"""LPIPS when it can be had: the AlexNet weights from disk, checked by their full sha256, else none.

torchmetrics' LPIPS loads torchvision's AlexNet weights when it is built, downloading them when they
are not in ``$TORCH_HOME/hub/checkpoints``. Offline that raises ``URLError`` or hangs on DNS, so we
never let torchmetrics download, and no run downloads either: the weights are fetched once, at
set-up (``python -m bench_base.lpips``, which ``./run_all.sh`` calls when it sets up ``.venv``): the
server must answer within ``PROBE_TIMEOUT_SECONDS`` (DNS included, so offline costs a few seconds
at most), then the download has ``DOWNLOAD_TIMEOUT_SECONDS``. A run uses the file only when its
sha256 is the published one (``ALEXNET_SHA256``; torchvision's file name carries its first 8 digits),
whether it was downloaded here or put there by hand. Otherwise LPIPS is *missing* (``None`` in
records, "—" in tables), never a made-up value. ``AKDQFF_BENCH_NO_DOWNLOAD=1`` skips the fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Iterator, Optional

import torch

# torchvision's AlexNet checkpoint, the backbone torchmetrics' LPIPS(net_type="alex") loads.
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
# torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url; the hash prefix is the one in the file name.
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_WEIGHTS}"
ALEXNET_HASH_PREFIX = "7be5be79"
# The whole file's sha256 (244,408,911 bytes), as several independent public records of it give it;
# it begins with the prefix above. A file that differs is never used.
ALEXNET_SHA256 = "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"
LPIPS_NET = "alex"
# The server must answer within this (DNS included): an offline machine costs at most this, once.
PROBE_TIMEOUT_SECONDS = 5.0
# Once it has answered, the 233 MB download may take this long.
DOWNLOAD_TIMEOUT_SECONDS = float(os.environ.get("AKDQFF_BENCH_LPIPS_DOWNLOAD_TIMEOUT", "300"))
NO_DOWNLOAD_ENV = "AKDQFF_BENCH_NO_DOWNLOAD"

_fetch_attempted = False
_fetch_lock = threading.Lock()
_verified: dict = {}  # (path, size, mtime) -> whether its sha256 is ALEXNET_SHA256, hashed once per process


def alexnet_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS


def _probe(url: str) -> None:
    """Raises unless the server answers a HEAD request."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_SECONDS).close()


def _download(url: str, target: Path) -> None:
    """torch.hub's download: hash-checked, written to a temporary file and moved into place, so an
    interrupted fetch never leaves a partial file under the final name."""
    torch.hub.download_url_to_file(url, str(target), hash_prefix=ALEXNET_HASH_PREFIX, progress=False)


def _bounded(step, timeout: float) -> bool:
    """Run ``step`` in a daemon thread for at most ``timeout`` s: True if it finished without error.
    A thread, because a resolver that never answers is not bounded by socket timeouts."""
    errors = []

    def attempt():
        try:
            step()
        except Exception as error:  # offline, refused, wrong hash: LPIPS stays missing
            errors.append(error)

    worker = threading.Thread(target=attempt, name="lpips-weights-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive() and not errors


def weights_verified(path: Path) -> bool:
    """Whether ``path`` is the published AlexNet checkpoint, byte for byte (its full sha256)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest() == ALEXNET_SHA256
        if not _verified[key]:
            warnings.warn(f"{path} is not the published AlexNet checkpoint (its sha256 is {digest.hexdigest()}, not {ALEXNET_SHA256}); "
                          "LPIPS is reported as missing. Delete the file and fetch it again: python -m bench_base.lpips")
    return _verified[key]


def fetch_alexnet_weights() -> bool:
    """Try once per process to download the AlexNet weights (set-up only: a run never fetches);
    True when the verified file is there after. A download whose sha256 differs is removed."""
    global _fetch_attempted
    target = alexnet_weights_path()
    with _fetch_lock:
        if target.is_file():
            return weights_verified(target)
        if _fetch_attempted or os.environ.get(NO_DOWNLOAD_ENV):
            return False
        _fetch_attempted = True
        if not _bounded(lambda: _probe(ALEXNET_URL), PROBE_TIMEOUT_SECONDS + 1):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        _bounded(lambda: _download(ALEXNET_URL, target), DOWNLOAD_TIMEOUT_SECONDS)
        if target.is_file() and not weights_verified(target):
            target.unlink()
        return target.is_file()


def lpips_available() -> bool:
    """The verified weights are on disk (nothing is downloaded here: that is set-up's)."""
    return weights_verified(alexnet_weights_path())


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


def main() -> int:
    """Set-up's one fetch: say whether LPIPS will be measured on this machine, and why not."""
    target = alexnet_weights_path()
    if fetch_alexnet_weights():
        print(f"LPIPS: AlexNet weights in place and verified ({target})")
    elif target.is_file():
        print(f"LPIPS: {target} is not the published checkpoint; LPIPS will be reported as missing")
    else:
        why = f"{NO_DOWNLOAD_ENV} is set" if os.environ.get(NO_DOWNLOAD_ENV) else f"{ALEXNET_URL} could not be fetched"
        print(f"LPIPS: no AlexNet weights ({why}); LPIPS will be reported as missing. Put the file at {target} to measure it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
