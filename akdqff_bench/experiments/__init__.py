"""Timed experiments the lead runs on a quiet machine, one command each (``python -m ...``):

- :mod:`akdqff_bench.experiments.cpu_calibration`: the CPU seconds per wall second of each method's
  quick training, to size the quick profile's CPU-time budget (``profiles.QUICK_CPU_PER_WALL``).
- :mod:`akdqff_bench.experiments.contention`: a run beside a competing CPU load under the CPU-time
  budget and under the wall-clock budget, against the seed spread of quiet runs.

And diagnoses of trained study runs (from their nerfstudio checkpoints; nothing they do changes the
study's numbers): :mod:`~akdqff_bench.experiments.block_nerf_appearance` and
:mod:`~akdqff_bench.experiments.block_nerf_blocks` (why Block-NeRF's ethiopian-head views go bad),
:mod:`~akdqff_bench.experiments.density_views` (AKDQFF's kernel density on fewer training views).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Optional

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


def machine_busy_seconds() -> Optional[float]:
    """CPU seconds all cores have been busy since boot, as /proc/stat counts them (None elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(value) for value in f.readline().split()[1:9]]  # user .. steal (guest is inside user)
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class OtherLoad:
    """How busy the cores were with anything but this process while a block ran: CPU seconds of
    other work per wall second (0 on a quiet machine; 2 busy processes on 2 cores give about 2 minus
    what this process got). Used as ``with OtherLoad() as load: ...; load.per_wall``."""

    per_wall: Optional[float] = None

    def __enter__(self) -> "OtherLoad":
        self._busy, self._own, self._wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy = machine_busy_seconds()
        wall = time.perf_counter() - self._wall
        if busy is not None and self._busy is not None and wall > 0:
            self.per_wall = max(0.0, (busy - self._busy) - (time.process_time() - self._own)) / wall
