"""The paper's claims, tested: its table's orders and its text's ratios judged per scene by the seeds'
spread (``VERDICT_RULE``), the paired per-view test beside each order, and the verdict over the suite."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd

from akdqff_bench.groups import QUANTITIES, default_groups, measured_scenes, separated, spread
from akdqff_bench.methods import bench_spec, spec_names
from akdqff_bench.report.format import MISSING, format_spread, method_label, style_table


def paper_claims() -> pd.DataFrame:
    """The paper's table: one row per method whose bench spec carries its row, in table order."""
    specs = sorted((bench_spec(name) for name in spec_names()), key=lambda s: (s.rank, s.method))
    rows = [{"method": s.method, "psnr": s.paper.psnr, "ssim": s.paper.ssim, "memory_mb": s.paper.memory_mb, "s_per_iter": s.paper.s_per_iter}
            for s in specs if s.paper is not None]
    return pd.DataFrame(rows, columns=["method", "psnr", "ssim", "memory_mb", "s_per_iter"])


def ratio_claims():
    """The claims of the paper's text, (the method claiming, RatioClaim), from the bench specs."""
    return [(name, claim) for name in spec_names() for claim in bench_spec(name).paper_claims]


def paper_table() -> pd.DataFrame:
    """The paper's own table, as printed there (no data set or hardware named)."""
    claims = paper_claims()
    return pd.DataFrame({"Method": claims["method"].map(method_label), "PSNR (dB)": claims["psnr"].map("{:.1f}".format),
                         "SSIM": claims["ssim"].map("{:.2f}".format), "Memory (MB)": claims["memory_mb"].map("{:g}".format),
                         "Update Speed (s/iter)": claims["s_per_iter"].map("{:g}".format)})


def styled_paper_table():
    return style_table(paper_table(), caption="The paper's table, as printed there (it names no data set or hardware).")


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
            apart = separated(stats[measured[i - 1]], stats[m], higher_is_better)
            parts.append(("≈" if apart is None else (">" if higher_is_better else "<")))
        parts.append(f"{method_label(m)} {format_spread(stats[m], kind)} (n={stats[m].n})")
    row["Measured here"] = " ".join(parts) if parts else MISSING
    missing = [method_label(m) for m in claimed if not stats[m].n]
    few = [method_label(m) for m in claimed if 0 < stats[m].n < MIN_SEEDS]
    if missing or few:
        why = ([f"no measured run of {', '.join(missing)}"] if missing else []) + ([f"one seed of {', '.join(few)}: spread needed"] if few else [])
        return {**row, "Verdict": NOT_MEASURABLE, "Why": "; ".join(why)}
    problems = []
    for better, worse in zip(claimed, claimed[1:]):
        apart = separated(stats[better], stats[worse], higher_is_better)
        if apart is False:
            problems.append(f"{method_label(worse)} ahead of {method_label(better)}")
        elif apart is None:
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
    styler = style_table(table, caption=caption, wrap=("Claim", *measured, "Why", "Paper", PAIRED_COLUMN))
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
    styler = style_table(table, caption=caption, wrap=("Claim", "Scenes where it holds", "where it does not", "where it cannot be judged"))
    return styler.map(lambda v: VERDICT_COLORS.get(v, ""), subset=["Over the suite"])

