"""Method registration through nerfstudio's entry points, and config overrides."""

import subprocess
import sys

import pytest

from akdqff_bench.methods import UnknownMethod, apply_overrides, method_config, registered_method_names

METHODS = ("nerf", "akdqff", "plenoxels", "block-nerf")  # this repository's plugins

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_every_benchmark_method_is_registered():
    assert set(METHODS) <= set(registered_method_names())


@pytest.mark.parametrize("name", METHODS)
def test_each_method_config_loads_with_its_cli_name(name):
    config = method_config(name)
    assert config.method_name == name


def test_ns_train_lists_the_methods():
    """What a user types: every plugin imports cleanly and ns-train knows each method."""
    out = subprocess.run([sys.executable, "-m", "nerfstudio.scripts.train", "--help"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in METHODS:
        assert name in out.stdout


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(UnknownMethod, match="unknown method 'nerf-xl'; known methods: .*nerf"):
        method_config("nerf-xl")


def test_overrides_set_nested_fields_and_dict_keys():
    config = method_config("nerf")
    apply_overrides(config, {"pipeline.model.base_mlp_layer_width": 64, "optimizers.fields.optimizer.lr": 1e-3})
    assert config.pipeline.model.base_mlp_layer_width == 64
    assert config.optimizers["fields"]["optimizer"].lr == 1e-3


def test_override_typo_fails_instead_of_adding_a_field():
    config = method_config("nerf")
    with pytest.raises(AttributeError, match="has no field 'base_mlp_widht'"):
        apply_overrides(config, {"pipeline.model.base_mlp_widht": 64})
