"""The study as an option of a profile (`grid --study`): its plan, capacity points and their run ids,
resuming, the quiet console with a log file per run, and the comparison against a reference study.
Training runs are smoke runs in-process (seconds); nothing here is a result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from akdqff_bench import cli, notebooks, report
from akdqff_bench import grid
from akdqff_bench.methods import bench_spec
from akdqff_bench.profiles import DEFAULT_CAPACITY, NoStudy, UnknownCapacity, get_profile
from akdqff_method.bench import QUICK as AKDQFF_QUICK
from baselines.block_nerf.bench import QUICK as BLOCK_NERF_QUICK
from baselines.nerf.bench import QUICK as NERF_QUICK

METHODS = ("nerf", "akdqff", "plenoxels", "block-nerf")
REFERENCES_ON_THE_CPU = ("tensorf", "nerfacto")
CAPACITY_SCENE = "synthetic-bed"
from akdqff_bench.records import REPO_ROOT, read_record, record_path, run_id, write_record

pytestmark = pytest.mark.filterwarnings("ignore")

LAMBDA = "pipeline.model.strategy.kernel_cost"


def test_run_ids_with_a_capacity():
    # The default point keeps the name every committed record has.
    assert run_id("nerf", "synthetic-bed", 0) == run_id("nerf", "synthetic-bed", 0, DEFAULT_CAPACITY) == "nerf__synthetic-bed__seed0"
    assert run_id("nerf", "synthetic-bed", 0, "width 128") == "nerf__synthetic-bed__width-128__seed0"
    assert run_id("plenoxels", "synthetic-bed", 0, "grid 256") == "plenoxels__synthetic-bed__grid-256__seed0"
    lam = run_id("akdqff", "synthetic-bed", 0, "λ 3e-7")
    assert lam == "akdqff__synthetic-bed__lambda-3e-7__seed0" and lam.isascii()
    assert record_path(Path("r"), "quick", "nerf", "tanks-temples/truck", 2, "width 32") == Path(
        "r/quick/runs/nerf__tanks-temples-truck__width-32__seed2.json")
    # Every capacity point of every profile gets a distinct, file-system-safe name.
    for profile in ("quick", "smoke"):
        for method in METHODS:
            names = [run_id(method, CAPACITY_SCENE, 0, label) for label in get_profile(profile).capacities(method)]
            assert len(set(names)) == len(names) and all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in names)


def test_records_of_the_default_capacity_keep_the_names_they_had_before_capacities():
    # Records written before capacities existed (and every default point since) must still be found.
    for method in METHODS:
        assert record_path(REPO_ROOT / "results", "quick", method, "synthetic-bed", 0).name == f"{method}__synthetic-bed__seed0.json"
        assert record_path(REPO_ROOT / "results", "quick", method, "synthetic-bed", 0, "default") == \
            record_path(REPO_ROOT / "results", "quick", method, "synthetic-bed", 0)


def _points(profile: str, method: str):
    return {p.label: dict(p.overrides) for p in bench_spec(method).capacity_points(profile)}


def test_quick_capacity_points_follow_the_quick_settings():
    quick = get_profile("quick")
    assert quick.study_seeds == (0, 1, 2) and quick.seeds == (0,)
    assert {m: len(quick.capacities(m)) for m in METHODS} == {m: 2 for m in METHODS}
    # AKDQFF: λ at 10x and 1/10 of whatever its quick λ is.
    points = _points("quick", "akdqff")
    assert sorted(p[LAMBDA] for p in points.values()) == pytest.approx([AKDQFF_QUICK[LAMBDA] / 10, AKDQFF_QUICK[LAMBDA] * 10])
    assert all(label.startswith("λ ") for label in points)
    # NeRF and Block-NeRF: half and twice the quick width, head scaled alike; samples and lr kept.
    for method, settings in (("nerf", NERF_QUICK), ("block-nerf", BLOCK_NERF_QUICK)):
        width, head = settings["pipeline.model.base_mlp_layer_width"], settings["pipeline.model.head_mlp_layer_width"]
        assert list(quick.capacities(method)) == [f"width {width // 2}", f"width {width * 2}"]
        wide = quick.overrides_for(method, "synthetic", f"width {width * 2}")
        assert wide["pipeline.model.base_mlp_layer_width"] == 2 * width and wide["pipeline.model.head_mlp_layer_width"] == 2 * head
        assert {k: v for k, v in wide.items() if "width" not in k} == {k: v for k, v in settings.items() if "width" not in k}
    assert _points("quick", "plenoxels") == {
        "grid 96": {"pipeline.model.resolutions": (48, 96), "pipeline.model.upsample_steps": (300,)},
        "grid 256": {"pipeline.model.resolutions": (64, 128, 256), "pipeline.model.upsample_steps": (300, 600)},
    }
    assert quick.overrides_for("plenoxels", "synthetic")["pipeline.model.resolutions"] == (64, 128)  # the default in between
    with pytest.raises(UnknownCapacity, match=r"unknown capacity 'width 7' for nerf in the quick profile; known: 'default', 'width 32'"):
        quick.overrides_for("nerf", "synthetic", "width 7")


def _ranked_first(sweep, csv_name: str) -> dict:
    """The overrides of the candidate a committed sweep's CSV ranks first."""
    import pandas as pd

    ranked = pd.read_csv(REPO_ROOT / "results" / "sweeps" / csv_name)
    return sweep.candidates[int(ranked["candidate"].iloc[0])].overrides


def test_the_real_capture_settings_are_the_ethiopian_head_sweep_winners():
    """Each method's real-capture settings are the best candidate of its committed sweep on
    ethiopian-head, its synthetic settings the best on synthetic-bed: the spec names the winner,
    the CSV ranks it first."""
    quick = get_profile("quick")
    for method in METHODS + REFERENCES_ON_THE_CPU:
        sweep = bench_spec(method).sweeps["quick"]
        for scene, kind in (("synthetic-bed", "synthetic"), ("ethiopian-head", "real")):
            winner = _ranked_first(sweep, f"{method}-quick.csv" if kind == "synthetic" else f"{method}-quick-{scene}.csv")
            settings = quick.overrides_for(method, kind)
            assert all(settings[key] == value for key, value in winner.items()), (method, kind)
    assert quick.overrides_for("nerf", "real") == quick.overrides_for("nerf", "synthetic")


def test_akdqffs_sampler_and_growth_are_the_winners_of_their_sweeps_on_both_scenes():
    """The growth sweep ran on top of the sampling sweep's winner; its winner on both study scenes
    (ranked first in both CSVs) is in AKDQFF's quick settings for every kind of scene."""
    quick = get_profile("quick")
    growth = bench_spec("akdqff").sweeps["growth"]
    for csv in ("akdqff-quick-growth.csv", "akdqff-quick-growth-ethiopian-head.csv"):
        winner = _ranked_first(growth, csv)
        for kind in ("synthetic", "real", "forward-facing"):
            settings = quick.overrides_for("akdqff", kind)
            assert all(settings[key] == value for key, value in winner.items()), (csv, kind)


def test_the_committed_study_ran_with_the_settings_the_specs_give_now():
    """Every committed quick record's overrides are what its method's spec gives for its scene's
    kind and capacity today, and every planned study run of the scenes in data/ is committed
    (the study was run in parts; results/quick/CHANGES.md says what each ran)."""
    from akdqff_bench.datasets import scene_kind
    from akdqff_bench.profiles import STUDY_SCENES
    from akdqff_bench.records import load_records

    records = {r["run_id"]: r for r in load_records(REPO_ROOT / "results", "quick") if r.get("status") == "ok"}
    quick = get_profile("quick")
    for record in records.values():
        scene = record["dataset"]
        expected = quick.overrides_for(record["method"], scene_kind(scene), record.get("capacity"))
        assert json.loads(json.dumps(expected)) == record["overrides"], record["run_id"]
    planned = {run.run_id for run in grid.plan_runs(quick, list(quick.methods), list(STUDY_SCENES), study=True)}
    assert set(records) <= planned, sorted(set(records) - planned)
    assert planned <= set(records), sorted(planned - set(records))


@pytest.mark.parametrize("profile_name", ["quick", "smoke"])
def test_the_study_plan(profile_name):
    profile = get_profile(profile_name)
    methods, scenes = list(profile.methods), list(profile.scenes)
    capacity_points = sum(len(profile.capacities(m)) for m in methods)
    study = grid.plan_runs(profile, methods, scenes, study=True)
    assert len(study) == len(scenes) * len(methods) * len(profile.study_seeds) + capacity_points
    assert len(set(run.run_id for run in study)) == len(study)
    capacity_runs = [run for run in study if run.capacity]
    assert len(capacity_runs) == capacity_points and {(run.scene, run.seed) for run in capacity_runs} == {(CAPACITY_SCENE, 0)}
    # Without --study: the profile's seeds, no capacity points (the grid as it was).
    assert [(r.method, r.scene, r.seed, r.capacity) for r in grid.plan_runs(profile, methods, scenes)] == [(m, s, 0, None) for s in scenes for m in methods]
    # Capacity points are synthetic-bed's: a study of other scenes has none.
    assert not [run for run in grid.plan_runs(profile, methods, ["ethiopian-head"], study=True) if run.capacity]


def test_a_profile_without_a_study_says_so():
    with pytest.raises(NoStudy, match="the full profile defines no study"):
        grid.plan_runs(get_profile("full"), ["nerf"], ["synthetic-bed"], study=True)


def test_the_study_grid_runs_every_point_once_and_resumes(tmp_path, tiny_data_root, no_lpips_weights, capsys):
    root = tmp_path / "results"
    methods = ["nerf", "plenoxels"]
    assert grid.run_grid("smoke", root, grid.GridOptions(methods=methods, scenes=["synthetic-bed"], notebooks=False, study=True)) == 0
    out = capsys.readouterr().out
    smoke = get_profile("smoke")
    expected = len(methods) * len(smoke.study_seeds) + sum(len(smoke.capacities(m)) for m in methods)
    assert f"smoke profile study: {expected} runs, 0 already done, {expected} to go" in out
    for method in methods:
        for seed in smoke.study_seeds:
            assert read_record(record_path(root, "smoke", method, "synthetic-bed", seed))["status"] == "ok"
        for label, overrides in _points("smoke", method).items():
            record = read_record(record_path(root, "smoke", method, "synthetic-bed", 0, label))
            assert record["status"] == "ok" and record["capacity"] == label and record["capacity_overrides"] == json.loads(json.dumps(overrides))
            assert record["run_id"] == run_id(method, "synthetic-bed", 0, label)
            # The capacity's settings are recorded with the others, so the settings table shows them.
            assert all(record["overrides"][key] == value for key, value in json.loads(json.dumps(overrides)).items())
    settings = report.settings_frame([read_record(p) for p in sorted((root / "smoke" / "runs").glob("*.json"))])
    nerf_16 = settings[(settings["Method"] == "NeRF") & (settings["Capacity"] == "width 16")]
    assert len(nerf_16) == 1 and "base_mlp_layer_width=16" in nerf_16.iloc[0]["Settings (overrides of the method's defaults)"]
    assert "nerf,synthetic-bed,bed,smoke" in (root / "smoke" / "metrics.csv").read_text() and ",width 16,ok," in (root / "smoke" / "metrics.csv").read_text()

    # Resume: nothing is run again, no record is rewritten.
    written = {p: p.stat().st_mtime_ns for p in (root / "smoke" / "runs").glob("*.json")}
    assert grid.run_grid("smoke", root, grid.GridOptions(methods=methods, scenes=["synthetic-bed"], notebooks=False, study=True)) == 0
    assert f"{expected} already done, 0 to go" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in written} == written


def test_a_grid_prints_one_line_per_run_and_logs_the_rest(tmp_path, tiny_data_root, no_lpips_weights, capfd):
    """Captured at the file descriptors: what a run's libraries write there goes to its log too.
    Through the command line, which prints the comparison's table after the grid's runs."""
    root = tmp_path / "results"
    assert cli.main(["grid", "--profile", "smoke", "--methods", "nerf", "plenoxels", "--scenes", "synthetic-bed", "--no-notebooks",
                     "--results", str(root)]) == 0
    out, err = capfd.readouterr()
    run_lines = [line for line in out.splitlines() if line.startswith("== [")]
    assert len(run_lines) == 2, out
    assert re.fullmatch(r"== \[1/2\] nerf on synthetic-bed \(seed 0\) \.\.\. ok, PSNR \d+\.\d\d dB, \d+ s; grid ETA about \d+ s", run_lines[0])
    assert run_lines[1].startswith("== [2/2] plenoxels on synthetic-bed (seed 0) ... ok, PSNR")
    # Nothing of the runs' own chatter on the console: no training progress, no nerfstudio, no warnings.
    for chatter in ("training (8 iterations)", "Saving config", "Caching all", "Warning"):
        assert chatter not in out + err
    log = root / "smoke" / "logs" / "nerf__synthetic-bed__seed0.log"
    text = log.read_text()
    assert "[nerf | synthetic-bed | smoke] training (8 iterations)" in text and "Caching all" in text and "done: PSNR" in text
    # The final table follows the run lines.
    assert "synthetic-bed:" in out and "NeRF" in out.split(run_lines[-1])[1]


def test_a_failed_run_names_its_log(tmp_path, tiny_data_root, monkeypatch, capsys):
    from akdqff_bench import runner

    def broken(request, results_root):
        print("the run's own last words")
        write_record(request.record_path(results_root),
                     {"method": request.method, "dataset": "synthetic-bed", "scene": "bed", "profile": request.profile.name, "seed": request.seed,
                      "status": "failed", "message": "RuntimeError: out of memory\nmore detail"})
        raise RuntimeError("out of memory")

    monkeypatch.setattr(runner, "run_one", broken)
    assert grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], scenes=["synthetic-bed"], notebooks=False)) == 1
    out = capsys.readouterr().out
    log = tmp_path / "smoke" / "logs" / "nerf__synthetic-bed__seed0.log"
    (line,) = [line for line in out.splitlines() if line.startswith("== [")]
    assert "nerf on synthetic-bed (seed 0) ... failed after" in line and "RuntimeError: out of memory;" in line and f"log: {log}" in line
    assert "the run's own last words" in log.read_text() and "last words" not in out


def _reference_record(method, seed, psnr):
    return {"run_id": f"{method}__synthetic-bed__seed{seed}", "method": method, "dataset": "synthetic-bed", "scene": "bed",
            "profile": "smoke", "seed": seed, "status": "ok", "device": "cpu:test", "psnr": psnr, "ssim": 0.8,
            "model_size_bytes": 1000, "s_per_iter": 0.1}


def test_your_numbers_are_flagged_outside_the_reference_prediction_interval(tmp_path, monkeypatch, capsys):
    """A fake reference of 3 seeds (24, 25, 26 dB; 95% prediction interval 20.0-30.0) and your run
    at 31 dB: flagged; the page gets the reference folder (the notebook is not executed here)."""
    reference, yours = tmp_path / "reference", tmp_path / "yours"
    for seed, psnr in enumerate((24.0, 25.0, 26.0)):
        write_record(record_path(reference, "smoke", "nerf", "synthetic-bed", seed), _reference_record("nerf", seed, psnr))
    write_record(record_path(yours, "smoke", "nerf", "synthetic-bed", 0), _reference_record("nerf", 0, 31.0))

    table = report.reproduction_comparison([read_record(record_path(yours, "smoke", "nerf", "synthetic-bed", 0))],
                                           [read_record(p) for p in sorted((reference / "smoke" / "runs").glob("*.json"))])
    psnr, ssim = table.set_index("quantity").loc["psnr"], table.set_index("quantity").loc["ssim"]
    assert psnr["reference_mean"] == 25.0 and psnr["difference"] == 6.0 and bool(psnr["outside_prediction_interval"])
    assert not bool(ssim["outside_prediction_interval"])  # the same SSIM on every seed: inside

    executed = {}
    monkeypatch.setattr(notebooks, "execute_notebook", lambda source, target, parameters: executed.update(parameters))
    monkeypatch.setattr(notebooks, "export_html", lambda notebook: notebook)
    assert cli.main(["compare", "--profile", "smoke", "--results", str(yours), "--reference", str(reference)]) == 0
    out = capsys.readouterr().out
    assert executed["reference_root"] == str(reference) and executed["results_root"] == str(yours)
    assert "1 of 4 compared values outside the reference's 95% prediction interval (nerf psnr on synthetic-bed). Details" in out


def test_a_missing_reference_is_a_message_before_anything_runs(tmp_path, tiny_data_root, monkeypatch, capsys):
    from akdqff_bench import runner

    monkeypatch.setattr(runner, "run_one", lambda *a, **k: pytest.fail("a run started"))
    status = cli.main(["grid", "--profile", "smoke", "--no-notebooks", "--results", str(tmp_path / "r"), "--reference", str(tmp_path / "none")])
    assert status == 2 and "no run records of the smoke profile there" in capsys.readouterr().err


def _executed_notebook(path: Path, seconds, evidence=None, evidence_seconds=None, curve_eval_seconds=None) -> None:
    """A notebook as papermill leaves it: its duration, its parameters, and (``evidence_seconds``)
    the duration of its method-evidence cell; ``curve_eval_seconds``: its run's record, with a
    learning curve of these evaluation times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if curve_eval_seconds is not None:
        record = path.parent.parent / "runs" / f"{path.stem}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"curve": [{"psnr": 20.0, "eval_seconds": s} for s in curve_eval_seconds]}), encoding="utf-8")
    cells = [] if evidence_seconds is None else [
        {"cell_type": "code", "source": ["figures = report.method_figures(result, evidence)"], "metadata": {"papermill": {"duration": evidence_seconds}}}]
    parameters = {} if evidence is None else {"evidence": evidence}
    path.write_text(json.dumps({"cells": cells, "metadata": {"papermill": {"duration": seconds, "parameters": parameters}}}), encoding="utf-8")


def Run(method, scene, seed, capacity=None):
    from akdqff_bench.request import RunRequest

    return RunRequest(method, scene, "quick", seed, capacity)


def test_the_grid_estimate_uses_the_durations_measured_for_the_same_runs(tmp_path):
    from akdqff_bench.executors import GridPlan

    notebooks = tmp_path / "reference" / "quick" / "notebooks"
    _executed_notebook(notebooks / "akdqff__ethiopian-head__seed0.ipynb", 900.0)
    _executed_notebook(notebooks / "akdqff__ethiopian-head__seed1.ipynb", 940.0)
    _executed_notebook(notebooks / "akdqff__ethiopian-head__seed2.ipynb", None)  # still running: no duration yet
    _executed_notebook(notebooks / "nerf__synthetic-bed__width-32__seed0.ipynb", 250.0)
    todo = [Run("akdqff", "ethiopian-head", 2), Run("nerf", "synthetic-bed", 0), Run("nerf", "synthetic-bed", 1, "width 32"),
            Run("nerf", "tanks-temples/truck", 0)]
    measured = grid.measured_run_seconds(todo, "quick", [tmp_path / "results", tmp_path / "reference", None])
    # Any seed of the same method, scene and capacity counts; a capacity point is not its default.
    assert measured == {"akdqff__ethiopian-head__seed2": 920.0, "nerf__synthetic-bed__width-32__seed1": 250.0}

    trains = {"ethiopian-head": True, "synthetic-bed": True, "tanks-temples/truck": False}
    plan = GridPlan("quick", tmp_path, todo, trains, True, first_estimate_seconds=310.0, estimates=measured)
    assert plan.expected_seconds(todo) == 920.0 + 310.0 + 250.0  # the absent scene ends at once
    # A machine that took twice the expected time for the first run: the rest is expected twice as long.
    assert plan.eta_seconds(todo[1:], [(todo[0], 1840.0)]) == pytest.approx(2 * (310.0 + 250.0))
    assert plan.eta_seconds(todo[1:], []) == 310.0 + 250.0


def test_the_grid_estimate_counts_the_evidence_the_notebooks_drew(tmp_path):
    """A short-evidence grid: notebooks that drew the short evidence count as measured; a study
    notebook (full evidence, no parameter: from before it existed) counts with its evidence cell
    scaled by the work of each level and its learning curve's evaluations by its points."""
    from akdqff_bench.profiles import get_profile
    from akdqff_method.analysis import EVIDENCE

    points = get_profile("quick").curve_points
    notebooks = tmp_path / "reference" / "quick" / "notebooks"
    _executed_notebook(notebooks / "akdqff__ethiopian-head__seed0.ipynb", 1000.0, evidence_seconds=700.0)
    _executed_notebook(notebooks / "akdqff__synthetic-bed__seed0.ipynb", 460.0, evidence_seconds=190.0)
    _executed_notebook(notebooks / "akdqff__synthetic-bed__seed1.ipynb", 300.0, evidence="short", evidence_seconds=30.0)
    _executed_notebook(notebooks / "nerf__ethiopian-head__seed0.ipynb", 330.0, evidence_seconds=0.1,
                       curve_eval_seconds=[10.0] * points)
    # Named short, but from before the level halved the curve: its curve is scaled all the same.
    _executed_notebook(notebooks / "plenoxels__ethiopian-head__seed0.ipynb", 400.0, evidence="short", evidence_seconds=0.1,
                       curve_eval_seconds=[10.0] * points)
    todo = [Run("akdqff", "ethiopian-head", 0), Run("akdqff", "synthetic-bed", 0), Run("nerf", "ethiopian-head", 0),
            Run("plenoxels", "ethiopian-head", 0)]
    short = grid.measured_run_seconds(todo, "quick", [tmp_path / "reference"], evidence="short")
    ratio = EVIDENCE["short"].work() / EVIDENCE["full"].work()
    assert 0 < ratio < 1
    assert short == {"akdqff__ethiopian-head__seed0": pytest.approx(300.0 + 700.0 * ratio),  # no record: no curve to scale
                     "akdqff__synthetic-bed__seed0": 300.0,  # the short notebook, not the full one scaled
                     # no evidence of its own; half its curve's evaluations (profiles.CURVE_STRIDE)
                     "nerf__ethiopian-head__seed0": pytest.approx(330.0 - 10.0 * points / 2),
                     "plenoxels__ethiopian-head__seed0": pytest.approx(400.0 - 10.0 * points / 2)}
    full = grid.measured_run_seconds(todo, "quick", [tmp_path / "reference"], evidence="full")
    assert full["akdqff__ethiopian-head__seed0"] == 1000.0 and full["akdqff__synthetic-bed__seed0"] == 460.0
