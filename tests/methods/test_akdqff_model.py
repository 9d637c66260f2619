"""AKDQFF model level: export → load round trip, adaptive Q on a model, `ns-train akdqff` end to end."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.scene_box import SceneBox

from bench_base import representation as method_api
from akdqff_method.bench import SMOKE as AKDQFF_SMOKE
from akdqff_bench.testing import make_tiny_blender_scene
from akdqff_method.export import MAGIC, MAGIC_PLAIN_HEADER, StoragePrecision, read_representation
from akdqff_method.model import AKDQFFModelConfig


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory) -> Path:
    return make_tiny_blender_scene(tmp_path_factory.mktemp("akdqff_scene"), size=16)


@pytest.fixture(scope="module")
def cameras(tiny_scene):
    return BlenderDataParserConfig(data=tiny_scene).setup().get_dataparser_outputs("test").cameras


def make_model(seed=0, **overrides):
    settings = dict(num_kernels_init=300, feature_dim=4, decoder_hidden_dim=8, sh_levels=2, grid_resolution=16, num_samples=24)
    config = AKDQFFModelConfig(seed=seed, **{**settings, **overrides})
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=6)
    model.eval()
    return model


def render(model, cameras, index=0):
    with torch.no_grad():
        return model.get_outputs_for_camera(cameras[index : index + 1])["rgb"]


def round_to_storage_precision(model, directory: Path):
    """Put the model at the precision its file stores (fixed-point kernels, fp16 codebook) by a
    trip through the file; how far that is from the trained model is tested separately."""
    path = directory / "rounding.akd"
    model.export_representation(path)
    model.load_representation(path)


def prepare(model, quantized: bool):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.field.decoder[2].bias[0] = 1.0  # dense enough that renders are not blank
        model.field.kernel_params["features"].normal_(0, 1, generator=generator)
    if quantized:
        model.start_quantization(16)
    # A non-trivial occupancy pattern, to prove it is stored.
    covered = model.field.index.covered_cells()
    model.occupancy.occupied = covered & (torch.rand(covered.shape, generator=generator) < 0.7)


@pytest.mark.parametrize("quantized", [True, False])
def test_export_then_load_renders_identically(tmp_path, cameras, quantized):
    model = make_model()
    prepare(model, quantized)
    round_to_storage_precision(model, tmp_path)
    expected = render(model, cameras)
    assert float(expected.min()) < 0.9  # not just the white background

    path = tmp_path / "model.akd"
    size = method_api.export_representation(model, path)
    assert size == path.stat().st_size == model.export_representation(path)
    header, _ = read_representation(path)
    assert header["features"] == ("quantized" if quantized else "raw")
    assert header["num_kernels"] == 300

    fresh = make_model(seed=1, num_kernels_init=77)  # a different K: load must resize
    method_api.load_representation(fresh, path)
    assert fresh.field.num_kernels == 300
    assert fresh.field.codebook_size == (16 if quantized else 0)
    loaded = render(fresh, cameras)
    assert torch.allclose(loaded, expected, atol=1e-6)
    # the loaded model writes the same file again
    again = tmp_path / "again.akd"
    fresh.export_representation(again)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("background", ["white", "black"])
def test_empty_space_shows_the_configured_background(cameras, background):
    """Real captures are composited on their layout's background (black), synthetic ones on white."""
    model = make_model(background_color=background)
    with torch.no_grad():
        model.field.decoder[2].bias[0] = -30.0  # no density anywhere: every ray sees the background
        model.field.decoder[2].weight[0].zero_()
    expected = 1.0 if background == "white" else 0.0
    assert torch.allclose(render(model, cameras), torch.full((1,), expected), atol=1e-4)


def test_version_2_files_with_a_plain_header_still_load(tmp_path, cameras):
    model = make_model()
    prepare(model, quantized=True)
    path = tmp_path / "model.akd"
    model.export_representation(path)
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    header_len = int.from_bytes(data[8:12], "little")
    header, blobs = read_representation(path)
    # The same file as version 2 wrote it: plain JSON header, older magic.
    plain = json.dumps({**header, "version": 2}, separators=(",", ":")).encode("utf-8")
    assert len(plain) > 2 * header_len  # the compressed header is much smaller
    old = tmp_path / "old.akd"
    old.write_bytes(MAGIC_PLAIN_HEADER + len(plain).to_bytes(4, "little") + plain + data[12 + header_len :])
    old_header, old_blobs = read_representation(old)
    assert old_blobs == blobs and old_header == {**header, "version": 2}
    from_version_3, from_version_2 = make_model(seed=3), make_model(seed=4)
    from_version_3.load_representation(path)
    from_version_2.load_representation(old)
    assert torch.equal(render(from_version_2, cameras), render(from_version_3, cameras))


@pytest.mark.parametrize(
    "precision, bytes_per_kernel, min_psnr",
    [
        # the defaults: 16-bit centres, 10-bit log bandwidths and log amplitudes (11 B a kernel)
        (StoragePrecision(), 6 + 3.75 + 1.25, 45),
        # coarser, as a CPU-scale profile might choose (8.75 B a kernel)
        (StoragePrecision(center_bits=12, scale_bits=8, amplitude_bits=8), 4.5 + 3 + 1, 30),
    ],
)
def test_export_is_compact_and_close_to_the_trained_model(tmp_path, cameras, precision, bytes_per_kernel, min_psnr):
    model = make_model(storage=precision)
    prepare(model, quantized=True)
    expected = render(model, cameras)  # full precision, not rounded
    path = tmp_path / "model.akd"
    size = model.export_representation(path)
    header, _ = read_representation(path)
    assert {entry["name"]: entry.get("bits") for entry in header["blobs"]}["centers"] == precision.center_bits
    fresh = make_model(seed=2)  # the file, not the config, says how it is encoded
    fresh.load_representation(path)
    mse = float((render(fresh, cameras) - expected).square().mean())
    assert -10 * math.log10(max(mse, 1e-12)) > min_psnr
    # kernels, a 4-bit index each, a 16x4 fp16 codebook, the fp32 decoder (~500 B), occupancy, header
    assert size < 300 * (bytes_per_kernel + 4 / 8) + 16 * 4 * 2 + 600 + 600 + 1500
    state_dict_bytes = sum(v.numel() * v.element_size() for v in method_api.representation_state_dict(model).values())
    assert size < 0.5 * state_dict_bytes


def test_quantization_starts_with_the_rule_and_q_settles_at_the_distinct_features():
    """Before any ray the codebook weights are the kernels' integrals a·Πs; features taking 8
    distinct values: from the initial Q=32 the rule walks down to 8 (4 would merge distinct ones).
    (Trained models: tests/methods/test_akdqff_adaptation.py.)"""
    torch.manual_seed(0)
    model = make_model(quantization_start_step=5, initial_codebook_size=32)
    weights = model.feature_weights()
    expected = (model.field.amplitudes() * model.field.scales().prod(-1)).detach()
    assert torch.allclose(weights, expected)
    generator = torch.Generator().manual_seed(1)
    distinct = 3.0 * torch.randn(8, 4, generator=generator)
    with torch.no_grad():
        model.field.kernel_params["features"].copy_(distinct[torch.arange(300) % 8] + 0.01 * torch.randn(300, 4, generator=generator))
    model.step = 5
    model.after_train_iteration(5)  # the quantization start step: the rule picks the first Q
    assert model.field.codebook_size == 8
    history = model.adaptation_history()["codebook"]
    assert [entry["codebook_size"] for entry in history] == [8]
    assert set(history[0]["measured"]) == {"32", "16", "8", "4"}
    assert history[0]["measured"]["4"] > model.config.codebook_rule.tolerance
    scalars = method_api.benchmark_scalars(model)
    assert scalars["kernels"] == 300 and scalars["codebook_size"] == 8
    assert scalars["codebook_relative_distortion"] < 1e-3


def test_checkpoint_state_dict_loads_into_a_model_of_another_size(cameras):
    model = make_model()
    prepare(model, quantized=True)
    state = copy.deepcopy(model.state_dict())
    other = make_model(seed=3, num_kernels_init=50)
    other.load_state_dict(state)
    # the occupancy grid travels with the checkpoint (ns-eval and ns-render load nothing else)
    assert torch.equal(other.occupancy.occupied, model.occupancy.occupied)
    assert other.field.num_kernels == 300 and other.field.codebook_size == 16
    assert torch.allclose(render(other, cameras), render(model, cameras), atol=1e-6)


def _cli_overrides(overrides):
    args = []
    for key, value in overrides.items():
        assert key.startswith("pipeline.") or key.startswith("max_num_iterations")
        args += ["--" + key.replace("_", "-"), str(value)]
    return args


@pytest.mark.skipif(shutil.which("ns-train") is None and not (Path(sys.prefix) / "bin" / "ns-train").exists(), reason="ns-train not installed")
def test_ns_train_akdqff_runs_on_cpu(tmp_path, tiny_scene):
    ns_train = shutil.which("ns-train") or str(Path(sys.prefix) / "bin" / "ns-train")
    command = [
        ns_train, "akdqff", "--machine.device-type", "cpu", "--max-num-iterations", "8",
        "--output-dir", str(tmp_path / "out"), "--pipeline.datamanager.train-num-rays-per-batch", "64",
        "--steps-per-eval-batch", "4", "--steps-per-eval-image", "4",
        *_cli_overrides(AKDQFF_SMOKE),
        "blender-data", "--data", str(tiny_scene),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checkpoints = list((tmp_path / "out").rglob("*.ckpt"))
    assert checkpoints, result.stdout[-2000:]
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)["pipeline"]
    num_kernels = state["_model.field.kernel_params.centers"].shape[0]
    # the smoke settings make allocation and quantization happen within the 8 iterations
    assert num_kernels != AKDQFF_SMOKE["pipeline.model.num_kernels_init"]
    assert state["_model.field.codebook"].shape[0] > 0

    # ns-eval and ns-render work on the checkpoint, like any nerfstudio method's
    config_file = next((tmp_path / "out").rglob("config.yml"))
    bin_dir = Path(ns_train).parent
    result = subprocess.run(
        [str(bin_dir / "ns-eval"), "--load-config", str(config_file), "--output-path", str(tmp_path / "eval.json")],
        capture_output=True, text=True, timeout=600, env=dict(env, CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    evaluation = json.loads((tmp_path / "eval.json").read_text())["results"]
    assert math.isfinite(evaluation["psnr"]) and evaluation["psnr"] > 5
    result = subprocess.run(
        [str(bin_dir / "ns-render"), "dataset", "--load-config", str(config_file), "--split", "test",
         "--rendered-output-names", "rgb", "--output-path", str(tmp_path / "renders")],
        capture_output=True, text=True, timeout=600, env=dict(env, CUDA_VISIBLE_DEVICES=""),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list((tmp_path / "renders").rglob("*.jpg")) + list((tmp_path / "renders").rglob("*.png"))) == 2
