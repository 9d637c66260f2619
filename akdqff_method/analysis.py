"""The evidence the paper promises, as plain numbers for the run notebook to plot.

- :func:`kernel_density_vs_detail`: do kernels gather where the scene is complex? Kernels per
  coarse cell against the image-gradient energy of the training views, projected to the cell
  through the trained model's depth.
- :func:`rate_distortion`: PSNR against stored size for several codebook sizes Q, from one
  trained model (re-quantize, export, load the file, render).
- ``plot_*``: matplotlib helpers for both.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from akdqff_bench import metrics
from akdqff_bench.runner import render_view
from akdqff_method.quantization import kmeans
from akdqff_method.spatial_index import cell_coordinates, linear_cell_index


def _correlation(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """pandas' Pearson or Spearman (average ranks for ties); NaN when undefined."""
    return float(pd.Series(x).corr(pd.Series(y), method=method))


def image_gradient_energy(image: torch.Tensor) -> torch.Tensor:
    """|∇I|² per pixel of an H×W×3 image (grey level, central differences, edges replicated)."""
    grey = image[..., :3].mean(-1)
    padded = torch.nn.functional.pad(grey[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    gx = 0.5 * (padded[1:-1, 2:] - padded[1:-1, :-2])
    gy = 0.5 * (padded[2:, 1:-1] - padded[:-2, 1:-1])
    return gx.square() + gy.square()


@torch.no_grad()
def kernel_density_vs_detail(
    pipeline,
    grid_resolution: int = 8,
    max_views: Optional[int] = None,
    min_accumulation: float = 0.5,
) -> Dict[str, Union[np.ndarray, float, int]]:
    """Kernels per coarse cell against the local detail of the training views in that cell.

    Each training pixel that the trained model renders opaque (accumulation ≥ ``min_accumulation``)
    is lifted to 3D with the rendered depth; its image-gradient energy is added to the coarse cell
    that point falls in. Correlations are taken over the *active* cells (holding a kernel or a
    surface point) so that the many empty cells do not inflate them.

    Returns ``kernels_per_cell``, ``detail_per_cell``, ``surface_points_per_cell`` (flat arrays over
    grid_resolution³ cells), ``active``, ``pearson_r`` (kernels vs detail on active cells),
    ``spearman_r`` and ``num_active_cells``.
    """
    model = pipeline.model
    was_training = model.training
    model.eval()
    aabb = model.field.aabb.detach().cpu()
    num_cells = grid_resolution**3

    def cell_of(points: torch.Tensor) -> torch.Tensor:
        """The coarse cell of each point, -1 outside the box (the spatial index's cell numbering)."""
        coords, inside = cell_coordinates(points, aabb, grid_resolution)
        ids = linear_cell_index(coords, grid_resolution)
        return torch.where(inside, ids, torch.full_like(ids, -1))

    centers = model.field.kernel_params["centers"].detach().cpu()
    kernel_cells = cell_of(centers)
    kernels_per_cell = np.bincount(kernel_cells[kernel_cells >= 0].numpy(), minlength=num_cells).astype(np.float64)

    dataset = pipeline.datamanager.train_dataset
    cameras = dataset.cameras
    views = range(len(dataset)) if max_views is None else range(min(max_views, len(dataset)))
    detail = np.zeros(num_cells)
    surface = np.zeros(num_cells)
    for index in views:
        camera = cameras[index : index + 1].to(model.device)
        outputs = model.get_outputs_for_camera(camera)
        rays = camera.generate_rays(camera_indices=0)
        points = (rays.origins + rays.directions * outputs["depth"]).reshape(-1, 3).cpu()
        opaque = (outputs["accumulation"].reshape(-1) >= min_accumulation).cpu()
        energy = image_gradient_energy(dataset.get_image_float32(index)).reshape(-1)
        cells = cell_of(points)
        keep = opaque & (cells >= 0)
        detail += np.bincount(cells[keep].numpy(), weights=energy[keep].double().numpy(), minlength=num_cells)
        surface += np.bincount(cells[keep].numpy(), minlength=num_cells)
    model.train(was_training)
    active = (kernels_per_cell > 0) | (surface > 0)
    return {
        "kernels_per_cell": kernels_per_cell,
        "detail_per_cell": detail,
        "surface_points_per_cell": surface,
        "active": active,
        "pearson_r": _correlation(kernels_per_cell[active], detail[active], "pearson"),
        "spearman_r": _correlation(kernels_per_cell[active], detail[active], "spearman"),
        "num_active_cells": int(active.sum()),
        "grid_resolution": grid_resolution,
    }


def _standalone_copy(model):
    """A deep copy of the model without the training-time references (optimizers, datamanager)."""
    saved = {key: model.__dict__.get(key) for key in ("optimizers", "_fetch_held_aside", "_held_aside", "_last_batch")}
    for key in saved:
        model.__dict__[key] = None
    try:
        return copy.deepcopy(model)
    finally:
        model.__dict__.update(saved)


@torch.no_grad()
def render_psnr(model, cameras, images: Sequence[torch.Tensor]) -> float:
    """Mean PSNR of ``model``'s renders of ``cameras`` against ``images`` (H×W×3 in [0, 1], on white)."""
    model.eval()
    # The harness's own render and PSNR, so these points are comparable with the results table.
    scores = [metrics.psnr(render_view(model, cameras, index), torch.as_tensor(image)[..., :3].float().cpu())
              for index, image in enumerate(images)]
    return float(np.mean(scores))


def finetune_decoder(model, next_train_batch: Callable[[int], Tuple[Any, Dict]], steps: int, lr: float = 1e-3) -> None:
    """Train only the decoder for ``steps`` batches, the kernels (and codebook) held fixed.

    The decoder learned to read the features through the codebook training ended with. Re-quantizing
    to another Q moves every kernel's feature, so without this step a rate-distortion point measures
    how far the decoder is from its own codebook more than what Q costs (seen on the quick bed:
    a curve peaking at the trained Q and falling for larger Q)."""
    if steps <= 0:
        return
    kernel_params = list(model.field.kernel_params.values())
    trainable = [param.requires_grad for param in kernel_params]
    for param in kernel_params:
        param.requires_grad_(False)
    optimizer = torch.optim.Adam(model.field.decoder.parameters(), lr=lr, eps=1e-15)
    model.train()
    try:
        with torch.enable_grad():
            for step in range(steps):
                ray_bundle, batch = next_train_batch(step)
                outputs = model(ray_bundle.to(model.device))
                loss = model.get_loss_dict(outputs, batch)["rgb_loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        for param, flag in zip(kernel_params, trainable):
            param.requires_grad_(flag)
        model._last_batch = None
        model.eval()


@torch.no_grad()
def rate_distortion(
    pipeline,
    cameras,
    images: Sequence[torch.Tensor],
    codebook_sizes: Iterable[int] = (4, 8, 16, 32, 64, 256),
    workdir: Union[str, Path] = "rate_distortion",
    kmeans_iterations: int = 20,
    include_unquantized: bool = False,
    next_train_batch: Optional[Callable[[int], Tuple[Any, Dict]]] = None,
    finetune_steps: int = 0,
) -> List[Dict[str, float]]:
    """PSNR against stored size for several Q, from one trained model.

    For each Q the trained model's raw kernel features are re-quantized by k-means with Q
    centroids, the decoder alone is fine-tuned to them for ``finetune_steps`` batches of
    ``next_train_batch`` (see :func:`finetune_decoder`; 0 skips it), the model is exported, the
    file is loaded into a fresh copy, and that copy renders ``cameras`` (PSNR against ``images``).
    ``model_size_bytes`` is the file's size. ``include_unquantized`` adds a point with raw fp16
    features (``codebook_size`` 0), fine-tuned the same way.
    """
    if finetune_steps > 0 and next_train_batch is None:
        raise ValueError("fine-tuning the decoder needs next_train_batch")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    trained = pipeline.model
    features = trained.field.kernel_params["features"].detach()
    sizes = list(codebook_sizes) + ([0] if include_unquantized else [])
    points = []
    for size in sizes:
        model = _standalone_copy(trained)
        if size > 0:
            codebook, _ = kmeans(features, min(size, features.shape[0]), iterations=kmeans_iterations)
            model.field.set_codebook(codebook)
        else:
            model.field.set_codebook(None)
        finetune_decoder(model, next_train_batch, finetune_steps)  # type: ignore[arg-type]
        path = workdir / f"akdqff_q{size}.akd"
        file_size = model.export_representation(path)
        loaded = _standalone_copy(trained)
        loaded.load_representation(path)
        points.append(
            {"codebook_size": int(size), "model_size_bytes": int(file_size), "psnr": render_psnr(loaded, cameras, images)}
        )
    return points


def plot_kernel_density_vs_detail(result: Dict, ax=None):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    active = result["active"]
    ax.scatter(result["detail_per_cell"][active], result["kernels_per_cell"][active], s=12, alpha=0.7)
    ax.set_xlabel("image-gradient energy projected to the cell")
    ax.set_ylabel("kernels in the cell")
    ax.set_title(f"kernel density vs detail (r = {result['pearson_r']:.2f}, ρ = {result['spearman_r']:.2f})")
    return ax


def plot_rate_distortion(points: List[Dict], ax=None, label: str = "AKDQFF, re-quantized", stored: Optional[Dict] = None):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    points = sorted(points, key=lambda p: p["model_size_bytes"])
    ax.plot([p["model_size_bytes"] / 1024 for p in points], [p["psnr"] for p in points], marker="o", label=label)
    for p in points:
        ax.annotate(f"Q={p['codebook_size']}" if p["codebook_size"] else "raw", (p["model_size_bytes"] / 1024, p["psnr"]), fontsize=7)
    if stored is not None:
        ax.scatter([stored["model_size_bytes"] / 1024], [stored["psnr"]], marker="*", s=120, color="C3", zorder=3,
                   label=f"the stored model (Q={stored['codebook_size']})")
    ax.set_xlabel("stored model size (KiB)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("rate–distortion")
    ax.legend(fontsize=7)
    return ax


RATE_DISTORTION_CODEBOOK_SIZES = (4, 8, 16, 32, 64, 128, 256)
# Decoder fine-tuning per point, in training batches (about 5 s a point on 2 CPU cores at 1024
# rays). On a 3000-step quick bed model (trained Q=32, 4 views): Q=8/32/128 gave 25.67/26.31/25.74 dB
# with no fine-tuning, 26.18/26.42/26.12 after 100 steps and 26.31/26.43/26.49 after 300.
RATE_DISTORTION_FINETUNE_STEPS = 300


def notebook_figures(result, rate_distortion_views: int = 8) -> List:
    """The run notebook's AKDQFF evidence.

    Kernel density is measured on the model loaded from the stored file. The rate-distortion curve
    needs the *raw* kernel features, which only the trained model holds: the stored file keeps
    codebook indices, so re-quantizing its features could only return the same Q vectors. The
    stored model gets the raw features back (after the density measurement) for that curve, and
    each point's decoder is fine-tuned on training rays (``RATE_DISTORTION_FINETUNE_STEPS``). The
    stored model's own point (its Q, its file, the same views) is plotted beside the curve.

    Writes the numbers to ``<run>/akdqff_evidence.json`` beside the record (the figures only show
    them) and returns the figures: kernel density against detail, and the rate-distortion curve
    (the first ``rate_distortion_views`` test views). K and Q over training are in the run's curve.
    """
    import json

    import matplotlib.pyplot as plt

    run_dir = Path(result.record_path).with_suffix("")
    density = kernel_density_vs_detail(result.pipeline)
    views = result.test_views
    count = min(rate_distortion_views, len(views))
    # The stored model itself on the curve's views: the evaluation already rendered those from the
    # file (the same render and PSNR as render_psnr), so its per-image numbers are reused.
    stored_point = {
        "codebook_size": int(result.pipeline.model.field.codebook_size),
        "model_size_bytes": int(result.record["model_size_bytes"]),
        "psnr": float(np.mean([image["psnr"] for image in result.record["per_image"] if image["index"] < count])),
    }
    next_train_batch, finetune_steps = None, 0
    if result.train_pipeline is not None:
        next_train_batch, finetune_steps = result.train_pipeline.datamanager.next_train, RATE_DISTORTION_FINETUNE_STEPS
        # Same kernels in the same order (the file was exported from the trained model): give the
        # stored model back its raw features, then re-quantize those for every Q.
        raw = result.train_pipeline.model.field.kernel_params["features"].detach()
        stored = result.pipeline.model.field.kernel_params["features"]
        if raw.shape != stored.shape:
            raise ValueError(f"trained and stored models differ in kernels: {tuple(raw.shape)} vs {tuple(stored.shape)}")
        with torch.no_grad():
            stored.copy_(raw.to(stored.device))
    points = rate_distortion(
        result.pipeline, views.cameras[:count], views.images[:count], RATE_DISTORTION_CODEBOOK_SIZES,
        workdir=run_dir / "rate_distortion", include_unquantized=True,
        next_train_batch=next_train_batch, finetune_steps=finetune_steps,
    )
    evidence = {
        "kernel_density_vs_detail": {
            "pearson_r": density["pearson_r"], "spearman_r": density["spearman_r"],
            "num_active_cells": density["num_active_cells"], "grid_resolution": 8,
        },
        "rate_distortion": {"views": count, "finetune_steps": finetune_steps, "points": points, "stored_model": stored_point},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "akdqff_evidence.json", "w", encoding="utf-8") as f:
        json.dump(evidence, f, indent=2)
    for stale in (run_dir / "rate_distortion").glob("*.akd"):
        stale.unlink()  # the sized files are only needed while measuring
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_kernel_density_vs_detail(density, axes[0])
    plot_rate_distortion(points, axes[1], stored=stored_point)
    fig.tight_layout()
    return [fig]
