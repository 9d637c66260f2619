"""Records and executed notebooks are committed: they name paths relative to the repository, never
the absolute folders of the machine that ran them (paths outside the repository stay absolute)."""

from __future__ import annotations

import nbformat
import pytest

from akdqff_bench import records
from akdqff_bench import notebooks, paths
from akdqff_bench.request import RunRequest
from akdqff_bench.runner import run_one

pytestmark = pytest.mark.filterwarnings("ignore")


def test_portable_text_takes_the_repository_root_out(monkeypatch, tmp_path):
    root = tmp_path / "checkout"
    monkeypatch.setattr(paths, "REPO_ROOT", root)
    text = f"{root}/data/x: missing; link file://{root}/.venv/a.py#3; cwd {root}; others {root}2/y and /tmp/z"
    assert records.portable_text(text) == f"data/x: missing; link .venv/a.py#3; cwd .; others {root}2/y and /tmp/z"
    assert records.portable_path(root / "results") == "results"
    assert records.portable_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


def test_skip_message_names_the_scene_folder_relative_to_the_repository(monkeypatch, tmp_path):
    # A checkout whose data/ holds no Tanks & Temples scene (as the committed quick results were made).
    checkout = tmp_path / "checkout"
    (checkout / "data").mkdir(parents=True)
    monkeypatch.setattr(paths, "REPO_ROOT", checkout)
    monkeypatch.setenv("AKDQFF_BENCH_DATA", str(checkout / "data"))
    record = run_one(RunRequest("nerf", "tanks-temples/truck", "smoke", 0), tmp_path / "results").record
    assert record["status"] == "skipped"
    assert "data/tanks-temples/truck" in record["message"] and str(checkout) not in record["message"]


def test_executed_notebook_names_no_absolute_repository_path(tmp_path):
    source = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    parameters = nbformat.v4.new_code_cell('results_root = "results"')
    parameters.metadata["tags"] = ["parameters"]
    # What a run prints: its results folder, a library warning naming its file (the kernel runs in
    # the repository root), an absolute path of this checkout.
    source.cells = [parameters, nbformat.v4.new_code_cell(
        "import os, warnings\n"
        "print('results at', os.path.abspath(results_root))\n"
        "warnings.warn_explicit('from a library', UserWarning, os.path.abspath('akdqff_bench/cli.py'), 1)"
    )]
    nbformat.write(source, tmp_path / "source.ipynb")
    target = tmp_path / "out" / "run.ipynb"
    notebooks.execute_notebook(tmp_path / "source.ipynb", target, {"results_root": str(records.REPO_ROOT / "results")})
    executed = nbformat.read(target, as_version=4)
    assert executed.metadata["papermill"]["parameters"]["results_root"] == "results"
    outputs = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "results at results" in outputs and "akdqff_bench/cli.py:1: UserWarning" in outputs
    assert str(records.REPO_ROOT) not in target.read_text(encoding="utf-8")
