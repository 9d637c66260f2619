"""``akdqff-bench``: run the grid, one run, a baseline sweep, or print the comparison.

    akdqff-bench grid  --profile quick            # every (method, scene, seed); resumes; --force reruns
    akdqff-bench grid  --profile quick --study    # the study: 3 seeds of every run, plus the capacity points
    akdqff-bench grid  --profile quick --results results/local --reference results   # yours beside the committed study
    akdqff-bench run   --method nerf --scene synthetic-bed --profile quick [--capacity "width 128"]
    akdqff-bench sweep --method nerf --profile quick
    akdqff-bench table --profile quick
    akdqff-bench compare --profile quick          # metrics + comparison notebook again, from the records
    akdqff-bench data  --variant quick             # (re)generate synthetic-bed with Blender
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from akdqff_bench.profiles import (CAPACITY_SCENE, CAPACITY_SEED, EVIDENCE_LEVELS, SWEEPS, NoStudy, Profile, curve_points,
                                   expected_train_wall_seconds, get_profile)
from akdqff_bench.records import (aggregate, is_finished, load_records, log_path, portable_path, portable_text, read_record,
                                  record_path)

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
RUN_NOTEBOOK = NOTEBOOKS / "run_single.ipynb"
COMPARE_NOTEBOOK = NOTEBOOKS / "compare.ipynb"


class BadReference(ValueError):
    """``--reference`` names no folder of run records."""


def _scene_present(scene: str, variant: str) -> bool:
    from akdqff_bench.datasets import DatasetError, resolve_scene

    try:
        resolve_scene(scene, variant)
    except DatasetError:
        return False
    return True


def execute_notebook(source: Path, target: Path, parameters: dict) -> None:
    import logging

    import papermill

    # papermill forwards the kernel's output through its logger: write it where this process's
    # stdout is now (the console for a single run, the run's log file in a grid: executors.output_to).
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    # The kernel runs in the repository root, so a results root inside the repository is passed
    # relative to it: the executed notebook is committed and must not name this machine's folders.
    parameters = {key: portable_path(Path(value)) if key in ("results_root", "reference_root") and value else value
                  for key, value in parameters.items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(source), str(target), parameters=parameters, log_output=True, progress_bar=False, cwd=str(REPO_ROOT), kernel_name="python3"
        )
    finally:  # a failed run's notebook is written too, traceback included
        logger.removeHandler(handler)
        if target.exists():
            make_notebook_portable(target)


def make_notebook_portable(path: Path) -> None:
    """Rewrite the executed notebook with the repository's absolute location taken out of its text:
    papermill's metadata (input/output path) and what libraries print (warnings and log lines name
    their source files, nerfstudio prints its output folder). Images are left alone."""
    import nbformat

    def portable(node):
        if isinstance(node, str):
            return portable_text(node)
        if isinstance(node, list):
            return [portable(item) for item in node]
        if isinstance(node, dict):
            return {key: value if key.startswith("image/") else portable(value) for key, value in node.items()}
        return node

    notebook = nbformat.read(path, as_version=4)
    nbformat.write(nbformat.from_dict(portable(notebook)), path)


def plan_runs(profile: Profile, methods: List[str], scenes: List[str], study: bool = False):
    """The grid's runs in order: every (scene, method) for each seed (the profile's seeds, or its
    study seeds with ``study``), seed by seed so a study run in parts completes whole seeds first;
    with ``study`` then each method's capacity points, on CAPACITY_SCENE with CAPACITY_SEED only."""
    from akdqff_bench.executors import Run

    if study and not profile.study_seeds:
        raise NoStudy(f"the {profile.name} profile defines no study (study seeds and capacity points); the quick profile does")
    seeds = profile.study_seeds if study else profile.seeds
    runs = [Run(method, scene, seed) for seed in seeds for scene in scenes for method in methods]
    if study and CAPACITY_SCENE in scenes:
        runs += [Run(method, CAPACITY_SCENE, CAPACITY_SEED, label) for method in methods for label in profile.capacities.get(method, {})]
    return runs


def expected_run_seconds(profile: Profile) -> Optional[float]:
    """One run's wall time on a quiet 2-core machine: its training (the budget in wall seconds) plus
    the evaluation and notebooks around it; None for a profile stopped by an iteration count."""
    from akdqff_bench.executors import RUN_OVERHEAD_SECONDS

    train = expected_train_wall_seconds(profile)
    return None if train is None else train + RUN_OVERHEAD_SECONDS


def measured_run_seconds(runs, profile_name: str, folders: Iterable[Optional[Path]], evidence: str = "full") -> Dict[str, float]:
    """run_id -> the median wall time of the executed notebooks of the same method, scene and
    capacity (any seed) in ``folders`` (papermill's duration), for the runs that have one. The grid's
    estimate uses these: one figure for every run would be far off on the real scene, where AKDQFF's
    evidence figures take about 10 min more than on synthetic-bed. Notebooks that drew the same
    ``evidence`` count first; failing those, one drawn at another level counts with its evidence
    cell's time scaled to this level (report.evidence_cost_ratio). Either way its learning curve's
    evaluations (its record's ``eval_seconds``) are scaled to this level's number of points: a
    notebook from before the level set the curve's points says "short" with the full curve."""
    import json
    import statistics

    from akdqff_bench.report import evidence_cost_ratio

    wanted_points = curve_points(get_profile(profile_name), evidence)
    # run id without its seed -> [(evidence level, notebook seconds, seconds of its evidence cell,
    #                              seconds of its curve's evaluations, the curve's points)]
    measured: Dict[str, List[Tuple[str, float, float, float, int]]] = {}
    for folder in dict.fromkeys(Path(f).resolve() for f in folders if f is not None):
        for notebook in sorted((folder / profile_name / "notebooks").glob("*.ipynb")):
            try:
                content = json.loads(notebook.read_text(encoding="utf-8"))
                seconds = content["metadata"]["papermill"]["duration"]
                # Notebooks from before the parameter existed drew the full evidence.
                level = content["metadata"]["papermill"].get("parameters", {}).get("evidence", "full")
                evidence_seconds = sum(float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0)
                                       for cell in content.get("cells", []) if "method_figures(" in "".join(cell.get("source", "")))
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


def check_reference(reference_root: Optional[Path], profile_name: str) -> None:
    if reference_root is not None and not (Path(reference_root) / profile_name / "runs").is_dir():
        raise BadReference(f"--reference {reference_root}: no run records of the {profile_name} profile there "
                           f"(expected {Path(reference_root) / profile_name / 'runs'}/*.json)")


def run_grid(profile_name: str, results_root: Path, methods: Optional[List[str]] = None, scenes: Optional[List[str]] = None,
             force: bool = False, device_type: Optional[str] = None, notebooks: bool = True, executor="local",
             address: Optional[str] = None, retries: Optional[int] = None, cpus_per_run: Optional[int] = None,
             study: bool = False, reference_root: Optional[Path] = None, evidence: str = "full") -> int:
    """Every (method, scene, seed) of the profile not yet finished (all of them with ``force``), then
    the comparison. ``study``: the profile's study seeds and capacity points instead of its seeds.
    ``executor``: "local" (one run after another here), "ray" (one Ray task per run on the cluster at
    ``address``), or an executor object (akdqff_bench.executors). ``reference_root``: a results
    folder whose records of this profile the comparison sets beside these. ``evidence``: how much
    method-specific evidence the run notebooks draw (profiles.EVIDENCE_LEVELS)."""
    from akdqff_bench.executors import DEFAULT_RETRIES, RUN_OVERHEAD_SECONDS, GridPlan, check_results_writable, make_executor, minutes
    from akdqff_bench.methods import UnknownMethod, registered_method_names

    profile = get_profile(profile_name)
    if evidence not in EVIDENCE_LEVELS:
        raise ValueError(f"evidence must be one of {EVIDENCE_LEVELS}, not {evidence!r}")
    unknown = [m for m in methods or [] if m not in registered_method_names()]
    if unknown:
        raise UnknownMethod(f"unknown method(s) {unknown}; registered methods: {', '.join(registered_method_names())}")
    check_reference(reference_root, profile_name)
    methods = methods or list(profile.methods)
    scenes = scenes or list(profile.scenes)
    grid = plan_runs(profile, methods, scenes, study)
    if isinstance(executor, str):
        executor = make_executor(executor, address, DEFAULT_RETRIES if retries is None else retries, cpus_per_run)
    check_results_writable(results_root, profile_name)  # before any training, not after the first run
    todo = [run for run in grid if force or not is_finished(record_path(results_root, profile_name, *run))]
    # Runs whose data is absent end at once (recorded as skipped): they do not count in the ETA.
    trains = {scene: _scene_present(scene, profile.synthetic_bed_variant) for scene in scenes}
    per_run = expected_run_seconds(profile)
    # Durations measured before: this folder's, the reference's and the committed study's notebooks.
    measured = measured_run_seconds(todo, profile_name, [results_root, reference_root, REPO_ROOT / "results"], evidence) if per_run else {}
    plan = GridPlan(profile_name, Path(results_root), todo, trains, device_type, notebooks,
                    first_estimate_seconds=per_run or RUN_OVERHEAD_SECONDS, estimates=measured, evidence=evidence)
    what = f"{profile_name} profile" + (" study" if study else "")
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
    failures = executor.run(plan)
    write_comparison(profile_name, results_root, notebooks, reference_root)
    return 1 if failures else 0


def write_comparison(profile_name: str, results_root: Path, notebook: bool = True, reference_root: Optional[Path] = None) -> None:
    """metrics.csv/json, the executed comparison notebook and its HTML, from the records alone; with
    ``reference_root``, the comparison sets these records beside that folder's (the committed study)."""
    from akdqff_bench.executors import output_to

    check_reference(reference_root, profile_name)
    csv_path = aggregate(results_root, profile_name)
    print(f"== metrics: {csv_path}", flush=True)
    if notebook:
        compare = Path(results_root) / profile_name / "compare.ipynb"
        parameters = dict(profile=profile_name, results_root=str(results_root), reference_root=str(reference_root or ""))
        log = log_path(results_root, profile_name, "compare")
        try:
            with output_to(log):  # the notebook's own output; the console keeps the table
                execute_notebook(COMPARE_NOTEBOOK, compare, parameters)
        except Exception:
            print(f"!! the comparison notebook failed; its output: {portable_path(log)}", flush=True)
            raise
        export_html(compare)
    print_table(profile_name, results_root)
    if reference_root is not None:
        print_reproduction(profile_name, results_root, reference_root)


def print_reproduction(profile_name: str, results_root: Path, reference_root: Path) -> None:
    """One line: how many of your numbers lie outside the reference seeds' range (the page has the table)."""
    from akdqff_bench.report import reproduction_comparison

    table = reproduction_comparison(load_records(results_root, profile_name), load_records(reference_root, profile_name))
    if table.empty:
        print(f"\nAgainst the reference ({portable_path(Path(reference_root))}): no (scene, method) measured in both.", flush=True)
        return
    judged = table[table["outside_reference_spread"].notna()]
    outside = judged[judged["outside_reference_spread"].astype(bool)]
    listed = ", ".join(f"{r.method} {r.quantity} on {r.scene}" for r in outside.itertuples()) or "none"
    print(f"\nAgainst the reference ({portable_path(Path(reference_root))}): {len(outside)} of {len(judged)} compared values outside the "
          f"reference seeds' range ({listed}); {len(table) - len(judged)} not judged (1 reference seed). Details: compare.html.", flush=True)


def export_html(notebook: Path) -> Path:
    """The executed notebook as a reader's page: no code, no prompts, no stderr (warnings name
    files on this machine); tables and figures as the notebook shows them."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": "AKDQFF benchmark: results"}})
    html = notebook.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    print(f"== comparison: {notebook} and {html}", flush=True)
    return html


def print_table(profile_name: str, results_root: Path) -> None:
    from akdqff_bench.report import format_table

    print(f"\n{profile_name} profile, measured (mean ± std over seeds; Stored model = the model file the evaluation renders from; "
          "Update = median s/iter after warm-up; Mean s/iter = training time / iterations):")
    print(format_table(load_records(results_root, profile_name)), flush=True)


class UnknownCandidate(ValueError):
    """A sweep candidate number the method's sweep does not have."""


def run_sweep(method: str, profile_name: str, results_root: Path, force: bool = False, scene: str = "synthetic-bed",
              candidates: Optional[Iterable[int]] = None) -> Path:
    """Train every candidate of SWEEPS[method] (or only the numbers in ``candidates``: a sweep in
    parts, or a subset where the whole costs too much) in the profile's budget on ``scene``; rank
    them by test PSNR. A candidate neither trained now nor before is listed as "not run"."""
    import pandas as pd

    from akdqff_bench.methods import UnknownMethod, registered_method_names
    from akdqff_bench.records import read_record, scene_file_id
    from akdqff_bench.runner import run_one

    get_profile(profile_name)  # an unknown profile is named before anything trains
    settings_of = SWEEPS.get(method)
    if not settings_of:
        known = ", ".join(name for name in registered_method_names() if name in SWEEPS)
        raise UnknownMethod(f"no sweep candidates for {method!r}; methods with a sweep: {known} (defined in akdqff_bench/profiles.py)")
    wanted = set(range(len(settings_of)) if candidates is None else candidates)
    if not wanted or not wanted <= set(range(len(settings_of))):
        raise UnknownCandidate(f"{method}'s sweep has candidates 0-{len(settings_of) - 1}; asked for {sorted(wanted)}")
    # synthetic-bed keeps the committed names (sweeps/<method>-<profile>); other scenes add theirs.
    name = f"{method}-{profile_name}" + ("" if scene == "synthetic-bed" else f"-{scene_file_id(scene)}")
    sweep_dir = Path(results_root) / "sweeps" / name
    rows = []
    for index, overrides in enumerate(settings_of):
        record_file = sweep_dir / f"candidate{index}.json"
        record = read_record(record_file)
        if index not in wanted:
            record = record or {"status": "not run"}
        elif force or record is None or record.get("status") != "ok":
            print(f"== sweep {method} [{index + 1}/{len(settings_of)}]: {overrides}", flush=True)
            try:
                record = run_one(method, scene, profile_name, 0, Path(results_root), extra_overrides=overrides, record_file=record_file).record
            except Exception as error:  # recorded as failed by run_one; the other candidates still run
                print(f"!! sweep {method} candidate {index} failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
                record = read_record(record_file) or {"status": "failed"}
        settings = {k.removeprefix("pipeline.model."): str(v) for k, v in overrides.items()}
        rows.append({"candidate": index, **settings, "status": record.get("status"),
                     **{k: record.get(k) for k in ("psnr", "ssim", "iterations", "s_per_iter", "model_size_bytes")}})
    table = pd.DataFrame(rows).sort_values("psnr", ascending=False, na_position="last")
    if table["psnr"].isna().all():
        raise RuntimeError(f"every {method} sweep candidate failed; see the records in {sweep_dir}")
    out = Path(results_root) / "sweeps" / f"{name}.csv"
    table.to_csv(out, index=False)
    print(table.to_string(index=False), flush=True)
    print(f"== best candidate for {method}: {settings_of[int(table.iloc[0]['candidate'])]} -> {out}", flush=True)
    return out


def _user_error(error: Exception) -> bool:
    """A mistake in what the user asked for or pointed at (not a bug): its message says it all."""
    from akdqff_bench.datasets import DatasetError
    from akdqff_bench.datasets.synthetic_bed import AssetUnavailableError
    from akdqff_bench.executors import ExecutorError
    from akdqff_bench.methods import UnknownMethod
    from akdqff_bench.profiles import UnknownCapacity, UnknownProfile

    return isinstance(error, (UnknownMethod, UnknownProfile, UnknownCapacity, UnknownCandidate, NoStudy, BadReference, DatasetError,
                              AssetUnavailableError, ExecutorError))


def main(argv: Optional[List[str]] = None) -> int:
    """The command line; a user's mistake (unknown method, profile or scene, missing or bad data) is
    answered with its message alone on stderr and exit status 2, as argparse answers a bad option."""
    try:
        return _main(argv)
    except Exception as error:
        if not _user_error(error):
            raise
        print(f"akdqff-bench: error: {error}", file=sys.stderr)
        return 2


def _main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="akdqff-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("grid", "run", "sweep", "table", "compare"):
        p = sub.add_parser(name)
        p.add_argument("--profile", default="quick")
        p.add_argument("--results", type=Path, default=REPO_ROOT / "results")
        if name in ("grid", "run", "sweep"):
            p.add_argument("--force", action="store_true", help="rerun finished runs instead of skipping them")
            p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="override the profile's device")
    grid = sub.choices["grid"]
    grid.add_argument("--methods", nargs="+")
    scene_help = ("a named scene (synthetic-bed, ethiopian-head, tanks-temples/<scene>) or a folder by path: "
                  "blender:PATH, colmap:PATH, nerfstudio:PATH, llff:PATH")
    grid.add_argument("--scenes", nargs="+", help=scene_help + "; default: the profile's scenes")
    grid.add_argument("--no-notebooks", action="store_true", help="run in-process without papermill")
    grid.add_argument("--study", action="store_true",
                      help="the profile's study: its study seeds for every (scene, method), plus each method's capacity points "
                           "(synthetic-bed, seed 0); resumes like the grid, so it can be run in parts")
    grid.add_argument("--evidence", choices=EVIDENCE_LEVELS, default="full",
                      help="how much evidence beside the metrics each run draws: full (the committed study's: 8 learning-curve "
                           "points, AKDQFF's rate-distortion curve at 8 points x 300 fine-tuning batches, its kernel density on "
                           "every training view) or short (4 curve points at the same fractions of the budget; 4 x 100; 16 views: "
                           "what ./run_all.sh draws by default). Training and the final metrics are the same")
    grid.add_argument("--reference", type=Path, default=None,
                      help="a results folder (e.g. results) whose records of this profile the comparison sets beside yours, "
                           "with the difference, flagged when outside the reference's seed range")
    grid.add_argument("--executor", choices=["local", "ray"], default="local",
                      help="local: one run after another here (default); ray: one Ray task per run on a cluster (the 'cluster' extra)")
    grid.add_argument("--address", help="with --executor ray: the cluster, 'auto' (the one started here with `ray start`) or HOST:PORT; "
                                        "default: that one if it runs, else a new local one")
    grid.add_argument("--retries", type=int, default=None,
                      help="with --executor ray: times a run whose worker or node died is run again before it is recorded as failed (default 2)")
    grid.add_argument("--cpus-per-run", type=int, default=None,
                      help="with --executor ray: CPUs a CPU run reserves and trains with (default: 2 for a time-budgeted profile, as the "
                           "quick results were measured; else 1)")
    sub.choices["compare"].add_argument("--reference", type=Path, default=None,
                                        help="a results folder whose records of this profile the comparison sets beside yours")
    run = sub.choices["run"]
    run.add_argument("--method", required=True)
    run.add_argument("--scene", default="synthetic-bed", help=scene_help)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--capacity", default=None,
                     help="one of the profile's capacity points for the method (e.g. 'width 128'); default: the method's profile settings")
    sweep = sub.choices["sweep"]
    sweep.add_argument("--method", required=True)
    sweep.add_argument("--scene", default="synthetic-bed", help="a named scene or LAYOUT:PATH (blender, colmap, nerfstudio, llff)")
    sweep.add_argument("--candidates", type=int, nargs="+", default=None,
                       help="train only these candidate numbers (0-based, as in the CSV); the others keep their records or are "
                            "listed as not run. Default: all")
    data = sub.add_parser("data")
    data.add_argument("--variant", default="quick")
    data.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    if args.command == "grid":
        if args.executor == "local" and (args.address or args.retries is not None or args.cpus_per_run is not None):
            parser.error("--address, --retries and --cpus-per-run are for --executor ray")
        return run_grid(args.profile, args.results, args.methods, args.scenes, args.force, args.device, not args.no_notebooks,
                        args.executor, args.address, args.retries, args.cpus_per_run, args.study, args.reference, args.evidence)
    if args.command == "run":
        from akdqff_bench.records import read_record
        from akdqff_bench.runner import run_one

        get_profile(args.profile).capacity_overrides(args.method, args.capacity)  # an unknown label: its message, exit 2
        # Only a run that trained counts as done here: a skipped one (data absent) looks again.
        previous = read_record(record_path(args.results, args.profile, args.method, args.scene, args.seed, args.capacity)) or {}
        if not args.force and previous.get("status") == "ok":
            print("already finished (use --force to rerun)")
            return 0

        result = run_one(args.method, args.scene, args.profile, args.seed, args.results, args.device, capacity=args.capacity)
        aggregate(args.results, args.profile)
        if result.record["status"] == "skipped":  # the scene's data is not there: say where it goes
            print(f"akdqff-bench: error: {result.record['message']}", file=sys.stderr)
            return 2
        return 0
    if args.command == "sweep":
        run_sweep(args.method, args.profile, args.results, args.force, args.scene, args.candidates)
        return 0
    if args.command == "table":
        print_table(args.profile, args.results)
        return 0
    if args.command == "compare":
        write_comparison(args.profile, args.results, reference_root=args.reference)
        return 0
    if args.command == "data":
        from akdqff_bench.datasets import synthetic_bed

        synthetic_bed.generate(args.variant, args.out or REPO_ROOT / "data" / "synthetic-bed" / args.variant)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
