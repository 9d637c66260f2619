"""A machine-speed probe: one fixed, small workload timed in the run's own process just before it
trains, so that every record says how fast the machine was that ran it, and two machines' records
can be compared by the ratio of their probes rather than guessed from CPU model names.

The workload is what the methods of this suite spend their iterations on: the forward and backward
pass of a small coordinate MLP (NeRF-sized: 63 inputs, four 256-wide layers) on a batch of rays'
samples, with the optimizer step, on the run's device and with the run's torch threads. It is the
same on every machine (seeded inputs, fixed sizes); PROBE_VERSION changes when it does, and probes
of different versions are never compared.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Dict, Optional

import torch

PROBE_VERSION = 1
PROBE_BATCH = 1024
PROBE_WIDTH = 256
PROBE_INPUTS = 63
PROBE_STEPS = 3  # per repeat
PROBE_REPEATS = 5  # the median repeat is recorded: a moment of other load moves one repeat, not the median
PROBE_WORK = (f"MLP {PROBE_INPUTS}-{PROBE_WIDTH}x4-4 forward+backward+Adam on {PROBE_BATCH} samples, "
              f"{PROBE_STEPS} steps per repeat, median of {PROBE_REPEATS} repeats (probe v{PROBE_VERSION})")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_speed(device_type: str = "cpu") -> Dict[str, Any]:
    """Time the probe's workload on ``device_type``; the record's ``speed_probe``: seconds per repeat
    on the wall clock and on this process's CPU clock (median repeat), and what was run."""
    device = torch.device("cuda" if device_type == "cuda" else "cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):  # the layers' initialisation leaves the run's own random stream as it was
        torch.manual_seed(0)
        layers = [torch.nn.Linear(PROBE_INPUTS, PROBE_WIDTH)]
        for _ in range(3):
            layers += [torch.nn.ReLU(), torch.nn.Linear(PROBE_WIDTH, PROBE_WIDTH)]
        model = torch.nn.Sequential(*layers, torch.nn.ReLU(), torch.nn.Linear(PROBE_WIDTH, 4)).to(device)
    inputs = torch.rand(PROBE_BATCH, PROBE_INPUTS, generator=generator).to(device)
    targets = torch.rand(PROBE_BATCH, 4, generator=generator).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def repeat() -> None:
        for _ in range(PROBE_STEPS):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            optimizer.step()
        _sync(device)

    repeat()  # warm-up: allocations, kernel selection
    wall, cpu = [], []
    for _ in range(PROBE_REPEATS):
        started, started_cpu = time.perf_counter(), time.process_time()
        repeat()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"version": PROBE_VERSION, "work": PROBE_WORK, "device": device.type, "threads": torch.get_num_threads(),
            "wall_seconds": statistics.median(wall), "cpu_seconds": statistics.median(cpu)}


def probe_seconds(record: Dict[str, Any]) -> Optional[float]:
    """A record's probe: seconds per repeat on the clock its device's budgets use (CPU seconds on a
    CPU, where the quick budget is CPU time; wall seconds on a GPU). None: a record made before the
    probe existed, or by another version of it."""
    probe = record.get("speed_probe") or {}
    value = probe.get("cpu_seconds" if probe.get("device") == "cpu" else "wall_seconds")
    if probe.get("version") != PROBE_VERSION or not value:
        return None
    return float(value)


if __name__ == "__main__":
    print(measure_speed("cuda" if torch.cuda.is_available() else "cpu"))
