"""The comparison's figures: quality against stored size and against training time (with their Pareto
fronts), update speed, and the same test views rendered by every method."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np

from akdqff_bench.groups import default_groups, group_records, measured_scenes, method_rank, ok_records, scene_label, spread
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.records import load_records, runs_dir
from akdqff_bench.report.format import MISSING, PAGE_WIDTH_INCHES, method_color, method_label
from bench_base.files import atomic_path
from bench_base.spec import DEFAULT_CAPACITY


def pareto_front(points: Sequence[Tuple[float, float]], x_tolerance: float = 0.0) -> List[int]:
    """Indices of the points no other point beats: smaller-or-equal x with higher-or-equal y, one
    of them strictly. x values within ``x_tolerance`` (relative) count as equal, so curves sampled
    at the same fraction of a budget compare by y alone. Sorted by x."""
    front = []
    for i, (x, y) in enumerate(points):
        def beaten_by(x2, y2):
            same_x = abs(x2 - x) <= x_tolerance * max(abs(x), abs(x2))
            return (same_x and y2 > y) or (x2 < x and not same_x and y2 >= y) or (x2 == x and y2 > y)

        dominated = any(beaten_by(x2, y2) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _scene_axes(scenes: List[str], height: float = 3.6):
    columns = min(2, max(1, len(scenes)))
    rows = -(-max(1, len(scenes)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH_INCHES if columns > 1 else PAGE_WIDTH_INCHES * 0.7, height * rows), squeeze=False)
    for ax in axes.ravel()[len(scenes):]:
        ax.axis("off")
    return fig, axes.ravel()


def _draw_front(ax, xs: List[float], ys: List[float], x_tolerance: float = 0.0) -> None:
    front = pareto_front(list(zip(xs, ys)), x_tolerance)
    if not front:
        return
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.step(fx, fy, where="post", color="black", linestyle=":", linewidth=1, zorder=1)
    ax.scatter(fx, fy, s=130, facecolors="none", edgecolors="black", linewidths=1, zorder=4, label="Pareto front")


def figure_psnr_vs_size(records: List[Dict[str, Any]]):
    """Per scene: each method's capacity points (mean ± std over seeds; the seeds as small dots)
    joined by size, PSNR against stored size on a log axis, the Pareto front ringed."""
    groups = group_records(records)
    scenes = measured_scenes(records)
    fig, axes = _scene_axes(scenes or ["(no measured runs)"])
    for ax, scene in zip(axes, scenes):
        front_x, front_y = [], []
        for method in sorted({m for (s, m, _) in groups if s == scene}, key=method_rank):
            points = [(capacity, runs) for (s, m, capacity), runs in groups.items() if s == scene and m == method]
            color = method_color(method)
            sizes = [spread(runs, "model_size_bytes") for _, runs in points]
            psnrs = [spread(runs, "psnr") for _, runs in points]
            order = np.argsort([s.mean for s in sizes])
            xs = [sizes[i].mean for i in order]
            ys = [psnrs[i].mean for i in order]
            ax.plot(xs, ys, color=color, marker="o", ms=5, label=method_label(method), zorder=3)
            for i in order:
                ax.errorbar(sizes[i].mean, psnrs[i].mean, xerr=np.nan_to_num(sizes[i].std), yerr=np.nan_to_num(psnrs[i].std), color=color,
                            capsize=2, linewidth=1, zorder=2)
                seeds = points[i][1]
                ax.scatter([r["model_size_bytes"] for r in seeds], [r["psnr"] for r in seeds], s=8, color=color, alpha=0.45, zorder=2)
                if len(points) > 1:
                    ax.annotate(points[i][0], (sizes[i].mean, psnrs[i].mean), textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)
            front_x += xs
            front_y += ys
        _draw_front(ax, front_x, front_y)
        ax.set_xscale("log")
        ax.set_xlabel("stored model size (bytes, log scale)")
        ax.set_ylabel("test PSNR (dB)")
        ax.set_title(scene, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Quality against stored size: mean ± std over seeds, seeds as dots", fontsize=10)
    fig.tight_layout()
    return fig


def curve_clock(runs: List[Dict[str, Any]]) -> str:
    """The curve's time axis: the clock the budget was on, so runs of one budget end at one x."""
    cpu = all(r.get("budget_clock") == "cpu" and all("train_cpu_seconds" in p for p in r.get("curve") or []) for r in runs)
    return "train_cpu_seconds" if cpu and runs else "train_seconds"


def _on_schedule(curve: List[Dict[str, Any]], points: int) -> List[Dict[str, Any]]:
    """``curve`` at ``points`` evaluations of its schedule: a curve evaluated at k/n of the budget
    keeps every (n/points)-th point (a short-evidence run's schedule is every second point of the
    full one, profiles.CURVE_STRIDE); a schedule that does not nest keeps its first ``points``."""
    if points and len(curve) % points == 0:
        return curve[len(curve) // points - 1 :: len(curve) // points]
    return curve[:points]


def _mean_curve(runs: List[Dict[str, Any]]):
    """The seeds' learning curves point by point, on the coarsest of their schedules."""
    length = min((len(r.get("curve") or []) for r in runs), default=0)
    if not length:
        return None
    curves = [_on_schedule(r["curve"], length) for r in runs]
    clock = curve_clock(runs)
    seconds = np.array([[c[i][clock] for i in range(length)] for c in curves])
    psnr = np.array([[c[i]["psnr"] for i in range(length)] for c in curves])
    return seconds.mean(0), psnr.mean(0), psnr.min(0), psnr.max(0)


def figure_psnr_vs_time(records: List[Dict[str, Any]], log_time: bool = False, marks: Sequence[Tuple[float, str]] = ()):
    """Per scene: each method's learning curve (PSNR on the curve's test views against training
    time), the mean over seeds with the seeds' min–max band; the front of the best PSNR reached
    by each time ringed. ``log_time``: a log time axis; ``marks``: (seconds, label) drawn as
    vertical lines (a shorter study's budget)."""
    groups = group_records(records)
    scenes = measured_scenes(records)
    fig, axes = _scene_axes(scenes or ["(no measured runs)"])
    for ax, scene in zip(axes, scenes):
        front_x, front_y = [], []
        for (s, method, capacity), runs in groups.items():
            curve = _mean_curve(runs) if s == scene else None
            if curve is None:
                continue
            seconds, mean, low, high = curve
            default = capacity == DEFAULT_CAPACITY
            label = method_label(method) + ("" if default else f" ({capacity})")
            color = method_color(method)
            ax.plot(seconds, mean, color=color, marker="o", ms=3, linewidth=1.5 if default else 0.8,
                    linestyle="-" if default else "--", label=label, zorder=3)
            if len(runs) > 1:
                ax.fill_between(seconds, low, high, color=color, alpha=0.15, linewidth=0)
            front_x += list(seconds)
            front_y += list(mean)
        # Every run evaluates its curve at the same fractions of the budget: a few ms apart is the same time.
        _draw_front(ax, front_x, front_y, x_tolerance=0.02)
        for seconds, text in marks:
            ax.axvline(seconds, color="0.4", linestyle=":", linewidth=1)
            ax.annotate(text, (seconds, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, color="0.3",
                        ha="right", va="bottom")
        if log_time:
            ax.set_xscale("log")
        cpu = curve_clock([r for r in ok_records(records) if scene_label(r) == scene]) == "train_cpu_seconds"
        ax.set_xlabel("training CPU time (CPU-s, evaluation excluded)" if cpu else "training time (s, evaluation excluded)")
        ax.set_ylabel("PSNR on the curve's test views (dB)")
        ax.set_title(scene, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Quality against training time: mean over seeds, band = seeds' min–max", fontsize=10)
    fig.tight_layout()
    return fig


def figure_s_per_iter(records: List[Dict[str, Any]]):
    """Median s/iter of each method's default settings per scene: mean ± std bars, seeds as dots."""
    groups = default_groups(records)
    scenes = measured_scenes(records)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_INCHES * 0.6, 3.4))
    methods = sorted({m for (_, m) in groups}, key=method_rank)
    width = 0.8 / max(1, len(methods))
    for j, method in enumerate(methods):
        color = method_color(method)
        for i, scene in enumerate(scenes):
            runs = groups.get((scene, method))
            if not runs:
                continue
            s = spread(runs, "s_per_iter")
            x = i + (j - (len(methods) - 1) / 2) * width
            ax.bar(x, s.mean, width * 0.9, color=color, alpha=0.8, label=method_label(method))
            if s.n > 1:
                ax.errorbar(x, s.mean, yerr=s.std, color="black", capsize=2, linewidth=1)
            ax.scatter([x] * s.n, s.values, s=8, color="black", zorder=3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_xticks(range(len(scenes)), scenes)
    ax.set_yscale("log")
    ax.set_ylabel("median s / iteration (log scale)")
    ax.set_title("Update speed at the same rays per batch (mean ± std, seeds as dots)", fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


FIGURES = {"psnr_vs_size": figure_psnr_vs_size, "psnr_vs_time": figure_psnr_vs_time, "s_per_iter": figure_s_per_iter}


def save_figures(results_root: Path, profile: str) -> List[Path]:
    records = load_records(results_root, profile)
    out = Path(results_root) / profile / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        fig = draw(records)
        with atomic_path(out / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        paths.append(out / f"{name}.png")
    return paths


def renders_of(record: Dict[str, Any], results_root: Optional[Path] = None) -> Dict[int, Path]:
    """The run's saved test renders (``runs/<run>/renders/test_00k.png``: ground truth | render),
    by view index; looked up under ``results_root`` first, so a copied results folder works."""
    folders = []
    if results_root is not None and record.get("profile") and record.get("run_id"):
        folders.append(runs_dir(Path(results_root), record["profile"]) / record["run_id"] / "renders")
    if record.get("model_file"):
        model_file = Path(record["model_file"])
        folders.append((model_file if model_file.is_absolute() else REPO_ROOT / model_file).parent / "renders")
    for folder in folders:
        found = {int(p.stem.split("_")[1]): p for p in sorted(folder.glob("test_*.png"))}
        if found:
            return found
    return {}


def figure_test_renders(records: List[Dict[str, Any]], scene: str, results_root: Optional[Path] = None, max_views: int = 4):
    """Ground truth and every method's render of the same test views, side by side (the first
    seed of each method's default settings). None when no run of the scene saved renders."""
    groups = default_groups(records)
    chosen = {method: sorted(runs, key=lambda r: r.get("seed", 0))[0] for (s, method), runs in groups.items() if s == scene}
    renders = {method: renders_of(r, results_root) for method, r in chosen.items()}
    renders = {m: v for m, v in renders.items() if v}
    if not renders:
        return None
    views = sorted(set.intersection(*(set(v) for v in renders.values())))[:max_views]
    if not views:
        return None
    methods = sorted(renders, key=method_rank)
    columns = 1 + len(methods)
    cell = min(2.2, PAGE_WIDTH_INCHES / columns)
    fig, axes = plt.subplots(len(views), columns, figsize=(cell * columns, cell * len(views) + 0.3), squeeze=False)
    for row, view in enumerate(views):
        for col, method in enumerate([None, *methods]):
            source = renders[method or methods[0]][view]
            image = plt.imread(source)
            half = image.shape[1] // 2
            ax = axes[row][col]
            ax.imshow(image[:, :half] if method is None else image[:, half:])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("ground truth" if method is None else method_label(method), fontsize=9)
            if method is None:
                ax.set_ylabel(f"view {view}", fontsize=8)
            else:
                per_image = {p["index"]: p for p in chosen[method].get("per_image", [])}
                psnr = per_image.get(view, {}).get("psnr")
                ax.set_xlabel(f"{psnr:.2f} dB" if psnr is not None else MISSING, fontsize=8)
    fig.suptitle(f"{scene}: test views from the stored models", fontsize=10)
    fig.tight_layout()
    return fig

