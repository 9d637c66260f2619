"""AKDQFF's samplers on a trained tiny model: which samples the field evaluates with gradients.

The model is trained for a few hundred steps on the tiny two-sphere Blender scene (opaque spheres on
white), so that rays hitting a sphere spend their transmittance at its surface and rays missing it
keep theirs: the samplers must tell the two apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.scene_box import SceneBox
from PIL import Image

from akdqff_bench.testing import make_tiny_blender_scene
from akdqff_method.model import AKDQFFModelConfig

TRAIN_STEPS = 300
RAYS_PER_STEP = 512


def _rays_and_pixels(outputs):
    """Every pixel's ray and RGBA colour, in the same order."""
    cameras = outputs.cameras
    rays = cameras.generate_rays(camera_indices=torch.arange(len(cameras))[:, None])  # [H, W, C]
    images = np.stack([np.asarray(Image.open(path), dtype=np.float32) / 255.0 for path in outputs.image_filenames])
    pixels = torch.from_numpy(images).permute(1, 2, 0, 3)  # [C, H, W, 4] -> [H, W, C, 4]
    assert rays.shape == pixels.shape[:3]
    return rays.flatten(), pixels.reshape(-1, 4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny AKDQFF model trained with the uniform sampler, and the test cameras' rays."""
    scene = make_tiny_blender_scene(tmp_path_factory.mktemp("sampling_scene"), size=16)
    parser = BlenderDataParserConfig(data=scene).setup()
    train_rays, train_pixels = _rays_and_pixels(parser.get_dataparser_outputs("train"))
    test_rays, _ = _rays_and_pixels(parser.get_dataparser_outputs("test"))
    torch.manual_seed(0)
    config = AKDQFFModelConfig(num_kernels_init=600, feature_dim=4, decoder_hidden_dim=16, sh_levels=1,
                               grid_resolution=16, num_samples=48, sampler="uniform", seed=0)
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(TRAIN_STEPS):
        batch = torch.randint(0, len(train_pixels), (RAYS_PER_STEP,), generator=generator)
        outputs = model(train_rays[batch])
        loss = model.get_loss_dict(outputs, {"image": train_pixels[batch]})["rgb_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.field.rebuild_index()
    model.eval()
    return model, test_rays


def _render(model, rays, sampler: str):
    model.config.sampler = sampler
    try:
        with torch.no_grad():
            return model(rays)
    finally:
        model.config.sampler = "uniform"


def _field_samples(model, rays, sampler: str):
    model.config.sampler = sampler
    try:
        with torch.no_grad():
            return model.field_samples(model.collider(rays))
    finally:
        model.config.sampler = "uniform"


def _field_samples_per_ray(model, rays, sampler: str) -> torch.Tensor:
    ray_samples, _, selected, _ = _field_samples(model, rays, sampler)
    return torch.bincount(torch.div(selected, ray_samples.shape[1], rounding_mode="floor"), minlength=len(rays)).float()


def test_the_trained_model_has_opaque_and_empty_rays(trained):
    """The premise of the tests below: some test rays end on a sphere and some see only the background."""
    model, rays = trained
    accumulation = _render(model, rays, "uniform")["accumulation"].squeeze(-1)
    assert float((accumulation > 0.99).float().mean()) > 0.05
    assert float((accumulation < 0.05).float().mean()) > 0.2


def test_early_stopping_drops_samples_behind_the_surface_and_keeps_the_image(trained):
    model, rays = trained
    uniform = _render(model, rays, "uniform")
    stopped = _render(model, rays, "transmittance")
    # The samples dropped are those behind transmittance 1e-3: the colour changes by at most that.
    tolerance = model.config.early_stop_transmittance
    assert float((stopped["rgb"] - uniform["rgb"]).abs().max()) <= tolerance + 1e-5

    accumulation = uniform["accumulation"].squeeze(-1)
    all_samples = _field_samples_per_ray(model, rays, "uniform")
    kept = _field_samples_per_ray(model, rays, "transmittance")
    opaque, clear = accumulation > 0.99, accumulation < 0.05
    # Rays that hit a sphere stop at it; rays that miss everything keep every sample they had.
    assert float(kept[opaque].sum()) < 0.7 * float(all_samples[opaque].sum())
    assert torch.equal(kept[clear], all_samples[clear])


def test_resampling_puts_the_samples_where_the_weights_are_and_keeps_the_image_close(trained):
    model, rays = trained
    uniform = _render(model, rays, "uniform")
    resampled = _render(model, rays, "resample")
    mse = float((resampled["rgb"] - uniform["rgb"]).square().mean())
    assert -10 * np.log10(max(mse, 1e-12)) > 30.0  # dB against the all-samples render

    # On rays that hit a sphere the resampled positions gather near the rendered depth.
    opaque = uniform["accumulation"].squeeze(-1) > 0.99
    ray_samples, _, _, _ = _field_samples(model, rays, "resample")
    distance = (ray_samples.frustums.starts + ray_samples.frustums.ends).squeeze(-1) / 2
    depth = uniform["depth"].squeeze(-1)
    near_surface = ((distance - depth[:, None]).abs() < 0.3).float().mean(-1)
    uniform_samples, _, _, _ = _field_samples(model, rays, "uniform")
    uniform_distance = (uniform_samples.frustums.starts + uniform_samples.frustums.ends).squeeze(-1) / 2
    uniform_near = ((uniform_distance - depth[:, None]).abs() < 0.3).float().mean(-1)
    assert float(near_surface[opaque].mean()) > 2 * float(uniform_near[opaque].mean())
