"""The kernel field's sum F(x) = Σ_k a_k·w((x − c_k)/s_k)·f_k as one op with its own backward.

The PyTorch path (``RBFKernelField.fused_features_from_pairs``) lists every (sample, kernel) pair,
gathers a row of kernel attributes per pair and scatters the products back: most of a step goes to
those gathers, ``index_add`` and the per-pair temporaries (``benchmarks/field_step.py``). The op
walks each sample's candidate kernels straight from the spatial index's cell lists instead, and its
backward recomputes each pair rather than storing it (``csrc/kernel_field_cpu.cpp``; gsplat's
pattern: a compiled forward and backward, and a PyTorch reference the tests hold it to).

It is compiled at first use with torch's C++ extension builder (g++ and ninja, torch's headers; no
download), into torch's extension cache. Where that fails (no compiler), or on a device it has no
kernel for (CUDA, today), the field uses the PyTorch path and says so once. ``AKDQFF_FUSED=0``
chooses the PyTorch path.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import Tensor

SOURCE = Path(__file__).parent / "csrc" / "kernel_field_cpu.cpp"
DISABLE_ENV = "AKDQFF_FUSED"

_lock = threading.Lock()
_extension = None
_unavailable: Optional[str] = None  # why the op cannot be built here (None: not tried, or built)
_warned = set()


def _build():
    from torch.utils.cpp_extension import load

    flags = ["-O3", "-fopenmp"]
    return load(name="akdqff_kernel_field_cpu", sources=[str(SOURCE)], extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)


def extension():
    """The compiled op, or None (``unavailable()`` says why)."""
    global _extension, _unavailable
    with _lock:
        if _extension is None and _unavailable is None:
            try:
                _extension = _build()
            except Exception as error:  # no compiler, no ninja, a failed build: the PyTorch path
                _unavailable = f"the fused kernel-field op could not be built ({type(error).__name__}: {str(error).strip().splitlines()[-1][:200]})"
        return _extension


def prepare() -> None:
    """Build or load the op now (unless ``AKDQFF_FUSED=0``): a model calls it while it is set up,
    so that no timed training iteration pays for it."""
    if os.environ.get(DISABLE_ENV, "1") != "0":
        extension()


def unavailable(device: torch.device) -> Optional[str]:
    """None when the op runs on ``device``; else why the PyTorch path is used."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return f"{DISABLE_ENV}=0 chooses the PyTorch path"
    if device.type != "cpu":
        return f"the fused kernel-field op has no {device.type} kernel yet"
    extension()
    return _unavailable


def use_fused(device: torch.device) -> bool:
    """Whether the field runs the op on ``device``; the first time it cannot, a warning says why."""
    why = unavailable(device)
    if why is not None and why not in _warned and not why.startswith(DISABLE_ENV):
        _warned.add(why)
        warnings.warn(f"AKDQFF: {why}; the kernel field runs its PyTorch path (same results, slower)", stacklevel=3)
    return why is None


class KernelFieldSum(torch.autograd.Function):
    """F(x) [N, D] for positions [N, 3] over the candidates the index lists for each sample's cell
    (``rows`` [N] into ``starts``/``counts``/``kernel_ids``), from the kernels' packed rows [K, 8]
    (:func:`packed_kernels`) and features [K, D]. With a codebook [Q, D] each kernel contributes
    its nearest centroid and the gradient goes straight through to its raw feature, as
    ``quantization.quantize_straight_through`` does."""

    @staticmethod
    def forward(ctx, positions, packed, features, rows, starts, counts, kernel_ids, codebook, cutoff):
        fused, used, centroid = extension().forward(positions, rows, starts, counts, kernel_ids, packed, features, codebook, cutoff)
        ctx.save_for_backward(positions, packed, features, rows, starts, counts, kernel_ids, codebook, used, centroid)
        ctx.cutoff = cutoff
        return fused

    @staticmethod
    def backward(ctx, grad_fused):
        positions, packed, features, rows, starts, counts, kernel_ids, codebook, used, centroid = ctx.saved_tensors
        grad_positions, grad_packed, grad_features = extension().backward(
            grad_fused.contiguous(), positions, rows, starts, counts, kernel_ids, packed, features, codebook, used, centroid, ctx.cutoff,
            ctx.needs_input_grad[0])
        return (grad_positions if ctx.needs_input_grad[0] else None, grad_packed, grad_features, None, None, None, None, None, None)


def packed_kernels(centers: Tensor, inverse_scales: Tensor, amplitudes: Tensor, dtype: torch.dtype) -> Tensor:
    """[K, 8]: centre, 1 / bandwidth, amplitude and a zero, one row per kernel (one read per candidate)."""
    padding = amplitudes.new_zeros(amplitudes.shape[0], 1)
    return torch.cat([centers, inverse_scales, amplitudes[:, None], padding], dim=-1).to(dtype).contiguous()


def candidate_rows(index, positions: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each sample's row in the index's cell lists (-1 where its cell lists none), and the lists."""
    return index.rows(positions).contiguous(), index.starts.contiguous(), index.counts.contiguous(), index.kernel_ids.contiguous()


def fused_features(index, positions: Tensor, centers: Tensor, inverse_scales: Tensor, amplitudes: Tensor, features: Tensor,
                   codebook: Tensor, cutoff: float) -> Tensor:
    """F(x) [N, D] through the op (differentiable in every tensor argument but the codebook)."""
    dtype = positions.dtype
    rows, starts, counts, kernel_ids = candidate_rows(index, positions.detach())
    return KernelFieldSum.apply(positions.contiguous(), packed_kernels(centers, inverse_scales, amplitudes, dtype),
                                features.to(dtype).contiguous(), rows, starts, counts, kernel_ids, codebook.detach().to(dtype).contiguous(),
                                float(cutoff))


def kernel_sums(index, positions: Tensor, centers: Tensor, inverse_scales: Tensor, amplitudes: Tensor, values: Tensor,
                cutoff: float) -> Tensor:
    """[K, C]: per kernel, Σ over samples of its share of the sample's kernel weight × ``values`` [N, C]."""
    dtype = positions.dtype
    rows, starts, counts, kernel_ids = candidate_rows(index, positions.detach())
    packed = packed_kernels(centers.detach(), inverse_scales.detach(), amplitudes.detach(), dtype)
    return extension().kernel_sums(positions.detach().contiguous(), rows, starts, counts, kernel_ids, packed, values.to(dtype).contiguous(),
                                   float(cutoff))
