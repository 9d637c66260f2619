"""K and Q over training: the figure of AKDQFF's two adaptive decisions for the run notebook.

The numbers come from the run record: its ``curve`` points carry ``kernels`` and ``codebook_size``
(the model's ``benchmark_scalars`` at each curve evaluation), and, where the record holds it, the
model's ``adaptation_history()`` gives every allocation and codebook decision; where its entries
count the split candidates, the K panel also shows the K each refinement would have reached had
every candidate split (above K where the rate limit held growth back). Curve points that
carry ``field_samples_per_ray`` add a third panel: the samples per ray the field evaluated (with
gradients, and in the sampler's density probe without), what each step's cost follows.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence


def adaptation_series(
    curve: Optional[Sequence[Mapping[str, Any]]] = None, history: Optional[Mapping[str, List[Dict[str, Any]]]] = None
) -> Dict[str, List]:
    """(step, K) and (step, Q) series: every decision when ``history`` is given, else the curve's points."""
    kernels_steps: List[int] = []
    kernels: List[int] = []
    kernels_asked: List[int] = []  # K had every split candidate split (allocation entries that count them)
    codebook_steps: List[int] = []
    codebook: List[int] = []
    if history:
        for entry in history.get("allocation", []):
            kernels_steps.append(int(entry["step"]))
            kernels.append(int(entry["kernels"]))
            if "candidates" in entry:
                kernels_asked.append(int(entry["kernels"]) - int(entry["split"]) + int(entry["candidates"]))
        for entry in history.get("codebook", []):
            codebook_steps.append(int(entry["step"]))
            codebook.append(int(entry["codebook_size"]))
    if curve and not kernels_steps:
        for point in curve:
            if "kernels" in point:
                kernels_steps.append(int(point["iteration"]))
                kernels.append(int(point["kernels"]))
    if curve and not codebook_steps:
        for point in curve:
            if point.get("codebook_size"):  # 0: not quantized yet
                codebook_steps.append(int(point["iteration"]))
                codebook.append(int(point["codebook_size"]))
    samples = [point for point in curve or [] if "field_samples_per_ray" in point]
    if len(kernels_asked) != len(kernels):
        kernels_asked = []
    return {"kernel_steps": kernels_steps, "kernels": kernels, "kernels_asked": kernels_asked, "codebook_steps": codebook_steps, "codebook_sizes": codebook,
            "sample_steps": [int(point["iteration"]) for point in samples],
            "field_samples_per_ray": [float(point["field_samples_per_ray"]) for point in samples],
            "probe_samples_per_ray": [float(point.get("probe_samples_per_ray") or 0.0) for point in samples]}


def adaptation_figure(
    curve: Optional[Sequence[Mapping[str, Any]]] = None,
    history: Optional[Mapping[str, List[Dict[str, Any]]]] = None,
    title: str = "AKDQFF: kernels K and codebook size Q over training",
):
    """Panels sharing the step axis: K (set by λ), Q (set by the distortion tolerance) and, where
    the curve has them, the samples per ray the field evaluated.

    Raises ValueError when neither source holds a K or a Q, so an empty figure is never shown."""
    import matplotlib.pyplot as plt

    series = adaptation_series(curve, history)
    if not series["kernels"] and not series["codebook_sizes"]:
        raise ValueError("no K or Q to plot: the record has no curve points with 'kernels'/'codebook_size' and no history")
    with_samples = bool(series["sample_steps"])
    fig, axes = plt.subplots(3 if with_samples else 2, 1, figsize=(6.5, 7.2 if with_samples else 5), sharex=True)
    ax_k, ax_q = axes[0], axes[1]
    ax_k.plot(series["kernel_steps"], series["kernels"], marker=".", color="tab:blue", label="K")
    if series["kernels_asked"]:
        ax_k.plot(series["kernel_steps"], series["kernels_asked"], linestyle="--", color="tab:blue", alpha=0.6,
                  label="K had every split candidate split")
        ax_k.legend(fontsize=8)
    ax_k.set_ylabel("kernels K")
    ax_k.grid(alpha=0.3)
    ax_q.step(series["codebook_steps"], series["codebook_sizes"], where="post", marker=".", color="tab:orange")
    ax_q.set_yscale("log", base=2)
    ax_q.set_ylabel("codebook size Q")
    ax_q.grid(alpha=0.3)
    if with_samples:
        ax_s = axes[2]
        ax_s.plot(series["sample_steps"], series["field_samples_per_ray"], marker=".", color="tab:green", label="with gradients")
        if any(series["probe_samples_per_ray"]):
            ax_s.plot(series["sample_steps"], series["probe_samples_per_ray"], marker=".", color="tab:gray",
                      label="density probe (no gradients)")
        ax_s.set_ylabel("field samples per ray")
        ax_s.set_ylim(bottom=0)
        ax_s.legend(fontsize=8)
        ax_s.grid(alpha=0.3)
    axes[-1].set_xlabel("training step")
    ax_k.set_title(title)
    fig.tight_layout()
    return fig
