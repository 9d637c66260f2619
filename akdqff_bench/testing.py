"""Tiny scenes for tests: made in milliseconds with numpy, no Blender, no downloads.

:func:`make_tiny_blender_scene` writes a NeRF-synthetic (Blender-format) folder holding a ray-traced
scene of two coloured spheres, RGBA with a transparent background, cameras on the upper hemisphere.
:func:`multiprocess_training_config` configures a short training of such a scene on several CPU
processes (the data-parallel tests).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from PIL import Image

# (centre, radius, rgb): a red sphere and a smaller blue one, inside the Blender scene box ±1.5.
SPHERES = (((0.0, 0.0, 0.0), 0.6, (0.85, 0.2, 0.15)), ((0.55, 0.45, 0.35), 0.3, (0.1, 0.3, 0.9)))


def look_at_camera_to_world(position: np.ndarray, target=(0.0, 0.0, 0.0), world_up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenGL camera-to-world (camera looks down -z, y up), as NeRF-synthetic's transforms use."""
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, world_up)
    if np.linalg.norm(right) < 1e-8:  # looking straight down: any right vector will do
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, position
    return c2w


def hemisphere_positions(count: int, radius: float, seed: int) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    positions = []
    for _ in range(count):
        azimuth = rng.uniform(0, 2 * math.pi)
        elevation = rng.uniform(math.radians(10), math.radians(70))
        positions.append(
            radius * np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
        )
    return positions


def render_spheres(c2w: np.ndarray, size: int, camera_angle_x: float) -> np.ndarray:
    """RGBA uint8 image of :data:`SPHERES` with simple diffuse shading."""
    focal = 0.5 * size / math.tan(0.5 * camera_angle_x)
    i, j = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="xy")
    dirs_cam = np.stack([(i - 0.5 * size) / focal, -(j - 0.5 * size) / focal, -np.ones_like(i)], -1)
    dirs = dirs_cam @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origin = c2w[:3, 3]
    depth = np.full((size, size), np.inf)
    rgba = np.zeros((size, size, 4))
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    for centre, radius, colour in SPHERES:
        oc = origin - np.asarray(centre)
        b = dirs @ oc
        disc = b**2 - (oc @ oc - radius**2)
        t = -b - np.sqrt(np.maximum(disc, 0))
        hit = (disc > 0) & (t > 0) & (t < depth)
        normal = (origin + t[..., None] * dirs - np.asarray(centre)) / radius
        shade = 0.35 + 0.65 * np.clip(normal @ light, 0, 1)
        rgba[hit, :3] = shade[hit, None] * np.asarray(colour)
        rgba[hit, 3] = 1.0
        depth = np.where(hit, t, depth)
    return (rgba * 255).round().astype(np.uint8)


def make_tiny_blender_scene(
    root: Path, n_train: int = 6, n_val: int = 2, n_test: int = 2, size: int = 24, seed: int = 0
) -> Path:
    """Write a Blender-format scene to ``root`` and return ``root``."""
    root = Path(root)
    camera_angle_x = 0.69  # NeRF-synthetic's value (about 40 degrees)
    positions = hemisphere_positions(n_train + n_val + n_test, radius=4.0, seed=seed)
    splits = {"train": positions[:n_train], "val": positions[n_train : n_train + n_val], "test": positions[n_train + n_val :]}
    for split, split_positions in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for index, position in enumerate(split_positions):
            c2w = look_at_camera_to_world(position)
            Image.fromarray(render_spheres(c2w, size, camera_angle_x)).save(root / split / f"r_{index}.png")
            frames.append({"file_path": f"./{split}/r_{index}", "transform_matrix": c2w.tolist()})
        with open(root / f"transforms_{split}.json", "w", encoding="utf-8") as f:
            json.dump({"camera_angle_x": camera_angle_x, "frames": frames}, f, indent=2)
    return root


def multiprocess_training_config(method: str, scene: Path, output_dir: Path, num_processes: int, iterations: int,
                                 rays_per_batch: int, eval_rays_per_batch: int, overrides: Dict[str, Any]):
    """A method's config for a short CPU training of the tiny Blender ``scene`` on ``num_processes``
    gloo processes, as nerfstudio's ``launch`` takes it (tests of data-parallel training): no
    evaluation or saving before the end, tensorboard, seed 0, then ``overrides``."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    from akdqff_bench.methods import apply_overrides, method_config

    never = 10**9
    config = method_config(method)
    config.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=scene)
    config.data = scene
    config.output_dir = output_dir
    config.timestamp = "run"
    config.machine.device_type = "cpu"
    config.machine.num_devices = num_processes
    config.machine.seed = 0
    config.vis = "tensorboard"
    config.logging.local_writer.enable = False
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = never
    config.steps_per_save = never
    config.max_num_iterations = iterations
    config.pipeline.datamanager.train_num_rays_per_batch = rays_per_batch
    config.pipeline.datamanager.eval_num_rays_per_batch = eval_rays_per_batch
    apply_overrides(config, overrides)
    return config
