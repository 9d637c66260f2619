"""The mean-image floor under each scene's table: the mean training image, scored like a render."""

from __future__ import annotations

import glob

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from akdqff_bench import report
from akdqff_bench.datasets import resolve_scene
from akdqff_bench.datasets.fixtures import make_llff_scene
from akdqff_bench.datasets.floor import ImageFloor, floor_of_records, mean_image_floor
from akdqff_bench.testing import make_tiny_blender_scene


def _by_hand(train, test):
    """The floor computed here with numpy and scikit-image alone, from the images as float64."""
    mean = np.mean(train, axis=0)
    psnrs = [peak_signal_noise_ratio(t, np.clip(mean, 0, 1), data_range=1.0) for t in test]
    ssims = [structural_similarity(t, np.clip(mean, 0, 1), data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                   sigma=1.5, use_sample_covariance=False) for t in test]
    return float(np.mean(psnrs)), float(np.mean(ssims))


def _read(path):
    return np.asarray(Image.open(path), dtype=np.float64) / 255.0


def test_an_llff_scenes_floor_is_its_mean_training_photograph_on_its_test_views(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=10, image_size=(30, 20))
    images = [_read(p) for p in sorted(glob.glob(str(root / "images" / "*.png")))]
    test = images[::8]  # LLFF's llffhold: views 0 and 8
    train = [image for index, image in enumerate(images) if index % 8]
    floor = mean_image_floor(resolve_scene(f"llff:{root}", "quick"))
    assert (floor.train_views, floor.test_views) == (8, 2)
    assert (floor.psnr, floor.ssim) == pytest.approx(_by_hand(train, test), abs=1e-4)
    # The profile's limit on test views is the evaluation's: the first views only.
    assert mean_image_floor(resolve_scene(f"llff:{root}", "quick"), max_test_views=1).psnr == pytest.approx(_by_hand(train, test[:1])[0], abs=1e-4)


def test_a_blender_scenes_floor_composites_its_rgba_images_on_white_as_the_evaluation_does(tmp_path):
    root = make_tiny_blender_scene(tmp_path / "blender", n_train=6, n_val=2, n_test=2, size=24)

    def on_white(path):
        rgba = _read(path)
        return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])

    train = [on_white(root / "train" / f"r_{i}.png") for i in range(6)]
    test = [on_white(root / "test" / f"r_{i}.png") for i in range(2)]
    floor = mean_image_floor(resolve_scene(f"blender:{root}", "quick"))
    assert (floor.train_views, floor.test_views) == (6, 2)
    assert (floor.psnr, floor.ssim) == pytest.approx(_by_hand(train, test), abs=1e-4)
    # Not the score of a constant: the spheres' mean image does better than plain white.
    assert floor.psnr > np.mean([peak_signal_noise_ratio(t, np.ones_like(t), data_range=1.0) for t in test])


def test_a_scene_whose_data_is_missing_or_changed_has_no_floor_and_says_why(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=10)
    spec = resolve_scene(f"llff:{root}", "quick")
    record = {"status": "ok", "dataset": "llff", "scene": "scene", "method": "nerf", "psnr": 10.0,
              "data_path": str(root), "scene_settings": {"layout": "llff"}, "data_fingerprint": spec.fingerprint()}
    assert isinstance(floor_of_records("llff/scene", [record], "quick"), ImageFloor)  # found again by layout and path
    changed = {**record, "data_fingerprint": {"sha256": "0" * 64}}
    assert "not the data its runs were measured on" in floor_of_records("llff/scene", [changed], "quick")
    gone = {**record, "data_path": str(tmp_path / "gone")}
    assert floor_of_records("llff/scene", [gone], "quick").startswith("its data is not here")


def test_the_sentence_names_the_methods_below_the_floor():
    def run(method, psnr, seed):
        return {"status": "ok", "dataset": "mary-rose", "scene": "tankard", "method": method, "psnr": psnr, "seed": seed}

    records = [run("nerf", 7.5, 0), run("nerf", 8.1, 1), run("akdqff", 14.0, 0), run("plenoxels", 13.0, 0)]
    floor = ImageFloor(psnr=13.21, ssim=0.5, train_views=60, test_views=9)
    sentence = report.floor_sentence("mary-rose/tankard", records, floor)
    assert "13.21 dB" in sentence and "60 training images" in sentence and "9 test views" in sentence
    assert "Below it: NeRF (7.80 dB), Plenoxels (13.00 dB)." in sentence and "AKDQFF" not in sentence
    assert "Every method here scores above it." in report.floor_sentence("mary-rose/tankard", records[2:3], floor)
    assert report.floor_sentence("mary-rose/tankard", records, "its data is not here (x)") == "mary-rose/tankard: no mean-image floor: its data is not here (x)."


def test_the_committed_real_scene_is_found_again_from_its_records():
    """The comparison labels mary-rose's records "mary-rose/tankard"; the floor finds the named scene."""
    from pathlib import Path

    from akdqff_bench.records import load_records

    records = [r for r in load_records(Path(__file__).resolve().parents[2] / "results", "quick")
               if r.get("status") == "ok" and report.scene_label(r) == "mary-rose/tankard"]
    if not records:
        pytest.skip("no committed mary-rose records")
    floor = floor_of_records("mary-rose/tankard", records, "quick")
    assert isinstance(floor, ImageFloor) and (floor.train_views, floor.test_views) == (60, 9)
