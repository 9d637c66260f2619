"""The scenes the benchmark knows, where they live, and how nerfstudio reads them.

- ``synthetic-bed``: made by this project (``akdqff_bench.datasets.synthetic_bed``); the quick
  variant is committed under ``data/synthetic-bed/quick``.
- ``tanks-temples/<scene>``: real captures, which cannot be downloaded here. They are read by path
  from ``<data root>/tanks-temples/<scene>`` in the COLMAP layout the 3D Gaussian Splatting authors
  distribute (``images/``, ``sparse/0/``) or in nerfstudio-data layout (``transforms.json``), with
  the 3DGS evaluation protocol: images sorted by name, every 8th (index 0, 8, 16, ...) is a test view.

The data root is ``data/`` in the repository unless ``AKDQFF_BENCH_DATA`` says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Type

import numpy as np
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.colmap_dataparser import ColmapDataParser, ColmapDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from akdqff_bench.datasets.validate import (
    DatasetError,
    DatasetMissing,
    validate_blender_scene,
    validate_colmap_scene,
    validate_nerfstudio_scene,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
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

__all__ = ["DatasetError", "DatasetMissing", "SceneSpec", "data_root", "resolve_scene", "known_scene_names"]


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


@dataclass(frozen=True)
class SceneSpec:
    name: str  # as the grid names it: "synthetic-bed", "tanks-temples/truck"
    dataset: str  # "synthetic-bed" | "tanks-temples"
    scene: str  # "bed", "truck", ...
    path: Path
    layout: str  # "blender" | "colmap" | "nerfstudio"
    protocol: str

    def dataparser_config(self) -> DataParserConfig:
        if self.layout == "blender":
            return BlenderDataParserConfig(data=self.path)
        if self.layout == "colmap":
            return ThreeDGSColmapDataParserConfig(data=self.path)
        return NerfstudioDataParserConfig(data=self.path, eval_mode="interval", eval_interval=TNT_TEST_EVERY)

    def validate(self) -> dict:
        if self.layout == "blender":
            return validate_blender_scene(self.path)
        if self.layout == "colmap":
            return validate_colmap_scene(self.path)
        return validate_nerfstudio_scene(self.path)


def known_scene_names() -> list:
    return ["synthetic-bed", "tanks-temples/<scene>"]


def resolve_scene(name: str, synthetic_bed_variant: str = "quick", root: Path | None = None) -> SceneSpec:
    """Find scene ``name`` on disk; raise DatasetMissing (with where to get it) or DatasetError."""
    root = Path(root) if root is not None else data_root()
    if name == "synthetic-bed":
        path = root / "synthetic-bed" / synthetic_bed_variant
        if not path.is_dir():
            raise DatasetMissing(
                f"{path}: synthetic-bed ({synthetic_bed_variant}) has not been generated. Make it with\n"
                f"  python -m akdqff_bench.datasets.synthetic_bed --variant {synthetic_bed_variant} --out {path}\n"
                "(needs the 'data' extra: pip install -e '.[data]')"
            )
        return SceneSpec(name, "synthetic-bed", "bed", path, "blender", SYNTHETIC_PROTOCOL)
    if name.startswith("tanks-temples/") and name.count("/") == 1 and name.split("/")[1]:
        scene = name.split("/")[1]
        path = root / "tanks-temples" / scene
        if not path.is_dir():
            raise DatasetMissing(f"{path}: Tanks and Temples scene '{scene}' is not there.\n" + TNT_HELP.format(path=path))
        if (path / "transforms.json").is_file():
            layout = "nerfstudio"
        elif (path / "sparse" / "0").is_dir():
            layout = "colmap"
        else:
            raise DatasetError(f"{path}: neither sparse/0/ (COLMAP) nor transforms.json (nerfstudio-data) is there.\n" + TNT_HELP.format(path=path))
        return SceneSpec(name, "tanks-temples", scene, path, layout, TNT_PROTOCOL)
    raise DatasetError(f"unknown scene {name!r}; known scenes: {', '.join(known_scene_names())}")
