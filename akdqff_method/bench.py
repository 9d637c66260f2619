"""AKDQFF's bench spec: how the benchmark runs and shows it (see ``bench_base.spec``).

Its quick settings are the winners of its sweeps (``results/sweeps/akdqff-quick*.csv``, conditions
in ``results/sweeps/README.md``); its evidence (kernel density against image detail, Q and K over
training, the rate-distortion curve) is drawn by :mod:`akdqff_method.analysis`.
"""

from __future__ import annotations

from typing import Any, Dict

from bench_base.spec import (EVERY_SCENE, BenchSpec, CapacityPoint, PaperRow, RatioClaim, Sweep, candidates, merged,
                             number_label)


def _candidate(kernel_cost: float, feature_dim: int, num_samples: int):
    # The decoder is 4x as wide as the features, as in the base block.
    return (f"λ {number_label(kernel_cost)}, {feature_dim}-d features, {num_samples} samples", {
        "pipeline.model.strategy.kernel_cost": kernel_cost,
        "pipeline.model.feature_dim": feature_dim,
        "pipeline.model.decoder_hidden_dim": 4 * feature_dim,
        "pipeline.model.num_samples": num_samples,
    })


# λ (K), feature width and samples per ray: a full 3 x 2 x 2 grid on top of QUICK_BASE.
QUICK_SWEEP = Sweep(candidates([_candidate(kernel_cost, feature_dim, num_samples)
                                for kernel_cost in (1e-6, 3e-6, 1e-5) for feature_dim in (8, 16) for num_samples in (48, 96)]),
                    "λ x feature width x samples per ray")
# K, stored size and PSNR against λ alone (`akdqff-bench sweep --method akdqff --sweep lambda`).
LAMBDA_SWEEP = Sweep(candidates([(f"λ {number_label(value)}", {"pipeline.model.strategy.kernel_cost": value})
                                 for value in (1e-6, 3e-6, 1e-5, 3e-5, 1e-4)]), "the λ study: K and size follow λ")


def _sampling(name: str, sampler: str, num_samples: int = 96, num_resampled: int = 32, early_stop: float = 1e-3,
              grid_transmittance: float = 0.0):
    return (name, {
        "pipeline.model.sampler": sampler,
        "pipeline.model.num_samples": num_samples,
        "pipeline.model.num_resampled": num_resampled,
        "pipeline.model.early_stop_transmittance": early_stop,
        "pipeline.model.skip_transmittance": grid_transmittance,
    })


# Which samples the field evaluates with gradients (model.py's ``sampler``), judged by test PSNR at
# equal CPU time on both kinds of scene (`akdqff-bench sweep --method akdqff --sweep sampling`).
SAMPLING_SWEEP = Sweep(candidates([
    _sampling("uniform, 96 samples", "uniform"),
    _sampling("occupancy-grid transmittance 1e-2", "uniform", grid_transmittance=1e-2),
    _sampling("early stop at transmittance 1e-3", "transmittance"),
    _sampling("resample 96 -> 32", "resample"),
    _sampling("resample 32 -> 32", "resample", num_samples=32),
]), "the samples the field evaluates with gradients")

# The sampling sweep's winner on both study scenes (results/sweeps/README.md), under every growth candidate.
RESAMPLING = "resample 96 -> 32"


def _growth(name: str, max_split_fraction: float, refine_every: int, kernel_cost: float):
    return (name, {
        **SAMPLING_SWEEP[RESAMPLING],
        "pipeline.model.strategy.max_split_fraction": max_split_fraction,
        "pipeline.model.strategy.refine_every": refine_every,
        "pipeline.model.strategy.kernel_cost": kernel_cost,
    })


# How fast K may grow toward what λ asks (allocation.py's rate limit and refinement interval), at
# the quick λ and at a tenth of it, with the resampling sampler (`akdqff-bench sweep --method akdqff
# --sweep growth`).
GROWTH_SWEEP = Sweep(candidates([
    _growth("split ≤ 1/4 of K every 200 steps, λ 3e-6", 0.25, 200, 3e-6),
    _growth("split ≤ 1/4 of K every 200 steps, λ 3e-7", 0.25, 200, 3e-7),
    _growth("split every candidate every 100 steps, λ 3e-6", 1.0, 100, 3e-6),
    _growth("split every candidate every 100 steps, λ 3e-7", 1.0, 100, 3e-7),
]), "how fast K grows toward what λ asks", curve_scalars=("kernels",))

# What every quick candidate shares. K is set by λ (kernel_cost, in squared colour error per ray:
# see allocation.py) and Q by the distortion tolerance; neither has a size target: max_kernels is a
# memory guard (the record's kernels_blocked_by_cap_total says whether it bit).
QUICK_BASE: Dict[str, Any] = {
    "pipeline.model.num_kernels_init": 512,
    "pipeline.model.feature_dim": 8,
    "pipeline.model.decoder_hidden_dim": 32,
    "pipeline.model.sh_levels": 2,
    "pipeline.model.grid_resolution": 32,
    # No per-cell cap: the index is exact (a cap truncated touched cells of a stored quick model).
    "pipeline.model.max_kernels_per_cell": None,
    "pipeline.model.max_scale": 0.15,
    "pipeline.model.num_samples": 48,
    "pipeline.model.index_update_interval": 20,
    "pipeline.model.occupancy_update_interval": 16,
    # Cells marked empty early never get gradients back: a low threshold after a long warm-up.
    "pipeline.model.occupancy_warmup_steps": 100,
    "pipeline.model.occupancy_points_per_cell": 1,
    "pipeline.model.occupancy_alpha_threshold": 0.001,
    "pipeline.model.skip_transmittance": 0.0,
    "pipeline.model.strategy.refine_start": 200,
    "pipeline.model.strategy.refine_every": 200,
    "pipeline.model.strategy.kernel_cost": 3e-6,
    "pipeline.model.strategy.max_split_fraction": 0.25,
    "pipeline.model.strategy.max_kernels": 100_000,
    # Quantization must start well inside the budget on every scene, or a run would measure no QFF
    # at all (the iterations the scenes reach: results/quick/diagnostics/README.md).
    "pipeline.model.quantization_start_step": 500,
    "pipeline.model.initial_codebook_size": 64,
    "pipeline.model.codebook_update_interval": 300,
    # The stored file's precision (training is full precision); the 800x800 full profile keeps the
    # 16-bit default. Chosen on one quick model's file rendered at several precisions.
    "pipeline.model.storage.center_bits": 10,
    "pipeline.model.storage.scale_bits": 8,
    "pipeline.model.storage.amplitude_bits": 8,
}
# The growth sweep's winner on both study scenes (it carries the sampling sweep's winner).
GROWTH = "split every candidate every 100 steps, λ 3e-6"
QUICK = merged(QUICK_BASE, QUICK_SWEEP["λ 3e-6, 16-d features, 96 samples"], GROWTH_SWEEP[GROWTH])
# The ethiopian-head sweep's winner, for real captures: its feature width (and the decoder's).
_REAL_WINNER = QUICK_SWEEP["λ 3e-6, 8-d features, 96 samples"]
QUICK_REAL = {key: _REAL_WINNER[key] for key in ("pipeline.model.feature_dim", "pipeline.model.decoder_hidden_dim")}

# Small enough for seconds on a CPU, scheduled so that allocation, the occupancy grid and the
# k-means codebook (with one adaptive-Q update) all happen within the 8 smoke iterations.
SMOKE: Dict[str, Any] = {
    "pipeline.model.num_kernels_init": 64,
    "pipeline.model.feature_dim": 4,
    "pipeline.model.decoder_hidden_dim": 8,
    "pipeline.model.sh_levels": 2,
    "pipeline.model.grid_resolution": 16,
    "pipeline.model.num_samples": 32,
    "pipeline.model.occupancy_warmup_steps": 2,
    "pipeline.model.occupancy_update_interval": 2,
    "pipeline.model.index_update_interval": 2,
    "pipeline.model.strategy.refine_start": 2,
    "pipeline.model.strategy.refine_every": 2,
    "pipeline.model.strategy.max_split_fraction": 0.5,
    "pipeline.model.quantization_start_step": 3,
    "pipeline.model.initial_codebook_size": 8,
    "pipeline.model.codebook_update_interval": 2,
}


def _lambda_point(factor: float) -> CapacityPoint:
    """The quick λ times ``factor``: λ sets K, hence the stored size (a larger λ keeps fewer kernels)."""
    value = float(f"{QUICK['pipeline.model.strategy.kernel_cost'] * factor:.6g}")  # 3e-6 / 10, not 3.0000000000000004e-07
    return CapacityPoint(f"λ {number_label(value)}", {"pipeline.model.strategy.kernel_cost": value})


spec = BenchSpec(
    method="akdqff",
    label="AKDQFF",
    color="tab:red",
    rank=3,
    grids=("quick", "full", "smoke"),
    settings={"quick": {EVERY_SCENE: QUICK, "real": QUICK_REAL}, "smoke": {EVERY_SCENE: SMOKE}},
    # From the smallest model to the largest (the default lies between).
    capacities={"quick": (_lambda_point(10), _lambda_point(0.1)),
                "smoke": (CapacityPoint("λ 1e-4", {"pipeline.model.strategy.kernel_cost": 1e-4}),)},
    sweeps={"quick": QUICK_SWEEP, "lambda": LAMBDA_SWEEP, "sampling": SAMPLING_SWEEP, "growth": GROWTH_SWEEP},
    paper=PaperRow(psnr=30.1, ssim=0.89, memory_mb=60, s_per_iter=0.8),
    # The paper's text (Results): "a 10x reduction in memory footprint and a 3x improvement in update
    # speed compared to standard NeRF".
    paper_claims=(
        RatioClaim("about 10× less memory than NeRF", "model_size_bytes", 10.0, "nerf", "memory_mb"),
        RatioClaim("about 3× faster updates than NeRF (median s/iter)", "s_per_iter", 3.0, "nerf", "s_per_iter"),
        RatioClaim("about 3× faster updates than NeRF (mean s/iter, periodic work included)", "mean_s_per_iter", 3.0, "nerf", "s_per_iter"),
    ),
    evidence="akdqff_method.analysis",
    description="adaptive Gaussian-RBF kernels with k-means quantized features",
    role="subject",
)
