"""The LLFF reader (poses_bounds.npy): axis order, focal of downscaled images, bounds, llffhold split."""

import numpy as np
import pytest
import torch
from PIL import Image

from akdqff_bench.datasets import DatasetError, resolve_scene
from akdqff_bench.datasets.fixtures import ORIGINAL_FOCAL, ORIGINAL_H, ORIGINAL_W, llff_row, make_llff_scene
from akdqff_bench.datasets.llff import LLFFDataParserConfig, llff_test_indices, read_poses_bounds
from akdqff_bench.datasets.llff import validate_llff_scene

def test_a_row_is_read_in_opengl_axes_by_hand(tmp_path):
    # A camera whose LLFF columns are down = -z, right = +x, back = -y: it looks along +y with z up.
    row = llff_row(down=[0, 0, -1], right=[1, 0, 0], back=[0, -1, 0], centre=[1, 2, 3], near=1.5, far=4.5)
    np.save(tmp_path / "poses_bounds.npy", row[None])
    camera_to_world, hwf, bounds = read_poses_bounds(tmp_path / "poses_bounds.npy")
    # OpenGL / nerfstudio columns: right = +x, up = +z (= -down), back = -y, then the centre.
    expected = np.array([[1, 0, 0, 1], [0, 0, -1, 2], [0, 1, 0, 3]], dtype=float)
    np.testing.assert_allclose(camera_to_world[0], expected)
    np.testing.assert_allclose(hwf[0], [ORIGINAL_H, ORIGINAL_W, ORIGINAL_FOCAL])
    np.testing.assert_allclose(bounds[0], [1.5, 4.5])


def test_dataparser_keeps_the_camera_frame_and_rescales_the_focal(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=10, image_size=(30, 20))
    parser = LLFFDataParserConfig(data=root, orientation_method="none", center_method="none").setup()
    train = parser.get_dataparser_outputs("train")
    test = parser.get_dataparser_outputs("test")
    # No reorientation or centring: only the uniform scale moving the cameras into [-1, 1] (here 1/3).
    scale = train.dataparser_scale
    assert scale == pytest.approx(1 / 3)
    first = test.cameras.camera_to_worlds[0]  # image 0 is a test view: camera at (3, 0, 0.5)
    np.testing.assert_allclose(first[:, 3].numpy(), [1.0, 0.0, 0.5 / 3], atol=1e-6)
    # Its axes as built by hand: back points from the origin to the camera (it looks at the origin),
    # right is horizontal, up = back x right.
    back = np.array([3.0, 0.0, 0.5]) / np.hypot(3.0, 0.5)
    np.testing.assert_allclose(first[:, 0].numpy(), [0, 1, 0], atol=1e-6)  # right
    np.testing.assert_allclose(first[:, 1].numpy(), np.cross(back, [0, 1, 0]), atol=1e-6)  # up
    np.testing.assert_allclose(first[:, 2].numpy(), back, atol=1e-6)
    # 600x400 originals read as 30x20: the focal length shrinks by 20.
    assert test.cameras.fx[0].item() == pytest.approx(ORIGINAL_FOCAL * 30 / ORIGINAL_W)
    assert test.cameras.fy[0].item() == pytest.approx(ORIGINAL_FOCAL * 20 / ORIGINAL_H)
    assert (test.cameras.width[0].item(), test.cameras.height[0].item()) == (30, 20)
    assert test.cameras.cx[0].item() == 15 and test.cameras.cy[0].item() == 10
    # The bounds follow the poses' scale: near = 0.9 x 2 / 3, far = 6 / 3.
    assert train.metadata["near_plane"] == pytest.approx(0.9 * 2 / 3)
    assert train.metadata["far_plane"] == pytest.approx(2.0)
    # The box holds what the cameras see between their bounds: the origin they look at.
    aabb = train.scene_box.aabb
    assert torch.all(aabb[0] < 0) and torch.all(aabb[1] > 0)


def test_pixel_ray_through_the_image_centre_hits_the_look_at_point(tmp_path):
    """With nerfstudio's default normalisation (up-orientation, focus centring), every centre ray
    still passes through the point all cameras look at, which becomes the origin."""
    root = make_llff_scene(tmp_path / "scene", count=10, image_size=(30, 20))
    outputs = LLFFDataParserConfig(data=root).setup().get_dataparser_outputs("train")
    rays = outputs.cameras.generate_rays(camera_indices=0, coords=torch.tensor([[10.0, 15.0]]))
    origin, direction = rays.origins[0], rays.directions[0]
    closest = origin - (origin @ direction) * direction  # the ray's point nearest the origin
    assert closest.norm().item() < 1e-4


def test_llffhold_split_is_every_8th_of_the_sorted_names(tmp_path):
    # Names listed out of order and with a gap (like ethiopian-head's missing DSC_0066).
    names = [f"DSC_{i:04d}.JPG" for i in list(range(7, 66)) + [67, 68]]
    assert llff_test_indices(len(names)).tolist() == list(range(0, 61, 8))
    root = make_llff_scene(tmp_path / "scene", count=len(names), image_size=(12, 8), names=names[::-1])
    parser = LLFFDataParserConfig(data=root).setup()
    test = [p.name for p in parser.get_dataparser_outputs("test").image_filenames]
    train = [p.name for p in parser.get_dataparser_outputs("train").image_filenames]
    assert test == sorted(names)[::8] == ["DSC_0007.JPG", "DSC_0015.JPG", "DSC_0023.JPG", "DSC_0031.JPG",
                                           "DSC_0039.JPG", "DSC_0047.JPG", "DSC_0055.JPG", "DSC_0063.JPG"]
    assert sorted(train + test) == sorted(names) and not set(train) & set(test)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 15)), r"expected an \[N, 17\] array .* found shape \[4, 15\]"),
        (np.zeros((17,)), r"found shape \[17\]"),
        (np.full((2, 17), np.nan), "NaN"),
    ],
)
def test_malformed_poses_bounds_is_explained(tmp_path, array, message):
    root = make_llff_scene(tmp_path / "scene", count=2)
    np.save(root / "poses_bounds.npy", array)
    with pytest.raises(DatasetError, match=message):
        validate_llff_scene(root)


def test_bad_bounds_and_unreadable_file_are_explained(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=2)
    rows = np.load(root / "poses_bounds.npy")
    rows[1, 15:] = [3.0, 1.0]
    np.save(root / "poses_bounds.npy", rows)
    with pytest.raises(DatasetError, match="0 < near < far"):
        validate_llff_scene(root)
    (root / "poses_bounds.npy").write_text("not numpy")
    with pytest.raises(DatasetError, match=r"poses_bounds\.npy: cannot be read as a numpy array"):
        validate_llff_scene(root)


def test_count_mismatch_and_missing_pieces_are_named(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=5)
    (root / "images" / "IMG_002.png").unlink()
    with pytest.raises(DatasetError, match=r"5 pose rows but 4 images in .*images.*sorted by name"):
        validate_llff_scene(root)
    with pytest.raises(DatasetError, match=r"5 pose rows but 4 images"):
        LLFFDataParserConfig(data=root).setup().get_dataparser_outputs("train")
    with pytest.raises(DatasetError, match=r"images_4: image folder is missing"):
        validate_llff_scene(root, "images_4")
    (root / "poses_bounds.npy").unlink()
    with pytest.raises(DatasetError, match=r"poses_bounds\.npy: file is missing"):
        validate_llff_scene(root)


def test_quick_profile_picks_the_small_copy_or_says_how_to_make_it(tmp_path):
    root = make_llff_scene(tmp_path / "scene", count=3, image_size=(600, 400))
    with pytest.raises(DatasetError, match=r"(?s)images_4: the quick profile .*--source images --factor 4 --target images_4"):
        resolve_scene(f"llff:{root}", "quick")
    from akdqff_bench.datasets.downscale import downscale_folder

    assert downscale_folder(root / "images", root / "images_4", 4) == 3
    quick, full = resolve_scene(f"llff:{root}", "quick"), resolve_scene(f"llff:{root}", "full")
    assert (quick.settings.images_path, full.settings.images_path) == ("images_4", "images")
    assert Image.open(root / "images_4" / "IMG_000.png").size == (150, 100)
    outputs = quick.dataparser_config().setup().get_dataparser_outputs("test")
    assert outputs.cameras.fx[0].item() == pytest.approx(ORIGINAL_FOCAL * 150 / ORIGINAL_W)
