"""The λ study: K, stored size and PSNR against λ (``kernel_cost``), on one or more scenes.

``python -m akdqff_method.lambda_study`` trains the quick AKDQFF once per (scene, λ) of
``akdqff_bench.profiles.AKDQFF_LAMBDA_STUDY`` (each in the profile's budget, every other setting
the profile's), keeps each run's record in ``results/sweeps/akdqff-lambda-<profile>/`` (finished
runs are skipped when rerun, as the sweeps do) and writes ``results/sweeps/akdqff-lambda-<profile>.csv``:
one row per run with the final K, Q, stored size, test PSNR and the splits the memory guard refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("scene", "kernel_cost", "status", "kernels", "codebook_size", "model_size_bytes", "psnr", "ssim",
           "iterations", "s_per_iter", "kernels_blocked_by_cap_total")


def run_lambda_study(
    scenes: Sequence[str], lambdas: Sequence[float], profile: str = "quick", results_root: Path = REPO_ROOT / "results",
    force: bool = False,
) -> Path:
    import pandas as pd

    from akdqff_bench.records import read_record
    from akdqff_bench.runner import run_one

    study_dir = Path(results_root) / "sweeps" / f"akdqff-lambda-{profile}"
    rows = []
    for scene in scenes:
        for kernel_cost in lambdas:
            record_file = study_dir / f"{scene.replace('/', '-').replace(':', '-')}__lambda{kernel_cost:g}.json"
            record = read_record(record_file)
            if force or record is None or record.get("status") != "ok":
                print(f"== λ study: {scene}, kernel_cost {kernel_cost:g}", flush=True)
                overrides = {"pipeline.model.strategy.kernel_cost": kernel_cost}
                record = run_one("akdqff", scene, profile, 0, Path(results_root), extra_overrides=overrides, record_file=record_file).record
            scalars = record.get("final_scalars") or {}
            rows.append({"scene": scene, "kernel_cost": kernel_cost, "status": record.get("status"),
                         "kernels": scalars.get("kernels"), "codebook_size": scalars.get("codebook_size"),
                         "kernels_blocked_by_cap_total": scalars.get("kernels_blocked_by_cap_total"),
                         **{k: record.get(k) for k in ("model_size_bytes", "psnr", "ssim", "iterations", "s_per_iter")}})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    out = Path(results_root) / "sweeps" / f"akdqff-lambda-{profile}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False), flush=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    from akdqff_bench.profiles import AKDQFF_LAMBDA_STUDY

    parser = argparse.ArgumentParser(prog="python -m akdqff_method.lambda_study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", nargs="+", default=["synthetic-bed", "ethiopian-head"])
    parser.add_argument("--lambdas", nargs="+", type=float, default=list(AKDQFF_LAMBDA_STUDY))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    parser.add_argument("--force", action="store_true", help="rerun finished runs instead of skipping them")
    args = parser.parse_args(argv)
    if any(not value > 0 for value in args.lambdas):
        parser.error(f"every λ must be positive, got {args.lambdas}")
    run_lambda_study(args.scenes, args.lambdas, args.profile, args.results, args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
