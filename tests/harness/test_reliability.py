"""Records that cannot lie: one process at a time on a results folder, a run complete or absent,
resume that notices a changed plan or data now present, bad input refused before training, a run
that got worse marked diverged."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from akdqff_bench import grid, records, report, runner
from akdqff_bench.lock import ResultsBusy, holding, profile_lock
from akdqff_bench.request import RunRequest

REPO = Path(__file__).resolve().parents[2]
TINY_PLUGIN = REPO / "tests" / "fixtures" / "tiny_plugin"

pytestmark = pytest.mark.filterwarnings("ignore")


def _hold_lock_in_another_process(lock_file: Path) -> subprocess.Popen:
    code = ("import sys, time; from akdqff_bench.lock import holding\n"
            f"with holding({str(lock_file)!r}):\n    print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_on_the_same_results_is_refused_naming_the_holder_and_a_killed_holder_blocks_nothing(tmp_path):
    lock_file = profile_lock(tmp_path, "smoke")
    holder = _hold_lock_in_another_process(lock_file)
    try:
        with pytest.raises(ResultsBusy, match=rf"in use by pid {holder.pid} .*pass --wait"):
            with holding(lock_file):
                pass
        with pytest.raises(ResultsBusy, match="still in use"):
            with holding(lock_file, wait=True, poll_seconds=0.05, timeout=0.3):
                pass
        # The grid refuses before anything trains, in one line, exit 2.
        done = subprocess.run([sys.executable, "-m", "akdqff_bench.cli", "grid", "--profile", "smoke", "--methods", "nerf",
                               "--no-notebooks", "--results", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=300)
        assert done.returncode == 2 and f"in use by pid {holder.pid}" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "smoke" / "runs").exists() or not list((tmp_path / "smoke" / "runs").glob("*.json"))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with holding(lock_file, poll_seconds=0.05, timeout=1):  # the kernel let go of a killed holder's lock
        pass


def test_waiting_takes_the_lock_when_the_holder_ends(tmp_path):
    lock_file = profile_lock(tmp_path, "smoke")
    holder = _hold_lock_in_another_process(lock_file)
    started = time.monotonic()
    subprocess.Popen(["sh", "-c", f"sleep 1; kill {holder.pid}"])
    with holding(lock_file, wait=True, poll_seconds=0.05, timeout=60):
        assert time.monotonic() - started >= 0.9
    holder.wait()


@pytest.mark.slow
def test_a_run_killed_in_its_evidence_cell_leaves_no_record_and_runs_again(tmp_path, tiny_data_root):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TINY_PLUGIN), os.environ.get("PYTHONPATH", "")]),
           "AKDQFF_BENCH_DATA": str(tiny_data_root), "AKDQFF_BENCH_NO_DOWNLOAD": "1", "TINY_EVIDENCE_SECONDS": "600"}
    results = tmp_path / "results"
    command = [sys.executable, "-m", "akdqff_bench.cli", "grid", "--profile", "smoke", "--methods", "tiny-method", "--results", str(results)]
    runs = results / "smoke" / "runs"
    record, pending = runs / "tiny-method__synthetic-bed__seed0.json", runs / "tiny-method__synthetic-bed__seed0.json.pending"
    grid_process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not pending.exists():  # measured: the notebook is now in its evidence cell (10 min long)
            assert grid_process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(grid_process.pid, signal.SIGKILL)
        grid_process.wait()
    assert not record.exists()
    assert not (results / "smoke" / "notebooks" / "tiny-method__synthetic-bed__seed0.ipynb").exists()
    env["TINY_EVIDENCE_SECONDS"] = "0"
    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "1 runs, 0 already done, 1 to go" in again.stdout
    assert json.loads(record.read_text())["status"] == "ok" and not pending.exists()
    assert (results / "smoke" / "notebooks" / "tiny-method__synthetic-bed__seed0.ipynb").exists()


def test_a_run_that_renders_nan_is_failed_with_the_reason(tmp_path, tiny_data_root, no_lpips_weights, monkeypatch):
    import torch

    monkeypatch.setattr(runner, "render_view", lambda model, cameras, index: torch.full((cameras[index:index + 1].height.item(),
                                                                                          cameras[index:index + 1].width.item(), 3), float("nan")))
    with pytest.raises(runner.RunFailed, match="non-finite PSNR or SSIM on 2 of 2 test views"):
        runner.run_one(RunRequest("nerf", "synthetic-bed", "smoke", 0), tmp_path)
    record = records.read_record(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0))
    assert record["status"] == "failed" and "non-finite" in record["message"]
    assert not records.is_finished(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0))  # the next grid runs it again


def _ok_record(request: RunRequest, **changes):
    record = {"method": request.method, "dataset": "synthetic-bed", "scene": "bed", "profile": "smoke", "seed": 0, "status": "ok",
              "overrides": json.loads(json.dumps(request.overrides())), "rays_per_batch": request.profile.rays_per_batch,
              "train_budget_seconds": request.profile.train_budget_seconds, "max_iterations": request.profile.max_iterations,
              "budget_clock": None, "psnr": 20.0}
    record.update(changes)
    return record


def test_a_record_made_with_other_settings_is_run_again_or_kept_and_named(tmp_path, monkeypatch, capsys, tiny_data_root):
    calls = []
    monkeypatch.setattr(runner, "run_one", lambda request, root: calls.append(request.method))
    nerf = RunRequest("nerf", "synthetic-bed", "smoke", 0)
    plenoxels = RunRequest("plenoxels", "synthetic-bed", "smoke", 0)
    records.write_record(nerf.record_path(tmp_path), _ok_record(nerf))  # as the plan would run it now
    changed = _ok_record(plenoxels)
    changed["overrides"]["pipeline.model.weight_window"] = 99
    records.write_record(plenoxels.record_path(tmp_path), changed)
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf", "plenoxels"], notebooks=False, keep_stale=True))
    out = capsys.readouterr().out
    assert calls == [] and "plenoxels__synthetic-bed__seed0: its record ran with other settings (settings pipeline.model.weight_window: 99 -> 2)" in out
    assert "kept, as --keep-stale asks" in out
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf", "plenoxels"], notebooks=False))
    assert calls == ["plenoxels"] and "run again" in capsys.readouterr().out


def test_a_run_skipped_for_absent_data_runs_once_the_data_is_there(tmp_path, monkeypatch, tiny_data_root):
    calls = []
    monkeypatch.setattr(runner, "run_one", lambda request, root: calls.append(request.scene))
    request = RunRequest("nerf", "tanks-temples/truck", "smoke", 0)
    records.write_record(request.record_path(tmp_path), {"method": "nerf", "dataset": "tanks-temples", "scene": "truck", "status": "skipped"})
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], scenes=["tanks-temples/truck"], notebooks=False))
    assert calls == []  # still absent: still skipped
    monkeypatch.setattr(grid, "_scene_present", lambda scene, variant: True)
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], scenes=["tanks-temples/truck"], notebooks=False))
    assert calls == ["tanks-temples/truck"]


def test_a_curve_that_falls_marks_the_run_diverged_in_its_record_and_the_tables():
    falling = [{"psnr": value} for value in (13.04, 12.1, 10.5, 8.2, 6.9)]
    assert runner.curve_drop(falling) == pytest.approx(13.04 - 6.9)
    assert runner.curve_drop([{"psnr": 10.0}, {"psnr": 12.0}, {"psnr": 11.5}]) == pytest.approx(0.5)  # within the rule
    assert runner.curve_drop([]) is None
    base = {"status": "ok", "method": "nerf", "dataset": "synthetic-bed", "scene": "bed", "capacity": "default", "psnr": 6.9, "ssim": 0.2}
    rows = [{**base, "seed": 0, "diverged": True, "curve_drop_db": 6.14}, {**base, "seed": 1, "diverged": False, "curve_drop_db": 0.1}]
    (frame, _), = report.results_frames(rows).values()
    assert frame.loc[0, "Note"] == "diverged on 1 of 2 seed(s): the learning curve ends 6.1 dB below its best point"
    from akdqff_bench.executors import outcome

    assert "DIVERGED (its curve ends 6.1 dB below its best)" in outcome(rows[0])
    assert math.isclose(runner.DIVERGENCE_DB, 1.0)


def test_a_record_kept_with_other_settings_is_labelled_in_the_record_and_the_tables(tmp_path, monkeypatch, tiny_data_root):
    monkeypatch.setattr(runner, "run_one", lambda request, root: pytest.fail("a kept run ran"))
    plenoxels = RunRequest("plenoxels", "synthetic-bed", "smoke", 0)
    changed = _ok_record(plenoxels, ssim=0.5, capacity="default")
    changed["overrides"]["pipeline.model.weight_window"] = 99
    records.write_record(plenoxels.record_path(tmp_path), changed)
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["plenoxels"], notebooks=False, keep_stale=True))
    kept = records.read_record(plenoxels.record_path(tmp_path))
    assert kept["kept_stale"] == "settings pipeline.model.weight_window: 99 -> 2"
    (frame, _), = report.results_frames([kept]).values()
    assert frame.loc[0, "Note"] == "kept with other settings than the plan's on 1 of 1 seed(s) (--keep-stale): settings pipeline.model.weight_window: 99 -> 2"
    # Once the plan runs it as it ran (here: the record brought in line), the label goes.
    kept["overrides"]["pipeline.model.weight_window"] = 2
    records.write_record(plenoxels.record_path(tmp_path), kept)
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["plenoxels"], notebooks=False, keep_stale=True))
    assert "kept_stale" not in records.read_record(plenoxels.record_path(tmp_path))


def test_a_record_whose_data_changed_since_is_run_again(tmp_path, monkeypatch, tiny_data_root):
    import numpy as np
    from PIL import Image

    from akdqff_bench.datasets import resolve_scene

    calls = []
    monkeypatch.setattr(runner, "run_one", lambda request, root: calls.append(request.scene))
    nerf = RunRequest("nerf", "synthetic-bed", "smoke", 0)
    scene = resolve_scene("synthetic-bed", "quick")
    fingerprint = scene.fingerprint()
    assert fingerprint["split"]["test"] == ["test/r_0.png", "test/r_1.png"] and len(fingerprint["split"]["train"]) == 6
    assert scene.fingerprint() == fingerprint  # the same data, the same hash
    records.write_record(nerf.record_path(tmp_path), _ok_record(nerf, data_fingerprint=fingerprint))
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], notebooks=False))
    assert calls == []
    image = tiny_data_root / "synthetic-bed" / "quick" / "test" / "r_1.png"
    pixels = np.asarray(Image.open(image)).copy()
    pixels[0, 0, :3] = 255 - pixels[0, 0, :3]
    Image.fromarray(pixels).save(image)
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], notebooks=False))
    assert calls == ["synthetic-bed"]


def test_a_transforms_file_list_that_changes_the_split_changes_the_fingerprint(tiny_data_root):
    from akdqff_bench.datasets import resolve_scene

    before = resolve_scene("synthetic-bed", "quick").fingerprint()
    transforms = tiny_data_root / "synthetic-bed" / "quick" / "transforms_train.json"
    data = json.loads(transforms.read_text())
    data["frames"] = data["frames"][:-1]
    transforms.write_text(json.dumps(data))
    after = resolve_scene("synthetic-bed", "quick").fingerprint()
    assert len(after["split"]["train"]) == len(before["split"]["train"]) - 1 and after["sha256"] != before["sha256"]


@pytest.mark.parametrize("shift", ["last bit", 1e-4])
def test_the_fingerprint_is_the_files_not_the_parsers_arithmetic(tiny_data_root, monkeypatch, shift):
    """Another CPU model rounds the dataparser's pose arithmetic otherwise in the last bit: the
    fingerprint hashes the files the poses are read from, so that changes nothing; the files do."""
    import torch
    from nerfstudio.data.dataparsers.base_dataparser import DataParser

    from akdqff_bench.datasets import resolve_scene

    before = resolve_scene("synthetic-bed", "quick").fingerprint()
    parsed = DataParser.get_dataparser_outputs

    def other_cpu(self, split="train", **kwargs):
        outputs = parsed(self, split, **kwargs)
        poses = outputs.cameras.camera_to_worlds
        outputs.cameras.camera_to_worlds = torch.nextafter(poses, poses + 1) if shift == "last bit" else poses + shift
        return outputs

    monkeypatch.setattr(DataParser, "get_dataparser_outputs", other_cpu)
    assert resolve_scene("synthetic-bed", "quick").fingerprint() == before
    transforms = tiny_data_root / "synthetic-bed" / "quick" / "transforms_test.json"
    data = json.loads(transforms.read_text())
    data["frames"][0]["transform_matrix"][0][3] += 1e-6
    transforms.write_text(json.dumps(data))
    after = resolve_scene("synthetic-bed", "quick").fingerprint()
    assert after["split"] == before["split"] and after["sha256"] != before["sha256"]


def test_rgba_ground_truth_is_composited_on_the_models_background_not_stripped_of_alpha():
    import torch

    from bench_base.views import composited_ground_truth, evaluation_background

    image = torch.tensor([[[0.2, 0.4, 0.6, 1.0], [0.9, 0.9, 0.9, 0.0], [1.0, 0.0, 0.0, 0.5]]])
    black = composited_ground_truth(image, evaluation_background(type("M", (), {"background_color": "black"})()))
    assert torch.allclose(black, torch.tensor([[[0.2, 0.4, 0.6], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]]))
    white = composited_ground_truth(image, evaluation_background(type("M", (), {"background_color": "white"})()))
    assert torch.allclose(white[0, 1], torch.ones(3)) and torch.allclose(white[0, 2], torch.tensor([1.0, 0.5, 0.5]))
    # nerfstudio evaluates a "random" background on black; a model that names none, too.
    assert torch.equal(evaluation_background(type("M", (), {"background_color": "random"})()), torch.zeros(3))
    assert torch.equal(evaluation_background(object()), torch.zeros(3))
    assert torch.equal(composited_ground_truth(image[..., :3], torch.ones(3)), image[..., :3])  # RGB stays as it is


def test_a_run_on_a_slower_machine_than_its_other_seeds_says_so_on_its_console_line(tmp_path):
    """The grid's line for a finished run gives its CPU seconds per iteration against its other
    seeds' in the same results, and flags a ratio that means another kind of machine (measured:
    nerfacto on synthetic-bed took 0.70 CPU-s per iteration on one "AMD EPYC", 0.38-0.46 on another)."""
    from akdqff_bench.executors import cost_against_other_seeds
    from akdqff_bench.records import write_record

    base = {"status": "ok", "method": "nerfacto", "dataset": "synthetic-bed", "scene": "bed", "capacity": "default", "profile": "quick"}
    for seed, cost in enumerate((0.379, 0.403, 0.456)):
        write_record(tmp_path / "quick" / "runs" / f"nerfacto__synthetic-bed__seed{seed}.json",
                     {**base, "run_id": f"nerfacto__synthetic-bed__seed{seed}", "seed": seed, "cpu_s_per_iter": cost})
    # Another capacity and another method are not its seeds.
    write_record(tmp_path / "quick" / "runs" / "nerfacto__synthetic-bed__table-2-13__seed0.json",
                 {**base, "run_id": "nerfacto__synthetic-bed__table-2-13__seed0", "capacity": "table 2^13", "cpu_s_per_iter": 5.0})
    write_record(tmp_path / "quick" / "runs" / "tensorf__synthetic-bed__seed0.json",
                 {**base, "method": "tensorf", "run_id": "tensorf__synthetic-bed__seed0", "cpu_s_per_iter": 0.01})

    slow = {**base, "run_id": "nerfacto__synthetic-bed__seed3", "seed": 3, "cpu_s_per_iter": 0.702}
    text = cost_against_other_seeds(slow, tmp_path, "quick")
    assert text.startswith(", 1.74x the CPU-s per iteration of its 3 other seeds") and "another machine's speed?" in text
    alike = {**base, "run_id": "nerfacto__synthetic-bed__seed0", "seed": 0, "cpu_s_per_iter": 0.379}  # itself is not its own other seed
    text = cost_against_other_seeds(alike, tmp_path, "quick")
    assert text.startswith(", 0.88x the CPU-s per iteration of its 2 other seeds") and "another machine" not in text
    assert cost_against_other_seeds({**slow, "method": "plenoxels"}, tmp_path, "quick") == ""  # nothing to compare with
    assert cost_against_other_seeds({**slow, "status": "failed"}, tmp_path, "quick") == ""
