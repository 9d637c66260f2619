"""AKDQFF building blocks: RBF field gradients, spatial index, split/prune surgery, k-means, Q rule, file format."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from akdqff_method.allocation import AKDStrategy, prune_kernels, split_kernels
from akdqff_method.export import pack_indices, unpack_indices
from akdqff_method.field import RBFKernelField, kernel_sums_from_pairs, truncated_gaussian
from akdqff_method.quantization import AdaptiveCodebookRule, index_bits, kmeans, quantization_distortion, weighted_variance
from akdqff_method import spatial_index
from akdqff_method.spatial_index import KernelGridIndex, brute_force_neighbours, kernel_cell_pairs

AABB = torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]])
GROUPS = {"centers": "kernel_centers", "log_scales": "kernel_log_scales", "log_amplitudes": "kernel_log_amplitudes", "features": "kernel_features"}


def small_field(num_kernels=40, seed=0, **kwargs) -> RBFKernelField:
    torch.manual_seed(seed)
    settings = {"feature_dim": 4, "decoder_hidden_dim": 8, "sh_levels": 2, "max_scale": 0.5, "grid_resolution": 8, "max_kernels_per_cell": 64,
                **kwargs}
    field = RBFKernelField(AABB, num_kernels=num_kernels, seed=seed, **settings)
    with torch.no_grad():  # wide kernels so that most test points see several of them
        field.kernel_params["log_scales"].uniform_(math.log(0.2), math.log(0.5))
        field.kernel_params["log_amplitudes"].normal_(0, 0.3)
    field.rebuild_index()
    return field


def test_truncated_gaussian_is_continuous_and_compact():
    d2 = torch.tensor([0.0, 2.5**2 - 1e-6, 2.5**2, 9.0])
    w = truncated_gaussian(d2, 2.5)
    assert w[0] == pytest.approx(1.0)
    assert w[1] == pytest.approx(0.0, abs=1e-6)
    assert w[2] == 0 and w[3] == 0


def test_rbf_field_gradients_match_finite_differences():
    field = small_field().double()
    field.rebuild_index()
    generator = torch.Generator().manual_seed(1)
    positions = (torch.rand(6, 3, generator=generator, dtype=torch.float64) - 0.5) * 1.5
    directions = torch.nn.functional.normalize(torch.randn(6, 3, generator=generator, dtype=torch.float64), dim=-1)
    # The pair list is fixed (as in one training step); weights and their derivatives are smooth inside.
    sample_ids, kernel_ids = field.index.pairs(positions)
    assert sample_ids.numel() > 0
    params = field.kernel_params
    inputs = [params[n].detach().clone().requires_grad_(True) for n in ("centers", "log_scales", "log_amplitudes", "features")]
    inputs.append(positions.clone().requires_grad_(True))

    # ParameterDict only accepts leaf Parameters: swap in a plain dict of the gradcheck inputs.
    original = field.kernel_params

    def fn_plain(*args):
        field.__dict__["_modules"].pop("kernel_params", None)
        field.__dict__["kernel_params"] = dict(zip(("centers", "log_scales", "log_amplitudes", "features"), args[:4]))
        try:
            fused, _, _, _ = field.fused_features_from_pairs(args[4], sample_ids, kernel_ids)
            density, rgb = field.decode(fused, directions)
        finally:
            del field.__dict__["kernel_params"]
            field._modules["kernel_params"] = original
        return fused, density, rgb

    assert torch.autograd.gradcheck(fn_plain, tuple(inputs), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_spatial_index_matches_brute_force():
    field = small_field(num_kernels=120, seed=3)
    positions = (torch.rand(500, 3, generator=torch.Generator().manual_seed(4)) - 0.5) * 3.0
    sample_ids, kernel_ids = field.index.pairs(positions)
    radii = field.support_radii()
    # The index returns candidates; keep those whose support contains the point.
    inside = ((positions[sample_ids] - field.kernel_params["centers"][kernel_ids]) / radii[kernel_ids]).square().sum(-1) < 1
    from_index = torch.zeros(500, field.num_kernels, dtype=torch.bool)
    from_index[sample_ids[inside], kernel_ids[inside]] = True
    # The index is built with a small margin (for kernels that move between rebuilds), so compare
    # against the exact supports.
    expected = brute_force_neighbours(positions, field.kernel_params["centers"].detach(), radii.detach())
    assert field.index.truncated_cells == 0
    assert expected.sum() > 500  # the comparison is not vacuous
    assert torch.equal(from_index, expected)
    # ... and so the fused feature equals the brute-force sum over all kernels.
    fused, _, _, _ = field.fused_features(positions)
    all_pairs = torch.nonzero(torch.ones(500, field.num_kernels, dtype=torch.bool), as_tuple=True)
    brute, _, _, _ = field.fused_features_from_pairs(positions, *all_pairs)
    assert torch.allclose(fused, brute, atol=1e-6)


def test_spatial_index_caps_crowded_cells():
    index = KernelGridIndex(AABB, resolution=4, max_kernels_per_cell=3)
    centers = torch.zeros(10, 3)
    index.build(centers, torch.full((10, 3), 0.1))
    assert index.truncated_cells > 0 and int(index.counts.max()) == 3
    assert index.touched_cells == 8 and index.truncated_fraction() == 1.0  # the origin is a corner of 8 cells
    uncapped = KernelGridIndex(AABB, resolution=4, max_kernels_per_cell=None)
    uncapped.build(centers, torch.full((10, 3), 0.1))
    assert uncapped.truncated_cells == 0 and int(uncapped.counts.max()) == 10


def _brute_force_cell_pairs(centers, radii, aabb, resolution):
    """Every (kernel, cell) whose box the kernel's ellipsoid meets, by testing all K × R³ pairs."""
    r = resolution
    grid = torch.stack(torch.meshgrid(*[torch.arange(r)] * 3, indexing="ij"), dim=-1).reshape(-1, 3)
    size = (aabb[1] - aabb[0]) / r
    lo = aabb[0] + grid * size
    nearest = torch.minimum(torch.maximum(centers[:, None], lo[None]), lo[None] + size)  # [K, C, 3]
    touching = (((nearest - centers[:, None]) / radii[:, None]).square().sum(-1) <= 1.0)
    return {(int(k), int(c)) for k, c in torch.nonzero(touching)}


@pytest.mark.parametrize("chunk_pairs", [7, 1 << 20])
def test_kernel_cell_pairs_match_brute_force_with_mixed_kernel_sizes(chunk_pairs):
    generator = torch.Generator().manual_seed(5)
    centers = (torch.rand(60, 3, generator=generator) - 0.5) * 3.4  # a few outside the box
    radii = 0.05 + 0.3 * torch.rand(60, 3, generator=generator)
    radii[:3] = torch.tensor([2.0, 0.4, 1.2])  # a few huge, anisotropic kernels beside small ones
    kernel_ids, cell_ids, nearest2 = kernel_cell_pairs(centers, radii, AABB, 6, chunk_pairs=chunk_pairs)
    pairs = set(zip(kernel_ids.tolist(), cell_ids.tolist()))
    assert len(pairs) == kernel_ids.numel()  # no duplicates
    assert pairs == _brute_force_cell_pairs(centers, radii, AABB, 6)
    assert len(pairs) > 200 and float(nearest2.max()) <= 1.0


def test_crowded_cells_keep_the_kernels_that_contribute_most_not_the_biggest():
    """Cell [0, 0.75)³ of a 4³ grid: two small kernels (split children) inside it, one big kernel
    centred 0.3 outside it. The old rule (distance to the cell centre in each kernel's own radius)
    kept the big one; the peak weight in the cell keeps both children."""
    index = KernelGridIndex(AABB, resolution=4, max_kernels_per_cell=2, support_in_bandwidths=2.5)
    centers = torch.tensor([[0.1, 0.1, 0.1], [0.12, 0.65, 0.1], [-0.3, 0.375, 0.375]])
    radii = torch.tensor([[0.05] * 3, [0.05] * 3, [2.0] * 3])
    index.build(centers, radii)
    cell = 2 * 16 + 2 * 4 + 2
    listed = index.kernels_in_cell(cell)
    assert sorted(listed.tolist()) == [0, 1] and index.truncated_cells >= 1
    # A kernel that contributes nothing (zero amplitude or feature) goes first, whatever its place.
    index.build(centers, radii, importance=torch.tensor([0.0, 1.0, 1.0]))
    listed = index.kernels_in_cell(cell)
    assert sorted(listed.tolist()) == [1, 2]


def test_uncapped_index_matches_brute_force_in_crowded_cells():
    generator = torch.Generator().manual_seed(6)
    centers = 0.2 * torch.randn(300, 3, generator=generator)  # crowded around the origin
    radii = 0.05 + 0.4 * torch.rand(300, 3, generator=generator)
    index = KernelGridIndex(AABB, resolution=8, max_kernels_per_cell=None)
    index.build(centers, radii)
    assert index.truncated_cells == 0 and index.max_cell_count > 64
    positions = 0.4 * torch.randn(400, 3, generator=generator)
    sample_ids, kernel_ids = index.pairs(positions)
    inside = ((positions[sample_ids] - centers[kernel_ids]) / radii[kernel_ids]).square().sum(-1) < 1
    from_index = torch.zeros(400, 300, dtype=torch.bool)
    from_index[sample_ids[inside], kernel_ids[inside]] = True
    assert torch.equal(from_index, brute_force_neighbours(positions, centers, radii))


@pytest.mark.parametrize("cell_size_in_radii", [2.0, 1.0, 0.5])
@pytest.mark.parametrize("dense_lookup", [True, False])
def test_a_subdivided_index_matches_brute_force_and_lists_fewer_candidates(cell_size_in_radii, dense_lookup, monkeypatch):
    """Small kernels (split children) on a coarse grid: the index subdivides its cells to their size,
    still finds every kernel containing each sample, lists fewer candidates, and covers the same
    coarse cells; with the dense cell table and with the binary search in the touched cells."""
    if not dense_lookup:
        monkeypatch.setattr(spatial_index, "DENSE_LOOKUP_CELLS", 0)
    generator = torch.Generator().manual_seed(7)
    centers = (torch.rand(3000, 3, generator=generator) - 0.5) * 2.4
    radii = 0.05 + 0.05 * torch.rand(3000, 3, generator=generator)
    fixed = KernelGridIndex(AABB, resolution=8)
    refined = KernelGridIndex(AABB, resolution=8, cell_size_in_radii=cell_size_in_radii, max_subdivision=16)
    for index in (fixed, refined):
        index.build(centers, radii)
    assert fixed.subdivision == 1 and refined.subdivision > 1
    typical = float(radii.max(dim=-1).values.median())
    cell_edge = float((AABB[1] - AABB[0]).min()) / refined.cell_resolution
    assert cell_size_in_radii * typical <= cell_edge < 2 * cell_size_in_radii * typical or refined.subdivision == 16
    positions = (torch.rand(2000, 3, generator=generator) - 0.5) * 2.4
    expected = brute_force_neighbours(positions, centers, radii)
    assert expected.sum() > 500  # the comparison is not vacuous
    for index in (fixed, refined):
        sample_ids, kernel_ids = index.pairs(positions)
        inside = ((positions[sample_ids] - centers[kernel_ids]) / radii[kernel_ids]).square().sum(-1) < 1
        found = torch.zeros_like(expected)
        found[sample_ids[inside], kernel_ids[inside]] = True
        assert torch.equal(found, expected)
    assert refined.pairs(positions)[0].numel() < 0.5 * fixed.pairs(positions)[0].numel()
    assert torch.equal(refined.covered_cells(), fixed.covered_cells())


def test_an_empty_index_lists_nothing():
    index = KernelGridIndex(AABB, resolution=4, cell_size_in_radii=1.0)
    index.build(torch.zeros(0, 3), torch.zeros(0, 3))
    sample_ids, kernel_ids = index.pairs(torch.zeros(5, 3))
    assert sample_ids.numel() == kernel_ids.numel() == 0
    assert not bool(index.covered_cells().any()) and index.kernels_in_cell(0).numel() == 0


def _adam_for(field):
    optimizers = {}
    for name, group in GROUPS.items():
        optimizers[group] = torch.optim.Adam([field.kernel_params[name]], lr=1e-2)
    return optimizers


def _train_steps(field, optimizers, positions, steps=3):
    directions = torch.nn.functional.normalize(torch.ones_like(positions), dim=-1)
    for _ in range(steps):
        for opt in optimizers.values():
            opt.zero_grad()
        out = field(positions, directions)
        (out["density"].sum() + out["rgb"].sum()).backward()
        for opt in optimizers.values():
            opt.step()


def test_split_and_prune_keep_parameters_and_optimizer_state_aligned():
    field = small_field(num_kernels=30, seed=5)
    optimizers = _adam_for(field)
    positions = (torch.rand(200, 3, generator=torch.Generator().manual_seed(6)) - 0.5) * 2
    _train_steps(field, optimizers, positions)
    before = {n: (field.kernel_params[n].detach().clone(), optimizers[g].state[field.kernel_params[n]]["exp_avg"].clone()) for n, g in GROUPS.items()}
    state = AKDStrategy().initialize_state(30)
    state["contribution"] = torch.arange(30.0)  # a per-kernel marker to follow through the surgery

    prune = torch.zeros(30, dtype=torch.bool)
    prune[[0, 7, 29]] = True
    prune_kernels(field.kernel_params, optimizers, state, prune, GROUPS)
    keep = torch.nonzero(~prune).flatten()
    assert field.num_kernels == 27
    for name, group in GROUPS.items():
        param = field.kernel_params[name]
        assert optimizers[group].param_groups[0]["params"][0] is param
        assert torch.equal(param.detach(), before[name][0][keep])
        assert torch.equal(optimizers[group].state[param]["exp_avg"], before[name][1][keep])
    assert torch.equal(state["contribution"], keep.float())

    split = torch.zeros(27, dtype=torch.bool)
    split[[1, 5]] = True
    split_kernels(field.kernel_params, optimizers, state, split, GROUPS)
    assert field.num_kernels == 29
    for name, group in GROUPS.items():
        param = field.kernel_params[name]
        st = optimizers[group].state[param]
        assert param.shape[0] == st["exp_avg"].shape[0] == st["exp_avg_sq"].shape[0] == 29
        # untouched kernels keep their moments, new children start from zero
        assert torch.equal(st["exp_avg"][~torch.cat([split, torch.ones(2, dtype=torch.bool)])], before[name][1][keep][~split])
        assert st["exp_avg"][27:].abs().sum() == 0
    assert torch.equal(state["contribution"][27:], state["contribution"][[1, 5]])
    # training continues with the patched optimizers
    field.rebuild_index()
    _train_steps(field, optimizers, positions, steps=2)


@pytest.mark.parametrize("quantized", [False, True])
def test_field_preserving_split_leaves_the_field_unchanged(quantized):
    field = small_field(num_kernels=50, seed=7)
    if quantized:
        codebook, _ = kmeans(field.kernel_params["features"], 8)
        field.set_codebook(codebook)
    positions = (torch.rand(400, 3, generator=torch.Generator().manual_seed(8)) - 0.5) * 2
    directions = torch.nn.functional.normalize(torch.randn(400, 3), dim=-1)
    with torch.no_grad():
        before = field(positions, directions)
    mask = torch.zeros(50, dtype=torch.bool)
    mask[::3] = True
    split_kernels(field.kernel_params, {}, {}, mask, GROUPS, offset=0.0, shrink=1.0)
    field.rebuild_index()
    assert field.num_kernels == 50 + int(mask.sum())
    with torch.no_grad():
        after = field(positions, directions)
    assert torch.allclose(before["density"], after["density"], rtol=1e-5, atol=1e-6)
    assert torch.allclose(before["rgb"], after["rgb"], atol=1e-6)


def test_default_split_preserves_feature_mass_and_moves_children_apart():
    field = small_field(num_kernels=20, seed=9)

    def mass():
        return (field.amplitudes() * field.scales().prod(-1)).sum().item()

    mass_before = mass()
    centers_before = field.kernel_params["centers"].detach().clone()
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[2, 3]] = True
    split_kernels(field.kernel_params, {}, {}, mask, GROUPS, offset=0.5, shrink=0.6)
    assert mass() == pytest.approx(mass_before, rel=1e-5)
    centers = field.kernel_params["centers"].detach()
    assert torch.allclose((centers[[2, 3]] + centers[20:]) / 2, centers_before[[2, 3]], atol=1e-6)
    assert (centers[[2, 3]] - centers[20:]).norm(dim=-1).min() > 0


def _constructed_statistics(strategy, num_kernels=20):
    """Per-ray statistics over 100 rays: signal 1e-3 each except kernels 3, 4 (1e-6, nearly
    nothing on screen); error 1e-6 each except kernels 10, 11 (1e-3, most of the error)."""
    state = strategy.initialize_state(num_kernels)
    signal = torch.full((num_kernels,), 1e-3)
    signal[[3, 4]] = 1e-6
    error = torch.full((num_kernels,), 1e-6)
    error[[10, 11]] = 1e-3
    state.update(contribution=100 * signal, signal=100 * signal, error=100 * error, rays=100, steps=1)
    return state


@pytest.mark.parametrize(
    "kernel_cost, expected",
    [
        # every kernel pays for itself and gains > λ: the rate limit (K/2) splits half, refuses half
        (1e-7, {"pruned": 0, "split": 10, "candidates": 20, "blocked_by_rate": 10}),
        # 3, 4 are worth less than λ; 10, 11 gain more than λ
        (1e-5, {"pruned": 2, "split": 2, "candidates": 2, "blocked_by_rate": 0}),
        # nothing is worth λ: down to min_kernels
        (1e-2, {"pruned": 20 - 4, "split": 0, "candidates": 0, "blocked_by_rate": 0}),
    ],
)
def test_strategy_prunes_and_splits_by_one_absolute_lambda(kernel_cost, expected):
    field = small_field(num_kernels=20, seed=10)
    optimizers = _adam_for(field)
    strategy = AKDStrategy(refine_start=0, refine_every=1, kernel_cost=kernel_cost, split_gain=0.5,
                           max_split_fraction=0.5, max_kernels=100, min_kernels=4)
    state = _constructed_statistics(strategy)
    result = strategy.step_post_backward(field.kernel_params, optimizers, state, step=1, group_names=GROUPS)
    assert {k: result[k] for k in expected} == expected
    assert result["blocked_by_cap"] == 0
    assert field.num_kernels == 20 - expected["pruned"] + expected["split"]
    # the last window's rendering weight per ray survives the reset, aligned with the kernels
    assert state["usage"].shape == (field.num_kernels,) and state["rays"] == 0


def test_splits_need_children_that_would_survive_and_the_cap_is_only_a_guard():
    field = small_field(num_kernels=20, seed=10)
    optimizers = _adam_for(field)
    strategy = AKDStrategy(refine_start=0, refine_every=1, kernel_cost=1e-5, max_split_fraction=0.5, max_kernels=100)
    state = _constructed_statistics(strategy)
    state["signal"][10] = 100 * 1.5e-5  # survives pruning (≥ λ) but its children (~λ/2 each) would not
    result = strategy.step_post_backward(field.kernel_params, optimizers, state, step=1, group_names=GROUPS)
    assert result["split"] == 1 and result["pruned"] == 2
    # at the cap the splits λ asks for are refused, and counted
    strategy.max_kernels = field.num_kernels
    state = _constructed_statistics(strategy, field.num_kernels)
    state["signal"][[3, 4]] = 100 * 1e-3  # nothing to prune this time
    result = strategy.step_post_backward(field.kernel_params, optimizers, state, step=2, group_names=GROUPS)
    assert result == {"pruned": 0, "split": 0, "candidates": 2, "blocked_by_rate": 0, "blocked_by_cap": 2}


def test_accumulate_normalises_per_ray_and_splits_samples_by_kernel_share():
    strategy = AKDStrategy()
    state = strategy.initialize_state(3)
    # two samples; sample 0 shared 3:1 by kernels 0 and 1, sample 1 only kernel 2
    sample_weights, residuals, signal = torch.tensor([0.8, 0.4]), torch.tensor([0.5, 0.1]), torch.tensor([2.0, 1.0])
    values = torch.stack([sample_weights, sample_weights * residuals, sample_weights * signal], dim=-1)
    sums = kernel_sums_from_pairs(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]), torch.tensor([3.0, 1.0, 2.0]), values, 3)
    strategy.accumulate(state, sums, num_rays=4)
    assert torch.allclose(strategy.per_ray(state, "contribution"), torch.tensor([0.6, 0.2, 0.4]) / 4)
    assert torch.allclose(strategy.per_ray(state, "error"), torch.tensor([0.3, 0.1, 0.04]) / 4)
    assert torch.allclose(strategy.per_ray(state, "signal"), torch.tensor([1.2, 0.4, 0.4]) / 4)
    assert torch.equal(strategy.kernel_usage(state), strategy.per_ray(state, "contribution"))
    with pytest.raises(ValueError, match="kernel_cost"):
        AKDStrategy(kernel_cost=0.0)


def test_kmeans_lowers_distortion_and_more_centroids_help():
    generator = torch.Generator().manual_seed(0)
    blobs = torch.randn(8, 6, generator=generator) * 3
    features = blobs.repeat_interleave(50, 0) + 0.1 * torch.randn(400, 6, generator=generator)
    random_codebook = features[torch.randperm(400, generator=generator)[:8]]
    codebook, assignments = kmeans(features, 8, iterations=20, generator=generator)
    assert codebook.shape == (8, 6) and assignments.shape == (400,)
    kmeans_distortion = quantization_distortion(features, codebook)
    assert kmeans_distortion < quantization_distortion(features, random_codebook)
    assert kmeans_distortion < 0.1  # ~ the noise variance × dims (0.06)
    distortions = [quantization_distortion(features, kmeans(features, q, generator=generator)[0]) for q in (2, 4, 8)]
    assert distortions[0] > distortions[1] > distortions[2]
    # warm start growing and shrinking
    grown, _ = kmeans(features, 12, init=codebook)
    shrunk, _ = kmeans(features, 4, init=codebook)
    assert grown.shape[0] == 12 and shrunk.shape[0] == 4


def test_adaptive_codebook_rule_grows_to_the_tolerance_and_shrinks_with_hysteresis():
    rule = AdaptiveCodebookRule(tolerance=0.05, shrink_margin=0.5, min_size=4, max_size=256)
    # distortion falling as 1/Q: D(Q) = 1/Q ≤ 0.05 from Q = 32 on
    as_one_over_q = lambda q: 1.0 / q  # noqa: E731
    assert rule.decide(4, as_one_over_q, num_features=1000).size == 32  # too coarse: grows
    assert rule.decide(256, as_one_over_q, num_features=1000).size == 64  # 32 is not below 0.025
    decision = rule.decide(64, as_one_over_q, num_features=1000)
    assert decision.size == 64 and set(decision.measured) == {32, 64}  # inside the band: stays
    assert rule.decide(4, as_one_over_q, num_features=20).size == 20  # never more centroids than features
    assert rule.decide(4, lambda q: 0.5, num_features=1000).size == 256  # max_size is the bound
    assert rule.decide(64, lambda q: 0.0, num_features=1000).size == 4
    with pytest.raises(ValueError, match="tolerance"):
        AdaptiveCodebookRule(tolerance=1.5)


def test_weighted_kmeans_follows_the_weights():
    features = torch.tensor([[0.0], [1.0], [10.0]])
    codebook, _ = kmeans(features, 1, iterations=3, weights=torch.tensor([1.0, 1.0, 0.0]))
    assert torch.allclose(codebook, torch.tensor([[0.5]]))
    codebook, assignments = kmeans(features, 2, iterations=5, weights=torch.tensor([1.0, 3.0, 0.0]), init=torch.tensor([[0.0], [10.0]]))
    assert quantization_distortion(features, codebook, assignments, torch.tensor([1.0, 3.0, 0.0])) < 0.2
    assert weighted_variance(features, torch.tensor([1.0, 1.0, 0.0])) == pytest.approx(0.25)


@pytest.mark.parametrize("q", [1, 2, 3, 5, 16, 17, 256])
def test_index_bit_packing_round_trips(q):
    bits = index_bits(q)
    assert bits == (math.ceil(math.log2(q)) if q > 1 else 0)
    indices = np.random.default_rng(q).integers(0, q, size=1001)
    packed = pack_indices(indices, bits)
    assert len(packed) == math.ceil(1001 * bits / 8)
    assert np.array_equal(unpack_indices(packed, bits, 1001), indices)
