"""The harness end to end on the smoke profile: train -> export -> reload -> evaluate -> record,
through papermill notebooks, on the tiny sphere scene (seconds, CPU)."""

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from akdqff_bench import comparison, grid
from akdqff_bench.request import RunRequest
from bench_base.lpips import MissingLPIPS, build_lpips_or_missing
from akdqff_bench.records import METRIC_COLUMNS, read_record, record_path
from akdqff_bench.runner import curve_render_name, run_one
from akdqff_bench.profiles import curve_points, get_profile

pytestmark = pytest.mark.filterwarnings("ignore")


def test_lpips_is_missing_without_weights(no_lpips_weights):
    assert isinstance(build_lpips_or_missing(), MissingLPIPS)


def test_run_one_measures_the_stored_model(tmp_path, tiny_data_root, no_lpips_weights):
    result = run_one(RunRequest("nerf", "synthetic-bed", "smoke", 0), tmp_path)
    record = result.record
    assert record["status"] == "ok"
    assert record["iterations"] == 8
    assert record["model_size_bytes"] == Path(record["model_file"]).stat().st_size
    assert record["lpips"] is None and record["lpips_net"] is None  # offline: missing, not invented
    assert len(record["per_image"]) == record["num_test_views"] == 2
    assert 0 < record["s_per_iter"] < 60 and record["peak_memory_kind"] == "process_peak_rss"
    assert [p["iteration"] for p in record["curve"]] == [4, 8]
    assert record["versions"]["nerfstudio"] == "1.1.5"
    assert record["overrides"]["pipeline.model.base_mlp_layer_width"] == 32
    # The evaluated model is a fresh one loaded from the file: its weights equal the trained ones.
    trained = result.train_pipeline.model.state_dict()
    for key, value in result.pipeline.model.state_dict().items():
        if not key.startswith("lpips"):
            assert (value.cpu() == trained[key].cpu()).all(), key
    renders = Path(record["model_file"]).parent / "renders"
    assert sorted(p.name for p in renders.glob("test_*.png")) == ["test_000.png", "test_001.png"]
    # Renders over training: one per curve point, of the first curve view (the first test view);
    # the last is the trained model's, which the stored model renders the same (NeRF reloads exactly).
    assert sorted(p.name for p in (renders / "curve").iterdir()) == [curve_render_name(4), curve_render_name(8)]
    last = np.asarray(Image.open(renders / "curve" / curve_render_name(8)))
    target_and_render = np.asarray(Image.open(renders / "test_000.png"))
    assert record["reload_max_abs_difference"] == 0.0
    assert np.array_equal(last, target_and_render[:, last.shape[1]:])
    assert read_record(record_path(tmp_path, "smoke", "nerf", "synthetic-bed", 0))["psnr"] == pytest.approx(record["psnr"])


def test_absent_tanks_and_temples_is_recorded_as_skipped(tmp_path, tiny_data_root):
    result = run_one(RunRequest("nerf", "tanks-temples/truck", "smoke", 0), tmp_path)
    assert result.record["status"] == "skipped"
    assert "Tanks and Temples cannot be downloaded" in result.record["message"]


def test_papermill_chain_on_the_smoke_profile(tmp_path, tiny_data_root, no_lpips_weights):
    assert grid.run_grid("smoke", tmp_path, grid.GridOptions(methods=["nerf"], scenes=["synthetic-bed", "tanks-temples/truck"], evidence="short")) == 0
    comparison.write_comparison("smoke", tmp_path)
    profile_dir = tmp_path / "smoke"
    frame = pd.read_csv(profile_dir / "metrics.csv")
    assert list(frame.columns) == METRIC_COLUMNS
    assert dict(zip(frame["scene"], frame["status"])) == {"bed": "ok", "truck": "skipped"}
    run_nb = nbformat.read(profile_dir / "notebooks" / "nerf__synthetic-bed__seed0.ipynb", as_version=4)
    request = RunRequest.from_json(run_nb.metadata["papermill"]["parameters"]["request"])  # the one request, whole
    assert request.method == "nerf" and request.profile.name == "smoke" and request.seed == 0
    assert request.evidence == "short"  # the grid's level reaches the notebook
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for cell in run_nb.cells for o in cell.get("outputs", []))
    html = (profile_dir / "compare.html").read_text()
    # The paper's claims are judged (NeRF alone: none measurable) and the absent scene is named once.
    assert ">not measurable here</td>" in html and "Scenes not run: tanks-temples/truck (data not present)." in html
    assert {p.name for p in (profile_dir / "figures").iterdir()} == {"psnr_vs_size.png", "psnr_vs_time.png", "s_per_iter.png"}
    record = json.loads((profile_dir / "runs" / "nerf__synthetic-bed__seed0.json").read_text())
    assert record["status"] == "ok"


def test_akdqff_notebook_evidence_uses_the_raw_trained_features(tmp_path, tiny_data_root, no_lpips_weights):
    """The run notebook's AKDQFF figures on a real (smoke) run: the evidence file is written, and
    the rate-distortion points come from re-quantizing raw features, so Q changes what renders
    (re-quantizing the stored model's codebook vectors would give one PSNR for every Q)."""
    from akdqff_bench import report

    # Trained at the short level: half the smoke profile's learning-curve points (the figures'
    # level is the notebook's choice, so both levels are drawn from this run below).
    result = run_one(RunRequest("akdqff", "synthetic-bed", "smoke", 0, evidence="short"), tmp_path)
    assert (result.record["evidence"], len(result.record["curve"])) == ("short", curve_points(get_profile("smoke"), "short"))
    assert curve_points(get_profile("smoke"), "short") < get_profile("smoke").curve_points
    figures = report.method_figures(result)
    assert len(figures) == 2  # the evidence panels, then K and Q over training
    evidence = json.loads((Path(result.record_path).with_suffix("") / "akdqff_evidence.json").read_text())
    points = evidence["rate_distortion"]["points"]
    assert {p["codebook_size"] for p in points} >= {4, 256, 0}
    assert len({round(p["psnr"], 9) for p in points}) > 1
    assert {"pearson_r", "spearman_r", "num_measured_cells", "shuffled_pearson_r", "permutation_p_value"} <= set(
        evidence["kernel_density_vs_detail"])
    assert evidence["rate_distortion"]["evidence"] == "full" and evidence["rate_distortion"]["finetune_steps"] == 300
    training_views = len(result.pipeline.datamanager.train_dataset)
    assert evidence["kernel_density_vs_detail"]["views"] == evidence["kernel_density_vs_detail"]["training_views"] == training_views

    # The default ./run_all.sh's level: the short curve's Q, fine-tuning and views, named on the figure.
    from akdqff_method.analysis import EVIDENCE

    short = EVIDENCE["short"]
    figures = report.method_figures(result, "short")
    evidence = json.loads((Path(result.record_path).with_suffix("") / "akdqff_evidence.json").read_text())
    curve = evidence["rate_distortion"]
    assert evidence["kernel_density_vs_detail"]["views"] == min(short.density_views, training_views)
    if short.density_views < training_views:  # a subset is named on the figure
        assert f"{short.density_views} of {training_views} training views" in figures[0].axes[0].get_title()
    assert [p["codebook_size"] for p in curve["points"]] == [*short.codebook_sizes, 0]
    assert (curve["evidence"], curve["finetune_steps"], curve["views"]) == ("short", short.finetune_steps, min(short.views, result.record["num_test_views"]))
    assert "short curve" in figures[0].axes[2].get_title()

    # The short level's density on fewer views, beside all of them, from the run's checkpoint.
    from akdqff_method.diagnostics import density_views

    assert density_views.main(["--run", result.record["run_id"], "--profile", "smoke", "--results", str(tmp_path), "--views", "all", "2"]) == 0
    rows = pd.read_csv(tmp_path / "smoke" / "diagnostics" / f"{result.record['run_id']}-density-views.csv")
    assert rows["views"].tolist() == [training_views, 2] and (rows["training_views"] == training_views).all()
    with pytest.raises(ValueError, match="evidence must be one of"):
        report.method_figures(result, "long")
