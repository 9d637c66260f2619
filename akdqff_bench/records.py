"""Run records: one JSON file per (method, scene, profile, seed, capacity), aggregated into metrics.csv.

A record is written once, atomically, when its run ends (``ok``, ``skipped`` or ``failed``), so an
interrupted grid keeps every finished run and a rerun starts where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import pandas as pd

from akdqff_bench.profiles import DEFAULT_CAPACITY, capacity_slug, is_default_capacity

# The columns of metrics.csv, in order; records hold more (per-image metrics, curve, versions).
METRIC_COLUMNS = [
    "method", "dataset", "scene", "profile", "device", "seed", "capacity", "status", "iterations", "train_seconds",
    "train_cpu_seconds", "other_load_cores", "s_per_iter", "psnr", "ssim", "lpips", "model_size_bytes", "peak_memory_bytes", "peak_memory_kind",
    "render_fps", "num_test_views", "commit", "message",
]
FINISHED_STATUSES = ("ok", "skipped")
REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONED_PACKAGES = ("torch", "torchvision", "nerfstudio", "numpy", "scikit-image", "papermill", "tyro")


# The layouts a scene can be given by path as (akdqff_bench.datasets.LAYOUTS; a test keeps them equal).
PATH_LAYOUTS = ("blender", "colmap", "nerfstudio", "llff")


def scene_file_id(scene: str) -> str:
    """``tanks-temples/truck`` -> ``tanks-temples-truck``; ``llff:PATH`` -> ``llff-<folder>-<8 hex of
    the resolved path>``: a safe file name, and two folders of the same name never share a record.
    A folder inside the repository is hashed by its repository-relative path, so a clone elsewhere
    finds the same records."""
    layout, sep, rest = scene.partition(":")
    if sep and layout in PATH_LAYOUTS:
        resolved = Path(rest).expanduser().resolve()
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", resolved.name) or "root"
        try:
            key = resolved.relative_to(Path(__file__).resolve().parents[1]).as_posix()
        except ValueError:
            key = str(resolved)
        return f"{layout}-{folder}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return scene.replace("/", "-")


def portable_path(path: Path) -> str:
    """Paths inside the repository are recorded relative to it, so committed records stay valid."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def portable_text(text: str) -> str:
    """``text`` with this checkout's absolute location removed from the paths inside it, for messages
    and outputs that get committed: ``/home/me/akdqff-bench/data/x`` -> ``data/x``; paths outside the
    repository stay as they are."""
    root = str(REPO_ROOT)
    text = text.replace(f"file://{root}/", "").replace(f"{root}/", "")
    return re.sub(re.escape(root) + r"(?![\w.-])", ".", text)


def run_id(method: str, scene: str, seed: int, capacity: Optional[str] = None) -> str:
    """``nerf__synthetic-bed__seed0``; a capacity point other than the default adds its label as a
    file-name part: ``nerf__synthetic-bed__width-128__seed0`` (the default keeps the plain name, so
    records made before capacities existed are still found)."""
    if is_default_capacity(capacity):
        return f"{method}__{scene_file_id(scene)}__seed{seed}"
    return f"{method}__{scene_file_id(scene)}__{capacity_slug(capacity)}__seed{seed}"


def runs_dir(results_root: Path, profile: str) -> Path:
    return Path(results_root) / profile / "runs"


def record_path(results_root: Path, profile: str, method: str, scene: str, seed: int, capacity: Optional[str] = None) -> Path:
    return runs_dir(results_root, profile) / f"{run_id(method, scene, seed, capacity)}.json"


def log_path(results_root: Path, profile: str, name: str) -> Path:
    """Where a grid writes a run's own output (notebook cells, nerfstudio, training progress)."""
    return Path(results_root) / profile / "logs" / f"{name}.log"


def git_commit(repo: Optional[Path] = None) -> str:
    """HEAD's hash, with '+dirty' when the code differs from it; 'unknown' outside git.

    Changes under ``results/`` do not count: they are this suite's own outputs (a rerun of a grid
    whose results are committed rewrites them before its first run finishes)."""
    cwd = repo or Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def package_versions() -> Dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _clean(value: Any) -> Any:
    """JSON has no NaN: write missing numbers as null."""
    if value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_record(path: Path, record: Dict[str, Any]) -> None:
    """Write atomically: a crash mid-write never leaves a half record that looks finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as f:
        json.dump(_clean(record), f, indent=2, default=str)
        tmp = f.name
    os.replace(tmp, path)


def read_record(path: Path) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def is_finished(path: Path) -> bool:
    """A run counts as done when its record exists with status ok or skipped; failed runs are retried."""
    record = read_record(path)
    return record is not None and record.get("status") in FINISHED_STATUSES


def load_records(results_root: Path, profile: str) -> List[Dict[str, Any]]:
    records = []
    for path in sorted(runs_dir(results_root, profile).glob("*.json")):
        record = read_record(path)
        if record is not None:
            records.append(record)
    return records


INTEGER_COLUMNS = ("seed", "iterations", "model_size_bytes", "peak_memory_bytes", "num_test_views")


def records_frame(records: Iterable[Dict[str, Any]]) -> pd.DataFrame:
    rows = [{column: record.get(column) for column in METRIC_COLUMNS} for record in records]
    for row in rows:  # records made before capacities existed are the default point
        row["capacity"] = row["capacity"] or DEFAULT_CAPACITY
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    # Skipped runs leave counts empty; a nullable integer column keeps "6579" from becoming "6579.0".
    for column in INTEGER_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).round().astype("Int64")
    return frame


def aggregate(results_root: Path, profile: str) -> Path:
    """Rewrite results/<profile>/metrics.csv (and metrics.json) from the run records."""
    records = load_records(results_root, profile)
    out_dir = Path(results_root) / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = records_frame(records).sort_values(["dataset", "scene", "method", "capacity", "seed"], kind="stable")
    csv_path = out_dir / "metrics.csv"
    frame.to_csv(csv_path, index=False)
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(_clean(frame.to_dict(orient="records")), f, indent=2, default=str)
    return csv_path
