"""One AKDQFF model on two CPU processes (gloo), started by nerfstudio's own ``launch``.

One 2-process run (module fixture) trains through splits, prunes and codebook refits; each rank
dumps its model. Both must hold bit-identical parameters, codebook, occupancy grid, K and Q while
having drawn different rays. A 1-process run with twice the rays per batch must reach a comparable
test loss.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.scripts.train import _set_random_seed, launch

from bench_base.distributed import allow_cpu_processes
from akdqff_bench.methods import method_config
from akdqff_method.bench import SMOKE as AKDQFF_SMOKE
from akdqff_bench.testing import make_tiny_blender_scene, multiprocess_training_config
from akdqff_method.distributed import AKDQFFPipeline

ITERATIONS = 40
RAYS_PER_RANK = 64
# Smoke model, with allocation and codebook refits spaced so that the 40 steps also learn:
# refinements at 6, 12, ..., 36 and refits at 9, 15, ..., 39.
SCHEDULE = {
    **AKDQFF_SMOKE,
    "pipeline.model.strategy.refine_start": 6,
    "pipeline.model.strategy.refine_every": 6,
    "pipeline.model.quantization_start_step": 9,
    "pipeline.model.codebook_update_interval": 6,
    "pipeline.model.occupancy_warmup_steps": 8,
    "pipeline.model.occupancy_update_interval": 4,
}
# A run whose ranks stopped talking fails within this, instead of hanging the suite (gloo timeout).
COLLECTIVE_TIMEOUT = timedelta(seconds=120)


def build_config(scene: Path, output_dir: Path, rays_per_batch: int, num_processes: int):
    return multiprocess_training_config("akdqff", scene, output_dir, num_processes, ITERATIONS, rays_per_batch, 256, SCHEDULE)


def mean_test_error(model, scene: Path) -> float:
    """Mean squared error of the test views (composited on white, as the model renders)."""
    outputs = BlenderDataParserConfig(data=scene).setup().get_dataparser_outputs("test")
    dataset = InputDataset(outputs)
    errors = []
    model.eval()
    with torch.no_grad():
        for index in range(len(dataset)):
            image = model.renderer_rgb.blend_background(dataset.get_image_float32(index))
            rendered = model.get_outputs_for_camera(outputs.cameras[index : index + 1])["rgb"]
            errors.append(float((rendered - image).square().mean()))
    return sum(errors) / len(errors)


def train_and_dump(local_rank: int, world_size: int, config, global_rank: int = 0) -> None:
    """nerfstudio's ``train_loop`` (same seeding: seed + rank), then each rank saves its model."""
    _set_random_seed(config.machine.seed + global_rank)
    trainer = config.setup(local_rank=local_rank, world_size=world_size)
    trainer.setup()
    datamanager = trainer.pipeline.datamanager
    first_batches = []
    next_train = datamanager.next_train

    def recording_next_train(step):  # the rays each rank drew (no extra random numbers)
        ray_bundle, batch = next_train(step)
        if len(first_batches) < 3:
            first_batches.append(batch["indices"].clone())
        return ray_bundle, batch

    datamanager.next_train = recording_next_train
    model = trainer.pipeline.model
    refine_rays = []  # the rays behind each allocation decision
    refine = model.strategy.refine

    def recording_refine(params, optimizers, state, group_names, agree=None):
        refine_rays.append(int(state["rays"]))
        return refine(params, optimizers, state, group_names, agree)

    model.strategy.refine = recording_refine
    trainer.train()
    tensors = {f"field.{k}": v.detach().clone() for k, v in model.field.state_dict().items()}
    tensors.update({f"occupancy.{k}": v.clone() for k, v in model.occupancy.named_buffers()})
    dump: Dict[str, Any] = {
        "tensors": tensors,
        "optimizer_state": {
            name: [s.clone() for p in opt.param_groups[0]["params"] for s in opt.state[p].values() if torch.is_tensor(s)]
            for name, opt in trainer.optimizers.optimizers.items()
        },
        "kernels": model.field.num_kernels,
        "codebook_size": model.field.codebook_size,
        "history": model.adaptation_history(),
        "split": model.kernels_split_total,
        "pruned": model.kernels_pruned_total,
        "first_batches": torch.cat(first_batches),
        "refine_rays": refine_rays,
        "pipeline_wrapped": type(trainer.pipeline._model).__name__,
        "rank_sync": model.rank_sync is not None,
        "test_mse": mean_test_error(model, Path(config.data)) if global_rank == 0 else None,
    }
    torch.save(dump, Path(config.output_dir) / f"rank{global_rank}.pt")


def run(scene: Path, output_dir: Path, num_processes: int, rays_per_batch: int):
    output_dir.mkdir(parents=True, exist_ok=True)
    config = build_config(scene, output_dir, rays_per_batch, num_processes)
    # As ns-train's main does before launch: it creates the run folder. Without it every rank's
    # trainer.train() tests for the folder and creates it (save_dataparser_transform), and the
    # slower rank fails with FileExistsError.
    config.save_config()
    if num_processes > 1:
        assert allow_cpu_processes()  # what the machine config does when ns-train builds it
    # nerfstudio's launcher: mp.spawn + gloo on a free port ("auto"); a failing rank makes
    # join() terminate the others and raise here.
    launch(
        train_and_dump,
        num_devices_per_machine=num_processes,
        dist_url="auto",
        config=config,
        timeout=COLLECTIVE_TIMEOUT,
        device_type="cpu",
    )
    return [torch.load(output_dir / f"rank{r}.pt", weights_only=False) for r in range(num_processes)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return make_tiny_blender_scene(tmp_path_factory.mktemp("dist_scene"), n_train=6, n_val=2, n_test=2, size=24)


@pytest.fixture(scope="module")
def two_ranks(scene, tmp_path_factory, monkeypatch_module):
    import nerfstudio.scripts.train as train

    # run() swaps in the CPU-capable worker; nerfstudio's own is put back after this module.
    monkeypatch_module.setattr(train, "_distributed_worker", train._distributed_worker)
    return run(scene, tmp_path_factory.mktemp("two_ranks"), num_processes=2, rays_per_batch=RAYS_PER_RANK)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AKDQFF_BENCH_NO_DOWNLOAD", "1")
        patch.setenv("OMP_NUM_THREADS", "1")  # one thread a process: 2 processes on 2 cores
        yield patch


def test_ranks_hold_the_same_model_after_splits_prunes_and_refits(two_ranks):
    rank0, rank1 = two_ranks
    # The model was trained through what changes its shapes, outside DDP, with the sync on.
    assert rank0["split"] > 0 and rank0["pruned"] > 0, (rank0["split"], rank0["pruned"])
    refits = [entry for entry in rank0["history"]["codebook"] if entry["relative_distortion"] is not None]
    assert len(refits) >= 2
    assert len(rank0["history"]["allocation"]) >= 5
    assert rank0["pipeline_wrapped"] == rank1["pipeline_wrapped"] == "AKDQFFModel"
    assert rank0["rank_sync"] and rank1["rank_sync"]
    # Each rank drew its own rays ...
    assert not torch.equal(rank0["first_batches"], rank1["first_batches"])
    # ... and both hold the same model, bit for bit: kernels, features, codebook, decoder, occupancy.
    assert rank0["kernels"] == rank1["kernels"] and rank0["codebook_size"] == rank1["codebook_size"] > 0
    assert rank0["tensors"].keys() == rank1["tensors"].keys()
    for name in rank0["tensors"]:
        assert torch.equal(rank0["tensors"][name], rank1["tensors"][name]), name
    assert {"field.kernel_params.features", "field.codebook", "field.decoder.0.weight", "occupancy.occupied"} <= set(rank0["tensors"])
    assert rank0["history"] == rank1["history"]
    # Adam's moments too (they follow splits and prunes; averaged gradients keep them equal).
    for name, states in rank0["optimizer_state"].items():
        for mine, theirs in zip(states, rank1["optimizer_state"][name]):
            assert torch.equal(mine, theirs), name


def test_two_ranks_learn_as_one_process_with_twice_the_rays(two_ranks, scene, tmp_path, monkeypatch_module):
    (one,) = run(scene, tmp_path / "one", num_processes=1, rays_per_batch=2 * RAYS_PER_RANK)
    assert not one["rank_sync"]  # one process: the single-process path, no collectives
    # Every allocation decided on the same number of rays: 2 ranks x 64 as 1 x 128 (a rank
    # deciding from its own statistics alone would have seen half).
    assert two_ranks[0]["refine_rays"] == one["refine_rays"] and len(one["refine_rays"]) >= 5
    two_psnr = -10 * math.log10(two_ranks[0]["test_mse"])
    one_psnr = -10 * math.log10(one["test_mse"])
    # Comparable, not equal: the runs draw different rays (ranks seeded 0 and 1 against one process
    # seeded 0), so allocation and k-means see different statistics and K differs (~500 each).
    # Measured here: untrained 9.6 dB; after 40 steps one process at 128 rays 11.08-11.55 dB over
    # seeds 0-3, two processes at 64 rays 11.23 (seeds 0/1) and 11.62 (2/3). The bound is about
    # twice that seed spread. It fails when the two-process run learns less (a rank stuck, a
    # wrong update, decisions from stale or foreign state) or not at all. It cannot tell 2 x 64
    # rays from 1 x 64 (11.23 dB too: 40 smoke steps are not limited by gradient noise), which is
    # what the ray count above checks; with fixed seeds and one thread a process the numbers repeat
    # on one machine, and another CPU's rounding may move them within that spread.
    assert one_psnr > 10.5 and two_psnr > 10.5, (one_psnr, two_psnr)
    assert abs(two_psnr - one_psnr) < 1.0, (one_psnr, two_psnr)


def test_machine_config_lets_nerfstudio_start_cpu_processes(monkeypatch):
    """What ``ns-train akdqff --machine.device-type cpu --machine.num-devices 2`` relies on: the
    config tyro builds installs the CPU-capable worker into nerfstudio's launcher; CUDA and single
    processes keep nerfstudio's own."""
    import nerfstudio.scripts.train as train

    from bench_base.distributed import CPUCapableMachineConfig, cpu_capable_distributed_worker

    def nerfstudio_worker(*args, **kwargs):  # stands for nerfstudio's own (an earlier test may have swapped it)
        raise AssertionError("not to be called")

    monkeypatch.setattr(train, "_distributed_worker", nerfstudio_worker)  # restored afterwards
    CPUCapableMachineConfig(device_type="cpu", num_devices=1)
    CPUCapableMachineConfig(device_type="cuda", num_devices=2)
    assert train._distributed_worker is nerfstudio_worker
    CPUCapableMachineConfig(device_type="cpu", num_devices=2)
    assert train._distributed_worker is cpu_capable_distributed_worker
    assert isinstance(method_config("akdqff").machine, CPUCapableMachineConfig)
    assert method_config("akdqff").pipeline._target is AKDQFFPipeline
