"""The reference methods (nerfstudio's nerfacto and TensoRF, run with their code unchanged): what
their stored model holds, that it reloads into a fresh model and renders the same image, that the
size a record reports is that file's; the methods that need CUDA refused on a CPU; and the
comparison's table of the study's subject against them, from fixture records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from akdqff_bench import gpu_check, report, runner
from akdqff_bench.methods import bench_spec
from akdqff_bench.request import RunRequest

REPO_ROOT = Path(__file__).resolve().parents[2]

# What rendering needs, by the names nerfstudio gives the modules (TensoRF's basis matrix is ``field.B``).
STORED_PARTS = {
    "nerfacto": ("field.mlp_base.", "field.mlp_head.", "proposal_networks.0.", "attribute:proposal_sampler._anneal"),
    "tensorf": ("field.density_encoding.plane_coef", "field.density_encoding.line_coef", "field.color_encoding.", "field.B.", "field.mlp_head."),
}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", sorted(STORED_PARTS))
def test_a_reference_s_stored_model_is_what_rendering_needs_and_renders_the_same(method, tmp_path, tiny_data_root, no_lpips_weights):
    result = runner.run_one(RunRequest(method, "synthetic-bed", "smoke", 0), tmp_path)
    record = result.record
    assert record["status"] == "ok" and record["method_at_defaults"] is False
    model_file = tmp_path / "smoke" / "runs" / record["run_id"] / "model.bin"
    assert record["model_size_bytes"] == model_file.stat().st_size
    stored = torch.load(model_file, map_location="cpu", weights_only=True)
    for part in STORED_PARTS[method]:
        assert any(key.startswith(part) for key in stored), f"{method}'s stored model lacks {part}"
    # Nothing of training or of the metrics: no pose refinement (off), no LPIPS backbone.
    assert not [key for key in stored if key.startswith(("lpips.", "camera_optimizer.", "psnr.", "ssim."))]
    trained, reloaded = result.train_pipeline.model, result.pipeline.model
    trained.eval()
    view = runner.render_view(trained, result.test_views.cameras, 0)
    assert torch.allclose(runner.render_view(reloaded, result.test_views.cameras, 0), view, atol=1e-5)
    assert record["reload_max_abs_difference"] <= 1e-5


@pytest.mark.parametrize("method", ["splatfacto", "instant-ngp"])
def test_the_methods_that_need_cuda_are_declared_with_why(method):
    spec = bench_spec(method)
    assert spec.role == "reference" and not spec.runs_on("cpu") and spec.runs_on("cuda") and spec.device_reason


def _record(method, scene, seed, psnr, ssim, size, s_per_iter):
    return {"status": "ok", "method": method, "dataset": scene, "scene": scene, "seed": seed, "capacity": "default", "psnr": psnr,
            "ssim": ssim, "model_size_bytes": size, "s_per_iter": s_per_iter, "iterations": 100, "train_seconds": 100 * s_per_iter}


def test_the_subject_against_each_reference_from_the_records():
    records = ([_record("akdqff", "synthetic-bed", seed, 30.0 + seed * 0.1, 0.90, 1e6, 0.05) for seed in range(3)]
               + [_record("tensorf", "synthetic-bed", seed, 28.0 + seed * 0.1, 0.91, 4e6, 0.10) for seed in range(3)]
               + [_record("nerfacto", "synthetic-bed", seed, 29.95 + seed * 0.2, 0.88, 2e6, 0.025) for seed in range(3)]
               + [_record("nerf", "synthetic-bed", 0, 20.0, 0.7, 1e5, 0.2)])
    table = report.against_references(records).set_index("Reference")
    assert list(table.index) == ["nerfacto", "TensoRF"]  # table order; NeRF is no reference
    tensorf = table.loc["TensoRF"]
    assert tensorf["PSNR difference"] == "+2.00 dB" and tensorf["Size ratio"] == "4.00×" and tensorf["Update-speed ratio"] == "2.00×"
    assert tensorf["Where the subject stands"] == (
        "On synthetic-bed, AKDQFF scores 2.00 dB above TensoRF (seed ranges apart), SSIM -0.010 (seed ranges apart); "
        "its stored model is 4.0× smaller and its updates 2.0× faster.")
    nerfacto = table.loc["nerfacto"]
    assert nerfacto["Where the subject stands"].startswith("On synthetic-bed, AKDQFF scores 0.05 dB below nerfacto (seed ranges overlap)")
    assert "its updates 2.0× slower" in nerfacto["Where the subject stands"]
    assert report.against_references([r for r in records if r["method"] != "akdqff"]).empty


def test_the_methods_needing_cuda_are_listed_once_until_they_have_records():
    sentence = report.needing_cuda_sentence([])
    assert sentence.count("splatfacto (3DGS) (") == 1 and sentence.count("Instant-NGP (") == 1 and "gpu-check" in sentence
    assert "Instant-NGP" not in report.needing_cuda_sentence([{"method": "instant-ngp", "status": "ok"}])


def test_gpu_check_without_cuda_says_so_in_one_line_and_exits_2(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(["bash", str(REPO_ROOT / "run_all.sh"), "gpu-check", "--results", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=REPO_ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["gpu-check needs CUDA: torch sees no CUDA device on this machine; nothing was run"]
    assert not list(tmp_path.iterdir())


def test_gpu_check_summary_from_records(tmp_path):
    records = [{**_record("nerf", "synthetic-bed", 0, 25.0, 0.8, 2e6, 0.01), "peak_memory_bytes": 3e8, "peak_memory_kind": "cuda_max_allocated",
                "reload_max_abs_difference": 2e-7},
               {**_record("akdqff", "synthetic-bed", 0, 26.0, 0.8, 1e6, 0.02), "peak_memory_bytes": 9e8, "peak_memory_kind": "process_peak_rss",
                "reload_max_abs_difference": 0.3},
               {"status": "failed", "method": "splatfacto", "message": "RuntimeError: no kernel\nmore"}]
    rows = gpu_check.summary_rows(records)
    assert [row["reloads_the_same"] for row in rows] == [True, False, None]
    assert rows[0]["peak_gpu_memory_mb"] == 300.0 and rows[1]["peak_gpu_memory_mb"] is None  # only CUDA's own count
    assert rows[2]["message"] == "RuntimeError: no kernel"
    gpu_check.write_summary(tmp_path, rows, {"returncode": 0, "outcome": "3 passed"}, "NVIDIA Test", 60.0)
    text = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "# GPU check on NVIDIA Test" in text and "| nerf | ok | 100 | 0.01 | 25 |" in text and "3 passed" in text
    assert (tmp_path / "summary.csv").read_text().splitlines()[0] == ",".join(gpu_check.SUMMARY_COLUMNS)
