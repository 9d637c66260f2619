"""What each layout needs besides its images, decided in one place per layout: the image folder
and size, near and far, the scene box, the background, the evaluation protocol and the kind of
scene (``SceneSettings``, from ``blender_settings``, ``llff_settings``, ``colmap_settings`` and
``nerfstudio_settings``), and the 3DGS test split for COLMAP folders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Type

import numpy as np
from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParser, ColmapDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import Nerfstudio, NerfstudioDataParserConfig

from akdqff_bench.datasets.llff import LLFFDataParserConfig, POSES_BOUNDS, llff_image_folders, normalise_llff, read_poses_bounds
from akdqff_bench.datasets.validate import DatasetError, decoded_image_size, image_files, load_json, validate_frames


LAYOUTS = ("blender", "colmap", "nerfstudio", "llff")

TNT_TEST_EVERY = 8
TNT_PROTOCOL = "3DGS (Kerbl et al. 2023): COLMAP poses, images sorted by name, every 8th image is a test view"
SYNTHETIC_PROTOCOL = "NeRF-synthetic: transforms_test.json views, RGBA composited on white"
_NERFSTUDIO_POSES = "nerfstudio-data: transforms.json poses (nerfstudio's up-orientation, centred, scaled into [-1, 1]), "
NERFSTUDIO_PROTOCOL = _NERFSTUDIO_POSES + "frames sorted by file name, every 8th (index 0, 8, ...) is a test view; full images"
NERFSTUDIO_LISTED_PROTOCOL = _NERFSTUDIO_POSES + "the split its train_filenames and test_filenames list; full images"
COLMAP_PROTOCOL = TNT_PROTOCOL + "; full images"
LLFF_PROTOCOL = (
    "LLFF (NeRF's real scenes): poses_bounds.npy, images sorted by name, every 8th (llffhold=8: index 0, 8, 16, ...) "
    "is a test view; full images, background included"
)

QUICK_MAX_IMAGE_SIDE = 160
"""The quick profile reads real photographs at most this many pixels on their long side (its
synthetic scene is 100x100): LLFF's ``images_<N>`` copies, nerfstudio's ``downscale_factor``."""

REAL_BACKGROUND = "black"
"""What methods render where nothing is, on photographs (NeRF's real scenes: no white background).
Ground truth is the full photograph: the background of the room is part of every test image."""

# COLMAP / nerfstudio-data poses carry no depth bounds: nerfstudio scales the cameras into [-1, 1]
# and its readers' scene box is that cube; these planes start just off the camera and reach three
# box widths (the value the full profile used for Tanks & Temples).
NORMALISED_NEAR, NORMALISED_FAR = 0.05, 6.0

BLENDER_QUICK = "quick"
"""A Blender scene's copy for the quick profile (``downscale --blender``): images at most
QUICK_MAX_IMAGE_SIDE on a side, every BLENDER_QUICK_TEST_EVERY-th view of the test split."""
BLENDER_QUICK_TEST_EVERY = 8
BLENDER_QUICK_META = "quick.json"  # how downscale --blender made the quick copy

FORWARD_FACING_MAX_DEGREES = 30.0
"""A capture is forward-facing when every camera looks within this angle of the cameras' mean
viewing direction (LLFF's forward-facing scenes); captures around an object spread far wider."""

# Settings only some methods have a field for: a method without one has nothing to set.
OPTIONAL_MODEL_FIELDS = ("capture",)


@dataclass
class ThreeDGSColmapDataParserConfig(ColmapDataParserConfig):
    """nerfstudio's COLMAP reader with the 3DGS test split (sorted by name, every 8th is test).

    nerfstudio's own ``interval`` mode takes every 8th image in COLMAP's image-id order, which is
    not the order 3DGS uses, so the test views would differ from the published protocol.
    """

    _target: Type = field(default_factory=lambda: ThreeDGSColmapDataParser)
    colmap_path: Path = Path("sparse/0")
    load_3D_points: bool = False


class ThreeDGSColmapDataParser(ColmapDataParser):
    config: ThreeDGSColmapDataParserConfig

    def _get_image_indices(self, image_filenames, split):
        order = np.argsort([Path(name).name for name in image_filenames], kind="stable")
        is_test = np.zeros(len(image_filenames), dtype=bool)
        is_test[order[::TNT_TEST_EVERY]] = True
        return np.flatnonzero(is_test if split in ("val", "test") else ~is_test).astype(np.int32)


@dataclass
class ListedSplitDataParserConfig(NerfstudioDataParserConfig):
    """nerfstudio's reader for ``transforms.json``, which may list its split (``train_filenames``,
    ``test_filenames``). nerfstudio asks for a ``val`` split while it trains and refuses a file that
    lists train and test only; the suite scores the test split, so there ``val`` is the test list."""

    _target: Type = field(default_factory=lambda: ListedSplitDataParser)


class ListedSplitDataParser(Nerfstudio):
    config: ListedSplitDataParserConfig

    def _generate_dataparser_outputs(self, split="train"):
        transforms = self.config.data if self.config.data.suffix == ".json" else self.config.data / "transforms.json"
        meta = load_json(transforms)
        if split == "val" and "val_filenames" not in meta and "test_filenames" in meta:
            split = "test"
        return super()._generate_dataparser_outputs(split)


@dataclass(frozen=True)
class SceneSettings:
    """Everything a method must know about a scene beyond its images, decided in one place per
    layout (:func:`blender_settings`, :func:`llff_settings`, :func:`colmap_settings`,
    :func:`nerfstudio_settings`) and written into each run's record."""

    layout: str
    protocol: str
    images_path: str  # the image folder read (relative to the scene)
    downscale_factor: int  # nerfstudio's downscale_factor (1 = as stored in images_path)
    near_plane: float
    far_plane: float
    scene_box: list  # [[x, y, z], [x, y, z]] in the dataparser's (normalised) frame
    background_color: str
    geometry_source: str  # where near/far and the box come from
    override_models: bool  # False: the methods' own defaults already are these settings (Blender)
    # The kind of scene (bench_base.spec.SCENE_KINDS): "synthetic" (rendered, object on a background
    # colour), "real" (photographs around an object) or "forward-facing"; a method whose paper sets
    # itself up differently for them (Plenoxels' regularisation) takes it.
    capture: str = "real"

    def model_overrides(self, model_config: Any) -> Dict[str, Any]:
        """Dotted overrides (``pipeline.model.*``) that put these settings into a method's model
        config; fields a method does not have are left out (see :meth:`not_applicable`)."""
        if not self.override_models:
            return {}
        wanted = self._model_fields()
        return {f"pipeline.model.{key}": value for key, value in wanted.items() if hasattr(model_config, key)}

    def not_applicable(self, model_config: Any) -> List[str]:
        if not self.override_models:
            return []
        return [key for key in self._model_fields() if key not in OPTIONAL_MODEL_FIELDS and not hasattr(model_config, key)]

    def _model_fields(self) -> Dict[str, Any]:
        # The scene box reaches every method through the dataparser; near/far through the collider
        # (NeRF, Block-NeRF, Plenoxels clip their rays to it; AKDQFF's collider is its box); the
        # capture to Plenoxels, whose regularisation follows svox2's config for the kind of scene.
        return {
            "collider_params": {"near_plane": self.near_plane, "far_plane": self.far_plane},
            "background_color": self.background_color,
            "capture": self.capture,
        }

    def as_record(self) -> Dict[str, Any]:
        return asdict(self)


def blender_settings(path: Path, images_path: str = ".") -> SceneSettings:
    # nerfstudio's blender-data reader and the methods' defaults: NeRF's synthetic setup.
    protocol = SYNTHETIC_PROTOCOL
    if images_path == BLENDER_QUICK and (path / BLENDER_QUICK / BLENDER_QUICK_META).is_file():
        meta = load_json(path / BLENDER_QUICK / BLENDER_QUICK_META)
        protocol += (f"; the quick copy: images downscaled {meta.get('factor')}x, every {meta.get('test_every')}th view of "
                     "the test split")
    return SceneSettings(
        "blender", protocol, images_path, 1, 2.0, 6.0, [[-1.5] * 3, [1.5] * 3], "white",
        "NeRF-synthetic convention (near 2, far 6, box +-1.5; the methods' defaults)", override_models=False,
        capture="synthetic",
    )


def blender_first_image(path: Path) -> Path:
    """The first training frame's image of a Blender scene (blender-data appends ".png")."""
    transforms = path / "transforms_train.json"
    frames = validate_frames(transforms, load_json(transforms))
    return path / f"{frames[0]['file_path']}.png"


def looks_one_way(camera_to_world: np.ndarray, max_degrees: float = FORWARD_FACING_MAX_DEGREES) -> bool:
    """Whether every camera ([N, 3, 4] camera-to-world, OpenGL axes: it looks along -z) looks within
    ``max_degrees`` of the cameras' mean viewing direction: a forward-facing capture."""
    directions = -np.asarray(camera_to_world, dtype=np.float64)[:, :3, 2]
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    mean = directions.mean(axis=0)
    if np.linalg.norm(mean) < 1e-9:
        return False
    mean /= np.linalg.norm(mean)
    return bool(np.all(directions @ mean >= np.cos(np.radians(max_degrees))))


def photograph_kind(camera_to_world: np.ndarray) -> str:
    return "forward-facing" if looks_one_way(camera_to_world) else "real"


def layout_camera_to_world(layout: str, path: Path) -> np.ndarray:
    """The cameras' [N, 3, 4] camera-to-world matrices (OpenGL axes) as the layout stores them."""
    if layout == "llff":
        return read_poses_bounds(path / POSES_BOUNDS)[0]
    if layout == "nerfstudio":
        transforms = path / "transforms.json"
        frames = validate_frames(transforms, load_json(transforms))
        return np.array([frame["transform_matrix"] for frame in frames], dtype=np.float64)[:, :3, :4]
    from nerfstudio.data.utils.colmap_parsing_utils import qvec2rotmat, read_images_binary, read_images_text

    sparse = path / "sparse" / "0"
    images = read_images_binary(sparse / "images.bin") if (sparse / "images.bin").is_file() else read_images_text(sparse / "images.txt")
    matrices = []
    for image in images.values():
        rotation = qvec2rotmat(image.qvec)  # world -> camera, OpenCV axes (z forward)
        camera_to_world = np.eye(4)[:3]
        camera_to_world[:, :3] = rotation.T @ np.diag([1.0, -1.0, -1.0])  # OpenCV -> OpenGL camera axes
        camera_to_world[:, 3] = -rotation.T @ image.tvec
        matrices.append(camera_to_world)
    return np.array(matrices)


def quick_factor(size: tuple) -> int:
    factor = 1
    while max(size) / factor > QUICK_MAX_IMAGE_SIDE:
        factor *= 2
    return factor


def _downscale_missing(path: Path, source: str, factor: int, target: str) -> DatasetError:
    return DatasetError(
        f"{path / target}: the quick profile reads images at most {QUICK_MAX_IMAGE_SIDE} px on a side, but this folder "
        f"is missing. Make it with\n  python -m akdqff_bench.datasets.downscale {path} --source {source} --factor {factor} --target {target}"
    )


def llff_settings(path: Path, variant: str) -> SceneSettings:
    """The finest ``images*`` folder (full profile), or the finest one at most QUICK_MAX_IMAGE_SIDE
    pixels on a side (quick); near/far and box from ``poses_bounds.npy`` (see ``llff.py``)."""
    folders = llff_image_folders(path)
    if not folders:
        raise DatasetError(f"{path}: an LLFF scene needs an images/ (or images_<N>/) folder beside {POSES_BOUNDS}")
    sizes = {}
    for folder in folders:
        names = image_files(folder)
        if not names:
            raise DatasetError(f"{folder}: holds no .png/.jpg images")
        sizes[folder] = decoded_image_size(names[0])
    chosen = folders[0]
    if variant == "quick":
        fitting = [f for f in folders if max(sizes[f]) <= QUICK_MAX_IMAGE_SIDE]
        if not fitting:
            finest = folders[0]
            factor = quick_factor(sizes[finest])
            base = 1 if finest.name == "images" else int(finest.name[7:])
            raise _downscale_missing(path, finest.name, factor, f"images_{base * factor}")
        chosen = fitting[0]
    camera_to_world, hwf, bounds = read_poses_bounds(path / POSES_BOUNDS)
    if len(camera_to_world) < 2:
        raise DatasetError(f"{path / POSES_BOUNDS}: holds the pose of {len(camera_to_world)} image; a scene needs at least two "
                           "(every 8th image is a test view, the others are trained on)")
    defaults = LLFFDataParserConfig()
    geometry = normalise_llff(camera_to_world, hwf, bounds, defaults.orientation_method, defaults.center_method,
                              defaults.near_factor, defaults.far_factor, defaults.box_margin)
    return SceneSettings(
        "llff", LLFF_PROTOCOL, chosen.name, 1, round(geometry.near_plane, 6), round(geometry.far_plane, 6),
        np.round(geometry.aabb, 6).tolist(), REAL_BACKGROUND,
        f"poses_bounds.npy: near = {defaults.near_factor} x min(near bound), far = {defaults.far_factor} x max(far bound), "
        f"box = the cameras' near-to-far frustums x {defaults.box_margin}, after nerfstudio's up-orientation, "
        "focus centring and scaling of the cameras into [-1, 1]",
        override_models=True, capture=photograph_kind(camera_to_world),
    )


def _normalised_settings(layout: str, protocol: str, path: Path, images_path: str, first_image: Path, variant: str) -> SceneSettings:
    factor = quick_factor(decoded_image_size(first_image)) if variant == "quick" else 1
    if factor > 1 and not (path / f"{images_path}_{factor}").is_dir():
        raise _downscale_missing(path, images_path, factor, f"{images_path}_{factor}")
    return SceneSettings(
        layout, protocol, images_path, factor, NORMALISED_NEAR, NORMALISED_FAR, [[-1.0] * 3, [1.0] * 3], REAL_BACKGROUND,
        "fixed: the poses carry no depth bounds; nerfstudio scales the cameras into [-1, 1] and its box is that cube",
        override_models=True, capture=photograph_kind(layout_camera_to_world(layout, path)),
    )


def colmap_settings(path: Path, variant: str, protocol: str = COLMAP_PROTOCOL) -> SceneSettings:
    names = image_files(path / "images") if (path / "images").is_dir() else []
    if not names:
        raise DatasetError(f"{path / 'images'}: image folder is missing or holds no .png/.jpg images")
    return _normalised_settings("colmap", protocol, path, "images", names[0], variant)


def nerfstudio_settings(path: Path, variant: str) -> SceneSettings:
    transforms = path / "transforms.json"
    meta = load_json(transforms)
    first = sorted(frame["file_path"] for frame in validate_frames(transforms, meta))[0]
    if not (path / first).is_file():
        raise DatasetError(f"{transforms}: names {path / first}, which does not exist")
    protocol = NERFSTUDIO_PROTOCOL
    # A transforms.json that lists its split is read with that split (nerfstudio's rule): the
    # record says so, and a split with no view is refused before training.
    if any(f"{split}_filenames" in meta for split in ("train", "val", "test")):
        for split in ("train", "test"):
            names = meta.get(f"{split}_filenames")
            if not isinstance(names, list) or not names:
                raise DatasetError(f"{transforms}: lists its split but its {split}_filenames {'is empty' if names == [] else 'is missing'}: "
                                   f"the {split} split would have no view")
        protocol = NERFSTUDIO_LISTED_PROTOCOL
    # nerfstudio reads a downscaled frame from images_<N>/<file name> beside transforms.json.
    return _normalised_settings("nerfstudio", protocol, path, "images", path / first, variant)
