"""Find the benchmark's methods the way ``ns-train`` does: through nerfstudio's entry points.

Unlike nerfstudio's own discovery, one broken plugin does not hide the others: asking for a method
whose plugin fails to import names the method and the import error.
"""

from __future__ import annotations

import copy
from importlib.metadata import entry_points
from typing import Any, Dict

from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

ENTRY_POINT_GROUP = "nerfstudio.method_configs"


class UnknownMethod(ValueError):
    pass


def registered_method_names() -> list:
    return sorted(entry_points(group=ENTRY_POINT_GROUP).names)


def method_config(name: str) -> TrainerConfig:
    """A fresh copy of method ``name``'s TrainerConfig (safe to modify)."""
    points = entry_points(group=ENTRY_POINT_GROUP)
    if name not in points.names:
        raise UnknownMethod(f"unknown method {name!r}; registered methods: {', '.join(registered_method_names())}")
    try:
        spec = points[name].load()
    except Exception as error:  # a plugin's own import error, reported with its name
        raise UnknownMethod(f"method {name!r} is registered but its plugin failed to import: {error!r}") from error
    if not isinstance(spec, MethodSpecification):
        raise UnknownMethod(f"entry point {name!r} is not a nerfstudio MethodSpecification")
    return copy.deepcopy(spec.config)


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
