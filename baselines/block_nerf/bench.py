"""Block-NeRF's bench spec (see ``bench_base.spec``).

The quick blocks are mip-NeRF-style fields shrunk to 4x64 (colour 1x64, visibility 2x32, 8-d
appearance codes, IPE L=10, 32+32 samples per ray instead of 128+128). Adam at 3e-3, not mip-NeRF's
5e-4, which leaves a run of about a thousand steps at the flat-colour plateau; mip-NeRF's warm-up
from 1% of the rate is shortened from 2500 to 100 steps. The block count and width come from its
sweeps (``results/sweeps/block-nerf-quick*.csv``); its diagnoses are in :mod:`baselines.block_nerf.diagnostics`.
"""

from __future__ import annotations

from bench_base.spec import EVERY_SCENE, BenchSpec, PaperRow, Sweep, candidates, merged, scaled_widths

BASE = {
    "optimizers.fields.optimizer.lr": 3e-3,
    "optimizers.fields.scheduler.lr_pre_warmup": 3e-5,
    "optimizers.fields.scheduler.warmup_steps": 100,
    "pipeline.model.base_mlp_num_layers": 4,
    "pipeline.model.base_mlp_layer_width": 64,
    "pipeline.model.head_mlp_layer_width": 64,
    "pipeline.model.visibility_mlp_num_layers": 2,
    "pipeline.model.visibility_mlp_layer_width": 32,
    "pipeline.model.appearance_dim": 8,
    "pipeline.model.position_frequencies": 10,
    "pipeline.model.num_coarse_samples": 32,
    "pipeline.model.num_importance_samples": 32,
}
# Block count x per-block width at similar cost per iteration: fewer blocks (each sees more images)
# against more, narrower ones (each fits a smaller region).
QUICK_SWEEP = Sweep(candidates([
    (f"{blocks} blocks of 4x{width}", {**BASE, "pipeline.model.num_blocks": blocks, "pipeline.model.base_mlp_layer_width": width})
    for blocks, width in ((2, 64), (4, 64), (8, 48))
]), "block count x block width")
QUICK = merged(BASE, QUICK_SWEEP["2 blocks of 4x64"])
QUICK_REAL = {"pipeline.model.num_blocks": QUICK_SWEEP["4 blocks of 4x64"]["pipeline.model.num_blocks"]}
SMOKE = {
    "pipeline.model.num_blocks": 2,
    "pipeline.model.base_mlp_num_layers": 2,
    "pipeline.model.base_mlp_layer_width": 32,
    "pipeline.model.head_mlp_layer_width": 16,
    "pipeline.model.visibility_mlp_num_layers": 2,
    "pipeline.model.visibility_mlp_layer_width": 16,
    "pipeline.model.appearance_dim": 4,
    "pipeline.model.position_frequencies": 6,
    "pipeline.model.num_coarse_samples": 8,
    "pipeline.model.num_importance_samples": 8,
}

spec = BenchSpec(
    method="block-nerf",
    label="Block-NeRF",
    color="tab:green",
    rank=1,
    grids=("quick", "full", "smoke"),
    settings={"quick": {EVERY_SCENE: QUICK, "real": QUICK_REAL}, "smoke": {EVERY_SCENE: SMOKE}},
    capacities={"quick": (scaled_widths(QUICK, 0.5), scaled_widths(QUICK, 2)), "smoke": (scaled_widths(SMOKE, 0.5),)},
    sweeps={"quick": QUICK_SWEEP},
    paper=PaperRow(psnr=29.2, ssim=0.87, memory_mb=120, s_per_iter=1.8),
    description="blocks of mip-NeRF-style NeRFs over the camera region, visibility-culled, blended by inverse distance",
)
