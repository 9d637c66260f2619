"""The quiet-machine experiments' own parts (the runs themselves are the lead's, minutes long)."""

from __future__ import annotations

import pandas as pd

from akdqff_bench.experiments import OtherLoad
from akdqff_bench.experiments.contention import CompetingLoad, summarize


def test_competing_load_runs_only_inside_its_block():
    with CompetingLoad(1) as load:
        assert all(process.poll() is None for process in load.processes)
    assert all(process.poll() is not None for process in load.processes)


def test_other_load_sees_a_busy_process_beside_this_one():
    with CompetingLoad(1), OtherLoad() as others:
        __import__("time").sleep(1.0)  # this process idles; the busy one holds a core
    assert others.per_wall is not None and others.per_wall > 0.5


def _row(condition, seed, psnr, iterations, load=0, clock="cpu", other=0.0):
    return {"condition": condition, "load_processes": load, "budget_clock": clock, "budget_seconds": 360.0 if clock == "cpu" else 240.0,
            "method": "nerf", "scene": "synthetic-bed", "seed": seed, "psnr": psnr, "ssim": 0.9, "iterations": iterations,
            "train_seconds": 240.0, "train_cpu_seconds": 360.0, "cpu_per_wall": 1.5, "other_cpu_per_wall": other, "device": "cpu"}


def test_summary_compares_the_loaded_runs_with_the_quiet_seed_spread():
    table = pd.DataFrame([_row("quiet-cpu", 0, 23.0, 1000), _row("quiet-cpu", 1, 23.4, 1010), _row("quiet-cpu", 2, 22.8, 990),
                          _row("loaded-cpu", 0, 23.1, 995, load=2, other=0.9), _row("quiet-wall", 0, 23.0, 1000, clock="wall"),
                          _row("loaded-wall", 0, 19.5, 480, load=2, clock="wall", other=0.9)])
    summary = summarize(table)
    assert "PSNR 23.07 dB mean, 22.80 to 23.40 dB" in summary
    assert "23.10 dB, +0.03 dB from the quiet mean, inside the quiet seeds' range" in summary
    assert "23.00 dB quietly, 19.50 dB under load (-3.50 dB), 480 iterations against 1000" in summary
    assert "Not quiet" not in summary
    table.loc[1, "other_cpu_per_wall"] = 0.8
    assert "**Not quiet**: other programs used 0.80 CPU-s per second during 1 of the runs" in summarize(table)
