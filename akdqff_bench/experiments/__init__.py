"""Timed experiments the lead runs on a quiet machine, one command each (``python -m ...``):

- :mod:`akdqff_bench.experiments.cpu_calibration`: the CPU seconds per wall second of each method's
  quick training, to size the quick profile's CPU-time budget (``profiles.QUICK_CPU_PER_WALL``).
- :mod:`akdqff_bench.experiments.contention`: a run beside a competing CPU load under the CPU-time
  budget and under the wall-clock budget, against the seed spread of quiet runs.
"""

from __future__ import annotations

from dataclasses import replace

from akdqff_bench.profiles import PROFILES, Profile


def with_budget(profile: Profile, clock: str, seconds: float) -> Profile:
    """``profile`` stopped after ``seconds`` of training on ``clock`` ("cpu" or "wall") instead,
    named after that budget (its records go to their own folder)."""
    return replace(profile, name=f"{profile.name}-{clock}{seconds:g}s", train_budget_seconds=float(seconds),
                   max_iterations=None, budget_clock=clock)


def register(profile: Profile) -> str:
    """Make ``profile`` known to get_profile (and so to run_one) in this process; returns its name."""
    PROFILES[profile.name] = profile
    return profile.name
