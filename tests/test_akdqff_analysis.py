"""The notebook's evidence functions: kernel density vs detail, rate–distortion."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.scene_box import SceneBox

from akdqff_bench.testing import make_tiny_blender_scene
from akdqff_method.analysis import _standalone_copy, finetune_decoder, image_gradient_energy, kernel_density_vs_detail, rate_distortion
from akdqff_method.model import AKDQFFModelConfig


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = make_tiny_blender_scene(tmp_path_factory.mktemp("akdqff_analysis"), n_train=3, size=16)
    dataparser = BlenderDataParserConfig(data=root).setup()
    train = InputDataset(dataparser.get_dataparser_outputs("train"))
    test_outputs = dataparser.get_dataparser_outputs("test")
    config = AKDQFFModelConfig(num_kernels_init=300, feature_dim=4, decoder_hidden_dim=8, sh_levels=2, grid_resolution=16, num_samples=24)
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=3)
    with torch.no_grad():
        model.field.decoder[2].bias[0] = 1.0
        model.field.kernel_params["features"].normal_(0, 1, generator=torch.Generator().manual_seed(0))
    model.eval()
    return SimpleNamespace(model=model, datamanager=SimpleNamespace(train_dataset=train), test_cameras=test_outputs.cameras)


def test_image_gradient_energy_is_zero_on_flat_images_and_high_on_edges():
    flat = torch.full((8, 8, 3), 0.5)
    assert image_gradient_energy(flat).abs().max() == 0
    edge = flat.clone()
    edge[:, 4:] = 1.0
    energy = image_gradient_energy(edge)
    assert energy[:, 3:5].min() > 0 and energy[:, :2].max() == 0


def test_kernel_density_vs_detail_returns_per_cell_numbers(pipeline):
    result = kernel_density_vs_detail(pipeline, grid_resolution=4)
    assert result["kernels_per_cell"].shape == result["detail_per_cell"].shape == (64,)
    assert result["kernels_per_cell"].sum() == pipeline.model.field.num_kernels  # every centre is in the box
    assert result["surface_points_per_cell"].sum() > 0
    assert -1.0 <= result["pearson_r"] <= 1.0 and result["num_active_cells"] > 1


def test_rate_distortion_sizes_are_file_sizes_and_grow_with_q(pipeline, tmp_path):
    cameras = pipeline.test_cameras[:1]
    with torch.no_grad():  # the unquantized model's own render is the reference image
        reference = [pipeline.model.get_outputs_for_camera(cameras[0:1])["rgb"]]
    points = rate_distortion(pipeline, cameras, reference, codebook_sizes=(2, 16, 128), workdir=tmp_path, include_unquantized=True)
    assert [p["codebook_size"] for p in points] == [2, 16, 128, 0]
    for p in points:
        assert p["model_size_bytes"] == (tmp_path / f"akdqff_q{p['codebook_size']}.akd").stat().st_size
    sizes = [p["model_size_bytes"] for p in points[:3]]
    assert sizes[0] < sizes[1] < sizes[2]
    assert points[2]["psnr"] > points[0]["psnr"]
    assert points[3]["psnr"] > 40  # raw fp16 features: almost the reference
    assert pipeline.model.field.codebook_size == 0  # the trained model is left as it was


def test_finetune_decoder_fits_the_decoder_to_a_new_codebook_and_leaves_the_kernels(pipeline):
    camera = pipeline.test_cameras[0:1]
    with torch.no_grad():  # what the unquantized model renders is the target
        target = pipeline.model.get_outputs_for_camera(camera)["rgb"].reshape(-1, 3)
    rays = camera.generate_rays(camera_indices=0).flatten()
    model = _standalone_copy(pipeline.model)
    model.start_quantization(2)
    with torch.no_grad():  # a decoder far from the one that made the target
        model.field.decoder[2].weight.normal_(0, 1, generator=torch.Generator().manual_seed(1))

    def error() -> float:
        with torch.no_grad():
            return float((model.get_outputs_for_camera(camera)["rgb"].reshape(-1, 3) - target).square().mean())

    kernels_before = {name: param.detach().clone() for name, param in model.field.kernel_params.items()}
    codebook_before = model.field.codebook.clone()
    before = error()
    finetune_decoder(model, lambda step: (rays, {"image": target}), steps=60, lr=1e-2)
    after = error()
    assert after < 0.5 * before
    for name, param in model.field.kernel_params.items():
        assert torch.equal(param, kernels_before[name]) and param.requires_grad, name
    assert torch.equal(model.field.codebook, codebook_before)
    assert not model.training
