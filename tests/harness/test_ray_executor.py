"""The grid on a Ray cluster: a local one these tests start (2 CPUs, no GPU), smoke runs in-process.

- the smoke grid through Ray leaves the records and files the local executor leaves (the smoke runs
  are deterministic with one torch thread, so every metric must agree, not only the statuses);
- a worker that dies mid-run is retried; one that dies on every attempt is recorded as failed with
  Ray's error, and the rest of the grid finishes;
- a results folder the driver cannot write stops the grid before anything trains.
"""

import json
import socket
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from akdqff_bench import executors, runner
from akdqff_bench import grid
from akdqff_bench.methods import bench_spec
from akdqff_bench.profiles import get_profile
from akdqff_bench.records import read_record, record_path, run_id

try:
    import ray
except ImportError:  # the local executor's check below still runs
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed: pip install -e '.[cluster]' (./run_all.sh test installs it)")

pytestmark = pytest.mark.filterwarnings("ignore")

SMOKE_METHODS = list(get_profile("smoke").methods)
# What differs from one execution of the same run to the next: times (wall-clock or CPU), the process's
# peak memory, where the run ran, and the checkout's commit (in a shared checkout one may land between the two grids).
UNREPEATABLE_KEYS = {"ray", "traceback", "commit", "other_load_cores"}
UNREPEATABLE_WORDS = ("seconds", "s_per_iter", "fps", "peak_memory")


def _unrepeatable(key: str) -> bool:
    return key in UNREPEATABLE_KEYS or any(word in key for word in UNREPEATABLE_WORDS)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A new local Ray instance (address='local': never a cluster that happens to run here)."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialized in this process by something else")
    scratch = tmp_path_factory.mktemp("ray-workers")
    patch = pytest.MonkeyPatch()
    # Workers inherit the environment Ray starts with: no LPIPS weights (like the no_lpips_weights
    # fixture on the local side) and run scratch folders that pytest removes, also those a killed worker leaves.
    patch.setenv("TORCH_HOME", str(scratch / "torch-home"))
    patch.setenv("RAY_TMPDIR", tempfile.gettempdir())  # Ray's own sockets: a short path (AF_UNIX allows 107 bytes)
    patch.setenv("TMPDIR", str(scratch))
    try:
        ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=100 * 1024**2)
    finally:
        patch.undo()
    yield
    ray.shutdown()


@pytest.fixture
def one_torch_thread():
    """The Ray side trains smoke runs with one thread (the one CPU each reserves); so does this side."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _repeatable(record: dict, root: Path) -> dict:
    """The record without what legitimately differs between two executions, its results root as <root>."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not _unrepeatable(k)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(record), sort_keys=True)
    return json.loads(text.replace(json.dumps(str(root))[1:-1], "<root>"))


def _artifact_files(root: Path, run: str) -> dict:
    folder = root / "smoke" / "runs" / run
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@needs_ray
def test_ray_grid_writes_the_records_of_the_local_grid(tmp_path, tiny_data_root, no_lpips_weights, one_torch_thread, ray_cluster, capsys):
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    started = time.perf_counter()
    assert grid.run_grid("smoke", local_root, grid.GridOptions(notebooks=False)) == 0
    local_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assert grid.run_grid("smoke", ray_root, grid.GridOptions(notebooks=False, executor="ray")) == 0
    ray_seconds = time.perf_counter() - started
    output = capsys.readouterr().out
    with capsys.disabled():
        print(f"\nsmoke grid ({len(SMOKE_METHODS)} runs, in-process): local executor {local_seconds:.1f} s, "
              f"Ray executor {ray_seconds:.1f} s (Ray already started)")

    for method in SMOKE_METHODS:
        name = run_id(method, "synthetic-bed", 0)
        local = read_record(record_path(local_root, "smoke", method, "synthetic-bed", 0))
        remote = read_record(record_path(ray_root, "smoke", method, "synthetic-bed", 0))
        assert local["status"] == remote["status"] == "ok", (local.get("message"), remote.get("message"))
        assert _repeatable(remote, ray_root) == _repeatable(local, local_root), method
        # Written by the driver where the local run writes it; model.bin byte for byte.
        assert remote["model_file"] == str(ray_root / "smoke" / "runs" / name / "model.bin")
        assert _artifact_files(ray_root, name) == _artifact_files(local_root, name), method
        # nerfstudio's config points at the checkpoint where the driver put it (ns-eval works on it).
        (config_file,) = (ray_root / "smoke" / "nerfstudio" / name).rglob("config.yml")
        config = yaml.load(config_file.read_text(), Loader=yaml.Loader)
        assert config.output_dir == ray_root / "smoke" / "nerfstudio" / name
        assert list(config.get_checkpoint_dir().glob("step-*.ckpt"))
        # Where it ran, as the progress said.
        assert remote["ray"]["hostname"] == socket.gethostname() and remote["ray"]["node_ip"]
        assert f"{method} on synthetic-bed (seed 0) ok on {socket.gethostname()}" in output
    assert "grid ETA about" in output
    assert (ray_root / "smoke" / "metrics.csv").read_text().count(",ok,") == len(SMOKE_METHODS)

    # Resume as locally: a second grid finds every run finished and leaves the records alone.
    written = {p: p.stat().st_mtime_ns for p in (ray_root / "smoke" / "runs").glob("*.json")}
    assert grid.run_grid("smoke", ray_root, grid.GridOptions(notebooks=False, executor="ray")) == 0
    assert f"{len(SMOKE_METHODS)} already done, 0 to go" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in written} == written


@needs_ray
def test_a_dead_worker_is_retried_then_recorded_failed(tmp_path, tiny_data_root, no_lpips_weights, ray_cluster, capsys):
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def kill_workers(job):
        """Runs on the worker before each attempt (shipped by value): nerf's first attempt dies after
        3 of its 8 iterations, plenoxels dies on every attempt; each attempt leaves a line."""
        import os as worker_os

        log = attempts / job.request.method
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{worker_os.getpid()}\n")
        attempt = len(log.read_text().splitlines())
        if job.request.method == "plenoxels":
            worker_os._exit(3)
        if job.request.method == "nerf" and attempt == 1:
            from akdqff_bench import runner as worker_runner

            end_iteration = worker_runner.TrainingMonitor.end_iteration

            def die_mid_run(self, step):
                if step == 2:
                    worker_os._exit(3)
                end_iteration(self, step)

            worker_runner.TrainingMonitor.end_iteration = die_mid_run

    started = time.perf_counter()
    executor = executors.RayExecutor(retries=1, before_run=kill_workers)
    assert grid.run_grid("smoke", tmp_path / "results", grid.GridOptions(methods=["nerf", "plenoxels"], notebooks=False, executor=executor)) == 1
    seconds = time.perf_counter() - started
    output = capsys.readouterr().out

    nerf_attempts = (attempts / "nerf").read_text().split()
    plenoxels_attempts = (attempts / "plenoxels").read_text().split()
    nerf = read_record(record_path(tmp_path / "results", "smoke", "nerf", "synthetic-bed", 0))
    plenoxels = read_record(record_path(tmp_path / "results", "smoke", "plenoxels", "synthetic-bed", 0))
    with capsys.disabled():
        print(f"\nretry test ({seconds:.1f} s): nerf attempts (worker pids) {nerf_attempts} -> {nerf['status']}; "
              f"plenoxels attempts {plenoxels_attempts} -> {plenoxels['status']}: {plenoxels['message'][:160]}")
    # nerf: killed in training, run again in a new worker process, finished whole.
    assert len(nerf_attempts) == 2 and nerf_attempts[0] != nerf_attempts[1]
    assert nerf["status"] == "ok" and nerf["iterations"] == 8
    # plenoxels: 1 + retries attempts, then a failed record with Ray's error; the grid went on.
    assert len(plenoxels_attempts) == 2
    assert plenoxels["status"] == "failed" and plenoxels["method"] == "plenoxels" and plenoxels["scene"] == "bed"
    assert "on each of 2 attempt(s)" in plenoxels["message"] and "Error" in plenoxels["message"]
    assert "!! [" in output and "plenoxels on synthetic-bed (seed 0) failed" in output
    statuses = (tmp_path / "results" / "smoke" / "metrics.csv").read_text()
    assert ",ok," in statuses and ",failed," in statuses
    # A failed run is not finished: the next grid runs it again (here it dies again) and skips nerf.
    executor = executors.RayExecutor(retries=0, before_run=kill_workers)
    assert grid.run_grid("smoke", tmp_path / "results", grid.GridOptions(methods=["nerf", "plenoxels"], notebooks=False, executor=executor)) == 1
    assert len((attempts / "nerf").read_text().split()) == 2 and len((attempts / "plenoxels").read_text().split()) == 3


@needs_ray
def test_a_cluster_that_cannot_hold_a_run_is_refused_before_submitting(tmp_path, tiny_scene, ray_cluster, monkeypatch):
    """The full profile's runs each reserve a GPU; this cluster has none: say so, submit nothing."""
    monkeypatch.setattr(executors, "run_on_worker", None)  # a task submitted would fail to be made
    with pytest.raises(executors.ExecutorError, match=r"no node of the Ray cluster can hold one run of the full profile on cuda.*'num_gpus': 1.*CPU 2"):
        grid.run_grid("full", tmp_path / "results", grid.GridOptions(methods=["nerf"], scenes=[f"blender:{tiny_scene}"], notebooks=False, executor="ray"))
    assert not list((tmp_path / "results" / "full" / "runs").iterdir())


@pytest.mark.parametrize("executor", ["local", pytest.param("ray", marks=needs_ray)])
def test_an_unwritable_results_folder_stops_the_grid_before_training(tmp_path, monkeypatch, tiny_data_root, executor):
    def no_training(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(runner, "run_one", no_training)
    monkeypatch.setattr(executors.RayExecutor, "_connect", no_training)
    not_a_folder = tmp_path / "results-file"
    not_a_folder.write_text("a file where the results folder would go\n")  # root ignores permissions; a file stops it
    with pytest.raises(executors.ResultsNotWritable, match=r"cannot write results under .*results-file/sub/smoke/runs: Not a directory.*Nothing was run"):
        grid.run_grid("smoke", not_a_folder / "sub", grid.GridOptions(notebooks=False, executor=executor))


@needs_ray
def test_a_study_on_ray_carries_each_capacity_point(tmp_path, tiny_data_root, no_lpips_weights, ray_cluster, capsys):
    """The study grid through Ray: the capacity point reaches the worker (its settings, its own run id)
    and each run's log file comes back to the driver's results folder."""
    from akdqff_bench.records import log_path

    root = tmp_path / "results"
    smoke = get_profile("smoke")
    jobs = tmp_path / "jobs"
    jobs.mkdir()

    def note_the_job(job):  # on the worker: what it was asked to draw
        (jobs / job.run_id).write_text(job.request.evidence, encoding="utf-8")

    executor = executors.RayExecutor(before_run=note_the_job)
    assert grid.run_grid("smoke", root, grid.GridOptions(methods=["nerf"], notebooks=False, executor=executor, study=True, evidence="short")) == 0
    output = capsys.readouterr().out
    assert {path.read_text() for path in jobs.iterdir()} == {"short"}  # every worker was asked for the grid's level
    (point,) = bench_spec("nerf").capacity_points("smoke")
    label, overrides = point.label, dict(point.overrides)
    name = run_id("nerf", "synthetic-bed", 0, label)
    record = read_record(record_path(root, "smoke", "nerf", "synthetic-bed", 0, label))
    assert record["status"] == "ok" and record["capacity"] == label and record["run_id"] == name and record["ray"]["hostname"]
    assert all(record["overrides"][key] == value for key, value in overrides.items())
    assert (root / "smoke" / "runs" / name / "model.bin").is_file()
    assert f"nerf on synthetic-bed ({label}, seed 0) ok on {socket.gethostname()}" in output
    for seed in smoke.study_seeds:
        assert read_record(record_path(root, "smoke", "nerf", "synthetic-bed", seed))["status"] == "ok"
    log = log_path(root, "smoke", name).read_text()
    # The worker's scratch folder is named as the driver's results folder in the log, as in the records.
    assert f"[nerf | synthetic-bed | smoke | {label}] training" in log and "akdqff-bench-run-" not in log
