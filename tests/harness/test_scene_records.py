"""Scenes by path through the runner: the record names the scene, its protocol and its settings,
and the settings reach each method's config."""

import json

import numpy as np
import pytest

from akdqff_bench.datasets import DatasetError, resolve_scene
from akdqff_bench.request import RunRequest
from akdqff_bench.datasets.fixtures import make_llff_scene
from akdqff_bench.profiles import get_profile
from akdqff_bench.records import read_record, record_path
from akdqff_bench.runner import build_config, run_one
from baselines.plenoxels.model import SVOX2_REGULARISATION


@pytest.mark.parametrize("method", ["nerf", "plenoxels", "block-nerf", "akdqff"])
def test_real_scene_settings_reach_every_method(tmp_path, method):
    spec = resolve_scene(f"llff:{make_llff_scene(tmp_path / 'scene', count=9)}")
    config = build_config(RunRequest(method, spec.name, get_profile("smoke"), 0, device_type="cpu"), spec, tmp_path / "out")
    model = config.pipeline.model
    assert model.collider_params == {"near_plane": spec.settings.near_plane, "far_plane": spec.settings.far_plane}
    assert spec.settings.not_applicable(model) == []
    assert model.background_color == "black"
    if method == "plenoxels":  # photographs: svox2's real-scene regularisation (tnt.json)
        assert model.capture == "real" and model.regularisation() == SVOX2_REGULARISATION["real"]
    aabb = config.pipeline.datamanager.dataparser.setup().get_dataparser_outputs("train").scene_box.aabb
    np.testing.assert_allclose(aabb.numpy(), spec.settings.scene_box, atol=1e-5)


def test_synthetic_scenes_keep_the_methods_defaults(tiny_data_root, tmp_path):
    spec = resolve_scene("synthetic-bed", "quick")
    for method in ("nerf", "plenoxels"):
        model = build_config(RunRequest(method, spec.name, get_profile("smoke"), 0, device_type="cpu"), spec, tmp_path / "out").pipeline.model
        assert model.collider_params["near_plane"] == 2.0 and model.background_color == "white"
        if method == "plenoxels":
            assert model.regularisation() == SVOX2_REGULARISATION["synthetic"]


def test_run_record_names_the_scene_protocol_and_settings(tmp_path, no_lpips_weights):
    root = make_llff_scene(tmp_path / "my capture", count=9)
    scene = f"llff:{root}"
    result = run_one(RunRequest("nerf", scene, "smoke", 0), tmp_path / "results", log=lambda message: None)
    record = read_record(result.record_path)
    assert result.record_path == record_path(tmp_path / "results", "smoke", "nerf", scene, 0)
    assert record["status"] == "ok" and (record["dataset"], record["scene"]) == ("llff", "my capture")
    assert "llffhold=8" in record["eval_protocol"] and "3DGS" not in record["eval_protocol"]
    assert record["scene_settings"]["layout"] == "llff" and record["scene_settings"]["background_color"] == "black"
    assert record["data_overrides"]["pipeline.model.background_color"] == "black"
    assert record["num_test_views"] == 2  # smoke evaluates two of the two test views (0 and 8)
    json.dumps(record)


def test_malformed_scene_fails_with_a_record_naming_the_file(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=3)
    np.save(root / "poses_bounds.npy", np.zeros((3, 12)))
    with pytest.raises(DatasetError, match=r"poses_bounds\.npy: expected an \[N, 17\] array"):
        run_one(RunRequest("nerf", f"llff:{root}", "smoke", 0), tmp_path / "results", log=lambda message: None)
    record = read_record(record_path(tmp_path / "results", "smoke", "nerf", f"llff:{root}", 0))
    assert record["status"] == "failed" and "poses_bounds.npy" in record["message"] and record["dataset"] == "llff"
