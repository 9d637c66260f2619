"""Build AKDQFF's spatial index for 200,000 kernels at the ``full`` profile's scales: time and peak memory.

    .venv/bin/python benchmarks/index_build.py            # writes results/benchmarks/index_build.{csv,md}
    .venv/bin/python benchmarks/index_build.py --kernels 2000 --out /tmp/index_build.csv   # a quick check

The settings are read from the code, not repeated here: the grid resolution, ``max_scale``,
``support_cutoff`` and ``max_kernels_per_cell`` are ``AKDQFFModelConfig``'s defaults (the full
profile overrides none of them), the index margin is ``RBFKernelField``'s, and the box is the
NeRF-synthetic ±1.5 cube the full profile's synthetic-bed uses. Each scenario runs in a fresh
subprocess (torch's allocations are invisible to tracemalloc): its peak resident memory is sampled
by psutil during the build, and the increase over the resident memory just before the build is
reported. Scenarios (kernel centres and bandwidths; the rest of a trained model does not matter):

- ``init``: the paper's initialisation: centres uniform in the box, every bandwidth the default
  initial scale for that K (0.3 × the mean spacing);
- ``surface``: centres within 0.02 of a sphere of radius 1 (kernels gathered on a surface, as
  training leaves them), bandwidths log-uniform between a third and three times the spacing on that
  surface, and 0.1% of the kernels at ``max_scale`` (the largest kernels the field allows: the old
  dense index sized every kernel's work by the largest one).

``dense_mask_gb`` is what the former index's dense [K, P] mask alone would have taken (bool
bytes, P the cube of the largest kernel's cell extent), computed, not built.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

SCENARIOS = ("init", "surface")
BOX_HALF_WIDTH = 1.5  # NeRF-synthetic (synthetic-bed) scene box: [-1.5, 1.5]³
LARGE_KERNEL_FRACTION = 0.001


def settings() -> dict:
    from akdqff_method.field import RBFKernelField
    from akdqff_method.model import AKDQFFModelConfig

    config = AKDQFFModelConfig()
    return {
        "grid_resolution": config.grid_resolution,
        "max_scale": config.max_scale,
        "min_scale": config.min_scale,
        "support_cutoff": config.support_cutoff,
        "max_kernels_per_cell": config.max_kernels_per_cell,
        "index_margin": inspect.signature(RBFKernelField).parameters["index_margin"].default,
    }


def make_kernels(scenario: str, num_kernels: int, cfg: dict, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    if scenario == "init":
        volume = (2 * BOX_HALF_WIDTH) ** 3
        scale = 0.3 * (volume / num_kernels) ** (1.0 / 3.0)
        centers = (torch.rand(num_kernels, 3, generator=generator) * 2 - 1) * BOX_HALF_WIDTH
        scales = torch.full((num_kernels, 3), scale)
    elif scenario == "surface":
        directions = torch.nn.functional.normalize(torch.randn(num_kernels, 3, generator=generator), dim=-1)
        radius = 1.0 + 0.02 * (torch.rand(num_kernels, 1, generator=generator) * 2 - 1)
        centers = directions * radius
        spacing = math.sqrt(4 * math.pi / num_kernels)
        log_lo, log_hi = math.log(spacing / 3), math.log(3 * spacing)
        scales = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(num_kernels, 3, generator=generator))
        large = torch.rand(num_kernels, generator=generator) < LARGE_KERNEL_FRACTION
        scales[large] = cfg["max_scale"]
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")
    scales = scales.clamp(cfg["min_scale"], cfg["max_scale"])
    importance = torch.rand(num_kernels, generator=generator)  # amplitude × feature norm stand-in
    return centers, scales, importance


def current_rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def worker(scenario: str, num_kernels: int, threads: int) -> dict:
    """One build in this (fresh) process; returns the row."""
    import torch

    from akdqff_method.spatial_index import KernelGridIndex

    torch.set_num_threads(threads)
    cfg = settings()
    centers, scales, importance = make_kernels(scenario, num_kernels, cfg)
    support_in_bandwidths = cfg["support_cutoff"] * cfg["index_margin"]
    radii = support_in_bandwidths * scales
    aabb = torch.tensor([[-BOX_HALF_WIDTH] * 3, [BOX_HALF_WIDTH] * 3])
    index = KernelGridIndex(aabb, cfg["grid_resolution"], cfg["max_kernels_per_cell"], support_in_bandwidths)
    baseline = current_rss()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], current_rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    index.build(centers, radii, importance)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], current_rss())
    cell_size = 2 * BOX_HALF_WIDTH / cfg["grid_resolution"]
    largest_extent = min(math.floor(2 * float(radii.max()) / cell_size) + 2, cfg["grid_resolution"])
    return {
        "scenario": scenario,
        "kernels": num_kernels,
        "grid_resolution": cfg["grid_resolution"],
        "max_scale": cfg["max_scale"],
        "largest_support_radius": round(float(radii.max()), 4),
        "median_support_radius": round(float(radii.median()), 4),
        "max_kernels_per_cell": cfg["max_kernels_per_cell"],
        "pairs_stored": int(index.kernel_ids.numel()),
        "touched_cells": index.touched_cells,
        "max_kernels_in_a_cell": index.max_cell_count,
        "truncated_cells": index.truncated_cells,
        "truncated_fraction": round(index.truncated_fraction(), 5),
        "build_seconds": round(seconds, 3),
        "peak_rss_increase_mb": round((peak[0] - baseline) / 1e6, 1),
        "dense_mask_gb": round(num_kernels * largest_extent**3 / 1e9, 2),
        "threads": threads,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", type=int, default=200_000)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/index_build.csv"))
    parser.add_argument("--worker", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.kernels, args.threads)))
        return 0
    import pandas as pd

    rows = []
    for scenario in args.scenarios:
        print(f"index build: {scenario}, K = {args.kernels} ...", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        completed = subprocess.run(
            [sys.executable, __file__, "--worker", scenario, "--kernels", str(args.kernels), "--threads", str(args.threads)],
            capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[1],
        )
        if completed.returncode != 0:
            raise RuntimeError(f"scenario {scenario} failed:\n{completed.stderr[-4000:]}")
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"  {row['build_seconds']} s, peak +{row['peak_rss_increase_mb']} MB, {row['pairs_stored']} pairs", flush=True)
        rows.append(row)
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    header = "| " + " | ".join(frame.columns) + " |\n| " + " | ".join("---" for _ in frame.columns) + " |\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in frame.itertuples(index=False))
    note = (f"# Spatial index build, {args.kernels} kernels, full-profile scales\n\n"
            f"Made by `benchmarks/index_build.py` (see its docstring for the scenarios); {args.threads} torch threads.\n\n")
    args.out.with_suffix(".md").write_text(note + header + body, encoding="utf-8")
    print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
