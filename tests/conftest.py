"""Shared fixtures: tiny scenes made on the fly, and an offline LPIPS (no weights on disk)."""

from __future__ import annotations

import pytest

from akdqff_bench.testing import make_tiny_blender_scene


@pytest.fixture
def tiny_scene(tmp_path):
    return make_tiny_blender_scene(tmp_path / "tiny", n_train=6, n_val=2, n_test=2, size=24)


@pytest.fixture
def tiny_data_root(tmp_path, monkeypatch):
    """A data root whose synthetic-bed/quick is the tiny sphere scene (the smoke profile reads it)."""
    root = tmp_path / "data"
    make_tiny_blender_scene(root / "synthetic-bed" / "quick", n_train=6, n_val=2, n_test=2, size=24)
    monkeypatch.setenv("AKDQFF_BENCH_DATA", str(root))
    return root


@pytest.fixture
def no_lpips_weights(tmp_path, monkeypatch):
    """TORCH_HOME without AlexNet weights, as on a fresh offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    # Where the network answers, the suite would otherwise fetch the 233 MB AlexNet weights once.
    monkeypatch.setenv("AKDQFF_BENCH_NO_DOWNLOAD", "1")
    return tmp_path / "torch-home"
