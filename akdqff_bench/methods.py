"""Find methods the way ``ns-train`` does, and their bench specs, by name alone.

A method is any nerfstudio method: a plugin's ``MethodSpecification`` (the
``nerfstudio.method_configs`` entry points) or one of nerfstudio's own (``nerfacto``, ``tensorf``,
``vanilla-nerf``, ...). Its bench spec comes from the ``akdqff_bench.specs`` entry point of the same
name; a method without one runs at its own defaults. Unlike nerfstudio's own discovery, one broken
plugin does not hide the others: asking for a method whose plugin fails to import names the method
and the import error.
"""

from __future__ import annotations

import copy
import functools
import importlib
import re
from importlib.metadata import entry_points
from typing import Any, Dict, List, Optional

from bench_base.spec import ENTRY_POINT_GROUP as SPEC_GROUP
from bench_base.spec import BenchSpec

METHOD_GROUP = "nerfstudio.method_configs"


class UnknownMethod(ValueError):
    pass


class MethodCannotRun(ValueError):
    """The method cannot run on the device asked for (its spec says why)."""


@functools.lru_cache(maxsize=1)
def _builtin_configs() -> Dict[str, Any]:
    """nerfstudio's own methods that it ships (not the placeholders naming external packages)."""
    import contextlib
    import io

    from nerfstudio.engine.trainer import TrainerConfig

    with contextlib.redirect_stdout(io.StringIO()):  # nerfstudio prints while it discovers plugins
        from nerfstudio.configs.method_configs import method_configs
    # ExternalMethodDummyTrainerConfig (in2n, zipnerf, ...) is a TrainerConfig that only prints how to install.
    return {name: config for name, config in method_configs.items()
            if type(config) is TrainerConfig or not type(config).__name__.startswith("ExternalMethod")}


def plugin_method_names() -> List[str]:
    return sorted(entry_points(group=METHOD_GROUP).names)


def registered_method_names() -> List[str]:
    """Every method this environment can train: the plugins' and nerfstudio's own."""
    return sorted(set(plugin_method_names()) | set(_builtin_configs()))


def is_known(name: str) -> bool:
    return name in entry_points(group=METHOD_GROUP).names or name in _builtin_configs()


def method_config(name: str):
    """A fresh copy of method ``name``'s TrainerConfig (safe to modify)."""
    from nerfstudio.plugins.types import MethodSpecification

    points = entry_points(group=METHOD_GROUP)
    if name in points.names:
        try:
            spec = points[name].load()
        except Exception as error:  # a plugin's own import error, reported with its name
            raise UnknownMethod(f"method {name!r} is registered but its plugin failed to import: {error!r}") from error
        if not isinstance(spec, MethodSpecification):
            raise UnknownMethod(f"entry point {name!r} is not a nerfstudio MethodSpecification")
        return copy.deepcopy(spec.config)
    builtins = _builtin_configs()
    if name in builtins:
        return copy.deepcopy(builtins[name])
    raise UnknownMethod(f"unknown method {name!r}; known methods: {', '.join(registered_method_names())}")


@functools.lru_cache(maxsize=None)
def bench_spec(name: str) -> BenchSpec:
    """The method's bench spec, or one that says it runs at its own defaults."""
    points = entry_points(group=SPEC_GROUP)
    if name not in points.names:
        return BenchSpec.defaults_for(name)
    try:
        spec = points[name].load()
    except Exception as error:
        raise UnknownMethod(f"the bench spec of {name!r} failed to import: {error!r}") from error
    if not isinstance(spec, BenchSpec) or spec.method != name:
        raise UnknownMethod(f"entry point {name!r} of {SPEC_GROUP} must be a BenchSpec for method {name!r}")
    return spec


def spec_names() -> List[str]:
    return sorted(entry_points(group=SPEC_GROUP).names)


def evidence_module(method: Optional[str]):
    """The module a method's bench spec names for its own evidence (None: it has none)."""
    module_name = bench_spec(method).evidence if method else None
    return None if module_name is None else importlib.import_module(module_name)


def evidence_cost_ratio(method: str, measured: str, wanted: str) -> float:
    """How long ``method``'s evidence takes at level ``wanted`` against level ``measured`` (1 for a
    method without evidence of its own): the grid scales a notebook's measured duration by it."""
    module = evidence_module(method)
    return 1.0 if module is None else module.evidence_work(wanted) / module.evidence_work(measured)


def methods_of_grid(profile: str) -> List[str]:
    """The methods whose spec puts them in ``profile``'s default grid, in table order."""
    specs = [bench_spec(name) for name in spec_names()]
    return [spec.method for spec in sorted(specs, key=lambda s: (s.rank, s.method)) if profile in spec.grids]


# What a method's name may be: it names files and folders under the results folder.
METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def check_runnable(names: List[str], device_type: str) -> None:
    """Every name a known method that can run on ``device_type`` without downloading while it
    trains; else one line that says why."""
    from akdqff_bench.downloads import missing_downloads, refusal

    bad = [name for name in names if not METHOD_NAME.fullmatch(name)]
    if bad:
        raise UnknownMethod(f"method name(s) {bad} are not names (letters, digits, '_', '.', '+', '-'; the first a letter or digit)")
    unknown = [name for name in names if not is_known(name)]
    if unknown:
        raise UnknownMethod(f"unknown method(s) {unknown}; known methods: {', '.join(registered_method_names())}")
    for name in names:
        spec = bench_spec(name)
        if not spec.runs_on(device_type):
            raise MethodCannotRun(f"{name} cannot run on {device_type}: {spec.device_reason or 'its bench spec says so'} "
                                  f"(it runs on {', '.join(spec.devices)}); nothing was run")
        missing = missing_downloads(method_config(name))
        if missing:
            raise MethodCannotRun(refusal(name, missing))


def _child(node: Any, part: str, dotted: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            raise AttributeError(f"override {dotted!r}: no key {part!r} in {sorted(node)}")
        return node[part]
    if not hasattr(node, part):
        raise AttributeError(f"override {dotted!r}: {type(node).__name__} has no field {part!r}")
    return getattr(node, part)


def apply_overrides(config: Any, overrides: Dict[str, Any]) -> Any:
    """Set dotted-path fields, e.g. {"pipeline.model.base_mlp_layer_width": 64} or
    {"optimizers.fields.optimizer.lr": 1e-3} (dict keys work too); an unknown path fails loudly."""
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        target = config
        for part in parents:
            target = _child(target, part, dotted)
        _child(target, leaf, dotted)  # the leaf must exist: a typo must not add a field silently
        if isinstance(target, dict):
            target[leaf] = copy.deepcopy(value)
        else:
            setattr(target, leaf, copy.deepcopy(value))
    return config
