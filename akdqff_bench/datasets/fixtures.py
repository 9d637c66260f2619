"""Tiny LLFF scenes for tests: ``poses_bounds.npy`` written by hand, random images, in milliseconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The original (pre-downscale) image size and focal length every row states in its 5th column.
ORIGINAL_H, ORIGINAL_W, ORIGINAL_FOCAL = 400.0, 600.0, 500.0


def llff_row(down, right, back, centre, near=2.0, far=6.0):
    """One poses_bounds.npy row: the 3x5 matrix [down | right | back | centre | hwf], row-major, then bounds."""
    matrix = np.stack([down, right, back, centre, [ORIGINAL_H, ORIGINAL_W, ORIGINAL_FOCAL]], axis=1)
    return np.concatenate([matrix.reshape(-1), [near, far]])


def _look_at_row(centre, target):
    back = (centre - target) / np.linalg.norm(centre - target)  # the camera looks along -back, at target
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return llff_row(-up, right, back, centre)


def make_llff_scene(root, count=10, image_size=(30, 20), folder="images", names=None, forward_facing=False) -> Path:
    """``count`` cameras on a circle at height 0.5 looking at the origin, world z up; or, with
    ``forward_facing``, cameras on a 0.6 x 0.4 patch of the plane y = -3, every one looking at a
    point near the origin (within a few degrees of +y), as LLFF's forward-facing captures are."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / folder).mkdir()
    rows = []
    for i in range(count):
        if forward_facing:
            u, v = (i % 4) / 3 - 0.5, (i // 4) / max((count - 1) // 4, 1) - 0.5
            centre = np.array([0.6 * u, -3.0, 0.4 * v])
            rows.append(_look_at_row(centre, np.array([0.1 * u, 0.0, 0.1 * v])))
        else:
            angle = 2 * np.pi * i / count
            rows.append(_look_at_row(np.array([3 * np.cos(angle), 3 * np.sin(angle), 0.5]), np.zeros(3)))
    np.save(root / "poses_bounds.npy", np.array(rows))
    rng = np.random.default_rng(0)
    for name in names or [f"IMG_{i:03d}.png" for i in range(count)]:
        Image.fromarray(rng.integers(0, 255, (image_size[1], image_size[0], 3), dtype=np.uint8)).save(root / folder / name)
    return root
