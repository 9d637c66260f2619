"""Run records: one JSON file per (method, scene, profile, seed, capacity), aggregated into metrics.csv.

A record is written once, atomically, when its run ends (``ok``, ``skipped`` or ``failed``), so an
interrupted grid keeps every finished run and a rerun starts where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Iterable, List, Optional, Tuple

import pandas as pd

from akdqff_bench.paths import REPO_ROOT, portable_path, portable_text  # noqa: F401 (re-exported)
from bench_base.files import write_atomically
from bench_base.spec import DEFAULT_CAPACITY, capacity_slug, is_default_capacity

FINISHED_STATUSES = ("ok", "skipped")
# The layouts a scene can be given by path as (akdqff_bench.datasets.LAYOUTS; a test keeps them equal).
PATH_LAYOUTS = ("blender", "colmap", "nerfstudio", "llff")
VERSIONED_PACKAGES = ("torch", "torchvision", "nerfstudio", "numpy", "scikit-image", "papermill", "tyro")


def _field(csv_column: Optional[int] = None):
    """A record field; ``csv_column``: its position among metrics.csv's columns (None: not a column)."""
    return field(default=None, metadata={"csv": csv_column})


@dataclass
class RunRecord:
    """Every field a run's record can hold, declared once: the runner fills it, ``write_record``
    writes it as JSON, metrics.csv takes the fields with a column number, and the report reads
    them by these names. Records made before a field existed lack it (readers use ``.get``)."""

    run_id: Optional[str] = _field()
    method: Optional[str] = _field(0)
    dataset: Optional[str] = _field(1)
    scene: Optional[str] = _field(2)
    profile: Optional[str] = _field(3)
    device: Optional[str] = _field(4)
    seed: Optional[int] = _field(5)
    capacity: Optional[str] = _field(6)
    capacity_overrides: Optional[Dict[str, Any]] = _field()  # what the capacity point changes (also in overrides)
    commit: Optional[str] = _field(21)
    versions: Optional[Dict[str, str]] = _field()
    overrides: Optional[Dict[str, Any]] = _field()  # every setting over the method's defaults
    method_at_defaults: Optional[bool] = _field()  # True: no bench spec, the method ran at its own defaults
    rays_per_batch: Optional[int] = _field()
    train_budget_seconds: Optional[float] = _field()
    budget_clock: Optional[str] = _field()  # "cpu" or "wall"
    # OpenMP threads that wait spin on the CPU first (the default): under contention that spinning
    # is CPU time without progress, so a CPU budget depends on it; PASSIVE waits sleep.
    omp_wait_policy: Optional[str] = _field()
    max_iterations: Optional[int] = _field()
    # A reproduction (grid --reproduce): max_iterations is the median of these reference runs'
    # iterations ({"reference": folder, "seeds": [...], "iterations": [...]}), not the profile's budget.
    iterations_from_reference: Optional[Dict[str, Any]] = _field()
    evidence: Optional[str] = _field()
    curve_points: Optional[int] = _field()
    lpips_available: Optional[bool] = _field()
    data_path: Optional[str] = _field()
    eval_protocol: Optional[str] = _field()
    # The data the run read (SceneSpec.fingerprint): the split actually used and a sha256 of its
    # images' and camera files' bytes; a grid reruns a finished record whose data has changed since.
    data_fingerprint: Optional[Dict[str, Any]] = _field()
    # What the scene's layout decided, and what of it went into this method's config.
    scene_settings: Optional[Dict[str, Any]] = _field()
    scene_kind: Optional[str] = _field()
    data_overrides: Optional[Dict[str, Any]] = _field()
    data_settings_not_applicable: Optional[List[str]] = _field()
    status: Optional[str] = _field(7)  # ok | skipped | failed
    message: Optional[str] = _field(22)
    traceback: Optional[str] = _field()
    iterations: Optional[int] = _field(8)
    train_seconds: Optional[float] = _field(9)  # wall time of the training iterations
    train_cpu_seconds: Optional[float] = _field(10)  # their CPU time (this process, all threads)
    # Mean cores other programs kept busy during training: how quiet the timings were.
    other_load_cores: Optional[float] = _field(11)
    machine_cores: Optional[int] = _field()
    # The machine's speed on one fixed workload, timed just before training (akdqff_bench.speed_probe).
    speed_probe: Optional[Dict[str, Any]] = _field()
    s_per_iter: Optional[float] = _field(12)
    cpu_s_per_iter: Optional[float] = _field()
    model_size_bytes: Optional[int] = _field(16)
    model_file: Optional[str] = _field()
    peak_memory_bytes: Optional[int] = _field(17)
    peak_memory_kind: Optional[str] = _field(18)
    curve: Optional[List[Dict[str, float]]] = _field()
    final_scalars: Optional[Dict[str, float]] = _field()
    adaptation_history: Optional[Any] = _field()
    psnr: Optional[float] = _field(13)
    ssim: Optional[float] = _field(14)
    lpips: Optional[float] = _field(15)
    lpips_net: Optional[str] = _field()
    render_fps: Optional[float] = _field(19)
    num_test_views: Optional[int] = _field(20)
    per_image: Optional[List[Dict[str, Any]]] = _field()
    # Max colour difference between the first test view rendered by the trained model and by the one
    # reloaded from the stored file (float noise when the file holds all rendering needs).
    reload_max_abs_difference: Optional[float] = _field()
    # The learning curve's last point below its best (dB), and whether that is more than
    # runner.DIVERGENCE_DB: a run that got worse as it trained is shown as diverged, not a plain ok.
    curve_drop_db: Optional[float] = _field()
    diverged: Optional[bool] = _field()
    # Set by a grid that kept this finished record although the plan would now run it otherwise
    # (--keep-stale): what differs. The tables name it; a grid whose plan matches again clears it.
    kept_stale: Optional[str] = _field()
    ray: Optional[Dict[str, Any]] = _field()  # where a Ray task ran it

    def update(self, **values: Any) -> "RunRecord":
        for key, value in values.items():
            if key not in RECORD_FIELDS:
                raise KeyError(f"a run record has no field {key!r}")
            setattr(self, key, value)
        return self

    def as_dict(self) -> Dict[str, Any]:
        """Every field in declaration order; what a run did not reach is null (a skipped run has no metrics)."""
        return {name: getattr(self, name) for name in RECORD_FIELDS}

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value


RECORD_FIELDS = tuple(f.name for f in fields(RunRecord))
# The columns of metrics.csv, in order; records hold more (per-image metrics, curve, versions).
METRIC_COLUMNS = [f.name for f in sorted((f for f in fields(RunRecord) if f.metadata["csv"] is not None), key=lambda f: f.metadata["csv"])]


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
            key = resolved.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            key = str(resolved)
        return f"{layout}-{folder}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return scene.replace("/", "-")


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
    whose results are committed rewrites them before its first run finishes). Nor do Markdown
    files: no run reads them, and notes written during a long study would mark its records dirty."""
    cwd = repo or REPO_ROOT
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", ":(exclude)*.md"],
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


def write_record(path: Path, record) -> None:
    """Write a RunRecord (or a record's dict) atomically (bench_base.files): a crash mid-write never
    leaves a half record that looks finished."""
    if isinstance(record, RunRecord):
        record = record.as_dict()
    write_atomically(path, json.dumps(_clean(record), indent=2, default=str))


class UnreadableRecords(ValueError):
    """Record files that exist but hold no record (cut short by a full disk, edited by hand)."""


class NoRecords(ValueError):
    """A results folder with no record of the profile: nothing to compare."""


def check_has_records(results_root: Path, profile: str) -> None:
    """NoRecords, before anything is written, when the profile has no record file in ``results_root``."""
    folder = runs_dir(results_root, profile)
    if not any(folder.glob("*.json")):
        raise NoRecords(f"{results_root}: no run records of the {profile} profile there (expected {folder}/*.json); nothing was written")


def _read(path: Path) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(the record at ``path``, None) or (None, why it holds none); (None, None) when there is no file."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{type(error).__name__}: {error}"
    return (record, None) if isinstance(record, dict) else (None, f"holds a JSON {type(record).__name__}, not a record")


def record_problem(path: Path) -> Optional[str]:
    """Why the record file at ``path`` holds no record; None when it does, or when there is no file."""
    return _read(path)[1]


def read_record(path: Path) -> Optional[Dict[str, Any]]:
    """The record at ``path``; None when there is none or it cannot be read (``record_problem`` says why)."""
    return _read(path)[0]


def is_finished(path: Path) -> bool:
    """A run counts as done when its record exists with status ok or skipped; failed runs are retried."""
    record = read_record(path)
    return record is not None and record.get("status") in FINISHED_STATUSES


def unreadable_records(results_root: Path, profile: str) -> List[Tuple[Path, str]]:
    """The profile's record files that hold no record, each with why: ``load_records`` leaves them
    out, so whatever shows its records names these."""
    problems = [(path, record_problem(path)) for path in sorted(runs_dir(results_root, profile).glob("*.json"))]
    return [(path, problem) for path, problem in problems if problem is not None]


def check_readable(results_root: Path, profile: str) -> None:
    """UnreadableRecords naming every record file of the profile that cannot be read."""
    unreadable = unreadable_records(results_root, profile)
    if unreadable:
        listed = "; ".join(f"{portable_path(path)} ({problem})" for path, problem in unreadable)
        raise UnreadableRecords(f"{len(unreadable)} record file(s) cannot be read and are left out of the tables: {listed}. "
                                "Run the grid again to rerun those runs, or restore the files from git")


def load_records(results_root: Path, profile: str) -> List[Dict[str, Any]]:
    """Every readable record of the profile (``unreadable_records`` names the others)."""
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
    write_atomically(csv_path, frame.to_csv(index=False))
    write_atomically(out_dir / "metrics.json", json.dumps(_clean(frame.to_dict(orient="records")), indent=2, default=str))
    return csv_path
