"""Where AKDQFF's training time goes: one quick-profile run per scene, a window of it profiled.

    .venv/bin/python benchmarks/step_profile.py      # writes results/benchmarks/step_profile.{csv,png}
    .venv/bin/python benchmarks/step_profile.py --variant transmittance --set pipeline.model.sampler=transmittance
    .venv/bin/python benchmarks/step_profile.py --scenes blender:/tmp/tiny --start 4 --window 4 --out /tmp/p.csv   # a check

Each scene trains AKDQFF at its quick settings (the harness's ``build_config``: the profile's rays,
resolution and the spec's settings for the scene's kind, seed 0) up to iteration ``--start``, then
runs ``--window`` more iterations under ``torch.profiler``. The default window, iterations 1000 to
1199, holds each periodic piece of work in its share: one split/prune decision (every 200 steps),
the first codebook fit (at 1000), ten index rebuilds and a dozen occupancy updates.

The model labels the parts of a step with ``record_function`` (``akdqff_method.model`` and
``field``); this script labels the rest of nerfstudio's iteration (data, loss, backward, optimizer).
A part's time is the wall time of its labelled ranges on the training thread, less the labelled
ranges inside them (the innermost label takes the time), except that the ``density probe`` (the
sampler's pass without gradients) keeps everything inside it. ``other`` is the iteration's wall time
less every part. Times are milliseconds per iteration, averaged over the window. The profiler adds
a little to each operation; ``profiled_s_per_iter`` is the window's wall time per iteration under it.
Run it on a quiet machine: timings taken beside other work are not comparable.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the harness does before torch loads

# The parts of a step, in the order a step runs them (the model's labels, then this script's).
PARTS = ("data", "sampling", "density probe", "index lookup", "kernel evaluation", "quantization", "decoder",
         "compositing", "loss", "backward", "optimizer", "allocation", "index rebuild", "occupancy update", "codebook")
FOLDING_PARTS = {"density probe"}
SCALARS = ("kernels", "codebook_size", "field_samples_per_ray", "probe_samples_per_ray", "occupied_fraction")


def parse_setting(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word: a string (for example a sampler's name)


def part_milliseconds(events) -> Dict[str, float]:
    """Milliseconds of the profiler's events per part (their times are microseconds), innermost
    label first (see the module doc)."""
    totals: Dict[str, float] = defaultdict(float)

    def visit(event, owner) -> None:
        if event.name in PARTS and owner not in FOLDING_PARTS:
            if owner is not None:
                totals[owner] -= event.cpu_time_total
            totals[event.name] += event.cpu_time_total
            owner = event.name
        for child in event.cpu_children:
            visit(child, owner)

    for event in events:
        if event.cpu_parent is None:
            visit(event, None)
    return {part: value / 1000.0 for part, value in totals.items()}


def train_iteration(trainer, step: int) -> None:
    """nerfstudio's ``Trainer.train`` loop body (callbacks, ``train_iteration``) with its parts labelled."""
    from nerfstudio.engine.callbacks import TrainingCallbackLocation
    from torch.profiler import record_function

    pipeline = trainer.pipeline
    pipeline.train()
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    trainer.optimizers.zero_grad_all()
    with record_function("data"):
        ray_bundle, batch = pipeline.datamanager.next_train(step)
    outputs = pipeline.model(ray_bundle)
    with record_function("loss"):
        metrics = pipeline.model.get_metrics_dict(outputs, batch)
        loss = sum(pipeline.model.get_loss_dict(outputs, batch, metrics).values())
    with record_function("backward"):
        trainer.grad_scaler.scale(loss).backward()
    with record_function("optimizer"):
        trainer.optimizers.optimizer_scaler_step_all(trainer.grad_scaler)
        trainer.grad_scaler.update()
        trainer.optimizers.scheduler_step_all(step)
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)


def profile_scene(scene_name: str, args, work_dir: Path) -> List[dict]:
    from nerfstudio.utils import writer

    from akdqff_bench.datasets import resolve_scene
    from akdqff_bench.profiles import get_profile
    from akdqff_bench.request import RunRequest
    from akdqff_bench.runner import build_config, offline_safe_setup, seed_everything

    profile_ = get_profile("quick")
    scene = resolve_scene(scene_name, profile_.synthetic_bed_variant)
    scene.validate()
    settings = dict(args.set or [])
    request = RunRequest("akdqff", scene_name, profile_, seed=0, device_type="cpu", extra_overrides=settings)
    config = build_config(request, scene, work_dir / scene.scene)
    seed_everything(0)
    writers_before = len(writer.EVENT_WRITERS)
    try:
        trainer = config.setup(local_rank=0, world_size=1)
        with offline_safe_setup(config):
            trainer.setup()
        return _profile_trainer(trainer, scene_name, settings, args)
    finally:
        # nerfstudio's trainer registers a global event writer in the scratch folder, which is about to go.
        for added in writer.EVENT_WRITERS[writers_before:]:
            getattr(getattr(added, "tb_writer", None), "close", lambda: None)()
        del writer.EVENT_WRITERS[writers_before:]


def _profile_trainer(trainer, scene_name: str, settings: dict, args) -> List[dict]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    model = trainer.pipeline.model
    started = time.perf_counter()
    for step in range(args.start):
        train_iteration(trainer, step)
        if step % 100 == 0:
            print(f"[step_profile | {scene_name} | {args.variant}] iteration {step}/{args.start} before the window, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    kernels_before = model.field.num_kernels
    scalars: Dict[str, List[float]] = defaultdict(list)
    window_seconds = 0.0  # the iterations' wall time, without reading the scalars between them
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(args.start, args.start + args.window):
            iteration_start = time.perf_counter()
            train_iteration(trainer, step)
            window_seconds += time.perf_counter() - iteration_start
            for key, value in model.benchmark_scalars().items():
                scalars[key].append(value)
    parts = part_milliseconds(prof.events())
    per_iteration_ms = 1000.0 * window_seconds / args.window
    rows = []
    for part in PARTS + ("other",):
        total = parts.get(part, 0.0) if part != "other" else 1000.0 * window_seconds - sum(parts.values())
        rows.append({"part": part, "ms_per_iteration": total / args.window, "share": total / args.window / per_iteration_ms})
    common = {
        "scene": scene_name, "variant": args.variant, "settings": json.dumps(settings, sort_keys=True),
        "window_start": args.start, "window_iterations": args.window, "profiled_s_per_iter": per_iteration_ms / 1000.0,
        "kernels_at_window_start": kernels_before,
        **{f"mean_{key}": sum(scalars[key]) / len(scalars[key]) for key in SCALARS if scalars.get(key)},
        "kernels_at_window_end": model.field.num_kernels, "threads": torch.get_num_threads(),
    }
    print(f"[step_profile | {scene_name} | {args.variant}] {per_iteration_ms:.1f} ms per iteration under the profiler", flush=True)
    return [{**common, **row} for row in rows]


def plot(frame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(zip(frame["scene"], frame["variant"])))
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(groups) + 2.2))
    colors = plt.get_cmap("tab20").colors
    for row_index, (scene, variant) in enumerate(groups):
        rows = frame[(frame["scene"] == scene) & (frame["variant"] == variant)].set_index("part")
        left = 0.0
        for part_index, part in enumerate(PARTS + ("other",)):
            width = float(rows.loc[part, "ms_per_iteration"]) if part in rows.index else 0.0
            ax.barh(row_index, width, left=left, color=colors[part_index % len(colors)], label=part if row_index == 0 else None)
            left += width
    ax.set_yticks(range(len(groups)), [f"{scene}\n{variant}" for scene, variant in groups])
    ax.invert_yaxis()
    ax.set_xlabel("wall ms per training iteration (under the profiler)")
    ax.set_title("AKDQFF's training step by part (quick profile: its settings, or a sampler on top)")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", nargs="+", default=["synthetic-bed", "ethiopian-head"])
    parser.add_argument("--start", type=int, default=1000, help="iterations trained before the window")
    parser.add_argument("--window", type=int, default=200, help="iterations profiled")
    parser.add_argument("--variant", default="quick settings", help="the rows' name (rows of the same scene and variant are replaced)")
    parser.add_argument("--set", type=parse_setting, action="append", metavar="KEY=VALUE",
                        help="a config override on top of the quick settings (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/step_profile.csv"))
    args = parser.parse_args(argv)
    if args.start < 0 or args.window < 1:
        parser.error("--start must be at least 0 and --window at least 1")

    import pandas as pd

    from akdqff_bench.records import git_commit
    from akdqff_bench.runner import device_description

    rows = []
    with tempfile.TemporaryDirectory(prefix="step_profile-") as scratch:
        for scene in args.scenes:
            rows.extend(profile_scene(scene, args, Path(scratch)))
    frame = pd.DataFrame(rows).assign(device=device_description("cpu").rsplit(" x", 1)[0], cores=os.cpu_count(),
                                      omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), commit=git_commit())
    if args.out.exists():  # keep the other variants' and scenes' rows
        old = pd.read_csv(args.out)
        replaced = old.set_index(["scene", "variant"]).index.isin(list(zip(frame["scene"], frame["variant"])))
        frame = pd.concat([old[~replaced], frame], ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    plot(frame, args.out.with_suffix(".png"))
    shown = frame[frame["variant"].isin({args.variant})].pivot_table(index="part", columns="scene", values="ms_per_iteration", sort=False)
    print(shown.round(2).to_string())
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
