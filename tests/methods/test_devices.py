"""Every method's default device: CUDA only where torch sees a GPU (``ns-train M`` on a CPU machine)."""

from __future__ import annotations

import importlib

import pytest
import torch

from akdqff_bench.methods import method_config

CONFIG_MODULES = {
    "akdqff": "akdqff_method.config",
    "nerf": "baselines.nerf.config",
    "plenoxels": "baselines.plenoxels.config",
    "block-nerf": "baselines.block_nerf.config",
}


def reload_configs() -> None:
    for module in CONFIG_MODULES.values():
        importlib.reload(importlib.import_module(module))


@pytest.fixture
def build_configs():
    """Rebuild the method configs (made at import) as if torch.cuda.is_available() said so; afterwards
    rebuild them unpatched, so later tests see this machine's configs."""

    def build(cuda_available: bool) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch.cuda, "is_available", lambda: cuda_available)
            reload_configs()

    yield build
    reload_configs()


@pytest.mark.parametrize("cuda_available, expected", [(False, "cpu"), (True, "cuda")])
@pytest.mark.parametrize("method", sorted(CONFIG_MODULES))
def test_default_device_follows_cuda_availability(method, cuda_available, expected, build_configs):
    build_configs(cuda_available)
    # method_config loads the entry point as ns-train does, so this is the config ns-train starts from.
    assert method_config(method).machine.device_type == expected
