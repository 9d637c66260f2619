"""The vanilla pipeline (the harness's, whose DDP wrapper also works on CPU processes), plus one
step: lay the blocks out over the training cameras.

The model is built before it can see any camera (nerfstudio hands a model only the scene box and
the image count), so the pipeline, which holds the training dataset, places the blocks right after
building it. The layout is a deterministic function of the cameras and lives in the model's
buffers, so checkpoints and exported representations carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Type

from torch.cuda.amp.grad_scaler import GradScaler

from bench_base.distributed import DataParallelPipeline, DataParallelPipelineConfig


@dataclass
class BlockNeRFPipelineConfig(DataParallelPipelineConfig):
    _target: Type = field(default_factory=lambda: BlockNeRFPipeline)


class BlockNeRFPipeline(DataParallelPipeline):
    def __init__(
        self,
        config: BlockNeRFPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[GradScaler] = None,
    ):
        super().__init__(
            config, device, test_mode=test_mode, world_size=world_size, local_rank=local_rank, grad_scaler=grad_scaler
        )
        cameras = self.datamanager.train_dataset.cameras  # type: ignore[attr-defined]
        self.model.place_blocks(cameras.camera_to_worlds[:, :3, 3])
