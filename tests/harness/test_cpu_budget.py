"""The quick profile's CPU-time budget: the monitor's clocks (fake, so nothing passes by luck) and a
real smoke run stopped by its own CPU time."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation

from akdqff_bench.experiments import with_budget
from akdqff_bench.request import RunRequest
from akdqff_bench.profiles import PROFILES, get_profile
from akdqff_bench.runner import TrainingMonitor, run_one

pytestmark = pytest.mark.filterwarnings("ignore")


class FakeClocks:
    wall = 0.0
    cpu = 0.0


def train_with_fake_clocks(budget_clock: str, budget: float):
    """Each iteration takes 1.0 s of wall and 0.25 s of CPU; between iterations (nerfstudio's own
    work, the curve's evaluations) 5 s of wall and 3 s of CPU pass that must not count."""
    clocks = FakeClocks()
    trainer = SimpleNamespace(stop_training=False)
    monitor = TrainingMonitor(trainer, budget, None, None, 4, "cpu", "test", log=lambda message: None,
                              budget_clock=budget_clock, wall_clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)
    monitor.evaluate_curve = lambda step: monitor.curve.append({"iteration": step + 1, "psnr": 0.0})
    step = 0
    while not trainer.stop_training and step < 100:
        monitor.start_iteration(step)
        clocks.wall += 1.0
        clocks.cpu += 0.25
        monitor.end_iteration(step)
        clocks.wall += 5.0
        clocks.cpu += 3.0
        step += 1
    return monitor


def test_cpu_budget_counts_cpu_time_of_iterations_only():
    monitor = train_with_fake_clocks("cpu", 1.0)
    assert len(monitor.iteration_seconds) == 4  # 4 x 0.25 CPU-s; the wall clock (4 s) is ignored
    assert monitor.trained_cpu_seconds == 1.0 and monitor.trained_seconds == 4.0
    # The curve's progress is on the budget's clock: a point at each quarter of the CPU budget.
    assert [point["iteration"] for point in monitor.curve] == [1, 2, 3, 4]


def test_wall_budget_counts_wall_time_of_iterations_only():
    monitor = train_with_fake_clocks("wall", 3.0)
    assert len(monitor.iteration_seconds) == 3
    assert monitor.trained_seconds == 3.0 and monitor.trained_cpu_seconds == 0.75


def test_unknown_budget_clock_is_refused():
    with pytest.raises(ValueError, match="budget_clock"):
        TrainingMonitor(None, 1.0, None, None, 2, "cpu", "test", budget_clock="gpu")


def test_cpu_budget_stops_a_real_run(tmp_path, tiny_data_root, no_lpips_weights, monkeypatch):
    budget = 1.0
    profile = with_budget(get_profile("smoke"), "cpu", budget)
    monkeypatch.setitem(PROFILES, profile.name, profile)
    monitors = []
    attach = TrainingMonitor.attach

    def attach_with_a_pause(self):
        """Every iteration also waits 50 ms without computing, as when other programs hold the cores."""
        attach(self)
        monitors.append(self)
        self.trainer.callbacks.insert(1, TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], lambda step: time.sleep(0.05)))

    monkeypatch.setattr(TrainingMonitor, "attach", attach_with_a_pause)
    record = run_one(RunRequest("nerf", "synthetic-bed", profile.name, 0), tmp_path).record
    cpu = monitors[0].iteration_cpu_seconds
    assert record["status"] == "ok" and record["budget_clock"] == "cpu" and record["train_budget_seconds"] == budget
    assert record["iterations"] == len(cpu) and record["train_cpu_seconds"] == pytest.approx(sum(cpu))
    # It stopped at the first iteration that reached the budget, not before, not later.
    assert sum(cpu[:-1]) < budget <= sum(cpu)
    # The pauses are in the wall time, not in the CPU time that stopped the run.
    assert record["train_seconds"] >= 0.05 * record["iterations"]
    assert record["curve"][-1]["train_cpu_seconds"] == pytest.approx(sum(cpu))
    assert record["cpu_s_per_iter"] > 0 and record["s_per_iter"] >= 0.05


def test_an_experiment_profile_keeps_its_methods_settings():
    derived = with_budget(get_profile("smoke"), "wall", 30)
    assert derived.name == "smoke-wall30s" and derived.budget_clock == "wall" and derived.max_iterations is None
    assert derived.train_budget_seconds == 30.0 and get_profile("smoke").max_iterations == 8
    assert derived.overrides_for("nerf") == get_profile("smoke").overrides_for("nerf") != {}
    assert derived.name not in PROFILES


def _policy_seen(code: str, **env) -> str:
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_harness_makes_waiting_threads_sleep_only_where_it_takes_effect():
    show = "import os; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _policy_seen(f"import akdqff_bench; {show}") == "PASSIVE"
    assert _policy_seen(f"import akdqff_bench; {show}", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"  # the user's choice wins
    # torch already loaded: OpenMP has read its settings, so the record must not claim a policy
    assert _policy_seen(f"import torch, akdqff_bench; {show}") == "None"
