"""Records, metrics.csv, and the grid's resume logic (nothing finished is ever redone)."""

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from akdqff_bench import records
from akdqff_bench import grid
from akdqff_bench.records import METRIC_COLUMNS


def _record(method, scene="synthetic-bed", status="ok", **extra):
    base = {"method": method, "dataset": scene.split("/")[0], "scene": scene.split("/")[-1] if "/" in scene else "bed",
            "profile": "smoke", "seed": 0, "status": status, "psnr": 20.0, "ssim": 0.8, "lpips": float("nan"),
            "model_size_bytes": 1000, "peak_memory_bytes": 10, "s_per_iter": 0.1}
    base.update(extra)
    return base


def test_record_is_written_atomically_and_nan_becomes_null(tmp_path):
    path = records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0)
    records.write_record(path, _record("nerf"))
    assert json.loads(path.read_text())["lpips"] is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


@pytest.mark.parametrize("status, finished", [("ok", True), ("skipped", True), ("failed", False)])
def test_finished_means_ok_or_skipped(tmp_path, status, finished):
    path = tmp_path / "r.json"
    records.write_record(path, _record("nerf", status=status))
    assert records.is_finished(path) is finished


def test_half_written_or_missing_record_is_not_finished(tmp_path):
    (tmp_path / "r.json").write_text('{"status": "o')
    assert not records.is_finished(tmp_path / "r.json")
    assert not records.is_finished(tmp_path / "absent.json")


def test_aggregate_writes_the_metrics_columns(tmp_path):
    for method in ("nerf", "akdqff"):
        records.write_record(records.record_path(tmp_path, "smoke", method, "synthetic-bed", 0), _record(method, iterations=10))
    records.write_record(
        records.record_path(tmp_path, "smoke", "nerf", "tanks-temples/truck", 0),
        _record("nerf", "tanks-temples/truck", status="skipped", message="not there"),
    )
    frame = pd.read_csv(records.aggregate(tmp_path, "smoke"))
    assert list(frame.columns) == METRIC_COLUMNS
    assert len(frame) == 3
    assert set(frame["status"]) == {"ok", "skipped"}
    assert (tmp_path / "smoke" / "metrics.json").is_file()
    # counts stay integers beside a skipped row's empty cells
    lines = (tmp_path / "smoke" / "metrics.csv").read_text().splitlines()
    iterations = [line.split(",")[METRIC_COLUMNS.index("iterations")] for line in lines[1:]]
    assert sorted(iterations) == ["", "10", "10"]
    assert json.loads((tmp_path / "smoke" / "metrics.json").read_text())[0]["iterations"] in (10, None)


def test_commit_is_dirty_for_code_changes_not_for_results_or_notes(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "metrics.csv").write_text("a\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("a\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = records.git_commit(tmp_path)
    assert len(clean) == 40
    (tmp_path / "results" / "metrics.csv").write_text("b\n")  # the suite's own output
    assert records.git_commit(tmp_path) == clean
    (tmp_path / "docs" / "notes.md").write_text("b\n")  # read by people, not by a run
    assert records.git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert records.git_commit(tmp_path) == clean + "+dirty"


def test_grid_resumes_and_force_reruns(tmp_path, monkeypatch, tiny_data_root):
    calls = []

    def fake_run_one(request, results_root):
        calls.append((request.method, request.scene))
        records.write_record(request.record_path(results_root), _record(request.method, request.scene))

    import akdqff_bench.runner

    monkeypatch.setattr(akdqff_bench.runner, "run_one", fake_run_one)
    # A finished run, a failed one and an interrupted one (no record) before the grid starts.
    records.write_record(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0), _record("nerf"))
    records.write_record(records.record_path(tmp_path, "smoke", "akdqff", "synthetic-bed", 0), _record("akdqff", status="failed"))
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf", "akdqff", "plenoxels"], notebooks=False))
    assert calls == [("akdqff", "synthetic-bed"), ("plenoxels", "synthetic-bed")]

    calls.clear()
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf", "akdqff", "plenoxels"], notebooks=False))
    assert calls == []

    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], force=True, notebooks=False))
    assert calls == [("nerf", "synthetic-bed")]


def test_grid_refuses_an_unknown_method(tmp_path):
    from akdqff_bench.methods import UnknownMethod

    with pytest.raises(UnknownMethod, match="unknown method.*'nerf-xl'.*known methods: .*akdqff"):
        grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf-xl"], notebooks=False))


def test_unknown_profile_is_refused():
    from akdqff_bench.profiles import get_profile

    with pytest.raises(ValueError, match="unknown profile 'fast'.*quick"):
        get_profile("fast")


def test_the_record_type_declares_every_field_the_csv_and_the_report_read():
    from akdqff_bench import report
    from akdqff_bench.records import METRIC_COLUMNS, RECORD_FIELDS, RunRecord

    assert set(METRIC_COLUMNS) <= set(RECORD_FIELDS)
    assert {key for key, _, _ in report.RUN_SUMMARY} <= set(RECORD_FIELDS)
    # A record is built only from declared fields: a typo is an error, not a new key.
    with pytest.raises(KeyError, match="no field 'psnrr'"):
        RunRecord(method="nerf").update(psnrr=1.0)
    written = RunRecord(method="nerf", psnr=20.0).as_dict()
    assert list(written) == list(RECORD_FIELDS) and written["psnr"] == 20.0 and written["lpips"] is None


def test_the_committed_metrics_csv_is_rebuilt_byte_for_byte_from_the_committed_records(tmp_path):
    import shutil

    shutil.copytree(records.REPO_ROOT / "results" / "quick" / "runs", tmp_path / "quick" / "runs", ignore=shutil.ignore_patterns("*.bin", "*.png"))
    records.aggregate(tmp_path, "quick")
    for name in ("metrics.csv", "metrics.json"):
        assert (tmp_path / "quick" / name).read_bytes() == (records.REPO_ROOT / "results" / "quick" / name).read_bytes(), name


def _cut_short(path):
    """A record as a full disk or a hand edit leaves it: its JSON ends half way."""
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def test_a_record_cut_short_is_named_by_table_and_compare_not_dropped(tmp_path, capsys, monkeypatch):
    from akdqff_bench import cli, notebooks

    records.write_record(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0), _record("nerf"))
    broken = records.record_path(tmp_path, "smoke", "plenoxels", "synthetic-bed", 0)
    records.write_record(broken, _record("plenoxels"))
    _cut_short(broken)
    assert cli.main(["table", "--profile", "smoke", "--results", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "NeRF" in out  # the readable records still make the table
    assert err.startswith("akdqff-bench: error: 1 record file(s) cannot be read") and "plenoxels__synthetic-bed__seed0.json" in err
    assert "JSONDecodeError" in err and len(err.strip().splitlines()) == 1

    monkeypatch.setattr(notebooks, "execute_notebook", lambda source, target, parameters: None)
    monkeypatch.setattr(notebooks, "export_html", lambda notebook: notebook)
    assert cli.main(["compare", "--profile", "smoke", "--results", str(tmp_path)]) == 2
    assert "plenoxels__synthetic-bed__seed0.json" in capsys.readouterr().err


def test_the_grid_names_a_record_cut_short_and_runs_it_again(tmp_path, capsys, monkeypatch):
    import akdqff_bench.runner

    calls = []

    def fake_run_one(request, results_root):
        calls.append(request.method)
        records.write_record(request.record_path(results_root), _record(request.method))

    monkeypatch.setattr(akdqff_bench.runner, "run_one", fake_run_one)
    for method in ("nerf", "plenoxels"):
        records.write_record(records.record_path(tmp_path, "smoke", method, "synthetic-bed", 0), _record(method))
    _cut_short(records.record_path(tmp_path, "smoke", "plenoxels", "synthetic-bed", 0))
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf", "plenoxels"], notebooks=False))
    assert calls == ["plenoxels"]
    assert "== plenoxels__synthetic-bed__seed0: its record file cannot be read (JSONDecodeError" in capsys.readouterr().out
    assert records.read_record(records.record_path(tmp_path, "smoke", "plenoxels", "synthetic-bed", 0))["status"] == "ok"


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_compare_without_records_is_one_line_and_writes_nothing(tmp_path, capsys, folder):
    from akdqff_bench import cli

    results = tmp_path / "results"
    if folder == "empty":
        results.mkdir()
    assert cli.main(["compare", "--profile", "smoke", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("akdqff-bench: error: ") and "no run records of the smoke profile there" in err and len(err.strip().splitlines()) == 1
    assert not (results / "smoke").exists()


@pytest.mark.parametrize("finished", [True, False])
def test_a_notebook_left_by_a_killed_grid_is_settled_when_the_grid_resumes(tmp_path, monkeypatch, finished):
    """Killed after the run's record was complete: its notebook is kept under its name; killed
    before: the half notebook goes, and the run is run again."""
    import nbformat

    import akdqff_bench.runner
    from akdqff_bench.notebooks import run_notebook_path, running_path

    calls = []
    monkeypatch.setattr(akdqff_bench.runner, "run_one", lambda request, root: calls.append(request.method))
    if finished:
        records.write_record(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0), _record("nerf"))
    target = run_notebook_path(tmp_path, "smoke", "nerf__synthetic-bed__seed0")
    target.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), running_path(target))
    grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], scenes=["synthetic-bed"], notebooks=False))
    assert not running_path(target).exists()
    assert target.exists() == finished and calls == ([] if finished else ["nerf"])


def test_a_full_disk_after_the_runs_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    """The records made before the disk filled stand; metrics.csv cannot be written: one line, exit 2."""
    import errno

    import akdqff_bench.runner
    from akdqff_bench import cli

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    records.write_record(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0), _record("nerf"))  # finished before
    monkeypatch.setattr(akdqff_bench.runner, "run_one", lambda request, root: pytest.fail("a finished run ran"))
    monkeypatch.setattr(records, "write_atomically", full_disk)  # what aggregate() writes metrics.csv with
    status = cli.main(["grid", "--profile", "smoke", "--methods", "nerf", "--scenes", "synthetic-bed", "--no-notebooks",
                       "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "cannot write metrics.csv under" in err and "No space left on device" in err and "Traceback" not in err


def test_a_full_disk_while_the_page_is_written_is_one_line(tmp_path, capsys, monkeypatch):
    """The comparison notebook cannot be saved: one line, exit 2, no '!! the comparison notebook failed'."""
    import errno

    from akdqff_bench import cli, notebooks

    def full_disk(source, target, parameters):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    records.write_record(records.record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0), _record("nerf"))
    monkeypatch.setattr(notebooks, "execute_notebook", full_disk)
    status = cli.main(["compare", "--profile", "smoke", "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 2 and len(err.strip().splitlines()) == 1 and "!!" not in out
    assert "cannot write the comparison page under" in err and "No space left on device" in err


def test_a_notebook_cut_short_by_a_full_disk_reports_the_disk(tmp_path, monkeypatch):
    """papermill's last save failed half way: the error is the disk's, not the half notebook's
    JSON, and no hidden notebook is left."""
    import errno

    import papermill

    from akdqff_bench import notebooks

    def half_written(source, output, **kwargs):
        Path(output).write_text('{\n "cells": [\n  {\n   "cell_type": "m')
        raise OSError(errno.ENOSPC, "No space left on device", output)

    monkeypatch.setattr(papermill, "execute_notebook", half_written)
    target = tmp_path / "notebooks" / "run.ipynb"
    with pytest.raises(OSError) as raised:
        notebooks.execute_notebook(notebooks.COMPARE_NOTEBOOK, target, {"profile": "smoke"})
    assert raised.value.errno == errno.ENOSPC
    assert not notebooks.running_path(target).exists() and not target.exists()
