"""One grid, run or sweep at a time on a results folder's runs of a profile.

Two processes training the same runs into the same folders would overwrite each other's model
files, checkpoints and records while both report success. Each takes an exclusive ``flock`` on
``<results>/<profile>/.lock`` (sweeps: ``<results>/sweeps/<name>.lock``) for as long as it runs. The
kernel releases it when the holder ends, however it ends (a kill included), so a stale lock never
blocks; the file keeps the holder's pid and command only to name it in the refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Optional


class ResultsBusy(RuntimeError):
    """Another process holds the lock (its pid and command named)."""


def _holder(handle) -> str:
    handle.seek(0)
    text = handle.read().strip()
    return text or "another process (it has not written its pid yet)"


@contextlib.contextmanager
def holding(lock_file: Path, wait: bool = False, poll_seconds: float = 1.0, timeout: Optional[float] = None) -> Iterator[None]:
    """Hold the exclusive lock on ``lock_file`` while inside; if another process holds it, refuse at
    once (ResultsBusy) or, with ``wait``, wait for it (up to ``timeout`` seconds, None: for ever)."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+", encoding="utf-8") as handle:
        started = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if not wait:
                    raise ResultsBusy(f"{lock_file.parent} is in use by {holder}; wait for it to end, or pass --wait to wait here") from None
                if timeout is not None and time.monotonic() - started > timeout:
                    raise ResultsBusy(f"{lock_file.parent} was still in use by {holder} after {timeout:.0f} s") from None
                if not announced:
                    print(f"== waiting for {holder} to release {lock_file.parent}", flush=True)
                    announced = True
                time.sleep(poll_seconds)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({' '.join(sys.argv[:6])[:200]})\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def profile_lock(results_root: Path, profile_name: str) -> Path:
    return Path(results_root) / profile_name / ".lock"


def sweep_lock(results_root: Path, name: str) -> Path:
    return Path(results_root) / "sweeps" / f"{name}.lock"
