"""Records that belong together, and the quantities read from them: the algebra the comparison, the
grid's console lines and the executors share (no presentation here).

A record's ``capacity`` (a short label such as ``"width 64"``, set by the grid for the points of a
capacity curve) is part of its group; records without one are the method's default settings, the
point the tables' first rows, the verdict and the reproduction comparison use. Seeds of the same
(scene, method, capacity) are pooled into a ``Spread``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from akdqff_bench.methods import bench_spec
from bench_base.spec import DEFAULT_CAPACITY


def ok_records(records: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok"]


def scene_label(record: Dict[str, Any]) -> str:
    """``synthetic-bed`` (scene ``bed``), ``tanks-temples/truck``: the data set alone when the
    scene's name is part of it."""
    dataset, scene = str(record.get("dataset") or ""), str(record.get("scene") or "")
    if not dataset:
        return scene
    if not scene or scene == dataset or scene in dataset.split("-"):
        return dataset
    return f"{dataset}/{scene}"


def capacity_of(record: Dict[str, Any]) -> str:
    return str(record.get("capacity") or DEFAULT_CAPACITY)


def method_rank(method: str) -> Tuple[int, str]:
    return bench_spec(method).rank, method


def scenes_in_order(records: Iterable[Dict[str, Any]]) -> List[str]:
    """synthetic-bed first (the study's scene), then the rest alphabetically."""
    scenes = {scene_label(r) for r in records}
    return sorted(scenes, key=lambda s: (not s.startswith("synthetic-bed"), s))


def measured_scenes(records: Iterable[Dict[str, Any]]) -> List[str]:
    return scenes_in_order(ok_records(records))


GroupKey = Tuple[str, str, str]  # (scene, method, capacity)


def group_key(record: Dict[str, Any]) -> GroupKey:
    """The group a record's run is one seed of: (scene, method, capacity)."""
    return scene_label(record), record.get("method"), capacity_of(record)


def group_records(records: Iterable[Dict[str, Any]]) -> Dict[GroupKey, List[Dict[str, Any]]]:
    """Measured records by (scene, method, capacity), one entry per seed, methods in paper order."""
    groups: Dict[GroupKey, List[Dict[str, Any]]] = {}
    for r in ok_records(records):
        groups.setdefault(group_key(r), []).append(r)
    order = {s: i for i, s in enumerate(scenes_in_order(ok_records(records)))}
    return dict(sorted(groups.items(), key=lambda item: (order[item[0][0]], method_rank(item[0][1]), item[0][2] != DEFAULT_CAPACITY,
                                                         _mean_size(item[1]))))


def _mean_size(records: List[Dict[str, Any]]) -> float:
    sizes = [r["model_size_bytes"] for r in records if r.get("model_size_bytes") is not None]
    return float(np.mean(sizes)) if sizes else math.inf


def default_groups(records: Iterable[Dict[str, Any]]) -> Dict[Tuple[str, str], List[Dict[str, Any]]]:
    """(scene, method) -> the seeds of the method's default settings."""
    return {(scene, method): runs for (scene, method, capacity), runs in group_records(records).items() if capacity == DEFAULT_CAPACITY}


def mean_s_per_iter(record: Dict[str, Any]) -> float:
    """Training wall time over iterations: unlike the median, it counts a method's periodic work
    (kernel allocation, codebook refits, grid updates, upsampling) at its share."""
    iterations = record.get("iterations")
    if record.get("status") != "ok" or not iterations or record.get("train_seconds") is None:
        return float("nan")
    return float(record["train_seconds"]) / float(iterations)


@dataclass(frozen=True)
class Quantity:
    key: str
    label: str
    value_of: Callable[[Dict[str, Any]], Any]
    higher_is_better: Optional[bool]  # None: no "best" (e.g. iterations)
    kind: str  # how it is printed: psnr, ssim, lpips, bytes, seconds, count, rate


def _record_field(name: str) -> Callable[[Dict[str, Any]], Any]:
    return lambda record: record.get(name)


QUANTITIES: Dict[str, Quantity] = {q.key: q for q in (
    Quantity("psnr", "PSNR (dB)", _record_field("psnr"), True, "psnr"),
    Quantity("ssim", "SSIM", _record_field("ssim"), True, "ssim"),
    Quantity("lpips", "LPIPS", _record_field("lpips"), False, "lpips"),
    Quantity("model_size_bytes", "Stored model", _record_field("model_size_bytes"), False, "bytes"),
    Quantity("s_per_iter", "Update (s/iter, median)", _record_field("s_per_iter"), False, "seconds"),
    Quantity("mean_s_per_iter", "Mean s/iter", mean_s_per_iter, False, "seconds"),
    Quantity("cpu_s_per_iter", "Update (CPU-s/iter, median)", _record_field("cpu_s_per_iter"), False, "seconds"),
    Quantity("iterations", "Iterations", _record_field("iterations"), None, "count"),
    Quantity("render_fps", "Render (img/s)", _record_field("render_fps"), True, "rate"),
    Quantity("peak_memory_bytes", "Peak memory", _record_field("peak_memory_bytes"), False, "bytes"),
)}


@dataclass(frozen=True)
class Spread:
    """One quantity over a group's seeds. ``std`` is the sample standard deviation (n - 1)."""

    values: Tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")


def spread(records: Iterable[Dict[str, Any]], quantity: str) -> Spread:
    value_of = QUANTITIES[quantity].value_of
    values = []
    for r in records:
        value = value_of(r)
        if value is not None and math.isfinite(float(value)):
            values.append(float(value))
    return Spread(tuple(values))


def separated(better: Spread, worse: Spread, higher_is_better: bool) -> Optional[bool]:
    """True: better's whole range is on the better side; False: the reverse; None: they overlap."""
    if higher_is_better:
        better, worse = Spread(tuple(-v for v in better.values)), Spread(tuple(-v for v in worse.values))
    if better.high < worse.low:
        return True
    if worse.high < better.low:
        return False
    return None
