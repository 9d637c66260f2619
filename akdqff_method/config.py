"""``ns-train akdqff``: Adaptive Kernel Decomposition + Quantized Feature Fusion.

The defaults are paper-scale settings for the ``full`` GPU profile (800x800 images, 30k
iterations); its bench spec (``akdqff_method.bench``) shrinks them for the quick CPU budget.
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
from akdqff_method.distributed import AKDQFFPipelineConfig
from akdqff_method.model import AKDQFFModelConfig


def _adam(lr: float, max_steps: int = 30000, final_fraction: float = 0.1):
    return {
        "optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
        "scheduler": ExponentialDecaySchedulerConfig(lr_final=lr * final_fraction, max_steps=max_steps),
    }


akdqff_method = MethodSpecification(
    config=TrainerConfig(
        method_name="akdqff",
        vis="tensorboard",
        viewer=ViewerConfig(quit_on_train_completion=True),
        # CUDA only where there is a GPU: nerfstudio's default (CUDA) fails on a CPU-only machine.
        # --machine.num-devices N trains one model on N processes (akdqff_method.distributed),
        # on the CPU too (bench_base.distributed).
        machine=default_machine(),
        max_num_iterations=30000,
        steps_per_eval_batch=500,
        steps_per_save=2000,
        # VanillaPipeline, without the DDP wrapper on N > 1 processes (akdqff_method.distributed).
        pipeline=AKDQFFPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=BlenderDataParserConfig(),
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
            ),
            model=AKDQFFModelConfig(),
        ),
        optimizers={
            "kernel_centers": _adam(2e-3),
            "kernel_log_scales": _adam(5e-3),
            "kernel_log_amplitudes": _adam(1e-2),
            "kernel_features": _adam(2e-2),
            "decoder": _adam(5e-3),
        },
    ),
    description="AKDQFF: adaptive Gaussian-RBF kernels with k-means quantized features (CPU/GPU, pure torch).",
)
