"""``./run_all.sh gpu-check``: what a GPU shows that the CPU machines cannot, in one command.

On a machine whose torch sees CUDA it runs the CUDA-only tests (``pytest -m cuda``), then a short
run of every method with a bench spec (the ``gpu-check`` profile: synthetic-bed 100x100, a few
hundred iterations at each method's quick settings), and writes under ``results/gpu-check/`` the
runs' records and ``summary.csv`` / ``summary.md``: per method its s/iter, PSNR, peak GPU memory
(``torch.cuda.max_memory_allocated``) and whether the stored model, reloaded into a fresh model,
renders the same image. Without CUDA it says so in one line and exits 2, before anything else.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

PROFILE = "gpu-check"
EXIT_NO_CUDA = 2
# A reloaded model "renders the same" when no pixel of the first test view differs by more than this
# (colours in [0, 1]; float32 and CUDA's non-deterministic reductions differ by far less).
SAME_RENDER_TOLERANCE = 1e-4
SUMMARY_COLUMNS = ("method", "status", "iterations", "s_per_iter", "psnr", "ssim", "peak_gpu_memory_mb", "model_size_mb",
                   "reload_max_abs_difference", "reloads_the_same", "message")


def cuda_missing_reason() -> Optional[str]:
    import torch

    if not torch.cuda.is_available():
        return "gpu-check needs CUDA: torch sees no CUDA device on this machine; nothing was run"
    return None


def summary_rows(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    for record in records:
        difference = record.get("reload_max_abs_difference")
        peak = record.get("peak_memory_bytes") if record.get("peak_memory_kind") == "cuda_max_allocated" else None
        size = record.get("model_size_bytes")
        rows.append({
            "method": record.get("method"), "status": record.get("status"), "iterations": record.get("iterations"),
            "s_per_iter": record.get("s_per_iter"), "psnr": record.get("psnr"), "ssim": record.get("ssim"),
            "peak_gpu_memory_mb": None if peak is None else peak / 1e6, "model_size_mb": None if size is None else size / 1e6,
            "reload_max_abs_difference": difference,
            "reloads_the_same": None if difference is None else bool(difference <= SAME_RENDER_TOLERANCE),
            "message": (record.get("message") or "").splitlines()[0][:200] if record.get("message") else "",
        })
    return rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "/")


def markdown_table(rows: List[Dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + " --- |" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[column]) for column in SUMMARY_COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def write_summary(out_dir: Path, rows: List[Dict[str, Any]], tests: Dict[str, Any], device: str, wall_seconds: float) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_dir / "summary.csv", index=False)
    lines = [f"# GPU check on {device}", "",
             f"`./run_all.sh gpu-check`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {wall_seconds / 60:.1f} min in all.", "",
             f"CUDA-only tests (`pytest -m cuda`): exit status {tests['returncode']}; {tests['outcome']}.", "",
             f"A short run of every method (profile `{PROFILE}`): synthetic-bed 100x100, its quick settings. Peak GPU memory is "
             f"`torch.cuda.max_memory_allocated` over the run; \"reloads the same\": the stored model reloaded into a fresh model "
             f"renders the first test view within {SAME_RENDER_TOLERANCE:g} of the trained model's render.", "",
             markdown_table(rows) if rows else "No run.", ""]
    (out_dir / "summary.md").write_text("\n".join(lines), encoding="utf-8")


def run_cuda_tests() -> Dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", "tests"],
                          capture_output=True, text=True)
    tail = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return {"returncode": done.returncode, "outcome": tail[-1] if tail else "no output"}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="writes <results>/gpu-check/ (default: results)")
    parser.add_argument("--force", action="store_true", help="rerun runs that already finished")
    parser.add_argument("--skip-tests", action="store_true", help="only the short runs")
    args = parser.parse_args(argv)
    reason = cuda_missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return EXIT_NO_CUDA

    import torch

    from akdqff_bench import grid
    from akdqff_bench.methods import spec_names
    from akdqff_bench.records import load_records

    started = time.perf_counter()
    tests = {"returncode": None, "outcome": "skipped (--skip-tests)"} if args.skip_tests else run_cuda_tests()
    print(f"== CUDA-only tests: {tests['outcome']}", flush=True)
    status = grid.run_grid(PROFILE, args.results, grid.GridOptions(methods=spec_names(), force=args.force, notebooks=False))
    records = load_records(args.results, PROFILE)
    rows = summary_rows(records)
    out_dir = args.results / PROFILE
    write_summary(out_dir, rows, tests, torch.cuda.get_device_name(), time.perf_counter() - started)
    print((out_dir / "summary.md").read_text(encoding="utf-8"))
    failed = tests["returncode"] not in (0, None) or status != 0 or any(row["reloads_the_same"] is False for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
