"""The committed comparison pages rebuilt from the committed records: every table of
results/quick/compare.html and results/long/compare.html as the report gave it when the fixtures
were written (tests/fixtures/), so that a change of the report's code that changes a published
number fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from akdqff_bench import report
from akdqff_bench.methods import bench_spec
from akdqff_bench.records import load_records

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"

REPRODUCTION_COLUMNS_THEN = ["scene", "method", "capacity", "quantity", "yours", "yours_n", "reference_mean", "reference_std", "reference_min",
                             "reference_max", "reference_n", "difference", "outside_prediction_interval", "same_device"]


def _as_json(value) -> str:
    """As JSON text: a missing number (NaN) equals itself there."""
    return json.dumps(value, ensure_ascii=False)


def _frame(frame: pd.DataFrame):
    return [list(frame.columns), frame.astype(str).values.tolist()]


def test_the_quick_page_rebuilt_from_the_committed_records_gives_the_same_tables():
    """Every table of results/quick/compare.html, as the report code gave it when the committed
    records last changed (committed_comparison.json, written from the same records then: first
    before the methods moved into their folders, again when AKDQFF's rows were regenerated and the
    references' first rows came in, and as each part of the four-scene study landed)."""
    before = json.loads((FIXTURES / "committed_comparison.json").read_text(encoding="utf-8"))
    records = load_records(REPO / "results", "quick")
    now = {"summary": report.study_summary(records, "quick"), "verdict": report.claims_verdict(records).astype(str).values.tolist(),
           "paper": report.paper_table().astype(str).values.tolist(), "settings": report.settings_frame(records).astype(str).values.tolist(),
           # The columns the table had then (the flag is now the prediction interval's: nothing is flagged either way).
           "reproduction": report.reproduction_comparison(records, records)[REPRODUCTION_COLUMNS_THEN].astype(str).values.tolist(),
           "format_table": report.format_table(records)}
    for scene, (frame, bold) in report.results_frames(records).items():
        now[f"results/{scene}"] = frame.astype(str).values.tolist()
        now[f"results/{scene}/columns"] = list(frame.columns)
        now[f"results/{scene}/bold"] = bold.values.tolist()
    for path in sorted((REPO / "results" / "sweeps").glob("*-quick*.csv")):
        shown = report.styled_sweep(pd.read_csv(path), path.stem).data
        now[f"sweep/{path.stem}"] = shown.astype(str).values.tolist()
    # Beyond the tables of then: only sweeps added since, of the reference methods or of a method's
    # other sweeps (akdqff-quick-sampling-..., not its main one).
    assert set(before) <= set(now)
    for key in set(now) - set(before):
        stem = key.removeprefix("sweep/")
        method = stem.split("-quick")[0]
        other_sweeps = [name for name in bench_spec(method).sweeps if name != "quick"]
        assert key.startswith("sweep/") and (method in report.methods_in_role("reference")
                                             or any(stem.startswith(f"{method}-quick-{name}") for name in other_sweeps)), key
    for key in before:
        assert _as_json(now[key]) == _as_json(before[key]), key


def long_page_tables() -> dict:
    """Every table and sentence of results/long/compare.html, from the committed records of the long
    study and of the quick one it repeats for longer."""
    records, short = load_records(REPO / "results", "long"), load_records(REPO / "results", "quick")
    budget = short[0]["train_budget_seconds"]
    tables = {"summary": report.study_summary(records, "long"), "verdict": _frame(report.claims_verdict(records, paired=True)),
              "over the suite": _frame(report.verdict_over_suite(records)), "mean over scenes": _frame(report.mean_over_scenes(records)[0]),
              "against references": _frame(report.against_references(records)), "settings": _frame(report.settings_frame(records)),
              "curve at budgets": _frame(report.curve_at_budgets(records, budget)),
              "verdict across budgets": _frame(report.verdict_across_budgets(short, records)),
              "format_table": report.format_table(records), "short format_table": report.format_table(short),
              "sentences": [report.not_run_sentence(records), report.lpips_sentence(records), report.needing_cuda_sentence(records)]}
    for scene, (frame, bold) in report.results_frames(records).items():
        tables[f"results/{scene}"] = _frame(frame) + [bold.values.tolist()]
    return tables


def test_the_long_page_rebuilt_from_the_committed_records_gives_the_same_tables():
    """Every table of results/long/compare.html as the report gave it when the long study's last
    record landed (committed_long_comparison.json)."""
    before = json.loads((FIXTURES / "committed_long_comparison.json").read_text(encoding="utf-8"))
    now = long_page_tables()
    assert set(now) == set(before)
    for key in before:
        assert _as_json(now[key]) == _as_json(before[key]), key
