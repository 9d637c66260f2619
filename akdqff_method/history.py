"""K and Q over training: the figure of AKDQFF's two adaptive decisions for the run notebook.

The numbers come from the run record: its ``curve`` points carry ``kernels`` and ``codebook_size``
(the model's ``benchmark_scalars`` at each curve evaluation), and, where the record holds it, the
model's ``adaptation_history()`` gives every allocation and codebook decision.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence


def adaptation_series(
    curve: Optional[Sequence[Mapping[str, Any]]] = None, history: Optional[Mapping[str, List[Dict[str, Any]]]] = None
) -> Dict[str, List]:
    """(step, K) and (step, Q) series: every decision when ``history`` is given, else the curve's points."""
    kernels_steps: List[int] = []
    kernels: List[int] = []
    codebook_steps: List[int] = []
    codebook: List[int] = []
    if history:
        for entry in history.get("allocation", []):
            kernels_steps.append(int(entry["step"]))
            kernels.append(int(entry["kernels"]))
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
    return {"kernel_steps": kernels_steps, "kernels": kernels, "codebook_steps": codebook_steps, "codebook_sizes": codebook}


def adaptation_figure(
    curve: Optional[Sequence[Mapping[str, Any]]] = None,
    history: Optional[Mapping[str, List[Dict[str, Any]]]] = None,
    title: str = "AKDQFF: kernels K and codebook size Q over training",
):
    """Two panels sharing the step axis: K (set by λ) and Q (set by the distortion tolerance).

    Raises ValueError when neither source holds a K or a Q, so an empty figure is never shown."""
    import matplotlib.pyplot as plt

    series = adaptation_series(curve, history)
    if not series["kernels"] and not series["codebook_sizes"]:
        raise ValueError("no K or Q to plot: the record has no curve points with 'kernels'/'codebook_size' and no history")
    fig, (ax_k, ax_q) = plt.subplots(2, 1, figsize=(6.5, 5), sharex=True)
    ax_k.plot(series["kernel_steps"], series["kernels"], marker=".", color="tab:blue")
    ax_k.set_ylabel("kernels K")
    ax_k.grid(alpha=0.3)
    ax_q.step(series["codebook_steps"], series["codebook_sizes"], where="post", marker=".", color="tab:orange")
    ax_q.set_yscale("log", base=2)
    ax_q.set_ylabel("codebook size Q")
    ax_q.set_xlabel("training step")
    ax_q.grid(alpha=0.3)
    ax_k.set_title(title)
    fig.tight_layout()
    return fig
