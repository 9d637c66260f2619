"""Check a scene folder before nerfstudio reads it, so bad data fails with a sentence, not a traceback.

Each check raises :class:`DatasetError` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
from PIL import Image

BLENDER_SPLITS = ("train", "val", "test")
# Below this a camera's rotation is taken as singular (a rotation's determinant is 1).
SINGULAR_DETERMINANT = 1e-6


class DatasetError(ValueError):
    """A scene folder is missing, malformed or incomplete."""


class DatasetMissing(DatasetError):
    """A scene folder does not exist (external data that must be put in place by hand)."""


def load_json(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top level, found {type(data).__name__}")
    return data


def check_pose(where: str, camera_to_world: Any) -> None:
    """DatasetError naming ``where`` unless the [3 or 4, 4] camera-to-world matrix is finite and its
    rotation has an inverse (a camera that can be placed and looked through)."""
    matrix = np.asarray(camera_to_world, dtype=np.float64)
    if not np.all(np.isfinite(matrix)):
        raise DatasetError(f"{where} holds NaN or infinite values")
    if abs(np.linalg.det(matrix[:3, :3])) < SINGULAR_DETERMINANT:
        raise DatasetError(f"{where} is singular: its rotation part has no inverse, so no camera can be placed there")


def check_intrinsic(where: str, value: Any, positive: bool = True) -> None:
    """DatasetError naming ``where`` unless ``value`` is a finite number (and above 0 when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (positive and value <= 0):
        raise DatasetError(f"{where} must be a finite{' positive' if positive else ''} number, found {value!r}")


def _check_matrix(path: Path, index: int, matrix: Any) -> None:
    ok = (
        isinstance(matrix, list)
        and len(matrix) in (3, 4)
        and all(isinstance(row, list) and len(row) == 4 and all(isinstance(v, (int, float)) for v in row) for row in matrix)
    )
    if not ok:
        raise DatasetError(f"{path}: frames[{index}].transform_matrix must be a 4x4 (or 3x4) list of numbers")
    check_pose(f"{path}: frames[{index}].transform_matrix", matrix)


def check_image(json_path: Path, index: int, image_path: Path, expected_size: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    if not image_path.is_file():
        raise DatasetError(f"{json_path}: frames[{index}] names {image_path}, which does not exist")
    size = decoded_image_size(image_path)
    if expected_size is not None and size != expected_size:
        raise DatasetError(
            f"{image_path}: image is {size[0]}x{size[1]} but the other images of the scene are "
            f"{expected_size[0]}x{expected_size[1]}"
        )
    return size


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def decoded_image_size(image_path: Path) -> Tuple[int, int]:
    """Decode the whole image (PIL's open() reads only the header, so a truncated file would pass
    and fail later, deep in training, without its name); return (width, height)."""
    try:
        with Image.open(image_path) as image:
            image.load()
            return image.size
    except (OSError, SyntaxError, ValueError) as error:  # PIL raises all three for broken files
        raise DatasetError(f"{image_path}: cannot be read as an image ({error})") from None


def image_files(folder: Path) -> list:
    """The images of a folder (png/jpg/jpeg, any case), sorted by name."""
    return sorted((p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)


def validate_frames(path: Path, data: Dict[str, Any]) -> list:
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: 'frames' must be a non-empty list")
    for index, frame in enumerate(frames):
        if not isinstance(frame, dict) or not isinstance(frame.get("file_path"), str):
            raise DatasetError(f"{path}: frames[{index}] has no 'file_path' string")
        if "transform_matrix" not in frame:
            raise DatasetError(f"{path}: frames[{index}] has no 'transform_matrix'")
        _check_matrix(path, index, frame["transform_matrix"])
    return frames


def validate_blender_scene(root: Path) -> Dict[str, int]:
    """Check a NeRF-synthetic folder as nerfstudio's ``blender-data`` reads it; return frames per split."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetMissing(f"{root}: scene folder does not exist")
    counts = {}
    image_size = None
    for split in BLENDER_SPLITS:
        path = root / f"transforms_{split}.json"
        data = load_json(path)
        angle = data.get("camera_angle_x")
        if not isinstance(angle, (int, float)) or not 0 < angle < 3.14159:
            raise DatasetError(f"{path}: 'camera_angle_x' must be a field of view in radians, found {angle!r}")
        frames = validate_frames(path, data)
        for index, frame in enumerate(frames):
            # blender-data appends ".png" to file_path, as the NeRF-synthetic files are written.
            image_path = root / f"{frame['file_path']}.png"
            image_size = check_image(path, index, image_path, image_size)
        counts[split] = len(frames)
    return counts


NERFSTUDIO_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def validate_nerfstudio_scene(root: Path) -> Dict[str, int]:
    """Check a nerfstudio-data folder (one ``transforms.json`` with intrinsics)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetMissing(f"{root}: scene folder does not exist")
    path = root / "transforms.json"
    data = load_json(path)
    frames = validate_frames(path, data)
    image_size = None
    for index, frame in enumerate(frames):
        missing = [key for key in NERFSTUDIO_INTRINSICS if key not in frame and key not in data]
        if missing:
            raise DatasetError(f"{path}: frames[{index}] has no intrinsics {missing} (neither per frame nor global)")
        for key in NERFSTUDIO_INTRINSICS:
            check_intrinsic(f"{path}: frames[{index}]'s {key}", frame.get(key, data.get(key)), positive=key not in ("cx", "cy"))
        image_size = check_image(path, index, root / frame["file_path"], image_size)
    return {"all": len(frames)}


def validate_colmap_scene(root: Path, colmap_path: str = "sparse/0", images_path: str = "images") -> Dict[str, int]:
    """Check a COLMAP folder in the layout the 3D Gaussian Splatting authors distribute."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetMissing(f"{root}: scene folder does not exist")
    sparse = root / colmap_path
    for name in ("cameras", "images"):
        if not ((sparse / f"{name}.bin").is_file() or (sparse / f"{name}.txt").is_file()):
            raise DatasetError(f"{sparse}: COLMAP model has no {name}.bin or {name}.txt")
    from nerfstudio.data.utils import colmap_parsing_utils as colmap_utils

    ext = ".bin" if (sparse / "images.bin").is_file() else ".txt"
    try:
        images = colmap_utils.read_images_binary(sparse / "images.bin") if ext == ".bin" else colmap_utils.read_images_text(sparse / "images.txt")
    except Exception as error:  # COLMAP readers raise struct/Index errors on truncated files
        raise DatasetError(f"{sparse / ('images' + ext)}: cannot be parsed as a COLMAP images file ({error})") from None
    if not images:
        raise DatasetError(f"{sparse / ('images' + ext)}: lists no images")
    try:
        cameras = (colmap_utils.read_cameras_binary(sparse / "cameras.bin") if (sparse / "cameras.bin").is_file()
                   else colmap_utils.read_cameras_text(sparse / "cameras.txt"))
    except Exception as error:
        raise DatasetError(f"{sparse}: its cameras file cannot be parsed as a COLMAP cameras file ({error})") from None
    for camera in cameras.values():
        for which, value in (("width", camera.width), ("height", camera.height), *((f"param {i}", v) for i, v in enumerate(camera.params[:1]))):
            check_intrinsic(f"{sparse}: camera {camera.id}'s {which}", float(value))
    for image in images.values():
        where = f"{sparse / ('images' + ext)}: {image.name}'s pose"
        if not (np.all(np.isfinite(image.qvec)) and np.all(np.isfinite(image.tvec))):
            raise DatasetError(f"{where} holds NaN or infinite values")
        if np.linalg.norm(image.qvec) < SINGULAR_DETERMINANT:
            raise DatasetError(f"{where} is singular: its rotation quaternion is zero, so no camera can be placed there")
    image_dir = root / images_path
    if not image_dir.is_dir():
        raise DatasetError(f"{image_dir}: image folder is missing")
    image_size = None
    for image in images.values():
        if not (image_dir / image.name).is_file():
            raise DatasetError(f"{sparse / ('images' + ext)}: lists {image.name}, which is not in {image_dir}")
        image_size = check_image(sparse / ("images" + ext), image.id, image_dir / image.name, image_size)
    return {"all": len(images)}

