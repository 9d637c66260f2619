"""The evidence the paper promises, as plain numbers for the run notebook to plot.

- :func:`kernel_density_vs_detail`: do kernels gather where the scene is complex? Kernels per unit
  of visible surface in each coarse cell against the image-gradient energy per visible pixel of the
  training views (projected to the cell through the trained model's depth), beside a control with
  the detail shuffled across the cells.
- :func:`rate_distortion`: PSNR against stored size for several codebook sizes Q, from one
  trained model (re-quantize, export, load the file, render).
- ``plot_*``: matplotlib helpers for both.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from bench_base import metrics
from bench_base.files import write_atomically
from bench_base.views import render_view
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


class SurfaceDetailGrid:
    """Visible surface and its image detail, accumulated per coarse cell from lifted pixels.

    A pixel the model renders opaque is lifted to 3D with the rendered depth. Per coarse cell it
    keeps the summed image-gradient energy and the pixel count (their ratio is the detail *per
    visible pixel*), and, as the cell's visible-surface measure, how many voxels of a grid
    ``subdivision`` times finer hold a lifted point: about the surface area in the cell in units
    of a fine voxel's face, whatever the number of views or their distance (pixel counts grow with
    both)."""

    def __init__(self, aabb: torch.Tensor, grid_resolution: int, subdivision: int = 8) -> None:
        self.aabb = aabb.detach().cpu().float()
        self.grid_resolution = grid_resolution
        self.subdivision = subdivision
        num_cells = grid_resolution**3
        self.detail = np.zeros(num_cells)
        self.pixels = np.zeros(num_cells)
        self._fine_occupied = torch.zeros((grid_resolution * subdivision) ** 3, dtype=torch.bool)

    def cell_of(self, points: torch.Tensor, resolution: Optional[int] = None) -> torch.Tensor:
        """The cell of each point (the spatial index's numbering), -1 outside the box."""
        resolution = resolution or self.grid_resolution
        coords, inside = cell_coordinates(points, self.aabb, resolution)
        ids = linear_cell_index(coords, resolution)
        return torch.where(inside, ids, torch.full_like(ids, -1))

    def add(self, points: torch.Tensor, energy: torch.Tensor) -> None:
        """Fold in lifted surface points [N, 3] and their pixels' gradient energy [N]."""
        points, energy = points.detach().cpu().float(), energy.detach().cpu().double()
        cells = self.cell_of(points)
        keep = cells >= 0
        self.detail += np.bincount(cells[keep].numpy(), weights=energy[keep].numpy(), minlength=self.detail.size)
        self.pixels += np.bincount(cells[keep].numpy(), minlength=self.pixels.size)
        fine = self.cell_of(points[keep], self.grid_resolution * self.subdivision)
        self._fine_occupied[fine] = True

    def surface_voxels(self) -> np.ndarray:
        """Fine voxels holding visible surface, per coarse cell."""
        r, s = self.grid_resolution, self.subdivision
        fine = torch.nonzero(self._fine_occupied).flatten()
        fr = r * s
        coords = torch.stack([fine // (fr * fr), (fine // fr) % fr, fine % fr], dim=-1) // s
        return np.bincount(linear_cell_index(coords, r).numpy(), minlength=r**3).astype(np.float64)


def density_detail_statistics(
    kernels_per_cell: np.ndarray,
    detail_per_cell: np.ndarray,
    pixels_per_cell: np.ndarray,
    surface_per_cell: np.ndarray,
    min_surface: float = 8,
    permutations: int = 1000,
    seed: int = 0,
) -> Dict[str, Any]:
    """Do kernels gather where the scene is detailed, *per unit of visible surface*?

    Over the cells with at least ``min_surface`` visible surface (cells the surface barely clips
    give noisy ratios): kernels per unit of visible surface against the mean detail per visible
    pixel. Summed detail and kernel counts both grow with the surface in a cell, so correlating
    those (``summed_pearson_r``, kept for comparison) comes out high even when kernels ignore
    detail; the ratios do not. The control shuffles the detail across the same cells
    (``permutations`` times, fixed ``seed``): its r must sit near 0 (``shuffled_pearson_r``, the
    mean; ``shuffled_abs_r_95``, the 95th percentile of |r|), and ``permutation_p_value`` is the
    share of shuffles with |r| at least the measured one.
    """
    measured = (surface_per_cell >= min_surface) & (pixels_per_cell > 0)
    kernels_per_surface = np.where(measured, kernels_per_cell / np.maximum(surface_per_cell, 1e-12), np.nan)
    detail_per_pixel = np.where(measured, detail_per_cell / np.maximum(pixels_per_cell, 1e-12), np.nan)
    x, y = detail_per_pixel[measured], kernels_per_surface[measured]
    pearson = _correlation(x, y, "pearson")
    rng = np.random.default_rng(seed)
    shuffled_r = np.array([np.corrcoef(rng.permutation(x), y)[0, 1] for _ in range(permutations)]) if x.size > 2 else np.array([np.nan])
    return {
        "kernels_per_cell": kernels_per_cell,
        "detail_per_cell": detail_per_cell,
        "pixels_per_cell": pixels_per_cell,
        "surface_per_cell": surface_per_cell,
        "kernels_per_surface": kernels_per_surface,
        "detail_per_pixel": detail_per_pixel,
        "measured": measured,
        "shuffled_r": shuffled_r,
        "pearson_r": pearson,
        "spearman_r": _correlation(x, y, "spearman"),
        "shuffled_pearson_r": float(np.nanmean(shuffled_r)),
        "shuffled_abs_r_95": float(np.nanquantile(np.abs(shuffled_r), 0.95)),
        "permutation_p_value": float(np.mean(np.abs(shuffled_r) >= abs(pearson))) if np.isfinite(pearson) else float("nan"),
        "permutations": permutations,
        "summed_pearson_r": _correlation(detail_per_cell[measured], kernels_per_cell[measured], "pearson"),
        "num_measured_cells": int(measured.sum()),
        "min_surface": min_surface,
    }


@torch.no_grad()
def kernel_density_vs_detail(
    pipeline,
    grid_resolution: int = 8,
    views: Optional[int] = None,
    min_accumulation: float = 0.5,
    surface_subdivision: int = 8,
    min_surface: float = 8,
    permutations: int = 1000,
    seed: int = 0,
) -> Dict[str, Any]:
    """Kernels per unit of visible surface against detail per visible pixel, per coarse cell, with
    the shuffled-detail control (:func:`density_detail_statistics`; the surface measure is
    :class:`SurfaceDetailGrid`'s). Each training pixel the trained model renders opaque
    (accumulation ≥ ``min_accumulation``) is lifted to 3D with the rendered depth; kernels are
    counted by the cell of their centre. ``views``: that many training views, evenly spaced over the
    split (:func:`spread_views`), instead of all of them."""
    model = pipeline.model
    was_training = model.training
    model.eval()
    grid = SurfaceDetailGrid(model.field.aabb, grid_resolution, surface_subdivision)
    kernel_cells = grid.cell_of(model.field.kernel_params["centers"].detach().cpu())
    kernels_per_cell = np.bincount(kernel_cells[kernel_cells >= 0].numpy(), minlength=grid_resolution**3).astype(np.float64)
    dataset = pipeline.datamanager.train_dataset
    cameras = dataset.cameras
    chosen = spread_views(len(dataset), views)
    try:
        for index in chosen:
            camera = cameras[index : index + 1].to(model.device)
            outputs = model.get_outputs_for_camera(camera)
            rays = camera.generate_rays(camera_indices=0)
            points = (rays.origins + rays.directions * outputs["depth"]).reshape(-1, 3).cpu()
            opaque = (outputs["accumulation"].reshape(-1) >= min_accumulation).cpu()
            energy = image_gradient_energy(dataset.get_image_float32(index)).reshape(-1)
            grid.add(points[opaque], energy[opaque])
    finally:
        model.train(was_training)
    result = density_detail_statistics(
        kernels_per_cell, grid.detail, grid.pixels, grid.surface_voxels(), min_surface, permutations, seed
    )
    result.update(grid_resolution=grid_resolution, surface_subdivision=surface_subdivision,
                  views=len(chosen), training_views=len(dataset))
    return result


def spread_views(total: int, count: Optional[int]) -> List[int]:
    """``count`` indices spread evenly over ``range(total)``, first and last included (all of them
    for None or a count of at least ``total``): a capture's views are in path order, so the first
    few would see the scene from one side only."""
    if count is None or count >= total:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, max(1, count))})


def _standalone_copy(model):
    """A deep copy of the model without the training-time references (optimizers, datamanager)."""
    saved = {key: model.__dict__.get(key) for key in ("optimizers", "_last_batch")}
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


def plot_kernel_density_vs_detail(result: Dict, axes=None):
    """Two panels: the measurement, and the control: r over many shuffles of the detail across the
    same cells (its histogram, which must sit around 0), with the measured r marked."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    measured = result["measured"]
    y = result["kernels_per_surface"][measured]
    axes[0].scatter(result["detail_per_pixel"][measured], y, s=12, alpha=0.7)
    p_value = result["permutation_p_value"]
    p_text = f"p < {1 / result['permutations']:g}" if p_value == 0 else f"p = {p_value:.3f}"  # no shuffle reached r
    views = f", {result['views']} of {result['training_views']} training views" if result.get("views") not in (None, result.get("training_views")) else ""
    axes[0].set_title(f"kernels vs detail per visible surface\n(r = {result['pearson_r']:.2f}, ρ = {result['spearman_r']:.2f}, "
                      f"{result['num_measured_cells']} cells, {p_text}{views})", fontsize=9)
    axes[0].set_xlabel("image-gradient energy per visible pixel")
    axes[0].set_ylabel("kernels per unit visible surface\n(per occupied fine voxel)")
    shuffled = result["shuffled_r"][np.isfinite(result["shuffled_r"])]
    axes[1].hist(shuffled, bins=40, range=(-1, 1), color="C7", label=f"detail shuffled across the cells ({result['permutations']}×)")
    axes[1].axvline(result["pearson_r"], color="C0", linewidth=2, label=f"measured r = {result['pearson_r']:.2f}")
    axes[1].set_title(f"control: mean shuffled r = {result['shuffled_pearson_r']:.2f}, "
                      f"95% of |r| ≤ {result['shuffled_abs_r_95']:.2f}", fontsize=9)
    axes[1].set_xlabel("Pearson r (kernels per surface vs detail per pixel)")
    axes[1].set_ylabel("shuffles")
    axes[1].legend(fontsize=7)
    return axes


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


@dataclass(frozen=True)
class EvidenceSettings:
    """How much AKDQFF evidence a run notebook draws at one level (profiles.EVIDENCE_LEVELS): the
    rate-distortion curve at these Q (plus the raw, unquantized features), each point's decoder
    fine-tuned for ``finetune_steps`` training batches, PSNR on the first ``views`` test views; and
    kernel density against detail on ``density_views`` training views spread over the split (None:
    all of them)."""

    codebook_sizes: Tuple[int, ...]
    finetune_steps: int
    views: int
    density_views: Optional[int] = None

    def work(self) -> int:
        """Fine-tuning batches the curve costs. The grid's estimate scales a notebook's evidence cell
        by this between levels; the cell also holds the kernel-density renders, which this does not
        count, so a cheaper level estimated from a dearer one comes out low."""
        return (len(self.codebook_sizes) + 1) * self.finetune_steps


# "full" is the committed study's evidence; "short" (what the default ./run_all.sh draws) a sixth of
# the fine-tuning and the density on 16 training views spread over the split. What each costs and
# how far the short one's numbers move: results/quick/diagnostics/README.md.
EVIDENCE = {
    "full": EvidenceSettings(codebook_sizes=(4, 8, 16, 32, 64, 128, 256), finetune_steps=300, views=8),
    "short": EvidenceSettings(codebook_sizes=(8, 32, 128), finetune_steps=100, views=4, density_views=16),
}


def evidence_work(level: str) -> int:
    """The relative cost of the notebook's evidence at ``level`` (the grid's estimate scales by it)."""
    return EVIDENCE[level].work()


def notebook_figures(result, evidence: str = "full") -> List:
    """The run notebook's AKDQFF evidence.

    Kernel density is measured on the model loaded from the stored file. The rate-distortion curve
    needs the *raw* kernel features, which only the trained model holds: the stored file keeps
    codebook indices, so re-quantizing its features could only return the same Q vectors. The
    stored model gets the raw features back (after the density measurement) for that curve, and
    each point's decoder is fine-tuned on training rays (``EVIDENCE[evidence]``). The
    stored model's own point (its Q, its file, the same views) is plotted beside the curve.

    Writes the numbers to ``<run>/akdqff_evidence.json`` beside the record (the figures only show
    them) and returns the figures: kernel density against detail per unit of visible surface, the
    same with the detail shuffled across cells (the control), and the rate-distortion curve
    (``EVIDENCE[evidence]``); then K and Q over training (``history``).
    """
    import json

    import matplotlib.pyplot as plt

    if evidence not in EVIDENCE:
        raise ValueError(f"evidence must be one of {sorted(EVIDENCE)}, not {evidence!r}")
    curve = EVIDENCE[evidence]
    run_dir = Path(result.record_path).with_suffix("")
    density = kernel_density_vs_detail(result.pipeline, views=curve.density_views)
    views = result.test_views
    count = min(curve.views, len(views))
    # The stored model itself on the curve's views: the evaluation already rendered those from the
    # file (the same render and PSNR as render_psnr), so its per-image numbers are reused.
    stored_point = {
        "codebook_size": int(result.pipeline.model.field.codebook_size),
        "model_size_bytes": int(result.record["model_size_bytes"]),
        "psnr": float(np.mean([image["psnr"] for image in result.record["per_image"] if image["index"] < count])),
    }
    next_train_batch, finetune_steps = None, 0
    if result.train_pipeline is not None:
        next_train_batch, finetune_steps = result.train_pipeline.datamanager.next_train, curve.finetune_steps
        # Same kernels in the same order (the file was exported from the trained model): give the
        # stored model back its raw features, then re-quantize those for every Q.
        raw = result.train_pipeline.model.field.kernel_params["features"].detach()
        stored = result.pipeline.model.field.kernel_params["features"]
        if raw.shape != stored.shape:
            raise ValueError(f"trained and stored models differ in kernels: {tuple(raw.shape)} vs {tuple(stored.shape)}")
        with torch.no_grad():
            stored.copy_(raw.to(stored.device))
    points = rate_distortion(
        result.pipeline, views.cameras[:count], views.images[:count], curve.codebook_sizes,
        workdir=run_dir / "rate_distortion", include_unquantized=True,
        next_train_batch=next_train_batch, finetune_steps=finetune_steps,
    )
    numbers = {
        "kernel_density_vs_detail": {
            "measure": "kernels per unit visible surface (occupied fine voxels) vs image-gradient energy per visible pixel, per coarse cell",
            **{key: density[key] for key in (
                "pearson_r", "spearman_r", "num_measured_cells", "grid_resolution", "surface_subdivision", "min_surface",
                "views", "training_views",
                "shuffled_pearson_r", "shuffled_abs_r_95", "permutation_p_value", "permutations", "summed_pearson_r")},
        },
        "rate_distortion": {"evidence": evidence, "views": count, "finetune_steps": finetune_steps, "points": points,
                            "stored_model": stored_point},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(run_dir / "akdqff_evidence.json", json.dumps(numbers, indent=2))
    for stale in (run_dir / "rate_distortion").glob("*.akd"):
        stale.unlink()  # the sized files are only needed while measuring
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    plot_kernel_density_vs_detail(density, axes[:2])
    plot_rate_distortion(points, axes[2], stored=stored_point)
    axes[2].set_title(f"rate–distortion ({evidence} curve: {count} test views,\n"
                      f"decoder fine-tuned {finetune_steps} batches a point)", fontsize=9)
    fig.tight_layout()
    from akdqff_method.history import adaptation_figure

    return [fig, adaptation_figure(result.record.get("curve"), result.record.get("adaptation_history"))]
