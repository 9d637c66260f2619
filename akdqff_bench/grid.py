"""The grid: which runs a profile holds, which of them are still to do, what they are expected to
take, then the executor that runs them and metrics.csv from every record (the comparison page is
``akdqff_bench.comparison``'s)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from akdqff_bench.datasets import DatasetMissing, checked_scene_name, resolve_scene
from akdqff_bench.executors import DEFAULT_RETRIES, GridPlan, check_results_writable, make_executor, minutes, writing_results
from akdqff_bench.lock import holding, profile_lock
from akdqff_bench.methods import check_runnable, evidence_cost_ratio
from akdqff_bench.notebooks import is_evidence_cell, run_notebook_path, settle_leftover
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.profiles import EVIDENCE_LEVELS, NoStudy, Profile, curve_points, expected_train_wall_seconds, get_profile
from akdqff_bench.records import (FINISHED_STATUSES, aggregate, load_records, log_path, portable_path, read_record, record_problem, run_id,
                                  write_record)
from akdqff_bench.request import BadRequest, RunRequest, as_recorded, stale_because

# Until a run of this session has finished, assume a run costs its training time plus this much
# when estimating the grid's ETA: the notebook kernel's start, the curve's evaluations, the export
# and the final evaluation, the notebook's figures (the committed quick notebooks' mean beyond training).
RUN_OVERHEAD_SECONDS = 70.0


class BadReference(ValueError):
    """``--reference`` names no folder of run records."""


def _scene_present(scene: str, variant: str) -> bool:
    """Whether the scene's data is here (its runs train; else they are recorded as skipped); data
    that is here but bad is refused with its DatasetError, before anything trains."""
    try:
        resolve_scene(scene, variant).validate()
    except DatasetMissing:
        return False
    return True


def plan_runs(profile: Profile, methods: List[str], scenes: List[str], study: bool = False, evidence: str = "full",
              device_type: Optional[str] = None) -> List[RunRequest]:
    """The grid's runs in order: every (scene, method) for each seed (the profile's seeds, or its
    study seeds with ``study``), seed by seed so a study run in parts completes whole seeds first;
    with ``study`` then each method's capacity points, on the profile's capacity scene and seed only."""
    if study and not profile.study_seeds:
        raise NoStudy(f"the {profile.name} profile defines no study (study seeds and capacity points); the quick profile does")
    seeds = profile.study_seeds if study else profile.seeds
    request = lambda method, scene, seed, capacity=None: RunRequest(method, scene, profile, seed, capacity, evidence, device_type)  # noqa: E731
    runs = [request(method, scene, seed) for seed in seeds for scene in scenes for method in methods]
    if study and profile.study_capacities and profile.capacity_scene in scenes:
        runs += [request(method, profile.capacity_scene, profile.capacity_seed, label) for method in methods for label in profile.capacities(method)]
    return runs


def expected_run_seconds(profile: Profile) -> Optional[float]:
    """One run's wall time on a quiet 2-core machine: its training (the budget in wall seconds) plus
    the evaluation and notebooks around it; None for a profile stopped by an iteration count."""
    train = expected_train_wall_seconds(profile)
    return None if train is None else train + RUN_OVERHEAD_SECONDS


def measured_run_seconds(runs: List[RunRequest], profile, folders: Iterable[Optional[Path]], evidence: str = "full") -> Dict[str, float]:
    """run_id -> the median wall time of the executed notebooks of the same method, scene and
    capacity (any seed) in ``folders`` (papermill's duration), for the runs that have one. The grid's
    estimate uses these: one figure for every run would be far off on the real scene, where AKDQFF's
    evidence figures take about 10 min more than on synthetic-bed. Notebooks that drew the same
    ``evidence`` count first; failing those, one drawn at another level counts with its evidence
    cell's time scaled to this level (methods.evidence_cost_ratio). Either way its learning curve's
    evaluations (its record's ``eval_seconds``) are scaled to this level's number of points: a
    notebook from before the level set the curve's points says "short" with the full curve."""
    profile = get_profile(profile)  # a Profile, or a name of PROFILES
    profile_name = profile.name
    wanted_points = curve_points(profile, evidence)
    # run id without its seed -> [(evidence level, notebook seconds, seconds of its evidence cell,
    #                              seconds of its curve's evaluations, the curve's points)]
    measured: Dict[str, List[Tuple[str, float, float, float, int]]] = {}
    for folder in dict.fromkeys(Path(f).resolve() for f in folders if f is not None):
        for notebook in sorted((folder / profile_name / "notebooks").glob("*.ipynb")):
            try:
                content = json.loads(notebook.read_text(encoding="utf-8"))
                seconds = content["metadata"]["papermill"]["duration"]
                # The level is in the run request (earlier notebooks had it as a parameter of its own;
                # those from before it existed drew the full evidence).
                parameters = content["metadata"]["papermill"].get("parameters", {})
                level = json.loads(parameters["request"]).get("evidence", "full") if "request" in parameters else parameters.get("evidence", "full")
                evidence_seconds = sum(float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0)
                                       for cell in content.get("cells", []) if is_evidence_cell(cell))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue  # a notebook still running or cut short has no duration
            if isinstance(seconds, (int, float)) and seconds > 0 and level in EVIDENCE_LEVELS:
                curve = (read_record(folder / profile_name / "runs" / f"{notebook.stem}.json") or {}).get("curve") or []
                curve_seconds = sum(float(point.get("eval_seconds") or 0) for point in curve)
                measured.setdefault(notebook.stem.rsplit("__seed", 1)[0], []).append(
                    (level, float(seconds), evidence_seconds, curve_seconds, len(curve)))
    estimates = {}
    for run in runs:
        samples = measured.get(run.run_id.rsplit("__seed", 1)[0], [])
        samples = [sample for sample in samples if sample[0] == evidence] or samples
        # evidence_cost_ratio is 1 between equal levels: a same-level cell stays as measured.
        durations = [seconds - cell + cell * evidence_cost_ratio(run.method, level, evidence)
                     - curve_seconds + curve_seconds * (wanted_points / points if points else 1.0)
                     for level, seconds, cell, curve_seconds, points in samples]
        if durations:
            estimates[run.run_id] = statistics.median(durations)
    return estimates


def check_device(device_type: str) -> None:
    """A CUDA run where torch sees no CUDA device would fail in every run: say so once, before any."""
    import torch

    if device_type == "cuda" and not torch.cuda.is_available():
        raise BadRequest("cuda was asked for, but torch sees no CUDA device on this machine (torch.cuda.is_available() is False); "
                         "nothing was run. Use --device cpu, or a profile for the CPU")


def check_reference(reference_root: Optional[Path], profile_name: str) -> None:
    if reference_root is not None and not (Path(reference_root) / profile_name / "runs").is_dir():
        raise BadReference(f"--reference {reference_root}: no run records of the {profile_name} profile there "
                           f"(expected {Path(reference_root) / profile_name / 'runs'}/*.json)")


def reproducing_reference(runs: List[RunRequest], reference_root: Path) -> Tuple[List[RunRequest], List[Tuple[RunRequest, str]]]:
    """Each run as a reproduction of its reference runs (same method, scene, capacity and settings,
    any seed, finished ``ok``): trained for their median iteration count instead of the profile's
    time budget. A run with no such reference keeps the budget; the second list gives each such
    run with why."""
    if not runs:
        return runs, []
    reference = [r for r in load_records(reference_root, runs[0].profile.name) if r.get("status") == "ok" and r.get("iterations")]
    reproduced, kept = [], []
    for run in runs:
        same_run = [r for r in reference if r.get("method") == run.method and r.get("run_id") == run_id(run.method, run.scene, r.get("seed"), run.capacity)]
        planned = as_recorded(run.settings())
        same = sorted((r for r in same_run if all(r.get(key) == planned[key] for key in ("overrides", "rays_per_batch"))),
                      key=lambda r: r["seed"])
        if same:
            reproduced.append(run.reproducing([r["seed"] for r in same], [r["iterations"] for r in same], portable_path(Path(reference_root))))
        else:
            reproduced.append(run)
            kept.append((run, f"{run.run_id} ({'its reference runs had other settings' if same_run else 'no reference run'})"))
    return reproduced, kept


@dataclass(frozen=True)
class GridOptions:
    """How a grid runs, beyond its profile and results folder (the CLI's ``grid`` flags).

    ``study``: the profile's study seeds and capacity points instead of its seeds. ``executor``:
    "local" (one run after another here), "ray" (one Ray task per run on the cluster at
    ``address``), or an executor object (akdqff_bench.executors). ``reference_root``: a results
    folder whose records of this profile the comparison sets beside these. ``evidence``: how much
    method-specific evidence the run notebooks draw (profiles.EVIDENCE_LEVELS). ``wait``: wait for
    another process on the same results folder and profile instead of refusing. ``keep_stale``:
    keep finished records that ran with other settings than the plan's. ``reproduce``: each run
    trains for the median iterations of its reference runs (``reproducing_reference``), so that on
    any machine it does the reference's work and only its timings differ."""

    methods: Optional[Sequence[str]] = None
    scenes: Optional[Sequence[str]] = None
    force: bool = False
    device_type: Optional[str] = None
    notebooks: bool = True
    executor: Any = "local"
    address: Optional[str] = None
    retries: Optional[int] = None
    cpus_per_run: Optional[int] = None
    study: bool = False
    reference_root: Optional[Path] = None
    evidence: str = "full"
    wait: bool = False
    keep_stale: bool = False
    reproduce: bool = False


def run_grid(profile_name, results_root: Path, options: GridOptions = GridOptions(),
             after_runs: Optional[Callable[[], None]] = None) -> int:
    """Every (method, scene, seed) of the profile not yet finished (all of them with ``force``),
    then metrics.csv from every record; 1 when a run failed. ``after_runs`` is called while the
    results folder is still locked: the CLI makes the comparison page there
    (``akdqff_bench.comparison``, which the grid does not import)."""
    profile = get_profile(profile_name)
    device_type = options.device_type or profile.device_type
    if options.evidence not in EVIDENCE_LEVELS:
        raise BadRequest(f"evidence must be one of {EVIDENCE_LEVELS}, not {options.evidence!r}")
    methods = list(options.methods or profile.methods)
    check_runnable(methods, device_type)  # before anything trains: one line, exit 2
    check_reference(options.reference_root, profile.name)
    if options.reproduce and options.reference_root is None:
        raise BadReference("--reproduce trains each run for its reference runs' iterations: it needs --reference FOLDER")
    scenes = [checked_scene_name(scene) for scene in options.scenes or (options.study and profile.study_scenes) or profile.scenes]
    grid = plan_runs(profile, methods, scenes, options.study, options.evidence, options.device_type)
    # Runs whose data is absent end at once (recorded as skipped): they do not count in the ETA.
    trains = {scene: _scene_present(scene, profile.synthetic_bed_variant) for scene in scenes}
    kept_budget = None
    if options.reproduce:
        grid, kept_budget = reproducing_reference(grid, options.reference_root)
    executor = options.executor
    if getattr(executor, "name", executor) != "ray":  # on a cluster the nodes have the GPUs, not necessarily the driver
        check_device(device_type)
    if isinstance(executor, str):
        executor = make_executor(executor, options.address, DEFAULT_RETRIES if options.retries is None else options.retries,
                                 options.cpus_per_run)
    check_results_writable(results_root, profile.name)  # before any training, not after the first run
    with holding(profile_lock(results_root, profile.name), wait=options.wait):
        failures = _run_locked(profile, results_root, grid, trains, options, executor, kept_budget)
        with writing_results("metrics.csv", Path(results_root) / profile.name):
            print(f"== metrics: {aggregate(results_root, profile.name)}", flush=True)
        if after_runs is not None:
            after_runs()
    return 1 if failures else 0


def data_hashes(variant: str):
    """scene -> the sha256 of its data now (``SceneSpec.fingerprint``; None when it cannot be read),
    each scene read once."""
    known: Dict[str, Optional[str]] = {}

    def of(scene: str) -> Optional[str]:
        if scene not in known:
            try:
                known[scene] = resolve_scene(scene, variant).fingerprint()["sha256"]
            except Exception:  # absent or broken data: the run's own validation says why when it runs
                known[scene] = None
        return known[scene]

    return of


def _run_locked(profile: Profile, results_root: Path, grid: List[RunRequest], trains: Dict[str, bool], options: GridOptions, executor,
                kept_budget: Optional[List[Tuple[RunRequest, str]]]):
    """The runs still to do, their expected time, then the executor's run of them (its failures);
    ``trains``: scene -> whether its data is here."""
    profile_name, reference_root, keep_stale = profile.name, options.reference_root, options.keep_stale
    if kept_budget is not None:  # a reproduction (reproducing_reference)
        listed = [why for run, why in kept_budget if trains[run.scene]]
        absent = len(kept_budget) - len(listed)
        print(f"== reproducing {portable_path(Path(reference_root))}: {len(grid) - len(kept_budget)} of {len(grid)} runs train for the "
              "median iterations of their reference seeds instead of the profile's time budget"
              + (f"; at the budget: {', '.join(listed)}" if listed else "")
              + (f"; {absent} without a reference run whose data is not here either" if absent else ""), flush=True)
    todo, stale = [], []
    data_hash = data_hashes(profile.synthetic_bed_variant)
    for run in grid:
        record = read_record(run.record_path(results_root))
        settle_leftover(run_notebook_path(results_root, profile_name, run.run_id), finished=(record or {}).get("status") in FINISHED_STATUSES)
        problem = record_problem(run.record_path(results_root)) if record is None else None
        if problem:
            print(f"== {run.run_id}: its record file cannot be read ({problem}); run again", flush=True)
        if options.force or record is None or record.get("status") not in FINISHED_STATUSES:
            todo.append(run)
        elif record.get("status") == "skipped" and trains[run.scene]:
            todo.append(run)  # skipped for want of data that is there now
        else:
            changed = stale_because(run, record, data_hash)
            if changed:
                stale.append((run, changed))
                if not keep_stale:
                    todo.append(run)
                elif record.get("kept_stale") != changed:  # labelled, so that every table says so
                    write_record(run.record_path(results_root), {**record, "kept_stale": changed})
            elif record.get("kept_stale"):  # the plan runs it as it ran again
                write_record(run.record_path(results_root), {key: value for key, value in record.items() if key != "kept_stale"})
    for run, changed in stale:
        print(f"== {run.run_id}: its record ran with other settings ({changed}); "
              + ("kept, as --keep-stale asks" if keep_stale else "run again (--keep-stale keeps it)"), flush=True)
    per_run = expected_run_seconds(profile)
    # Durations measured before: this folder's, the reference's and the committed study's notebooks.
    measured = measured_run_seconds(todo, profile, [results_root, reference_root, REPO_ROOT / "results"], options.evidence) if per_run else {}
    plan = GridPlan(profile_name, Path(results_root), todo, trains, options.notebooks,
                    first_estimate_seconds=per_run or RUN_OVERHEAD_SECONDS, estimates=measured)
    what = f"{profile_name} profile" + (" study" if options.study else "")
    print(f"== {what}: {len(grid)} runs, {len(grid) - len(todo)} already done, {len(todo)} to go", flush=True)
    training = plan.training_runs(todo)
    absent = sorted({run.scene for run in todo if not trains[run.scene]})
    if todo:
        skips = f"; {len(todo) - training} end at once, their data not present ({', '.join(absent)})" if absent else ""
        if per_run is None:
            print(f"== {training} to train{skips}; their time is not known before one ends (the profile stops at an iteration count)", flush=True)
        else:
            train = expected_train_wall_seconds(profile)
            timed = sum(1 for run in todo if trains[run.scene] and run.run_id in measured)
            basis = []
            if timed:
                basis.append(f"{timed} as long as the same method on the same scene took before (its notebooks' durations)")
            if training - timed:
                basis.append(f"{training - timed} x {minutes(per_run)} ({train:.0f} s of training on a quiet 2-core machine "
                             f"+ {RUN_OVERHEAD_SECONDS:.0f} s of evaluation and notebook)")
            print(f"== expected time about {minutes(plan.expected_seconds(todo))}: {training} to train, {'; '.join(basis)}{skips}",
                  flush=True)
    print(f"== each run's own output: {portable_path(log_path(results_root, profile_name, '<run>'))}", flush=True)
    return executor.run(plan)
