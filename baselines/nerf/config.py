"""``ns-train nerf``: the NeRF row of the benchmark (nerfstudio's vanilla-nerf, offline-safe)."""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.engine.optimizers import RAdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from bench_base.devices import default_machine
from bench_base.distributed import DataParallelPipelineConfig
from baselines.nerf.model import BenchNeRFModelConfig

nerf_method = MethodSpecification(
    config=TrainerConfig(
        method_name="nerf",
        # nerfstudio's vanilla-nerf defaults to wandb, which wants a login; tensorboard is local.
        vis="tensorboard",
        viewer=ViewerConfig(quit_on_train_completion=True),
        # CUDA only where there is a GPU: nerfstudio's default (CUDA) fails on a CPU-only machine.
        machine=default_machine(),
        max_num_iterations=300000,
        # nerfstudio's VanillaPipeline, whose DDP wrapper also works on CPU processes.
        pipeline=DataParallelPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=BlenderDataParserConfig(),
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
            ),
            model=BenchNeRFModelConfig(),
        ),
        optimizers={
            "fields": {"optimizer": RAdamOptimizerConfig(lr=5e-4, eps=1e-08), "scheduler": None},
            "temporal_distortion": {"optimizer": RAdamOptimizerConfig(lr=5e-4, eps=1e-08), "scheduler": None},
        },
    ),
    description="Vanilla NeRF (Mildenhall et al. 2020), offline-safe; the benchmark's NeRF row.",
)
