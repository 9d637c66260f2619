"""The comparison page a reader gets: the compare notebook executed over made-up records (in a
temporary folder; none of them is a result) and exported to HTML without code."""

import re

import numpy as np
import pytest
from PIL import Image

from akdqff_bench import notebooks
from akdqff_bench.records import write_record

PAPER_LIKE = {
    "nerf": dict(psnr=25.0, ssim=0.80, model_size_bytes=2_000_000, s_per_iter=0.60),
    "block-nerf": dict(psnr=26.0, ssim=0.84, model_size_bytes=1_200_000, s_per_iter=0.40),
    "plenoxels": dict(psnr=27.0, ssim=0.88, model_size_bytes=500_000, s_per_iter=0.20),
    "akdqff": dict(psnr=28.0, ssim=0.92, model_size_bytes=100_000, s_per_iter=0.10),
}
PROFILE = "smoke"


def _write_study(root, seeds, shift=0.0):
    """Two seeds of every method on synthetic-bed (with renders), Block-NeRF failed on one seed,
    a Tanks and Temples scene skipped with an absolute path in its message."""
    runs = root / PROFILE / "runs"
    for method, values in PAPER_LIKE.items():
        for seed in seeds:
            run_id = f"{method}__synthetic-bed__seed{seed}"
            factor = 1 + 0.01 * seed
            record = {"run_id": run_id, "method": method, "dataset": "synthetic-bed", "scene": "bed", "profile": PROFILE, "seed": seed,
                      "status": "ok", "device": "cpu:test", "rays_per_batch": 64, "train_budget_seconds": None, "max_iterations": 8,
                      "overrides": {"pipeline.model.width": 16}, "iterations": 8, "train_seconds": 8 * values["s_per_iter"],
                      "lpips": None, "render_fps": 1.0, "peak_memory_bytes": 10**9, "peak_memory_kind": "process_peak_rss",
                      "model_file": str(runs / run_id / "model.bin"),
                      "curve": [{"iteration": i, "train_seconds": i * values["s_per_iter"], "psnr": values["psnr"] - 4 + i} for i in range(1, 5)],
                      "per_image": [{"index": i, "psnr": values["psnr"]} for i in range(2)],
                      **{k: v * factor + (shift if k == "psnr" else 0) for k, v in values.items()}}
            write_record(runs / f"{run_id}.json", record)
            (runs / run_id / "renders").mkdir(parents=True, exist_ok=True)
            for view in range(2):
                image = np.full((8, 16, 3), 40 * view, np.uint8)
                Image.fromarray(image).save(runs / run_id / "renders" / f"test_{view:03d}.png")
    write_record(runs / "block-nerf__synthetic-bed__seed9.json",
                 {"run_id": "block-nerf__synthetic-bed__seed9", "method": "block-nerf", "dataset": "synthetic-bed", "scene": "bed",
                  "profile": PROFILE, "seed": 9, "status": "failed", "message": f"RuntimeError: out of memory in {root}/x.py"})
    write_record(runs / "nerf__tanks-temples-truck__seed0.json",
                 {"run_id": "nerf__tanks-temples-truck__seed0", "method": "nerf", "dataset": "tanks-temples", "scene": "truck",
                  "profile": PROFILE, "seed": 0, "status": "skipped", "message": f"{root}/data/tanks-temples/truck: not there"})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html-export")
    yours, reference = tmp / "yours", tmp / "reference"
    _write_study(yours, seeds=(0, 1), shift=0.5)
    _write_study(reference, seeds=(0, 1, 2))
    (yours / "sweeps").mkdir()
    (yours / "sweeps" / f"nerf-{PROFILE}.csv").write_text(
        "candidate,pipeline.model.width,psnr,ssim,iterations,s_per_iter,model_size_bytes\n0,16,20.123456,0.81234,8,0.61,2000000\n1,32,,,,,\n")
    notebook = yours / PROFILE / "compare.ipynb"
    notebooks.execute_notebook(notebooks.COMPARE_NOTEBOOK, notebook, dict(profile=PROFILE, results_root=str(yours), reference_root=str(reference)))
    html = notebooks.export_html(notebook).read_text(encoding="utf-8")
    # Figures are inlined as base64, whose letters may spell anything.
    text = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=\s]+", "data:image", html)
    return text, tmp


def test_no_code_in_the_page(exported):
    html, _ = exported
    # The lab template's code editor (markdown cells also sit in a jp-InputArea, so not that).
    assert 'class="jp-CodeMirrorEditor' not in html and "hl-ipython3" not in html
    for code in ("load_records(", "import pandas", "reference_root =", "report.styled_results", "papermill"):
        assert code not in html, code


def test_no_nan_and_no_absolute_path(exported):
    html, tmp = exported
    assert "NaN" not in html and "nan " not in html.lower().replace("nan-", "")
    for path in (str(tmp), "/tmp/", "/work/", "/home/", "/root/", "/Users/"):
        assert path not in html, path


def test_the_page_reads_like_a_results_section(exported):
    html, _ = exported
    assert "0.804 ± 0.006" in html  # NeRF's SSIM over the user's two seeds, 0.800 and 0.808
    assert "Scenes not run: tanks-temples/truck (data not present)." in html
    assert html.count("tanks-temples/truck") == 1  # once, not a row of blanks
    assert "The paper&#x27;s claims, tested" in html or "The paper's claims, tested" in html
    # Two seeds of a paper-like study: every claim is judged, and holds.
    assert html.count(">holds</td>") == 8 and ">not measurable here</td>" not in html and ">does not hold</td>" not in html
    assert "Your numbers against the reference study" in html
    assert "2.0 MB" in html and "100 KB" in html  # sizes in the unit that fits
    assert "20.12" in html and "20.123456" not in html  # the sweep table is rounded too
    assert html.count("<img") >= 4  # size, time, speed and the render grid
