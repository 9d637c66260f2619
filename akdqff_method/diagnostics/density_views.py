"""Does AKDQFF's kernel-density measurement hold on a spread of the training views?

The run notebook measures kernels per unit of visible surface against image detail per visible
pixel (``akdqff_method.analysis.kernel_density_vs_detail``) by rendering training views. At the
full evidence level it renders all of them; at the short level (the default ``./run_all.sh``)
a spread of ``EVIDENCE["short"].density_views``, because on ethiopian-head the 57 views take about
4 min. This measures the same trained model both ways, and a few view counts between, so the
short level's numbers can be read against the full ones::

    .venv/bin/python -m akdqff_method.diagnostics.density_views --run akdqff__ethiopian-head__seed0 --views all 16

writes ``results/quick/diagnostics/<run>-density-views.csv``. The model is the run's nerfstudio
checkpoint (the trained model, as ``block_nerf_appearance`` loads it), not the stored file the
notebook measures, so its "all" row can differ a little from the run's ``akdqff_evidence.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from bench_base.runs import checkpoint_config
from akdqff_method.analysis import kernel_density_vs_detail

COLUMNS = ("pearson_r", "spearman_r", "shuffled_abs_r_95", "permutation_p_value", "num_measured_cells")


def measure(results: Path, profile: str, run: str, view_counts: List[Optional[int]]) -> List[Dict]:
    """One row per count of training views (None: all of them), with the seconds it took."""
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, step = eval_setup(checkpoint_config(results, profile, run), test_mode="val")
    rows = []
    for views in view_counts:
        started = time.perf_counter()
        result = kernel_density_vs_detail(pipeline, views=views)
        rows.append({"run": run, "checkpoint_step": int(step), "views": result["views"], "training_views": result["training_views"],
                     **{key: result[key] for key in COLUMNS}, "seconds": round(time.perf_counter() - started, 1)})
        print(rows[-1], flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="akdqff__ethiopian-head__seed0")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--views", nargs="+", default=["all", "24", "16", "12", "8"],
                        help="counts of training views to measure on ('all': every one)")
    args = parser.parse_args(argv)
    counts = [None if v == "all" else int(v) for v in args.views]
    rows = measure(args.results, args.profile, args.run, counts)
    out = args.results / args.profile / "diagnostics"
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).round(4).to_csv(out / f"{args.run}-density-views.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
