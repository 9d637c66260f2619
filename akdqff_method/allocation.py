"""Adaptive kernel decomposition (AKD): when and where kernels are split or pruned.

The paper's allocation objective is K = argmin Σ‖error‖² + λ·C. :class:`AKDStrategy` approximates it
greedily every ``refine_every`` steps, in the shape of gsplat's strategies (``initialize_state`` /
``step_post_backward`` on a parameter dict and its optimizers), with one absolute λ
(``kernel_cost``) for both directions, in the units of the photometric error: squared colour
error per ray (summed over RGB, colours in [0, 1]), averaged over the rays seen since the last
allocation.

Each kernel accumulates, over the rays since the last allocation, its share of every sample it
takes part in, s = T_s α_s · a_k w_k(x_s) / Σ_j a_j w_j(x_s) (the sample's rendering weight split
among the kernels in proportion to what they add to its fused feature), and three sums per ray:

* *contribution* Σ s: the rendering weight it carries (what adaptive Q weights its feature by);
* *error* Σ s · ‖C − C_gt‖²: its share of the rays' squared colour error, the estimate of what
  splitting it can gain (at best its whole share goes; ``split_gain`` of it is assumed to);
* *signal* Σ s · ‖C_gt − background‖²: its share of the rays' colour against the background, the
  estimate of what removing it costs (the error its rays would show if its share went missing and
  nothing filled in; kernels on rays whose true colour is the background carry none).

Allocation then, with λ = ``kernel_cost``:

* prune where signal < λ: the kernel is worth less than the λ it costs;
* split where split_gain · error > λ (the gain pays for the added kernel) and signal ≥ 2λ (both
  children would carry enough to survive the next prune; otherwise the split is undone);
* ``max_split_fraction`` limits how many kernels split at once (1 lets every candidate split, so K
  at most doubles) and ``max_kernels`` is a memory guard that default settings should not reach.
  Each refinement returns the candidates the objective asked for and the splits each limit refused
  (``blocked_by_rate``, ``blocked_by_cap``), so a record shows whether K followed λ or a limit.

The tensor surgery (``split_kernels``, ``prune_kernels``) keeps every parameter and its Adam
state aligned, like gsplat/strategy/ops.py.

Split rule and what it promises: the two children sit at c ± ``split_offset``·s_u·u along the
parent's longest axis u, that axis' bandwidth shrinks by ``split_shrink``, and each child gets
amplitude a·/(2·split_shrink); so the kernel's integral (its total feature mass) is preserved
exactly, and with ``split_offset = 0`` and ``split_shrink = 1`` the field itself is unchanged
(quantized or not: children keep the parent's feature vector, hence its codebook entry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Union

import torch
from torch import Tensor, nn

ParamDict = Union[Dict[str, nn.Parameter], nn.ParameterDict]


# ---------------------------------------------------------------------------- tensor surgery
def _optimizer_for(optimizers: Any, name: str) -> Optional[torch.optim.Optimizer]:
    """nerfstudio's ``Optimizers`` or a plain {name: optimizer} dict; None when absent."""
    table = getattr(optimizers, "optimizers", optimizers)
    if table is None:
        return None
    return table.get(name)


@torch.no_grad()
def update_params_and_optimizers(
    param_fn: Callable[[str, Tensor], Tensor],
    state_fn: Callable[[str, Tensor], Tensor],
    params: ParamDict,
    optimizers: Any,
    group_names: Mapping[str, str],
) -> None:
    """Replace every parameter by ``param_fn(name, p)`` and each of its per-element optimizer
    states by ``state_fn(key, v)``; re-point the optimizer (and nerfstudio's ``Optimizers.parameters``,
    used for gradient clipping) at the new tensors."""
    for name in list(params.keys()):
        old = params[name]
        new = nn.Parameter(param_fn(name, old.data), requires_grad=old.requires_grad)
        optimizer = _optimizer_for(optimizers, group_names.get(name, name))
        if optimizer is not None:
            for group in optimizer.param_groups:
                for i, p in enumerate(group["params"]):
                    if p is not old:
                        continue
                    state = optimizer.state.pop(p, {})
                    for key, value in state.items():
                        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == old.shape[0]:
                            state[key] = state_fn(key, value)
                    group["params"][i] = new
                    optimizer.state[new] = state
            parameters = getattr(optimizers, "parameters", None)
            if isinstance(parameters, dict) and group_names.get(name, name) in parameters:
                parameters[group_names.get(name, name)] = [new]
        params[name] = new


@torch.no_grad()
def prune_kernels(params: ParamDict, optimizers: Any, state: Dict[str, Any], mask: Tensor, group_names: Mapping[str, str]) -> None:
    """Remove the kernels where ``mask`` is True (parameters, optimizer state, running state)."""
    keep = torch.nonzero(~mask).flatten()
    update_params_and_optimizers(lambda _, p: p[keep], lambda _, v: v[keep], params, optimizers, group_names)
    for key, value in state.items():
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == mask.shape[0]:
            state[key] = value[keep]


@torch.no_grad()
def split_kernels(
    params: ParamDict,
    optimizers: Any,
    state: Dict[str, Any],
    mask: Tensor,
    group_names: Mapping[str, str],
    offset: float = 0.5,
    shrink: float = 0.6,
    min_log_scale: float = -math.inf,
) -> None:
    """Split every kernel where ``mask`` is True in two along its longest axis (see module doc).

    The parent's row becomes the first child, the second child is appended. Optimizer moments of
    both children start from zero (the new kernels are new parameters)."""
    selected = torch.nonzero(mask).flatten()
    if selected.numel() == 0:
        return
    log_scales = params["log_scales"].data[selected]
    axis = log_scales.argmax(dim=-1)
    axis_scale = torch.exp(log_scales.gather(1, axis[:, None]))[:, 0]
    direction = torch.nn.functional.one_hot(axis, 3).to(log_scales)
    displacement = offset * axis_scale[:, None] * direction
    new_log_scales = log_scales + math.log(shrink) * direction
    new_log_scales = torch.maximum(new_log_scales, torch.full_like(new_log_scales, min_log_scale))
    # Keep the integral: a·Π s is what a kernel contributes in total.
    log_amplitude_change = -math.log(2.0) + (log_scales - new_log_scales).sum(-1)

    def param_fn(name: str, p: Tensor) -> Tensor:
        p = p.clone()
        child = p[selected].clone()
        if name == "centers":
            p[selected] = child - displacement
            child = child + displacement
        elif name == "log_scales":
            p[selected] = new_log_scales
            child = new_log_scales.clone()
        elif name == "log_amplitudes":
            p[selected] = child + log_amplitude_change
            child = child + log_amplitude_change
        return torch.cat([p, child])

    def state_fn(key: str, v: Tensor) -> Tensor:
        v = v.clone()
        v[selected] = 0
        return torch.cat([v, torch.zeros((selected.numel(), *v.shape[1:]), dtype=v.dtype, device=v.device)])

    update_params_and_optimizers(param_fn, state_fn, params, optimizers, group_names)
    for key, value in state.items():
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == mask.shape[0]:
            state[key] = torch.cat([value, value[selected]])


# ---------------------------------------------------------------------------- the strategy
PER_KERNEL_SUMS = ("contribution", "error", "signal")
# What one refinement did: kernels pruned and split, splits the objective asked for (candidates),
# and those the rate limit (max_split_fraction) and the memory guard (max_kernels) refused.
NO_CHANGE = {"pruned": 0, "split": 0, "candidates": 0, "blocked_by_rate": 0, "blocked_by_cap": 0}


@dataclass
class AKDStrategy:
    """Greedy minimiser of Σ‖error‖² + λ·C, run every ``refine_every`` steps (see module doc)."""

    refine_start: int = 500
    refine_stop: int = 25_000
    refine_every: int = 100
    kernel_cost: float = 1e-5
    """λ: squared colour error per ray one kernel must be worth (prune below, split above)."""
    split_gain: float = 0.5
    """Fraction of a kernel's error share a split is assumed to remove."""
    max_split_fraction: float = 0.1
    max_kernels: int = 1_000_000
    """Memory guard only; K is set by ``kernel_cost``."""
    min_kernels: int = 16
    split_offset: float = 0.5
    split_shrink: float = 0.6
    min_scale: float = 1e-3

    def __post_init__(self) -> None:
        if not self.kernel_cost > 0:
            raise ValueError(f"kernel_cost (λ) must be positive, got {self.kernel_cost}")
        if not 0 < self.split_gain <= 1:
            raise ValueError(f"split_gain must be in (0, 1], got {self.split_gain}")

    def initialize_state(self, num_kernels: int, device: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
        zeros = lambda: torch.zeros(num_kernels, device=device)  # noqa: E731
        state: Dict[str, Any] = {name: zeros() for name in PER_KERNEL_SUMS}
        # The last window's contribution per ray, kept across the reset (adaptive Q weights by it).
        state["usage"] = zeros()
        state.update(rays=0, steps=0)
        return state

    @torch.no_grad()
    def accumulate(self, state: Dict[str, Any], kernel_sums: Tensor, num_rays: int) -> None:
        """Fold one training batch into the running statistics.

        ``kernel_sums`` [K, 3]: per kernel, Σ over the batch's samples of its share s of the
        sample times the sample's rendering weight T·α, times that and the squared colour error
        ‖C − C_gt‖² of the sample's ray, and times that and ‖C_gt − background‖² of the ray
        (``RBFKernelField.kernel_sums``); ``num_rays`` the rays of the batch (including rays with no
        sample)."""
        for column, name in enumerate(("contribution", "error", "signal")):
            state[name] += kernel_sums[:, column].to(state[name])
        state["rays"] += int(num_rays)
        state["steps"] += 1

    def per_ray(self, state: Dict[str, Any], name: str) -> Tensor:
        """The accumulated ``name`` (contribution, error, signal) per ray seen."""
        return state[name] / max(state["rays"], 1)

    def kernel_usage(self, state: Dict[str, Any]) -> Optional[Tensor]:
        """Rendering weight per ray of each kernel: the current window, else the last one; None
        when neither has seen a ray."""
        if state["rays"] > 0 and float(state["contribution"].sum()) > 0:
            return self.per_ray(state, "contribution")
        if float(state["usage"].sum()) > 0:
            return state["usage"]
        return None

    def should_refine(self, step: int) -> bool:
        return self.refine_start <= step < self.refine_stop and step % self.refine_every == 0 and step > 0

    @torch.no_grad()
    def step_post_backward(
        self,
        params: ParamDict,
        optimizers: Any,
        state: Dict[str, Any],
        step: int,
        group_names: Mapping[str, str],
        agree: Optional[Callable[[Tensor], Tensor]] = None,
    ) -> Dict[str, int]:
        """Prune, then split, when ``step`` is an allocation step. Returns the counts.

        ``agree`` (several processes only) maps this rank's prune and split masks to the ones all
        ranks apply (rank 0's, ``distributed.RankSync.agree``)."""
        if not self.should_refine(step) or state["steps"] == 0:
            return dict(NO_CHANGE)
        result = self.refine(params, optimizers, state, group_names, agree)
        usage = self.per_ray(state, "contribution")  # aligned with the kernels after the surgery
        self.reset(state, params["centers"].shape[0], params["centers"].device)
        state["usage"] = usage
        return result

    @torch.no_grad()
    def refine(
        self,
        params: ParamDict,
        optimizers: Any,
        state: Dict[str, Any],
        group_names: Mapping[str, str],
        agree: Optional[Callable[[Tensor], Tensor]] = None,
    ) -> Dict[str, int]:
        num_kernels = params["centers"].shape[0]
        lam = self.kernel_cost
        signal = self.per_ray(state, "signal")
        prune = signal < lam
        # Never prune below the floor: keep the most useful of the candidates.
        max_prunable = max(num_kernels - self.min_kernels, 0)
        if int(prune.sum()) > max_prunable:
            order = torch.argsort(signal)
            prune = torch.zeros_like(prune)
            prune[order[:max_prunable]] = True
        if agree is not None:
            prune = agree(prune)
        num_pruned = int(prune.sum())
        if num_pruned:
            prune_kernels(params, optimizers, state, prune, group_names)
        num_kernels = params["centers"].shape[0]
        gain = self.split_gain * self.per_ray(state, "error")
        candidates = (gain > lam) & (self.per_ray(state, "signal") >= 2 * lam)
        num_candidates = int(candidates.sum())
        rate_limit = max(int(self.max_split_fraction * num_kernels), 1)
        room = max(self.max_kernels - num_kernels, 0)
        num_split = min(num_candidates, rate_limit, room)
        blocked_by_rate = max(num_candidates - rate_limit, 0)
        blocked_by_cap = min(num_candidates, rate_limit) - num_split
        mask = torch.zeros(num_kernels, dtype=torch.bool, device=gain.device)
        if num_split > 0:
            chosen = torch.topk(torch.where(candidates, gain, torch.full_like(gain, -1.0)), num_split).indices
            mask[chosen] = True
        if agree is not None:  # every rank takes part, whether it would split or not
            mask = agree(mask)
            num_split = int(mask.sum())
        if num_split > 0:
            split_kernels(
                params, optimizers, state, mask, group_names,
                offset=self.split_offset, shrink=self.split_shrink, min_log_scale=math.log(self.min_scale),
            )
        return {"pruned": num_pruned, "split": num_split, "candidates": num_candidates,
                "blocked_by_rate": blocked_by_rate, "blocked_by_cap": blocked_by_cap}

    def reset(self, state: Dict[str, Any], num_kernels: int, device: Union[str, torch.device]) -> None:
        state.update(self.initialize_state(num_kernels, device))
