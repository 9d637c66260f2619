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
import warnings
from typing import List, Optional

from akdqff_bench.lock import holding, profile_lock
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.profiles import EVIDENCE_LEVELS, NoStudy, get_profile
from akdqff_bench.records import aggregate, read_record

# Each command imports what it runs when it runs (torch and nerfstudio come with the grid, the
# runner and the datasets): --help and a mistyped option answer in seconds, not in fifteen, and
# main() silences the libraries' import-time warnings before they load.


def _user_error(error: Exception) -> bool:
    """A mistake in what the user asked for or pointed at (not a bug): its message says it all."""
    from akdqff_bench.datasets import DatasetError
    from akdqff_bench.datasets.synthetic_bed import AssetUnavailableError
    from akdqff_bench.executors import ExecutorError
    from akdqff_bench.grid import BadReference
    from akdqff_bench.lock import ResultsBusy
    from akdqff_bench.methods import MethodCannotRun, UnknownMethod
    from akdqff_bench.profiles import UnknownCapacity, UnknownProfile
    from akdqff_bench.records import NoRecords, UnreadableRecords
    from akdqff_bench.request import BadRequest
    from akdqff_bench.sweeps import UnknownCandidate

    return isinstance(error, (UnknownMethod, MethodCannotRun, UnknownProfile, UnknownCapacity, UnknownCandidate, NoStudy, BadReference,
                              BadRequest, ResultsBusy, DatasetError, AssetUnavailableError, ExecutorError, NoRecords, UnreadableRecords))


def _count(least: int):
    """An argparse type: an integer of at least ``least`` (argparse answers anything else in one line, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is less than {least}")
        return value

    return parse


def quiet_library_warnings() -> None:
    """torch's and nerfstudio's deprecation notices (torch.jit.script, torch.cuda.amp) name code the
    user cannot change: keep them off the console (each run's log still has what its run printed)."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|torchvision|nerfstudio|torchmetrics)(\.|$)")


def main(argv: Optional[List[str]] = None) -> int:
    """The command line; a user's mistake (unknown method, profile or scene, missing or bad data) is
    answered with its message alone on stderr and exit status 2, as argparse answers a bad option."""
    quiet_library_warnings()
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
        if name in ("grid", "run", "sweep", "compare"):
            p.add_argument("--wait", action="store_true",
                           help="when another akdqff-bench process is using the same results (profile or sweep), wait for it "
                                "instead of refusing")
        if name in ("grid", "run", "sweep"):
            p.add_argument("--force", action="store_true", help="rerun finished runs instead of skipping them")
            p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="override the profile's device")
    grid = sub.choices["grid"]
    grid.add_argument("--methods", nargs="+")
    scene_help = ("a named scene (synthetic-bed, nerf-synthetic-mic, ethiopian-head, mary-rose, tanks-temples/<scene>) or a folder by path: "
                  "blender:PATH, colmap:PATH, nerfstudio:PATH, llff:PATH")
    grid.add_argument("--scenes", nargs="+", help=scene_help + "; default: the profile's scenes")
    grid.add_argument("--no-notebooks", action="store_true", help="run in-process without papermill")
    grid.add_argument("--keep-stale", action="store_true",
                      help="keep finished runs whose record ran with other settings than the plan's (default: run them again)")
    grid.add_argument("--study", action="store_true",
                      help="the profile's study: its study seeds for every (scene, method), plus each method's capacity points "
                           "(synthetic-bed, seed 0); resumes like the grid, so it can be run in parts")
    grid.add_argument("--evidence", choices=EVIDENCE_LEVELS, default="full",
                      help="how much evidence beside the metrics each run draws: full (the committed study's: 8 learning-curve "
                           "points and every figure of a method's own evidence at full size) or short (4 curve points at the same "
                           "fractions of the budget; the method's evidence cheaper, as its bench spec says: what ./run_all.sh draws "
                           "by default). Training and the final metrics are the same")
    grid.add_argument("--reference", type=Path, default=None,
                      help="a results folder (e.g. results) whose records of this profile the comparison sets beside yours, "
                           "with the difference, flagged when outside the reference's 95%% prediction interval")
    grid.add_argument("--reproduce", action="store_true",
                      help="with --reference: each run trains for the median iterations of its reference seeds (same method, scene "
                           "and settings) instead of the profile's time budget, so its quality is comparable on any machine and only "
                           "its timings differ (what ./run_all.sh does when the committed study is there)")
    grid.add_argument("--executor", choices=["local", "ray"], default="local",
                      help="local: one run after another here (default); ray: one Ray task per run on a cluster (the 'cluster' extra)")
    grid.add_argument("--address", help="with --executor ray: the cluster, 'auto' (the one started here with `ray start`) or HOST:PORT; "
                                        "default: that one if it runs, else a new local one")
    grid.add_argument("--retries", type=_count(0), default=None,
                      help="with --executor ray: times a run whose worker or node died is run again before it is recorded as failed (default 2)")
    grid.add_argument("--cpus-per-run", type=_count(1), default=None,
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
    sweep.add_argument("--sweep", default="quick", help="which of the method's sweeps (its bench spec's; default: quick)")
    sweep.add_argument("--candidates", type=_count(0), nargs="+", default=None,
                       help="train only these candidate numbers (0-based, as in the CSV); the others keep their records or are "
                            "listed as not run. Default: all")
    data = sub.add_parser("data")
    data.add_argument("--variant", default="quick")
    data.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    if args.command == "grid":
        if args.executor == "local" and (args.address or args.retries is not None or args.cpus_per_run is not None):
            parser.error("--address, --retries and --cpus-per-run are for --executor ray")
        from akdqff_bench.comparison import write_comparison
        from akdqff_bench.grid import GridOptions, run_grid

        options = GridOptions(methods=args.methods, scenes=args.scenes, force=args.force, device_type=args.device,
                              notebooks=not args.no_notebooks, executor=args.executor, address=args.address, retries=args.retries,
                              cpus_per_run=args.cpus_per_run, study=args.study, reference_root=args.reference, evidence=args.evidence,
                              wait=args.wait, keep_stale=args.keep_stale, reproduce=args.reproduce)
        return run_grid(args.profile, args.results, options,
                        after_runs=lambda: write_comparison(args.profile, args.results, options.notebooks, options.reference_root))
    if args.command == "run":
        from akdqff_bench.datasets import checked_scene_name
        from akdqff_bench.executors import check_results_writable, writing_results
        from akdqff_bench.grid import check_device
        from akdqff_bench.methods import check_runnable
        from akdqff_bench.request import RunRequest
        from akdqff_bench.runner import run_one

        request = RunRequest(args.method, checked_scene_name(args.scene), get_profile(args.profile), args.seed, args.capacity,
                             device_type=args.device)
        check_runnable([request.method], request.device)
        check_device(request.device)
        request.profile.capacity_overrides(request.method, request.capacity)  # an unknown label: its message, exit 2
        check_results_writable(args.results, request.profile.name)
        with holding(profile_lock(args.results, request.profile.name), wait=args.wait):
            # Only a run that trained counts as done here: a skipped one (data absent) looks again.
            previous = read_record(request.record_path(args.results)) or {}
            if not args.force and previous.get("status") == "ok":
                print("already finished (use --force to rerun)")
                return 0
            result = run_one(request, args.results)
            with writing_results("metrics.csv", Path(args.results) / request.profile.name):
                aggregate(args.results, args.profile)
        if result.record["status"] == "skipped":  # the scene's data is not there: say where it goes
            print(f"akdqff-bench: error: {result.record['message']}", file=sys.stderr)
            return 2
        return 0
    if args.command == "sweep":
        from akdqff_bench.sweeps import run_sweep

        run_sweep(args.method, args.profile, args.results, args.force, args.scene, args.candidates, args.sweep, args.wait)
        return 0
    if args.command == "table":
        from akdqff_bench import comparison
        from akdqff_bench.records import check_readable

        comparison.print_table(args.profile, args.results)
        check_readable(args.results, args.profile)
        return 0
    if args.command == "compare":
        from akdqff_bench import comparison
        from akdqff_bench.records import check_has_records

        from akdqff_bench.executors import writing_results

        profile_name = get_profile(args.profile).name
        check_has_records(args.results, profile_name)
        with holding(profile_lock(args.results, profile_name), wait=args.wait):
            with writing_results("metrics.csv", Path(args.results) / profile_name):
                print(f"== metrics: {aggregate(args.results, args.profile)}", flush=True)
            comparison.write_comparison(args.profile, args.results, reference_root=args.reference)
        return 0
    if args.command == "data":
        from akdqff_bench.datasets import synthetic_bed

        synthetic_bed.generate(args.variant, args.out or REPO_ROOT / "data" / "synthetic-bed" / args.variant)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
