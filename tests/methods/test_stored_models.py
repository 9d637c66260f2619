"""A stored model is what rendering needs: nerfstudio's own methods, stored by the default hook (the
state dict without the metrics' networks), reload into a freshly built model and render the same
image, and the size a record reports is that file's size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from akdqff_bench import runner
from akdqff_bench.request import RunRequest

pytestmark = pytest.mark.filterwarnings("ignore")


def test_tensorf_grown_by_its_upsampling_reloads_at_its_grown_size_and_renders_the_same(tmp_path, tiny_data_root, no_lpips_weights):
    # Its smoke settings (references/tensorf/bench.py) upsample 16 -> 24 at steps 2 and 4 of the smoke
    # profile's 8, past the size a fresh model is built with: the stored model must bring its own shapes.
    request = RunRequest("tensorf", "synthetic-bed", "smoke", 0)
    result = runner.run_one(request, tmp_path)
    record = result.record
    assert record["status"] == "ok"
    trained, reloaded = result.train_pipeline.model, result.pipeline.model
    planes = trained.field.density_encoding.plane_coef
    assert planes.shape[-1] == 24 and reloaded.field.density_encoding.plane_coef.shape == planes.shape
    trained.eval()
    view = runner.render_view(trained, result.test_views.cameras, 0)
    assert torch.allclose(runner.render_view(reloaded, result.test_views.cameras, 0), view, atol=1e-5)
    assert record["model_size_bytes"] == (tmp_path / "smoke" / "runs" / record["run_id"] / "model.bin").stat().st_size
