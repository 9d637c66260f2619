"""A bench spec: everything the harness knows of a method, declared in the method's own folder.

A method is an ordinary nerfstudio method (a ``MethodSpecification`` under the
``nerfstudio.method_configs`` entry point, or one of nerfstudio's own). Its bench spec, registered
under the :data:`ENTRY_POINT_GROUP` entry point with the same name, says how the benchmark shows
and runs it: its label and colour, its settings per profile and kind of scene, its sweeps and
capacity points, its row of the paper's claims, the evidence of its own the run notebook draws,
and the devices it can run on. A method without one runs at its own defaults
(:func:`BenchSpec.defaults_for`)::

    # my_method/bench.py, registered in pyproject.toml:
    #   [project.entry-points."akdqff_bench.specs"]
    #   my-method = "my_method.bench:spec"
    from bench_base.spec import BenchSpec, CapacityPoint

    spec = BenchSpec(
        method="my-method", label="MyMethod", color="tab:orange",
        settings={"quick": {EVERY_SCENE: {"pipeline.model.hidden_dim": 64}}},
        capacities={"quick": (CapacityPoint("width 32", {"pipeline.model.hidden_dim": 32}),)},
    )

Settings are dotted paths into the method's ``TrainerConfig`` (``pipeline.model.*``,
``optimizers.*``); each record keeps the ones it ran with. This module imports nothing heavy:
the harness reads every spec before it builds any model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

ENTRY_POINT_GROUP = "akdqff_bench.specs"

# Keys of BenchSpec.settings[profile]: the settings for every scene, then those for one kind of scene
# (a scene's kind is its layout's SceneSettings.capture: rendered objects, photographs around an
# object, or photographs whose cameras all look one way).
EVERY_SCENE = "every scene"
SCENE_KINDS = ("synthetic", "real", "forward-facing")
# A kind a method has no settings of its own for takes those of the kind it falls back to: a
# forward-facing capture is a real one unless the method's spec says otherwise.
KIND_FALLBACK = {"forward-facing": "real"}
DEFAULT_CAPACITY = "default"
DEVICES = ("cpu", "cuda")
# A method's part in the comparison: the "subject" of the study (one method) is set against every
# "reference" (what a user would pick today) in its own table, beside the paper's verdict, which
# keeps to the methods with a paper row.
ROLES = ("method", "subject", "reference")


@dataclass(frozen=True)
class Candidate:
    """One setting a sweep tries, named so that a method's settings can pick the winner by name."""

    name: str
    overrides: Mapping[str, Any]


@dataclass(frozen=True)
class Sweep:
    """Candidates trained in a profile's budget (``akdqff-bench sweep``), ranked by test PSNR; the
    tables stay in ``results/sweeps/``."""

    candidates: Tuple[Candidate, ...]
    description: str = ""
    # Curve-point scalars (the model's own, as its records' curve points carry them) that the
    # sweep's training figure draws beside the PSNR, e.g. AKDQFF's "kernels".
    curve_scalars: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"sweep candidates need distinct names: {names}")

    def __getitem__(self, name: str) -> Dict[str, Any]:
        """The overrides of the candidate called ``name``."""
        for candidate in self.candidates:
            if candidate.name == name:
                return dict(candidate.overrides)
        raise KeyError(f"no sweep candidate named {name!r}; candidates: {[c.name for c in self.candidates]}")

    def __len__(self) -> int:
        return len(self.candidates)


@dataclass(frozen=True)
class CapacityPoint:
    """The method at another model size (a width, a grid, a λ), for the rate-distortion curves."""

    label: str
    overrides: Mapping[str, Any]


@dataclass(frozen=True)
class PaperRow:
    """The method's row of the paper's result table, as printed there."""

    psnr: float
    ssim: float
    memory_mb: float
    s_per_iter: float


@dataclass(frozen=True)
class RatioClaim:
    """A claim of the paper's text: this method is about ``factor`` times better than ``against`` in
    ``quantity`` (a record quantity where lower is better: stored size, s/iter)."""

    label: str
    quantity: str
    factor: float
    against: str
    paper_column: str  # the PaperRow field the paper's own table gives for it


@dataclass(frozen=True)
class BenchSpec:
    method: str  # the nerfstudio method name (``ns-train <method>``)
    label: str  # as tables and figures name it
    color: Optional[str] = None  # a matplotlib colour; None: the next of the default cycle
    rank: int = 100  # position in tables and figures (lower first); methods of equal rank by name
    grids: Tuple[str, ...] = ()  # the profiles whose default grid runs this method
    # profile -> EVERY_SCENE or a scene kind -> dotted overrides of the method's config
    settings: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    capacities: Mapping[str, Tuple[CapacityPoint, ...]] = field(default_factory=dict)  # profile -> further points
    sweeps: Mapping[str, Sweep] = field(default_factory=dict)  # name -> sweep; "quick" is the default one
    paper: Optional[PaperRow] = None
    paper_claims: Tuple[RatioClaim, ...] = ()
    # "package.module" with ``notebook_figures(result, level) -> [figures]`` and ``evidence_work(level) -> int``
    evidence: Optional[str] = None
    devices: Tuple[str, ...] = DEVICES
    device_reason: str = ""  # why the others cannot run it
    description: str = ""
    role: str = "method"  # one of ROLES
    # Dotted attributes of the model outside its state dict that rendering reads (stored with it by
    # the default hook, bench_base.representation): for a method whose training sets such state.
    stored_attributes: Tuple[str, ...] = ()
    at_defaults: bool = False  # no spec registered: the method runs at its own defaults

    def __post_init__(self) -> None:
        for profile, kinds in self.settings.items():
            unknown = set(kinds) - {EVERY_SCENE, *SCENE_KINDS}
            if unknown:
                raise ValueError(f"{self.method}: settings[{profile!r}] keys must be {EVERY_SCENE!r} or one of {SCENE_KINDS}, not {sorted(unknown)}")
        for profile, points in self.capacities.items():
            slugs = [capacity_slug(p.label) for p in points]
            if DEFAULT_CAPACITY in [p.label for p in points] or len(set(slugs)) != len(slugs):
                raise ValueError(f"{self.method}: capacity labels {[p.label for p in points]} of {profile!r} must not be "
                                 f"{DEFAULT_CAPACITY!r} and must differ in their file names")
        if self.role not in ROLES:
            raise ValueError(f"{self.method}: role must be one of {ROLES}, not {self.role!r}")
        if not set(self.devices) <= set(DEVICES):
            raise ValueError(f"{self.method}: devices must be among {DEVICES}, not {self.devices}")

    @classmethod
    def defaults_for(cls, method: str) -> "BenchSpec":
        return cls(method=method, label=method, at_defaults=True, description="no bench spec: the method's own defaults")

    def overrides(self, profile: str, kind: str, capacity: Optional[str] = None) -> Dict[str, Any]:
        """The method's settings in ``profile`` on a scene of ``kind``, then the capacity point's."""
        kinds = self.settings.get(profile, {})
        if kind not in SCENE_KINDS:
            raise ValueError(f"unknown kind of scene {kind!r}; kinds: {SCENE_KINDS}")
        while kind not in kinds and kind in KIND_FALLBACK:
            kind = KIND_FALLBACK[kind]
        return {**kinds.get(EVERY_SCENE, {}), **kinds.get(kind, {}), **self.capacity_overrides(profile, capacity)}

    def capacity_points(self, profile: str) -> Tuple[CapacityPoint, ...]:
        return tuple(self.capacities.get(profile, ()))

    def capacity_overrides(self, profile: str, capacity: Optional[str]) -> Dict[str, Any]:
        if is_default_capacity(capacity):
            return {}
        for point in self.capacity_points(profile):
            if point.label == capacity:
                return dict(point.overrides)
        known = ", ".join(repr(label) for label in [DEFAULT_CAPACITY, *(p.label for p in self.capacity_points(profile))])
        raise UnknownCapacity(f"unknown capacity {capacity!r} for {self.method} in the {profile} profile; known: {known}")

    def runs_on(self, device_type: str) -> bool:
        return device_type in self.devices


class UnknownCapacity(ValueError):
    """A capacity label the method's spec does not define for that profile."""


def is_default_capacity(capacity: Optional[str]) -> bool:
    return capacity in (None, "", DEFAULT_CAPACITY)


def capacity_slug(label: Optional[str]) -> str:
    """A capacity label as a file-name part: ``"width 128"`` -> ``width-128``, ``"λ 3e-7"`` ->
    ``lambda-3e-7`` (ASCII letters, digits, '.', '-' only)."""
    text = str(label).replace("λ", "lambda").replace("×", "x")
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.") or "capacity"


def number_label(value: float) -> str:
    """3e-07 -> 3e-7: a number in a label as people write it."""
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", f"{value:g}")


def scaled_widths(settings: Mapping[str, Any], factor: float) -> CapacityPoint:
    """A NeRF-style network with its base and head widths scaled by ``factor`` alike."""
    width = round(settings["pipeline.model.base_mlp_layer_width"] * factor)
    head = round(settings["pipeline.model.head_mlp_layer_width"] * factor)
    return CapacityPoint(f"width {width}", {"pipeline.model.base_mlp_layer_width": width, "pipeline.model.head_mlp_layer_width": head})


def merged(*blocks: Mapping[str, Any]) -> Dict[str, Any]:
    """Override blocks applied in order (a later block's value wins, the first position stays)."""
    out: Dict[str, Any] = {}
    for block in blocks:
        out.update(block)
    return out


def candidates(named: Sequence[Tuple[str, Mapping[str, Any]]]) -> Tuple[Candidate, ...]:
    return tuple(Candidate(name, dict(overrides)) for name, overrides in named)
