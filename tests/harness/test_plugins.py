"""Methods the harness has never heard of: a plugin installed through entry points alone, with a
bench spec of its own; nerfstudio's own methods by name; a method the device cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_PLUGIN = REPO / "tests" / "fixtures" / "tiny_plugin"

pytestmark = pytest.mark.filterwarnings("ignore")


def _bench(*args, env=None, cwd=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "akdqff_bench.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd or REPO)


@pytest.mark.slow
def test_a_plugin_with_its_own_bench_spec_runs_through_the_grid_and_the_comparison(tmp_path, tiny_data_root):
    """Installed by its entry points only (a dist-info folder on the path, as pip leaves one); no
    edit of the harness: the grid trains it with its spec's settings and capacity point, the
    comparison and its HTML page name it by its spec's label."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TINY_PLUGIN), os.environ.get("PYTHONPATH", "")]),
           "AKDQFF_BENCH_DATA": str(tiny_data_root), "AKDQFF_BENCH_NO_DOWNLOAD": "1"}
    results = tmp_path / "results"
    done = _bench("grid", "--profile", "smoke", "--methods", "tiny-method", "--study", "--results", str(results), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = results / "smoke" / "runs"
    default = json.loads((runs / "tiny-method__synthetic-bed__seed0.json").read_text())
    assert default["status"] == "ok" and default["overrides"] == {"pipeline.model.hidden": 16} and default["method_at_defaults"] is False
    point = json.loads((runs / "tiny-method__synthetic-bed__hidden-4__seed0.json").read_text())
    assert point["status"] == "ok" and point["overrides"] == {"pipeline.model.hidden": 4}
    html = (results / "smoke" / "compare.html").read_text(encoding="utf-8")
    assert "TinyMethod" in html and "hidden 4" in html
    assert (results / "smoke" / "notebooks" / "tiny-method__synthetic-bed__seed0.ipynb").is_file()


@pytest.mark.slow
def test_nerfstudio_s_own_methods_run_by_name_at_their_defaults(tmp_path, tiny_data_root, no_lpips_weights):
    """vanilla-nerf, pure torch, with no bench spec: the profile's budget, data and rays; its own defaults
    otherwise, offline (its LPIPS is built only where the weights are), and the tables say so."""
    from akdqff_bench import grid, report
    from akdqff_bench.records import load_records

    assert grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["vanilla-nerf"], notebooks=False)) == 0
    (record,) = load_records(tmp_path, "smoke")
    assert record["status"] == "ok" and record["method_at_defaults"] is True and record["overrides"] == {}
    assert record["iterations"] == 8 and record["rays_per_batch"] == 64 and record["model_size_bytes"] > 0
    assert "vanilla-nerf" in report.at_defaults_note([record])


def test_a_method_the_device_cannot_run_is_refused_in_one_line(tmp_path):
    done = _bench("grid", "--profile", "smoke", "--methods", "splatfacto", "--results", str(tmp_path), timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "akdqff-bench: error: splatfacto cannot run on cpu: its rasteriser is gsplat's CUDA kernel, which has no CPU path "
        "(it runs on cuda); nothing was run"]
    assert not (tmp_path / "smoke" / "runs").exists() or not list((tmp_path / "smoke" / "runs").iterdir())


def test_the_cli_prints_nothing_the_user_cannot_act_on(tmp_path):
    done = _bench("table", "--profile", "smoke", "--results", str(tmp_path), timeout=300)
    assert done.returncode == 0 and done.stderr == ""
