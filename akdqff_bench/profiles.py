"""Benchmark profiles: the one place that says how big a run is. A profile names no method: each
method's settings for a profile live in its bench spec (``bench_base.spec``), and every override a
run used is written into its record.

- ``quick``: the default. CPU, 100x100 synthetic-bed and the real captures, every method gets the
  same CPU-time training budget (a busy machine slows a run down without shortening it) and the
  same rays per batch.
- ``full``: GPU, the methods' own (papers') settings and fixed iteration counts, 800x800.
- ``gpu-check``: a short run of every method on one GPU (``./run_all.sh gpu-check``).
- ``long``: the quick profile with four times its CPU budget, its learning curve on a log
  CPU-time schedule that passes through the quick budget (``./run_all.sh long``: the long study).
- ``smoke``: a few iterations on a tiny scene, for tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from akdqff_bench.methods import bench_spec, methods_of_grid
from bench_base.spec import DEFAULT_CAPACITY, UnknownCapacity, capacity_slug, is_default_capacity  # noqa: F401 (re-exported)

TANKS_AND_TEMPLES_SCENES = ("tanks-temples/truck", "tanks-temples/train")
RAYS_PER_BATCH = 1024
# Iterations skipped before the median time per iteration is taken (allocations, caches, JIT).
WARMUP_ITERATIONS = 5
BUDGET_CLOCKS = ("cpu", "wall")
# How much evidence beside the final metrics a run draws: "full" (the committed study's) or "short"
# (the default ./run_all.sh's): "short" evaluates the learning curve at every second point of the
# profile's schedule (the same fractions of the budget, so its points lie on the reference's
# curves), and a method's own evidence draws fewer, cheaper points (its spec's evidence module).
# Training and the final evaluation are the same.
EVIDENCE_LEVELS = ("full", "short")
CURVE_STRIDE = {"full": 1, "short": 2}
# Where a profile's learning-curve points lie in its budget: evenly ("linear": 1/n, 2/n, ..., 1) or
# log-spaced ("log": every half power of two up to the whole budget, 2^-(n-1)/2, ..., 2^-1/2, 1).
CURVE_SPACINGS = ("linear", "log")

# The quick budget is CPU time: 240 s of quiet wall time on 2 cores times the CPU seconds such a
# machine spends per wall second of training (torch's threads keep both cores partly busy), as
# measured by `python -m akdqff_bench.experiments.cpu_calibration` (results/quick/cpu-calibration.csv:
# the mean over the methods). A wall budget on shared cores measures the machine as much as the method.
QUICK_WALL_SECONDS_QUIET = 240.0
QUICK_CPU_PER_WALL = 1.47
QUICK_CPU_BUDGET_SECONDS = round(QUICK_WALL_SECONDS_QUIET * QUICK_CPU_PER_WALL)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    device_type: str
    # Exactly one of the two stops training: a time budget (seconds of training iterations,
    # evaluation excluded, on the clock `budget_clock` names) or a fixed iteration count.
    train_budget_seconds: Optional[float]
    max_iterations: Optional[int]
    rays_per_batch: int
    # Which generated resolution of synthetic-bed this profile reads (data/synthetic-bed/<variant>).
    synthetic_bed_variant: str
    # The quality-against-time curve: this many evaluations, each on the first `curve_views` test views.
    curve_points: int
    curve_views: int
    scenes: Tuple[str, ...]
    seeds: Tuple[int, ...]
    # Only the smoke profile evaluates a subset of the test split.
    max_test_views: Optional[int] = None
    # The clock of train_budget_seconds: "cpu" (user + system CPU seconds of the training process,
    # all its threads; see runner.TrainingMonitor) or "wall" (elapsed seconds).
    budget_clock: str = "wall"
    # The study (`akdqff-bench grid --study`): every (scene, method) with these seeds, plus each
    # method's capacity points (its spec's), trained on capacity_scene with capacity_seed only: a
    # capacity curve compares sizes of one method, and 3 seeds of every point would triple the study.
    study_seeds: Tuple[int, ...] = ()
    # The study's scenes (default: ``scenes``, the default grid's, which may be a subset that fits
    # the default run's time).
    study_scenes: Tuple[str, ...] = ()
    capacity_scene: str = "synthetic-bed"
    capacity_seed: int = 0
    # The profile whose methods' settings (bench specs) apply: a profile derived from another with a
    # different budget (experiments.with_budget) keeps the settings of the one it came from.
    settings_from: Optional[str] = None
    curve_spacing: str = "linear"  # one of CURVE_SPACINGS
    # Whether the study adds each method's capacity points (a study of budgets compares methods, not sizes).
    study_capacities: bool = True

    def __post_init__(self) -> None:
        if self.budget_clock not in BUDGET_CLOCKS:
            raise ValueError(f"profile {self.name!r}: budget_clock must be one of {BUDGET_CLOCKS}, not {self.budget_clock!r}")
        if self.curve_spacing not in CURVE_SPACINGS:
            raise ValueError(f"profile {self.name!r}: curve_spacing must be one of {CURVE_SPACINGS}, not {self.curve_spacing!r}")

    @property
    def settings_name(self) -> str:
        return self.settings_from or self.name

    @property
    def methods(self) -> Tuple[str, ...]:
        """The methods of this profile's default grid: those whose bench spec names it."""
        return tuple(methods_of_grid(self.settings_name))

    def capacities(self, method: str) -> Tuple[str, ...]:
        """The labels of ``method``'s further capacity points in this profile, smallest model first."""
        return tuple(point.label for point in bench_spec(method).capacity_points(self.settings_name))

    def capacity_overrides(self, method: str, capacity: Optional[str]) -> Dict[str, Any]:
        """The overrides of ``method``'s capacity point on top of its profile settings ({} for the default)."""
        return bench_spec(method).capacity_overrides(self.settings_name, capacity)

    def overrides_for(self, method: str, scene_kind: str = "synthetic", capacity: Optional[str] = None) -> Dict[str, Any]:
        """``method``'s settings in this profile on a scene of ``scene_kind`` (bench_base.spec.SCENE_KINDS)."""
        return bench_spec(method).overrides(self.settings_name, scene_kind, capacity)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "Profile":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items() if key in fields})


class NoStudy(ValueError):
    """``--study`` asked of a profile that defines no study."""


def curve_fractions(profile: Profile, evidence: str = "full") -> List[float]:
    """The fractions of the budget (or of the iterations) at which a run of ``profile`` evaluates
    its learning curve at ``evidence``: the profile's schedule (``curve_spacing``), or every
    CURVE_STRIDE-th point of it counted back from the last, so that a short run's points lie on
    the full schedule and both end at the budget."""
    if evidence not in CURVE_STRIDE:
        raise ValueError(f"evidence must be one of {EVIDENCE_LEVELS}, not {evidence!r}")
    n = profile.curve_points
    if profile.curve_spacing == "log":
        schedule = [2.0 ** (-(n - 1 - i) / 2) for i in range(n)]
    else:
        schedule = [(i + 1) / n for i in range(n)]
    return schedule[::-1][::CURVE_STRIDE[evidence]][::-1]


def curve_points(profile: Profile, evidence: str = "full") -> int:
    """How many learning-curve evaluations a run of ``profile`` makes at ``evidence``."""
    return len(curve_fractions(profile, evidence))


def expected_train_wall_seconds(profile: Profile) -> Optional[float]:
    """Wall seconds one run of ``profile`` trains on a quiet 2-core machine: a CPU budget divided by
    the calibrated CPU seconds per wall second (QUICK_CPU_PER_WALL), a wall budget as it is; None
    for a fixed iteration count (its time is not known before a run)."""
    if profile.train_budget_seconds is None:
        return None
    if profile.budget_clock == "cpu":
        return profile.train_budget_seconds / QUICK_CPU_PER_WALL
    return float(profile.train_budget_seconds)


LONG_BUDGET_FACTOR = 4
# Two synthetic scenes (one made here, one standard) and two real captures around an object.
STUDY_SCENES = ("synthetic-bed", "nerf-synthetic-mic", "ethiopian-head", "mary-rose")

PROFILES: Dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="CPU, synthetic-bed 100x100 and the real captures, equal CPU-time training budget per method",
        device_type="cpu",
        train_budget_seconds=QUICK_CPU_BUDGET_SECONDS,
        budget_clock="cpu",
        max_iterations=None,
        rays_per_batch=RAYS_PER_BATCH,
        synthetic_bed_variant="quick",
        curve_points=8,
        curve_views=4,
        # The default grid (./run_all.sh): one scene of each kind the suite holds, about an hour.
        scenes=("synthetic-bed", "ethiopian-head") + TANKS_AND_TEMPLES_SCENES,
        seeds=(0,),
        study_seeds=(0, 1, 2),
        study_scenes=STUDY_SCENES + TANKS_AND_TEMPLES_SCENES,
    ),
    "full": Profile(
        name="full",
        description="GPU, synthetic-bed 800x800 and Tanks & Temples, the papers' settings",
        device_type="cuda",
        train_budget_seconds=None,
        max_iterations=30000,
        rays_per_batch=RAYS_PER_BATCH * 4,
        synthetic_bed_variant="full",
        curve_points=10,
        curve_views=8,
        scenes=STUDY_SCENES + TANKS_AND_TEMPLES_SCENES,
        seeds=(0,),
        # Real scenes' near/far planes and background come from their layout's settings
        # (akdqff_bench.datasets: SceneSettings), not from here.
    ),
    # ./run_all.sh gpu-check (akdqff_bench.gpu_check): every method with a bench spec, a short run each
    # on one GPU at its quick settings (the methods without quick settings, at their defaults).
    "gpu-check": Profile(
        name="gpu-check",
        description="GPU, a short run of every method on synthetic-bed 100x100 at its quick settings",
        device_type="cuda",
        train_budget_seconds=None,
        max_iterations=500,
        rays_per_batch=RAYS_PER_BATCH,
        synthetic_bed_variant="quick",
        curve_points=2,
        curve_views=2,
        scenes=("synthetic-bed",),
        seeds=(0,),
        max_test_views=8,
        settings_from="quick",
    ),
    # The long study (issue 25): what the quick profile does, for four times as long. Every
    # schedule a method has counts iterations, never the budget, so its first quick-budget of CPU
    # seconds is a quick run (docs/measurement.md); the curve passes through the quick budget.
    "long": Profile(
        name="long",
        description="CPU, the quick profile's scenes, data, rays and settings with four times its CPU budget",
        device_type="cpu",
        train_budget_seconds=LONG_BUDGET_FACTOR * QUICK_CPU_BUDGET_SECONDS,
        budget_clock="cpu",
        max_iterations=None,
        rays_per_batch=RAYS_PER_BATCH,
        synthetic_bed_variant="quick",
        curve_points=9,  # 1/16 of the budget to all of it by half powers of two: the quick budget is 1/4
        curve_spacing="log",
        curve_views=4,
        scenes=("synthetic-bed", "ethiopian-head"),
        seeds=(0,),
        study_seeds=(0, 1),
        study_capacities=False,
        settings_from="quick",
    ),
    "smoke": Profile(
        name="smoke",
        description="a few iterations on a tiny scene, for tests",
        device_type="cpu",
        train_budget_seconds=None,
        max_iterations=8,
        rays_per_batch=64,
        synthetic_bed_variant="quick",
        curve_points=2,
        curve_views=1,
        scenes=("synthetic-bed",),
        seeds=(0,),
        study_seeds=(0, 1),
        max_test_views=2,
    ),
}


class UnknownProfile(ValueError):
    """A profile name that PROFILES does not define."""


def get_profile(name) -> Profile:
    """The profile called ``name`` (a Profile passes through: it is resolved once, by the caller)."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
