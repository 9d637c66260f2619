"""A finished run as a method's own diagnoses find it under a results folder: its record and its
nerfstudio checkpoint (``<results>/<profile>/nerfstudio/<run>/``, kept on the machine that trained it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict


def checkpoint_config(results: Path, profile: str, run: str) -> Path:
    """The run's nerfstudio ``config.yml`` (for ``nerfstudio.utils.eval_utils.eval_setup``)."""
    found = sorted((Path(results) / profile / "nerfstudio" / run).glob("**/config.yml"))
    if not found:
        raise SystemExit(f"no nerfstudio config under {Path(results) / profile / 'nerfstudio' / run}: "
                         "the run's checkpoint is kept only on the machine that trained it")
    return found[-1]


def run_record(results: Path, profile: str, run: str) -> Dict[str, Any]:
    """The run's record ({} when there is none)."""
    try:
        return json.loads((Path(results) / profile / "runs" / f"{run}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def scored_views(results: Path, profile: str, run: str):
    """How many test views the run's record scored (None: all of them), so a diagnosis renders the same ones."""
    return run_record(results, profile, run).get("num_test_views")
