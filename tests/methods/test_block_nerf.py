"""Block-NeRF baseline: block layout, image assignment, inverse-distance blending, visibility culling,
per-block training, the stored representation, and ``ns-train block-nerf`` on a tiny scene."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.block_nerf import bench
from bench_base.representation import export_representation, load_representation
from akdqff_bench.testing import look_at_camera_to_world, make_tiny_blender_scene
from akdqff_bench.request import RunRequest
from baselines.block_nerf.layout import (
    assign_images_to_blocks,
    block_radii,
    filter_by_visibility,
    inverse_distance_weights,
    place_block_centers,
    select_blocks,
)
from baselines.block_nerf.model import BlockNeRFModel, BlockNeRFModelConfig
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox

TINY = dict(
    num_blocks=3, appearance_dim=4, base_mlp_num_layers=2, base_mlp_layer_width=16, head_mlp_layer_width=16,
    visibility_mlp_num_layers=2, visibility_mlp_layer_width=8, position_frequencies=4, direction_frequencies=2,
    num_coarse_samples=8, num_importance_samples=8,
)


def ring_cameras(count: int, radius: float = 4.0, height: float = 1.5) -> torch.Tensor:
    azimuths = torch.arange(count, dtype=torch.float32) * (2 * math.pi / count)
    return torch.stack([radius * azimuths.cos(), radius * azimuths.sin(), torch.full_like(azimuths, height)], -1)


def build_model(num_train_data: int = 12, **overrides) -> BlockNeRFModel:
    torch.manual_seed(0)
    config = BlockNeRFModelConfig(**{**TINY, **overrides})
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=num_train_data)
    model.place_blocks(ring_cameras(num_train_data))
    return model


def camera_at(position, size: int = 8) -> Cameras:
    c2w = torch.tensor(look_at_camera_to_world(np.asarray(position, dtype=np.float64))[:3], dtype=torch.float32)
    return Cameras(camera_to_worlds=c2w[None], fx=10.0, fy=10.0, cx=size / 2, cy=size / 2, width=size, height=size)


def training_rays(model: BlockNeRFModel, image_index: torch.Tensor) -> RayBundle:
    origins = ring_cameras(model.num_train_data)[image_index]
    directions = torch.nn.functional.normalize(-origins + 0.1 * torch.randn_like(origins), dim=-1)
    n = image_index.shape[0]
    return RayBundle(
        origins=origins, directions=directions, pixel_area=torch.full((n, 1), 1e-4),
        camera_indices=image_index[:, None], nears=torch.full((n, 1), 2.0), fars=torch.full((n, 1), 6.0),
    )


# ---------------------------------------------------------------- layout
def test_blocks_are_placed_on_the_camera_clusters():
    clusters = torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [4.0, 0.0, 1.0]])
    offsets = torch.tensor([[0.0, 0.1, 0.0], [0.0, -0.1, 0.0], [0.0, 0.0, 0.1], [0.0, 0.0, -0.1]])
    cameras = (clusters[:, None] + offsets[None]).reshape(-1, 3)
    centers = place_block_centers(cameras, 3)
    order = centers[:, 0].argsort()
    torch.testing.assert_close(centers[order], clusters, atol=1e-5, rtol=0)
    # 50% overlap: each radius is the distance to the nearest other centre, here 2.
    torch.testing.assert_close(block_radii(cameras, centers, overlap=0.5), torch.full((3,), 2.0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="one training camera per block"):
        place_block_centers(cameras[:2], 3)


def test_radius_grows_to_hold_every_camera_of_its_cluster():
    cameras = torch.tensor([[0.0, 0.0, 0.0], [0.0, 3.0, 0.0], [10.0, 0.0, 0.0]])
    centers = torch.tensor([[0.0, 1.0, 0.0], [10.0, 0.0, 0.0]])
    # no overlap: radius = half the centre distance (5.02), more than block 0's cluster needs (2.0)
    radii = block_radii(cameras, centers, overlap=0.0)
    torch.testing.assert_close(radii, torch.full((2,), math.hypot(10.0, 1.0) / 2))
    tight = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.0]])
    radii = block_radii(cameras, tight, overlap=0.0)  # centres 1.1 apart, cluster cameras 2.0 and 9.5 away
    assert radii[0] == pytest.approx(2.0) and radii[1] == pytest.approx(9.5)


def test_images_are_assigned_to_every_block_whose_radius_holds_their_camera():
    centers = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    radii = torch.full((3,), 2.0)
    cameras = torch.tensor([[1.0, 0.1, 0.0], [3.5, 0.2, 0.0], [-1.0, 0.0, 0.0], [2.0, 1.9, 0.0]])
    owners = assign_images_to_blocks(cameras, centers, radii)
    expected = torch.tensor([[True, True, False], [False, True, True], [True, False, False], [False, True, False]])
    assert torch.equal(owners, expected)


def test_ring_layout_overlaps_and_leaves_no_image_without_a_block():
    model = build_model(num_train_data=12, num_blocks=4)
    owners = model.image_owners
    assert owners.any(dim=1).all()
    assert owners.sum(dim=1).float().mean() > 1.0  # neighbouring blocks share images
    assert not owners.all()  # but a block is not the whole scene
    assert model.benchmark_scalars()["blocks"] == 4.0


# ---------------------------------------------------------------- selection and blending
def test_inverse_distance_weights_follow_the_power_law():
    centers = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [9.0, 0.0, 0.0]])
    positions = torch.tensor([[0.5, 0.0, 0.0], [2.0, 0.0, 0.0]])
    selected = torch.tensor([[True, True, False], [True, True, False]])
    weights = inverse_distance_weights(positions, centers, selected, power=4.0)
    w0 = 0.5**-4 / (0.5**-4 + 1.5**-4)
    torch.testing.assert_close(weights[0], torch.tensor([w0, 1 - w0, 0.0]))
    torch.testing.assert_close(weights[1], torch.tensor([0.0, 1.0, 0.0]))  # standing on a centre
    flat = inverse_distance_weights(positions, centers, selected, power=0.0)
    torch.testing.assert_close(flat[0], torch.tensor([0.5, 0.5, 0.0]))


def test_views_select_nearby_blocks_or_fall_back_to_the_nearest():
    centers = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    radii = torch.full((3,), 1.5)
    positions = torch.tensor([[1.0, 0.0, 0.0], [10.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    selected = select_blocks(positions, centers, radii)
    assert selected[0].tolist() == [True, True, False]
    assert selected[1].tolist() == [False, False, True]  # outside every block: the nearest one
    available = torch.tensor([False, True, True])
    assert select_blocks(positions[2:], centers, radii, available)[0].tolist() == [False, True, False]


def test_visibility_filter_drops_blocks_that_barely_see_the_view():
    visibility = torch.tensor([0.9, 0.05, 0.5, 0.0])
    candidates = torch.tensor([True, True, True, False])
    assert filter_by_visibility(visibility, candidates, 0.1).tolist() == [True, False, True, False]
    # none reaches the threshold: the most visible candidate still renders the view
    low = torch.tensor([0.02, 0.05, 0.01, 0.9])
    assert filter_by_visibility(low, candidates, 0.1).tolist() == [False, True, False, False]


def test_a_block_predicting_low_visibility_is_not_rendered():
    model = build_model(num_train_data=12, num_blocks=3)
    model.eval()
    # a camera that all three blocks hold
    model.block_radii.fill_(100.0)
    camera = camera_at([0.0, -4.0, 1.5])
    assert model.get_outputs_for_camera(camera)["blocks_rendered"].unique().tolist() == [3.0]
    blind = model.block_fields[1].mlp_visibility.layers[-1]
    with torch.no_grad():
        blind.weight.zero_()
        blind.bias.fill_(-20.0)
    outputs = model.get_outputs_for_camera(camera)
    assert outputs["blocks_rendered"].unique().tolist() == [2.0]
    assert outputs["rgb"].shape == (8, 8, 3) and torch.isfinite(outputs["rgb"]).all()


def test_view_render_is_the_distance_weighted_blend_of_block_renders():
    model = build_model(num_train_data=12, num_blocks=3)
    model.eval()
    model.block_radii.fill_(100.0)
    position = torch.tensor([[0.5, -4.0, 1.5]])
    camera = camera_at(position[0].tolist(), size=4)
    blended = model.get_outputs_for_camera(camera)["rgb"].reshape(-1, 3)
    rays = model.collider(camera.generate_rays(camera_indices=0).flatten())
    weights = inverse_distance_weights(position, model.block_centers, torch.ones(1, 3, dtype=torch.bool), 4.0)[0]
    codes = model.test_appearance_codes()
    expected = sum(
        weights[b] * model.render_block(b, rays, codes[b].expand(len(rays), -1))["rgb"] for b in range(3)
    )
    torch.testing.assert_close(blended, expected, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- training
def test_each_block_trains_only_on_its_own_images():
    model = build_model(num_train_data=12, num_blocks=3)
    model.train()
    owners = model.image_owners.clone()
    # rays from images that block 2 does not own
    foreign = (~owners[:, 2]).nonzero().reshape(-1)
    assert foreign.numel() > 0
    image_index = foreign.repeat(4)[:16]
    outputs = model(training_rays(model, image_index))
    pairs = set(zip(outputs["ray_index"].tolist(), outputs["block_index"].tolist()))
    assert pairs == {(r, b) for r in range(16) for b in range(3) if owners[image_index[r], b]}
    batch = {"image": torch.rand(16, 3)}
    loss = sum(model.get_loss_dict(outputs, batch).values())
    loss.backward()
    assert all(p.grad is None for p in model.block_fields[2].parameters())
    assert model.appearance_embeddings[2].weight.grad is None
    trained = [b for b in range(3) if owners[image_index, b].any()]
    assert trained and all(model.block_fields[b].mlp_base.layers[0].weight.grad is not None for b in trained)
    # appearance codes of images outside the batch get no gradient
    grad = model.appearance_embeddings[trained[0]].weight.grad
    unused = torch.ones(12, dtype=torch.bool)
    unused[image_index] = False
    assert grad[unused].abs().sum() == 0 and grad[image_index].abs().sum() > 0


def test_one_owner_routing_sends_each_ray_to_exactly_one_of_its_blocks():
    model = build_model(num_train_data=12, num_blocks=3, train_routing="one_owner")
    model.train()
    image_index = torch.arange(12).repeat(2)
    outputs = model(training_rays(model, image_index))
    assert sorted(outputs["ray_index"].tolist()) == list(range(24))
    assert model.image_owners[image_index[outputs["ray_index"]], outputs["block_index"]].all()


def test_visibility_is_supervised_by_detached_transmittance():
    model = build_model(num_train_data=12, num_blocks=2)
    model.train()
    outputs = model(training_rays(model, torch.arange(12)))
    assert outputs["visibility"].shape == outputs["visibility_target"].shape
    assert not outputs["visibility_target"].requires_grad
    assert (outputs["visibility_target"][:, 0] == 1).all()  # nothing occludes the first sample
    losses = model.get_loss_dict(outputs, {"image": torch.rand(12, 3)})
    losses["visibility_loss"].backward()
    for block_field in model.block_fields:
        assert block_field.mlp_base.layers[0].weight.grad is None
        assert block_field.mlp_visibility.layers[0].weight.grad.abs().sum() > 0


def test_density_bias_starts_blocks_more_transparent():
    """mip-NeRF's softplus(x - 1): without it the quick run started at ~93% accumulation everywhere
    and Adam emptied the scene for good (every block rendered pure white)."""
    rays = torch.arange(12)
    accumulation = {}
    for bias in (0.0, -1.0):
        model = build_model(num_train_data=12, num_blocks=2, density_bias=bias)  # same seed, same weights
        model.eval()
        with torch.no_grad():
            accumulation[bias] = float(model._training_outputs(training_rays(model, rays))["accumulation"].mean())
    assert accumulation[-1.0] < accumulation[0.0]
    assert BlockNeRFModelConfig().density_bias == -1.0


# ---------------------------------------------------------------- stored model
def test_representation_round_trip_renders_the_same_view(tmp_path):
    model = build_model(num_train_data=12, num_blocks=3)
    with torch.no_grad():
        for embedding in model.appearance_embeddings:
            embedding.weight.normal_()
    model.eval()
    camera = camera_at([4.0, 0.0, 1.5])
    reference = model.get_outputs_for_camera(camera)["rgb"]
    path = tmp_path / "block_nerf.pt"
    size = export_representation(model, path)
    stored = torch.load(path, weights_only=True)
    assert not any(k.startswith(("appearance_embeddings.", "image_owners", "lpips.")) for k in stored)
    assert {"block_centers", "block_radii", "fixed_appearance"} <= set(stored)
    params = sum(p.numel() for p in model.block_fields.parameters())
    assert params * 4 <= size < params * 4 + 200_000

    fresh = BlockNeRFModelConfig(**TINY).setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=12
    )
    load_representation(fresh, path)
    fresh.eval()
    torch.testing.assert_close(fresh.get_outputs_for_camera(camera)["rgb"], reference)


# ---------------------------------------------------------------- profiles and ns-train
@pytest.mark.parametrize(
    "overrides",
    [bench.QUICK, bench.SMOKE, *(c.overrides for c in bench.QUICK_SWEEP.candidates)],
    ids=["quick", "smoke", *[f"sweep{i}" for i in range(len(bench.QUICK_SWEEP))]],
)
def test_profile_overrides_name_real_fields(overrides):
    from akdqff_bench.methods import apply_overrides, method_config

    config = apply_overrides(method_config("block-nerf"), overrides)
    model_config = config.pipeline.model
    for key, value in overrides.items():
        if key.startswith("pipeline.model."):
            assert getattr(model_config, key.split(".")[-1]) == value
    assert len(bench.QUICK_SWEEP) == 3
    grid = {(c.overrides["pipeline.model.num_blocks"], c.overrides["pipeline.model.base_mlp_layer_width"]) for c in bench.QUICK_SWEEP.candidates}
    assert len(grid) == 3


def _cli_flags(overrides):
    flags = []
    for key, value in overrides.items():
        flags += ["--" + key.replace("_", "-"), str(value)]
    return flags


def test_ns_train_block_nerf_runs_on_tiny_data(tmp_path):
    data = tmp_path / "tiny"
    make_tiny_blender_scene(data, n_train=6, n_val=2, n_test=2, size=16)
    ns_train = Path(sys.executable).with_name("ns-train")
    command = [
        str(ns_train), "block-nerf", "--machine.device-type", "cpu", "--max-num-iterations", "6",
        "--output-dir", str(tmp_path / "out"), "--pipeline.datamanager.train-num-rays-per-batch", "64",
        "--steps-per-eval-batch", "3", "--steps-per-eval-image", "4", "--steps-per-save", "5",
        *_cli_flags(bench.SMOKE),
        "blender-data", "--data", str(data),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checkpoints = list((tmp_path / "out").glob("unnamed/block-nerf/*/nerfstudio_models/step-*.ckpt"))
    assert checkpoints, result.stdout[-2000:]
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)["pipeline"]
    # the pipeline placed the blocks over the training cameras (not the default ring layout)
    assert state["_model.image_owners"].any(dim=1).all()
    centers = state["_model.block_centers"]
    assert centers.shape[0] == bench.SMOKE["pipeline.model.num_blocks"]
    assert not torch.allclose(centers[:, 2], torch.full_like(centers[:, 2], 2.0))


def test_the_appearance_diagnosis_reproduces_the_evaluation_and_renders_other_codes(tmp_path, tiny_data_root, no_lpips_weights):
    """baselines.block_nerf.diagnostics.appearance on a trained smoke run: its 'mean' codes are
    the evaluation's (the record's PSNR comes back), and the other codes are the training images'."""
    from baselines.block_nerf.diagnostics.appearance import diagnose
    from akdqff_bench.runner import run_one

    result = run_one(RunRequest("block-nerf", "synthetic-bed", "smoke", 0), tmp_path)
    assert result.record["status"] == "ok"
    summary = diagnose(tmp_path, "smoke", result.record["run_id"])
    assert summary["psnr_by_code"]["mean"] == pytest.approx(result.record["psnr"], abs=0.05)
    assert len(summary["views"]) == result.record["num_test_views"]
    shown = summary["training_codes_shown"]
    assert shown[0] == 0 and shown[-1] == result.train_pipeline.datamanager.train_dataset.cameras.shape[0] - 1
    assert set(summary["psnr_by_code"]) == {"mean", "nearest", *(f"train {k}" for k in shown)}
    # 'nearest': in every block, one of the block's own training images (whose code that block trained).
    owners = result.train_pipeline.model.image_owners
    for view in summary["views"]:
        assert all(bool(owners[image, block]) for block, image in enumerate(view["nearest_training_images"]))


def test_the_block_diagnosis_reproduces_the_evaluation_and_renders_each_block_alone(tmp_path, tiny_data_root, no_lpips_weights):
    """baselines.block_nerf.diagnostics.blocks on a trained smoke run: its 'evaluation' render is
    the record's, the blend weights it reports are the evaluation's, and 'block b' is block b alone
    (where the evaluation keeps one block, the two renders are the same image)."""
    from baselines.block_nerf.diagnostics.blocks import _evaluation_choice, _render_with_block, main
    from akdqff_bench.runner import render_view, run_one

    result = run_one(RunRequest("block-nerf", "synthetic-bed", "smoke", 0), tmp_path)
    run = result.record["run_id"]
    assert main(["--run", run, "--profile", "smoke", "--results", str(tmp_path)]) == 0  # the command line writes both files
    diagnostics = tmp_path / "smoke" / "diagnostics"
    summary = json.loads((diagnostics / f"{run}-blocks.json").read_text())
    assert len(pd.read_csv(diagnostics / f"{run}-blocks.csv")) == result.record["num_test_views"]
    blocks = bench.SMOKE["pipeline.model.num_blocks"]
    assert summary["psnr"]["evaluation"] == pytest.approx(result.record["psnr"], abs=0.05)
    assert len(summary["views"]) == result.record["num_test_views"] and len(summary["training_images_per_block"]) == blocks
    for view in summary["views"]:
        assert set(view["kept"]) <= set(view["candidates"]) and sum(view["blend_weights"]) == pytest.approx(1.0, abs=1e-3)
        assert all(view["blend_weights"][b] == 0 for b in range(blocks) if b not in view["kept"])
    # A threshold no visibility reaches keeps each view's most visible block only: then the
    # evaluation's render and that block's render alone must be the same.
    model = result.train_pipeline.model
    model.eval()
    model.config.visibility_threshold = 2.0
    views = result.test_views
    with torch.no_grad():
        kept = _evaluation_choice(model, views.cameras, 0)["kept"]
    assert len(kept) == 1
    assert torch.allclose(render_view(model, views.cameras, 0), _render_with_block(model, views.cameras, 0, kept[0]), atol=1e-5)
    assert not torch.allclose(render_view(model, views.cameras, 0), _render_with_block(model, views.cameras, 0, 1 - kept[0]), atol=1e-3)
