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
    """Cameras and ground-truth RGB images of a scene's test split (``composited_ground_truth``)."""

    __test__ = False  # not a pytest test class

    cameras: Any
    images: List[torch.Tensor]
    filenames: List[str]

    def __len__(self) -> int:
        return len(self.images)

    def first(self, count: int) -> "TestViews":
        return TestViews(self.cameras[:count], self.images[:count], self.filenames[:count])


def evaluation_background(model_config: Any) -> torch.Tensor:
    """The colour a model's renders show where nothing is, as nerfstudio's own evaluation takes it
    (``RGBRenderer.blend_background``): its ``background_color``, black for "random" and
    "last_sample" (and for a model that names none)."""
    colour = getattr(model_config, "background_color", None)
    if isinstance(colour, str):
        return torch.ones(3) if colour == "white" else torch.zeros(3)
    return torch.as_tensor(colour, dtype=torch.float32)[:3] if colour is not None else torch.zeros(3)


def composited_ground_truth(image: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """A ground-truth image as RGB. An RGBA one is composited on ``background``, as training
    composites it for the loss: dropping alpha would score renders against colours nobody trained
    toward. (The Blender reader composites on its own ``alpha_color`` before this; photographs in
    the other layouts come here with their alpha.)"""
    if image.shape[-1] == 4:
        alpha = image[..., 3:]
        return image[..., :3] * alpha + background.to(image) * (1 - alpha)
    return image[..., :3]


def load_test_views(config, limit: Optional[int] = None) -> TestViews:
    """The test split of ``config``'s dataparser (a nerfstudio ``TrainerConfig``), the first ``limit`` views."""
    dataparser = config.pipeline.datamanager.dataparser.setup()
    outputs = dataparser.get_dataparser_outputs(split="test")
    dataset = InputDataset(outputs)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    background = evaluation_background(config.pipeline.model)
    images = [composited_ground_truth(dataset.get_image_float32(i), background) for i in range(count)]
    return TestViews(outputs.cameras[:count], images, [str(p) for p in outputs.image_filenames[:count]])


def render_view(model, cameras, index: int) -> torch.Tensor:
    """View ``index`` of ``cameras`` rendered by ``model``, colours clamped to [0, 1], on the CPU."""
    camera = cameras[index : index + 1].to(model.device)
    with torch.no_grad():
        outputs = model.get_outputs_for_camera(camera)
    return rendered_rgb(outputs).detach().clamp(0, 1).cpu()
