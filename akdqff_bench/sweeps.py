"""Sweeps: one loop that trains a list of runs, each once, keeping each run's record so that a
sweep interrupted or run in parts resumes where it stopped. ``akdqff-bench sweep`` (a method's
sweeps from its bench spec) and the experiments (``cpu_calibration``, ``contention``) all use it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from akdqff_bench.lock import holding, sweep_lock
from akdqff_bench.profiles import get_profile
from akdqff_bench.records import read_record, scene_file_id
from akdqff_bench.request import RunRequest
from bench_base.files import write_atomically

DEFAULT_SWEEP = "quick"
# The metrics a sweep's table shows beside each candidate's settings.
TABLE_METRICS = ("psnr", "ssim", "iterations", "s_per_iter", "model_size_bytes")


class UnknownCandidate(ValueError):
    """A sweep or candidate the method's bench spec does not have."""


def resume_each(requests: Sequence[RunRequest], results_root: Path, force: bool = False, wanted: Optional[Iterable[int]] = None,
                train: Optional[Callable[[RunRequest, Path], Dict[str, Any]]] = None, label: str = "sweep") -> List[Dict[str, Any]]:
    """Each request's record: the one it left before when that one is ``ok`` (unless ``force``),
    else trained now (``train``: the runner's run_one by default). Requests whose index is not in
    ``wanted`` are not trained: their earlier record or ``{"status": "not run"}``. A failed run is
    recorded as failed and the others still run."""
    from akdqff_bench import runner
    from akdqff_bench.grid import stale_because

    train = train or (lambda request, root: runner.run_one(request, root).record)
    wanted = set(range(len(requests))) if wanted is None else set(wanted)
    records = []
    for index, request in enumerate(requests):
        record_file = request.record_path(results_root)
        record = read_record(record_file)
        # A record made with other settings is not this request's, whatever its file is called.
        changed = stale_because(request, record) if record is not None else ""
        if changed and not force:
            print(f"== {label} [{index + 1}/{len(requests)}]: its record ran with other settings ({changed}): run again", flush=True)
            record = None
        if index not in wanted:
            record = record or {"status": "not run"}
        elif force or record is None or record.get("status") != "ok":
            print(f"== {label} [{index + 1}/{len(requests)}]: {request.describe()} {dict(request.extra_overrides) or ''}", flush=True)
            try:
                record = train(request, Path(results_root))
            except Exception as error:  # recorded as failed by the runner; the other runs still run
                print(f"!! {label} run {index} failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
                record = read_record(record_file) or {"status": "failed"}
        records.append(record)
    return records


def settings_key(request: RunRequest) -> str:
    """12 hex digits of a sha256 of every setting the request trains with (grid.planned_settings):
    a sweep's records are named by it, so a candidate keeps its record wherever the list puts it."""
    from akdqff_bench.grid import planned_settings

    return hashlib.sha256(json.dumps(planned_settings(request), sort_keys=True).encode("utf-8")).hexdigest()[:12]


def candidate_record(sweep_dir: Path, index: int, request: RunRequest) -> Path:
    """Where a sweep candidate's record is: ``candidate-<settings_key>.json``; a record of the same
    settings under the name sweeps gave before (``candidate<index>.json``) is kept where it is."""
    earlier = Path(sweep_dir) / f"candidate{index}.json"
    record = read_record(earlier)
    if record is not None:
        from akdqff_bench.grid import stale_because

        if not stale_because(replace(request, record_file=str(earlier)), record):
            return earlier
    return Path(sweep_dir) / f"candidate-{settings_key(request)}.json"


def sweep_requests(method: str, candidates, profile, scene: str, sweep_dir: Path) -> List[RunRequest]:
    """One request per candidate (seed 0, the candidate's overrides on top of the profile's
    settings), each with its record under ``sweep_dir`` (``candidate_record``)."""
    requests = [RunRequest(method, scene, profile, 0, extra_overrides=dict(candidate.overrides)) for candidate in candidates]
    return [replace(request, record_file=str(candidate_record(sweep_dir, index, request))) for index, request in enumerate(requests)]


def sweep_name(method: str, profile_name: str, scene: str, sweep: str = DEFAULT_SWEEP) -> str:
    """``nerf-quick`` (the method's main sweep on synthetic-bed), ``nerf-quick-ethiopian-head``,
    ``akdqff-quick-lambda``: the CSV's and the records folder's name under results/sweeps/."""
    return (f"{method}-{profile_name}" + ("" if sweep == DEFAULT_SWEEP else f"-{sweep}")
            + ("" if scene == "synthetic-bed" else f"-{scene_file_id(scene)}"))


def run_sweep(method: str, profile_name: str, results_root: Path, force: bool = False, scene: str = "synthetic-bed",
              candidates: Optional[Iterable[int]] = None, sweep: str = DEFAULT_SWEEP, wait: bool = False) -> Path:
    """Train every candidate of the method's ``sweep`` (its bench spec's; or only the numbers in
    ``candidates``: a sweep in parts) in the profile's budget on ``scene``, seed 0; rank them by
    test PSNR into ``results/sweeps/<name>.csv``. A candidate neither trained now nor before is
    listed as "not run"."""
    from akdqff_bench.methods import bench_spec, check_runnable

    profile = get_profile(profile_name)  # an unknown profile is named before anything trains
    check_runnable([method], profile.device_type)
    spec = bench_spec(method)
    if sweep not in spec.sweeps:
        raise UnknownCandidate(f"{method} has no sweep {sweep!r}" + (f"; its sweeps: {', '.join(spec.sweeps)}" if spec.sweeps else
                               " (its bench spec defines none)"))
    chosen = spec.sweeps[sweep].candidates
    wanted = set(range(len(chosen)) if candidates is None else candidates)
    if not wanted or not wanted <= set(range(len(chosen))):
        raise UnknownCandidate(f"{method}'s {sweep} sweep has candidates 0-{len(chosen) - 1}; asked for {sorted(wanted)}")
    name = sweep_name(method, profile.name, scene, sweep)
    with holding(sweep_lock(results_root, name), wait=wait):
        return _sweep_locked(method, spec, sweep, profile, results_root, force, scene, wanted, name)


def _sweep_locked(method, spec, sweep: str, profile, results_root: Path, force: bool, scene: str, wanted, name: str) -> Path:
    import pandas as pd

    chosen = spec.sweeps[sweep].candidates
    sweep_dir = Path(results_root) / "sweeps" / name
    requests = sweep_requests(method, chosen, profile, scene, sweep_dir)
    records = resume_each(requests, results_root, force, wanted, label=f"sweep {method}")
    rows = []
    for index, (candidate, record) in enumerate(zip(chosen, records)):
        settings = {k.removeprefix("pipeline.model."): str(v) for k, v in candidate.overrides.items()}
        rows.append({"candidate": index, "name": candidate.name, **settings, "status": record.get("status"),
                     **{k: record.get(k) for k in TABLE_METRICS}})
    table = pd.DataFrame(rows).sort_values("psnr", ascending=False, na_position="last")
    if table["psnr"].isna().all():
        raise RuntimeError(f"every {method} sweep candidate failed; see the records in {sweep_dir}")
    out = Path(results_root) / "sweeps" / f"{name}.csv"
    write_atomically(out, table.to_csv(index=False))
    print(table.to_string(index=False), flush=True)
    best = table.iloc[0]
    print(f"== best candidate for {method}: {best['candidate']} ({best['name']}) -> {out}", flush=True)
    return out

