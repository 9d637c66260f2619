"""The measured tables, one per scene, and the sentences beside them: the study in one paragraph, the
scenes not run, the mean-image floor, the settings, a sweep, and the mean over scenes."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Tuple

import numpy as np
import pandas as pd

from akdqff_bench.datasets.floor import floor_of_records
from akdqff_bench.groups import (QUANTITIES, default_groups, group_key, group_records, measured_scenes, method_rank, ok_records,
                                 scene_label, scenes_in_order, spread)
from akdqff_bench.profiles import get_profile
from akdqff_bench.report.format import (MISSING, clock_unit, first_line, format_spread, format_value, markdown_text, method_label,
                                        short_setting_names, style_table)
from bench_base.spec import DEFAULT_CAPACITY


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
            attempted = [r for r in records if group_key(r) == (scene, method, capacity)]
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
        for method in sorted({r["method"] for r in records if scene_label(r) == scene} - measured_methods, key=method_rank):
            failed = [r for r in records if scene_label(r) == scene and r["method"] == method]
            row = {"Method": method_label(method), **({"Capacity": DEFAULT_CAPACITY} if has_capacity else {}), "Seeds": f"0 of {len(failed)}"}
            row.update({QUANTITIES[q].label: MISSING for q in quantities})
            row["Note"] = f"{failed[0].get('status')}: {first_line(failed[0].get('message'))}"
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
    return {scene: style_table(frame, bold, caption=f"{scene}. " + results_caption(frame), wrap=("Note",))
            for scene, (frame, bold) in results_frames(records).items()}


def not_run_sentence(records: List[Dict[str, Any]], quote: Callable[[Any], str] = markdown_text) -> str:
    """The scenes with no measured run, once, with why ('' when every scene has one); the names
    and messages in it pass through ``quote`` (Markdown text for the page, ``str`` for the console)."""
    measured = set(measured_scenes(records))
    reasons: Dict[str, str] = {}
    for r in records:
        scene = scene_label(r)
        if scene in measured:
            continue
        if r.get("status") == "skipped":
            reasons.setdefault(scene, "data not present")
        else:
            reasons[scene] = f"every run failed ({quote(first_line(r.get('message')))})" if reasons.get(scene) != "data not present" else reasons[scene]
    if not reasons:
        return ""
    by_reason: Dict[str, List[str]] = {}
    for scene in scenes_in_order({"dataset": s} for s in reasons):
        by_reason.setdefault(reasons[scene], []).append(scene)
    parts = [f"{', '.join(map(quote, scenes))} ({reason})" for reason, scenes in by_reason.items()]
    return "Scenes not run: " + "; ".join(parts) + "."


def lpips_sentence(records: List[Dict[str, Any]]) -> str:
    if any(r.get("lpips") is not None for r in ok_records(records)):
        return ""
    return "LPIPS was not measured: its AlexNet weights were neither on disk nor downloadable when these runs were made."


def floor_sentence(scene: str, records: List[Dict[str, Any]], floor) -> str:
    """Under a scene's table: what no model scores there (``floor``, an
    akdqff_bench.datasets.floor.ImageFloor, or the reason there is none) and the methods whose mean
    PSNR at their default settings is below it."""
    if isinstance(floor, str):
        return f"{markdown_text(scene)}: no mean-image floor: {markdown_text(floor)}."
    means = {method: spread(runs, "psnr").mean for (s, method), runs in default_groups(records).items() if s == scene}
    below = [f"{markdown_text(method_label(method))} ({mean:.2f} dB)" for method, mean in means.items() if mean < floor.psnr]
    return (f"{markdown_text(scene)}: **no model at all**, the mean of its {floor.train_views} training images scored on the {floor.test_views} "
            f"test views as a render is, gets {floor.psnr:.2f} dB PSNR (SSIM {floor.ssim:.3f}). "
            + (f"Below it: {', '.join(below)}." if below else "Every method here scores above it."))


def floor_sentences(records: List[Dict[str, Any]], profile_name: str) -> Dict[str, str]:
    """``floor_sentence`` for every measured scene whose data is here (read as ``profile_name`` reads it)."""
    profile = get_profile(profile_name)
    sentences = {}
    for scene in measured_scenes(records):
        scene_records = [r for r in ok_records(records) if scene_label(r) == scene]
        floor = floor_of_records(scene, scene_records, profile.synthetic_bed_variant, profile.max_test_views)
        sentences[scene] = floor_sentence(scene, records, floor)
    return sentences


def at_defaults_note(records: Iterable[Dict[str, Any]]) -> str:
    """Which measured methods ran at their own defaults (no bench spec), '' when none did."""
    names = sorted({r["method"] for r in ok_records(records) if r.get("method_at_defaults")})
    if not names:
        return ""
    return (f"Ran at their own defaults (no bench spec, so no tuned settings): {', '.join(map(markdown_text, names))}; only the profile's budget, "
            "device, data and rays per batch were set.")


def settings_frame(records: List[Dict[str, Any]]) -> pd.DataFrame:
    """The settings each (method, capacity) ran with, once per distinct setting."""
    rows: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for (scene, method, capacity), runs in group_records(records).items():
        r = runs[0]
        overrides = r.get("overrides") or {}
        names = short_setting_names(list(overrides))
        settings = ", ".join(f"{names[key]}={value}" for key, value in overrides.items()) or "the method's defaults"
        budget = r.get("train_budget_seconds")
        stop = f"{budget:g} {clock_unit(r)} of training" if budget else (f"{r.get('max_iterations')} iterations" if r.get("max_iterations") else MISSING)
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
    return style_table(settings_frame(records), caption="Settings of the runs above.", wrap=("Settings (overrides of the method's defaults)", "Device"))


def format_table(records: List[Dict[str, Any]]) -> str:
    """The measured tables as plain text (the CLI's final output)."""
    tables = results_frames(records)
    if not tables:
        return "(no measured runs)"
    parts = []
    for scene, (frame, _) in tables.items():
        parts.append(f"{scene}:\n" + frame.to_string(index=False))
    sentence = not_run_sentence(records, quote=str)
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
    return style_table(shown, bold=bold, caption=title, wrap=("Settings",))


MEAN_QUANTITIES = ("psnr", "ssim", "lpips", "model_size_bytes", "s_per_iter")


def mean_over_scenes(records: List[Dict[str, Any]]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Each method's mean over the measured scenes of its per-scene mean over seeds (default
    settings), as papers print a data set's mean; and which cells are the best among the methods
    measured on every scene (a mean over fewer scenes is another average, shown but not ranked)."""
    groups, scenes = default_groups(records), measured_scenes(records)
    quantities = [q for q in MEAN_QUANTITIES if q != "lpips" or any(spread(runs, q).n for runs in groups.values())]
    rows, means, complete = [], [], []
    for method in sorted({method for (_, method) in groups}, key=method_rank):
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
    return style_table(frame, bold, caption=caption)


def study_summary(records: List[Dict[str, Any]], profile_name: str) -> str:
    """One paragraph: what was run, with which budget, how many seeds; no paths."""
    ok = ok_records(records)
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
    budgets = sorted({(r.get("train_budget_seconds"), clock_unit(r)) for r in own_rule if r.get("train_budget_seconds")})
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
    text = (f"**Profile `{profile_name}`**, measured at commit {markdown_text(', '.join(commits)) or MISSING}. {len(ok)} measured runs of {len(records)} recorded; "
            f"stopping rule: {stop}; {', '.join(str(r) for r in rays) or MISSING} rays per batch; seeds {', '.join(str(s) for s in seeds) or MISSING}; "
            f"device: {markdown_text(', '.join(devices)) or MISSING}.")
    loads = [float(r["other_load_cores"]) for r in ok if r.get("other_load_cores") is not None]
    if loads:
        # Timings (s/iter, training time) are only as good as the quiet they were taken in.
        text += (f" Other programs kept {np.median(loads):.2f} cores busy during training in the median run "
                 f"(at most {max(loads):.2f}; {len(loads)} of {len(ok)} runs measured this).")
    return text

