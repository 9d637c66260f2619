"""The fixed-shape baselines on two CPU processes (gloo), started by nerfstudio's own ``launch``:
NeRF and Block-NeRF train one model data-parallel (DDP through ``DataParallelPipeline``); Plenoxels
refuses with a message instead of training ranks that drift apart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from nerfstudio.scripts.train import _set_random_seed, launch

from bench_base.distributed import CPUCapableMachineConfig, DataParallelPipeline, allow_cpu_processes
from akdqff_bench.profiles import get_profile
from akdqff_bench.testing import make_tiny_blender_scene, multiprocess_training_config

ITERATIONS = 6


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return make_tiny_blender_scene(tmp_path_factory.mktemp("ddp_scene"), n_train=4, n_val=1, n_test=1, size=16)


@pytest.fixture(autouse=True)
def cpu_processes(monkeypatch):
    import nerfstudio.scripts.train as train

    monkeypatch.setattr(train, "_distributed_worker", train._distributed_worker)  # put back afterwards
    monkeypatch.setenv("AKDQFF_BENCH_NO_DOWNLOAD", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one thread a process: 2 processes on 2 cores
    assert allow_cpu_processes()


def build_config(method: str, scene: Path, output_dir: Path, num_processes: int):
    config = multiprocess_training_config(method, scene, output_dir, num_processes, ITERATIONS, 32, 64,
                                          get_profile("smoke").overrides_for(method))
    config.save_config()  # as ns-train's main does: the run folder exists before the ranks start
    return config


def train_and_dump(local_rank: int, world_size: int, config, global_rank: int = 0) -> None:
    """nerfstudio's ``train_loop`` (seed + rank), then each rank saves its parameters."""
    _set_random_seed(config.machine.seed + global_rank)
    trainer = config.setup(local_rank=local_rank, world_size=world_size)
    trainer.setup()
    model = trainer.pipeline.model
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    first_batch = []
    next_train = trainer.pipeline.datamanager.next_train

    def recording_next_train(step):
        ray_bundle, batch = next_train(step)
        if not first_batch:
            first_batch.append(batch["indices"].clone())
        return ray_bundle, batch

    trainer.pipeline.datamanager.next_train = recording_next_train
    trainer.train()
    torch.save({
        "initial": initial,
        "final": {name: p.detach().clone() for name, p in model.named_parameters()},
        "wrapper": type(trainer.pipeline._model).__name__,
        "first_batch": first_batch[0],
    }, Path(config.output_dir) / f"rank{global_rank}.pt")


def launch_two(config) -> None:
    launch(train_and_dump, num_devices_per_machine=2, dist_url="auto", config=config,
           timeout=timedelta(seconds=120), device_type="cpu")


@pytest.mark.parametrize("method", ["nerf", "block-nerf"])
def test_baseline_trains_one_model_on_two_cpu_processes(method, scene, tmp_path):
    config = build_config(method, scene, tmp_path, num_processes=2)
    assert isinstance(config.machine, CPUCapableMachineConfig)
    assert issubclass(config.pipeline._target, DataParallelPipeline)
    launch_two(config)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert rank0["wrapper"] == rank1["wrapper"] == "DistributedDataParallel"
    assert not torch.equal(rank0["first_batch"], rank1["first_batch"])  # each rank drew its own rays
    # DDP's averaged gradients keep one model: the same parameters on both ranks, after they moved.
    moved = [name for name in rank0["final"] if not torch.equal(rank0["final"][name], rank0["initial"][name])]
    assert moved, "training changed nothing"
    for name, value in rank0["final"].items():
        assert torch.equal(value, rank1["final"][name]), name


def test_plenoxels_refuses_several_processes_with_a_reason(scene, tmp_path):
    config = build_config("plenoxels", scene, tmp_path, num_processes=2)
    with pytest.raises(mp.ProcessRaisedException, match="Plenoxels trains on one process"):
        launch_two(config)
