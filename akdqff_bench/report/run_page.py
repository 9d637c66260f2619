"""One run's page (the run notebook): its measurements, settings, per-view spread, renders, learning curve and
its method's own evidence."""

from __future__ import annotations

from typing import Any, Dict

import matplotlib.pyplot as plt
import pandas as pd

from akdqff_bench.groups import QUANTITIES
from akdqff_bench.methods import evidence_module
from akdqff_bench.profiles import EVIDENCE_LEVELS
from akdqff_bench.report.figures import renders_of
from akdqff_bench.report.format import MISSING, format_value, method_label, short_setting_names, style_table, without_paths


RUN_SUMMARY = (("status", "Status", None), ("message", "Message", None), ("device", "Device", None), ("iterations", "Iterations", "count"),
               ("train_seconds", "Training time (s)", "rate"), ("s_per_iter", "Update (s/iter, median)", "seconds"),
               ("other_load_cores", "Other programs' load during training (cores)", "rate"),
               ("psnr", "PSNR (dB)", "psnr"), ("ssim", "SSIM", "ssim"), ("lpips", "LPIPS", "lpips"),
               ("curve_drop_db", "Learning curve's end below its best (dB)", "rate"), ("diverged", "Diverged", None),
               ("model_size_bytes", "Stored model", "bytes"), ("peak_memory_bytes", "Peak memory", "bytes"),
               ("peak_memory_kind", "Peak memory measured as", None), ("render_fps", "Render (img/s)", "rate"),
               ("num_test_views", "Test views", "count"), ("commit", "Code (git commit)", None))


def styled_run_summary(record: Dict[str, Any]):
    """One run's measurements, formatted as the comparison's tables; no absolute paths."""
    rows = []
    for key, label, kind in RUN_SUMMARY:
        value = record.get(key)
        if kind is not None:
            text = format_value(float(value) if value is not None else None, kind)
        else:
            text = without_paths(str(value)) if value not in (None, "") else MISSING
        rows.append({"": label, record.get("run_id", "run"): text})
    return style_table(pd.DataFrame(rows), wrap=(record.get("run_id", "run"),))


def styled_run_settings(record: Dict[str, Any]):
    overrides = record.get("overrides") or {}
    names = short_setting_names(list(overrides))
    frame = pd.DataFrame({"Setting": [names[k] for k in overrides], "Value": [str(v) for v in overrides.values()]})
    return style_table(frame, caption="Settings overriding the method's defaults" if overrides else "The method's default settings")


def styled_per_image(record: Dict[str, Any]):
    """Mean, std, min and max over the test views of each per-image metric."""
    frame = pd.DataFrame(record.get("per_image") or [])
    rows = []
    for key in ("psnr", "ssim", "lpips"):
        if key in frame and frame[key].notna().any():
            values = frame[key].dropna()
            kind = QUANTITIES[key].kind
            rows.append({"Metric": QUANTITIES[key].label, "Views": len(values), "Mean": format_value(values.mean(), kind),
                         "Std": format_value(values.std(), kind), "Min": format_value(values.min(), kind), "Max": format_value(values.max(), kind)})
    return style_table(pd.DataFrame(rows, columns=["Metric", "Views", "Mean", "Std", "Min", "Max"]))


def show_renders(record: Dict[str, Any]):
    """Ground truth (left) beside the render from the stored model (right), for the saved views."""
    renders = renders_of(record) if record.get("model_file") else {}
    if not renders:
        return None
    fig, axes = plt.subplots(1, len(renders), figsize=(3.2 * len(renders), 2.0), squeeze=False)
    per_image = {p["index"]: p for p in record.get("per_image", [])}
    for ax, (index, path) in zip(axes[0], sorted(renders.items())):
        ax.imshow(plt.imread(path))
        ax.set_title(f"view {index}: GT | render, {per_image.get(index, {}).get('psnr', float('nan')):.2f} dB", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_run_curve(record: Dict[str, Any]):
    """PSNR against training time, and any scalars the method logs (kernels, codebook size, ...)."""
    curve = record.get("curve") or []
    scalars = sorted({k for p in curve for k in p} - {"iteration", "train_seconds", "psnr", "eval_seconds"})
    columns = min(3, 1 + len(scalars))
    rows = -(-(1 + len(scalars)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    axes = axes.ravel()
    seconds = [p["train_seconds"] for p in curve]
    axes[0].plot(seconds, [p["psnr"] for p in curve], marker="o")
    axes[0].set_ylabel("PSNR, curve views (dB)")
    axes[0].set_title(f"{method_label(record['method'])}: quality over training")
    for ax, name in zip(axes[1:], scalars):
        ax.plot(seconds, [p.get(name) for p in curve], marker="o", color="tab:orange")
        ax.set_title(name)
    for ax in axes[: 1 + len(scalars)]:
        ax.set_xlabel("training time (s)")
        ax.grid(True, alpha=0.3)
    for ax in axes[1 + len(scalars):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def method_figures(result, evidence: str = "full") -> list:
    """The figures of the run's method's own evidence (its spec's ``notebook_figures``), [] for none."""
    if evidence not in EVIDENCE_LEVELS:
        raise ValueError(f"evidence must be one of {EVIDENCE_LEVELS}, not {evidence!r}")
    module = evidence_module(result.record.get("method"))
    if module is None or result.pipeline is None:
        return []
    return list(module.notebook_figures(result, evidence))

