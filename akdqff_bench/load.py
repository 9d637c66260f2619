"""How busy the machine was with other programs while something of ours ran."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional


def machine_busy_seconds() -> Optional[float]:
    """CPU seconds all cores have been busy (idle and iowait excluded), from psutil (/proc/stat on
    Linux); None where it cannot be read."""
    try:
        import psutil

        times = psutil.cpu_times()
        return float(sum(times)) - float(times.idle) - float(getattr(times, "iowait", 0.0))
    except Exception:  # a platform psutil cannot read: the record says None, the run goes on
        return None


@dataclass
class OtherLoad:
    """CPU time that other programs spent on this machine while a block ran, in cores: busy CPU
    seconds of the whole machine minus this process's own, per wall second (0 on a quiet machine;
    niced programs count too). Timings are only as good as the quiet they were taken in; this makes
    each record say how quiet it was. ``load = OtherLoad.start(); ...; load.cores()``, or
    ``with OtherLoad() as load: ...`` and then ``load.per_wall``."""

    machine_busy: Optional[float] = None
    own: float = 0.0
    wall: float = 0.0
    per_wall: Optional[float] = None

    @classmethod
    def start(cls) -> Optional["OtherLoad"]:
        busy = machine_busy_seconds()
        return None if busy is None else cls(busy, time.process_time(), time.perf_counter())

    def cores(self) -> Optional[float]:
        busy = machine_busy_seconds()
        wall = time.perf_counter() - self.wall
        if busy is None or self.machine_busy is None or wall <= 0:
            return None
        return max(0.0, ((busy - self.machine_busy) - (time.process_time() - self.own)) / wall)

    def __enter__(self) -> "OtherLoad":
        self.machine_busy, self.own, self.wall = machine_busy_seconds(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.per_wall = self.cores()
