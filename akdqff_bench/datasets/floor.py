"""What no model scores: the mean training image, scored on a scene's test views as a render is.

A PSNR means little without the score of an image that knows nothing of the scene's geometry. On a
capture whose photographs share a background and a framing, the average photograph already matches
much of every view; a method below it has learned less of the scene than the average of its
training images holds. The comparison prints this floor under each scene's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import numpy as np

from akdqff_bench.datasets import SceneSpec, resolve_scene
from akdqff_bench.datasets.validate import DatasetError
from bench_base import metrics


@dataclass(frozen=True)
class ImageFloor:
    """The mean of ``train_views`` training images scored on the first ``test_views`` test views."""

    psnr: float
    ssim: float
    train_views: int
    test_views: int


def _split_images(spec: SceneSpec, parser, split: str, limit: Optional[int] = None):
    """The split's images as the evaluation reads them (bench_base.views): RGB, an RGBA one
    composited on the scene's background colour (the Blender reader has done so already)."""
    from nerfstudio.data.datasets.base_dataset import InputDataset

    from bench_base.views import composited_ground_truth, evaluation_background

    dataset = InputDataset(parser.get_dataparser_outputs(split=split))
    background = evaluation_background(spec.settings)  # the scene's background_color, as a model config carries it
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in range(count):
        yield composited_ground_truth(dataset.get_image_float32(index), background)


def mean_image_floor(spec: SceneSpec, max_test_views: Optional[int] = None) -> ImageFloor:
    """The mean training image of ``spec`` (as its runs read it), scored by the suite's PSNR and
    SSIM on its test views (the first ``max_test_views``, as the profile evaluates), mean over views."""
    parser = spec.dataparser_config().setup()
    total, train_views = None, 0
    for image in _split_images(spec, parser, "train"):  # a running sum: a full-size split need not fit at once
        if total is not None and image.shape != total.shape:
            raise DatasetError(f"{spec.name}: training images of different sizes ({tuple(total.shape)}, {tuple(image.shape)}): no mean image")
        total = image.double() if total is None else total + image.double()
        train_views += 1
    if total is None:
        raise DatasetError(f"{spec.name}: no training images")
    mean = (total / train_views).float()
    psnrs, ssims = [], []
    for image in _split_images(spec, parser, "test", max_test_views):
        if image.shape != mean.shape:
            raise DatasetError(f"{spec.name}: a test image is {tuple(image.shape)}, the training images {tuple(mean.shape)}: no mean image")
        psnrs.append(metrics.psnr(mean, image))
        ssims.append(metrics.ssim(mean, image))
    if not psnrs:
        raise DatasetError(f"{spec.name}: no test images")
    return ImageFloor(float(np.mean(psnrs)), float(np.mean(ssims)), train_views, len(psnrs))


def floor_of_records(scene: str, scene_records: List[Dict[str, Any]], variant: str,
                     max_test_views: Optional[int] = None) -> Union[ImageFloor, str]:
    """The floor of ``scene`` (as the comparison labels it) for the records that measured it, or why
    there is none: its data is not here, or is not the data they were measured on (their
    ``data_fingerprint``). A scene given by path is found again by its records' layout and path."""
    first = scene_records[0]
    layout = (first.get("scene_settings") or {}).get("layout")
    # As labelled, by its data set's name ("mary-rose/tankard" is the named scene "mary-rose"), by path.
    names = [scene, str(first.get("dataset") or "")] + ([f"{layout}:{first['data_path']}"] if layout and first.get("data_path") else [])
    spec, errors = None, []
    for name in names:
        try:
            spec = resolve_scene(str(name), variant)
            break
        except ValueError as error:  # DatasetError and DatasetMissing are ValueErrors
            errors.append(str(error).splitlines()[0] if str(error) else type(error).__name__)
    if spec is None:
        return f"its data is not here ({errors[-1]})"
    measured = {str((r.get("data_fingerprint") or {}).get("sha256")) for r in scene_records if r.get("data_fingerprint")}
    if measured and spec.fingerprint()["sha256"] not in measured:
        return "the data here is not the data its runs were measured on (their data fingerprint differs)"
    try:
        return mean_image_floor(spec, max_test_views)
    except DatasetError as error:
        return str(error)
