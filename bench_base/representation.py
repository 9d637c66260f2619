"""What the harness needs from a method, and the defaults it uses when a method says nothing.

Every method is an ordinary nerfstudio method (a ``TrainerConfig`` in a ``MethodSpecification``,
registered under the ``nerfstudio.method_configs`` entry point). On top of that the harness uses
four optional model hooks:

``export_representation(path)``
    Write the representation the evaluation renders from. Its size on disk is the
    ``model_size_bytes`` we publish, so it must hold everything rendering needs and nothing else
    (no optimizer state, no LPIPS backbone).
``load_representation(path)``
    Load such a file into a freshly built model of the same config. The harness renders the test
    views from the loaded model, never from the model that was trained.
``benchmark_scalars()``
    A flat ``{name: float}`` of values worth logging over training (kernel count, codebook size,
    voxel count, ...). Recorded with every point of the quality-against-time curve.
``adaptation_history()``
    Any JSON-able account of the decisions the method took while training (AKDQFF: every split,
    prune and codebook resize), kept whole in the record's ``adaptation_history``.

A method's bench spec (:mod:`bench_base.spec`) may also name an evidence module whose
``notebook_figures(result, level)`` the run notebook draws after the metrics.

Models without the first two get :func:`export_state_dict` / :func:`load_state_dict`: the model's
``state_dict`` in float32 minus the LPIPS network, plus the attributes outside it that rendering
reads, which a bench spec names in ``stored_attributes`` (nerfacto's proposal-sampler anneal
exponent, set by a training callback: a fresh model starts at another value).

Rendered colour comes from ``get_outputs_for_camera``: the first of :data:`RGB_OUTPUT_KEYS` that
the outputs contain. RGBA ground truth is composited on the model's own background colour
(``bench_base.views.composited_ground_truth``), as training composites it for the loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import torch

# vanilla-nerf calls its final colour "rgb_fine"; every other method here says "rgb".
RGB_OUTPUT_KEYS = ("rgb_fine", "rgb")

# Sub-modules that are metrics, not scene representation: never part of a stored model.
NON_REPRESENTATION_PREFIXES = ("lpips.", "psnr.", "ssim.")


def representation_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {
        key: value.detach().cpu()
        for key, value in model.state_dict().items()
        if not key.startswith(NON_REPRESENTATION_PREFIXES)
    }


# Key prefix of a stored attribute (``BenchSpec.stored_attributes``) in the stored state dict.
ATTRIBUTE_PREFIX = "attribute:"


def _attribute_owner(model: torch.nn.Module, dotted: str):
    *parents, name = dotted.split(".")
    owner = model
    for part in parents:
        owner = getattr(owner, part)
    return owner, name


def export_state_dict(model: torch.nn.Module, path: Path, attributes: Sequence[str] = ()) -> None:
    state = representation_state_dict(model)
    for dotted in attributes:
        owner, name = _attribute_owner(model, dotted)
        value = getattr(owner, name)
        # A Python number in double precision: it must come back the number it was.
        state[ATTRIBUTE_PREFIX + dotted] = value.detach().cpu() if torch.is_tensor(value) else torch.tensor(value, dtype=torch.float64)
    torch.save(state, path)


def take_stored_shapes(model: torch.nn.Module, state: Dict[str, torch.Tensor]) -> None:
    """Give ``model``'s parameters and buffers the shapes ``state`` stores, where they differ: a
    model that grows while it trains (TensoRF upsamples its planes and lines) is built at its
    initial size, and the stored one is the grown one."""
    own = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for key, stored in state.items():
        current = own.get(key)
        if current is None or current.shape == stored.shape:
            continue
        module_name, _, name = key.rpartition(".")
        module = model.get_submodule(module_name)
        grown = torch.empty(stored.shape, dtype=current.dtype, device=current.device)
        if name in module._parameters:
            setattr(module, name, torch.nn.Parameter(grown, requires_grad=current.requires_grad))
        else:
            module._buffers[name] = grown


def load_state_dict(model: torch.nn.Module, path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in [key for key in state if key.startswith(ATTRIBUTE_PREFIX)]:
        owner, name = _attribute_owner(model, key[len(ATTRIBUTE_PREFIX):])
        value = state.pop(key)
        setattr(owner, name, value.item() if value.dim() == 0 else value)
    take_stored_shapes(model, state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(NON_REPRESENTATION_PREFIXES)]
    if missing or unexpected:
        raise RuntimeError(f"{path}: stored model does not match the config (missing {missing}, unexpected {unexpected})")


def export_representation(model: torch.nn.Module, path: Path, attributes: Sequence[str] = ()) -> int:
    """Write the stored model for ``model`` to ``path`` (with the named ``attributes`` when it is
    stored by the default hook) and return its size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hook = getattr(model, "export_representation", None)
    if hook is not None:
        hook(path)
    else:
        export_state_dict(model, path, attributes)
    return path.stat().st_size


def load_representation(model: torch.nn.Module, path: Path) -> None:
    hook = getattr(model, "load_representation", None)
    if hook is not None:
        hook(Path(path))
    else:
        load_state_dict(model, Path(path))


def benchmark_scalars(model: torch.nn.Module) -> Dict[str, float]:
    hook = getattr(model, "benchmark_scalars", None)
    return {k: float(v) for k, v in hook().items()} if hook is not None else {}


def adaptation_history(model: torch.nn.Module):
    hook = getattr(model, "adaptation_history", None)
    return hook() if hook is not None else None


def rendered_rgb(outputs: Dict[str, torch.Tensor]) -> torch.Tensor:
    for key in RGB_OUTPUT_KEYS:
        if key in outputs:
            return outputs[key]
    raise KeyError(f"model outputs have none of {RGB_OUTPUT_KEYS}: {sorted(outputs)}")
