"""Your numbers against a reference study's: each mean against the reference's prediction interval, and
the machines that made both."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

from akdqff_bench.groups import QUANTITIES, Spread, group_records, ok_records, spread
from akdqff_bench.speed_probe import probe_seconds
from akdqff_bench.report.format import MISSING, format_value, method_label, style_table
from akdqff_bench.report.verdict import MIN_SEEDS
from bench_base.spec import DEFAULT_CAPACITY


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
    styler = style_table(shown, caption=REPRODUCTION_RULE)
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
    rows = []
    reference_probes = [p for p in map(probe_seconds, ok_records(reference_records)) if p is not None]
    reference_probe = float(np.median(reference_probes)) if reference_probes else None
    reference_cost = {key: spread(runs, "cpu_s_per_iter") for key, runs in group_records(reference_records).items()}
    for side, records in (("reference", reference_records), ("yours", user_records)):
        for device in sorted({r.get("device") or MISSING for r in ok_records(records)}):
            runs = [r for r in ok_records(records) if (r.get("device") or MISSING) == device]
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
    return style_table(shown, caption=MACHINES_CAPTION)

