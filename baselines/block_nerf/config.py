"""``ns-train block-nerf``: the Block-NeRF row of the benchmark (Tancik et al., CVPR 2022).

The defaults are the paper's structure with mip-NeRF's network per block (see
:class:`baselines.block_nerf.model.BlockNeRFModelConfig`); the quick profile shrinks the blocks.
"""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from bench_base.devices import default_machine
from baselines.block_nerf.model import BlockNeRFModelConfig
from baselines.block_nerf.pipeline import BlockNeRFPipelineConfig

block_nerf_method = MethodSpecification(
    config=TrainerConfig(
        method_name="block-nerf",
        vis="tensorboard",
        viewer=ViewerConfig(quit_on_train_completion=True),
        # CUDA only where there is a GPU: nerfstudio's default (CUDA) fails on a CPU-only machine.
        machine=default_machine(),
        max_num_iterations=300000,
        pipeline=BlockNeRFPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=BlenderDataParserConfig(),
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
            ),
            model=BlockNeRFModelConfig(),
        ),
        # mip-NeRF's Adam with its learning-rate warm-up (from 1% over 2500 steps, sine ramp), which
        # keeps the first steps from emptying the scene; no decay after it, like the benchmark's NeRF
        # row (the quick profile stops on wall-clock time, not at a known iteration).
        optimizers={
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=5e-4, eps=1e-08),
                "scheduler": ExponentialDecaySchedulerConfig(lr_pre_warmup=5e-6, warmup_steps=2500, ramp="cosine"),
            },
        },
    ),
    description="Block-NeRF (Tancik et al. 2022): blocks of mip-NeRF-style NeRFs over the camera region, "
    "visibility-culled and blended by inverse distance.",
)
