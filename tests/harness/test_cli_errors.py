"""A user's mistake on the command line gets its message alone (stderr) and exit status 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pathlib import Path

from akdqff_bench import cli
from akdqff_bench import comparison, grid, sweeps
from akdqff_bench.methods import bench_spec
from akdqff_bench.profiles import get_profile


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (("run", "--method", "nerf-xl", "--profile", "smoke"), "unknown method(s) ['nerf-xl']; known methods: akdqff"),
        (("grid", "--methods", "nerf-xl", "--profile", "smoke", "--no-notebooks"), "unknown method(s) ['nerf-xl']"),
        (("run", "--method", "nerf", "--profile", "fast"), "unknown profile 'fast'"),
        (("grid", "--profile", "fast", "--no-notebooks"), "unknown profile 'fast'"),
        (("run", "--method", "nerf", "--scene", "bed-xl", "--profile", "smoke"), "unknown scene 'bed-xl'; known scenes:"),
        (("run", "--method", "nerf", "--scene", "blender:no/such/folder", "--profile", "smoke"), "scene folder does not exist"),
        (("run", "--method", "nerf", "--scene", "tanks-temples/truck", "--profile", "smoke"), "Tanks and Temples scene 'truck' is not there"),
        (("sweep", "--method", "nerf-xl", "--profile", "smoke"), "unknown method(s) ['nerf-xl']; known methods: akdqff"),
        (("sweep", "--method", "vanilla-nerf", "--profile", "smoke"), "vanilla-nerf has no sweep 'quick' (its bench spec defines none)"),
        (("sweep", "--method", "akdqff", "--sweep", "widths", "--profile", "smoke"), "akdqff has no sweep 'widths'; its sweeps: quick, lambda"),
        (("grid", "--methods", "splatfacto", "--profile", "smoke", "--no-notebooks"), "splatfacto cannot run on cpu: its rasteriser is gsplat's CUDA kernel"),
        (("run", "--method", "instant-ngp", "--profile", "smoke"), "instant-ngp cannot run on cpu"),
        (("run", "--method", "nerf", "--seed", "-1", "--profile", "smoke"), "seed must be an integer in [0, 2^32), not -1"),
        (("sweep", "--method", "nerf", "--profile", "fast"), "unknown profile 'fast'"),
        (("run", "--method", "nerf", "--capacity", "width 999", "--profile", "smoke"),
         "unknown capacity 'width 999' for nerf in the smoke profile; known: 'default', 'width 16'"),
        (("grid", "--study", "--profile", "full", "--no-notebooks"), "the full profile defines no study"),
    ],
)
def test_mistake_gets_the_message_alone_and_status_2(argv, message, capsys, tmp_path, tiny_data_root):
    status, err = run_cli(capsys, *argv, "--results", str(tmp_path / "results"))
    assert status == 2
    assert err.startswith("akdqff-bench: error: ") and message in err


@pytest.mark.parametrize("command", [("grid", "--methods", "depth-nerfacto", "--no-notebooks"), ("run", "--method", "depth-nerfacto")])
def test_a_method_that_would_download_is_refused_before_training(command, capsys, monkeypatch, tmp_path, tiny_data_root):
    """depth-nerfacto fetches ZoeDepth through torch.hub when it starts, whatever AKDQFF_BENCH_NO_DOWNLOAD
    says: with an empty cache it is refused like a CUDA-only method on a CPU, and with the files in
    the cache it is not (no run is started for that half: the check alone)."""
    from akdqff_bench.downloads import DOWNLOADS
    from akdqff_bench.methods import check_runnable

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    status, err = run_cli(capsys, *command, "--profile", "smoke", "--results", str(tmp_path / "results"))
    assert status == 2 and "depth-nerfacto would download while it trains" in err and "isl-org/ZoeDepth" in err
    assert not (tmp_path / "results" / "smoke" / "runs").exists() or not any((tmp_path / "results" / "smoke" / "runs").iterdir())
    (zoe,) = DOWNLOADS
    for path in zoe.files():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    check_runnable(["depth-nerfacto", "nerfacto"], "cpu")


def test_missing_data_is_reported_again_on_the_next_run(capsys, tmp_path, tiny_data_root):
    argv = ("run", "--method", "nerf", "--scene", "tanks-temples/truck", "--profile", "smoke", "--results", str(tmp_path))
    assert run_cli(capsys, *argv)[0] == 2
    status, err = run_cli(capsys, *argv)  # the skipped record is no reason to say "already finished"
    assert status == 2 and "Tanks and Temples scene 'truck' is not there" in err


def test_malformed_data_gets_the_file_named(capsys, tmp_path, tiny_data_root):
    scene = tiny_data_root / "synthetic-bed" / "quick"
    (scene / "transforms_test.json").write_text(json.dumps({"frames": []}), encoding="utf-8")  # no camera_angle_x
    status, err = run_cli(capsys, "run", "--method", "nerf", "--scene", f"blender:{scene}", "--profile", "smoke",
                          "--results", str(tmp_path / "results"))
    assert status == 2
    assert "transforms_test.json" in err


def test_a_bug_still_shows_its_traceback(monkeypatch, tmp_path):
    """Only user mistakes are shortened: anything else must keep the traceback that finds the bug."""

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(comparison, "print_table", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["table", "--profile", "smoke", "--results", str(tmp_path)])


@pytest.mark.parametrize("command", [("grid", "--no-notebooks"), ("run", "--method", "nerf")])
def test_an_unwritable_results_folder_is_a_message_not_a_traceback(capsys, tmp_path, tiny_data_root, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("results cannot go under a file")
    for results in (blocker / "results", blocker):  # under a file, and a file itself
        status, err = run_cli(capsys, *command, "--profile", "smoke", "--results", str(results))
        assert status == 2 and err.startswith("akdqff-bench: error: cannot write results under") and len(err.strip().splitlines()) == 1


def test_a_sweep_runs_on_a_scene_given_by_path(tmp_path, tiny_scene, no_lpips_weights):
    scene = f"blender:{tiny_scene}"
    out = sweeps.run_sweep("block-nerf", "smoke", tmp_path / "results", scene=scene)
    assert out.name.startswith("block-nerf-smoke-blender-tiny-") and out.suffix == ".csv"
    requests = sweeps.sweep_requests("block-nerf", bench_spec("block-nerf").sweeps["quick"].candidates, get_profile("smoke"), scene,
                                     out.with_suffix(""))
    records = [json.loads(Path(r.record_file).read_text()) for r in requests]
    # The third candidate (8 blocks) cannot place a block per camera of the 6-view scene: it is
    # recorded as failed and the sweep still ranks the other two.
    assert [r["status"] for r in records] == ["ok", "ok", "failed"]
    assert "8 blocks" in records[2]["message"]
    assert {r["scene_settings"]["layout"] for r in records[:2]} == {"blender"}
    table = pd.read_csv(out)
    assert list(table["status"]) == ["ok", "ok", "failed"] and table["psnr"].iloc[:2].notna().all()
    # The training figure beside the table: the candidates that finished, each with its renders over
    # training (one per curve point) and the ground truth.
    assert out.with_suffix(".png").is_file()
    runs = [(c.name, r, Path(q.record_file).with_suffix("")) for c, r, q in zip(bench_spec("block-nerf").sweeps["quick"].candidates, records, requests)]
    fig = sweeps.training_figure(runs, "title")
    psnr_axes, *render_axes = fig.axes
    assert [line.get_label() for line in psnr_axes.get_lines()] == [runs[0][0], runs[1][0]]
    assert len(render_axes) == 2 * (sweeps.RENDER_COLUMNS + 1)
    shown = [[ax.get_title() for ax in render_axes[row * 6:(row + 1) * 6] if ax.images] for row in range(2)]
    assert shown == [["iter 4", "iter 8", "ground truth"]] * 2


def test_a_sweep_in_part_trains_only_the_candidates_asked_for(capsys, tmp_path, tiny_scene, no_lpips_weights):
    scene = f"blender:{tiny_scene}"
    out = sweeps.run_sweep("block-nerf", "smoke", tmp_path / "results", scene=scene, candidates=[1])
    requests = sweeps.sweep_requests("block-nerf", bench_spec("block-nerf").sweeps["quick"].candidates, get_profile("smoke"), scene,
                                     out.with_suffix(""))
    assert [p.name for p in out.with_suffix("").glob("candidate*.json")] == [f"candidate-{sweeps.settings_key(requests[1])}.json"]
    table = pd.read_csv(out)
    assert dict(zip(table["candidate"], table["status"])) == {1: "ok", 0: "not run", 2: "not run"}
    assert table["candidate"].iloc[0] == 1  # ranked first: the only PSNR
    status, err = run_cli(capsys, "sweep", "--method", "block-nerf", "--profile", "smoke", "--scene", scene,
                          "--results", str(tmp_path / "results"), "--candidates", "3")
    assert status == 2 and err.startswith("akdqff-bench: error: block-nerf's quick sweep has candidates 0-2; asked for [3]")


@pytest.mark.parametrize(
    "argv, message",
    [
        (("grid", "--scenes", "synthetic-bedd"), "unknown scene 'synthetic-bedd'; known scenes:"),
        (("grid", "--methods", "../escape"), "method name(s) ['../escape'] are not names"),
        (("grid", "--device", "cuda"), "cuda was asked for, but torch sees no CUDA device on this machine"),
        (("run", "--method", "nerf", "--device", "cuda"), "cuda was asked for, but torch sees no CUDA device on this machine"),
        (("run", "--method", "nerf", "--seed", "4294967296"), "seed must be an integer in [0, 2^32), not 4294967296"),
        # A path as a Linux shell passes bytes that are not UTF-8 (Python holds them as surrogate escapes).
        (("grid", "--scenes", "llff:/data/sc\udcffne"), "the scene name b'llff:/data/sc\\xffne' is not valid UTF-8; rename it"),
    ],
)
def test_bad_input_is_refused_before_any_record(argv, message, capsys, tmp_path, tiny_data_root):
    import torch

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    status, err = run_cli(capsys, *argv, "--profile", "smoke", *(["--no-notebooks"] if argv[0] == "grid" else []),
                          "--results", str(tmp_path / "results"))
    assert status == 2 and err.startswith("akdqff-bench: error: ") and message in err
    assert not list((tmp_path / "results").rglob("*.json"))


def test_an_llff_scene_of_one_image_is_a_message(capsys, tmp_path):
    from akdqff_bench.datasets.fixtures import make_llff_scene

    scene = make_llff_scene(tmp_path / "one", count=1)
    status, err = run_cli(capsys, "run", "--method", "nerf", "--profile", "smoke", "--scene", f"llff:{scene}", "--results", str(tmp_path / "r"))
    assert status == 2 and "holds the pose of 1 image; a scene needs at least two" in err


def test_an_image_whose_name_is_not_utf8_is_named_before_training(tmp_path):
    import os

    from akdqff_bench.datasets import DatasetError, resolve_scene
    from akdqff_bench.datasets.fixtures import make_llff_scene

    scene = make_llff_scene(tmp_path / "scene", count=3)
    first = sorted((scene / "images").iterdir())[0]
    os.rename(os.fsencode(first), os.fsencode(first.parent) + b"/IMG_\xff.png")
    with pytest.raises(DatasetError, match=r"the image file name b'images/IMG_\\xff.png' is not valid UTF-8"):
        resolve_scene(f"llff:{scene}", "full").fingerprint()


def test_sweep_records_are_keyed_by_their_settings_not_their_place_in_the_list(tmp_path, capsys):
    from bench_base.spec import Candidate

    from akdqff_bench import records

    profile, sweep_dir = get_profile("smoke"), tmp_path / "sweeps" / "nerf-smoke"
    narrow, wide = Candidate("narrow", {"pipeline.model.hidden_dim": 16}), Candidate("wide", {"pipeline.model.hidden_dim": 64})
    trained = []

    def train(request, root):
        trained.append(dict(request.extra_overrides))
        record = {"status": "ok", "overrides": json.loads(json.dumps(request.overrides())), "rays_per_batch": profile.rays_per_batch,
                  "train_budget_seconds": None, "max_iterations": profile.max_iterations, "budget_clock": None, "psnr": 1.0}
        records.write_record(Path(request.record_file), record)
        return record

    first = sweeps.sweep_requests("nerf", [narrow, wide], profile, "synthetic-bed", sweep_dir)
    sweeps.resume_each(first, tmp_path, train=train)
    assert len(trained) == 2
    # The list reordered: each candidate finds its own record, nothing trains again.
    swapped = sweeps.sweep_requests("nerf", [wide, narrow], profile, "synthetic-bed", sweep_dir)
    assert [r.record_file for r in swapped] == [first[1].record_file, first[0].record_file]
    sweeps.resume_each(swapped, tmp_path, train=train)
    assert len(trained) == 2
    # A record under the name sweeps gave before (candidate<index>.json) stays where it is when its
    # settings are the candidate's; one made with other settings is not taken for it.
    legacy = sweep_dir / "candidate0.json"
    Path(first[0].record_file).rename(legacy)
    assert sweeps.sweep_requests("nerf", [narrow], profile, "synthetic-bed", sweep_dir)[0].record_file == str(legacy)
    (again,) = sweeps.sweep_requests("nerf", [wide], profile, "synthetic-bed", sweep_dir)
    assert again.record_file == first[1].record_file
    records.write_record(Path(again.record_file), {**records.read_record(Path(again.record_file)), "overrides": {"pipeline.model.hidden_dim": 16}})
    sweeps.resume_each([again], tmp_path, train=train)
    assert trained[-1] == {"pipeline.model.hidden_dim": 64} and "ran with other settings" in capsys.readouterr().out

