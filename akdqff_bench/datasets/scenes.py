"""The scenes the benchmark knows by name, scenes given by path (``layout:PATH``), and how each is
found on disk and read (``SceneSpec``, from ``resolve_scene``)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

from akdqff_bench.datasets.layouts import (BLENDER_QUICK, BLENDER_QUICK_META, LAYOUTS, QUICK_MAX_IMAGE_SIDE, TNT_TEST_EVERY,
                                           ListedSplitDataParserConfig, SceneSettings, ThreeDGSColmapDataParserConfig, blender_first_image,
                                           blender_settings, colmap_settings, layout_camera_to_world, llff_settings, nerfstudio_settings,
                                           photograph_kind, quick_factor)
from akdqff_bench.datasets.llff import POSES_BOUNDS, LLFFDataParserConfig, validate_llff_scene
from akdqff_bench.datasets.validate import (DatasetError, DatasetMissing, decoded_image_size, load_json, validate_blender_scene,
                                            validate_colmap_scene, validate_nerfstudio_scene)
from akdqff_bench.paths import REPO_ROOT


TNT_HELP = (
    "Tanks and Temples cannot be downloaded at run time. Put the scene in {path} in either layout:\n"
    "  - COLMAP, as distributed with 3D Gaussian Splatting (the 'tandt_db' archive from the 3DGS project page,\n"
    "    repo-sam.inria.fr/fungraph/3d-gaussian-splatting): {path}/images/*.jpg and {path}/sparse/0/*.bin\n"
    "  - nerfstudio-data: {path}/transforms.json beside its images\n"
    "or set AKDQFF_BENCH_DATA to a folder that holds tanks-temples/<scene>."
)

# dataset -> its one scene; the Blender-layout ones are renderings, the others photographs
NAMED_SCENES = {"synthetic-bed": "bed", "nerf-synthetic-mic": "mic", "ethiopian-head": "head", "mary-rose": "tankard"}
SYNTHETIC_NAMED_SCENES = ("synthetic-bed", "nerf-synthetic-mic")


def data_root() -> Path:
    return Path(os.environ.get("AKDQFF_BENCH_DATA", REPO_ROOT / "data"))


def _blender_scene(name: str, path: Path, variant: str) -> "SceneSpec":
    """A Blender scene as ``variant`` reads it: the quick profile reads its quick copy
    (``PATH/quick``) where there is one; a scene larger than QUICK_MAX_IMAGE_SIDE without one is
    refused with the command that makes it; a smaller one is read as it is."""
    if variant == "quick":
        if (path / BLENDER_QUICK / BLENDER_QUICK_META).is_file():
            return SceneSpec(name, *scene_identity(name), path / BLENDER_QUICK, "blender", blender_settings(path, BLENDER_QUICK))
        first = blender_first_image(path)
        if first.is_file() and max(decoded_image_size(first)) > QUICK_MAX_IMAGE_SIDE:
            factor = quick_factor(decoded_image_size(first))
            raise DatasetError(
                f"{path / BLENDER_QUICK}: the quick profile reads images at most {QUICK_MAX_IMAGE_SIDE} px on a side "
                f"and this scene's are {decoded_image_size(first)[0]} px, but its quick copy is missing. Make it with\n"
                f"  python -m akdqff_bench.datasets.downscale {path} --blender --factor {factor}")
    return SceneSpec(name, *scene_identity(name), path, "blender", blender_settings(path))


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
            return LLFFDataParserConfig(data=self.path, images_path=Path(settings.images_path))
        if self.layout == "colmap":
            return ThreeDGSColmapDataParserConfig(data=self.path, downscale_factor=settings.downscale_factor)
        return ListedSplitDataParserConfig(
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

    def camera_files(self) -> List[Path]:
        """The files the layout reads the cameras (poses and intrinsics) from."""
        names = {"blender": ["transforms_train.json", "transforms_test.json"], "llff": [POSES_BOUNDS],
                 "nerfstudio": ["transforms.json"],
                 "colmap": [f"sparse/0/{kind}.{ext}" for kind in ("cameras", "images") for ext in ("bin", "txt")]}[self.layout]
        return [self.path / name for name in names if (self.path / name).is_file()]

    def fingerprint(self) -> Dict[str, Any]:
        """What a run of this scene reads: the split actually used (the file names of the train and
        test views as the dataparser gives them, relative to the scene) and one sha256 over the
        bytes of each of those images and of the files the cameras are read from, so a record can
        tell whether the data it was measured on is still the data (a changed transforms.json file
        list changes the split and the hash). Only file bytes are hashed, never what the parser
        computes from them: its floating-point results differ in the last bit between CPU models,
        and the same data must be the same data on every machine."""
        digest, split = hashlib.sha256(), {}
        parser = self.dataparser_config().setup()
        for name in ("train", "test"):
            files = []
            for image in map(Path, parser.get_dataparser_outputs(split=name).image_filenames):
                relative = image.relative_to(self.path).as_posix() if image.is_relative_to(self.path) else image.as_posix()
                files.append(check_utf8(relative, f"{self.name}: the image file name"))
                digest.update(f"{name}\0{relative}\0".encode("utf-8", "surrogateescape"))
                digest.update(image.read_bytes())
            split[name] = files
        for camera_file in self.camera_files():
            digest.update(f"cameras\0{camera_file.relative_to(self.path).as_posix()}\0".encode("utf-8"))
            digest.update(camera_file.read_bytes())
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
            return photograph_kind(layout_camera_to_world(layout, Path(rest).expanduser().resolve()))
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
        if variant != "quick" and not ((path / "transforms_train.json").is_file() and blender_first_image(path).is_file()):
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
