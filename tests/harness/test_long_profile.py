"""The long profile (four times the quick budget) and the comparison across budgets."""

from __future__ import annotations

import pytest

from akdqff_bench import grid, report
from akdqff_bench.profiles import LONG_BUDGET_FACTOR, curve_fractions, curve_points, get_profile


def test_the_long_profile_is_the_quick_one_for_longer_and_its_curve_passes_the_quick_budget():
    quick, long = get_profile("quick"), get_profile("long")
    assert long.train_budget_seconds == LONG_BUDGET_FACTOR * quick.train_budget_seconds == 4 * 353
    for field in ("budget_clock", "rays_per_batch", "synthetic_bed_variant", "curve_views", "device_type"):
        assert getattr(long, field) == getattr(quick, field), field
    for method in quick.methods:  # each method's quick settings, on either kind of scene
        for kind in ("synthetic", "real"):
            assert long.overrides_for(method, kind) == quick.overrides_for(method, kind)
    fractions = curve_fractions(long)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] == pytest.approx(1 / 16)
    assert all(b / a == pytest.approx(2 ** 0.5) for a, b in zip(fractions, fractions[1:]))  # log-spaced
    seconds = [f * long.train_budget_seconds for f in fractions]
    assert quick.train_budget_seconds in [round(s) for s in seconds]  # the quick budget's point is on it
    # the short evidence keeps every second point, the quick budget's among them
    assert quick.train_budget_seconds in [round(f * long.train_budget_seconds) for f in curve_fractions(long, "short")]
    assert curve_points(long) == 9 and curve_points(long, "short") == 5


def test_the_quick_schedules_are_as_before():
    quick = get_profile("quick")
    assert curve_fractions(quick) == [(i + 1) / 8 for i in range(8)]
    assert curve_fractions(quick, "short") == [0.25, 0.5, 0.75, 1.0]
    assert curve_fractions(get_profile("smoke"), "short") == [1.0]


def test_the_long_study_plan_has_two_seeds_of_every_method_and_no_capacity_points():
    long = get_profile("long")
    methods = list(long.methods)
    assert methods == list(get_profile("quick").methods)
    study = grid.plan_runs(long, methods, list(long.scenes), study=True)
    assert len(study) == len(methods) * 2 * 2 and not [run for run in study if run.capacity]
    assert {run.scene for run in study} == {"synthetic-bed", "ethiopian-head"} and {run.seed for run in study} == {0, 1}


def _records(profile, budget, akdqff_psnr):
    records = []
    for method, psnr in (("nerf", 25.0), ("block-nerf", 26.0), ("plenoxels", 27.0), ("akdqff", akdqff_psnr)):
        for seed, jitter in enumerate((-0.1, 0.0, 0.1)):
            records.append({"method": method, "dataset": "synthetic-bed", "scene": "bed", "seed": seed, "status": "ok", "profile": profile,
                            "psnr": psnr + jitter, "ssim": 0.9, "model_size_bytes": 1000, "s_per_iter": 0.1, "train_seconds": 200.0,
                            "iterations": 2000, "train_budget_seconds": budget, "budget_clock": "cpu", "run_id": f"{method}-{seed}"})
    return records


def test_the_sentence_says_whether_each_verdict_is_the_same_at_both_budgets():
    short, long = _records("quick", 353, 28.0), _records("long", 1412, 26.5)
    table = report.verdict_across_budgets(short, long).set_index("Claim")
    psnr = next(claim for claim in table.index if claim.startswith("PSNR ranking"))
    assert table.loc[psnr, "Verdicts"] == f"{report.HOLDS} → {report.DOES_NOT_HOLD}"
    assert table.loc[psnr, "In words"] == f"Changed: it {report.HOLDS} after 353 CPU-s but {report.DOES_NOT_HOLD} after 1,412 CPU-s."
    same = report.verdict_across_budgets(short, _records("long", 1412, 28.5)).set_index("Claim")
    assert same.loc[psnr, "In words"] == f"The same at both budgets: it {report.HOLDS} after 353 CPU-s and after 1,412 CPU-s."
    assert list(table.columns[1:3]) == ["After 353 CPU-s", "After 1,412 CPU-s"]  # beside the scene


def test_the_sentence_says_when_neither_budget_can_judge():
    one_seed = lambda records: [r for r in records if r["seed"] == 0]
    table = report.verdict_across_budgets(one_seed(_records("quick", 353, 28.0)), one_seed(_records("long", 1412, 28.0)))
    psnr = table.set_index("Claim").loc[next(c for c in table["Claim"] if c.startswith("PSNR ranking"))]
    assert psnr["Verdicts"] == f"{report.NOT_MEASURABLE} → {report.NOT_MEASURABLE}"
    assert psnr["In words"] == "Not measurable at either budget: a verdict needs 2 seeds of every method it names."


def test_the_sentence_names_the_diverged_runs_a_quality_order_rests_on():
    # NeRF diverged on 2 of its 3 long seeds, as the MLP methods do on the real photographs: the PSNR order then
    # ranks where the curves ended, and the sentence says so; the memory claim, which no divergence moves, does not.
    short, long = _records("quick", 353, 28.0), _records("long", 1412, 28.0)
    for record in long:
        if record["method"] == "nerf" and record["seed"] in (0, 1):
            record["diverged"] = True
    table = report.verdict_across_budgets(short, long).set_index("Claim")
    psnr = next(claim for claim in table.index if claim.startswith("PSNR ranking"))
    assert table.loc[psnr, "In words"].endswith(
        " Diverged after 1,412 CPU-s: NeRF (2 of 3 seeds); where they stand there is where their learning curves fell to, "
        "not what they learned at best.")
    assert "353 CPU-s: NeRF" not in table.loc[psnr, "In words"]
    memory = next(claim for claim in table.index if claim.startswith("memory order"))
    assert "Diverged" not in table.loc[memory, "In words"]


def test_the_verdicts_across_budgets_compare_the_same_seeds():
    # The quick study's third seed sets AKDQFF below Plenoxels; the long study ran seeds 0 and 1 only,
    # so with that seed the PSNR verdict would change between budgets for a seed, not for the budget.
    short = _records("quick", 353, 28.0)
    next(r for r in short if r["method"] == "akdqff" and r["seed"] == 2)["psnr"] = 26.5
    long = [r for r in _records("long", 1412, 28.0) if r["seed"] in (0, 1)]
    table = report.verdict_across_budgets(short, long).set_index("Claim")
    psnr = next(claim for claim in table.index if claim.startswith("PSNR ranking"))
    assert table.loc[psnr, "Verdicts"] == f"{report.HOLDS} → {report.HOLDS}"
    assert "(n=2)" in table.loc[psnr, "After 353 CPU-s"] and "(n=3)" not in table.loc[psnr, "After 353 CPU-s"]
    assert report.verdict_across_budgets(short, _records("long", 1412, 28.0)).set_index("Claim").loc[psnr, "Verdicts"] == (
        f"{report.DOES_NOT_HOLD} → {report.HOLDS}")  # with all three seeds on both sides it does change


def _curve_record(method, seed, early_psnr, final_psnr, budget=1412, early_seconds=353.2, test_psnr=None):
    return {"method": method, "dataset": "synthetic-bed", "scene": "bed", "seed": seed, "status": "ok", "profile": "long",
            "psnr": final_psnr if test_psnr is None else test_psnr,
            "train_budget_seconds": budget, "budget_clock": "cpu", "run_id": f"{method}-{seed}",
            "curve": [{"train_cpu_seconds": 88.3, "psnr": early_psnr - 5}, {"train_cpu_seconds": early_seconds, "psnr": early_psnr},
                      {"train_cpu_seconds": 1412.1, "psnr": final_psnr}]}


def test_the_long_runs_are_read_at_the_quick_budget_from_their_own_curves():
    records = [_curve_record("akdqff", 0, 30.0, 31.0), _curve_record("akdqff", 1, 31.0, 32.0),
               _curve_record("nerf", 0, 25.0, 33.0), _curve_record("nerf", 1, 26.0, 34.0),
               _curve_record("plenoxels", 0, 28.0, 29.0, early_seconds=600.0, test_psnr=35.0)]  # no point near 353 CPU-s
    table = report.curve_at_budgets(records, 353).set_index("Method")
    assert table.loc["AKDQFF", "After the shorter budget"] == "30.50 ± 0.71"
    assert table.loc["AKDQFF", "At the end"] == "31.50 ± 0.71"
    assert table.loc["AKDQFF", "Gain (dB)"] == "+1.00" and table.loc["NeRF", "Gain (dB)"] == "+8.00"
    assert table.loc["AKDQFF", "Rank"] == "1 → 2" and table.loc["NeRF", "Rank"] == "2 → 1"
    assert table.loc["Plenoxels", "After the shorter budget"] == report.MISSING
    assert table.loc["Plenoxels", "Rank"] == f"{report.MISSING} → 3" and table.loc["Plenoxels", "Seeds"] == 1
    # All test views can rank otherwise than the curve's few: Plenoxels is last on its curve, first in test PSNR.
    assert table.loc["Plenoxels", "Test PSNR at the end"] == "35.00" and table.loc["Plenoxels", "Test rank"] == 1
    assert table.loc["NeRF", "Test PSNR at the end"] == "33.50 ± 0.71" and table.loc["AKDQFF", "Test rank"] == 3
    styled = report.styled_curve_at_budgets(records, 353, "quick")
    assert "first 4 test views" in styled.caption
