"""nerfacto's bench spec (see ``bench_base.spec``): nerfstudio's ``nerfacto``, its code unchanged.

nerfstudio's default method, with its torch hash encoding (``implementation="torch"``: tiny-cuda-nn
has no CPU path). At its defaults (16 levels of 2^19 entries, 256 + 96 proposal samples and 48
field samples per ray) one step on a 2-core CPU costs several CPU-seconds, so the sweep tries what
a user of nerfacto on a CPU would set: smaller tables, fewer levels and samples, and proposal
schedules shortened to the budget's iterations. Every candidate sets every swept field.
The camera optimizer is off, as for every method here: the poses are used as given, and nerfstudio
never adjusts the test cameras, so poses refined on the training views would misalign them.
On renderings the Blender reader composites the images on white, so nerfacto renders white where
nothing is (``background_color``, as nerfstudio's documentation advises for Blender data; its default,
the last sample's colour, is for real captures: at the quick budget's few hundred iterations on
synthetic-bed it never left the mean colour). The sweeps: ``results/sweeps/nerfacto-quick*``.
"""

from __future__ import annotations

from bench_base.spec import EVERY_SCENE, BenchSpec, CapacityPoint, Sweep, candidates

RENDERINGS = {"pipeline.model.background_color": "white"}

CPU = {"pipeline.model.implementation": "torch", "pipeline.model.camera_optimizer.mode": "off"}


def _proposal_nets(log2_size: int, *max_res: int) -> list:
    return [{"hidden_dim": 16, "log2_hashmap_size": log2_size, "num_levels": 5, "max_res": res, "use_linear": False} for res in max_res]


def _setting(levels, log2_size, max_res, proposal_samples, field_samples, proposal_nets, schedule=(5000, 1000)) -> dict:
    return {
        **CPU,
        "pipeline.model.num_levels": levels,
        "pipeline.model.log2_hashmap_size": log2_size,
        "pipeline.model.max_res": max_res,
        "pipeline.model.num_proposal_iterations": len(proposal_samples),
        "pipeline.model.num_proposal_samples_per_ray": tuple(proposal_samples),
        "pipeline.model.num_nerf_samples_per_ray": field_samples,
        "pipeline.model.proposal_net_args_list": proposal_nets,
        # nerfacto's schedules in iterations: the proposal update interval's ramp, the weights' anneal.
        "pipeline.model.proposal_warmup": schedule[0],
        "pipeline.model.proposal_weights_anneal_max_num_iters": schedule[1],
    }


QUICK_SWEEP = Sweep(candidates([
    ("8 levels of 2^15, 64+32 / 24 samples", _setting(8, 15, 512, (64, 32), 24, _proposal_nets(14, 64, 128))),
    ("8 levels of 2^14, 64 / 16 samples", _setting(8, 14, 256, (64,), 16, _proposal_nets(14, 128))),
    ("12 levels of 2^17, 96+48 / 32 samples", _setting(12, 17, 1024, (96, 48), 32, _proposal_nets(15, 64, 128))),
    ("8 levels of 2^15, schedules x0.2", _setting(8, 15, 512, (64, 32), 24, _proposal_nets(14, 64, 128), schedule=(1000, 200))),
]), "hash table size and levels, samples per ray, the proposal schedules")
QUICK = QUICK_SWEEP["8 levels of 2^15, 64+32 / 24 samples"]
# The ethiopian-head sweep's winner, for real captures around an object.
QUICK_REAL = QUICK_SWEEP["8 levels of 2^15, schedules x0.2"]
SMOKE = _setting(4, 12, 64, (16,), 8, _proposal_nets(10, 32))


def _table(log2_size: int) -> CapacityPoint:
    return CapacityPoint(f"table 2^{log2_size}", {"pipeline.model.log2_hashmap_size": log2_size})


spec = BenchSpec(
    method="nerfacto",
    label="nerfacto",
    color="tab:pink",
    rank=4,
    grids=("quick", "full"),
    settings={"quick": {EVERY_SCENE: QUICK, "synthetic": RENDERINGS, "real": QUICK_REAL}, "smoke": {EVERY_SCENE: SMOKE, "synthetic": RENDERINGS},
              "full": {EVERY_SCENE: {"pipeline.model.camera_optimizer.mode": "off"}, "synthetic": RENDERINGS}},
    # The model's size is its hash tables' (log2_hashmap_size): a quarter and four times the quick setting's.
    capacities={"quick": (_table(13), _table(17)), "smoke": (_table(10),)},
    sweeps={"quick": QUICK_SWEEP},
    # The proposal sampler's anneal exponent: a training callback sets it, a fresh model starts at 1.
    stored_attributes=("proposal_sampler._anneal",),
    description="nerfstudio's nerfacto (hash grids + proposal sampling), torch hash encoding",
    role="reference",
)
