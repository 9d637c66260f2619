"""One run request: the single description of a run that travels from the CLI through either
executor (and a Ray task) and the run notebook's parameters to the runner; and the one home of
what it trains with (``RunRequest.settings``) and of whether a finished record still matches it
(``stale_because``), which the runner, the grid and the sweeps all use."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from akdqff_bench.datasets import scene_kind
from akdqff_bench.profiles import EVIDENCE_LEVELS, Profile, get_profile
from akdqff_bench.records import record_path, run_id
from bench_base.spec import is_default_capacity

MAX_SEED = 2**32  # numpy's and torch's seeds are 32-bit


class BadRequest(ValueError):
    """A run that cannot be asked for (a bad seed, evidence level or device)."""


@dataclass(frozen=True)
class RunRequest:
    """What to run: a method on a scene in a profile (resolved once, held here with its budget),
    with a seed and a capacity point (None: the method's profile settings), drawing ``evidence``,
    on ``device_type`` (None: the profile's). Sweeps add ``extra_overrides`` on top of the profile's
    settings and keep the record in ``record_file``, outside the profile's runs."""

    method: str
    scene: str
    profile: Profile
    seed: int = 0
    capacity: Optional[str] = None
    evidence: str = "full"
    device_type: Optional[str] = None
    extra_overrides: Mapping[str, Any] = field(default_factory=dict)
    record_file: Optional[str] = None
    # A reproduction of reference runs (``reproducing``): the profile then stops at their median
    # iteration count, and this says which runs gave it (the record keeps it).
    iterations_from_reference: Optional[Mapping[str, Any]] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "profile", get_profile(self.profile))
        if is_default_capacity(self.capacity):
            object.__setattr__(self, "capacity", None)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < MAX_SEED:
            raise BadRequest(f"seed must be an integer in [0, 2^32), not {self.seed!r}")
        if self.evidence not in EVIDENCE_LEVELS:
            raise BadRequest(f"evidence must be one of {EVIDENCE_LEVELS}, not {self.evidence!r}")
        if self.device_type not in (None, "cpu", "cuda"):
            raise BadRequest(f"device must be cpu or cuda, not {self.device_type!r}")

    @property
    def device(self) -> str:
        return self.device_type or self.profile.device_type

    @property
    def run_id(self) -> str:
        return run_id(self.method, self.scene, self.seed, self.capacity)

    def record_path(self, results_root: Path) -> Path:
        if self.record_file is not None:
            return Path(self.record_file)
        return record_path(results_root, self.profile.name, self.method, self.scene, self.seed, self.capacity)

    def describe(self) -> str:
        """``nerf on synthetic-bed (seed 0)``, ``nerf on synthetic-bed (width 128, seed 0)``."""
        return f"{self.method} on {self.scene} ({f'{self.capacity}, ' if self.capacity else ''}seed {self.seed})"

    def overrides(self) -> Dict[str, Any]:
        """Every override of the method's defaults the request trains with: its spec's settings for
        the profile and the scene's kind, its capacity point, then its extra ones (a sweep's)."""
        return {**self.profile.overrides_for(self.method, scene_kind(self.scene), self.capacity), **self.extra_overrides}

    def settings(self) -> Dict[str, Any]:
        """Every setting the request trains with, under its record's field names: the overrides of
        the method's defaults, rays per batch, the budget and its clock, the iteration cap. The
        runner writes these into the record; ``stale_because`` compares a record with them."""
        profile = self.profile
        return {"overrides": self.overrides(), "rays_per_batch": profile.rays_per_batch,
                "train_budget_seconds": profile.train_budget_seconds, "max_iterations": profile.max_iterations,
                "budget_clock": profile.budget_clock if profile.train_budget_seconds else None}

    def with_scene(self, scene: str) -> "RunRequest":
        return replace(self, scene=scene)

    def reproducing(self, seeds: Sequence[int], iterations: Sequence[int], reference: str) -> "RunRequest":
        """This run trained for the median of ``iterations`` (the reference runs' of ``seeds`` in
        ``reference``) instead of its profile's budget: on another machine it then does the same
        work as the runs it is compared with, and only its timings differ."""
        if not iterations:
            raise BadRequest("a reproduction needs the iterations of at least one reference run")
        median = int(round(statistics.median(iterations)))
        profile = replace(self.profile, train_budget_seconds=None, max_iterations=median, budget_clock="wall")
        source = {"reference": reference, "seeds": list(seeds), "iterations": list(iterations), "median": median}
        return replace(self, profile=profile, iterations_from_reference=source)

    def to_json(self) -> str:
        """The request as one JSON string (the run notebook's ``request`` parameter)."""
        values: Dict[str, Any] = {"method": self.method, "scene": self.scene, "profile": self.profile.to_dict(), "seed": self.seed,
                                  "capacity": self.capacity, "evidence": self.evidence, "device_type": self.device_type,
                                  "extra_overrides": dict(self.extra_overrides), "record_file": self.record_file,
                                  "iterations_from_reference": dict(self.iterations_from_reference or {}) or None}
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> "RunRequest":
        values = json.loads(text)
        values["profile"] = Profile.from_dict(values["profile"])
        return cls(**values)


def as_recorded(value: Any) -> Any:
    """``value`` as a record's JSON holds it (tuples as lists, other objects as text)."""
    return json.loads(json.dumps(value, default=str))


def stale_because(request: RunRequest, record: Mapping[str, Any], data_hash: Optional[Callable[[str], Optional[str]]] = None) -> str:
    """What differs between a finished record and what ``request`` would run now ('' when nothing
    does): its ``settings``, and (``data_hash``: scene -> sha256, for a record that has one) the
    scene's data. A record without a field (made before it existed) is not stale for it."""
    if record.get("status") != "ok":
        return ""
    changed = []
    for key, value in as_recorded(request.settings()).items():
        if key in record and record.get(key) != value:
            if key == "overrides":
                before = record.get(key) or {}
                keys = sorted(k for k in set(before) | set(value) if before.get(k) != value.get(k))
                changed.append("settings " + ", ".join(f"{k}: {before.get(k)!r} -> {value.get(k)!r}" for k in keys[:3])
                               + (f" and {len(keys) - 3} more" if len(keys) > 3 else ""))
            else:
                changed.append(f"{key}: {record.get(key)!r} -> {value!r}")
    recorded = (record.get("data_fingerprint") or {}).get("sha256")
    if recorded and data_hash is not None:
        now_hash = data_hash(request.scene)
        if now_hash is not None and now_hash != recorded:
            changed.append("the scene's data: its images, poses or split differ from those the record was measured on")
    return "; ".join(changed)
