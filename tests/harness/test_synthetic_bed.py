"""synthetic-bed: the committed quick variant, the camera list, and a tiny Blender render."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from akdqff_bench.datasets import synthetic_bed as sb

QUICK_DIR = sb.REPO_ROOT / "data" / "synthetic-bed" / "quick"


def _project(c2w: np.ndarray, points: np.ndarray, size: int, camera_angle_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (u right, v down) and depth of world points, OpenGL camera-to-world."""
    w2c = np.linalg.inv(c2w)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    focal = 0.5 * size / math.tan(0.5 * camera_angle_x)
    depth = -cam[:, 2]
    u = 0.5 * size + focal * cam[:, 0] / depth
    v = 0.5 * size - focal * cam[:, 1] / depth
    return np.stack([u, v], -1), depth


def _check_dataset(root: Path, spec: sb.Variant) -> None:
    counts = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    for split in sb.SPLITS:
        transforms = json.loads((root / f"transforms_{split}.json").read_text())
        assert transforms == sb.camera_transforms(spec.name)[split]  # the files are the fixed camera list
        assert transforms["camera_angle_x"] == pytest.approx(0.6911, abs=1e-4)
        frames = transforms["frames"]
        assert len(frames) == counts[split]
        for index, frame in enumerate(frames):
            assert frame["file_path"] == f"./{split}/r_{index}"
            c2w = np.asarray(frame["transform_matrix"])
            assert c2w.shape == (4, 4)
            np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-8)  # a rotation
            assert np.linalg.det(c2w[:3, :3]) == pytest.approx(1.0, abs=1e-8)
            assert np.linalg.norm(c2w[:3, 3]) == pytest.approx(sb.CAMERA_RADIUS)
            assert c2w[2, 3] > 0  # upper hemisphere
            (uv,), (depth,) = _project(c2w, np.zeros((1, 3)), spec.resolution, transforms["camera_angle_x"])
            assert depth == pytest.approx(sb.CAMERA_RADIUS)  # in front of the camera...
            np.testing.assert_allclose(uv, [spec.resolution / 2] * 2, atol=1e-6)  # ...at the image centre
            image = Image.open(root / (frame["file_path"][2:] + ".png"))
            assert image.mode == "RGBA" and image.size == (spec.resolution, spec.resolution)
            alpha = np.asarray(image)[..., 3]
            assert alpha[0, :].max() == 0 and alpha[:, 0].max() == 0  # transparent background, bed not cut off
            assert alpha[spec.resolution // 2, spec.resolution // 2] > 0  # the bed covers the image centre
    meta = json.loads((root / "meta.json").read_text())
    assert meta["variant"] == spec.name and meta["resolution"] == [spec.resolution] * 2
    assert meta["renderer"]["samples"] == spec.samples and meta["renderer"]["denoising"] is False
    assert meta["asset"]["name"] == "bedWithTexture" and "CC0" in meta["asset"]["license"]
    assert (root / meta["asset"]["license_file"]).read_text().count("Creative Commons Zero") >= 1


def _bed_vertices(root: Path) -> np.ndarray:
    """The bed's OBJ vertices in the scene's frame, normalised as ``root/meta.json`` says."""
    asset = sb.ensure_asset(log=lambda *_: None)
    obj_lines = (asset / "bedWithTexture.obj").read_text().splitlines()
    xyz = np.array([line.split()[1:4] for line in obj_lines if line.startswith("v ")], dtype=float)
    blender = np.stack([xyz[:, 0], -xyz[:, 2], xyz[:, 1]], -1)  # OBJ y-up -> Blender z-up
    norm = json.loads((root / "meta.json").read_text())["normalisation"]
    return (blender - np.asarray(norm["centre_blender_units"])) * norm["scale"]


def _vertex_coverage(root: Path, size: int) -> np.ndarray:
    """Per view, the fraction of the bed's vertices that project (transform_matrix + camera_angle_x) onto
    non-transparent pixels. A flipped axis or a wrong camera convention throws many onto the background
    (on the quick variant: about 0.90 on average when mirrored left-right, against 0.9999+ when right);
    also checks that the silhouette is no larger than the projected vertices' bounding box."""
    points = _bed_vertices(root)
    assert np.linalg.norm(points, axis=1).max() == pytest.approx(sb.OBJECT_RADIUS, rel=1e-4)
    coverage = []
    for split in sb.SPLITS:
        transforms = json.loads((root / f"transforms_{split}.json").read_text())
        for frame in transforms["frames"]:
            alpha = np.asarray(Image.open(root / (frame["file_path"][2:] + ".png")))[..., 3]
            uv, _ = _project(np.asarray(frame["transform_matrix"]), points, size, transforms["camera_angle_x"])
            pixels = np.clip(np.floor(uv).astype(int), 0, size - 1)
            coverage.append((alpha[pixels[:, 1], pixels[:, 0]] > 0).mean())
            ys, xs = np.nonzero(alpha > 127)
            assert xs.min() >= uv[:, 0].min() - 1 and xs.max() <= uv[:, 0].max() + 1, frame["file_path"]
            assert ys.min() >= uv[:, 1].min() - 1 and ys.max() <= uv[:, 1].max() + 1, frame["file_path"]
    return np.asarray(coverage)


def test_camera_list_is_deterministic_and_looks_at_the_origin():
    first, second = sb.camera_transforms("full"), sb.camera_transforms("full")
    assert json.dumps(first) == json.dumps(second)
    # Shorter variants are prefixes of the full one for the seeded splits (same seeds, one draw per camera).
    quick = sb.camera_transforms("quick")
    assert quick["train"] == first["train"] and quick["val"]["frames"] == first["val"]["frames"][:10]
    assert [len(first[s]["frames"]) for s in sb.SPLITS] == [100, 100, 200]
    positions = np.array([f["transform_matrix"] for f in first["train"]["frames"]])[:, :3, 3]
    elevations = np.degrees(np.arcsin(positions[:, 2] / sb.CAMERA_RADIUS))
    assert elevations.min() >= sb.MIN_ELEVATION_DEG and elevations.max() <= sb.MAX_ELEVATION_DEG
    assert len({tuple(p.round(6)) for p in positions}) == 100  # no repeated camera


def test_committed_quick_variant_is_well_formed():
    assert QUICK_DIR.is_dir(), f"{QUICK_DIR} is missing: python -m akdqff_bench.datasets.synthetic_bed --variant quick"
    _check_dataset(QUICK_DIR, sb.VARIANTS["quick"])
    size = sum(p.stat().st_size for p in QUICK_DIR.rglob("*") if p.is_file())
    assert size < 8 * 2**20, f"committed quick variant is {size / 2**20:.1f} MiB"
    # Textured, not a flat silhouette: the sheet's checks give strong contrast inside the bed.
    rgba = np.asarray(Image.open(QUICK_DIR / "test" / "r_0.png")).astype(float)
    inside = rgba[..., 3] == 255
    assert rgba[..., :3][inside].std() > 30


def test_committed_quick_images_match_their_cameras():
    # Needs the bed model (from where the generator gets it: a cache, or Debian's package), not Blender.
    try:
        sb.ensure_asset(log=lambda *_: None)
    except sb.AssetUnavailableError as error:
        pytest.skip(f"the bed model is not available here: {error}")
    coverage = _vertex_coverage(QUICK_DIR, sb.VARIANTS["quick"].resolution)
    assert coverage.min() > 0.999 and coverage.mean() > 0.9999, (coverage.min(), coverage.mean())


def test_strip_png_text_keeps_pixels(tmp_path):
    path = tmp_path / "a.png"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("cycles.total_time", "00:01.23")
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(path, pnginfo=info)
    assert "cycles.total_time" in Image.open(path).info
    sb._strip_png_text(path)
    image = Image.open(path)
    assert "cycles.total_time" not in image.info
    np.testing.assert_array_equal(np.asarray(image), pixels)


def test_asset_errors_are_clear(tmp_path):
    with pytest.raises(sb.AssetUnavailableError, match="does not exist"):
        sb.ensure_asset(cache_dir=tmp_path / "cache", sh3f=tmp_path / "missing.sh3f")
    wrong = tmp_path / "wrong.sh3f"  # right layout, wrong bytes: refused, since the data depend on them
    with zipfile.ZipFile(wrong, "w") as archive:
        for name in sb.ASSET_SHA256:
            archive.writestr(sb.ASSET_MEMBER_DIR + name, b"not the bed")
    with pytest.raises(sb.AssetUnavailableError, match="differ from the files"):
        sb.ensure_asset(cache_dir=tmp_path / "cache", sh3f=wrong)


def test_render_tiny_variant(tmp_path):
    pytest.importorskip("bpy", reason="Blender as a Python module (pip install bpy==4.2.0) is not installed")
    spec = sb.VARIANTS["tiny"]
    out = sb.generate("tiny", tmp_path / "tiny", log=lambda *_: None)
    assert out == tmp_path / "tiny"
    _check_dataset(out, spec)
    assert json.loads((out / "meta.json").read_text())["renderer"]["bpy_version"] == "4.2.0"

    # The images agree with the transforms (see _vertex_coverage); at 16x16 px partly covered edge
    # pixels can come out transparent, so the bar is lower than for the quick variant.
    coverage = _vertex_coverage(out, spec.resolution)
    assert coverage.mean() > 0.95, coverage

    # Deterministic: a second render is byte-identical (same machine, same bpy; no timings in the PNGs).
    again = sb.generate("tiny", tmp_path / "again", log=lambda *_: None)
    for path in sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()):
        assert (again / path).read_bytes() == (out / path).read_bytes(), path
