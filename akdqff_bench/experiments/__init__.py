"""Timed experiments the lead runs on a quiet machine, one command each (``python -m ...``):

- :mod:`akdqff_bench.experiments.cpu_calibration`: the CPU seconds per wall second of each method's
  quick training, to size the quick profile's CPU-time budget (``profiles.QUICK_CPU_PER_WALL``).
- :mod:`akdqff_bench.experiments.contention`: a run beside a competing CPU load under the CPU-time
  budget and under the wall-clock budget, against the seed spread of quiet runs.

And diagnoses of trained study runs (from their nerfstudio checkpoints; nothing they do changes the
study's numbers): those live with their method (``<method folder>/diagnostics/``).
"""

from __future__ import annotations

from dataclasses import replace

from akdqff_bench.load import OtherLoad, machine_busy_seconds  # noqa: F401 (re-exported)
from akdqff_bench.profiles import Profile


def with_budget(profile: Profile, clock: str, seconds: float) -> Profile:
    """``profile`` stopped after ``seconds`` of training on ``clock`` ("cpu" or "wall") instead,
    named after that budget (its records go to their own folder), with its methods' settings."""
    return replace(profile, name=f"{profile.name}-{clock}{seconds:g}s", train_budget_seconds=float(seconds),
                   max_iterations=None, budget_clock=clock, settings_from=profile.settings_name)
