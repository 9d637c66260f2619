"""The scenes the benchmark knows, where they live, and how nerfstudio reads them.

- ``synthetic-bed``: made by this project (``akdqff_bench.datasets.synthetic_bed``); the quick
  variant is committed under ``data/synthetic-bed/quick``.
- ``nerf-synthetic-mic``: NeRF-synthetic's ``mic`` (Blender layout, 800x800, the official split);
  its quick copy (100x100) is committed under ``data/nerf-synthetic-mic/quick``, the 800x800
  release is read from ``data/nerf-synthetic-mic`` when put there (88 MB: not committed).
- ``ethiopian-head``, ``mary-rose``: real captures around an object (66 and 69 photographs, LLFF
  poses), committed under ``data/<name>`` (``images_8`` for ``full``, ``images_32`` for ``quick``).
- ``blender:PATH``, ``colmap:PATH``, ``nerfstudio:PATH``, ``llff:PATH``: any scene folder in that
  layout. What each layout needs besides its images (image folder and size, near/far, scene box,
  background, evaluation protocol, the kind of scene) is decided by one ``*_settings`` function per
  layout and recorded with every run (``SceneSettings``). A Blender scene larger than the quick
  profile's images is read from its quick copy ``PATH/quick`` (``downscale --blender``).
- ``tanks-temples/<scene>``: real captures, which cannot be downloaded here. They are read by path
  from ``<data root>/tanks-temples/<scene>`` in the COLMAP layout the 3D Gaussian Splatting authors
  distribute (``images/``, ``sparse/0/``) or in nerfstudio-data layout (``transforms.json``), with
  the 3DGS evaluation protocol: images sorted by name, every 8th (index 0, 8, 16, ...) is a test view.

Kinds of scene (``scene_kind``; a method's settings are chosen per kind, ``bench_base.spec``):
``synthetic`` (renderings of an object on a background colour: the Blender layout), ``real``
(photographs around an object) and ``forward-facing`` (photographs whose cameras all look one way,
told from the poses: ``looks_one_way``).

The data root is ``data/`` in the repository unless ``AKDQFF_BENCH_DATA`` says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Type

import numpy as np
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParser, ColmapDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from akdqff_bench.records import scene_file_id
from akdqff_bench.datasets.validate import (
    DatasetError,
    DatasetMissing,
    decoded_image_size,
    image_files,
    load_json,
    validate_frames,
    validate_blender_scene,
    validate_colmap_scene,
    validate_llff_scene,
    validate_nerfstudio_scene,
)

from akdqff_bench.paths import REPO_ROOT  # noqa: E402
TNT_TEST_EVERY = 8
TNT_PROTOCOL = "3DGS (Kerbl et al. 2023): COLMAP poses, images sorted by name, every 8th image is a test view"
SYNTHETIC_PROTOCOL = "NeRF-synthetic: transforms_test.json views, RGBA composited on white"
TNT_HELP = (
    "Tanks and Temples cannot be downloaded at run time. Put the scene in {path} in either layout:\n"
    "  - COLMAP, as distributed with 3D Gaussian Splatting (the 'tandt_db' archive from the 3DGS project page,\n"
    "    repo-sam.inria.fr/fungraph/3d-gaussian-splatting): {path}/images/*.jpg and {path}/sparse/0/*.bin\n"
    "  - nerfstudio-data: {path}/transforms.json beside its images\n"
    "or set AKDQFF_BENCH_DATA to a folder that holds tanks-temples/<scene>."
)

__all__ = [
    "DatasetError", "DatasetMissing", "SceneSettings", "SceneSpec", "data_root", "resolve_scene", "known_scene_names", "scene_file_id", "scene_identity",
]


def data_root() -> Path:
    return Path(os.environ.get("AKDQFF_BENCH_DATA", REPO_ROOT / "data"))


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

LAYOUTS = ("blender", "colmap", "nerfstudio", "llff")
# dataset -> its one scene; the Blender-layout ones are renderings, the others photographs
NAMED_SCENES = {"synthetic-bed": "bed", "nerf-synthetic-mic": "mic", "ethiopian-head": "head", "mary-rose": "tankard"}
SYNTHETIC_NAMED_SCENES = ("synthetic-bed", "nerf-synthetic-mic")
BLENDER_QUICK = "quick"
"""A Blender scene's copy for the quick profile (``downscale --blender``): images at most
QUICK_MAX_IMAGE_SIDE on a side, every BLENDER_QUICK_TEST_EVERY-th view of the test split."""
BLENDER_QUICK_TEST_EVERY = 8
FORWARD_FACING_MAX_DEGREES = 30.0
"""A capture is forward-facing when every camera looks within this angle of the cameras' mean
viewing direction (LLFF's forward-facing scenes); captures around an object spread far wider."""
NERFSTUDIO_PROTOCOL = (
    "nerfstudio-data: transforms.json poses (nerfstudio's up-orientation, centred, scaled into [-1, 1]), frames sorted "
    "by file name, every 8th (index 0, 8, ...) is a test view; full images"
)
COLMAP_PROTOCOL = TNT_PROTOCOL + "; full images"
LLFF_PROTOCOL = (
    "LLFF (NeRF's real scenes): poses_bounds.npy, images sorted by name, every 8th (llffhold=8: index 0, 8, 16, ...) "
    "is a test view; full images, background included"
)


# Settings only some methods have a field for: a method without one has nothing to set.
OPTIONAL_MODEL_FIELDS = ("capture",)


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


BLENDER_QUICK_META = "quick.json"  # how downscale --blender made the quick copy


def blender_first_image(path: Path) -> Path:
    """The first training frame's image of a Blender scene (blender-data appends ".png")."""
    transforms = path / "transforms_train.json"
    frames = validate_frames(transforms, load_json(transforms))
    return path / f"{frames[0]['file_path']}.png"


def _blender_scene(name: str, path: Path, variant: str) -> "SceneSpec":
    """A Blender scene as ``variant`` reads it: the quick profile reads its quick copy
    (``PATH/quick``) where there is one; a scene larger than QUICK_MAX_IMAGE_SIDE without one is
    refused with the command that makes it; a smaller one is read as it is."""
    if variant == "quick":
        if (path / BLENDER_QUICK / BLENDER_QUICK_META).is_file():
            return SceneSpec(name, *scene_identity(name), path / BLENDER_QUICK, "blender", blender_settings(path, BLENDER_QUICK))
        first = blender_first_image(path)
        if first.is_file() and max(decoded_image_size(first)) > QUICK_MAX_IMAGE_SIDE:
            factor = _quick_factor(decoded_image_size(first))
            raise DatasetError(
                f"{path / BLENDER_QUICK}: the quick profile reads images at most {QUICK_MAX_IMAGE_SIDE} px on a side "
                f"and this scene's are {decoded_image_size(first)[0]} px, but its quick copy is missing. Make it with\n"
                f"  python -m akdqff_bench.datasets.downscale {path} --blender --factor {factor}")
    return SceneSpec(name, *scene_identity(name), path, "blender", blender_settings(path))


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


def _photograph_kind(camera_to_world: np.ndarray) -> str:
    return "forward-facing" if looks_one_way(camera_to_world) else "real"


def _layout_camera_to_world(layout: str, path: Path) -> np.ndarray:
    """The cameras' [N, 3, 4] camera-to-world matrices (OpenGL axes) as the layout stores them."""
    if layout == "llff":
        from akdqff_bench.datasets.llff import POSES_BOUNDS, read_poses_bounds

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


def _quick_factor(size: tuple) -> int:
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
    from akdqff_bench.datasets.llff import LLFFDataParserConfig, POSES_BOUNDS, llff_image_folders, normalise_llff, read_poses_bounds

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
            factor = _quick_factor(sizes[finest])
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
        override_models=True, capture=_photograph_kind(camera_to_world),
    )


def _normalised_settings(layout: str, protocol: str, path: Path, images_path: str, first_image: Path, variant: str) -> SceneSettings:
    factor = _quick_factor(decoded_image_size(first_image)) if variant == "quick" else 1
    if factor > 1 and not (path / f"{images_path}_{factor}").is_dir():
        raise _downscale_missing(path, images_path, factor, f"{images_path}_{factor}")
    return SceneSettings(
        layout, protocol, images_path, factor, NORMALISED_NEAR, NORMALISED_FAR, [[-1.0] * 3, [1.0] * 3], REAL_BACKGROUND,
        "fixed: the poses carry no depth bounds; nerfstudio scales the cameras into [-1, 1] and its box is that cube",
        override_models=True, capture=_photograph_kind(_layout_camera_to_world(layout, path)),
    )


def colmap_settings(path: Path, variant: str, protocol: str = COLMAP_PROTOCOL) -> SceneSettings:
    names = image_files(path / "images") if (path / "images").is_dir() else []
    if not names:
        raise DatasetError(f"{path / 'images'}: image folder is missing or holds no .png/.jpg images")
    return _normalised_settings("colmap", protocol, path, "images", names[0], variant)


def nerfstudio_settings(path: Path, variant: str) -> SceneSettings:
    transforms = path / "transforms.json"
    first = sorted(frame["file_path"] for frame in validate_frames(transforms, load_json(transforms)))[0]
    if not (path / first).is_file():
        raise DatasetError(f"{transforms}: names {path / first}, which does not exist")
    # nerfstudio reads a downscaled frame from images_<N>/<file name> beside transforms.json.
    return _normalised_settings("nerfstudio", NERFSTUDIO_PROTOCOL, path, "images", path / first, variant)


@dataclass(frozen=True)
class SceneSpec:
    name: str  # as the grid names it: "synthetic-bed", "tanks-temples/truck", "llff:/data/fern"
    dataset: str  # "synthetic-bed" | "tanks-temples" | "ethiopian-head" | the layout, for layout:PATH
    scene: str  # "bed", "truck", "head", the folder's name for layout:PATH
    path: Path
    layout: str  # "blender" | "colmap" | "nerfstudio" | "llff"
    settings: SceneSettings

    @property
    def protocol(self) -> str:
        return self.settings.protocol

    def dataparser_config(self) -> DataParserConfig:
        settings = self.settings
        if self.layout == "blender":
            return BlenderDataParserConfig(data=self.path)
        if self.layout == "llff":
            from akdqff_bench.datasets.llff import LLFFDataParserConfig

            return LLFFDataParserConfig(data=self.path, images_path=Path(settings.images_path))
        if self.layout == "colmap":
            return ThreeDGSColmapDataParserConfig(data=self.path, downscale_factor=settings.downscale_factor)
        return NerfstudioDataParserConfig(
            data=self.path, eval_mode="interval", eval_interval=TNT_TEST_EVERY, downscale_factor=settings.downscale_factor
        )

    def validate(self) -> dict:
        if self.layout == "blender":
            return validate_blender_scene(self.path)
        if self.layout == "llff":
            return validate_llff_scene(self.path, self.settings.images_path)
        factor = self.settings.downscale_factor
        if self.layout == "colmap":
            counts = validate_colmap_scene(self.path)
            if factor > 1:  # and the downscaled copy nerfstudio reads: images_<N>/<same names>
                validate_colmap_scene(self.path, images_path=f"images_{factor}")
            return counts
        counts = validate_nerfstudio_scene(self.path)
        if factor > 1:  # nerfstudio reads images_<N>/<file name> beside transforms.json
            image_size = None
            for index, frame in enumerate(load_json(self.path / "transforms.json")["frames"]):
                small = self.path / f"images_{factor}" / Path(frame["file_path"]).name
                if not small.is_file():
                    raise DatasetError(f"{small}: the downscaled copy of frames[{index}] is missing (make images_{factor} again)")
                size = decoded_image_size(small)
                if image_size is not None and size != image_size:
                    raise DatasetError(f"{small}: image is {size[0]}x{size[1]}, the other downscaled images are {image_size[0]}x{image_size[1]}")
                image_size = size
        return counts

    def file_id(self) -> str:
        """A file-name-safe id of the scene (records.run_id builds the same one from the name)."""
        return scene_file_id(self.name)

    def fingerprint(self) -> Dict[str, Any]:
        """What a run of this scene reads, as its dataparser gives it: the split actually used (the
        file names of the train and test views, relative to the scene) and one sha256 over every
        one of those images' bytes and the cameras' poses, so a record can tell whether the data it
        was measured on is still the data (a changed transforms.json file list changes the split
        and the hash)."""
        import hashlib

        digest, split = hashlib.sha256(), {}
        parser = self.dataparser_config().setup()
        for name in ("train", "test"):
            outputs = parser.get_dataparser_outputs(split=name)
            files = []
            for image in outputs.image_filenames:
                image = Path(image)
                relative = image.relative_to(self.path).as_posix() if image.is_relative_to(self.path) else image.as_posix()
                files.append(check_utf8(relative, f"{self.name}: the image file name"))
                digest.update(f"{name}\0{relative}\0".encode("utf-8", "surrogateescape"))
                digest.update(image.read_bytes())
            digest.update(np.round(outputs.cameras.camera_to_worlds.numpy().astype(np.float64), 6).tobytes())
            split[name] = files
        return {"sha256": digest.hexdigest(), "split": split}


def scene_identity(name: str) -> Tuple[str, str]:
    """(dataset, scene) of a scene name, without touching the disk (records name absent scenes too):
    ``tanks-temples/truck`` -> (tanks-temples, truck), ``llff:data/fern`` -> (llff, fern)."""
    layout, sep, rest = name.partition(":")
    if sep and layout in LAYOUTS:
        return layout, Path(rest).expanduser().resolve().name
    if name in NAMED_SCENES:
        return name, NAMED_SCENES[name]
    dataset, _, scene = name.partition("/")
    return dataset, scene or dataset


def scene_kind(name: str) -> str:
    """The scene's kind (bench_base.spec.SCENE_KINDS: which of a method's settings apply), as its
    SceneSettings.capture says: a Blender-layout scene is a rendering ("synthetic"); photographs
    are "forward-facing" when every camera looks one way (``looks_one_way``, read from the poses of
    a ``layout:PATH`` scene), else "real". A named scene's kind is known without the disk; a
    ``layout:PATH`` scene whose poses cannot be read is "real" (its run reports why it cannot start)."""
    layout, sep, rest = name.partition(":")
    if sep and layout in LAYOUTS:
        if layout == "blender":
            return "synthetic"
        try:
            return _photograph_kind(_layout_camera_to_world(layout, Path(rest).expanduser().resolve()))
        except (DatasetError, OSError, ValueError, KeyError):
            return "real"
    return "synthetic" if name in SYNTHETIC_NAMED_SCENES else "real"


def check_utf8(text: str, what: str) -> str:
    """``text``, or DatasetError when it is not valid UTF-8 (a name from the file system or the
    command line that Python holds with surrogate escapes): records, notebooks and pages are UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        raise DatasetError(f"{what} {raw!r} is not valid UTF-8; rename it (records, notebooks and pages are written in UTF-8)") from None
    return text


def checked_scene_name(name: str) -> str:
    """``name`` as every later step takes it, or DatasetError before anything runs: a named scene
    (whose data may still be absent: that run is recorded as skipped), or ``layout:PATH`` with the
    PATH resolved once, against the caller's working directory."""
    check_utf8(name, "the scene name")
    layout, sep, rest = name.partition(":")
    if sep:
        if layout not in LAYOUTS:
            raise DatasetError(f"unknown layout {layout!r} in {name!r}; give one of {', '.join(f'{l}:PATH' for l in LAYOUTS)}")
        if not rest:
            raise DatasetError(f"{name!r}: give a folder after '{layout}:', e.g. {layout}:data/my-scene")
        return f"{layout}:{Path(rest).expanduser().resolve()}"
    if name in NAMED_SCENES or (name.startswith("tanks-temples/") and name.count("/") == 1 and name.split("/")[1]):
        return name
    raise DatasetError(f"unknown scene {name!r}; known scenes: {', '.join(known_scene_names())}")


def known_scene_names() -> list:
    return list(NAMED_SCENES) + ["tanks-temples/<scene>"] + [f"{layout}:PATH" for layout in LAYOUTS]


def _by_path(layout: str, raw_path: str, variant: str, name: str) -> SceneSpec:
    if not raw_path:
        raise DatasetError(f"{name!r}: give a folder after '{layout}:', e.g. {layout}:data/my-scene")
    path = Path(raw_path).expanduser().resolve()
    if not path.is_dir():
        raise DatasetError(f"{path}: scene folder does not exist (from {name!r})")
    if layout == "blender":
        return _blender_scene(name, path, variant)
    if layout == "llff":
        settings = llff_settings(path, variant)
    elif layout == "colmap":
        settings = colmap_settings(path, variant)
    else:
        settings = nerfstudio_settings(path, variant)
    return SceneSpec(name, *scene_identity(name), path, layout, settings)


def resolve_scene(name: str, variant: str = "quick", root: Path | None = None) -> SceneSpec:
    """Find scene ``name`` on disk; raise DatasetMissing (with where to get it) or DatasetError.

    ``variant`` is the profile's data size: ``quick`` reads synthetic-bed/quick and real
    photographs at most QUICK_MAX_IMAGE_SIDE pixels on a side; anything else (``full``) the
    finest images there are. ``name`` is a named scene or ``<layout>:PATH`` with a layout of
    LAYOUTS (PATH relative to the working directory)."""
    root = Path(root) if root is not None else data_root()
    layout, sep, rest = name.partition(":")
    if sep and layout in LAYOUTS:
        return _by_path(layout, rest, variant, name)
    if sep:
        raise DatasetError(f"unknown layout {layout!r} in {name!r}; give one of {', '.join(f'{l}:PATH' for l in LAYOUTS)}")
    if name == "synthetic-bed":
        path = root / "synthetic-bed" / variant
        if not path.is_dir():
            raise DatasetMissing(
                f"{path}: synthetic-bed ({variant}) has not been generated. Make it with\n"
                f"  python -m akdqff_bench.datasets.synthetic_bed --variant {variant} --out {path}\n"
                "(needs the 'data' extra: pip install -e '.[data]')"
            )
        return SceneSpec(name, *scene_identity(name), path, "blender", blender_settings(path))
    if name in ("ethiopian-head", "mary-rose"):
        path = root / name
        if not path.is_dir():
            raise DatasetMissing(f"{path}: {name} is committed in the repository under data/{name}; restore it from git")
        return SceneSpec(name, *scene_identity(name), path, "llff", llff_settings(path, variant))
    if name == "nerf-synthetic-mic":
        path = root / name
        if variant != "quick" and not blender_first_image(path).is_file():
            raise DatasetMissing(
                f"{path}: the 800x800 release of mic is not committed (88 MB; only its quick copy, {path / BLENDER_QUICK}, is). "
                f"Copy the release's train/, val/ and test/ folders into {path} (see its SOURCE.md), or give blender:PATH")
        return _blender_scene(name, path, variant)
    if name.startswith("tanks-temples/") and name.count("/") == 1 and name.split("/")[1]:
        scene = name.split("/")[1]
        path = root / "tanks-temples" / scene
        if not path.is_dir():
            raise DatasetMissing(f"{path}: Tanks and Temples scene '{scene}' is not there.\n" + TNT_HELP.format(path=path))
        if (path / "transforms.json").is_file():
            settings = nerfstudio_settings(path, variant)
        elif (path / "sparse" / "0").is_dir():
            settings = colmap_settings(path, variant)
        else:
            raise DatasetError(f"{path}: neither sparse/0/ (COLMAP) nor transforms.json (nerfstudio-data) is there.\n" + TNT_HELP.format(path=path))
        return SceneSpec(name, *scene_identity(name), path, settings.layout, settings)
    raise DatasetError(f"unknown scene {name!r}; known scenes: {', '.join(known_scene_names())}")
