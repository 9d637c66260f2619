"""TensoRF's bench spec (see ``bench_base.spec``): nerfstudio's ``tensorf``, its code unchanged.

At its defaults (128³ planes and lines growing to 300³, 200 + 50 samples per ray) one step on a
2-core CPU leaves it a couple of hundred iterations in the quick budget, so the sweep tries smaller
starting grids, fewer samples and fewer components, with the upsampling steps moved inside the
iterations the budget allows (nerfstudio upsamples at fixed steps, 2,000-7,000 by default). Every
candidate sets every swept field, so a candidate's record names all it trained with whichever
candidate wins. The learning rates and their decay are nerfstudio's. The sweeps:
``results/sweeps/tensorf-quick*``.
"""

from __future__ import annotations

from bench_base.spec import EVERY_SCENE, BenchSpec, CapacityPoint, Sweep, candidates

GRID = "pipeline.model.init_resolution", "pipeline.model.final_resolution", "pipeline.model.upsampling_iters"
COMPONENTS = "pipeline.model.num_den_components", "pipeline.model.num_color_components"
SAMPLES = "pipeline.model.num_uniform_samples", "pipeline.model.num_samples"


def _setting(grid, components, samples) -> dict:
    return {**dict(zip(GRID, grid)), **dict(zip(COMPONENTS, components)), **dict(zip(SAMPLES, samples))}


QUICK_SWEEP = Sweep(candidates([
    ("VM 64->128, 8/24 components", _setting((64, 128, (200, 400)), (8, 24), (64, 32))),
    ("VM 32->96, 8/24 components", _setting((32, 96, (150, 300)), (8, 24), (48, 24))),
    ("VM 64 fixed, 16/48 components", _setting((64, 64, ()), (16, 48), (64, 32))),
    ("VM 32->128, 16/48 components", _setting((32, 128, (150, 300, 450)), (16, 48), (48, 24))),
]), "grid schedule (upsampling inside the budget's iterations), components, samples per ray")
QUICK = QUICK_SWEEP["VM 64->128, 8/24 components"]
# The ethiopian-head sweep's winner, for real captures around an object.
QUICK_REAL = QUICK_SWEEP["VM 32->96, 8/24 components"]
SMOKE = _setting((16, 24, (2, 4)), (4, 12), (16, 16))


def _components(density: int, color: int) -> CapacityPoint:
    return CapacityPoint(f"components {density}/{color}", dict(zip(COMPONENTS, (density, color))))


spec = BenchSpec(
    method="tensorf",
    label="TensoRF",
    color="tab:cyan",
    rank=5,
    grids=("quick", "full"),
    settings={"quick": {EVERY_SCENE: QUICK, "real": QUICK_REAL}, "smoke": {EVERY_SCENE: SMOKE}},
    # The model's size is its components' count: half and twice the quick setting's.
    capacities={"quick": (_components(4, 12), _components(16, 48)), "smoke": (_components(2, 6),)},
    sweeps={"quick": QUICK_SWEEP},
    description="nerfstudio's TensoRF (VM factorised grid), pure torch",
    role="reference",
)
