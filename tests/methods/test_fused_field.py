"""The fused kernel-field op held to the PyTorch path it replaces: F(x), every gradient, the
allocation's per-kernel sums, and the fallback where it cannot be built."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from akdqff_method import fused_field
from akdqff_method.field import RBFKernelField, kernel_sums_from_pairs

CPU = torch.device("cpu")
NAMES = ("centers", "log_scales", "log_amplitudes", "features")

needs_op = pytest.mark.skipif(fused_field.unavailable(CPU) is not None, reason=str(fused_field.unavailable(CPU)))


def test_the_op_is_built_where_a_compiler_is():
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler on this machine: the field uses its PyTorch path")
    assert fused_field.unavailable(CPU) is None


def field_with_varied_kernels(num_kernels=3000, dtype=torch.float32, quantized=False, seed=0) -> RBFKernelField:
    """Kernels of spread bandwidths (some held at the clamp's bounds) and amplitudes."""
    generator = torch.Generator().manual_seed(seed)
    field = RBFKernelField(torch.tensor([[-1.0] * 3, [1.0] * 3]), num_kernels, grid_resolution=16, seed=seed).to(dtype)
    with torch.no_grad():
        params = field.kernel_params
        params["log_scales"].add_(0.5 * torch.randn(params["log_scales"].shape, generator=generator, dtype=dtype))
        params["log_scales"][:20] = -9.0  # below min_scale: the clamp passes no gradient
        params["log_scales"][20:30] = 0.0  # above max_scale
        params["log_amplitudes"].copy_(0.5 * torch.randn(num_kernels, generator=generator, dtype=dtype))
    if quantized:
        field.set_codebook(0.1 * torch.randn(24, field.feature_dim, generator=generator, dtype=dtype))
        field.codebook = field.codebook.to(dtype)
    field.rebuild_index()
    return field


def through_op(field: RBFKernelField, positions: torch.Tensor) -> torch.Tensor:
    params = field.kernel_params
    return fused_field.fused_features(field.index, positions, params["centers"], field.inverse_scales(), field.amplitudes(),
                                      params["features"], field.codebook, field.support_cutoff)


@needs_op
@pytest.mark.parametrize("quantized", [False, True], ids=["raw", "quantized"])
def test_forward_and_every_gradient_match_the_pytorch_path(quantized):
    field = field_with_varied_kernels(quantized=quantized)
    positions = (1.6 * torch.rand(4000, 3, generator=torch.Generator().manual_seed(1)) - 0.8).requires_grad_()
    reference, _, _, _ = field.fused_features(positions)
    fused = through_op(field, positions)
    assert float(reference.abs().max()) > 0.1  # the samples do meet kernels
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-6)
    upstream = torch.randn(reference.shape, generator=torch.Generator().manual_seed(2))
    inputs = [positions] + [field.kernel_params[name] for name in NAMES]
    expected = torch.autograd.grad((reference * upstream).sum(), inputs)
    measured = torch.autograd.grad((fused * upstream).sum(), inputs)
    for name, got, want in zip(("positions",) + NAMES, measured, expected):
        assert float(want.abs().max()) > 0, name
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()), msg=name)


@needs_op
def test_gradcheck_in_float64():
    field = field_with_varied_kernels(num_kernels=60, dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    positions = 1.2 * torch.rand(40, 3, generator=generator, dtype=torch.float64) - 0.6
    rows, starts, counts, kernel_ids = fused_field.candidate_rows(field.index, positions)
    params = field.kernel_params
    inputs = [positions, params["centers"].detach(), field.inverse_scales().detach(), field.amplitudes().detach(), params["features"].detach()]
    inputs = [tensor.clone().requires_grad_() for tensor in inputs]
    assert int(counts[rows[rows >= 0]].sum()) > 40  # several candidates per sample

    def op(x, centers, inverse_scales, amplitudes, features):
        packed = fused_field.packed_kernels(centers, inverse_scales, amplitudes, torch.float64)
        return fused_field.KernelFieldSum.apply(x, packed, features, rows, starts, counts, kernel_ids, field.codebook, field.support_cutoff)

    assert float(op(*inputs).abs().max()) > 0
    assert torch.autograd.gradcheck(op, inputs, eps=1e-6, atol=1e-7)


@needs_op
def test_the_allocation_sums_match_the_pairs():
    field = field_with_varied_kernels()
    generator = torch.Generator().manual_seed(4)
    positions = 1.6 * torch.rand(3000, 3, generator=generator) - 0.8
    values = torch.rand(3000, 3, generator=generator)
    with torch.no_grad():
        _, sample_ids, kernel_ids, weights = field.fused_features(positions)
    expected = kernel_sums_from_pairs(sample_ids, kernel_ids, weights, values, field.num_kernels)
    assert float(expected.sum()) > 0
    torch.testing.assert_close(field.kernel_sums(positions, values), expected, rtol=1e-4, atol=1e-6)


def test_without_a_compiler_the_field_runs_its_pytorch_path_and_says_so_once(monkeypatch):
    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(fused_field, "_build", no_compiler)
    monkeypatch.setattr(fused_field, "_extension", None)
    monkeypatch.setattr(fused_field, "_unavailable", None)
    monkeypatch.setattr(fused_field, "_warned", set())
    field = field_with_varied_kernels(num_kernels=200)
    positions = 1.6 * torch.rand(500, 3, generator=torch.Generator().manual_seed(5)) - 0.8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = field.features_at(positions)
        field.features_at(positions)
    said = [str(w.message) for w in caught if "PyTorch path" in str(w.message)]
    assert len(said) == 1 and "Ninja is required" in said[0]
    torch.testing.assert_close(first, field.fused_features(positions)[0])
