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

Modules: ``scenes`` (names, paths, ``resolve_scene``), ``layouts`` (what each layout needs beyond its
images), ``validate`` (bad folders answered in a sentence), ``llff`` (the LLFF reader), ``floor``
(the mean-image floor), ``downscale``, ``synthetic_bed`` and ``fixtures`` (tiny scenes for tests).
"""

from akdqff_bench.datasets.layouts import (BLENDER_QUICK, BLENDER_QUICK_META, BLENDER_QUICK_TEST_EVERY, LAYOUTS, QUICK_MAX_IMAGE_SIDE,
                                           SceneSettings, looks_one_way)
from akdqff_bench.datasets.scenes import (SceneSpec, check_utf8, checked_scene_name, data_root, known_scene_names, resolve_scene,
                                          scene_identity, scene_kind)
from akdqff_bench.datasets.validate import DatasetError, DatasetMissing

__all__ = ["BLENDER_QUICK", "BLENDER_QUICK_META", "BLENDER_QUICK_TEST_EVERY", "LAYOUTS", "QUICK_MAX_IMAGE_SIDE", "DatasetError",
           "DatasetMissing", "SceneSettings", "SceneSpec", "check_utf8", "checked_scene_name", "data_root", "known_scene_names",
           "looks_one_way", "resolve_scene", "scene_identity", "scene_kind"]
