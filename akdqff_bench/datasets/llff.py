"""A nerfstudio dataparser for LLFF scenes (``poses_bounds.npy`` beside ``images*/`` folders).

LLFF (Mildenhall et al. 2019; the format of NeRF's real scenes) stores one row of 17 numbers per
image, rows in the order of the sorted image names (LLFF's ``imgs2poses`` sorts COLMAP's images
by name). A row is a 3x5 matrix, row-major, followed by two depth bounds:

- columns 0-2: the camera-to-world rotation, its columns being the camera's [down, right, back]
  axes (LLFF's order); nerfstudio (OpenGL) wants [right, up, back], i.e. [col1, -col0, col2];
- column 3: the camera centre;
- column 4: [H, W, focal] of the images COLMAP saw (the original resolution), so the focal length
  of a downscaled folder is ``focal * W_image / W``;
- then ``near, far``: the 0.1 and 99.9 percentile depths of the COLMAP points that camera sees.

Scene normalisation (one choice, applied to the poses, the bounds and the box alike): nerfstudio's
own ``auto_orient_and_center_poses`` (the average camera up becomes +z; the origin moves to the
cameras' focus of attention, the point nearest all optical axes) and its ``auto_scale_poses``
(camera centres scaled into [-1, 1]). NeRF's LLFF loader instead scales so that the nearest bound
is 1/0.75 and keeps COLMAP's orientation; for a capture around an object the focus-centred box is
the natural frame for the box-bounded methods (Plenoxels, AKDQFF). The near/far planes are NeRF's
choice for its non-NDC (360-degree) scenes: ``0.9 * min(near)`` and ``max(far)``, in the scaled
units. The scene box is the axis-aligned box of every camera's view frustum between its own near
and far bound (what COLMAP saw), enlarged by ``box_margin`` about its centre.

Split: LLFF's ``llffhold=8`` as in NeRF's ``run_nerf.py``: ``i_test = np.arange(N)[::8]`` over the
images sorted by name; the rest train. ``val`` is the test split (the harness only evaluates test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Tuple, Type

import numpy as np
import torch
from nerfstudio.cameras import camera_utils
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox

from akdqff_bench.datasets.validate import DatasetError, DatasetMissing, check_image, check_pose, image_files

LLFF_TEST_EVERY = 8
POSES_BOUNDS = "poses_bounds.npy"


def read_poses_bounds(path: Path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera-to-world [N, 3, 4] in OpenGL axes, hwf [N, 3] at the original resolution, bounds [N, 2])."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing (an LLFF scene needs poses_bounds.npy)")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DatasetError(f"{path}: cannot be read as a numpy array ({error})") from None
    if array.ndim != 2 or array.shape[1] != 17 or array.shape[0] == 0:
        raise DatasetError(
            f"{path}: expected an [N, 17] array (a 3x5 pose matrix and near/far bounds per image), found shape {list(array.shape)}"
        )
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{path}: holds NaN or infinite values")
    array = array.astype(np.float64)
    matrices = array[:, :15].reshape(-1, 3, 5)
    down, right, back = matrices[:, :, 0:1], matrices[:, :, 1:2], matrices[:, :, 2:3]
    camera_to_world = np.concatenate([right, -down, back, matrices[:, :, 3:4]], axis=2)
    hwf = matrices[:, :, 4]
    bounds = array[:, 15:17]
    if np.any(hwf <= 0):
        raise DatasetError(f"{path}: the 5th pose column [H, W, focal] must be positive")
    for index, pose in enumerate(camera_to_world):
        check_pose(f"{path}: the pose of image {index}", pose)
    if np.any(bounds[:, 0] <= 0) or np.any(bounds[:, 1] <= bounds[:, 0]):
        raise DatasetError(f"{path}: the near/far bounds (last two columns) must satisfy 0 < near < far")
    return camera_to_world, hwf, bounds


def llff_test_indices(count: int, test_every: int = LLFF_TEST_EVERY) -> np.ndarray:
    """NeRF's ``i_test = np.arange(N)[::llffhold]``: indices into the name-sorted images."""
    return np.arange(count)[::test_every]


@dataclass(frozen=True)
class LLFFGeometry:
    """The normalised scene: poses, planes and box in one frame (see the module docstring)."""

    camera_to_world: np.ndarray  # [N, 3, 4], normalised
    transform: np.ndarray  # [3, 4] applied to the original poses (before scaling)
    scale: float
    near_plane: float
    far_plane: float
    aabb: np.ndarray  # [2, 3]


def normalise_llff(
    camera_to_world: np.ndarray,
    hwf: np.ndarray,
    bounds: np.ndarray,
    orientation_method: Literal["up", "none"] = "up",
    center_method: Literal["focus", "poses", "none"] = "focus",
    near_factor: float = 0.9,
    far_factor: float = 1.0,
    box_margin: float = 1.5,
) -> LLFFGeometry:
    # float32, as nerfstudio's own readers call it (its rotation helper mixes in float32 constants).
    poses = torch.eye(4).repeat(len(camera_to_world), 1, 1)
    poses[:, :3, :] = torch.from_numpy(camera_to_world).float()
    oriented, transform = camera_utils.auto_orient_and_center_poses(poses, method=orientation_method, center_method=center_method)
    oriented = oriented.double().numpy()
    extent = float(np.abs(oriented[:, :3, 3]).max())
    if extent <= 0:
        raise DatasetError("poses_bounds.npy: every camera stands at the same point; the scene cannot be scaled")
    scale = 1.0 / extent
    oriented[:, :3, 3] *= scale
    scaled_bounds = bounds * scale
    # Each frustum's corner and centre rays at its own near and far depth (depth along the axis).
    height, width, focal = hwf[:, 0], hwf[:, 1], hwf[:, 2]
    corners = []
    for u, v in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5)):
        direction_camera = np.stack([(u - 0.5) * width / focal, -(v - 0.5) * height / focal, -np.ones_like(focal)], -1)
        direction_world = np.einsum("nij,nj->ni", oriented[:, :3, :3], direction_camera)
        for column in (0, 1):
            corners.append(oriented[:, :3, 3] + direction_world * scaled_bounds[:, column : column + 1])
    points = np.concatenate(corners)
    low, high = points.min(0), points.max(0)
    centre, half = (low + high) / 2, (high - low) / 2 * box_margin
    return LLFFGeometry(
        camera_to_world=oriented,
        transform=transform.numpy(),
        scale=scale,
        near_plane=float(near_factor * scaled_bounds[:, 0].min()),
        far_plane=float(far_factor * scaled_bounds[:, 1].max()),
        aabb=np.stack([centre - half, centre + half]),
    )


def llff_image_folders(root: Path) -> List[Path]:
    """``images`` and ``images_<N>`` folders of an LLFF scene (LLFF's downscaled copies), finest first."""
    folders = [p for p in Path(root).iterdir() if p.is_dir() and (p.name == "images" or (p.name.startswith("images_") and p.name[7:].isdigit()))]
    return sorted(folders, key=lambda p: 1 if p.name == "images" else int(p.name[7:]))


@dataclass
class LLFFDataParserConfig(DataParserConfig):
    """LLFF scenes: ``poses_bounds.npy`` and an image folder (see :mod:`akdqff_bench.datasets.llff`)."""

    _target: Type = field(default_factory=lambda: LLFFDataParser)
    data: Path = Path()
    """The scene folder (holding poses_bounds.npy)."""
    images_path: Path = Path("images")
    """Image folder relative to ``data``, e.g. ``images_8`` (LLFF's downscaled copy)."""
    test_every: int = LLFF_TEST_EVERY
    """LLFF's llffhold: every n-th image (sorted by name, from the first) is a test view."""
    orientation_method: Literal["up", "none"] = "up"
    center_method: Literal["focus", "poses", "none"] = "focus"
    near_factor: float = 0.9
    far_factor: float = 1.0
    box_margin: float = 1.5
    """The scene box is the box of the cameras' near-to-far frustums, enlarged this much about its centre."""


def read_paired_scene(root: Path, images_path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[Path]]:
    """The poses, hwf and bounds of ``root/poses_bounds.npy`` and the images they pair with (row i is
    the i-th image of ``root/images_path`` sorted by name); DatasetError when the folder is missing
    or the counts differ."""
    camera_to_world, hwf, bounds = read_poses_bounds(root / POSES_BOUNDS)
    image_dir = root / images_path
    if not image_dir.is_dir():
        raise DatasetError(f"{image_dir}: image folder is missing")
    names = image_files(image_dir)
    if len(names) != len(camera_to_world):
        raise DatasetError(
            f"{root / POSES_BOUNDS}: {len(camera_to_world)} pose rows but {len(names)} images in {image_dir}; "
            "LLFF pairs row i with the i-th image sorted by name, so the counts must match"
        )
    return camera_to_world, hwf, bounds, names


class LLFFDataParser(DataParser):
    config: LLFFDataParserConfig

    def geometry(self) -> Tuple[LLFFGeometry, List[Path], Tuple[int, int], np.ndarray]:
        cfg = self.config
        camera_to_world, hwf, bounds, names = read_paired_scene(Path(cfg.data), cfg.images_path)
        from PIL import Image

        with Image.open(names[0]) as first:
            width, height = first.size
        geometry = normalise_llff(
            camera_to_world, hwf, bounds, cfg.orientation_method, cfg.center_method, cfg.near_factor, cfg.far_factor, cfg.box_margin
        )
        return geometry, names, (width, height), hwf

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        geometry, names, (width, height), hwf = self.geometry()
        # The focal length was estimated on the original images: rescale it to the ones read.
        pose_height, pose_width, focal = hwf[:, 0], hwf[:, 1], hwf[:, 2]
        if np.any(np.abs(height / width - pose_height / pose_width) > 0.02):
            raise DatasetError(
                f"{Path(self.config.data) / self.config.images_path}: images are {width}x{height}, poses_bounds.npy says "
                f"{int(pose_width[0])}x{int(pose_height[0])}: the aspect ratios differ"
            )
        fx = focal * width / pose_width
        fy = focal * height / pose_height
        test = llff_test_indices(len(names), self.config.test_every)
        is_test = np.zeros(len(names), dtype=bool)
        is_test[test] = True
        indices = np.flatnonzero(is_test if split in ("val", "test") else ~is_test)
        cameras = Cameras(
            camera_to_worlds=torch.from_numpy(geometry.camera_to_world[indices]).float(),
            fx=torch.from_numpy(fx[indices]).float()[:, None],
            fy=torch.from_numpy(fy[indices]).float()[:, None],
            cx=width / 2.0,
            cy=height / 2.0,
            width=width,
            height=height,
            camera_type=CameraType.PERSPECTIVE,
        )
        return DataparserOutputs(
            image_filenames=[names[i] for i in indices],
            cameras=cameras,
            scene_box=SceneBox(aabb=torch.from_numpy(geometry.aabb).float()),
            dataparser_transform=torch.from_numpy(geometry.transform).float(),
            dataparser_scale=geometry.scale,
            metadata={"near_plane": geometry.near_plane, "far_plane": geometry.far_plane},
        )


def validate_llff_scene(root: Path, images_path: str = "images") -> Dict[str, int]:
    """Check an LLFF folder: poses_bounds.npy [N, 17] and N decodable images of one size in ``images_path``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetMissing(f"{root}: scene folder does not exist")
    _, _, _, names = read_paired_scene(root, images_path)
    image_size = None
    for index, name in enumerate(names):
        image_size = check_image(root / POSES_BOUNDS, index, name, image_size)
    return {"all": len(names)}
