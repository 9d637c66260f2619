"""Repeat the record-integrity checks on your own machine: a second grid on the same results folder,
a grid killed after its run was measured but before its notebook ended, the resume after it, a
record file cut short, and a results folder on a full disk.

    .venv/bin/python benchmarks/fault_injection.py            # about four minutes on 2 cores

It trains the tests' throwaway method (``tests/fixtures/tiny_plugin``, installed for these
subprocesses by its entry points alone) on a tiny generated scene with the smoke profile, in a
temporary folder, and prints what happened at each step; it exits 1 if any check fails. The full
disk is a 300 KB tmpfs mounted in a user namespace (``unshare -rm``); where the kernel allows no
user namespaces, that step says so and is not counted.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "tests" / "fixtures" / "tiny_plugin"
RUN = "tiny-method__synthetic-bed__seed0"


def main() -> int:
    sys.path.insert(0, str(REPO))
    from akdqff_bench.testing import make_tiny_blender_scene

    failures = 0

    def check(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)

    with tempfile.TemporaryDirectory(prefix="akdqff-fault-") as scratch:
        scratch = Path(scratch)
        make_tiny_blender_scene(scratch / "data" / "synthetic-bed" / "quick")
        results = scratch / "results"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")]),
               "AKDQFF_BENCH_DATA": str(scratch / "data"), "AKDQFF_BENCH_NO_DOWNLOAD": "1", "TINY_EVIDENCE_SECONDS": "600"}
        grid = [sys.executable, "-m", "akdqff_bench.cli", "grid", "--profile", "smoke", "--methods", "tiny-method", "--results", str(results)]
        runs = results / "smoke" / "runs"
        pending, record = runs / f"{RUN}.json.pending", runs / f"{RUN}.json"

        print("1. a grid runs; its notebook's evidence cell waits 10 min", flush=True)
        first = subprocess.Popen(grid, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 600
        while not pending.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        check(pending.exists(), f"the run was measured; its record waits as {pending.name}")

        print("2. a second grid on the same results folder, meanwhile", flush=True)
        second = subprocess.run(grid, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        print(f"     exit {second.returncode}: {second.stderr.strip()}", flush=True)
        check(second.returncode == 2 and f"pid {first.pid}" in second.stderr, "refused at once, naming the first grid's pid")

        print("3. the first grid is killed (SIGKILL) inside its evidence cell", flush=True)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        check(not record.exists(), "no record claims the run: it is not finished")
        check(not (results / "smoke" / "notebooks" / f"{RUN}.ipynb").exists(), "no half-executed notebook under the run's name")

        print("4. the grid again (the evidence cell no longer waits)", flush=True)
        env["TINY_EVIDENCE_SECONDS"] = "0"
        again = subprocess.run(grid, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        line = next((text for text in again.stdout.splitlines() if "already done" in text), "")
        print(f"     {line}", flush=True)
        check(again.returncode == 0 and "0 already done, 1 to go" in line, "the killed run is run again, not taken as done")
        check(record.exists() and json.loads(record.read_text())["status"] == "ok" and not pending.exists(), "its record is now complete")
        check(not list((results / "smoke" / "notebooks").glob(".*.running.ipynb")), "the killed run's hidden notebook is gone")

        print("5. the record is cut short (a full disk, a hand edit), then table and grid", flush=True)
        record.write_text(record.read_text()[:200])
        table = subprocess.run([sys.executable, "-m", "akdqff_bench.cli", "table", "--profile", "smoke", "--results", str(results)],
                               env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        print(f"     table: exit {table.returncode}: {table.stderr.strip()}", flush=True)
        check(table.returncode == 2 and record.name in table.stderr and "Traceback" not in table.stderr, "table names the file and exits 2")
        again = subprocess.run(grid, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        line = next((text for text in again.stdout.splitlines() if "cannot be read" in text), "")
        print(f"     {line}", flush=True)
        check(again.returncode == 0 and RUN in line, "the grid names it and runs it again")
        check(json.loads(record.read_text())["status"] == "ok", "its record is whole again")

        print("6. a grid whose results folder is on a full disk (300 KB)", flush=True)
        full_disk(scratch, env, check)
    print(f"{'all checks passed' if not failures else f'{failures} check(s) failed'}")
    return 1 if failures else 0


def full_disk(scratch: Path, env: dict, check) -> None:
    """The grid on a tiny tmpfs: one line and exit 2, no traceback, and every record left there whole."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        print("     skipped: this machine allows no user namespaces (unshare -rm), so no tmpfs can be mounted here", flush=True)
        return
    disk, kept = scratch / "full", scratch / "kept"
    disk.mkdir()
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    grid = f"{q(sys.executable)} -m akdqff_bench.cli grid --profile smoke --methods tiny-method --results {q(disk)}"
    script = (f"mount -t tmpfs -o size=300k tmpfs {q(disk)} && {{ {grid} 2> {q(scratch / 'stderr')}; echo $? > {q(scratch / 'status')}; "
              f"cp -r {q(disk / 'smoke' / 'runs')} {q(kept)}; }}")
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env={**env, "TINY_EVIDENCE_SECONDS": "0"}, cwd=REPO,
                   stdout=subprocess.DEVNULL, timeout=900)
    stderr = (scratch / "stderr").read_text().strip()
    print(f"     exit {(scratch / 'status').read_text().strip()}: {stderr}", flush=True)
    check((scratch / "status").read_text().strip() == "2" and len(stderr.splitlines()) == 1 and "No space left on device" in stderr,
          "one line naming the full disk, exit 2")
    records = list(kept.glob("*.json"))

    def whole(path: Path) -> bool:
        try:
            return isinstance(json.loads(path.read_text()), dict)
        except ValueError:
            return False

    check(all(whole(path) for path in records), f"every record it left is whole ({len(records)} there; none cut short)")


if __name__ == "__main__":
    raise SystemExit(main())
