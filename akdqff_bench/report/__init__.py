"""The comparison: measured tables (mean ± std over seeds), the paper's claims as a verdict, the
user's numbers against a reference study, capacity and learning curves, test renders, and one run's
page.

Everything here reads the run records (the one source of truth); nothing is typed in by hand
except the paper's own numbers (each method's bench spec holds its row of the paper's table and the
claims of the paper's text), which are shown labelled as the paper's. Methods are named, ordered and
coloured by their bench specs; a method without one by its name. Records are grouped by
``akdqff_bench.groups``.

The modules, one per part of the page: ``format`` (numbers and table style), ``tables`` (the
per-scene tables and the page's sentences), ``verdict`` (the paper's claims and the paired test),
``budgets`` (a study at two budgets), ``against`` (the subject against today's methods),
``reproduction`` (your numbers against a reference study), ``figures``, and ``run_page`` (the run
notebook). The names the notebooks use are re-exported here.
"""

from akdqff_bench.groups import QUANTITIES, group_records, mean_s_per_iter, measured_scenes, scene_label, spread
from akdqff_bench.methods import evidence_cost_ratio
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.report.against import against_references, methods_in_role, needing_cuda_sentence, styled_against_references
from akdqff_bench.report.budgets import (curve_at_budgets, shorter_budget_profile, styled_curve_at_budgets,
                                         styled_verdict_across_budgets, verdict_across_budgets)
from akdqff_bench.report.figures import (FIGURES, figure_psnr_vs_size, figure_psnr_vs_time, figure_s_per_iter, figure_test_renders,
                                         pareto_front, save_figures)
from akdqff_bench.report.format import MISSING, format_spread, format_value, markdown_text, short_setting_names, without_paths
from akdqff_bench.report.reproduction import (PREDICTION_LEVEL, machine_speeds, reproduction_comparison, reproduction_counts,
                                              styled_machine_speeds, styled_reproduction)
from akdqff_bench.report.run_page import (RUN_SUMMARY, method_figures, plot_run_curve, show_renders, styled_per_image,
                                          styled_run_settings, styled_run_summary)
from akdqff_bench.report.tables import (at_defaults_note, floor_sentence, floor_sentences, format_table, lpips_sentence, mean_over_scenes,
                                        not_run_sentence, results_frames, settings_frame, styled_mean_over_scenes, styled_results,
                                        styled_settings, styled_sweep, study_summary)
from akdqff_bench.report.verdict import (DOES_NOT_HOLD, HOLDS, NOT_MEASURABLE, claims_verdict, judged_by_own_seeds, paired_test,
                                         paper_table, per_view_differences, styled_paper_table, styled_verdict, styled_verdict_over_suite,
                                         verdict_beside_reference, verdict_over_suite)

__all__ = ["DOES_NOT_HOLD", "FIGURES", "HOLDS", "MISSING", "NOT_MEASURABLE", "PREDICTION_LEVEL", "QUANTITIES", "REPO_ROOT",
           "RUN_SUMMARY", "against_references", "at_defaults_note", "claims_verdict", "curve_at_budgets", "evidence_cost_ratio",
           "figure_psnr_vs_size", "figure_psnr_vs_time", "figure_s_per_iter", "figure_test_renders", "floor_sentence",
           "floor_sentences", "format_spread", "format_table", "format_value", "group_records", "judged_by_own_seeds",
           "lpips_sentence", "machine_speeds", "mean_over_scenes", "mean_s_per_iter", "measured_scenes", "method_figures",
           "methods_in_role", "needing_cuda_sentence", "not_run_sentence", "paired_test", "paper_table", "pareto_front",
           "per_view_differences", "plot_run_curve", "reproduction_comparison", "reproduction_counts", "results_frames",
           "save_figures", "scene_label", "settings_frame", "short_setting_names", "shorter_budget_profile", "show_renders",
           "spread", "study_summary", "styled_against_references", "styled_curve_at_budgets", "styled_machine_speeds",
           "styled_mean_over_scenes", "styled_paper_table", "styled_per_image", "styled_reproduction", "styled_results",
           "styled_run_settings", "styled_run_summary", "styled_settings", "styled_sweep", "styled_verdict",
           "styled_verdict_across_budgets", "styled_verdict_over_suite", "verdict_across_budgets", "verdict_beside_reference",
           "verdict_over_suite", "without_paths"]
