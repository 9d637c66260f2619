"""Several processes for one run, on the CPU as on CUDA: ``ns-train METHOD --machine.num-devices N``.

nerfstudio 1.1.5 launches data-parallel training itself (``nerfstudio.scripts.train.launch``:
``mp.spawn``, NCCL on CUDA, gloo on the CPU), but two of its pieces assume CUDA:

- its worker (``_distributed_worker``) asserts that CUDA is available. :func:`allow_cpu_processes`
  swaps in :func:`cpu_capable_distributed_worker`, the same code with those assertions kept for
  CUDA only; :class:`CPUCapableMachineConfig` (every method's ``machine``, see
  :func:`bench_base.devices.default_machine`) does it when a CPU run asks for several processes.
- ``VanillaPipeline`` wraps the model in ``DDP(device_ids=[local_rank])``, which torch refuses for
  a module on the CPU. :class:`DataParallelPipeline` wraps with ``device_ids=None`` there (the
  module's own device), and exactly as nerfstudio does on CUDA.

The fixed-shape baselines (NeRF, Block-NeRF) use :class:`DataParallelPipeline`. AKDQFF changes its
parameter shapes during training and keeps its ranks in step without DDP
(``akdqff_method.distributed``); Plenoxels refuses several processes (its upsampling replaces the
grid tensors DDP would hold).
"""

from __future__ import annotations

import os
import sys
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, List, Literal, Optional, Type

import torch
import torch.distributed as dist
from nerfstudio.configs.base_config import MachineConfig
from nerfstudio.models.base_model import Model
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from nerfstudio.utils import comms
from torch.nn.parallel import DistributedDataParallel as DDP


def world_size_of_this_run() -> int:
    """The number of processes training this model (1 outside ``torch.distributed``)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


# ---------------------------------------------------------------------------- the pipeline
@dataclass
class DataParallelPipelineConfig(VanillaPipelineConfig):
    _target: Type = field(default_factory=lambda: DataParallelPipeline)


class DataParallelPipeline(VanillaPipeline):
    """nerfstudio's ``VanillaPipeline``; on N > 1 processes its DDP wrapper names a device only on
    CUDA, so that gloo processes on the CPU train too. With one process it is ``VanillaPipeline``.
    A model that keeps its ranks in step another way overrides :meth:`keep_ranks_in_step`."""

    def __init__(
        self,
        config: VanillaPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[Any] = None,
    ):
        # world_size=1 keeps VanillaPipeline from wrapping (its datamanager only sizes eval loader
        # worker counts with it); the real world size and the ranks' synchronisation follow.
        super().__init__(config, device, test_mode, world_size=1, local_rank=local_rank, grad_scaler=grad_scaler)
        self.world_size = world_size
        if world_size > 1:
            device_ids = [local_rank] if torch.device(device).type == "cuda" else None
            self.keep_ranks_in_step(device, device_ids, grad_scaler)
            dist.barrier(device_ids=device_ids)  # as VanillaPipeline does after wrapping

    def keep_ranks_in_step(self, device: str, device_ids: Optional[List[int]], grad_scaler: Optional[Any]) -> None:
        """Make the N processes train one model: nerfstudio's DDP wrapper (``device_ids`` None on
        the CPU, where torch refuses them for a module)."""
        self._model = typing.cast(Model, DDP(self._model, device_ids=device_ids, find_unused_parameters=True))


# ---------------------------------------------------------------------------- the launcher on a CPU
def cpu_capable_distributed_worker(
    local_rank: int,
    main_func: Callable,
    world_size: int,
    num_devices_per_machine: int,
    machine_rank: int,
    dist_url: str,
    config: Any,
    timeout: timedelta = timedelta(minutes=30),
    device_type: Literal["cpu", "cuda", "mps"] = "cuda",
) -> Any:
    """``nerfstudio.scripts.train._distributed_worker`` (1.1.5), with its two CUDA assertions kept
    for CUDA only, so that ``--machine.device-type cpu --machine.num-devices N`` runs N gloo
    processes. On a CPU, unless ``OMP_NUM_THREADS`` says otherwise, the machine's threads are
    shared among its processes (N processes of all-core thread pools would oversubscribe)."""
    if device_type == "cuda":
        assert torch.cuda.is_available(), "cuda is not available. Please check your installation."
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, torch.get_num_threads() // num_devices_per_machine))
    global_rank = machine_rank * num_devices_per_machine + local_rank
    dist.init_process_group(
        backend="nccl" if device_type == "cuda" else "gloo",
        init_method=dist_url,
        world_size=world_size,
        rank=global_rank,
        timeout=timeout,
    )
    assert comms.LOCAL_PROCESS_GROUP is None
    num_machines = world_size // num_devices_per_machine
    for i in range(num_machines):
        ranks_on_i = list(range(i * num_devices_per_machine, (i + 1) * num_devices_per_machine))
        pg = dist.new_group(ranks_on_i)
        if i == machine_rank:
            comms.LOCAL_PROCESS_GROUP = pg
    if device_type == "cuda":
        assert num_devices_per_machine <= torch.cuda.device_count()
    output = main_func(local_rank, world_size, config, global_rank)
    comms.synchronize()
    dist.destroy_process_group()
    return output


def allow_cpu_processes() -> bool:
    """Make nerfstudio's ``launch`` start its processes with :func:`cpu_capable_distributed_worker`.

    Returns False (and changes nothing) while ``nerfstudio.scripts.train`` is still being imported:
    ``ns-train`` imports the method plugins half-way through it, before its worker is defined."""
    train = sys.modules.get("nerfstudio.scripts.train")
    if train is None:
        import nerfstudio.scripts.train as train  # noqa: F811  (only reached outside ns-train's import)
    if getattr(train, "_distributed_worker", None) is None:
        return False
    train._distributed_worker = cpu_capable_distributed_worker  # type: ignore[attr-defined]
    return True


@dataclass
class CPUCapableMachineConfig(MachineConfig):
    """nerfstudio's ``MachineConfig``; one asking for several CPU processes (as
    ``ns-train nerf --machine.device-type cpu --machine.num-devices 2`` builds it) also lets
    nerfstudio's launcher start them (:func:`allow_cpu_processes`)."""

    def __post_init__(self) -> None:
        if self.device_type != "cuda" and self.num_devices * self.num_machines > 1:
            allow_cpu_processes()
