"""The comparison: measured tables (mean ± std over seeds), the paper's claims as a verdict, the
user's numbers against a reference study, capacity and learning curves, and test renders.

Everything here reads the run records (the one source of truth); nothing is typed in by hand
except the paper's own numbers (each method's bench spec holds its row of the paper's table and the
claims of the paper's text), which are shown labelled as the paper's. Methods are named, ordered and
coloured by their bench specs; a method without one by its name.

Records that belong together: a record's ``capacity`` (a short label such as ``"width 64"``, set by
the grid for the points of a capacity curve) is part of its group; records without one are the
method's default settings, the point the tables' first rows, the verdict and the reproduction
comparison use. Seeds of the same (scene, method, capacity) are pooled into mean ± std (n).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from akdqff_bench.methods import bench_spec, spec_names
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.profiles import EVIDENCE_LEVELS, get_profile
from akdqff_bench.records import load_records, runs_dir
from bench_base.files import atomic_path
from bench_base.spec import DEFAULT_CAPACITY

MISSING = "—"
# Colours for methods whose spec names none (matplotlib's cycle minus the specs' own).
SPARE_COLORS = ("tab:brown", "tab:pink", "tab:gray", "tab:cyan", "black")
# Wide enough for the HTML page and the notebook, short enough for two plots side by side.
PAGE_WIDTH_INCHES = 10.0


def paper_claims() -> pd.DataFrame:
    """The paper's table: one row per method whose bench spec carries its row, in table order."""
    specs = sorted((bench_spec(name) for name in spec_names()), key=lambda s: (s.rank, s.method))
    rows = [{"method": s.method, "psnr": s.paper.psnr, "ssim": s.paper.ssim, "memory_mb": s.paper.memory_mb, "s_per_iter": s.paper.s_per_iter}
            for s in specs if s.paper is not None]
    return pd.DataFrame(rows, columns=["method", "psnr", "ssim", "memory_mb", "s_per_iter"])


def ratio_claims():
    """The claims of the paper's text, (the method claiming, RatioClaim), from the bench specs."""
    return [(name, claim) for name in spec_names() for claim in bench_spec(name).paper_claims]


def method_label(method: str) -> str:
    return bench_spec(method).label


def method_color(method: str) -> str:
    color = bench_spec(method).color
    return color or SPARE_COLORS[sum(map(ord, method)) % len(SPARE_COLORS)]


def at_defaults_note(records: Iterable[Dict[str, Any]]) -> str:
    """Which measured methods ran at their own defaults (no bench spec), '' when none did."""
    names = sorted({r["method"] for r in _ok(records) if r.get("method_at_defaults")})
    if not names:
        return ""
    return (f"Ran at their own defaults (no bench spec, so no tuned settings): {', '.join(names)}; only the profile's budget, "
            "device, data and rays per batch were set.")


# --- grouping records ---------------------------------------------------------------------------


def _ok(records: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
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


def _method_rank(method: str) -> Tuple[int, str]:
    return bench_spec(method).rank, method


def scenes_in_order(records: Iterable[Dict[str, Any]]) -> List[str]:
    """synthetic-bed first (the study's scene), then the rest alphabetically."""
    scenes = {scene_label(r) for r in records}
    return sorted(scenes, key=lambda s: (not s.startswith("synthetic-bed"), s))


def measured_scenes(records: Iterable[Dict[str, Any]]) -> List[str]:
    return scenes_in_order(_ok(records))


GroupKey = Tuple[str, str, str]  # (scene, method, capacity)


def group_records(records: Iterable[Dict[str, Any]]) -> Dict[GroupKey, List[Dict[str, Any]]]:
    """Measured records by (scene, method, capacity), one entry per seed, methods in paper order."""
    groups: Dict[GroupKey, List[Dict[str, Any]]] = {}
    for r in _ok(records):
        groups.setdefault((scene_label(r), r["method"], capacity_of(r)), []).append(r)
    order = {s: i for i, s in enumerate(scenes_in_order(_ok(records)))}
    return dict(sorted(groups.items(), key=lambda item: (order[item[0][0]], _method_rank(item[0][1]), item[0][2] != DEFAULT_CAPACITY,
                                                         _mean_size(item[1]))))


def _mean_size(records: List[Dict[str, Any]]) -> float:
    sizes = [r["model_size_bytes"] for r in records if r.get("model_size_bytes") is not None]
    return float(np.mean(sizes)) if sizes else math.inf


def default_groups(records: Iterable[Dict[str, Any]]) -> Dict[Tuple[str, str], List[Dict[str, Any]]]:
    """(scene, method) -> the seeds of the method's default settings."""
    return {(scene, method): runs for (scene, method, capacity), runs in group_records(records).items() if capacity == DEFAULT_CAPACITY}


# --- quantities and their spread ------------------------------------------------------------------


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


def _field(name: str) -> Callable[[Dict[str, Any]], Any]:
    return lambda record: record.get(name)


QUANTITIES: Dict[str, Quantity] = {q.key: q for q in (
    Quantity("psnr", "PSNR (dB)", _field("psnr"), True, "psnr"),
    Quantity("ssim", "SSIM", _field("ssim"), True, "ssim"),
    Quantity("lpips", "LPIPS", _field("lpips"), False, "lpips"),
    Quantity("model_size_bytes", "Stored model", _field("model_size_bytes"), False, "bytes"),
    Quantity("s_per_iter", "Update (s/iter, median)", _field("s_per_iter"), False, "seconds"),
    Quantity("mean_s_per_iter", "Mean s/iter", mean_s_per_iter, False, "seconds"),
    Quantity("cpu_s_per_iter", "Update (CPU-s/iter, median)", _field("cpu_s_per_iter"), False, "seconds"),
    Quantity("iterations", "Iterations", _field("iterations"), None, "count"),
    Quantity("render_fps", "Render (img/s)", _field("render_fps"), True, "rate"),
    Quantity("peak_memory_bytes", "Peak memory", _field("peak_memory_bytes"), False, "bytes"),
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


# --- formatting -----------------------------------------------------------------------------------


def _bytes_unit(value: float) -> Tuple[float, str]:
    if value >= 1e9:
        return 1e9, "GB"
    if value >= 1e6:
        return 1e6, "MB"
    return 1e3, "KB"


def format_value(value: Optional[float], kind: str, std: Optional[float] = None) -> str:
    """One number (and its std) as the tables print it; ``MISSING`` for no value."""
    if value is None or not math.isfinite(value):
        return MISSING
    has_std = std is not None and math.isfinite(std)
    if kind == "bytes":
        scale, unit = _bytes_unit(value)
        digits = 1 if value / scale < 100 else 0
        text = f"{value / scale:.{digits}f}"
        return f"{text} ± {std / scale:.{digits}f} {unit}" if has_std else f"{text} {unit}"
    formats = {"psnr": "{:.2f}", "ssim": "{:.3f}", "lpips": "{:.3f}", "count": "{:,.0f}", "rate": "{:.2f}"}
    if kind == "seconds":
        fmt = "{:#.3g}" if value < 1 else "{:.2f}"
    else:
        fmt = formats.get(kind, "{:.4g}")
    text = fmt.format(value)
    if not has_std:
        return text
    # The std to the mean's last decimal: "0.606 ± 0.006", not "0.606 ± 0.00600" or "± 1.7e-17".
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    return f"{text} ± {std:,.{decimals}f}"


def format_spread(s: Spread, kind: str) -> str:
    return format_value(s.mean if s.n else None, kind, s.std if s.n >= 2 else None)


# Absolute paths must not reach the report (they name someone's machine, not the result).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s:'\",;()]+)")


def without_paths(text: str) -> str:
    """Paths inside the repository made relative to it; any other absolute path cut to its name."""
    text = text.replace(str(REPO_ROOT) + "/", "").replace(str(REPO_ROOT), ".")
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _first_line(text: Optional[str]) -> str:
    return without_paths((text or "").strip().splitlines()[0]) if (text or "").strip() else ""


def _style(frame: pd.DataFrame, bold: Optional[pd.DataFrame] = None, caption: Optional[str] = None, wrap: Sequence[str] = ()):
    """A pandas Styler as the report shows tables: no index, "—" for missing, bold best cells."""
    styler = frame.style.hide(axis="index").format(na_rep=MISSING)
    if bold is not None:
        styler = styler.apply(lambda _: bold.map(lambda b: "font-weight: bold" if b else ""), axis=None)
    if caption:
        styler = styler.set_caption(caption)
    styler = styler.set_table_styles([
        {"selector": "caption", "props": "caption-side: top; text-align: left; font-size: 0.9em; color: #444; padding-bottom: 0.4em; max-width: 60em"},
        {"selector": "th", "props": "text-align: left; padding: 0.25em 0.6em"},
        {"selector": "td", "props": "text-align: left; padding: 0.25em 0.6em; vertical-align: top"},
    ])
    # Numbers stay on one line; long text columns wrap instead of pushing the table off the page.
    wrapped = [column for column in wrap if column in frame.columns]
    rest = [column for column in frame.columns if column not in wrapped]
    if rest and len(frame):
        styler = styler.set_properties(subset=rest, **{"white-space": "nowrap"})
    if wrapped and len(frame):
        styler = styler.set_properties(subset=wrapped, **{"white-space": "normal", "min-width": "12em", "max-width": "32em"})
    return styler


# --- the measured tables --------------------------------------------------------------------------

TABLE_QUANTITIES = ("psnr", "ssim", "lpips", "model_size_bytes", "s_per_iter", "mean_s_per_iter", "iterations", "render_fps", "peak_memory_bytes")


def results_frames(records: List[Dict[str, Any]]) -> Dict[str, Tuple[pd.DataFrame, pd.DataFrame]]:
    """Per measured scene: the table's text (mean ± std per cell) and which cells are the best of
    their column. Methods that did not run on a measured scene keep a row of "—" with the reason."""
    groups = group_records(records)
    has_capacity = any(capacity != DEFAULT_CAPACITY for (_, _, capacity) in groups)
    has_lpips = any(spread(runs, "lpips").n for runs in groups.values())
    quantities = [q for q in TABLE_QUANTITIES if q != "lpips" or has_lpips]
    tables = {}
    for scene in measured_scenes(records):
        rows, means = [], []
        for (group_scene, method, capacity), runs in groups.items():
            if group_scene != scene:
                continue
            attempted = [r for r in records if scene_label(r) == scene and r["method"] == method and capacity_of(r) == capacity]
            row = {"Method": method_label(method)}
            if has_capacity:
                row["Capacity"] = capacity
            row["Seeds"] = str(len(runs)) if len(attempted) == len(runs) else f"{len(runs)} of {len(attempted)}"
            stats = {q: spread(runs, q) for q in quantities}
            row.update({QUANTITIES[q].label: format_spread(stats[q], QUANTITIES[q].kind) for q in quantities})
            notes = []
            diverged = [r for r in runs if r.get("diverged")]
            if diverged:
                notes.append(f"diverged on {len(diverged)} of {len(runs)} seed(s): the learning curve ends "
                             f"{max(r.get('curve_drop_db') or 0 for r in diverged):.1f} dB below its best point")
            stale = [r for r in runs if r.get("kept_stale")]
            if stale:
                notes.append(f"kept with other settings than the plan's on {len(stale)} of {len(runs)} seed(s) (--keep-stale): "
                             f"{stale[0]['kept_stale']}")
            if notes:
                row["Note"] = "; ".join(notes)
            rows.append(row)
            means.append({QUANTITIES[q].label: stats[q].mean for q in quantities})
        measured_methods = {m for (s, m, _) in groups if s == scene}
        for method in sorted({r["method"] for r in records if scene_label(r) == scene} - measured_methods, key=_method_rank):
            failed = [r for r in records if scene_label(r) == scene and r["method"] == method]
            row = {"Method": method_label(method), **({"Capacity": DEFAULT_CAPACITY} if has_capacity else {}), "Seeds": f"0 of {len(failed)}"}
            row.update({QUANTITIES[q].label: MISSING for q in quantities})
            row["Note"] = f"{failed[0].get('status')}: {_first_line(failed[0].get('message'))}"
            rows.append(row)
            means.append({})
        frame = pd.DataFrame(rows)
        if "Note" in frame:
            frame["Note"] = frame["Note"].fillna("")
        bold = pd.DataFrame(False, index=frame.index, columns=frame.columns)
        mean_frame = pd.DataFrame(means, index=frame.index[: len(means)])
        for q in quantities:
            label, better = QUANTITIES[q].label, QUANTITIES[q].higher_is_better
            if better is None or label not in mean_frame or mean_frame[label].notna().sum() < 2:
                continue
            best = mean_frame[label].max() if better else mean_frame[label].min()
            is_best = mean_frame[label].reindex(frame.index) == best
            if is_best.sum() < mean_frame[label].notna().sum():  # all equal: nobody is best
                bold[label] = is_best
        tables[scene] = (frame, bold)
    return tables


def results_caption(frame: pd.DataFrame) -> str:
    return ("Mean ± sample std over seeds (Seeds = n measured; a single seed shows no ±). Best per column in bold. "
            "Stored model = size of the file the evaluation renders from (KB = 10^3 B, MB = 10^6 B); Update = median wall time "
            "of one training iteration after warm-up; Mean s/iter = training time / iterations (periodic work included).")


def styled_results(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per measured scene, the results table as a pandas Styler."""
    return {scene: _style(frame, bold, caption=f"{scene}. " + results_caption(frame), wrap=("Note",))
            for scene, (frame, bold) in results_frames(records).items()}


def not_run_sentence(records: List[Dict[str, Any]]) -> str:
    """The scenes with no measured run, once, with why ('' when every scene has one)."""
    measured = set(measured_scenes(records))
    reasons: Dict[str, str] = {}
    for r in records:
        scene = scene_label(r)
        if scene in measured:
            continue
        if r.get("status") == "skipped":
            reasons.setdefault(scene, "data not present")
        else:
            reasons[scene] = f"every run failed ({_first_line(r.get('message'))})" if reasons.get(scene) != "data not present" else reasons[scene]
    if not reasons:
        return ""
    by_reason: Dict[str, List[str]] = {}
    for scene in scenes_in_order({"dataset": s} for s in reasons):
        by_reason.setdefault(reasons[scene], []).append(scene)
    parts = [f"{', '.join(scenes)} ({reason})" for reason, scenes in by_reason.items()]
    return "Scenes not run: " + "; ".join(parts) + "."


def lpips_sentence(records: List[Dict[str, Any]]) -> str:
    if any(r.get("lpips") is not None for r in _ok(records)):
        return ""
    return "LPIPS was not measured: its AlexNet weights were neither on disk nor downloadable when these runs were made."


def floor_sentence(scene: str, records: List[Dict[str, Any]], floor) -> str:
    """Under a scene's table: what no model scores there (``floor``, an
    akdqff_bench.datasets.floor.ImageFloor, or the reason there is none) and the methods whose mean
    PSNR at their default settings is below it."""
    if isinstance(floor, str):
        return f"{scene}: no mean-image floor: {floor}."
    means = {method: spread(runs, "psnr").mean for (s, method), runs in default_groups(records).items() if s == scene}
    below = [f"{method_label(method)} ({mean:.2f} dB)" for method, mean in means.items() if mean < floor.psnr]
    return (f"{scene}: **no model at all**, the mean of its {floor.train_views} training images scored on the {floor.test_views} "
            f"test views as a render is, gets {floor.psnr:.2f} dB PSNR (SSIM {floor.ssim:.3f}). "
            + (f"Below it: {', '.join(below)}." if below else "Every method here scores above it."))


def floor_sentences(records: List[Dict[str, Any]], profile_name: str) -> Dict[str, str]:
    """``floor_sentence`` for every measured scene whose data is here (read as ``profile_name`` reads it)."""
    from akdqff_bench.datasets.floor import floor_of_records
    profile = get_profile(profile_name)
    sentences = {}
    for scene in measured_scenes(records):
        scene_records = [r for r in _ok(records) if scene_label(r) == scene]
        floor = floor_of_records(scene, scene_records, profile.synthetic_bed_variant, profile.max_test_views)
        sentences[scene] = floor_sentence(scene, records, floor)
    return sentences


def short_setting_names(keys: Sequence[str]) -> Dict[str, str]:
    """``pipeline.model.base_mlp_layer_width`` -> ``base_mlp_layer_width``; as many trailing parts as
    keep the names apart (``density.scheduler.decay_steps`` beside ``sh.scheduler.decay_steps``)."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for count in range(1, len(parts) + 1):
            name = ".".join(parts[-count:])
            if sum(1 for other in keys if other == name or other.endswith("." + name)) == 1:
                break
        names[key] = name
    return names


def settings_frame(records: List[Dict[str, Any]]) -> pd.DataFrame:
    """The settings each (method, capacity) ran with, once per distinct setting."""
    rows: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for (scene, method, capacity), runs in group_records(records).items():
        r = runs[0]
        overrides = r.get("overrides") or {}
        names = short_setting_names(list(overrides))
        settings = ", ".join(f"{names[key]}={value}" for key, value in overrides.items()) or "the method's defaults"
        budget = r.get("train_budget_seconds")
        stop = f"{budget:g} {_clock_unit(r)} of training" if budget else (f"{r.get('max_iterations')} iterations" if r.get("max_iterations") else MISSING)
        key = (method, capacity, settings)
        row = rows.setdefault(key, {"Method": method_label(method), "Capacity": capacity, "Scenes": [], "Settings (overrides of the method's defaults)": settings,
                                    "Rays per batch": r.get("rays_per_batch") or MISSING, "Stopping rule": stop, "Device": Counter()})
        row["Scenes"].append(scene)
        # Seeds may have run on different machines (the study was run in parts).
        row["Device"].update(run.get("device") or MISSING for run in runs)
    frame = pd.DataFrame(list(rows.values()))
    if frame.empty:
        return frame
    frame["Scenes"] = frame["Scenes"].map(", ".join)
    frame["Device"] = frame["Device"].map(
        lambda counts: next(iter(counts)) if len(counts) == 1 else "; ".join(f"{device} ({n} run{'s' if n > 1 else ''})" for device, n in counts.items()))
    if (frame["Capacity"] == DEFAULT_CAPACITY).all():
        frame = frame.drop(columns="Capacity")
    return frame


def styled_settings(records: List[Dict[str, Any]]):
    return _style(settings_frame(records), caption="Settings of the runs above.", wrap=("Settings (overrides of the method's defaults)", "Device"))


def format_table(records: List[Dict[str, Any]]) -> str:
    """The measured tables as plain text (the CLI's final output)."""
    tables = results_frames(records)
    if not tables:
        return "(no measured runs)"
    parts = []
    for scene, (frame, _) in tables.items():
        parts.append(f"{scene}:\n" + frame.to_string(index=False))
    sentence = not_run_sentence(records)
    return "\n\n".join(parts) + (f"\n\n{sentence}" if sentence else "")


SWEEP_METRICS = {"psnr": "psnr", "ssim": "ssim", "iterations": "iterations", "s_per_iter": "s_per_iter", "model_size_bytes": "model_size_bytes"}


def styled_sweep(frame: pd.DataFrame, title: str):
    """A baseline's tuning sweep (results/sweeps/<method>-<profile>.csv) as the report shows it:
    settings by short name, metrics formatted, the best PSNR in bold."""
    names = short_setting_names([c for c in frame.columns if c not in SWEEP_METRICS and c not in ("candidate", "name")])
    shown = pd.DataFrame({"Candidate": frame["candidate"]} if "candidate" in frame else {}, index=frame.index)
    if "name" in frame:  # sweeps made since candidates have names (the spec picks its winner by it)
        shown["Name"] = frame["name"].fillna("").astype(str)
    # Column by column: a row would turn the integer settings into floats ("num_blocks=2.0").
    as_text = {c: frame[c].astype(str) for c in names}
    shown["Settings"] = [", ".join(f"{names[c]}={as_text[c][i]}" for c in names) for i in frame.index]
    for column in SWEEP_METRICS:
        if column in frame:
            quantity = QUANTITIES[column]
            shown[quantity.label] = [format_value(v, quantity.kind) for v in pd.to_numeric(frame[column], errors="coerce")]
    bold = pd.DataFrame(False, index=frame.index, columns=shown.columns)
    if "psnr" in frame:
        psnr = pd.to_numeric(frame["psnr"], errors="coerce")
        bold[QUANTITIES["psnr"].label] = psnr == psnr.max()
    return _style(shown, bold=bold, caption=title, wrap=("Settings",))


# --- the paper's claims as the verdict ------------------------------------------------------------

HOLDS, DOES_NOT_HOLD, NOT_MEASURABLE = "holds", "does not hold", "not measurable here"
# "About k×" counts as met from k / ABOUT_FACTOR up: a factor of 10 claimed in round numbers is
# met by 6.7× and not by 5×; more than claimed never contradicts "k× less / faster".
ABOUT_FACTOR = 1.5
# Spread is needed for every verdict: one seed cannot tell a difference from noise.
MIN_SEEDS = 2
# Orders read from the paper's table (the specs' PaperRow): (label, quantity, its column, higher is better);
# "{n}" is the number of methods the table holds.
ORDER_CLAIMS = (
    ("PSNR ranking of the {n}", "psnr", "psnr", True),
    ("SSIM ranking of the {n}", "ssim", "ssim", True),
    ("memory order of the {n}", "model_size_bytes", "memory_mb", False),
    ("speed order of the {n} (median s/iter)", "s_per_iter", "s_per_iter", False),
    ("speed order of the {n} (mean s/iter, periodic work included)", "mean_s_per_iter", "s_per_iter", False),
)
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
PAPER_UNITS = {"psnr": " dB", "ssim": "", "memory_mb": " MB", "s_per_iter": " s/iter"}

VERDICT_RULE = (
    f"Verdicts use each method's default settings, per scene, over its seeds (mean ± sample std, n). A claim needs at least "
    f"{MIN_SEEDS} seeds of every method it names, else it is *not measurable here* (as it is when a method was not run). "
    "An order holds when every neighbouring pair of the claimed order is separated by the seeds: the whole seed range "
    "(min to max) of the method claimed better lies on the better side of the other's whole range; a pair in the other order, "
    "or with overlapping ranges, makes it *not hold*. A ratio claim \"about k×\" holds when its whole seed range — from "
    f"the other method's least over the claiming method's greatest to the other's greatest over its least — is at least k / {ABOUT_FACTOR:g} "
    f"(10× counts from {10 / ABOUT_FACTOR:.1f}×, 3× from {3 / ABOUT_FACTOR:.1f}×); otherwise it does not hold."
)


def _claimed_order(column: str, higher_is_better: bool) -> List[str]:
    claims = paper_claims().set_index("method")[column]
    return sorted(claims.index, key=lambda m: -claims[m] if higher_is_better else claims[m])


def _paper_order_text(column: str, higher_is_better: bool) -> str:
    claims = paper_claims().set_index("method")[column]
    sign = " > " if higher_is_better else " < "
    return sign.join(f"{method_label(m)} {claims[m]:g}{PAPER_UNITS[column]}" for m in _claimed_order(column, higher_is_better))


def _separated(better: Spread, worse: Spread, higher_is_better: bool) -> Optional[bool]:
    """True: better's whole range is on the better side; False: the reverse; None: they overlap."""
    if higher_is_better:
        better, worse = Spread(tuple(-v for v in better.values)), Spread(tuple(-v for v in worse.values))
    if better.high < worse.low:
        return True
    if worse.high < better.low:
        return False
    return None


def _order_verdict(label: str, quantity: str, column: str, higher_is_better: bool, scene: str,
                   groups: Dict[Tuple[str, str], List[Dict[str, Any]]]) -> Dict[str, Any]:
    claimed = _claimed_order(column, higher_is_better)
    kind = QUANTITIES[quantity].kind
    stats = {m: spread(groups.get((scene, m), []), quantity) for m in claimed}
    row = {"Claim": label, "Scene": scene, "Paper": _paper_order_text(column, higher_is_better)}
    measured = sorted((m for m in claimed if stats[m].n), key=lambda m: -stats[m].mean if higher_is_better else stats[m].mean)
    parts = []
    for i, m in enumerate(measured):
        if i:
            separated = _separated(stats[measured[i - 1]], stats[m], higher_is_better)
            parts.append(("≈" if separated is None else (">" if higher_is_better else "<")))
        parts.append(f"{method_label(m)} {format_spread(stats[m], kind)} (n={stats[m].n})")
    row["Measured here"] = " ".join(parts) if parts else MISSING
    missing = [method_label(m) for m in claimed if not stats[m].n]
    few = [method_label(m) for m in claimed if 0 < stats[m].n < MIN_SEEDS]
    if missing or few:
        why = ([f"no measured run of {', '.join(missing)}"] if missing else []) + ([f"one seed of {', '.join(few)}: spread needed"] if few else [])
        return {**row, "Verdict": NOT_MEASURABLE, "Why": "; ".join(why)}
    problems = []
    for better, worse in zip(claimed, claimed[1:]):
        separated = _separated(stats[better], stats[worse], higher_is_better)
        if separated is False:
            problems.append(f"{method_label(worse)} ahead of {method_label(better)}")
        elif separated is None:
            problems.append(f"{method_label(better)} and {method_label(worse)} within each other's seed range")
    if problems:
        return {**row, "Verdict": DOES_NOT_HOLD, "Why": "; ".join(problems)}
    return {**row, "Verdict": HOLDS, "Why": "every neighbouring pair separated by the seeds"}


def _ratio_verdict(method: str, claim, scene: str, groups: Dict[Tuple[str, str], List[Dict[str, Any]]]) -> Dict[str, Any]:
    """``method`` about ``claim.factor`` times better than ``claim.against`` in ``claim.quantity``."""
    other_label, label = method_label(claim.against), method_label(method)
    other, claimed = spread(groups.get((scene, claim.against), []), claim.quantity), spread(groups.get((scene, method), []), claim.quantity)
    claims = paper_claims().set_index("method")
    table_ratio = claims.loc[claim.against, claim.paper_column] / claims.loc[method, claim.paper_column]
    threshold = claim.factor / ABOUT_FACTOR
    row = {"Claim": claim.label, "Scene": scene, "Paper": f"{claim.factor:g}× (text); its table: {table_ratio:.1f}×"}
    if not other.n or not claimed.n:
        missing = [name for name, s in ((other_label, other), (label, claimed)) if not s.n]
        return {**row, "Measured here": MISSING, "Verdict": NOT_MEASURABLE, "Why": f"no measured run of {', '.join(missing)}"}
    ratio, low, high = other.mean / claimed.mean, other.low / claimed.high, other.high / claimed.low
    seeds = f"n={other.n} {other_label}, {claimed.n} {label}"
    row["Measured here"] = f"{ratio:.2f}× (seed range {low:.2f}–{high:.2f}×; {seeds})" if min(other.n, claimed.n) >= MIN_SEEDS else f"{ratio:.2f}× ({seeds})"
    if min(other.n, claimed.n) < MIN_SEEDS:
        few = [name for name, s in ((other_label, other), (label, claimed)) if s.n < MIN_SEEDS]
        return {**row, "Verdict": NOT_MEASURABLE, "Why": f"one seed of {', '.join(few)}: spread needed"}
    if low >= threshold:
        return {**row, "Verdict": HOLDS, "Why": f"whole range ≥ {threshold:.2f}×"}
    why = f"whole range below {threshold:.2f}×" if high < threshold else f"range straddles {threshold:.2f}×"
    return {**row, "Verdict": DOES_NOT_HOLD, "Why": why}


# Quantities every record also holds per test view (``per_image``): their orders get a paired test.
PER_VIEW_QUANTITIES = ("psnr", "ssim")
PAIRED_COLUMN = "Paired test (per view)"
PAIRED_TEST_NOTE = (
    "Paired test: for each pair of neighbouring methods in the paper's order, the per-view differences (first minus second) "
    "over every (seed, test view) both ran, their median and the two-sided Wilcoxon signed-rank test's p-value "
    "(scipy.stats.wilcoxon; exact for up to 50 pairs without ties). It uses every view where the verdict uses each seed's "
    "mean; it does not decide the verdict.")


@dataclass(frozen=True)
class PairedTest:
    pairs: int
    median_difference: float
    p_value: float  # nan when it cannot be computed (no pair, or every difference zero)


def per_view_differences(first: Iterable[Dict[str, Any]], second: Iterable[Dict[str, Any]], metric: str) -> np.ndarray:
    """``first`` minus ``second`` in ``metric`` on every (seed, test view) both records hold, in
    that order: the pairs a paired test compares."""
    def by_view(runs):
        return {(r.get("seed"), view["index"]): view[metric] for r in runs for view in r.get("per_image") or []
                if view.get(metric) is not None}

    a, b = by_view(first), by_view(second)
    return np.array([a[key] - b[key] for key in sorted(set(a) & set(b), key=str)], dtype=np.float64)


def paired_test(first: Iterable[Dict[str, Any]], second: Iterable[Dict[str, Any]], metric: str) -> PairedTest:
    from scipy.stats import wilcoxon

    differences = per_view_differences(list(first), list(second), metric)
    if not len(differences):
        return PairedTest(0, math.nan, math.nan)
    median = float(np.median(differences))
    if not np.any(differences):
        return PairedTest(len(differences), median, math.nan)
    return PairedTest(len(differences), median, float(wilcoxon(differences).pvalue))


def _paired_text(quantity: str, column: str, higher_is_better: bool, scene: str, groups) -> str:
    if quantity not in PER_VIEW_QUANTITIES:
        return MISSING
    claimed, unit = _claimed_order(column, higher_is_better), " dB" if quantity == "psnr" else ""
    parts = []
    for first, second in zip(claimed, claimed[1:]):
        test = paired_test(groups.get((scene, first), []), groups.get((scene, second), []), quantity)
        name = f"{method_label(first)} − {method_label(second)}"
        if not test.pairs:
            parts.append(f"{name}: no paired views")
        else:
            p = "p n/a (all differences 0)" if math.isnan(test.p_value) else f"p = {test.p_value:.2g}"
            digits = 2 if quantity == "psnr" else 3
            parts.append(f"{name}: median {test.median_difference:+.{digits}f}{unit} over {test.pairs} pairs, {p}")
    return "; ".join(parts)


def order_claims() -> List[Tuple[str, str, str, bool]]:
    """ORDER_CLAIMS with their labels naming how many methods the paper's table has ("PSNR ranking
    of the four"); none when it has fewer than two."""
    count = len(paper_claims())
    return [(label.format(n=NUMBER_WORDS.get(count, count)), *rest) for label, *rest in ORDER_CLAIMS] if count >= 2 else []


def claims_verdict(records: List[Dict[str, Any]], paired: bool = False) -> pd.DataFrame:
    """One row per (paper claim, measured scene): the paper's number, ours with its spread, and
    holds / does not hold / not measurable here by the rule in ``VERDICT_RULE``; with ``paired``
    also each order claim's paired test over (seed, test view) pairs (``PAIRED_TEST_NOTE``)."""
    groups = default_groups(records)
    orders = order_claims()
    def order_row(label, quantity, column, higher, scene):
        row = _order_verdict(label, quantity, column, higher, scene, groups)
        return {**row, PAIRED_COLUMN: _paired_text(quantity, column, higher, scene, groups)} if paired else row

    rows = []
    for scene in measured_scenes(records):
        rows += [order_row(*order, scene) for order in orders[:2]]
        rows += [_ratio_verdict(method, claim, scene, groups) for method, claim in ratio_claims()]
        rows += [order_row(*order, scene) for order in orders[2:]]
    columns = ["Claim", "Scene", "Paper", "Measured here", "Verdict", "Why"] + ([PAIRED_COLUMN] if paired else [])
    return pd.DataFrame(rows, columns=columns).fillna({PAIRED_COLUMN: MISSING} if paired else {})


VERDICT_COLORS = {HOLDS: "background-color: #d9f2d9", DOES_NOT_HOLD: "background-color: #f8d7d7", NOT_MEASURABLE: "background-color: #eeeeee"}


def judged_by_own_seeds(records: List[Dict[str, Any]]) -> bool:
    """Whether any method's default settings have the seeds a verdict needs (MIN_SEEDS) on a scene."""
    return any(len(runs) >= MIN_SEEDS for runs in default_groups(records).values())


def verdict_beside_reference(records: List[Dict[str, Any]], reference_records: List[Dict[str, Any]]) -> pd.DataFrame:
    """The reference study's verdict on each claim, with the value ``records`` give beside it
    ("not run" where they have no run of that scene): for a grid of one seed, which cannot judge."""
    table = claims_verdict(reference_records).rename(columns={"Measured here": "Reference study"})
    yours = claims_verdict(records).set_index(["Claim", "Scene"])["Measured here"].to_dict()
    table.insert(table.columns.get_loc("Reference study") + 1, "Yours",
                 [yours.get((claim, scene), "not run") for claim, scene in zip(table["Claim"], table["Scene"])])
    return table


BESIDE_REFERENCE_NOTE = ("Your records have one seed of each run: too few to judge a claim, which needs the spread of at least "
                         f"{MIN_SEEDS} seeds. The verdicts in this table are therefore the reference study's, from its records; "
                         "your value is beside each, to read against it, not judged. ")


def styled_verdict(records: List[Dict[str, Any]], reference_records: Optional[List[Dict[str, Any]]] = None):
    """The claims' verdict from ``records``; when they cannot judge any (one seed) and a reference
    study is given, the reference's verdict with the user's values beside it (``verdict_beside_reference``)."""
    beside = bool(reference_records) and not judged_by_own_seeds(records) and judged_by_own_seeds(reference_records)
    table = verdict_beside_reference(records, reference_records) if beside else claims_verdict(records, paired=True)
    if table.empty:
        return None
    caption = (BESIDE_REFERENCE_NOTE if beside else "") + VERDICT_RULE.replace("*", "") + ("" if beside else " " + PAIRED_TEST_NOTE)
    measured = ("Reference study", "Yours") if beside else ("Measured here",)
    styler = _style(table, caption=caption, wrap=("Claim", *measured, "Why", "Paper", PAIRED_COLUMN))
    return styler.map(lambda v: VERDICT_COLORS.get(v, ""), subset=["Verdict"])


def verdict_over_suite(records: List[Dict[str, Any]]) -> pd.DataFrame:
    """Per paper claim, its per-scene verdicts counted over the measured scenes: a claim holds over
    the suite when it holds on every scene, does not hold when it fails on one, and is not
    measurable where it holds on some and cannot be judged on the rest."""
    table = claims_verdict(records)
    rows = []
    for claim, group in table.groupby("Claim", sort=False):
        scenes = {verdict: list(group.loc[group["Verdict"] == verdict, "Scene"]) for verdict in (HOLDS, DOES_NOT_HOLD, NOT_MEASURABLE)}
        total = len(group)
        over = HOLDS if len(scenes[HOLDS]) == total else DOES_NOT_HOLD if scenes[DOES_NOT_HOLD] else NOT_MEASURABLE
        rows.append({"Claim": claim, "Holds on": f"{len(scenes[HOLDS])} of {total}", **{
            label: ", ".join(scenes[verdict]) or MISSING for label, verdict in
            (("Scenes where it holds", HOLDS), ("where it does not", DOES_NOT_HOLD), ("where it cannot be judged", NOT_MEASURABLE))},
            "Over the suite": over})
    return pd.DataFrame(rows, columns=["Claim", "Holds on", "Scenes where it holds", "where it does not", "where it cannot be judged",
                                       "Over the suite"])


def styled_verdict_over_suite(records: List[Dict[str, Any]]):
    table = verdict_over_suite(records)
    if table.empty or len(measured_scenes(records)) < 2:
        return None
    caption = ("Each claim over the study's scenes: it holds over the suite only when it holds on every scene (the per-scene "
               "verdicts above, by the same rule).")
    styler = _style(table, caption=caption, wrap=("Claim", "Scenes where it holds", "where it does not", "where it cannot be judged"))
    return styler.map(lambda v: VERDICT_COLORS.get(v, ""), subset=["Over the suite"])


MEAN_QUANTITIES = ("psnr", "ssim", "lpips", "model_size_bytes", "s_per_iter")


def mean_over_scenes(records: List[Dict[str, Any]]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Each method's mean over the measured scenes of its per-scene mean over seeds (default
    settings), as papers print a data set's mean; and which cells are the best among the methods
    measured on every scene (a mean over fewer scenes is another average, shown but not ranked)."""
    groups, scenes = default_groups(records), measured_scenes(records)
    quantities = [q for q in MEAN_QUANTITIES if q != "lpips" or any(spread(runs, q).n for runs in groups.values())]
    rows, means, complete = [], [], []
    for method in sorted({method for (_, method) in groups}, key=_method_rank):
        on = [scene for scene in scenes if (scene, method) in groups]
        row, values = {"Method": method_label(method), "Scenes": f"{len(on)} of {len(scenes)}"}, {}
        for q in quantities:
            per_scene = [spread(groups[(scene, method)], q) for scene in on]
            per_scene = [s.mean for s in per_scene if s.n]
            values[q] = float(np.mean(per_scene)) if len(per_scene) == len(on) and per_scene else math.nan
            row[QUANTITIES[q].label] = MISSING if math.isnan(values[q]) else format_value(values[q], QUANTITIES[q].kind)
        rows.append(row)
        means.append(values)
        complete.append(len(on) == len(scenes))
    frame = pd.DataFrame(rows, columns=["Method", "Scenes"] + [QUANTITIES[q].label for q in quantities])
    bold = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    for q in quantities:
        better = QUANTITIES[q].higher_is_better
        ranked = [(i, m[q]) for i, m in enumerate(means) if complete[i] and not math.isnan(m[q])]
        if better is None or len(ranked) < 2:
            continue
        best = (max if better else min)(value for _, value in ranked)
        winners = [i for i, value in ranked if value == best]
        if len(winners) < len(ranked):
            bold.loc[winners, QUANTITIES[q].label] = True
    return frame, bold


def styled_mean_over_scenes(records: List[Dict[str, Any]]):
    frame, bold = mean_over_scenes(records)
    if frame.empty or len(measured_scenes(records)) < 2:
        return None
    caption = (f"Mean over the {len(measured_scenes(records))} scenes of each scene's mean over seeds (default settings), as papers "
               "print a data set's mean; bold: the best among methods measured on every scene. A mean hides how the order moves "
               "from scene to scene: the per-scene tables and verdicts above say it.")
    return _style(frame, bold, caption=caption)


def _budget_label(records: List[Dict[str, Any]]) -> str:
    budgets = {(r.get("train_budget_seconds"), r.get("budget_clock")) for r in _ok(records)}
    if len(budgets) == 1:
        seconds, clock = next(iter(budgets))
        if seconds:
            return f"{seconds:,.0f} {str(clock or 'wall').upper()}-s"
    profiles = sorted({str(r.get("profile")) for r in _ok(records)})
    return "/".join(profiles) or "?"


def _run_key(record: Dict[str, Any]) -> Tuple[str, str, str, Any]:
    return scene_label(record), record["method"], capacity_of(record), record.get("seed")


def runs_also_in(records: List[Dict[str, Any]], other: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The measured ``records`` whose (scene, method, capacity, seed) ``other`` measured too: the
    shorter study cut to the runs the longer one repeated, so that a verdict that changes between
    budgets does not change because one side has a seed or a scene the other lacks."""
    keys = {_run_key(r) for r in _ok(other)}
    return [r for r in _ok(records) if _run_key(r) in keys]


def verdict_across_budgets(short: List[Dict[str, Any]], long: List[Dict[str, Any]]) -> pd.DataFrame:
    """Per (claim, scene) measured at both budgets: the verdict at each and one sentence saying
    whether it is the same or which way it changed (from the two sets of records, each cut to the
    runs the other has)."""
    short, long = runs_also_in(short, long), runs_also_in(long, short)
    a, b = claims_verdict(short), claims_verdict(long)
    a_label, b_label = _budget_label(short), _budget_label(long)
    merged = a.merge(b, on=["Claim", "Scene"], suffixes=(" (short)", " (long)"))
    quality_claims = {label for label, quantity, *_ in order_claims() if quantity in ("psnr", "ssim")}
    paper_methods = list(paper_claims()["method"])
    groups_short, groups_long = default_groups(short), default_groups(long)
    rows = []
    for _, row in merged.iterrows():
        before, after = row["Verdict (short)"], row["Verdict (long)"]
        if before == after == NOT_MEASURABLE:
            sentence = f"Not measurable at either budget: a verdict needs {MIN_SEEDS} seeds of every method it names."
        elif before == after:
            sentence = f"The same at both budgets: it {before} after {a_label} and after {b_label}."
        else:
            sentence = f"Changed: it {_verdict_verb(before)} after {a_label} but {_verdict_verb(after)} after {b_label}."
        if NOT_MEASURABLE in (before, after) and before != after:
            sentence += " (One of the two cannot be judged, so this is no change of the measured order.)"
        if row["Claim"] in quality_claims:
            sentence += (_diverged_note(groups_short, paper_methods, row["Scene"], a_label)
                         + _diverged_note(groups_long, paper_methods, row["Scene"], b_label))
        rows.append({"Claim": row["Claim"], "Scene": row["Scene"], f"After {a_label}": row["Measured here (short)"],
                     f"After {b_label}": row["Measured here (long)"], "Verdicts": f"{before} → {after}", "In words": sentence})
    return pd.DataFrame(rows, columns=["Claim", "Scene", f"After {a_label}", f"After {b_label}", "Verdicts", "In words"])


def _diverged_note(groups: Dict[Tuple[str, str], List[Dict[str, Any]]], methods: Sequence[str], scene: str,
                   budget_label: str) -> str:
    """Which of ``methods`` diverged on ``scene`` (``groups``: default_groups), for a quality order's
    sentence: an order among diverged runs says where their curves ended, not what they can learn."""
    diverged = []
    for method in methods:
        runs = groups.get((scene, method), [])
        count = sum(bool(r.get("diverged")) for r in runs)
        if count:
            diverged.append(f"{method_label(method)} ({count} of {len(runs)} seeds)")
    if not diverged:
        return ""
    return (f" Diverged after {budget_label}: {', '.join(diverged)}; where they stand there is where their learning curves "
            "fell to, not what they learned at best.")


def _verdict_verb(verdict: str) -> str:
    """A verdict as the verb of "it ... after N CPU-s"."""
    return f"is {verdict}" if verdict == NOT_MEASURABLE else verdict


def styled_verdict_across_budgets(short: List[Dict[str, Any]], long: List[Dict[str, Any]]):
    frame = verdict_across_budgets(short, long)
    caption = ("The paper's claims after each budget, from each study's own records, the shorter study cut to the "
               "(method, scene, seed) the longer one ran; the sentence says whether the verdict is the same.")
    # The two "After ..." columns hold a sentence each, like the claim and its words.
    return _style(frame, caption=caption, wrap=("Claim", *[c for c in frame.columns if c.startswith("After ")], "In words"))


def _curve_psnr_at(record: Dict[str, Any], seconds: float, tolerance: float = 0.05) -> Optional[float]:
    """PSNR of ``record``'s learning-curve point nearest ``seconds`` on its budget's clock, or None
    where no point lies within ``tolerance`` (a fraction of ``seconds``) of it."""
    clock = _curve_clock([record])
    points = [p for p in record.get("curve") or [] if p.get(clock) is not None and p.get("psnr") is not None]
    if not points:
        return None
    nearest = min(points, key=lambda p: abs(p[clock] - seconds))
    return float(nearest["psnr"]) if abs(nearest[clock] - seconds) <= tolerance * seconds else None


def _ranks(means: Dict[str, float]) -> Dict[str, int]:
    """1 for the highest mean; methods without a value get no rank."""
    order = sorted((m for m, v in means.items() if math.isfinite(v)), key=lambda m: -means[m])
    return {m: i + 1 for i, m in enumerate(order)}


def curve_at_budgets(records: List[Dict[str, Any]], shorter_seconds: float) -> pd.DataFrame:
    """The same runs at two budgets: per (scene, method), the learning curve's PSNR (its test views)
    after ``shorter_seconds`` and at the end of the longer budget, mean ± std over seeds, the gain
    and each method's rank at both. One machine made both columns, which the shorter study's own
    records need not share. The curve sees only the first few test views, so the final test PSNR on
    all of them, and its rank, stand beside it: where the two ranks differ, those few views do not
    stand for the scene."""
    groups = default_groups(records)
    rows = []
    for scene in measured_scenes(records):
        spreads = {}
        for (s, method), runs in groups.items():
            if s != scene:
                continue
            end_seconds = float(np.mean([r["train_budget_seconds"] for r in runs]))
            early = Spread(tuple(v for v in (_curve_psnr_at(r, shorter_seconds) for r in runs) if v is not None))
            late = Spread(tuple(v for v in (_curve_psnr_at(r, end_seconds) for r in runs) if v is not None))
            spreads[method] = (len(runs), early, late, spread(runs, "psnr"))
        rank_short = _ranks({method: early.mean for method, (_, early, _, _) in spreads.items()})
        rank_end = _ranks({method: late.mean for method, (_, _, late, _) in spreads.items()})
        rank_test = _ranks({method: test.mean for method, (_, _, _, test) in spreads.items()})
        for method, (n, early, late, test) in spreads.items():
            gain = late.mean - early.mean
            rows.append({"Scene": scene, "Method": method_label(method), "Seeds": n,
                         "After the shorter budget": format_spread(early, "psnr"), "At the end": format_spread(late, "psnr"),
                         "Gain (dB)": f"{gain:+.2f}" if math.isfinite(gain) else MISSING,
                         "Rank": f"{rank_short.get(method, MISSING)} → {rank_end.get(method, MISSING)}",
                         "Test PSNR at the end": format_spread(test, "psnr"), "Test rank": rank_test.get(method, MISSING)})
    return pd.DataFrame(rows, columns=["Scene", "Method", "Seeds", "After the shorter budget", "At the end", "Gain (dB)", "Rank",
                                       "Test PSNR at the end", "Test rank"])


def styled_curve_at_budgets(records: List[Dict[str, Any]], shorter_seconds: float, shorter_label: str):
    frame = curve_at_budgets(records, shorter_seconds)
    if frame.empty:
        return None
    end = _budget_label(records)
    frame = frame.rename(columns={"After the shorter budget": f"After {shorter_seconds:,.0f} CPU-s ({shorter_label})",
                                  "At the end": f"After {end}", "Test PSNR at the end": f"Test PSNR after {end}"})
    caption = (f"The long runs themselves, PSNR on their learning curve's test views (mean ± std over seeds): after the "
               f"{shorter_label} budget and at the end, and each method's rank among the methods on its scene. Both columns "
               "come from one run on one machine, so unlike the two studies' tables they cannot differ by machine. "
               f"The curve sees only the first {_curve_view_count(records)} test views; the last two columns are the final "
               "metrics on all of them. Where the curve's rank at the end and the test rank differ, those views do not "
               "stand for the scene: read the test rank.")
    return _style(frame, caption=caption)


def _curve_view_count(records: List[Dict[str, Any]]) -> str:
    """How many test views the records' learning curves were evaluated on (their profile's setting)."""
    counts = sorted({get_profile(r["profile"]).curve_views for r in records if r.get("profile")})
    return " or ".join(str(c) for c in counts) or "few"


def shorter_budget_profile(profile_name: str) -> Optional[str]:
    """The profile this one repeats with a longer budget (the long profile: the quick one), whose
    records its comparison sets beside its own; None for a profile that repeats none."""
    this = get_profile(profile_name)
    if not this.settings_from:
        return None
    base = get_profile(this.settings_from)
    longer = (this.train_budget_seconds and base.train_budget_seconds and base.budget_clock == this.budget_clock
              and base.train_budget_seconds < this.train_budget_seconds)
    return base.name if longer else None


def paper_table() -> pd.DataFrame:
    """The paper's own table, as printed there (no data set or hardware named)."""
    claims = paper_claims()
    return pd.DataFrame({"Method": claims["method"].map(method_label), "PSNR (dB)": claims["psnr"].map("{:.1f}".format),
                         "SSIM": claims["ssim"].map("{:.2f}".format), "Memory (MB)": claims["memory_mb"].map("{:g}".format),
                         "Update Speed (s/iter)": claims["s_per_iter"].map("{:g}".format)})


def styled_paper_table():
    return _style(paper_table(), caption="The paper's table, as printed there (it names no data set or hardware).")


# --- the subject against today's methods ----------------------------------------------------------


def methods_in_role(role: str) -> List[str]:
    """The methods whose bench spec gives them ``role`` (bench_base.spec.ROLES), in table order."""
    return sorted((name for name in spec_names() if bench_spec(name).role == role), key=_method_rank)


def _gap_words(subject: Spread, other: Spread, higher_is_better: bool) -> str:
    """Whether the seed ranges of two groups lie apart or overlap (the sentence says which side)."""
    if min(subject.n, other.n) < MIN_SEEDS:
        return "one seed: no spread to judge"
    separated = _separated(subject, other, higher_is_better)
    return "seed ranges overlap" if separated is None else "seed ranges apart"


def _times(ratio: float, better: str, worse: str) -> str:
    """'2.3× smaller' or '1.7× larger': the ratio read in the direction that makes it at least 1."""
    return f"{ratio:.1f}× {better}" if ratio >= 1 else f"{1 / ratio:.1f}× {worse}"


AGAINST_REFERENCES_RULE = (
    "Each method at its default settings, per scene, over its seeds, all trained for the same budget (the profile's: in the "
    "quick profile the same CPU time). PSNR and SSIM: mean ± sample std (n); the difference is the subject's mean minus the "
    "reference's, and the seed ranges are *apart* when one method's whole range (min to max) lies above the other's. Size "
    "ratio: the reference's stored model over the subject's (above 1: the subject's is smaller). Update-speed ratio: the "
    "reference's median s/iter over the subject's (above 1: the subject's updates are faster). Methods that need CUDA are "
    "listed below the table when they have no record.")


def against_references(records: List[Dict[str, Any]]) -> pd.DataFrame:
    """One row per (scene, reference method) where both it and the study's subject have measured
    runs: their PSNR and SSIM, the size and update-speed ratios, and a sentence saying where the
    subject stands (computed from these numbers)."""
    groups = default_groups(records)
    columns = ["Scene", "Reference", "Subject PSNR", "Reference PSNR", "PSNR difference", "Subject SSIM", "Reference SSIM",
               "Size ratio", "Update-speed ratio", "Where the subject stands"]
    rows = []
    for subject in methods_in_role("subject"):
        for scene in measured_scenes(records):
            for reference in methods_in_role("reference"):
                ours, theirs = groups.get((scene, subject), []), groups.get((scene, reference), [])
                if not ours or not theirs:
                    continue
                psnr = spread(ours, "psnr"), spread(theirs, "psnr")
                ssim = spread(ours, "ssim"), spread(theirs, "ssim")
                size = spread(theirs, "model_size_bytes").mean / spread(ours, "model_size_bytes").mean
                speed = spread(theirs, "s_per_iter").mean / spread(ours, "s_per_iter").mean
                difference = psnr[0].mean - psnr[1].mean
                side = "above" if difference >= 0 else "below"
                sentence = (f"On {scene}, {method_label(subject)} scores {abs(difference):.2f} dB {side} {method_label(reference)} "
                            f"({_gap_words(*psnr, True)}), SSIM {ssim[0].mean - ssim[1].mean:+.3f} ({_gap_words(*ssim, True)}); "
                            f"its stored model is {_times(size, 'smaller', 'larger')} and its updates "
                            f"{_times(speed, 'faster', 'slower')}.")
                rows.append({"Scene": scene, "Reference": method_label(reference),
                             "Subject PSNR": f"{format_spread(psnr[0], 'psnr')} (n={psnr[0].n})",
                             "Reference PSNR": f"{format_spread(psnr[1], 'psnr')} (n={psnr[1].n})",
                             "PSNR difference": f"{difference:+.2f} dB", "Subject SSIM": format_spread(ssim[0], "ssim"),
                             "Reference SSIM": format_spread(ssim[1], "ssim"), "Size ratio": f"{size:.2f}×",
                             "Update-speed ratio": f"{speed:.2f}×", "Where the subject stands": sentence})
    return pd.DataFrame(rows, columns=columns)


def needing_cuda_sentence(records: List[Dict[str, Any]]) -> str:
    """The declared methods that cannot run on a CPU and have no record here, once, with why."""
    measured = {r.get("method") for r in records}
    waiting = [name for name in sorted(spec_names(), key=_method_rank) if not bench_spec(name).runs_on("cpu") and name not in measured]
    if not waiting:
        return ""
    parts = [f"{method_label(name)} ({bench_spec(name).device_reason or 'its bench spec says so'})" for name in waiting]
    return f"Declared, but they need CUDA and have no record here: {'; '.join(parts)}. `./run_all.sh gpu-check` runs them on a GPU."


def styled_against_references(records: List[Dict[str, Any]]):
    table = against_references(records)
    if table.empty:
        return None
    subject = ", ".join(method_label(m) for m in methods_in_role("subject"))
    caption = f"{subject} against each reference method. " + AGAINST_REFERENCES_RULE.replace("*", "")
    return _style(table, caption=caption, wrap=("Where the subject stands",))


# --- your numbers against a reference study -------------------------------------------------------

REPRODUCTION_QUANTITIES = ("psnr", "ssim", "model_size_bytes", "s_per_iter")
TIMING_KINDS = ("seconds", "rate")
PREDICTION_LEVEL = 0.95


def prediction_interval(reference: Spread, yours_n: int) -> Tuple[float, float]:
    """Where the mean of ``yours_n`` new runs of the reference's code on the reference's machine
    falls with probability PREDICTION_LEVEL, if the reference's seeds are normal draws:
    mean ± t(0.975, n - 1) · s · sqrt(1/n + 1/m) (one new run: sqrt(1 + 1/n)). NaN without a spread."""
    from scipy.stats import t

    if reference.n < MIN_SEEDS or yours_n < 1:
        return float("nan"), float("nan")
    half = float(t.ppf(0.5 + PREDICTION_LEVEL / 2, reference.n - 1)) * reference.std * math.sqrt(1 / reference.n + 1 / yours_n)
    return reference.mean - half, reference.mean + half


def reproduction_comparison(user_records: List[Dict[str, Any]], reference_records: List[Dict[str, Any]],
                            quantities: Sequence[str] = REPRODUCTION_QUANTITIES) -> pd.DataFrame:
    """Per (scene, method, capacity) measured in both, per quantity: the user's mean (their seeds),
    the reference's mean, std, min, max and n, the difference, the reference's prediction interval
    for the user's mean, and whether the user's mean lies outside it (``outside_prediction_interval``;
    None when it cannot be judged: fewer than 2 reference seeds, or a timing from another machine)."""
    user_groups, reference_groups = group_records(user_records), group_records(reference_records)
    rows = []
    for key, runs in user_groups.items():
        reference_runs = reference_groups.get(key)
        if not reference_runs:
            continue
        scene, method, capacity = key
        same_device = {r.get("device") for r in runs} == {r.get("device") for r in reference_runs}
        for q in quantities:
            yours, reference = spread(runs, q), spread(reference_runs, q)
            if not yours.n or not reference.n:
                continue
            low, high = prediction_interval(reference, yours.n)
            timing_elsewhere = QUANTITIES[q].kind in TIMING_KINDS and not same_device
            judged = reference.n >= MIN_SEEDS and not timing_elsewhere
            outside = bool(yours.mean < low or yours.mean > high) if judged else None
            why = "" if judged else ("timing on another machine" if timing_elsewhere else "1 reference seed: no spread")
            rows.append({"scene": scene, "method": method, "capacity": capacity, "quantity": q, "yours": yours.mean, "yours_n": yours.n,
                         "reference_mean": reference.mean, "reference_std": reference.std, "reference_min": reference.low,
                         "reference_max": reference.high, "reference_n": reference.n, "difference": yours.mean - reference.mean,
                         "interval_low": low, "interval_high": high, "outside_prediction_interval": outside, "not_judged_because": why,
                         "same_device": same_device})
    columns = ["scene", "method", "capacity", "quantity", "yours", "yours_n", "reference_mean", "reference_std", "reference_min",
               "reference_max", "reference_n", "difference", "interval_low", "interval_high", "outside_prediction_interval",
               "not_judged_because", "same_device"]
    return pd.DataFrame(rows, columns=columns)


REPRODUCTION_RULE = (f"Flagged when your mean lies outside the reference's {PREDICTION_LEVEL:.0%} prediction interval for it: "
                     "reference mean ± t(0.975, n − 1) · s · √(1/n + 1/m), with n reference seeds, their sample standard deviation s "
                     "and m seeds of yours (one run: √(1 + 1/n)). A run of the reference's code on the reference's machine lands outside "
                     "it 1 time in 20; the seeds' own min–max range would hold a fourth seed only half the time. Not judged: a reference "
                     "of one seed (no spread), and timings made on another machine than the reference's (the machines' speeds are in "
                     "the table below).")


def styled_reproduction(table: pd.DataFrame):
    if table.empty:
        return None
    kinds = [QUANTITIES[q].kind for q in table["quantity"]]
    shown = pd.DataFrame({
        "Scene": table["scene"], "Method": table["method"].map(method_label),
        **({"Capacity": table["capacity"]} if (table["capacity"] != DEFAULT_CAPACITY).any() else {}),
        "Quantity": table["quantity"].map(lambda q: QUANTITIES[q].label),
        "Yours": [format_value(v, k) + f" (n={n})" for v, k, n in zip(table["yours"], kinds, table["yours_n"])],
        "Reference": [format_value(m, k, s) + f" (n={n})" for m, s, k, n in
                      zip(table["reference_mean"], table["reference_std"], kinds, table["reference_n"])],
        "Difference": [("+" if d > 0 else "") + format_value(d, k) if k != "bytes" or d >= 0
                       else "−" + format_value(-d, "bytes") for d, k in zip(table["difference"], kinds)],
        "95% prediction interval": [f"{format_value(lo, k)} – {format_value(hi, k)}" if math.isfinite(lo) else MISSING
                                    for lo, hi, k in zip(table["interval_low"], table["interval_high"], kinds)],
        "Outside it": [("yes" if outside else "no") if outside is not None else f"not judged ({why})"
                       for outside, why in zip(table["outside_prediction_interval"], table["not_judged_because"])],
        "Same device": table["same_device"].map({True: "yes", False: "no"}),
    })
    styler = _style(shown, caption=REPRODUCTION_RULE)
    return styler.map(lambda v: "background-color: #f8d7d7; font-weight: bold" if v == "yes" else "", subset=["Outside it"])


def reproduction_counts(table: pd.DataFrame) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(the judged rows, those of them flagged) of a ``reproduction_comparison``."""
    judged = table[table["outside_prediction_interval"].notna()]
    return judged, judged[judged["outside_prediction_interval"].astype(bool)]


def machine_speeds(user_records: List[Dict[str, Any]], reference_records: List[Dict[str, Any]]) -> pd.DataFrame:
    """One row per machine (record ``device``) of either side: its runs, the median of their speed
    probes (akdqff_bench.speed_probe, seconds per repeat: lower is faster) and, per side, the
    median CPU seconds per training iteration of each (scene, method) over the reference's; the
    ratio of each machine's probe to the reference machines' (pooled) probe median."""
    from akdqff_bench.speed_probe import probe_seconds

    rows = []
    reference_probes = [p for p in map(probe_seconds, _ok(reference_records)) if p is not None]
    reference_probe = float(np.median(reference_probes)) if reference_probes else None
    reference_cost = {key: spread(runs, "cpu_s_per_iter") for key, runs in group_records(reference_records).items()}
    for side, records in (("reference", reference_records), ("yours", user_records)):
        for device in sorted({r.get("device") or MISSING for r in _ok(records)}):
            runs = [r for r in _ok(records) if (r.get("device") or MISSING) == device]
            probes = [p for p in map(probe_seconds, runs) if p is not None]
            probe = float(np.median(probes)) if probes else None
            costs = []
            for key, group in group_records(runs).items():
                mine, theirs = spread(group, "cpu_s_per_iter"), reference_cost.get(key)
                if mine.n and theirs is not None and theirs.n:
                    costs.append(mine.mean / theirs.mean)
            rows.append({"side": side, "device": device, "runs": len(runs), "probe_seconds": probe, "probes": len(probes),
                         "probe_ratio": probe / reference_probe if probe is not None and reference_probe else None,
                         "cpu_per_iteration_ratio": float(np.median(costs)) if costs else None, "pairs": len(costs)})
    return pd.DataFrame(rows, columns=["side", "device", "runs", "probe_seconds", "probes", "probe_ratio", "cpu_per_iteration_ratio", "pairs"])


MACHINES_CAPTION = ("Each machine that made a record. Probe: the median over its runs of the speed probe timed in each run before "
                    "training (one fixed small MLP workload, akdqff_bench.speed_probe; CPU seconds on a CPU, wall seconds on a GPU; "
                    "lower is faster), and its ratio to the reference machines' median probe. CPU-s per iteration: the median over its "
                    "(scene, method) pairs of their CPU seconds per training iteration over the reference's for the same pair: the "
                    "methods' own measure of the machine. A ratio of 1.3 means 1.3 times the reference's time for the same work. "
                    "Records made before the probe existed have none.")


def styled_machine_speeds(table: pd.DataFrame):
    if table.empty:
        return None
    ratio = lambda v: f"{v:.2f}×" if v is not None and math.isfinite(v) else MISSING  # noqa: E731
    shown = pd.DataFrame({
        "Records": table["side"].map({"reference": "reference study", "yours": "yours"}), "Machine": table["device"], "Runs": table["runs"],
        "Probe": [format_value(p, "seconds") + f" (n={n})" if p is not None and math.isfinite(p) else "none recorded"
                  for p, n in zip(table["probe_seconds"], table["probes"])],
        "Probe over the reference's": table["probe_ratio"].map(ratio),
        "CPU-s per iteration over the reference's": [f"{ratio(v)} ({n} pairs)" if n else MISSING
                                                     for v, n in zip(table["cpu_per_iteration_ratio"], table["pairs"])],
    })
    return _style(shown, caption=MACHINES_CAPTION)


# --- figures --------------------------------------------------------------------------------------


def pareto_front(points: Sequence[Tuple[float, float]], x_tolerance: float = 0.0) -> List[int]:
    """Indices of the points no other point beats: smaller-or-equal x with higher-or-equal y, one
    of them strictly. x values within ``x_tolerance`` (relative) count as equal, so curves sampled
    at the same fraction of a budget compare by y alone. Sorted by x."""
    front = []
    for i, (x, y) in enumerate(points):
        def beaten_by(x2, y2):
            same_x = abs(x2 - x) <= x_tolerance * max(abs(x), abs(x2))
            return (same_x and y2 > y) or (x2 < x and not same_x and y2 >= y) or (x2 == x and y2 > y)

        dominated = any(beaten_by(x2, y2) for j, (x2, y2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _scene_axes(scenes: List[str], height: float = 3.6):
    columns = min(2, max(1, len(scenes)))
    rows = -(-max(1, len(scenes)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH_INCHES if columns > 1 else PAGE_WIDTH_INCHES * 0.7, height * rows), squeeze=False)
    for ax in axes.ravel()[len(scenes):]:
        ax.axis("off")
    return fig, axes.ravel()


def _draw_front(ax, xs: List[float], ys: List[float], x_tolerance: float = 0.0) -> None:
    front = pareto_front(list(zip(xs, ys)), x_tolerance)
    if not front:
        return
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.step(fx, fy, where="post", color="black", linestyle=":", linewidth=1, zorder=1)
    ax.scatter(fx, fy, s=130, facecolors="none", edgecolors="black", linewidths=1, zorder=4, label="Pareto front")


def figure_psnr_vs_size(records: List[Dict[str, Any]]):
    """Per scene: each method's capacity points (mean ± std over seeds; the seeds as small dots)
    joined by size, PSNR against stored size on a log axis, the Pareto front ringed."""
    groups = group_records(records)
    scenes = measured_scenes(records)
    fig, axes = _scene_axes(scenes or ["(no measured runs)"])
    for ax, scene in zip(axes, scenes):
        front_x, front_y = [], []
        for method in sorted({m for (s, m, _) in groups if s == scene}, key=_method_rank):
            points = [(capacity, runs) for (s, m, capacity), runs in groups.items() if s == scene and m == method]
            color = method_color(method)
            sizes = [spread(runs, "model_size_bytes") for _, runs in points]
            psnrs = [spread(runs, "psnr") for _, runs in points]
            order = np.argsort([s.mean for s in sizes])
            xs = [sizes[i].mean for i in order]
            ys = [psnrs[i].mean for i in order]
            ax.plot(xs, ys, color=color, marker="o", ms=5, label=method_label(method), zorder=3)
            for i in order:
                ax.errorbar(sizes[i].mean, psnrs[i].mean, xerr=np.nan_to_num(sizes[i].std), yerr=np.nan_to_num(psnrs[i].std), color=color,
                            capsize=2, linewidth=1, zorder=2)
                seeds = points[i][1]
                ax.scatter([r["model_size_bytes"] for r in seeds], [r["psnr"] for r in seeds], s=8, color=color, alpha=0.45, zorder=2)
                if len(points) > 1:
                    ax.annotate(points[i][0], (sizes[i].mean, psnrs[i].mean), textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)
            front_x += xs
            front_y += ys
        _draw_front(ax, front_x, front_y)
        ax.set_xscale("log")
        ax.set_xlabel("stored model size (bytes, log scale)")
        ax.set_ylabel("test PSNR (dB)")
        ax.set_title(scene, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Quality against stored size: mean ± std over seeds, seeds as dots", fontsize=10)
    fig.tight_layout()
    return fig


def _clock_unit(record: Dict[str, Any]) -> str:
    """Budgets on the CPU clock (all threads of the run's process) read "CPU-s"; wall-clock "s (wall)"."""
    return "CPU-s" if record.get("budget_clock") == "cpu" else "s (wall)"


def _curve_clock(runs: List[Dict[str, Any]]) -> str:
    """The curve's time axis: the clock the budget was on, so runs of one budget end at one x."""
    cpu = all(r.get("budget_clock") == "cpu" and all("train_cpu_seconds" in p for p in r.get("curve") or []) for r in runs)
    return "train_cpu_seconds" if cpu and runs else "train_seconds"


def _on_schedule(curve: List[Dict[str, Any]], points: int) -> List[Dict[str, Any]]:
    """``curve`` at ``points`` evaluations of its schedule: a curve evaluated at k/n of the budget
    keeps every (n/points)-th point (a short-evidence run's schedule is every second point of the
    full one, profiles.CURVE_STRIDE); a schedule that does not nest keeps its first ``points``."""
    if points and len(curve) % points == 0:
        return curve[len(curve) // points - 1 :: len(curve) // points]
    return curve[:points]


def _mean_curve(runs: List[Dict[str, Any]]):
    """The seeds' learning curves point by point, on the coarsest of their schedules."""
    length = min((len(r.get("curve") or []) for r in runs), default=0)
    if not length:
        return None
    curves = [_on_schedule(r["curve"], length) for r in runs]
    clock = _curve_clock(runs)
    seconds = np.array([[c[i][clock] for i in range(length)] for c in curves])
    psnr = np.array([[c[i]["psnr"] for i in range(length)] for c in curves])
    return seconds.mean(0), psnr.mean(0), psnr.min(0), psnr.max(0)


def figure_psnr_vs_time(records: List[Dict[str, Any]], log_time: bool = False, marks: Sequence[Tuple[float, str]] = ()):
    """Per scene: each method's learning curve (PSNR on the curve's test views against training
    time), the mean over seeds with the seeds' min–max band; the front of the best PSNR reached
    by each time ringed. ``log_time``: a log time axis; ``marks``: (seconds, label) drawn as
    vertical lines (a shorter study's budget)."""
    groups = group_records(records)
    scenes = measured_scenes(records)
    fig, axes = _scene_axes(scenes or ["(no measured runs)"])
    for ax, scene in zip(axes, scenes):
        front_x, front_y = [], []
        for (s, method, capacity), runs in groups.items():
            curve = _mean_curve(runs) if s == scene else None
            if curve is None:
                continue
            seconds, mean, low, high = curve
            default = capacity == DEFAULT_CAPACITY
            label = method_label(method) + ("" if default else f" ({capacity})")
            color = method_color(method)
            ax.plot(seconds, mean, color=color, marker="o", ms=3, linewidth=1.5 if default else 0.8,
                    linestyle="-" if default else "--", label=label, zorder=3)
            if len(runs) > 1:
                ax.fill_between(seconds, low, high, color=color, alpha=0.15, linewidth=0)
            front_x += list(seconds)
            front_y += list(mean)
        # Every run evaluates its curve at the same fractions of the budget: a few ms apart is the same time.
        _draw_front(ax, front_x, front_y, x_tolerance=0.02)
        for seconds, text in marks:
            ax.axvline(seconds, color="0.4", linestyle=":", linewidth=1)
            ax.annotate(text, (seconds, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, color="0.3",
                        ha="right", va="bottom")
        if log_time:
            ax.set_xscale("log")
        cpu = _curve_clock([r for r in _ok(records) if scene_label(r) == scene]) == "train_cpu_seconds"
        ax.set_xlabel("training CPU time (CPU-s, evaluation excluded)" if cpu else "training time (s, evaluation excluded)")
        ax.set_ylabel("PSNR on the curve's test views (dB)")
        ax.set_title(scene, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Quality against training time: mean over seeds, band = seeds' min–max", fontsize=10)
    fig.tight_layout()
    return fig


def figure_s_per_iter(records: List[Dict[str, Any]]):
    """Median s/iter of each method's default settings per scene: mean ± std bars, seeds as dots."""
    groups = default_groups(records)
    scenes = measured_scenes(records)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_INCHES * 0.6, 3.4))
    methods = sorted({m for (_, m) in groups}, key=_method_rank)
    width = 0.8 / max(1, len(methods))
    for j, method in enumerate(methods):
        color = method_color(method)
        for i, scene in enumerate(scenes):
            runs = groups.get((scene, method))
            if not runs:
                continue
            s = spread(runs, "s_per_iter")
            x = i + (j - (len(methods) - 1) / 2) * width
            ax.bar(x, s.mean, width * 0.9, color=color, alpha=0.8, label=method_label(method))
            if s.n > 1:
                ax.errorbar(x, s.mean, yerr=s.std, color="black", capsize=2, linewidth=1)
            ax.scatter([x] * s.n, s.values, s=8, color="black", zorder=3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_xticks(range(len(scenes)), scenes)
    ax.set_yscale("log")
    ax.set_ylabel("median s / iteration (log scale)")
    ax.set_title("Update speed at the same rays per batch (mean ± std, seeds as dots)", fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


FIGURES = {"psnr_vs_size": figure_psnr_vs_size, "psnr_vs_time": figure_psnr_vs_time, "s_per_iter": figure_s_per_iter}


def save_figures(results_root: Path, profile: str) -> List[Path]:
    records = load_records(results_root, profile)
    out = Path(results_root) / profile / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        fig = draw(records)
        with atomic_path(out / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        paths.append(out / f"{name}.png")
    return paths


# --- test renders ---------------------------------------------------------------------------------


def renders_of(record: Dict[str, Any], results_root: Optional[Path] = None) -> Dict[int, Path]:
    """The run's saved test renders (``runs/<run>/renders/test_00k.png``: ground truth | render),
    by view index; looked up under ``results_root`` first, so a copied results folder works."""
    folders = []
    if results_root is not None and record.get("profile") and record.get("run_id"):
        folders.append(runs_dir(Path(results_root), record["profile"]) / record["run_id"] / "renders")
    if record.get("model_file"):
        model_file = Path(record["model_file"])
        folders.append((model_file if model_file.is_absolute() else REPO_ROOT / model_file).parent / "renders")
    for folder in folders:
        found = {int(p.stem.split("_")[1]): p for p in sorted(folder.glob("test_*.png"))}
        if found:
            return found
    return {}


def figure_test_renders(records: List[Dict[str, Any]], scene: str, results_root: Optional[Path] = None, max_views: int = 4):
    """Ground truth and every method's render of the same test views, side by side (the first
    seed of each method's default settings). None when no run of the scene saved renders."""
    groups = default_groups(records)
    chosen = {method: sorted(runs, key=lambda r: r.get("seed", 0))[0] for (s, method), runs in groups.items() if s == scene}
    renders = {method: renders_of(r, results_root) for method, r in chosen.items()}
    renders = {m: v for m, v in renders.items() if v}
    if not renders:
        return None
    views = sorted(set.intersection(*(set(v) for v in renders.values())))[:max_views]
    if not views:
        return None
    methods = sorted(renders, key=_method_rank)
    columns = 1 + len(methods)
    cell = min(2.2, PAGE_WIDTH_INCHES / columns)
    fig, axes = plt.subplots(len(views), columns, figsize=(cell * columns, cell * len(views) + 0.3), squeeze=False)
    for row, view in enumerate(views):
        for col, method in enumerate([None, *methods]):
            source = renders[method or methods[0]][view]
            image = plt.imread(source)
            half = image.shape[1] // 2
            ax = axes[row][col]
            ax.imshow(image[:, :half] if method is None else image[:, half:])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("ground truth" if method is None else method_label(method), fontsize=9)
            if method is None:
                ax.set_ylabel(f"view {view}", fontsize=8)
            else:
                per_image = {p["index"]: p for p in chosen[method].get("per_image", [])}
                psnr = per_image.get(view, {}).get("psnr")
                ax.set_xlabel(f"{psnr:.2f} dB" if psnr is not None else MISSING, fontsize=8)
    fig.suptitle(f"{scene}: test views from the stored models", fontsize=10)
    fig.tight_layout()
    return fig


# --- the comparison page's prose ------------------------------------------------------------------


def study_summary(records: List[Dict[str, Any]], profile_name: str) -> str:
    """One paragraph: what was run, with which budget, how many seeds; no paths."""
    ok = _ok(records)
    if not records:
        return f"No run records for the `{profile_name}` profile."
    # From the records alone, not from today's profile: committed records may predate a change
    # to it (a wall-clock budget that became a CPU one), and the page must say what was run.
    commits = sorted({str(r.get("commit", ""))[:7] + ("+dirty" if str(r.get("commit", "")).endswith("+dirty") else "")
                      for r in ok if r.get("commit")})
    # The stopping rule of the runs that ran (a skipped run kept the profile's, whatever the others did).
    ran = ok or records
    reproduced = [r for r in ran if r.get("iterations_from_reference")]
    own_rule = [r for r in ran if not r.get("iterations_from_reference")]
    budgets = sorted({(r.get("train_budget_seconds"), _clock_unit(r)) for r in own_rule if r.get("train_budget_seconds")})
    iterations = sorted({r.get("max_iterations") for r in own_rule if r.get("max_iterations")})
    rays = sorted({r.get("rays_per_batch") for r in records if r.get("rays_per_batch")})
    devices = sorted({r.get("device") for r in ok if r.get("device")})
    seeds = sorted({r.get("seed") for r in ok if r.get("seed") is not None})
    rules = []
    if reproduced:
        counts = [r["max_iterations"] for r in reproduced]
        rules.append(f"the median iteration count of its reference seeds for {len(reproduced)} of {len(ran)} runs "
                     f"(a reproduction: {min(counts):,}–{max(counts):,} iterations)")
    if budgets:
        rules.append(f"{', '.join(f'{b:g} {unit}' for b, unit in budgets)} of training per run")
    elif iterations:
        rules.append(f"{', '.join(str(i) for i in iterations)} iterations per run")
    stop = "; ".join(rules) or "the profile's stopping rule"
    text = (f"**Profile `{profile_name}`**, measured at commit {', '.join(commits) or MISSING}. {len(ok)} measured runs of {len(records)} recorded; "
            f"stopping rule: {stop}; {', '.join(str(r) for r in rays) or MISSING} rays per batch; seeds {', '.join(str(s) for s in seeds) or MISSING}; "
            f"device: {', '.join(devices) or MISSING}.")
    loads = [float(r["other_load_cores"]) for r in ok if r.get("other_load_cores") is not None]
    if loads:
        # Timings (s/iter, training time) are only as good as the quiet they were taken in.
        text += (f" Other programs kept {np.median(loads):.2f} cores busy during training in the median run "
                 f"(at most {max(loads):.2f}; {len(loads)} of {len(ok)} runs measured this).")
    return text


# --- one run (the run notebook) ---------------------------------------------------------------


RUN_SUMMARY = (("status", "Status", None), ("message", "Message", None), ("device", "Device", None), ("iterations", "Iterations", "count"),
               ("train_seconds", "Training time (s)", "rate"), ("s_per_iter", "Update (s/iter, median)", "seconds"),
               ("other_load_cores", "Other programs' load during training (cores)", "rate"),
               ("psnr", "PSNR (dB)", "psnr"), ("ssim", "SSIM", "ssim"), ("lpips", "LPIPS", "lpips"),
               ("curve_drop_db", "Learning curve's end below its best (dB)", "rate"), ("diverged", "Diverged", None),
               ("model_size_bytes", "Stored model", "bytes"), ("peak_memory_bytes", "Peak memory", "bytes"),
               ("peak_memory_kind", "Peak memory measured as", None), ("render_fps", "Render (img/s)", "rate"),
               ("num_test_views", "Test views", "count"), ("commit", "Code (git commit)", None))


def styled_run_summary(record: Dict[str, Any]):
    """One run's measurements, formatted as the comparison's tables; no absolute paths."""
    rows = []
    for key, label, kind in RUN_SUMMARY:
        value = record.get(key)
        if kind is not None:
            text = format_value(float(value) if value is not None else None, kind)
        else:
            text = without_paths(str(value)) if value not in (None, "") else MISSING
        rows.append({"": label, record.get("run_id", "run"): text})
    return _style(pd.DataFrame(rows), wrap=(record.get("run_id", "run"),))


def styled_run_settings(record: Dict[str, Any]):
    overrides = record.get("overrides") or {}
    names = short_setting_names(list(overrides))
    frame = pd.DataFrame({"Setting": [names[k] for k in overrides], "Value": [str(v) for v in overrides.values()]})
    return _style(frame, caption="Settings overriding the method's defaults" if overrides else "The method's default settings")


def styled_per_image(record: Dict[str, Any]):
    """Mean, std, min and max over the test views of each per-image metric."""
    frame = pd.DataFrame(record.get("per_image") or [])
    rows = []
    for key in ("psnr", "ssim", "lpips"):
        if key in frame and frame[key].notna().any():
            values = frame[key].dropna()
            kind = QUANTITIES[key].kind
            rows.append({"Metric": QUANTITIES[key].label, "Views": len(values), "Mean": format_value(values.mean(), kind),
                         "Std": format_value(values.std(), kind), "Min": format_value(values.min(), kind), "Max": format_value(values.max(), kind)})
    return _style(pd.DataFrame(rows, columns=["Metric", "Views", "Mean", "Std", "Min", "Max"]))


def show_renders(record: Dict[str, Any]):
    """Ground truth (left) beside the render from the stored model (right), for the saved views."""
    renders = renders_of(record) if record.get("model_file") else {}
    if not renders:
        return None
    fig, axes = plt.subplots(1, len(renders), figsize=(3.2 * len(renders), 2.0), squeeze=False)
    per_image = {p["index"]: p for p in record.get("per_image", [])}
    for ax, (index, path) in zip(axes[0], sorted(renders.items())):
        ax.imshow(plt.imread(path))
        ax.set_title(f"view {index}: GT | render, {per_image.get(index, {}).get('psnr', float('nan')):.2f} dB", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_run_curve(record: Dict[str, Any]):
    """PSNR against training time, and any scalars the method logs (kernels, codebook size, ...)."""
    curve = record.get("curve") or []
    scalars = sorted({k for p in curve for k in p} - {"iteration", "train_seconds", "psnr", "eval_seconds"})
    columns = min(3, 1 + len(scalars))
    rows = -(-(1 + len(scalars)) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    axes = axes.ravel()
    seconds = [p["train_seconds"] for p in curve]
    axes[0].plot(seconds, [p["psnr"] for p in curve], marker="o")
    axes[0].set_ylabel("PSNR, curve views (dB)")
    axes[0].set_title(f"{method_label(record['method'])}: quality over training")
    for ax, name in zip(axes[1:], scalars):
        ax.plot(seconds, [p.get(name) for p in curve], marker="o", color="tab:orange")
        ax.set_title(name)
    for ax in axes[: 1 + len(scalars)]:
        ax.set_xlabel("training time (s)")
        ax.grid(True, alpha=0.3)
    for ax in axes[1 + len(scalars):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _evidence_module(method: Optional[str]):
    """The module a method's bench spec names for its own evidence (None: it has none)."""
    import importlib

    module_name = bench_spec(method).evidence if method else None
    return None if module_name is None else importlib.import_module(module_name)


def method_figures(result, evidence: str = "full") -> list:
    """The figures of the run's method's own evidence (its spec's ``notebook_figures``), [] for none."""
    if evidence not in EVIDENCE_LEVELS:
        raise ValueError(f"evidence must be one of {EVIDENCE_LEVELS}, not {evidence!r}")
    module = _evidence_module(result.record.get("method"))
    if module is None or result.pipeline is None:
        return []
    return list(module.notebook_figures(result, evidence))


def evidence_cost_ratio(method: str, measured: str, wanted: str) -> float:
    """How long ``method``'s evidence takes at level ``wanted`` against level ``measured`` (1 for a
    method without evidence of its own)."""
    module = _evidence_module(method)
    return 1.0 if module is None else module.evidence_work(wanted) / module.evidence_work(measured)
