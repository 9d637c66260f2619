"""Scene lookup, validation errors a user sees, and the Tanks & Temples (3DGS COLMAP) reader."""

import json

import numpy as np
import pytest
from PIL import Image

from akdqff_bench.datasets import (
    DatasetError,
    DatasetMissing,
    ThreeDGSColmapDataParserConfig,
    resolve_scene,
)
from akdqff_bench.datasets.validate import validate_blender_scene, validate_colmap_scene, validate_nerfstudio_scene


def test_tiny_scene_is_valid(tiny_scene):
    assert validate_blender_scene(tiny_scene) == {"train": 6, "val": 2, "test": 2}


def test_missing_folder_is_reported_as_missing(tmp_path):
    with pytest.raises(DatasetMissing, match="does not exist"):
        validate_blender_scene(tmp_path / "nowhere")


def test_missing_split_file_names_the_file(tiny_scene):
    (tiny_scene / "transforms_val.json").unlink()
    with pytest.raises(DatasetError, match=r"transforms_val\.json: file is missing"):
        validate_blender_scene(tiny_scene)


def test_malformed_json_names_file_and_line(tiny_scene):
    (tiny_scene / "transforms_train.json").write_text('{"camera_angle_x": 0.7,\n "frames": [}')
    with pytest.raises(DatasetError, match=r"transforms_train\.json: not valid JSON .* line 2"):
        validate_blender_scene(tiny_scene)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("camera_angle_x"), "camera_angle_x"),
        (lambda d: d.update(frames=[]), "'frames' must be a non-empty list"),
        (lambda d: d["frames"][1].pop("transform_matrix"), r"frames\[1\] has no 'transform_matrix'"),
        (lambda d: d["frames"][0].update(transform_matrix=[[1, 0], [0, 1]]), r"frames\[0\]\.transform_matrix must be a 4x4"),
        (lambda d: d["frames"][0].pop("file_path"), r"frames\[0\] has no 'file_path'"),
    ],
)
def test_incomplete_transforms_are_explained(tiny_scene, mutate, message):
    path = tiny_scene / "transforms_test.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=message):
        validate_blender_scene(tiny_scene)


def test_missing_image_is_named(tiny_scene):
    (tiny_scene / "train" / "r_3.png").unlink()
    with pytest.raises(DatasetError, match=r"frames\[3\] names .*r_3\.png, which does not exist"):
        validate_blender_scene(tiny_scene)


def test_wrong_image_size_is_named(tiny_scene):
    Image.new("RGBA", (10, 10)).save(tiny_scene / "test" / "r_1.png")
    with pytest.raises(DatasetError, match=r"r_1\.png: image is 10x10 but the other images of the scene are 24x24"):
        validate_blender_scene(tiny_scene)


def test_synthetic_bed_resolves_under_the_data_root(tiny_data_root):
    spec = resolve_scene("synthetic-bed", "quick")
    assert spec.layout == "blender" and spec.path == tiny_data_root / "synthetic-bed" / "quick"
    with pytest.raises(DatasetMissing, match="python -m akdqff_bench.datasets.synthetic_bed --variant full"):
        resolve_scene("synthetic-bed", "full")


def test_absent_tanks_and_temples_says_where_to_put_and_get_it(tmp_path):
    with pytest.raises(DatasetMissing) as error:
        resolve_scene("tanks-temples/truck", root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "tanks-temples" / "truck") in message
    assert "sparse/0" in message and "3D Gaussian Splatting" in message and "AKDQFF_BENCH_DATA" in message


def test_unknown_scene_is_refused():
    with pytest.raises(DatasetError, match="unknown scene 'lego'"):
        resolve_scene("lego")


# --- a tiny COLMAP scene in the 3DGS layout ------------------------------------------------------

NAMES = [f"frame_{i:02d}.jpg" for i in range(17)]


def make_colmap_scene(root, names=NAMES, size=(20, 16)):
    from nerfstudio.data.utils import colmap_parsing_utils as cu

    (root / "images").mkdir(parents=True)
    (root / "sparse" / "0").mkdir(parents=True)
    rng = np.random.default_rng(0)
    cameras = {1: cu.Camera(id=1, model="PINHOLE", width=size[0], height=size[1], params=np.array([18.0, 18.0, 10.0, 8.0]))}
    images = {}
    # COLMAP ids deliberately out of name order: the 3DGS split must follow names, not ids.
    for image_id, name in zip(rng.permutation(len(names)) + 1, names):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / "images" / name)
        angle = 2 * np.pi * int(image_id) / len(names)
        images[int(image_id)] = cu.Image(
            id=int(image_id), qvec=np.array([1.0, 0.0, 0.0, 0.0]), tvec=np.array([np.cos(angle), np.sin(angle), 4.0]),
            camera_id=1, name=name, xys=np.zeros((0, 2)), point3D_ids=np.zeros(0, dtype=int),
        )
    cu.write_model(cameras, images, {}, root / "sparse" / "0", ext=".bin")
    return root


def test_colmap_scene_validates_and_names_a_missing_image(tmp_path):
    root = make_colmap_scene(tmp_path / "truck")
    assert validate_colmap_scene(root) == {"all": len(NAMES)}
    (root / "images" / NAMES[5]).unlink()
    with pytest.raises(DatasetError, match=f"lists {NAMES[5]}, which is not in"):
        validate_colmap_scene(root)


def test_colmap_without_model_is_explained(tmp_path):
    root = make_colmap_scene(tmp_path / "truck")
    (root / "sparse" / "0" / "images.bin").unlink()
    with pytest.raises(DatasetError, match="no images.bin or images.txt"):
        validate_colmap_scene(root)


def test_tanks_and_temples_colmap_uses_the_3dgs_split(tmp_path):
    make_colmap_scene(tmp_path / "tanks-temples" / "truck")
    spec = resolve_scene("tanks-temples/truck", root=tmp_path)
    assert spec.layout == "colmap" and "every 8th" in spec.protocol
    spec.validate()
    parser = spec.dataparser_config().setup()
    test = parser.get_dataparser_outputs(split="test")
    train = parser.get_dataparser_outputs(split="train")
    test_names = sorted(p.name for p in test.image_filenames)
    assert test_names == sorted(NAMES)[::8]  # frame_00, frame_08, frame_16
    assert len(train.image_filenames) == len(NAMES) - len(test_names)
    assert not set(test_names) & {p.name for p in train.image_filenames}
    assert test.cameras.width[0].item() == 20


def test_nerfstudio_layout_is_validated(tmp_path):
    root = tmp_path / "scene"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (8, 6)).save(root / "images" / "a.png")
    frame = {"file_path": "images/a.png", "transform_matrix": np.eye(4).tolist()}
    (root / "transforms.json").write_text(json.dumps({"fl_x": 5, "fl_y": 5, "cx": 4, "cy": 3, "w": 8, "frames": [frame]}))
    with pytest.raises(DatasetError, match=r"no intrinsics \['h'\]"):
        validate_nerfstudio_scene(root)
