"""How many CPU seconds each method's quick training spends per wall second on this machine.

The quick profile's CPU-time budget must match the 240 s wall-clock budget it replaced on a quiet
2-core machine (``profiles.QUICK_CPU_PER_WALL``). Run this on such a machine with nothing else
running; it trains every method once under a wall-clock budget and reports, per method, the
process CPU seconds over wall seconds of its training iterations (both from the run's record)::

    .venv/bin/python -m akdqff_bench.experiments.cpu_calibration              # 4 x 240 s, about 20 min
    .venv/bin/python -m akdqff_bench.experiments.cpu_calibration --seconds 60  # about 6 min, rougher

Leave ``OMP_NUM_THREADS`` unset, as the grid runs (torch then uses both cores; the ratio is about
how much of the second core it keeps busy), and leave ``OMP_WAIT_POLICY`` as the grid has it
(the harness sets ``PASSIVE``; see ``akdqff_bench.experiments.contention``): spinning threads
count as CPU time. It writes ``results/<profile>/cpu-calibration.csv`` (and the records under ``cpu-calibration/``) and
prints the ratio to put in ``QUICK_CPU_PER_WALL`` (the mean over the methods).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import List, Optional

import pandas as pd

from akdqff_bench.experiments import OtherLoad, with_budget
from akdqff_bench.profiles import QUICK_WALL_SECONDS_QUIET, get_profile
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.records import write_record


def calibrate(methods: List[str], scene: str, base_profile: str, seconds: float, out_dir: Path, force: bool = False) -> pd.DataFrame:
    import torch

    from akdqff_bench.request import RunRequest
    from akdqff_bench.runner import run_one
    from akdqff_bench.sweeps import resume_each

    profile = with_budget(get_profile(base_profile), "wall", seconds)

    def train(request: RunRequest, root: Path) -> dict:
        with OtherLoad() as others:
            record = run_one(request, root).record
        record["other_cpu_per_wall"] = others.per_wall  # over the whole run: should be near 0
        write_record(request.record_path(root), record)
        return record

    with tempfile.TemporaryDirectory(prefix="akdqff-calibration-") as scratch:  # checkpoints: not kept
        requests = [RunRequest(method, scene, profile, 0, record_file=str(out_dir / f"{method}.json")) for method in methods]
        records = resume_each(requests, Path(scratch), force, train=train, label="calibration")
    rows = []
    for method, record in zip(methods, records):
        rows.append({
            "method": method, "scene": scene, "wall_budget_seconds": seconds, "iterations": record["iterations"],
            "train_seconds": record["train_seconds"], "train_cpu_seconds": record["train_cpu_seconds"],
            "cpu_per_wall": record["train_cpu_seconds"] / record["train_seconds"],
            "s_per_iter": record["s_per_iter"], "cpu_s_per_iter": record["cpu_s_per_iter"],
            "other_cpu_per_wall": record.get("other_cpu_per_wall"), "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "omp_wait_policy": record.get("omp_wait_policy"), "device": record["device"],
        })
    return pd.DataFrame(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=None, help="default: the profile's methods")
    parser.add_argument("--scene", default="synthetic-bed")
    parser.add_argument("--profile", default="quick", help="the settings each method trains with")
    parser.add_argument("--seconds", type=float, default=QUICK_WALL_SECONDS_QUIET, help="wall-clock training budget per method")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("--force", action="store_true", help="measure again instead of reusing finished records")
    args = parser.parse_args(argv)

    profile = get_profile(args.profile)
    out_dir = args.results / args.profile / "cpu-calibration"
    table = calibrate(args.methods or list(profile.methods), args.scene, args.profile, args.seconds, out_dir, args.force)
    csv_path = args.results / args.profile / "cpu-calibration.csv"
    table.to_csv(csv_path, index=False)
    print(table.to_string(index=False))
    ratio = statistics.mean(table["cpu_per_wall"])
    print(f"\nmean CPU seconds per wall second: {ratio:.3f} (min {table['cpu_per_wall'].min():.3f}, max {table['cpu_per_wall'].max():.3f})")
    print(f"-> QUICK_CPU_PER_WALL = {ratio:.2f} in akdqff_bench/profiles.py: a CPU budget of "
          f"{QUICK_WALL_SECONDS_QUIET * ratio:.0f} CPU-s for {QUICK_WALL_SECONDS_QUIET:.0f} s of quiet wall time; {csv_path}")
    if max(table["other_cpu_per_wall"].dropna(), default=0) > 0.1:
        print("!! other programs used the CPU during a run (other_cpu_per_wall > 0.1): not quiet, the ratio is too low")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
