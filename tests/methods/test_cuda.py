"""The CUDA-only tests (``pytest -m cuda``; ``./run_all.sh gpu-check`` runs them): skipped where
torch sees no GPU, so the CPU machines run none of them and the GPU check runs all of them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from akdqff_bench import runner
from akdqff_bench.methods import bench_spec, spec_names
from akdqff_bench.profiles import PROFILES
from akdqff_bench.request import RunRequest

pytestmark = [pytest.mark.cuda, pytest.mark.filterwarnings("ignore"),
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SMOKE_ON_CUDA = dataclasses.replace(PROFILES["smoke"], name="smoke-cuda", device_type="cuda", settings_from="smoke")


@pytest.mark.parametrize("method", [name for name in spec_names() if bench_spec(name).runs_on("cuda")])
def test_every_method_trains_on_cuda_and_its_stored_model_renders_the_same(method, tmp_path, tiny_data_root, no_lpips_weights):
    record = runner.run_one(RunRequest(method, "synthetic-bed", SMOKE_ON_CUDA, 0), tmp_path).record
    assert record["status"] == "ok", record.get("message")
    assert record["device"].startswith("cuda:") and record["peak_memory_kind"] == "cuda_max_allocated"
    assert 0 < record["peak_memory_bytes"] and record["reload_max_abs_difference"] <= 1e-4
    assert record["model_size_bytes"] == (tmp_path / "smoke-cuda" / "runs" / record["run_id"] / "model.bin").stat().st_size
