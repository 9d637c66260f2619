"""One training step of AKDQFF's kernel field (forward + backward) as K grows, on a fixed batch.

    .venv/bin/python benchmarks/field_step.py        # writes results/benchmarks/field_step.{csv,png}
    .venv/bin/python benchmarks/field_step.py --kernels 300 1200 --repeats 3 --out /tmp/field_step.csv   # a quick check

The batch is the same for every K: ``--samples`` points (default 1024 rays × 12 samples, what the
quick bed run's occupancy grid lets through per ray) near a sphere of radius 1, each within
``SAMPLE_JITTER`` of the surface, as samples cluster around a trained scene's surfaces. The K kernels
sit on the same sphere with bandwidth half their spacing there, so a sample meets about the same
number of kernels whatever K is: the cost left growing with K is what the code adds, not the
scene. Field settings (feature width, decoder, SH levels, grid resolution, cap per cell) are
``AKDQFFModelConfig``'s defaults unless given. Each K is timed unquantized and with a Q = 64
codebook (straight-through lookup), through each of ``--paths`` (``fused``: the compiled op of
``akdqff_method/fused_field.py``; ``pytorch``: the PyTorch path it replaced, the reference), in the
same process, the median of ``--repeats`` steps after ``--warmup``; the
index build (done every ``index_update_interval`` steps in training) is timed once beside it.
Each K is measured with every index of ``--index-cell-sizes``: ``fixed`` (the grid at
``grid_resolution``, the index before it refined) and a number c (cells subdivided to about c
typical support radii, ``index_cell_size``), with the index's candidate pairs per sample beside
the contributing ones.

How close a step is to the machine (``floor_ms``, ``times_the_floor``): the arithmetic and memory
traffic the step cannot avoid, against this machine's measured peaks (``machine_gflops``: a
2048² fp32 matmul on ``--threads`` threads; ``machine_gb_per_s``: a 256 MB tensor copy). The step
must, per contributing (sample, kernel) pair, form the offset, its squared norm, the truncated
Gaussian and the weighted feature sum (``PAIR_FLOPS_FORWARD``, an exp counted as 8), per sample run
the decoder, and run all of it backward at about twice the forward's arithmetic; it must read
each kernel it uses and write its gradient, and read and write each sample's position, fused
feature and decoder activations once each way. The floor is the larger of the two times: a lower
bound that no implementation on this CPU can beat, not a target (it ignores the index lookup
and assumes perfect caching).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import time
from pathlib import Path

DEFAULT_KERNELS = (3072, 12288, 49152, 200_000)
# Well inside the support of the smallest kernels here (2.5 × 0.5 × the spacing at 200k, 0.01),
# so that a sample meets about the same number of kernels at every K.
SAMPLE_JITTER = 0.002
CODEBOOK_SIZE = 64


# Floating-point operations per contributing pair, forward: offset (3 sub, 3 mul by the inverse
# bandwidth), squared norm (3 mul, 2 add), the truncated Gaussian (exp as 8, shift and scale 2,
# clamp 1), times the amplitude (1); the weighted feature sum adds 2 per feature dimension.
PAIR_FLOPS_FORWARD = 23
BACKWARD_ARITHMETIC = 2.0  # backward costs about twice the forward's arithmetic
BYTES_PER_FLOAT = 4


def step_floor(samples: int, pairs: int, used_kernels: int, feature_dim: int, hidden: int, sh_levels: int) -> dict:
    """The arithmetic (flops) and memory traffic (bytes) one forward + backward step cannot avoid."""
    outputs = 1 + 3 * sh_levels**2
    forward = pairs * (PAIR_FLOPS_FORWARD + 2 * feature_dim) + samples * (2 * feature_dim * hidden + 2 * hidden * outputs + 6 * outputs)
    flops = forward * (1 + BACKWARD_ARITHMETIC)
    kernel_floats = 3 + 3 + 1 + feature_dim  # centre, bandwidths, amplitude, feature
    sample_floats = 3 + feature_dim + hidden + outputs  # position, fused feature, hidden layer, decoder output
    traffic = BYTES_PER_FLOAT * 2 * (used_kernels * kernel_floats + samples * sample_floats)  # read + write back (gradients)
    return {"flops": float(flops), "bytes": float(traffic)}


def measure_machine(threads: int, repeats: int = 5) -> dict:
    """This machine's fp32 matmul rate (GFLOP/s) and copy bandwidth (GB/s, bytes read + written)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    gflops = 2 * 2048**3 / best / 1e9
    source = torch.randn(64 * 1024 * 1024)  # 256 MB
    target = torch.empty_like(source)
    target.copy_(source)
    best = min(_timed(lambda: target.copy_(source)) for _ in range(repeats))
    return {"machine_gflops": round(gflops, 1), "machine_gb_per_s": round(2 * source.numel() * BYTES_PER_FLOAT / best / 1e9, 1)}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_cell_size(text: str):
    return None if text == "fixed" else float(text)


def make_field(num_kernels: int, args, seed: int = 0, index_cell_size=None):
    import torch

    from akdqff_method.field import RBFKernelField

    generator = torch.Generator().manual_seed(seed)
    aabb = torch.tensor([[-1.5] * 3, [1.5] * 3])
    field = RBFKernelField(
        aabb, num_kernels=num_kernels, feature_dim=args.feature_dim, decoder_hidden_dim=args.decoder_hidden_dim,
        sh_levels=args.sh_levels, max_scale=args.max_scale, grid_resolution=args.grid_resolution,
        max_kernels_per_cell=args.max_kernels_per_cell, index_cell_size=index_cell_size, seed=seed,
    )
    spacing = math.sqrt(4 * math.pi / num_kernels)
    with torch.no_grad():
        directions = torch.nn.functional.normalize(torch.randn(num_kernels, 3, generator=generator), dim=-1)
        field.kernel_params["centers"].copy_(directions * (1.0 + 0.001 * torch.randn(num_kernels, 1, generator=generator)))
        field.kernel_params["log_scales"].fill_(math.log(0.5 * spacing))
        field.kernel_params["log_amplitudes"].normal_(0, 0.3, generator=generator)
    start = time.perf_counter()
    field.rebuild_index()
    build_seconds = time.perf_counter() - start
    return field, build_seconds


def make_batch(num_samples: int, seed: int = 1):
    import torch

    generator = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(num_samples, 3, generator=generator), dim=-1)
    radius = 1.0 + SAMPLE_JITTER * (2 * torch.rand(num_samples, 1, generator=generator) - 1)
    view = torch.nn.functional.normalize(torch.randn(num_samples, 3, generator=generator), dim=-1)
    target = torch.rand(num_samples, 3, generator=generator)
    return directions * radius, view, target


def time_steps(field, positions, view, target, warmup: int, repeats: int) -> list:
    import torch

    times = []
    for step in range(warmup + repeats):
        field.zero_grad(set_to_none=True)
        start = time.perf_counter()
        out = field(positions, view)
        loss = torch.nn.functional.mse_loss(out["rgb"], target) + 1e-3 * out["density"].mean()
        loss.backward()
        elapsed = time.perf_counter() - start
        if step >= warmup:
            times.append(elapsed)
    return times


def main(argv=None) -> int:
    from akdqff_method.model import AKDQFFModelConfig

    defaults = AKDQFFModelConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", type=int, nargs="+", default=list(DEFAULT_KERNELS))
    parser.add_argument("--samples", type=int, default=1024 * 12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    parser.add_argument("--feature-dim", type=int, default=defaults.feature_dim)
    parser.add_argument("--decoder-hidden-dim", type=int, default=defaults.decoder_hidden_dim)
    parser.add_argument("--sh-levels", type=int, default=defaults.sh_levels)
    parser.add_argument("--grid-resolution", type=int, default=defaults.grid_resolution)
    parser.add_argument("--max-scale", type=float, default=defaults.max_scale)
    parser.add_argument("--max-kernels-per-cell", type=int, default=defaults.max_kernels_per_cell,
                        help="0: no cap")
    parser.add_argument("--index-cell-sizes", type=parse_cell_size, nargs="+", default=[None, 1.0], metavar="fixed|C",
                        help="indexes to measure: fixed (grid_resolution) or cells of about C support radii (default: fixed 1.0)")
    parser.add_argument("--paths", nargs="+", choices=("fused", "pytorch"), default=["fused", "pytorch"],
                        help="the field's implementations to time (default: both)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/field_step.csv"))
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    from akdqff_method import fused_field

    if "fused" in args.paths and fused_field.unavailable(torch.device("cpu")):
        parser.error(f"--paths fused: {fused_field.unavailable(torch.device('cpu'))}")
    torch.set_num_threads(args.threads)
    machine = measure_machine(args.threads)
    print(f"this machine: {machine['machine_gflops']} GFLOP/s (fp32 matmul), {machine['machine_gb_per_s']} GB/s (copy)", flush=True)
    positions, view, target = make_batch(args.samples)
    rows = []
    for num_kernels, cell_size in itertools.product(args.kernels, args.index_cell_sizes):
        field, build_seconds = make_field(num_kernels, args, index_cell_size=cell_size)
        with torch.no_grad():
            candidates = field.index.pairs(positions)[0].numel()
            _, contributing, contributing_kernels, _ = field.fused_features(positions)
            floor = step_floor(args.samples, contributing.numel(), int(torch.unique(contributing_kernels).numel()),
                               args.feature_dim, args.decoder_hidden_dim, args.sh_levels)
            floor_ms = 1e3 * max(floor["flops"] / (machine["machine_gflops"] * 1e9), floor["bytes"] / (machine["machine_gb_per_s"] * 1e9))
        for quantized in (False, True):
            if quantized:
                rows_for_codebook = torch.randperm(num_kernels, generator=torch.Generator().manual_seed(2))[:CODEBOOK_SIZE]
                field.set_codebook(field.kernel_params["features"].detach()[rows_for_codebook])
            else:
                field.set_codebook(None)
            for path in args.paths:
                os.environ[fused_field.DISABLE_ENV] = "1" if path == "fused" else "0"
                times = time_steps(field, positions, view, target, args.warmup, args.repeats)
                row = {
                    "kernels": num_kernels,
                    "path": path,
                    "index": "fixed" if cell_size is None else f"cells of {cell_size:g} radii",
                    "index_cell_resolution": field.index.cell_resolution,
                    "quantized": quantized,
                    "codebook_size": field.codebook_size,
                    "samples": args.samples,
                    "median_ms": round(1e3 * statistics.median(times), 2),
                    "min_ms": round(1e3 * min(times), 2),
                    "max_ms": round(1e3 * max(times), 2),
                    "repeats": args.repeats,
                    "candidate_pairs_per_sample": round(candidates / args.samples, 2),
                    "contributing_pairs_per_sample": round(contributing.numel() / args.samples, 2),
                    "truncated_cells": field.index.truncated_cells,
                    "touched_cells": field.index.touched_cells,
                    "index_build_ms": round(1e3 * build_seconds, 1),
                    "floor_mflop": round(floor["flops"] / 1e6, 1),
                    "floor_mb": round(floor["bytes"] / 1e6, 2),
                    "floor_ms": round(floor_ms, 2),
                    "times_the_floor": round(statistics.median(times) * 1e3 / floor_ms, 1),
                    **machine,
                    "feature_dim": args.feature_dim,
                    "decoder_hidden_dim": args.decoder_hidden_dim,
                    "grid_resolution": args.grid_resolution,
                    "max_kernels_per_cell": args.max_kernels_per_cell,
                    "threads": args.threads,
                }
                print(f"K={num_kernels:>7} {row['index']:>16} quantized={quantized!s:5} {path:>7}: {row['median_ms']:8.2f} ms "
                      f"({row['candidate_pairs_per_sample']} candidates, {row['contributing_pairs_per_sample']} pairs per sample)", flush=True)
                rows.append(row)
        del field
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (path, index_name, quantized), group in frame.groupby(["path", "index", "quantized"], sort=False):
        label = f"{path}: " + (f"quantized (Q={CODEBOOK_SIZE})" if quantized else "raw features") + f", {index_name} index"
        axes[0].errorbar(group["kernels"], group["median_ms"], yerr=[group["median_ms"] - group["min_ms"], group["max_ms"] - group["median_ms"]],
                         marker="o", capsize=3, label=label)
    raw = frame[~frame["quantized"] & (frame["path"] == args.paths[0])]
    for index_name, group in raw.groupby("index", sort=False):
        axes[1].plot(group["kernels"], group["candidate_pairs_per_sample"], marker="o", label=f"candidates, {index_name} index")
    contributing = raw.groupby("kernels")["contributing_pairs_per_sample"].mean()
    axes[1].plot(contributing.index, contributing.values, marker="s", color="black", label="inside a kernel's support")
    floors = raw.groupby("kernels")["floor_ms"].mean()
    axes[0].plot(floors.index, floors.values, linestyle="--", color="black", label="floor (this CPU's peak arithmetic / bandwidth)")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_xlabel("kernels K")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"field forward + backward (ms, {args.samples} samples)")
    axes[0].set_title(f"one training step of the field, {args.threads} CPU thread(s)")
    axes[1].set_ylabel("pairs per sample")
    axes[1].set_title("work per sample")
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=120)
    print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
