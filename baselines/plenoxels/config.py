"""``ns-train plenoxels``: Plenoxels (Fridovich-Keil et al., CVPR 2022) in plain PyTorch.

The defaults are the paper's synthetic-scene settings (svox2 ``opt/opt.py`` defaults with
``opt/configs/syn.json``): RMSProp (beta 0.95) with lr 30 on density and 1e-2 on SH, svox2's
delayed log-linear decay to 5e-2 / 5e-6 over 250k steps (density's lr ramps up over the first 15k
steps from 1% of its value), 5000 rays per batch, 128 -> 256 -> 512 with an upsample every
38,400 iterations, 128,000 iterations in all. The ``quick`` profile shortens the schedule
(its bench spec, ``baselines/plenoxels/bench.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Type

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.engine.optimizers import OptimizerConfig
from nerfstudio.engine.schedulers import Scheduler, SchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from bench_base.devices import default_machine
from baselines.plenoxels.model import PlenoxelsModelConfig


@dataclass
class RMSpropOptimizerConfig(OptimizerConfig):
    """RMSProp as svox2 steps it: v = a v + (1-a) g^2; p -= lr g / (sqrt(v) + eps), a = 0.95."""

    _target: Type = torch.optim.RMSprop
    alpha: float = 0.95
    """svox2's ``rms_beta``."""
    eps: float = 1e-8


@dataclass
class DelayedExponentialSchedulerConfig(SchedulerConfig):
    """svox2's ``get_expon_lr_func``: log-linear decay from lr to ``lr_final`` over ``decay_steps``,
    times a sine ramp from ``delay_mult`` to 1 over the first ``delay_steps`` (0: no ramp)."""

    _target: Type = field(default_factory=lambda: DelayedExponentialScheduler)
    lr_final: float = 5e-6
    decay_steps: int = 250000
    delay_steps: int = 0
    delay_mult: float = 1e-2


def delayed_exponential_factor(step: int, lr_init: float, cfg: DelayedExponentialSchedulerConfig) -> float:
    """Learning-rate multiplier (of ``lr_init``) at ``step``."""
    if cfg.delay_steps > 0:
        ramp = min(max(step / cfg.delay_steps, 0.0), 1.0)
        delay = cfg.delay_mult + (1.0 - cfg.delay_mult) * math.sin(0.5 * math.pi * ramp)
    else:
        delay = 1.0
    t = min(max(step / max(cfg.decay_steps, 1), 0.0), 1.0)
    log_lerp = math.exp(math.log(lr_init) * (1 - t) + math.log(cfg.lr_final) * t)
    return delay * log_lerp / lr_init


class DelayedExponentialScheduler(Scheduler):
    config: DelayedExponentialSchedulerConfig

    def get_scheduler(self, optimizer: torch.optim.Optimizer, lr_init: float) -> LRScheduler:
        return LambdaLR(optimizer, lambda step: delayed_exponential_factor(step, lr_init, self.config))


plenoxels_method = MethodSpecification(
    config=TrainerConfig(
        method_name="plenoxels",
        vis="tensorboard",
        viewer=ViewerConfig(quit_on_train_completion=True),
        # CUDA only where there is a GPU: nerfstudio's default (CUDA) fails on a CPU-only machine.
        machine=default_machine(),
        max_num_iterations=128000,
        steps_per_eval_batch=500,
        steps_per_save=10000,
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=BlenderDataParserConfig(),
                # Plenoxels' batch size (svox2 ``batch_size``); profiles set their own.
                train_num_rays_per_batch=5000,
                eval_num_rays_per_batch=5000,
            ),
            model=PlenoxelsModelConfig(),
        ),
        optimizers={
            "density": {
                "optimizer": RMSpropOptimizerConfig(lr=3e1),
                "scheduler": DelayedExponentialSchedulerConfig(
                    lr_final=5e-2, decay_steps=250000, delay_steps=15000, delay_mult=1e-2
                ),
            },
            "sh": {
                "optimizer": RMSpropOptimizerConfig(lr=1e-2),
                "scheduler": DelayedExponentialSchedulerConfig(lr_final=5e-6, decay_steps=250000, delay_steps=0),
            },
        },
    ),
    description="Plenoxels (Fridovich-Keil et al. 2022): sparse SH voxel grid, no network; plain PyTorch.",
)
