"""Plenoxels' bench spec (see ``bench_base.spec``).

The quick schedule is coarser than the paper's 128->256->512, with stage switches by iteration
count fitted to a 2-core CPU at 1024 rays; svox2's lr schedule is compressed to that iteration
scale (density's ramp-up over 100 instead of 15,000 iterations, decay horizon 2,000 instead of
250,000) and pruning weights are recorded over 100 iterations. The TV factor multiplies the
capture's svox2 weights (syn.json on renderings, tnt.json on photographs), so a winner carries
over to another scene of its kind as a factor; the sweeps are in ``results/sweeps/plenoxels-quick*``.
"""

from __future__ import annotations

from bench_base.spec import EVERY_SCENE, BenchSpec, CapacityPoint, PaperRow, Sweep, candidates, merged

SCHEDULE = {
    "optimizers.density.scheduler.delay_steps": 100,
    "optimizers.density.scheduler.decay_steps": 2000,
    "optimizers.sh.scheduler.decay_steps": 2000,
    "pipeline.model.weight_window": 100,
    "pipeline.model.resolutions": (64, 128),
    "pipeline.model.upsample_steps": (300,),
}
# svox2's own TV weights (x1, set for 100k-iteration runs) down to x0.001, at the schedule above
# (the winner of an earlier sweep of grid schedules: results/sweeps/plenoxels-quick-grids-weak-tv/).
QUICK_SWEEP = Sweep(candidates([(f"TV x{scale:g}", {**SCHEDULE, "pipeline.model.tv_weight_scale": scale})
                                for scale in (1.0, 0.1, 0.01, 0.001)]), "the TV weights, as a factor of svox2's")
QUICK = merged(SCHEDULE, QUICK_SWEEP["TV x0.001"])
QUICK_REAL = {"pipeline.model.tv_weight_scale": QUICK_SWEEP["TV x1"]["pipeline.model.tv_weight_scale"]}
SMOKE = {
    "pipeline.model.resolutions": (16, 32),
    "pipeline.model.upsample_steps": (4,),
    "pipeline.model.weight_window": 2,
    "optimizers.density.scheduler.delay_steps": 0,
}


def _grid(resolutions, upsample_steps) -> CapacityPoint:
    return CapacityPoint(f"grid {resolutions[-1]}", {"pipeline.model.resolutions": resolutions, "pipeline.model.upsample_steps": upsample_steps})


spec = BenchSpec(
    method="plenoxels",
    label="Plenoxels",
    color="tab:purple",
    rank=2,
    grids=("quick", "full", "smoke"),
    settings={"quick": {EVERY_SCENE: QUICK, "real": QUICK_REAL}, "smoke": {EVERY_SCENE: SMOKE}},
    # The default ends at 128^3 (64 -> 128); these end at 96^3 and 256^3 with the same first switch.
    capacities={"quick": (_grid((48, 96), (300,)), _grid((64, 128, 256), (300, 600))), "smoke": (_grid((8, 16), (4,)),)},
    sweeps={"quick": QUICK_SWEEP},
    paper=PaperRow(psnr=29.8, ssim=0.88, memory_mb=100, s_per_iter=1.2),
    description="sparse SH voxel grid, no network; plain PyTorch",
)
