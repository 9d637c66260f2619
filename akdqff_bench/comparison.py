"""The comparison page and the console's tables, from the run records alone: what ``akdqff-bench
grid`` shows after its runs and ``akdqff-bench compare`` and ``table`` show again. The one place
outside the notebooks that calls the report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from akdqff_bench import notebooks  # its functions are looked up at call time: tests replace them
from akdqff_bench.executors import DISK_FULL_ERRORS, output_to, writing_results
from akdqff_bench.grid import check_reference
from akdqff_bench.records import check_readable, load_records, log_path, portable_path
from akdqff_bench.report import PREDICTION_LEVEL, format_table, reproduction_comparison, reproduction_counts


def write_comparison(profile_name: str, results_root: Path, notebook: bool = True, reference_root: Optional[Path] = None) -> None:
    """The executed comparison notebook and its HTML, from the records alone, then the measured
    tables on the console; with ``reference_root``, the comparison sets these records beside that
    folder's (the committed study) and one line says how many of yours lie outside its spread."""
    check_reference(reference_root, profile_name)
    if notebook:
        compare = Path(results_root) / profile_name / "compare.ipynb"
        parameters = dict(profile=profile_name, results_root=str(results_root), reference_root=str(reference_root or ""))
        log = log_path(results_root, profile_name, "compare")
        with writing_results("the comparison page", compare.parent):
            try:
                with output_to(log):  # the notebook's own output; the console keeps the table
                    notebooks.execute_notebook(notebooks.COMPARE_NOTEBOOK, compare, parameters)
            except Exception as error:
                if getattr(error, "errno", None) not in DISK_FULL_ERRORS:  # a full disk: one line, from writing_results
                    print(f"!! the comparison notebook failed; its output: {portable_path(log)}", flush=True)
                raise
            notebooks.export_html(compare)
    print_table(profile_name, results_root)
    if reference_root is not None:
        print_reproduction(profile_name, results_root, reference_root)
    check_readable(results_root, profile_name)


def print_reproduction(profile_name: str, results_root: Path, reference_root: Path) -> None:
    """One line: how many of your numbers lie outside the reference's prediction interval (the page has the table)."""
    table = reproduction_comparison(load_records(results_root, profile_name), load_records(reference_root, profile_name))
    if table.empty:
        print(f"\nAgainst the reference ({portable_path(Path(reference_root))}): no (scene, method) measured in both.", flush=True)
        return
    judged, outside = reproduction_counts(table)
    listed = ", ".join(f"{r.method} {r.quantity} on {r.scene}" for r in outside.itertuples()) or "none"
    reasons = table.loc[table["outside_prediction_interval"].isna(), "not_judged_because"].value_counts()
    unjudged = "; ".join(f"{count} not judged ({why})" for why, count in reasons.items())
    print(f"\nAgainst the reference ({portable_path(Path(reference_root))}): {len(outside)} of {len(judged)} compared values outside the "
          f"reference's {PREDICTION_LEVEL:.0%} prediction interval ({listed})" + (f"; {unjudged}" if unjudged else "")
          + ". Details: compare.html.", flush=True)


def print_table(profile_name: str, results_root: Path) -> None:
    """The measured tables on the console (``check_readable`` names the records they leave out)."""
    print(f"\n{profile_name} profile, measured (mean ± std over seeds; Stored model = the model file the evaluation renders from; "
          "Update = median s/iter after warm-up; Mean s/iter = training time / iterations):")
    print(format_table(load_records(results_root, profile_name)), flush=True)
