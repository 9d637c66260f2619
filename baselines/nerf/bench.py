"""NeRF's bench spec (see ``bench_base.spec``): the quick settings are its sweep's winner
(``results/sweeps/nerf-quick*.csv``); the paper's network (8x256, 64+128 samples) would make
about 20 iterations in the quick budget on 2 CPU cores."""

from __future__ import annotations

from bench_base.spec import EVERY_SCENE, BenchSpec, PaperRow, Sweep, candidates, merged, scaled_widths


def _candidate(layers: int, width: int, head: int, coarse: int, fine: int, lr: float):
    return (f"{layers}x{width}, head {head}, {coarse}+{fine} samples, lr {lr:g}", {
        "pipeline.model.base_mlp_num_layers": layers,
        "pipeline.model.base_mlp_layer_width": width,
        "pipeline.model.head_mlp_layer_width": head,
        "pipeline.model.num_coarse_samples": coarse,
        "pipeline.model.num_importance_samples": fine,
        "optimizers.fields.optimizer.lr": lr,
    })


# Widths and sample counts trade iterations for capacity; the learning rate is swept too, because
# the paper's 5e-4 is tuned for 300k iterations and leaves a few hundred stuck at a flat colour.
QUICK_SWEEP = Sweep(candidates([_candidate(4, 64, 32, 32, 32, 5e-4), _candidate(4, 64, 32, 32, 32, 3e-3),
                                _candidate(4, 128, 64, 32, 64, 3e-3), _candidate(8, 128, 64, 64, 64, 1e-3)]),
                    "network size, samples per ray and learning rate")
QUICK = merged(QUICK_SWEEP["4x64, head 32, 32+32 samples, lr 0.003"])  # on ethiopian-head too
SMOKE = {
    "pipeline.model.base_mlp_num_layers": 2,
    "pipeline.model.base_mlp_layer_width": 32,
    "pipeline.model.head_mlp_layer_width": 16,
    "pipeline.model.num_coarse_samples": 8,
    "pipeline.model.num_importance_samples": 8,
}

spec = BenchSpec(
    method="nerf",
    label="NeRF",
    color="tab:blue",
    rank=0,
    grids=("quick", "full", "smoke"),
    settings={"quick": {EVERY_SCENE: QUICK}, "smoke": {EVERY_SCENE: SMOKE}},
    capacities={"quick": (scaled_widths(QUICK, 0.5), scaled_widths(QUICK, 2)), "smoke": (scaled_widths(SMOKE, 0.5),)},
    sweeps={"quick": QUICK_SWEEP},
    paper=PaperRow(psnr=28.5, ssim=0.85, memory_mb=200, s_per_iter=2.5),
    description="vanilla NeRF (Mildenhall et al. 2020), nerfstudio's, offline-safe",
)
