"""AKDQFF on 1 and on N CPU processes at equal TOTAL rays per step: s/iter and test PSNR.

    .venv/bin/python benchmarks/distributed_cpu.py          # writes results/benchmarks/distributed_cpu.csv
    .venv/bin/python benchmarks/distributed_cpu.py --iterations 6 --rays 128 \\
        --scene blender:/tmp/tiny --out /tmp/distributed_cpu.csv        # a quick check (any small scene)

Each configuration trains one AKDQFF model with the ``quick`` profile's AKDQFF settings (the same
``build_config`` as the harness) for a fixed number of iterations, launched by nerfstudio's own
``launch`` as ``ns-train akdqff --machine.num-devices N`` does (gloo; ``akdqff_method.distributed``).
The total rays per step are the same in every row (``--rays``, the quick profile's 1024 by default):
N processes draw ``rays / N`` each, so every row sees the same number of rays after the same number
of steps. The machine's cores are shared among the processes (``torch.set_num_threads(cores // N)``):
on this 2-core machine one process uses 2 threads and two processes one each, so the CPU result is
bound by those 2 cores, not by the method; a GPU per process is another experiment (none measured).

Per row: ``s_per_iter`` is rank 0's median wall time of one iteration after 5 warm-up iterations
(from before the first training callback to after the last, as the harness times it; with N > 1 it
includes waiting for the other ranks and the gradient all-reduce), ``mean_s_per_iter`` the training
wall time over the iterations (with the periodic allocation, index, occupancy and k-means work),
``test_psnr`` the mean PSNR of every test view rendered by rank 0's trained model (the live model,
not the exported file the harness scores), ``kernels`` / ``codebook_size`` K and Q at the end.
Run it on a quiet machine: timings taken beside other work are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# As the harness does before torch loads (akdqff_bench.cli): sleeping, not spinning, OpenMP waits.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

WARMUP_ITERATIONS = 5
RESULT_FILE = "rank0-result.json"


def train_rank(local_rank: int, world_size: int, config, global_rank: int = 0) -> None:
    """nerfstudio's ``train_loop`` (seeded seed + rank) with the harness's iteration clock; rank 0
    then scores the test views and writes the row's numbers beside the run."""
    import numpy as np
    import torch
    from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
    from nerfstudio.scripts.train import _set_random_seed

    from bench_base import metrics
    from bench_base.views import load_test_views, render_view

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    _set_random_seed(config.machine.seed + global_rank)
    trainer = config.setup(local_rank=local_rank, world_size=world_size)
    trainer.setup()
    iteration_seconds = []
    started = [0.0]

    def start(step: int) -> None:
        started[0] = time.perf_counter()

    def end(step: int) -> None:
        iteration_seconds.append(time.perf_counter() - started[0])

    trainer.callbacks.insert(0, TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], start))
    trainer.callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], end))
    trainer.train()
    if global_rank != 0:
        return
    model = trainer.pipeline.model
    model.eval()
    views = load_test_views(config)
    psnrs = [metrics.psnr(render_view(model, views.cameras, i), image) for i, image in enumerate(views.images)]
    timed = iteration_seconds[WARMUP_ITERATIONS:] or iteration_seconds
    result = {
        "iterations": len(iteration_seconds),
        "s_per_iter": statistics.median(timed),
        "mean_s_per_iter": sum(iteration_seconds) / max(len(iteration_seconds), 1),
        "train_seconds": sum(iteration_seconds),
        "test_psnr": float(np.mean(psnrs)),
        "num_test_views": len(psnrs),
        "kernels": model.field.num_kernels,
        "codebook_size": model.field.codebook_size,
        "threads_per_process": torch.get_num_threads(),
    }
    (Path(config.output_dir) / RESULT_FILE).write_text(json.dumps(result))


def run_configuration(args, processes: int, work_dir: Path) -> dict:
    from nerfstudio.scripts.train import launch

    from akdqff_bench.datasets import resolve_scene
    from akdqff_bench.profiles import get_profile
    from akdqff_bench.request import RunRequest
    from akdqff_bench.runner import build_config
    from bench_base.distributed import allow_cpu_processes

    if args.rays % processes:
        raise SystemExit(f"--rays {args.rays} does not split evenly over {processes} processes")
    profile = get_profile("quick")
    scene = resolve_scene(args.scene, profile.synthetic_bed_variant)
    scene.validate()
    output_dir = work_dir / f"processes{processes}"
    config = build_config(RunRequest("akdqff", args.scene, profile, args.seed, device_type="cpu"), scene, output_dir)
    config.max_num_iterations = args.iterations
    config.pipeline.datamanager.train_num_rays_per_batch = args.rays // processes
    config.machine.num_devices = processes
    config.save_config()
    if processes > 1 and not allow_cpu_processes():
        raise RuntimeError("could not install the CPU-capable nerfstudio worker")
    print(f"[distributed_cpu] {processes} process(es) x {args.rays // processes} rays, {args.iterations} iterations", flush=True)
    launch(train_rank, num_devices_per_machine=processes, dist_url="auto", config=config, device_type="cpu")
    result = json.loads((output_dir / RESULT_FILE).read_text())
    print(f"[distributed_cpu] {processes} process(es): {result}", flush=True)
    return {
        "processes": processes,
        "rays_per_process": args.rays // processes,
        "total_rays_per_step": args.rays,
        **result,
        "scene": args.scene,
        "seed": args.seed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iterations", type=int, default=3000,
                        help="training steps per configuration (3000: past the quick profile's first allocations and codebook refits)")
    parser.add_argument("--rays", type=int, default=None, help="total rays per step (default: the quick profile's)")
    parser.add_argument("--scene", default="synthetic-bed", help="a named scene or LAYOUT:PATH (default: synthetic-bed, quick variant)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep each configuration's nerfstudio outputs (config.yml, checkpoint) here; default: a temporary folder, removed")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/distributed_cpu.csv"))
    args = parser.parse_args(argv)

    import pandas as pd

    from akdqff_bench.profiles import RAYS_PER_BATCH
    from akdqff_bench.records import git_commit
    from akdqff_bench.runner import device_description

    args.rays = args.rays or RAYS_PER_BATCH
    rows = []
    with tempfile.TemporaryDirectory(prefix="distributed_cpu-") as scratch:
        work_dir = args.work_dir or Path(scratch)
        for processes in args.processes:
            rows.append(run_configuration(args, processes, work_dir))
    for row in rows:
        row.update(device=device_description("cpu").rsplit(" x", 1)[0], cores=os.cpu_count(),
                   omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), commit=git_commit())
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(frame[["processes", "rays_per_process", "threads_per_process", "s_per_iter", "mean_s_per_iter", "test_psnr", "kernels", "codebook_size"]].to_string(index=False))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
