"""Scene lookup, validation errors a user sees, and the Tanks & Temples (3DGS COLMAP) reader."""

import json

import numpy as np
import pytest
from PIL import Image

from akdqff_bench.datasets import (
    DatasetError,
    DatasetMissing,
    resolve_scene,
)
from akdqff_bench.datasets.fixtures import make_llff_scene
from akdqff_bench.datasets.llff import validate_llff_scene
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


# --- any scene by path: blender:PATH, colmap:PATH, nerfstudio:PATH, llff:PATH ----------------------


def make_nerfstudio_scene(root, count=17, size=(20, 16)):
    from akdqff_bench.testing import look_at_camera_to_world

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        angle = 2 * np.pi * i / count
        c2w = look_at_camera_to_world(np.array([3 * np.cos(angle), 3 * np.sin(angle), 1.0]))
        name = f"images/frame_{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / name)
        frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
    # Frames listed out of name order: the split must follow the sorted file names.
    frames = frames[::-1]
    meta = {"fl_x": 18.0, "fl_y": 18.0, "cx": size[0] / 2, "cy": size[1] / 2, "w": size[0], "h": size[1], "frames": frames}
    (root / "transforms.json").write_text(json.dumps(meta))
    return root


def _split_names(spec):
    parser = spec.dataparser_config().setup()
    test = sorted(p.name for p in parser.get_dataparser_outputs(split="test").image_filenames)
    train = sorted(p.name for p in parser.get_dataparser_outputs(split="train").image_filenames)
    return train, test


def test_blender_by_path(tiny_scene):
    spec = resolve_scene(f"blender:{tiny_scene}")
    assert (spec.layout, spec.dataset, spec.scene, spec.path) == ("blender", "blender", tiny_scene.name, tiny_scene.resolve())
    assert spec.validate() == {"train": 6, "val": 2, "test": 2}
    assert spec.settings.background_color == "white" and "NeRF-synthetic" in spec.protocol
    assert spec.settings.model_overrides(object()) == {}  # the methods' defaults are the Blender setup
    assert len(spec.dataparser_config().setup().get_dataparser_outputs(split="test").image_filenames) == 2


@pytest.mark.parametrize("ext", [".bin", ".txt"])
def test_colmap_by_path_uses_the_3dgs_split(tmp_path, ext):
    root = make_colmap_scene(tmp_path / "my scene")
    if ext == ".txt":  # COLMAP's text model reads the same
        from nerfstudio.data.utils import colmap_parsing_utils as cu

        model = root / "sparse" / "0"
        cameras, images = cu.read_cameras_binary(model / "cameras.bin"), cu.read_images_binary(model / "images.bin")
        for name in ("cameras.bin", "images.bin", "points3D.bin"):
            (model / name).unlink()
        cu.write_model(cameras, images, {}, model, ext=".txt")
    spec = resolve_scene(f"colmap:{root}")
    assert (spec.layout, spec.dataset, spec.scene) == ("colmap", "colmap", "my scene")
    assert spec.validate() == {"all": len(NAMES)}
    assert "3DGS" in spec.protocol and spec.settings.background_color == "black"
    train, test = _split_names(spec)
    assert test == sorted(NAMES)[::8] and len(train) == len(NAMES) - len(test)


def test_nerfstudio_by_path_names_its_own_protocol(tmp_path):
    root = make_nerfstudio_scene(tmp_path / "capture")
    spec = resolve_scene(f"nerfstudio:{root}")
    assert spec.layout == "nerfstudio" and "nerfstudio-data" in spec.protocol and "3DGS" not in spec.protocol
    assert spec.validate() == {"all": 17}
    train, test = _split_names(spec)
    assert test == [f"frame_{i:02d}.png" for i in (0, 8, 16)] and len(train) == 14


def test_tanks_and_temples_in_nerfstudio_layout_records_the_nerfstudio_protocol(tmp_path):
    make_nerfstudio_scene(tmp_path / "tanks-temples" / "truck")
    spec = resolve_scene("tanks-temples/truck", root=tmp_path)
    assert spec.layout == "nerfstudio" and spec.protocol.startswith("nerfstudio-data")


def test_llff_by_path_and_real_data_overrides(tmp_path):
    root = make_llff_scene(tmp_path / "fern", count=9, image_size=(30, 20))
    spec = resolve_scene(f"llff:{root}")
    assert (spec.layout, spec.dataset, spec.scene) == ("llff", "llff", "fern")
    assert spec.validate() == {"all": 9} and "llffhold=8" in spec.protocol
    settings = spec.settings
    assert 0 < settings.near_plane < settings.far_plane and settings.background_color == "black"
    from akdqff_bench.methods import method_config

    nerf_model = method_config("nerf").pipeline.model
    assert spec.settings.model_overrides(nerf_model) == {
        "pipeline.model.collider_params": {"near_plane": settings.near_plane, "far_plane": settings.far_plane},
        "pipeline.model.background_color": "black",
    }
    assert spec.settings.not_applicable(nerf_model) == []
    train, test = _split_names(spec)
    assert test == ["IMG_000.png", "IMG_008.png"] and len(train) == 7


@pytest.mark.parametrize(
    "name, error, message",
    [
        ("llff:", DatasetError, r"give a folder after 'llff:'"),
        ("colmap:/no/such/folder", DatasetError, r"/no/such/folder: scene folder does not exist"),
        ("nerf:/tmp", DatasetError, r"unknown layout 'nerf' .*blender:PATH, colmap:PATH, nerfstudio:PATH, llff:PATH"),
    ],
)
def test_bad_scene_paths_are_explained(name, error, message):
    with pytest.raises(error, match=message):
        resolve_scene(name)


def test_path_layout_with_missing_pieces_is_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"needs an images/ \(or images_<N>/\) folder"):
        resolve_scene(f"llff:{tmp_path / 'empty'}")
    with pytest.raises(DatasetError, match=r"images: image folder is missing"):
        resolve_scene(f"colmap:{tmp_path / 'empty'}")
    with pytest.raises(DatasetError, match=r"transforms\.json: file is missing"):
        resolve_scene(f"nerfstudio:{tmp_path / 'empty'}")
    with pytest.raises(DatasetError, match=r"transforms_train\.json: file is missing"):
        resolve_scene(f"blender:{tmp_path / 'empty'}").validate()


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_is_named(tmp_path, suffix):
    names = [f"IMG_{i:03d}{suffix}" for i in range(3)]
    root = make_llff_scene(tmp_path / "scene", count=3, image_size=(60, 40), names=names)
    _truncate(root / "images" / names[1])
    with Image.open(root / "images" / names[1]) as image:  # PIL opens it happily: only decoding fails
        assert image.size == (60, 40)
    with pytest.raises(DatasetError, match=rf"IMG_001\{suffix}: cannot be read as an image \(.*truncated"):
        validate_llff_scene(root)


def test_truncated_image_in_a_blender_scene_is_named(tiny_scene):
    _truncate(tiny_scene / "val" / "r_1.png")
    with pytest.raises(DatasetError, match=r"val/r_1\.png: cannot be read as an image"):
        validate_blender_scene(tiny_scene)


def test_run_ids_of_path_scenes_are_safe_and_distinct(tmp_path):
    from akdqff_bench.datasets import LAYOUTS
    from akdqff_bench.records import PATH_LAYOUTS, run_id

    assert PATH_LAYOUTS == LAYOUTS
    a, b = run_id("nerf", f"llff:{tmp_path / 'x' / 'my scene'}", 0), run_id("nerf", f"llff:{tmp_path / 'y' / 'my scene'}", 0)
    assert a != b and a.startswith("nerf__llff-my_scene-") and a.endswith("__seed0")
    assert "/" not in a and ":" not in a and " " not in a
    assert run_id("nerf", "tanks-temples/truck", 1) == "nerf__tanks-temples-truck__seed1"


def test_ethiopian_head_is_committed_and_reads_as_llff():
    quick, full = resolve_scene("ethiopian-head", "quick"), resolve_scene("ethiopian-head", "full")
    assert (quick.dataset, quick.scene, quick.layout) == ("ethiopian-head", "head", "llff")
    assert (quick.settings.images_path, full.settings.images_path) == ("images_32", "images_8")
    assert quick.validate() == {"all": 66}
    test = quick.dataparser_config().setup().get_dataparser_outputs(split="test")
    assert [p.name for p in test.image_filenames][:3] == ["DSC_0007.JPG", "DSC_0015.JPG", "DSC_0023.JPG"]
    assert len(test.image_filenames) == 9 and test.cameras.width[0].item() == 125
    # 7543.57 px at 4000 px wide -> 125 px wide.
    assert test.cameras.fx[0].item() == pytest.approx(7543.5746 * 125 / 4000, rel=1e-5)


@pytest.mark.parametrize("layout", ["colmap", "nerfstudio"])
def test_quick_profile_reads_a_downscaled_copy_of_large_photographs(tmp_path, layout):
    from akdqff_bench.datasets.downscale import downscale_folder

    root = make_colmap_scene(tmp_path / "big", size=(400, 300)) if layout == "colmap" else make_nerfstudio_scene(tmp_path / "big", size=(400, 300))
    with pytest.raises(DatasetError, match=r"(?s)images_4: the quick profile .*--factor 4 --target images_4"):
        resolve_scene(f"{layout}:{root}", "quick")
    assert resolve_scene(f"{layout}:{root}", "full").settings.downscale_factor == 1
    downscale_folder(root / "images", root / "images_4", 4)
    spec = resolve_scene(f"{layout}:{root}", "quick")
    assert spec.settings.downscale_factor == 4 and spec.validate() == {"all": 17}
    cameras = spec.dataparser_config().setup().get_dataparser_outputs(split="test").cameras
    assert (cameras.width[0].item(), cameras.height[0].item()) == (100, 75)
    (root / "images_4" / "frame_05.png" if layout == "nerfstudio" else root / "images_4" / NAMES[5]).unlink()
    with pytest.raises(DatasetError, match=r"images_4"):
        spec.validate()


def test_run_id_of_a_folder_in_the_repository_does_not_depend_on_the_clone(monkeypatch, tmp_path):
    import hashlib

    from akdqff_bench.records import run_id

    expected = hashlib.sha1(b"data/ethiopian-head").hexdigest()[:8]
    assert run_id("nerf", "llff:data/ethiopian-head", 0) == f"nerf__llff-ethiopian-head-{expected}__seed0"
    monkeypatch.chdir(tmp_path)  # the same folder named from elsewhere: same id
    from akdqff_bench.paths import REPO_ROOT

    assert run_id("nerf", f"llff:{REPO_ROOT / 'data' / 'ethiopian-head'}", 0) == f"nerf__llff-ethiopian-head-{expected}__seed0"


# --- cameras checked in every layout, as the LLFF reader checks its bounds ------------------------


def _blender_frame(scene, split="train", index=0):
    path = scene / f"transforms_{split}.json"
    data = json.loads(path.read_text())
    return path, data, data["frames"][index]


@pytest.mark.parametrize("pose, message", [
    ("nan", r"transforms_train.json: frames\[0\].transform_matrix holds NaN or infinite values"),
    ("zero", r"transforms_test.json: frames\[0\].transform_matrix is singular"),
])
def test_a_blender_pose_that_places_no_camera_is_refused(tiny_scene, pose, message):
    path, data, frame = _blender_frame(tiny_scene, "train" if pose == "nan" else "test")
    if pose == "nan":
        frame["transform_matrix"][0][3] = float("nan")
    else:
        frame["transform_matrix"] = np.zeros((4, 4)).tolist()
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=message):
        validate_blender_scene(tiny_scene)


@pytest.mark.parametrize("key, value", [("fl_x", 0), ("h", float("inf")), ("cx", float("nan"))])
def test_nerfstudio_intrinsics_must_be_finite_and_positive(tmp_path, key, value):
    root = make_nerfstudio_scene(tmp_path / "scene", count=3)
    data = json.loads((root / "transforms.json").read_text())
    data[key] = value
    (root / "transforms.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"frames\[0\]'s {key} must be a finite"):
        validate_nerfstudio_scene(root)


def test_a_colmap_pose_with_a_zero_quaternion_is_refused(tmp_path):
    from nerfstudio.data.utils import colmap_parsing_utils as cu

    root = make_colmap_scene(tmp_path / "truck")
    sparse = root / "sparse" / "0"
    cameras, images, points = cu.read_model(sparse, ext=".bin")
    first = min(images)
    images[first] = images[first]._replace(qvec=np.zeros(4))
    cu.write_model(cameras, images, points, sparse, ext=".bin")
    with pytest.raises(DatasetError, match=r"pose is singular: its rotation quaternion is zero"):
        validate_colmap_scene(root)


def test_an_llff_pose_that_is_singular_is_refused(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=4)
    array = np.load(root / "poses_bounds.npy")
    pose = array[2, :15].reshape(3, 5)
    pose[:, :4] = 0.0  # rotation and position zero; [H, W, focal] kept
    array[2, :15] = pose.ravel()
    np.save(root / "poses_bounds.npy", array)
    with pytest.raises(DatasetError, match=r"poses_bounds.npy: the pose of image 2 is singular"):
        resolve_scene(f"llff:{root}", "full")


def test_the_grid_refuses_bad_data_in_one_line_before_anything_trains(tmp_path, tiny_scene, capsys):
    from akdqff_bench import cli

    path, data, frame = _blender_frame(tiny_scene)
    frame["transform_matrix"][1][1] = float("nan")
    path.write_text(json.dumps(data))
    status = cli.main(["grid", "--profile", "smoke", "--methods", "nerf", "--scenes", f"blender:{tiny_scene}", "--no-notebooks",
                       "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "holds NaN or infinite values" in err
    assert not (tmp_path / "results" / "smoke" / "runs").exists()


def test_a_listed_split_is_the_one_recorded_and_an_empty_one_is_refused(tmp_path):
    root = make_nerfstudio_scene(tmp_path / "scene", count=6)
    data = json.loads((root / "transforms.json").read_text())
    names = sorted(frame["file_path"] for frame in data["frames"])
    data["train_filenames"], data["test_filenames"] = names[1:], names[:1]
    (root / "transforms.json").write_text(json.dumps(data))
    spec = resolve_scene(f"nerfstudio:{root}", "full")
    assert "the split its train_filenames and test_filenames list" in spec.protocol
    assert spec.fingerprint()["split"]["test"] == names[:1]
    # nerfstudio asks for a val split while it trains: a file listing train and test gives the test list.
    parser = spec.dataparser_config().setup()
    for split, listed in (("train", names[1:]), ("val", names[:1]), ("test", names[:1])):
        assert sorted(path.relative_to(root).as_posix() for path in parser.get_dataparser_outputs(split).image_filenames) == listed
    data["test_filenames"] = []
    (root / "transforms.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="its test_filenames is empty: the test split would have no view"):
        resolve_scene(f"nerfstudio:{root}", "full")
