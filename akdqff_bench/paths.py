"""Where the repository is, and paths as committed files name them (relative to it)."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"


def portable_path(path: Path) -> str:
    """Paths inside the repository are recorded relative to it, so committed records stay valid."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def portable_text(text: str) -> str:
    """``text`` with this checkout's absolute location removed from the paths inside it, for messages
    and outputs that get committed: ``/home/me/akdqff-bench/data/x`` -> ``data/x``; paths outside the
    repository stay as they are."""
    root = str(REPO_ROOT)
    text = text.replace(f"file://{root}/", "").replace(f"{root}/", "")
    return re.sub(re.escape(root) + r"(?![\w.-])", ".", text)
