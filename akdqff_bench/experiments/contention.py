"""Does a run's result survive a busy machine? The same method, scene and seed trained

- quietly, under the profile's CPU-time budget, for seeds 0, 1, 2 (the seed spread to compare with);
- beside a competing CPU load (``--load-processes`` busy Python processes), under the same CPU budget;
- quietly and beside the same load under the wall-clock budget that CPU budget was sized to match
  (how far a wall-clock budget strays).

Run it on an otherwise quiet machine (the quiet runs must be quiet; the load is its own), with
``OMP_NUM_THREADS`` unset as the grid runs::

    .venv/bin/python -m akdqff_bench.experiments.contention --method nerf  # NeRF on synthetic-bed, quick: about 35 min

Torch's OpenMP threads spin while they wait for each other under OpenMP's default policy: beside a
competing load that spinning is CPU time without progress, so it spends a CPU budget (quick NeRF:
1.29 CPU-s per iteration beside a load, against 0.35 with ``OMP_WAIT_POLICY=PASSIVE``). The harness
therefore sets ``PASSIVE`` before torch loads (``akdqff_bench/__init__.py``); to measure another
policy, start Python with it set explicitly (``ACTIVE`` spins always)::

    OMP_WAIT_POLICY=ACTIVE .venv/bin/python -m akdqff_bench.experiments.contention --method nerf --out results/quick/contention-active

The records and the CSV name the policy (``omp_wait_policy``).

Six runs: four of about 240 s of wall time each, the CPU-budget run under load about twice that,
plus about 40 s each to start and evaluate. Finished runs are kept and skipped when it is run
again (``--force`` measures again). It writes ``results/<profile>/contention/contention.csv`` (one
row per run: PSNR, SSIM, iterations, wall and CPU seconds of training, how busy the rest of the
machine was), ``summary.md`` and the run records under ``runs/``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from akdqff_bench.experiments import OtherLoad, with_budget
from akdqff_bench.profiles import QUICK_CPU_PER_WALL, get_profile
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.records import read_record, write_record

BUSY_LOOP = "while True: pass"


class CompetingLoad:
    """``count`` busy Python processes for as long as the block runs (each ended by its own pid)."""

    def __init__(self, count: int):
        self.count = count
        self.processes: List[subprocess.Popen] = []

    def __enter__(self) -> "CompetingLoad":
        self.processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(self.count)]
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def run_condition(name: str, method: str, scene: str, profile: str, seed: int, load_processes: int, out_dir: Path,
                  scratch: Path, force: bool) -> Dict:
    from akdqff_bench.request import RunRequest
    from akdqff_bench.runner import run_one

    record_file = out_dir / "runs" / f"{name}__seed{seed}.json"
    record = read_record(record_file)
    if force or record is None or record.get("status") != "ok":
        print(f"== contention: {name}, seed {seed} ({load_processes} competing processes)", flush=True)
        with CompetingLoad(load_processes), OtherLoad() as others:
            record = run_one(RunRequest(method, scene, profile, seed, record_file=str(record_file)), scratch).record
        record.update(condition=name, load_processes=load_processes, other_cpu_per_wall=others.per_wall)
        write_record(record_file, record)
    return {
        "condition": name, "load_processes": record["load_processes"], "budget_clock": record["budget_clock"],
        "budget_seconds": record["train_budget_seconds"], "method": method, "scene": scene, "seed": seed,
        "psnr": record["psnr"], "ssim": record["ssim"], "iterations": record["iterations"],
        "train_seconds": record["train_seconds"], "train_cpu_seconds": record["train_cpu_seconds"],
        "cpu_per_wall": record["train_cpu_seconds"] / record["train_seconds"],
        "other_cpu_per_wall": record.get("other_cpu_per_wall"), "omp_wait_policy": record.get("omp_wait_policy"), "device": record["device"],
    }


def markdown_table(table: pd.DataFrame) -> str:
    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def summarize(table: pd.DataFrame) -> str:
    """The markdown summary: quiet seed spread, and each loaded run against it."""
    quiet = table[table["condition"] == "quiet-cpu"]["psnr"]
    low, high, mean = quiet.min(), quiet.max(), quiet.mean()
    spread = statistics.stdev(quiet) if len(quiet) > 1 else float("nan")

    def row(condition: str) -> pd.Series:
        return table[table["condition"] == condition].iloc[0]

    lines = ["# Contention experiment", "",
             f"{row('quiet-cpu')['method']} on {row('quiet-cpu')['scene']}; CPU budget {row('quiet-cpu')['budget_seconds']:g} CPU-s, "
             f"wall budget {row('quiet-wall')['budget_seconds']:g} s; competing load: {int(row('loaded-cpu')['load_processes'])} busy processes. "
             "`other_cpu_per_wall`: CPU seconds the rest of the machine used per wall second during the run (/proc/stat).", "",
             markdown_table(table), "",
             f"Quiet seed spread (CPU budget, seeds {', '.join(str(s) for s in table[table['condition'] == 'quiet-cpu']['seed'])}): "
             f"PSNR {mean:.2f} dB mean, {low:.2f} to {high:.2f} dB, standard deviation {spread:.2f} dB.", ""]
    loaded = row("loaded-cpu")
    inside = low <= loaded["psnr"] <= high
    lines.append(f"- Under load with the CPU budget (seed {loaded['seed']}): {loaded['psnr']:.2f} dB, {loaded['psnr'] - mean:+.2f} dB from the quiet mean, "
                 f"{'inside' if inside else 'outside'} the quiet seeds' range; {int(loaded['iterations'])} iterations against "
                 f"{int(row('quiet-cpu')['iterations'])} quietly (same seed), {loaded['train_seconds']:.0f} s of wall time.")
    quiet_wall, loaded_wall = row("quiet-wall"), row("loaded-wall")
    lines.append(f"- With the wall-clock budget: {quiet_wall['psnr']:.2f} dB quietly, {loaded_wall['psnr']:.2f} dB under load "
                 f"({loaded_wall['psnr'] - quiet_wall['psnr']:+.2f} dB), {int(loaded_wall['iterations'])} iterations against "
                 f"{int(quiet_wall['iterations'])}.")
    busy = table[(table["load_processes"] == 0) & (table["other_cpu_per_wall"] > 0.1)]
    if len(busy):
        lines.append(f"- **Not quiet**: other programs used {busy['other_cpu_per_wall'].max():.2f} CPU-s per second during "
                     f"{len(busy)} of the runs without a load of their own; their numbers do not show a quiet machine.")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, help="the method to measure (the committed measurement used nerf)")
    parser.add_argument("--scene", default="synthetic-bed")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="quiet seeds; the loaded runs use the first")
    parser.add_argument("--load-processes", type=int, default=2, help="busy processes beside the loaded runs")
    parser.add_argument("--cpu-budget", type=float, default=None, help="CPU-s; default: the profile's CPU budget")
    parser.add_argument("--wall-budget", type=float, default=None,
                        help="s; default: the CPU budget / profiles.QUICK_CPU_PER_WALL (the wall time it was sized to match)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/<profile>/contention")
    parser.add_argument("--force", action="store_true", help="measure again instead of reusing finished runs")
    args = parser.parse_args(argv)

    base = get_profile(args.profile)
    cpu_budget = args.cpu_budget or (base.train_budget_seconds if base.budget_clock == "cpu" else None)
    if not cpu_budget:
        parser.error(f"profile {args.profile!r} has no CPU budget: give --cpu-budget (and --wall-budget)")
    wall_budget = args.wall_budget or cpu_budget / QUICK_CPU_PER_WALL
    cpu_profile = with_budget(base, "cpu", cpu_budget)
    wall_profile = with_budget(base, "wall", wall_budget)
    out_dir = args.out or REPO_ROOT / "results" / args.profile / "contention"
    first = args.seeds[0]
    plan = [("quiet-cpu", cpu_profile, seed, 0) for seed in args.seeds] + [
        ("loaded-cpu", cpu_profile, first, args.load_processes),
        ("quiet-wall", wall_profile, first, 0),
        ("loaded-wall", wall_profile, first, args.load_processes),
    ]
    with tempfile.TemporaryDirectory(prefix="akdqff-contention-") as scratch:  # checkpoints: not kept
        rows = [run_condition(name, args.method, args.scene, profile, seed, load, out_dir, Path(scratch), args.force)
                for name, profile, seed, load in plan]
    table = pd.DataFrame(rows)
    table.to_csv(out_dir / "contention.csv", index=False)
    summary = summarize(table)
    (out_dir / "summary.md").write_text(summary, encoding="utf-8")
    print(summary, flush=True)
    print(f"== {out_dir / 'contention.csv'}, {out_dir / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
