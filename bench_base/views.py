"""A scene's test views and one view rendered by a model: what the evaluation, the learning curve
and every method's own evidence use, so that all of them render the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from nerfstudio.data.datasets.base_dataset import InputDataset

from bench_base.representation import rendered_rgb


@dataclass
class TestViews:
    """Cameras and ground-truth images (composited on white) of a scene's test split."""

    __test__ = False  # not a pytest test class

    cameras: Any
    images: List[torch.Tensor]
    filenames: List[str]

    def __len__(self) -> int:
        return len(self.images)

    def first(self, count: int) -> "TestViews":
        return TestViews(self.cameras[:count], self.images[:count], self.filenames[:count])


def load_test_views(config, limit: Optional[int] = None) -> TestViews:
    """The test split of ``config``'s dataparser (a nerfstudio ``TrainerConfig``), the first ``limit`` views."""
    dataparser = config.pipeline.datamanager.dataparser.setup()
    outputs = dataparser.get_dataparser_outputs(split="test")
    dataset = InputDataset(outputs)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images = [dataset.get_image_float32(i)[..., :3] for i in range(count)]
    return TestViews(outputs.cameras[:count], images, [str(p) for p in outputs.image_filenames[:count]])


def render_view(model, cameras, index: int) -> torch.Tensor:
    """View ``index`` of ``cameras`` rendered by ``model``, colours clamped to [0, 1], on the CPU."""
    camera = cameras[index : index + 1].to(model.device)
    with torch.no_grad():
        outputs = model.get_outputs_for_camera(camera)
    return rendered_rgb(outputs).detach().clamp(0, 1).cpu()
