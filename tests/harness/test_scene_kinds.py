"""The study's four named scenes, a Blender scene's quick copy, and settings by kind of scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from akdqff_bench.datasets import (BLENDER_QUICK_TEST_EVERY, DatasetError, DatasetMissing, looks_one_way, resolve_scene,
                                   scene_kind)
from akdqff_bench.datasets.downscale import downscale_blender
from akdqff_bench.datasets.fixtures import make_llff_scene
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.profiles import get_profile
from akdqff_bench.testing import make_tiny_blender_scene


def _split(spec, split):
    return spec.dataparser_config().setup().get_dataparser_outputs(split=split)


def _frame_names(transforms):
    return [frame["file_path"] for frame in json.loads(transforms.read_text())["frames"]]


def test_mic_reads_its_quick_copy_with_the_official_split():
    release = REPO_ROOT / "data" / "nerf-synthetic-mic"
    spec = resolve_scene("nerf-synthetic-mic", "quick")
    assert (spec.dataset, spec.scene, spec.layout, spec.path) == ("nerf-synthetic-mic", "mic", "blender", release / "quick")
    assert spec.validate() == {"train": 100, "val": 100, "test": 25}
    assert "every 8th view of the test split" in spec.protocol and spec.settings.background_color == "white"
    # The official split: every training view; the test views are the release's r_0, r_8, ...
    official_test = _frame_names(release / "transforms_test.json")
    assert len(official_test) == 200 and _frame_names(spec.path / "transforms_test.json") == official_test[::8]
    assert _frame_names(spec.path / "transforms_train.json") == _frame_names(release / "transforms_train.json")
    test = _split(spec, "test")
    assert (test.cameras.width[0].item(), test.cameras.height[0].item()) == (100, 100)
    assert [p.name for p in test.image_filenames[:2]] == ["r_0.png", "r_8.png"]
    # The cameras are the release's: the same matrices, the focal length scaled to 100 px.
    first = np.array(json.loads((release / "transforms_test.json").read_text())["frames"][0]["transform_matrix"])
    assert np.allclose(test.cameras.camera_to_worlds[0].numpy(), first[:3], atol=1e-6)
    angle = json.loads((release / "transforms_test.json").read_text())["camera_angle_x"]
    assert test.cameras.fx[0].item() == pytest.approx(0.5 * 100 / np.tan(0.5 * angle), rel=1e-5)
    assert scene_kind("nerf-synthetic-mic") == "synthetic"


def test_mic_at_full_size_says_where_the_release_goes(tmp_path):
    root = tmp_path / "data"
    (root / "nerf-synthetic-mic").mkdir(parents=True)
    for split in ("train", "val", "test"):
        (root / "nerf-synthetic-mic" / f"transforms_{split}.json").write_text(
            (REPO_ROOT / "data" / "nerf-synthetic-mic" / f"transforms_{split}.json").read_text())
    with pytest.raises(DatasetMissing, match=r"(?s)800x800 release of mic is not committed.*train/, val/ and test/"):
        resolve_scene("nerf-synthetic-mic", "full", root=root)


def test_mary_rose_is_committed_and_reads_as_llff():
    quick, full = resolve_scene("mary-rose", "quick"), resolve_scene("mary-rose", "full")
    assert (quick.dataset, quick.layout) == ("mary-rose", "llff")
    assert (quick.settings.images_path, full.settings.images_path) == ("images_32", "images_8")
    assert quick.validate() == {"all": 69}
    names = sorted(p.name for p in (REPO_ROOT / "data" / "mary-rose" / "images_32").iterdir())
    test, train = _split(quick, "test"), _split(quick, "train")
    assert [p.name for p in test.image_filenames] == names[::8] and len(test.image_filenames) == 9  # LLFF's llffhold=8
    assert len(train.image_filenames) == 60 and not set(p.name for p in train.image_filenames) & set(names[::8])
    assert test.cameras.width[0].item() == 108
    assert test.cameras.fx[0].item() == pytest.approx(10547.2 * 108 / 3456, rel=1e-4)
    assert quick.settings.capture == "real" and scene_kind("mary-rose") == "real"


def test_the_study_has_the_four_scenes_and_the_default_grid_a_subset():
    quick = get_profile("quick")
    named = [scene for scene in quick.study_scenes if not scene.startswith("tanks-temples/")]
    assert named == ["synthetic-bed", "nerf-synthetic-mic", "ethiopian-head", "mary-rose"]
    assert {scene_kind(scene) for scene in named} == {"synthetic", "real"}
    default = [scene for scene in quick.scenes if not scene.startswith("tanks-temples/")]
    assert set(default) < set(named) and {scene_kind(scene) for scene in default} == {"synthetic", "real"}


def test_a_large_blender_scene_needs_its_quick_copy_which_the_quick_profile_reads(tmp_path):
    root = make_tiny_blender_scene(tmp_path / "big", n_train=4, n_val=2, n_test=17, size=320)
    with pytest.raises(DatasetError, match=r"(?s)quick: the quick profile reads images at most 160 px.*--blender --factor 2"):
        resolve_scene(f"blender:{root}", "quick")
    assert resolve_scene(f"blender:{root}", "full").path == root.resolve()
    meta = downscale_blender(root, 2, BLENDER_QUICK_TEST_EVERY)
    assert meta["views"] == {"train": 4, "val": 2, "test": 3} and meta["size"] == [[160, 160]]
    spec = resolve_scene(f"blender:{root}", "quick")
    assert spec.path == root.resolve() / "quick" and spec.scene == "big"
    assert spec.validate() == {"train": 4, "val": 2, "test": 3}
    assert _frame_names(spec.path / "transforms_test.json") == _frame_names(root / "transforms_test.json")[::8]
    test = _split(spec, "test")
    assert (test.cameras.width[0].item(), test.cameras.height[0].item()) == (160, 160)
    full_size = _split(resolve_scene(f"blender:{root}", "full"), "test")
    assert test.cameras.fx[0].item() == pytest.approx(full_size.cameras.fx[0].item() / 2, rel=1e-6)
    # The copy is the image at half size (RGBA kept; Lanczos).
    small = np.asarray(Image.open(spec.path / "test" / "r_0.png").convert("RGBA"), dtype=np.float64)
    big = np.asarray(Image.open(root / "test" / "r_0.png").convert("RGBA").resize((160, 160), Image.Resampling.LANCZOS), dtype=np.float64)
    assert small.shape == (160, 160, 4) and np.abs(small - big).max() <= 1


def test_forward_facing_is_told_from_the_poses(tmp_path):
    around = make_llff_scene(tmp_path / "around", count=10)
    facing = make_llff_scene(tmp_path / "facing", count=12, forward_facing=True)
    assert scene_kind(f"llff:{around}") == "real" and scene_kind(f"llff:{facing}") == "forward-facing"
    assert resolve_scene(f"llff:{facing}", "full").settings.capture == "forward-facing"
    assert resolve_scene(f"llff:{around}", "full").settings.capture == "real"
    # the committed captures surround their objects
    assert scene_kind("ethiopian-head") == "real" and scene_kind("llff:" + str(REPO_ROOT / "data" / "ethiopian-head")) == "real"
    # the rule itself: every camera within 30 degrees of the mean direction
    def cameras_looking(degrees):
        matrices = []
        for angle in degrees:
            a = np.radians(angle)
            rotation = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
            matrices.append(np.concatenate([rotation, np.zeros((3, 1))], axis=1))
        return np.array(matrices)
    assert looks_one_way(cameras_looking([-25, 0, 25])) and not looks_one_way(cameras_looking([-35, 0, 35]))
    assert not looks_one_way(cameras_looking([0, 90, 180, 270]))


def test_kind_of_scene_settings_reach_a_layout_path_scene(tmp_path):
    from akdqff_bench.request import RunRequest
    from baselines.plenoxels.model import SVOX2_REGULARISATION, PlenoxelsModelConfig
    from bench_base.spec import SCENE_KINDS

    quick = get_profile("quick")
    facing = make_llff_scene(tmp_path / "facing", count=12, forward_facing=True)
    around = make_llff_scene(tmp_path / "around", count=10)
    for method in quick.methods:
        # a user's capture around an object gets the method's settings for real captures (ethiopian-head's),
        # a forward-facing one the same unless the method has settings of that kind, a Blender scene the synthetic ones
        real = RunRequest(method, f"llff:{around}", quick, 0)
        assert real.overrides() == RunRequest(method, "ethiopian-head", quick, 0).overrides() == quick.overrides_for(method, "real")
        assert RunRequest(method, f"llff:{facing}", quick, 0).overrides() == quick.overrides_for(method, "forward-facing")
        assert RunRequest(method, "nerf-synthetic-mic", quick, 0).overrides() == quick.overrides_for(method, "synthetic")
    assert quick.overrides_for("plenoxels", "forward-facing") == quick.overrides_for("plenoxels", "real")
    assert quick.overrides_for("nerfacto", "synthetic") != quick.overrides_for("nerfacto", "real")  # the kinds do differ
    with pytest.raises(ValueError, match="unknown kind of scene"):
        quick.overrides_for("nerf", "indoor")
    # Plenoxels takes svox2's regularisation for the kind (llff.json for a forward-facing capture)
    spec = resolve_scene(f"llff:{facing}", "full")
    config = PlenoxelsModelConfig(**{key.removeprefix("pipeline.model."): value for key, value in spec.settings.model_overrides(PlenoxelsModelConfig()).items()
                                    if key == "pipeline.model.capture"})
    assert config.regularisation() == SVOX2_REGULARISATION["forward-facing"] and set(SVOX2_REGULARISATION) == set(SCENE_KINDS)


def test_the_study_grid_runs_the_study_scenes_and_the_default_grid_its_subset(monkeypatch, tmp_path):
    from akdqff_bench import grid

    planned = []

    class Planned(Exception):
        pass

    def plan(profile, methods, scenes, study=False, *rest, **kwargs):
        planned.append((study, list(scenes)))
        raise Planned

    monkeypatch.setattr(grid, "plan_runs", plan)
    quick = get_profile("quick")
    for study in (True, False):
        with pytest.raises(Planned):
            grid.run_grid("quick", tmp_path / "results", grid.GridOptions(methods=["nerf"], study=study))
    assert planned == [(True, list(quick.study_scenes)), (False, list(quick.scenes))]
