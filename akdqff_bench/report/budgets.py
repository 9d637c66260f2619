"""A study repeated with a longer budget (the long profile): the paper's verdict after each budget, and the
long runs' own learning curves read at the shorter budget."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from akdqff_bench.groups import Spread, default_groups, group_key, measured_scenes, ok_records, spread
from akdqff_bench.profiles import get_profile
from akdqff_bench.report.figures import curve_clock
from akdqff_bench.report.format import MISSING, budget_label, format_spread, method_label, style_table
from akdqff_bench.report.verdict import MIN_SEEDS, NOT_MEASURABLE, claims_verdict, order_claims, paper_claims


def _run_key(record: Dict[str, Any]) -> Tuple[str, str, str, Any]:
    return (*group_key(record), record.get("seed"))


def runs_also_in(records: List[Dict[str, Any]], other: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The measured ``records`` whose (scene, method, capacity, seed) ``other`` measured too: the
    shorter study cut to the runs the longer one repeated, so that a verdict that changes between
    budgets does not change because one side has a seed or a scene the other lacks."""
    keys = {_run_key(r) for r in ok_records(other)}
    return [r for r in ok_records(records) if _run_key(r) in keys]


def verdict_across_budgets(short: List[Dict[str, Any]], long: List[Dict[str, Any]]) -> pd.DataFrame:
    """Per (claim, scene) measured at both budgets: the verdict at each and one sentence saying
    whether it is the same or which way it changed (from the two sets of records, each cut to the
    runs the other has)."""
    short, long = runs_also_in(short, long), runs_also_in(long, short)
    a, b = claims_verdict(short), claims_verdict(long)
    a_label, b_label = budget_label(short), budget_label(long)
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
    return style_table(frame, caption=caption, wrap=("Claim", *[c for c in frame.columns if c.startswith("After ")], "In words"))


def _curve_psnr_at(record: Dict[str, Any], seconds: float, tolerance: float = 0.05) -> Optional[float]:
    """PSNR of ``record``'s learning-curve point nearest ``seconds`` on its budget's clock, or None
    where no point lies within ``tolerance`` (a fraction of ``seconds``) of it."""
    clock = curve_clock([record])
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
    end = budget_label(records)
    frame = frame.rename(columns={"After the shorter budget": f"After {shorter_seconds:,.0f} CPU-s ({shorter_label})",
                                  "At the end": f"After {end}", "Test PSNR at the end": f"Test PSNR after {end}"})
    caption = (f"The long runs themselves, PSNR on their learning curve's test views (mean ± std over seeds): after the "
               f"{shorter_label} budget and at the end, and each method's rank among the methods on its scene. Both columns "
               "come from one run on one machine, so unlike the two studies' tables they cannot differ by machine. "
               f"The curve sees only the first {_curve_view_count(records)} test views; the last two columns are the final "
               "metrics on all of them. Where the curve's rank at the end and the test rank differ, those views do not "
               "stand for the scene: read the test rank.")
    return style_table(frame, caption=caption)


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

