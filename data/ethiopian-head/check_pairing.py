"""Check that row i of poses_bounds.npy belongs to the i-th image (sorted by name).

Carves a visual hull from the object masks (masks_32) with the poses as read, reprojects it into
every view and measures its overlap (IoU) with each mask. Correctly paired poses give a hull that
explains every mask; pairing each mask with its neighbour's pose (a one-row shift) or a shuffled
row order carves most of the object away. Run: python data/ethiopian-head/check_pairing.py
"""

from pathlib import Path

import numpy as np
from PIL import Image

from akdqff_bench.datasets.llff import POSES_BOUNDS, normalise_llff, read_poses_bounds
from akdqff_bench.datasets.validate import image_files

HERE = Path(__file__).resolve().parent


def hull_iou(camera_to_world, focal, masks, aabb, resolution=64):
    size = masks.shape[1]
    axes = [np.linspace(aabb[0, k], aabb[1, k], resolution) for k in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)

    def project(i):
        rotation, centre = camera_to_world[i, :, :3], camera_to_world[i, :, 3]
        local = (points - centre) @ rotation  # world -> camera (OpenGL: x right, y up, -z forward)
        depth = -local[:, 2]
        u = focal[i] * local[:, 0] / depth + size / 2
        v = -focal[i] * local[:, 1] / depth + size / 2
        inside = (depth > 0) & (u >= 0) & (u < size) & (v >= 0) & (v < size)
        return u.astype(int).clip(0, size - 1), v.astype(int).clip(0, size - 1), inside

    keep = np.ones(len(points), dtype=bool)
    for i in range(len(masks)):
        u, v, inside = project(i)
        keep &= ~inside | masks[i][v, u]
    # Compared on 5x5-pixel blocks: a voxel's footprint is about 5 pixels, so the projected
    # points alone would leave gaps in the drawn silhouette.
    block = 5
    ious = []
    for i in range(len(masks)):
        u, v, inside = project(i)
        drawn = np.zeros((size // block, size // block), dtype=bool)
        drawn[(v[keep & inside] // block).clip(0, size // block - 1), (u[keep & inside] // block).clip(0, size // block - 1)] = True
        target = masks[i][: size // block * block, : size // block * block].reshape(size // block, block, size // block, block).mean((1, 3)) > 0.5
        ious.append((drawn & target).sum() / max(1, (drawn | target).sum()))
    return float(np.mean(ious))


def main():
    camera_to_world, hwf, bounds = read_poses_bounds(HERE / POSES_BOUNDS)
    geometry = normalise_llff(camera_to_world, hwf, bounds)
    names = image_files(HERE / "masks_32")
    masks = np.stack([np.asarray(Image.open(p)) > 127 for p in names])
    focal = hwf[:, 2] * masks.shape[2] / hwf[:, 1]
    poses = geometry.camera_to_world
    print(f"{len(names)} masks, {len(poses)} pose rows")
    print(f"as read:            mean IoU {hull_iou(poses, focal, masks, geometry.aabb):.3f}")
    print(f"shifted by one row: mean IoU {hull_iou(np.roll(poses, 1, axis=0), focal, masks, geometry.aabb):.3f}")
    order = np.random.default_rng(0).permutation(len(poses))
    print(f"shuffled rows:      mean IoU {hull_iou(poses[order], focal, masks, geometry.aabb):.3f}")


if __name__ == "__main__":
    main()
