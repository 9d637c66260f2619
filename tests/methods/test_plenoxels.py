"""Plenoxels baseline: the grid's maths against direct formulas, coarse-to-fine surgery, storage,
and `ns-train plenoxels` end to end on a tiny scene (CPU)."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.optimizers import Optimizers

from bench_base import representation as method_api
from baselines.plenoxels import bench
from akdqff_bench.testing import make_tiny_blender_scene
from baselines.plenoxels.config import DelayedExponentialSchedulerConfig, delayed_exponential_factor, plenoxels_method
from baselines.plenoxels.grid import SparseVoxelGrid, sh_basis, sh_to_rgb, total_variation
from baselines.plenoxels.model import PlenoxelsModelConfig
from baselines.plenoxels.storage import read_grid

AABB = torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]])


def make_model(resolutions=(8,), upsample_steps=(), **kwargs):
    cfg = PlenoxelsModelConfig(resolutions=tuple(resolutions), upsample_steps=tuple(upsample_steps), **kwargs)
    return cfg.setup(scene_box=SceneBox(aabb=AABB.clone()), num_train_data=4)


def random_grid(resolution: int, hole_fraction: float, seed: int = 0, dtype=torch.float32) -> SparseVoxelGrid:
    gen = torch.Generator().manual_seed(seed)
    grid = SparseVoxelGrid(AABB.clone(), resolution)
    occupancy = torch.rand((resolution,) * 3, generator=gen) >= hole_fraction
    count = int(occupancy.sum())
    grid.set_grid(occupancy, torch.randn(count, 1, generator=gen), torch.randn(count, 27, generator=gen))
    if dtype != torch.float32:
        grid.density.data = grid.density.data.to(dtype)
        grid.sh.data = grid.sh.data.to(dtype)
    return grid


def vertex_value(grid: SparseVoxelGrid, values: torch.Tensor, i: int, j: int, k: int) -> torch.Tensor:
    link = int(grid.links[i, j, k])
    return values[link] if link >= 0 else torch.zeros_like(values[0])


def camera_rays(num: int, seed: int = 0) -> RayBundle:
    """Rays from a ring of cameras 4 units out, aimed near the centre (as the Blender scenes)."""
    gen = torch.Generator().manual_seed(seed)
    azimuth = torch.rand(num, generator=gen) * 2 * math.pi
    origins = torch.stack([4 * torch.cos(azimuth), 4 * torch.sin(azimuth), torch.full((num,), 1.0)], -1)
    targets = (torch.rand(num, 3, generator=gen) - 0.5) * 2.6
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    ones = torch.ones(num, 1)
    return RayBundle(origins=origins, directions=directions, pixel_area=ones, nears=2 * ones, fars=6 * ones)


# ---------------------------------------------------------------------------------------------
# Field maths
def test_trilinear_interpolation_matches_direct_formula():
    grid = random_grid(5, hole_fraction=0.3, seed=1)
    gen = torch.Generator().manual_seed(2)
    coords = torch.rand(200, 3, generator=gen) * 4.0  # continuous grid coordinates in [0, R-1]
    density, sh = grid.raw_values_at(coords)
    for n in range(coords.shape[0]):
        base = [min(int(math.floor(c)), 3) for c in coords[n].tolist()]
        frac = [c - b for c, b in zip(coords[n].tolist(), base)]
        expect_d, expect_sh = torch.zeros(1), torch.zeros(27)
        for dx in (0, 1):
            for dy in (0, 1):
                for dz in (0, 1):
                    w = (frac[0] if dx else 1 - frac[0]) * (frac[1] if dy else 1 - frac[1]) * (frac[2] if dz else 1 - frac[2])
                    i, j, k = base[0] + dx, base[1] + dy, base[2] + dz
                    expect_d += w * vertex_value(grid, grid.density.detach(), i, j, k)
                    expect_sh += w * vertex_value(grid, grid.sh.detach(), i, j, k)
        torch.testing.assert_close(density[n], expect_d, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sh[n], expect_sh, atol=1e-5, rtol=1e-5)
    # A vertex reads back exactly, and world -> grid puts vertex i at aabb_min + (i + 0.5) * voxel.
    position = AABB[0] + (torch.tensor([1.0, 2.0, 3.0]) + 0.5) * (3.0 / 5)
    density, _ = grid.raw_values_at(grid.world_to_grid(position[None]))
    torch.testing.assert_close(density[0], vertex_value(grid, grid.density.detach(), 1, 2, 3))


def test_sh_basis_and_colour_match_direct_formulas():
    gen = torch.Generator().manual_seed(3)
    d = torch.nn.functional.normalize(torch.randn(64, 3, generator=gen), dim=-1)
    x, y, z = d.unbind(-1)
    c0, c1 = 0.5 / math.sqrt(math.pi), math.sqrt(3 / (4 * math.pi))
    c2, c20, c22 = 0.5 * math.sqrt(15 / math.pi), 0.25 * math.sqrt(5 / math.pi), 0.25 * math.sqrt(15 / math.pi)
    expected = torch.stack(
        [torch.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z, c20 * (3 * z * z - 1), c2 * x * z, c22 * (x * x - y * y)],
        -1,
    )
    torch.testing.assert_close(sh_basis(d), expected, atol=1e-6, rtol=1e-5)
    coeffs = torch.randn(64, 27, generator=gen)
    rgb = sh_to_rgb(coeffs, sh_basis(d))
    direct = torch.stack([(coeffs[:, 9 * c : 9 * c + 9] * expected).sum(-1) for c in range(3)], -1)
    torch.testing.assert_close(rgb, torch.relu(direct + 0.5), atol=1e-5, rtol=1e-5)


def test_total_variation_value_and_gradient():
    grid = random_grid(4, hole_fraction=0.25, seed=4, dtype=torch.float64)
    occupied = (grid.links.reshape(-1) >= 0).nonzero()[:, 0]
    scale = 4 / 256

    # Value against the paper's formula written out voxel by voxel.
    values = grid.sh.detach()
    total = 0.0
    for lin in occupied.tolist():
        i, j, k = lin // 16, (lin // 4) % 4, lin % 4
        centre = vertex_value(grid, values, i, j, k)
        nbrs = [vertex_value(grid, values, min(i + 1, 3), j, k) if i < 3 else centre,
                vertex_value(grid, values, i, min(j + 1, 3), k) if j < 3 else centre,
                vertex_value(grid, values, i, j, min(k + 1, 3)) if k < 3 else centre]
        sq = sum(((n - centre) * scale) ** 2 for n in nbrs)
        total += torch.sqrt(sq + 1e-9).sum().item()
    value = total_variation(grid.sh, grid.links, occupied, scale)
    # A sum over the sampled voxels, as svox2's kernel adds each one's gradient at full weight.
    assert value.item() == pytest.approx(total, rel=1e-9)

    # Autograd gradient against central finite differences (float64).
    for params in (grid.density, grid.sh):
        params.grad = None
        total_variation(params, grid.links, occupied, scale).backward()
        analytic = params.grad.clone()
        numeric = torch.zeros_like(analytic)
        eps = 1e-6
        with torch.no_grad():
            flat = params.data.view(-1)
            for n in range(flat.numel()):
                original = flat[n].item()
                flat[n] = original + eps
                plus = total_variation(params, grid.links, occupied, scale).item()
                flat[n] = original - eps
                minus = total_variation(params, grid.links, occupied, scale).item()
                flat[n] = original
                numeric.view(-1)[n] = (plus - minus) / (2 * eps)
        torch.testing.assert_close(analytic, numeric, atol=1e-6, rtol=1e-4)
        assert analytic.abs().sum() > 0


def test_each_sampled_voxel_feels_the_full_tv_weight_whatever_the_sample_size():
    """svox2 adds lambda * dTV/dv per sampled voxel: sampling 4x the voxels must not shrink a
    voxel's TV gradient (a mean over the sample would divide it by 4)."""
    grid = random_grid(6, hole_fraction=0.0, seed=1, dtype=torch.float64)
    voxel = torch.tensor([43])
    others = torch.tensor([100, 150, 200])  # far from voxel 43 and its +x/+y/+z neighbours
    gradients = []
    for sample in (voxel, torch.cat([voxel, others])):
        grid.density.grad = None
        total_variation(grid.density, grid.links, sample, 6 / 256).backward()
        gradients.append(grid.density.grad[grid.links.reshape(-1)[43]].clone())
    torch.testing.assert_close(gradients[0], gradients[1])


def test_regularisation_follows_the_capture_unless_set():
    synthetic = PlenoxelsModelConfig().regularisation()
    real = PlenoxelsModelConfig(capture="real").regularisation()
    assert synthetic == {"lambda_tv_density": 1e-5, "lambda_tv_sh": 1e-3, "tv_early_only": True}  # svox2 syn.json
    assert real == {"lambda_tv_density": 5e-5, "lambda_tv_sh": 5e-3, "tv_early_only": False}  # svox2 tnt.json
    assert PlenoxelsModelConfig(capture="real", lambda_tv_sh=0.0).regularisation()["lambda_tv_sh"] == 0.0
    scaled = PlenoxelsModelConfig(capture="real", tv_weight_scale=0.1).regularisation()
    assert scaled["lambda_tv_density"] == pytest.approx(5e-6) and scaled["lambda_tv_sh"] == pytest.approx(5e-4)
    # TV at every resolution on photographs, only at the first on renderings.
    for capture, active_at_second in (("real", True), ("synthetic", False)):
        model = make_model((8, 16), (5,), capture=capture)
        assert model.tv_active
        model.grid.set_grid(torch.ones((16,) * 3, dtype=torch.bool), torch.zeros(16**3, 1), torch.zeros(16**3, 27))
        assert model.grid.resolution == 16 and model.tv_active == active_at_second
    with pytest.raises(ValueError, match="capture must be one of"):
        PlenoxelsModelConfig(capture="drawn").regularisation()


# ---------------------------------------------------------------------------------------------
# Coarse to fine
def blob_model(resolution: int):
    """A smooth opaque ball of radius ~0.6 with a smooth colour, on a dense grid."""
    model = make_model((resolution, 2 * resolution), (1000,))
    grid = model.grid
    r = torch.arange(resolution, dtype=torch.float32)
    centres = AABB[0, 0] + (r + 0.5) * (3.0 / resolution)
    x, y, z = torch.meshgrid(centres, centres, centres, indexing="ij")
    radius = torch.sqrt(x**2 + y**2 + z**2)
    density = 40.0 * torch.sigmoid((0.6 - radius) * 6.0) - 5.0  # negative (empty) far out
    sh = torch.zeros(resolution**3, 27)
    sh[:, 0] = (x.reshape(-1) * 0.4) / 0.2821  # red varies along x
    sh[:, 9] = (z.reshape(-1) * 0.4) / 0.2821
    grid.set_grid(torch.ones((resolution,) * 3, dtype=torch.bool), density.reshape(-1, 1), sh)
    return model


def test_prune_and_upsample_keep_the_rendered_field():
    model = blob_model(24)
    rays = camera_rays(400)
    model.train()
    model(rays)  # records each voxel's largest rendering weight along these rays
    model.eval()
    with torch.no_grad():
        before = model(rays)
    count_before = model.grid.num_occupied

    summary = model.advance_stage(48)
    assert model.grid.resolution == 48
    # Pruning removed the empty space: far fewer than the 48^3 a dense upsample would hold.
    assert model.grid.num_occupied < 0.5 * 48**3
    assert summary["occupied_before"] == count_before
    with torch.no_grad():
        after = model(rays)
    hit = before["accumulation"][:, 0] > 0.5
    assert hit.sum() > 50 and (~hit).sum() > 50
    # Same field, twice the vertices, half the step: close everywhere, very close on average.
    for key in ("rgb", "accumulation"):
        diff = (after[key] - before[key]).abs()
        assert diff.max() < 0.06 and diff.mean() < 0.01, (key, diff.max(), diff.mean())

    # A prune at the same resolution keeps the rendering (up to the pruned near-zero weights).
    model.train()
    model.grid.max_weight.zero_()
    model(rays)
    model.advance_stage(48)
    model.eval()
    with torch.no_grad():
        pruned = model(rays)
    assert (pruned["rgb"] - after["rgb"]).abs().max() < 0.02


def test_stage_change_rebuilds_optimizer_state():
    model = blob_model(12)
    trainer_config = copy.deepcopy(plenoxels_method.config)
    optimizers = Optimizers(trainer_config.optimizers, model.get_param_groups())
    model._optimizers = optimizers
    rays = camera_rays(64)
    batch = {"image": torch.rand(64, 3)}

    def step():
        model.train()
        optimizers.zero_grad_all()
        losses = model.get_loss_dict(model(rays), batch)
        sum(losses.values()).backward()
        optimizers.optimizer_step_all()

    step()
    model.advance_stage(24)
    assert optimizers.optimizers["sh"].param_groups[0]["params"][0] is model.grid.sh
    assert optimizers.parameters["density"][0] is model.grid.density
    before = model.grid.sh.detach().clone()
    step()
    assert not torch.equal(before, model.grid.sh.detach())
    assert optimizers.optimizers["sh"].state[model.grid.sh]["square_avg"].shape == model.grid.sh.shape


def test_resume_points_optimizers_at_the_loaded_grid():
    """Trainer order on resume: optimizers built on the fresh grid, checkpoint loaded (grid resized),
    then the training callbacks are requested."""
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes

    trained = blob_model(12)
    trained_opt = Optimizers(copy.deepcopy(plenoxels_method.config.optimizers), trained.get_param_groups())
    trained._optimizers = trained_opt
    rays, batch = camera_rays(64), {"image": torch.rand(64, 3)}
    trained.train()
    trained.advance_stage(24)
    sum(trained.get_loss_dict(trained(rays), batch).values()).backward()
    trained_opt.optimizer_step_all()

    resumed = blob_model(12)
    optimizers = Optimizers(copy.deepcopy(plenoxels_method.config.optimizers), resumed.get_param_groups())
    resumed.load_state_dict(trained.state_dict())
    optimizers.load_optimizers({k: v.state_dict() for k, v in trained_opt.optimizers.items()})
    resumed.get_training_callbacks(TrainingCallbackAttributes(optimizers=optimizers, grad_scaler=None, pipeline=None, trainer=None))
    assert optimizers.optimizers["sh"].param_groups[0]["params"][0] is resumed.grid.sh
    torch.testing.assert_close(
        optimizers.optimizers["sh"].state[resumed.grid.sh]["square_avg"],
        trained_opt.optimizers["sh"].state[trained.grid.sh]["square_avg"],
    )
    resumed.train()
    sum(resumed.get_loss_dict(resumed(rays), batch).values()).backward()
    optimizers.optimizer_step_all()


def test_learning_rate_schedule_is_svox2s():
    cfg = DelayedExponentialSchedulerConfig(lr_final=5e-2, decay_steps=250000, delay_steps=15000, delay_mult=1e-2)
    assert delayed_exponential_factor(0, 30.0, cfg) == pytest.approx(1e-2)
    assert delayed_exponential_factor(15000, 30.0, cfg) == pytest.approx((5e-2 / 30.0) ** (15000 / 250000))
    assert delayed_exponential_factor(250000, 30.0, cfg) * 30.0 == pytest.approx(5e-2)


# ---------------------------------------------------------------------------------------------
# Storage
@pytest.mark.parametrize("hole_fraction", [0.05, 0.99])  # bitmask index vs sorted-index list
def test_export_load_renders_identically_and_size_is_the_file(tmp_path, hole_fraction):
    trained = make_model((12,))
    trained.grid.set_grid(*_random_contents(12, hole_fraction))
    path = tmp_path / "grid.plnx"
    size = method_api.export_representation(trained, path)
    assert size == path.stat().st_size
    stored = read_grid(path)
    index_bytes = 4 * trained.grid.num_occupied if stored["header"]["index"] == "indices" else (12**3 + 7) // 8
    header_bytes = size - index_bytes - 28 * 4 * trained.grid.num_occupied
    assert 0 < header_bytes < 512  # nothing but the grid is stored
    assert stored["header"]["index"] == ("indices" if hole_fraction > 0.9 else "bitmask")

    fresh = make_model((20, 40), (10,))  # another resolution: loading resizes
    method_api.load_representation(fresh, path)
    assert fresh.benchmark_scalars() == trained.benchmark_scalars()
    rays = camera_rays(300, seed=5)
    trained.eval(), fresh.eval()
    with torch.no_grad():
        a, b = trained(rays), fresh(rays)
    assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["depth"], b["depth"])


def _random_contents(resolution, hole_fraction):
    gen = torch.Generator().manual_seed(7)
    occupancy = torch.rand((resolution,) * 3, generator=gen) >= hole_fraction
    count = int(occupancy.sum())
    return occupancy, 5 * torch.rand(count, 1, generator=gen), torch.randn(count, 27, generator=gen)


def test_checkpoint_state_dict_loads_into_a_fresh_model():
    trained = make_model((10,))
    trained.grid.set_grid(*_random_contents(10, 0.5))
    fresh = make_model((16,))
    fresh.load_state_dict(trained.state_dict())
    assert fresh.grid.resolution == 10 and torch.equal(fresh.grid.sh, trained.grid.sh)


# ---------------------------------------------------------------------------------------------
# Profiles and the CLI
def _resolve(config, dotted: str):
    obj = config
    for part in dotted.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


@pytest.mark.parametrize(
    "overrides", [bench.QUICK, bench.SMOKE, *(c.overrides for c in bench.QUICK_SWEEP.candidates)]
)
def test_profile_overrides_name_real_fields(overrides):
    config = plenoxels_method.config
    for key in overrides:
        _resolve(config, key)  # raises if the dotted path names no field
    res = overrides.get("pipeline.model.resolutions", config.pipeline.model.resolutions)
    steps = overrides.get("pipeline.model.upsample_steps", config.pipeline.model.upsample_steps)
    assert len(steps) == len(res) - 1 and list(steps) == sorted(steps)
    assert len(bench.QUICK_SWEEP) == 4


@pytest.mark.slow
def test_ns_train_plenoxels_runs_on_cpu(tmp_path):
    data = make_tiny_blender_scene(tmp_path / "scene")
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ns_train = Path(sys.executable).with_name("ns-train")
    cmd = [
        str(ns_train), "plenoxels", "--machine.device-type", "cpu", "--max-num-iterations", "6",
        "--output-dir", str(out), "--pipeline.datamanager.train-num-rays-per-batch", "64",
        "--pipeline.model.resolutions", "16", "32", "--pipeline.model.upsample-steps", "3",
        "--pipeline.model.weight-window", "2", "--steps-per-save", "5",
        "blender-data", "--data", str(data),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checkpoints = list(out.rglob("step-*.ckpt"))
    assert checkpoints, result.stdout[-2000:]
    # The checkpoint holds the upsampled (and pruned) grid: the stage change ran inside ns-train.
    state = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["pipeline"]
    links = state["_model.grid.links"]
    assert links.shape == (32, 32, 32)
    assert state["_model.grid.density"].shape[0] == int((links >= 0).sum())
