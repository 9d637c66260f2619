"""``synthetic-bed``: a NeRF-synthetic (Blender-format) scene rendered with Blender from a CC-0 bed model.

The model is Blend Swap's ``bedWithTexture`` (CC-0, by Nhumrod/numroud), as Debian ships it in the
package ``sweethome3d-furniture`` (zip ``usr/share/sweethome3d/furniture/BlendSwap-CC-0.sh3f``,
folder ``blendswap-cc-0/bedWithTexture/``: OBJ + MTL + ``sheet.jpg`` + ``wood10.jpg`` + the licence).

Regenerate a variant with one command (needs ``pip install bpy==4.2.0``, i.e. the ``data`` extra)::

    python -m akdqff_bench.datasets.synthetic_bed --variant quick --out data/synthetic-bed/quick

Variants (:data:`VARIANTS`): ``quick`` (100x100, 100/10/25 views, committed to the repo), ``full``
(800x800, 100/100/200 views, the NeRF-synthetic protocol) and ``tiny`` (16x16, 3/1/1 views, for tests).

Determinism: the camera list is a pure function of the variant (seeded numpy generators, rounded to
1e-10), so ``transforms_*.json`` and ``meta.json`` are byte-identical across runs and machines. Images
come from Cycles on the CPU with a fixed sample count and seed, no denoiser and no adaptive sampling,
and the PNGs carry no timings, so two runs on the same machine give byte-identical files (thread count
included); across CPUs / Blender builds expect small floating-point differences in the pixels.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np

GENERATOR_VERSION = "1.0.0"
DATASET_NAME = "synthetic-bed"
SPLITS = ("train", "val", "test")

# NeRF-synthetic's horizontal field of view (lego's transforms_train.json: 0.6911112070083618).
CAMERA_ANGLE_X = 0.6911112070083618
CAMERA_RADIUS = 4.0  # nerfstudio's vanilla-nerf samples between near 2 and far 6
OBJECT_RADIUS = 1.2  # the bed's bounding sphere after normalisation; the scene box is ±1.5
CAMERA_SEED = 20240601  # train and val positions; val uses CAMERA_SEED + 1
RENDER_SEED = 0  # Cycles' sampling seed
# Train/val elevations: uniform on the sphere's surface between these angles (degrees).
MIN_ELEVATION_DEG = 5.0
MAX_ELEVATION_DEG = 85.0
# Test path: one ring around the bed whose elevation waves between 20 and 50 degrees (two periods per
# turn), like NeRF-synthetic's test spirals.
TEST_ELEVATION_DEG = 35.0
TEST_ELEVATION_WAVE_DEG = 15.0

ASSET_NAME = "bedWithTexture"
ASSET_TITLE = "IKEA's Oppdal double size bed with simple bedside tables (Blend Swap #62576, by numroud/Nhumrod)"
ASSET_LICENSE = "CC0-1.0 (Creative Commons Zero, public domain)"
ASSET_PACKAGE = "sweethome3d-furniture"
ASSET_ARCHIVE = "BlendSwap-CC-0.sh3f"
ASSET_MEMBER_DIR = "blendswap-cc-0/bedWithTexture/"
LICENSE_FILE = "BLENDSWAP_LICENSE.txt"
LICENSE_OUT_NAME = "LICENSE-bedWithTexture.txt"
# sha256 of the files as Debian's sweethome3d-furniture 1.8-1 ships them: the data depend on exactly these.
ASSET_SHA256 = {
    "bedWithTexture.obj": "9a844a70f3e913691d50146e6a3846f624e3aae3353c5956cc8bf0156795cf9f",
    "bedWithTexture.mtl": "80e5005f98b3152ea933ca5c76844290a085d6f36fb0b95449bfd04b067cb51e",
    "sheet.jpg": "056d7d609b45c4956ce023a90a2896a33ba322cbc4d37ccfd29255da974913a9",
    "wood10.jpg": "1b4e6cd9e5d4163ada72001a5ca51708b0f52f9f22505c5807821301812dce26",
    LICENSE_FILE: "1727626f74e48770e5f216130508ae09c69a148b994a5defbc1491aeb9107663",
}
SYSTEM_SH3F_DIRS = (Path("/usr/share/sweethome3d/furniture"),)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    resolution: int
    n_train: int
    n_val: int
    n_test: int
    samples: int  # Cycles samples per pixel (fixed: adaptive sampling is off)


VARIANTS: Dict[str, Variant] = {
    "quick": Variant("quick", 100, 100, 10, 25, 64),
    "full": Variant("full", 800, 100, 100, 200, 128),
    "tiny": Variant("tiny", 16, 3, 1, 1, 4),
}

from akdqff_bench.paths import REPO_ROOT  # noqa: E402


def default_out_dir(variant: str) -> Path:
    return REPO_ROOT / "data" / DATASET_NAME / variant


def default_cache_dir() -> Path:
    env = os.environ.get("AKDQFF_BENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "akdqff-bench"


# --------------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------------


def look_at_camera_to_world(position: np.ndarray, target=(0.0, 0.0, 0.0), world_up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenGL / Blender camera-to-world: the camera looks down its -z axis, y is up, x is right."""
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, world_up)
    right /= np.linalg.norm(right)  # elevations stay below 90 degrees, so this is never zero
    up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, position
    return c2w


def _spherical(azimuth: float, elevation: float, radius: float) -> np.ndarray:
    return radius * np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )


def _hemisphere_positions(count: int, seed: int) -> List[np.ndarray]:
    """Uniform by area on the upper hemisphere between the min/max elevations; one draw pair per camera,
    so the first k cameras of a longer list equal the k cameras of a shorter one."""
    rng = np.random.default_rng(seed)
    z_lo, z_hi = math.sin(math.radians(MIN_ELEVATION_DEG)), math.sin(math.radians(MAX_ELEVATION_DEG))
    positions = []
    for _ in range(count):
        azimuth = rng.uniform(0.0, 2.0 * math.pi)
        elevation = math.asin(rng.uniform(z_lo, z_hi))
        positions.append(_spherical(azimuth, elevation, CAMERA_RADIUS))
    return positions


def _test_positions(count: int) -> List[np.ndarray]:
    positions = []
    for i in range(count):
        azimuth = 2.0 * math.pi * i / count
        elevation = math.radians(TEST_ELEVATION_DEG + TEST_ELEVATION_WAVE_DEG * math.sin(2.0 * azimuth))
        positions.append(_spherical(azimuth, elevation, CAMERA_RADIUS))
    return positions


def camera_transforms(variant: str) -> Dict[str, dict]:
    """The ``transforms_{split}.json`` contents of a variant: a pure function of its name."""
    spec = VARIANTS[variant]
    positions = {
        "train": _hemisphere_positions(spec.n_train, CAMERA_SEED),
        "val": _hemisphere_positions(spec.n_val, CAMERA_SEED + 1),
        "test": _test_positions(spec.n_test),
    }
    transforms = {}
    for split in SPLITS:
        frames = []
        for index, position in enumerate(positions[split]):
            c2w = np.round(look_at_camera_to_world(position), 10) + 0.0  # "+ 0.0" turns -0.0 into 0.0
            frames.append(
                {"file_path": f"./{split}/r_{index}", "rotation": 0.0, "transform_matrix": c2w.tolist()}
            )
        transforms[split] = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
    return transforms


# --------------------------------------------------------------------------------------------------
# The asset
# --------------------------------------------------------------------------------------------------


class AssetUnavailableError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _asset_ok(folder: Path) -> bool:
    return all((folder / name).is_file() and _sha256(folder / name) == digest for name, digest in ASSET_SHA256.items())


def _extract_from_sh3f(sh3f: Path, dest: Path) -> None:
    files = {}
    with zipfile.ZipFile(sh3f) as archive:
        for name in ASSET_SHA256:
            member = ASSET_MEMBER_DIR + name
            try:
                files[name] = archive.read(member)
            except KeyError as error:
                raise AssetUnavailableError(f"{sh3f} has no member {member}") from error
    bad = [name for name, data in files.items() if hashlib.sha256(data).hexdigest() != ASSET_SHA256[name]]
    if bad:
        raise AssetUnavailableError(
            f"{sh3f}: {', '.join(bad)} differ from the files synthetic-bed was made from (sha256 in "
            "akdqff_bench/datasets/synthetic_bed.py::ASSET_SHA256); a different sweethome3d-furniture release?"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (dest / name).write_bytes(data)


def _extract_deb(deb: Path, dest: Path) -> None:
    """``dpkg-deb -x``, or Python's ar + tar where dpkg is missing."""
    if shutil.which("dpkg-deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
        return
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise AssetUnavailableError(f"{deb} is not a Debian package (no ar header)")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise AssetUnavailableError(f"{deb}: data.tar.zst needs dpkg-deb to unpack")
            with tempfile.NamedTemporaryFile(suffix=name) as tmp:
                tmp.write(body)
                tmp.flush()
                with tarfile.open(tmp.name) as tar:
                    tar.extractall(dest, filter="data")
            return
    raise AssetUnavailableError(f"{deb} holds no data.tar.*")


def ensure_asset(cache_dir: Optional[Path] = None, sh3f: Optional[Path] = None, log=print) -> Path:
    """A folder holding the bed's OBJ, MTL, textures and licence, checked against :data:`ASSET_SHA256`.

    Reads ``sh3f`` if given; otherwise looks, in order, in the cache (``<cache>/bedWithTexture``),
    in ``/usr/share/sweethome3d/furniture/`` and in ``<cache>/``; failing those it runs
    ``apt-get download sweethome3d-furniture`` in the cache, unpacks the .deb and keeps only the bed.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    asset_dir = cache_dir / ASSET_NAME
    if sh3f is not None:  # asked for explicitly: use it or fail
        if not Path(sh3f).is_file():
            raise AssetUnavailableError(f"{sh3f} does not exist")
        log(f"[synthetic-bed] extracting {ASSET_NAME} from {sh3f}")
        _extract_from_sh3f(Path(sh3f), asset_dir)
        return asset_dir
    if _asset_ok(asset_dir):
        return asset_dir
    for candidate in [d / ASSET_ARCHIVE for d in (*SYSTEM_SH3F_DIRS, cache_dir)]:
        if candidate.is_file():
            log(f"[synthetic-bed] extracting {ASSET_NAME} from {candidate}")
            _extract_from_sh3f(candidate, asset_dir)
            return asset_dir
    if not shutil.which("apt-get"):
        raise AssetUnavailableError(_asset_help(cache_dir, "apt-get is not available on this machine"))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="deb-") as tmp:
        log(f"[synthetic-bed] apt-get download {ASSET_PACKAGE} (about 120 MB) into {tmp}")
        result = subprocess.run(["apt-get", "download", ASSET_PACKAGE], cwd=tmp, capture_output=True, text=True)
        debs = sorted(Path(tmp).glob(f"{ASSET_PACKAGE}_*.deb"))
        if result.returncode != 0 or not debs:
            raise AssetUnavailableError(
                _asset_help(cache_dir, f"`apt-get download {ASSET_PACKAGE}` failed: {result.stderr.strip()[-500:]}")
            )
        root = Path(tmp) / "root"
        _extract_deb(debs[0], root)
        found = root / "usr/share/sweethome3d/furniture" / ASSET_ARCHIVE
        if not found.is_file():
            raise AssetUnavailableError(_asset_help(cache_dir, f"{debs[0].name} has no {ASSET_ARCHIVE}"))
        _extract_from_sh3f(found, asset_dir)
    return asset_dir


def _asset_help(cache_dir: Path, reason: str) -> str:
    return (
        f"cannot get the {ASSET_NAME} model ({reason}). Install the Debian/Ubuntu package {ASSET_PACKAGE} "
        f"(it provides /usr/share/sweethome3d/furniture/{ASSET_ARCHIVE}), or copy {ASSET_ARCHIVE} from it into "
        f"{cache_dir}/, or pass --sh3f PATH."
    )


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _strip_png_text(path: Path) -> None:
    """Drop a PNG's text chunks in place. Cycles stores its timings there (``cycles.*.total_time``),
    which would make two renders of the same pixels differ as files."""
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG")
    kept, offset = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        end = offset + 12 + length
        if data[offset + 4 : offset + 8] not in (b"tEXt", b"zTXt", b"iTXt"):
            kept.append(data[offset:end])
        offset = end
    path.write_bytes(b"".join(kept))


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def _quiet_fd_stdout(enabled: bool) -> Iterator[None]:
    """Blender prints its render progress from C straight to fd 1; silence it at the fd level."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        _flush_c_stdio()  # or Blender's buffered C output would reach the terminal at exit
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _build_scene(bpy, asset_dir: Path, spec: Variant, threads: int):
    from mathutils import Matrix, Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    # The OBJ is y-up (Sweet Home 3D); the importer's defaults (forward -Z, up Y) turn it z-up.
    bpy.ops.wm.obj_import(filepath=str(asset_dir / f"{ASSET_NAME}.obj"), forward_axis="NEGATIVE_Z", up_axis="Y")
    meshes = sorted((o for o in bpy.context.scene.objects if o.type == "MESH"), key=lambda o: o.name)
    if not meshes:
        raise RuntimeError("the OBJ import produced no mesh")
    # Bake the import's axis conversion into the vertices, then centre on the bounding box and scale
    # the bounding sphere (around that centre) to OBJECT_RADIUS.
    for obj in meshes:
        obj.data.transform(obj.matrix_world)
        obj.matrix_world = Matrix.Identity(4)
    coords = np.concatenate(
        [np.array([v.co[:] for v in obj.data.vertices], dtype=np.float64).reshape(-1, 3) for obj in meshes]
    )
    centre = 0.5 * (coords.min(0) + coords.max(0))
    scale = OBJECT_RADIUS / np.linalg.norm(coords - centre, axis=1).max()
    normalise = Matrix.Scale(float(scale), 4) @ Matrix.Translation(Vector([float(-c) for c in centre]))
    for obj in meshes:
        obj.data.transform(normalise)
        obj.data.update()

    scene = bpy.context.scene
    world = bpy.data.worlds.new("ambient")
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    background.inputs["Strength"].default_value = 0.5
    scene.world = world

    sun_data = bpy.data.lights.new("sun", type="SUN")
    sun_data.energy = 2.0
    sun_data.angle = math.radians(10.0)  # soft-ish shadows
    sun = bpy.data.objects.new("sun", sun_data)
    sun.rotation_euler = (math.radians(40.0), math.radians(15.0), math.radians(30.0))
    scene.collection.objects.link(sun)

    camera_data = bpy.data.cameras.new("camera")
    camera_data.sensor_fit = "HORIZONTAL"
    camera_data.angle_x = CAMERA_ANGLE_X
    camera_data.clip_start, camera_data.clip_end = 0.1, 100.0
    camera = bpy.data.objects.new("camera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera

    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x = render.resolution_y = spec.resolution
    render.resolution_percentage = 100
    render.film_transparent = True
    render.use_persistent_data = True  # keep the BVH between views: only the camera moves
    render.threads_mode = "FIXED"
    render.threads = threads
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    render.image_settings.color_depth = "8"
    render.image_settings.compression = 100
    # No date, render time, host name... in the PNG text chunks: the files depend on the pixels only.
    for name in dir(render):
        if name.startswith("use_stamp"):
            setattr(render, name, False)
    scene.view_settings.view_transform = "Standard"  # textures as they are (no AgX/Filmic tone curve)
    scene.view_settings.look = "None"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = spec.samples
    cycles.use_adaptive_sampling = False
    cycles.use_denoising = False
    cycles.seed = RENDER_SEED
    cycles.use_animated_seed = False
    cycles.max_bounces = 4
    cycles.sample_clamp_indirect = 10.0
    return scene, camera, Matrix, {"centre": centre.tolist(), "scale": float(scale)}


def generate(
    variant: str = "quick",
    out: Optional[Path] = None,
    *,
    cache_dir: Optional[Path] = None,
    sh3f: Optional[Path] = None,
    threads: int = 2,
    quiet: bool = True,
    log=print,
) -> Path:
    """Render ``variant`` into ``out`` (default ``data/synthetic-bed/<variant>``) and return ``out``.

    Writes ``{train,val,test}/r_<i>.png`` (RGBA, transparent background), ``transforms_{split}.json``,
    ``meta.json`` and the model's licence. Needs ``bpy`` (``pip install bpy==4.2.0``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    out = Path(out) if out is not None else default_out_dir(variant)
    try:
        import bpy  # noqa: PLC0415  (heavy, optional: only the generator needs it)
    except ImportError as error:
        raise ImportError(
            "rendering synthetic-bed needs Blender as a Python module: pip install bpy==4.2.0 "
            "(or pip install -e '.[data]'); the committed quick variant needs no Blender"
        ) from error
    asset_dir = ensure_asset(cache_dir, sh3f, log=log)
    transforms = camera_transforms(variant)

    with _quiet_fd_stdout(quiet):
        scene, camera, Matrix, normalisation = _build_scene(bpy, asset_dir, spec, threads)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        (out / f"transforms_{split}.json").unlink(missing_ok=True)  # written last: present means complete
        if (out / split).is_dir():
            shutil.rmtree(out / split)
        (out / split).mkdir()

    n_views = sum(len(transforms[s]["frames"]) for s in SPLITS)
    start = time.perf_counter()
    done = 0
    for split in SPLITS:
        for frame in transforms[split]["frames"]:
            camera.matrix_world = Matrix(frame["transform_matrix"])
            scene.render.filepath = str(out / (frame["file_path"][2:] + ".png"))
            with _quiet_fd_stdout(quiet):
                bpy.ops.render.render(write_still=True)
            _strip_png_text(Path(scene.render.filepath))
            done += 1
            if done % 25 == 0 or done == n_views:
                elapsed = time.perf_counter() - start
                log(f"[synthetic-bed] {variant}: {done}/{n_views} views, {elapsed / done:.2f} s/view")
    seconds_per_view = (time.perf_counter() - start) / n_views

    for split in SPLITS:
        (out / f"transforms_{split}.json").write_text(json.dumps(transforms[split], indent=2) + "\n")
    shutil.copyfile(asset_dir / LICENSE_FILE, out / LICENSE_OUT_NAME)
    meta = {
        "dataset": DATASET_NAME,
        "generator": "akdqff_bench.datasets.synthetic_bed",
        "generator_version": GENERATOR_VERSION,
        "variant": variant,
        "resolution": [spec.resolution, spec.resolution],
        "views": {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test},
        "camera_angle_x": CAMERA_ANGLE_X,
        "camera_radius": CAMERA_RADIUS,
        "camera_seed": CAMERA_SEED,
        "object_radius": OBJECT_RADIUS,
        "renderer": {
            "bpy_version": bpy.app.version_string,
            "engine": "CYCLES",
            "device": "CPU",
            "samples": spec.samples,
            "seed": RENDER_SEED,
            "adaptive_sampling": False,
            "denoising": False,
            "max_bounces": 4,
            "view_transform": "Standard",
            "film_transparent": True,
            "image_format": "PNG RGBA 8-bit",
        },
        # scene point = (Blender point after the OBJ import - centre) * scale
        "normalisation": {
            "centre_blender_units": [round(c, 6) for c in normalisation["centre"]],
            "scale": round(normalisation["scale"], 9),
        },
        "asset": {
            "name": ASSET_NAME,
            "title": ASSET_TITLE,
            "license": ASSET_LICENSE,
            "license_file": LICENSE_OUT_NAME,
            "source": f"Debian package {ASSET_PACKAGE}: usr/share/sweethome3d/furniture/{ASSET_ARCHIVE}, "
            f"{ASSET_MEMBER_DIR}",
            "original": "https://www.blendswap.com/blends/view/62576",
            "sha256": dict(ASSET_SHA256),
        },
        "regenerate": f"python -m akdqff_bench.datasets.synthetic_bed --variant {variant} --out <DIR>",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"[synthetic-bed] wrote {n_views} views to {out} ({seconds_per_view:.2f} s/view, {threads} threads)")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], prog="python -m akdqff_bench.datasets.synthetic_bed"
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="quick")
    parser.add_argument("--out", type=Path, default=None, help="default: data/synthetic-bed/<variant>")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="default: $AKDQFF_BENCH_CACHE or ~/.cache/akdqff-bench"
    )
    parser.add_argument("--sh3f", type=Path, default=None, help=f"a local {ASSET_ARCHIVE} to read the model from")
    parser.add_argument("--threads", type=int, default=2, help="Cycles CPU threads (does not change the pixels)")
    parser.add_argument("--verbose", action="store_true", help="show Blender's own output")
    args = parser.parse_args(argv)
    try:
        generate(
            args.variant,
            args.out,
            cache_dir=args.cache_dir,
            sh3f=args.sh3f,
            threads=args.threads,
            quiet=not args.verbose,
        )
    except (AssetUnavailableError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
