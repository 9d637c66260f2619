"""One AKDQFF model trained on several processes: ``ns-train akdqff --machine.num-devices N``.

nerfstudio starts the processes (``nerfstudio.scripts.train.launch``: ``mp.spawn``, NCCL on CUDA,
gloo on the CPU) and its ``VanillaPipeline`` wraps the model in DDP once, for the parameters it
has then. AKDQFF replaces its kernel parameters at every split/prune (new tensors, new shapes) and
its codebook at every refit, so a DDP built at the start would keep syncing the old tensors. AKDQFF
is therefore not wrapped (:class:`AKDQFFPipeline`); :class:`RankSync` keeps the ranks in step:

- **Gradients** are averaged over the ranks (all-reduce, / N) in a step pre-hook of every
  optimizer, just before Adam reads them. The hooks belong to the optimizers, which splits and
  prunes patch in place, so they follow every change of shape; nothing depends on DDP's buckets.
- **Allocation** (split/prune): the per-kernel statistics (contribution, error, signal, rays) are
  summed over the ranks at each allocation step, so the rule sees every rank's rays; every rank
  applies it to the same sums and parameters, and the split and prune masks actually used are rank
  0's (broadcast), so K cannot differ between ranks even if a rounding difference flipped a
  threshold somewhere.
- **Codebook** (k-means refit, adaptive Q) and **occupancy grid**: decided on rank 0 (with the
  summed statistics) and broadcast. k-means and the density probes sum with ``index_add``, which is
  not bit-reproducible on CUDA, so ranks computing them each could drift apart.
- **The start**: rank 0's parameters and buffers are broadcast (the decoder's initialisation draws
  from the global RNG, which nerfstudio seeds with ``seed + rank`` so that each rank draws its own
  rays).

With one process nothing here runs: ``AKDQFFModel.rank_sync`` stays None, and the pipeline is
nerfstudio's ``VanillaPipeline`` unchanged (same numerics, same random numbers).

nerfstudio 1.1.5's worker (``_distributed_worker``) asserts CUDA; on the CPU the harness's
machine config swaps in the same worker without the CUDA-only assertions, for every method
(``bench_base.distributed``: nerfstudio's ``launch`` and ``mp.spawn`` are kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Type

import torch
import torch.distributed as dist
from torch import Tensor

from bench_base.distributed import DataParallelPipeline, DataParallelPipelineConfig
from akdqff_method.allocation import PER_KERNEL_SUMS


class RanksDiverged(RuntimeError):
    """Ranks that should hold the same model do not (different K, say): continuing would hang."""


class RankSync:
    """The collectives one AKDQFF model needs on N processes (see the module doc)."""

    def __init__(self, device: Any) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("RankSync needs an initialised torch.distributed process group")
        self.world_size = dist.get_world_size()
        self.rank = dist.get_rank()
        # NCCL moves CUDA tensors only: everything sent goes through the model's device.
        self.device = torch.device(device)

    @property
    def is_leader(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ primitives
    def broadcast_(self, tensor: Tensor) -> Tensor:
        """Overwrite ``tensor`` in place with rank 0's (same shape on every rank)."""
        if tensor.numel() == 0:
            return tensor
        if tensor.dtype == torch.bool:  # not every backend moves bool tensors
            carrier = tensor.to(self.device, torch.uint8)
            dist.broadcast(carrier, src=0)
            tensor.copy_(carrier.bool())
            return tensor
        carrier = tensor.data if tensor.device == self.device else tensor.data.to(self.device)
        dist.broadcast(carrier, src=0)
        if carrier is not tensor.data:
            tensor.data.copy_(carrier)
        return tensor

    def check_same(self, value: int, what: str) -> None:
        """Raise :class:`RanksDiverged` unless every rank passes the same ``value``."""
        extremes = torch.tensor([value, -value], dtype=torch.int64, device=self.device)
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
        largest, smallest = int(extremes[0]), -int(extremes[1])
        if largest != smallest:
            raise RanksDiverged(f"rank {self.rank}: {what} = {value}, but the ranks hold {smallest}..{largest}")

    def share_object(self, produce: Callable[[], Any]) -> Any:
        """``produce()`` on rank 0, its result on every rank. An exception on rank 0 is raised on
        every rank (the others would otherwise wait in the broadcast until the timeout)."""
        payload: Dict[str, Any] = {}
        if self.is_leader:
            try:
                payload = {"value": produce()}
            except Exception as error:  # re-raised below, on every rank
                payload = {"error": f"{type(error).__name__}: {error}", "exception": error}
        box = [{k: v for k, v in payload.items() if k != "exception"}]
        dist.broadcast_object_list(box, src=0, device=self.device)
        if "error" in box[0]:
            if self.is_leader:
                raise payload["exception"]
            raise RuntimeError(f"rank 0 failed: {box[0]['error']}")
        return box[0]["value"]

    # ------------------------------------------------------------------ what AKDQFF needs
    def broadcast_tensors(self, tensors) -> None:
        for tensor in tensors:
            self.broadcast_(tensor)

    def average_gradients_before_each_step(self, optimizers: Any) -> None:
        """Register, on every optimizer of nerfstudio's ``Optimizers``, a step pre-hook that
        replaces each parameter's gradient by its mean over the ranks."""
        for optimizer in getattr(optimizers, "optimizers", optimizers).values():
            optimizer.register_step_pre_hook(self._average_gradients)

    @torch.no_grad()
    def _average_gradients(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not params:
            return
        # One all-reduce per optimizer. A parameter without a gradient here (none in AKDQFF: every
        # parameter enters every forward pass) counts as a zero gradient.
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            mean = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
            if p.grad is None:
                p.grad = mean.clone()
            else:
                p.grad.copy_(mean)

    @torch.no_grad()
    def summed_statistics(self, state: Dict[str, Any]) -> Dict[str, Any]:
        """A copy of the allocation state whose per-kernel sums and ray count are summed over the
        ranks (``usage`` and ``steps`` are the same on every rank already)."""
        num_kernels = state[PER_KERNEL_SUMS[0]].shape[0]
        self.check_same(num_kernels, "K (kernels)")
        sums = torch.stack([state[name] for name in PER_KERNEL_SUMS]).to(self.device)
        dist.all_reduce(sums)
        rays = torch.tensor([int(state["rays"])], dtype=torch.int64, device=self.device)  # exact count
        dist.all_reduce(rays)
        summed = dict(state)
        for index, name in enumerate(PER_KERNEL_SUMS):
            summed[name] = sums[index].to(state[name].device)
        summed["rays"] = int(rays[0])
        return summed

    def agree(self, mask: Tensor) -> Tensor:
        """Rank 0's version of a per-kernel mask (the split or prune decision)."""
        self.check_same(int(mask.shape[0]), "mask length (K)")
        return self.broadcast_(mask.clone())


# ---------------------------------------------------------------------------- the pipeline
@dataclass
class AKDQFFPipelineConfig(DataParallelPipelineConfig):
    _target: Type = field(default_factory=lambda: AKDQFFPipeline)


class AKDQFFPipeline(DataParallelPipeline):
    """nerfstudio's ``VanillaPipeline`` without the DDP wrapper: on N > 1 processes the model keeps
    its ranks in step itself (``AKDQFFModel.enable_rank_sync``). With one process it is exactly
    ``VanillaPipeline``."""

    def keep_ranks_in_step(self, device: str, device_ids: Optional[List[int]], grad_scaler: Optional[Any]) -> None:
        if grad_scaler is not None and grad_scaler.is_enabled():
            # The scaler checks each rank's own gradients for inf before the hook averages
            # them: ranks could skip different steps.
            raise NotImplementedError("AKDQFF on several processes does not support mixed precision / a grad scaler")
        self.model.enable_rank_sync(RankSync(device))  # type: ignore[attr-defined]
