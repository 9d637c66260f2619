"""How the comparison prints: numbers with their spread, methods by name and colour, tables as pandas Stylers,
and text without the paths of whoever made it."""

from __future__ import annotations

import html
import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from akdqff_bench.groups import Spread, ok_records
from akdqff_bench.methods import bench_spec
from akdqff_bench.paths import REPO_ROOT


MISSING = "—"


# Colours for methods whose spec names none (matplotlib's cycle minus the specs' own).
SPARE_COLORS = ("tab:brown", "tab:pink", "tab:gray", "tab:cyan", "black")


# Wide enough for the HTML page and the notebook, short enough for two plots side by side.
PAGE_WIDTH_INCHES = 10.0


def method_label(method: str) -> str:
    return bench_spec(method).label


def method_color(method: str) -> str:
    color = bench_spec(method).color
    return color or SPARE_COLORS[sum(map(ord, method)) % len(SPARE_COLORS)]


def _bytes_unit(value: float) -> Tuple[float, str]:
    if value >= 1e9:
        return 1e9, "GB"
    if value >= 1e6:
        return 1e6, "MB"
    return 1e3, "KB"


def format_value(value: Optional[float], kind: str, std: Optional[float] = None) -> str:
    """One number (and its std) as the tables print it; ``MISSING`` for no value."""
    if value is None or not math.isfinite(value):
        return MISSING
    has_std = std is not None and math.isfinite(std)
    if kind == "bytes":
        scale, unit = _bytes_unit(value)
        digits = 1 if value / scale < 100 else 0
        text = f"{value / scale:.{digits}f}"
        return f"{text} ± {std / scale:.{digits}f} {unit}" if has_std else f"{text} {unit}"
    formats = {"psnr": "{:.2f}", "ssim": "{:.3f}", "lpips": "{:.3f}", "count": "{:,.0f}", "rate": "{:.2f}"}
    if kind == "seconds":
        fmt = "{:#.3g}" if value < 1 else "{:.2f}"
    else:
        fmt = formats.get(kind, "{:.4g}")
    text = fmt.format(value)
    if not has_std:
        return text
    # The std to the mean's last decimal: "0.606 ± 0.006", not "0.606 ± 0.00600" or "± 1.7e-17".
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    return f"{text} ± {std:,.{decimals}f}"


def format_spread(s: Spread, kind: str) -> str:
    return format_value(s.mean if s.n else None, kind, s.std if s.n >= 2 else None)


# Absolute paths must not reach the report (they name someone's machine, not the result).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s:'\",;()]+)")


def without_paths(text: str) -> str:
    """Paths inside the repository made relative to it; any other absolute path cut to its name."""
    text = text.replace(str(REPO_ROOT) + "/", "").replace(str(REPO_ROOT), ".")
    return _ABSOLUTE_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def first_line(text: Optional[str]) -> str:
    return without_paths((text or "").strip().splitlines()[0]) if (text or "").strip() else ""


# Characters that start Markdown's links, images, emphasis, code and escapes.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]])")


def markdown_text(value: Any) -> str:
    """``value`` as plain text inside the page's Markdown: no tag, link, image, emphasis or block
    that a name or a message could start. Every string from a path, a scene, a method or a record
    goes through here (or, in a table, through ``style_table``) before it reaches the page."""
    text = html.escape(" ".join(str(value).split()), quote=False)  # one line: a name cannot start a block
    return _MARKDOWN_ACTIVE.sub(r"\\\1", text)


def style_table(frame: pd.DataFrame, bold: Optional[pd.DataFrame] = None, caption: Optional[str] = None, wrap: Sequence[str] = ()):
    """A pandas Styler as the report shows tables: no index, "—" for missing, bold best cells; every
    cell, header and the caption escaped as HTML text (they hold names from paths and records)."""
    styler = frame.style.hide(axis="index").format(na_rep=MISSING, escape="html").format_index(escape="html", axis=1)
    if bold is not None:
        styler = styler.apply(lambda _: bold.map(lambda b: "font-weight: bold" if b else ""), axis=None)
    if caption:
        styler = styler.set_caption(html.escape(caption, quote=False))
    styler = styler.set_table_styles([
        {"selector": "caption", "props": "caption-side: top; text-align: left; font-size: 0.9em; color: #444; padding-bottom: 0.4em; max-width: 60em"},
        {"selector": "th", "props": "text-align: left; padding: 0.25em 0.6em"},
        {"selector": "td", "props": "text-align: left; padding: 0.25em 0.6em; vertical-align: top"},
    ])
    # Numbers stay on one line; long text columns wrap instead of pushing the table off the page.
    wrapped = [column for column in wrap if column in frame.columns]
    rest = [column for column in frame.columns if column not in wrapped]
    if rest and len(frame):
        styler = styler.set_properties(subset=rest, **{"white-space": "nowrap"})
    if wrapped and len(frame):
        styler = styler.set_properties(subset=wrapped, **{"white-space": "normal", "min-width": "12em", "max-width": "32em"})
    return styler


def short_setting_names(keys: Sequence[str]) -> Dict[str, str]:
    """``pipeline.model.base_mlp_layer_width`` -> ``base_mlp_layer_width``; as many trailing parts as
    keep the names apart (``density.scheduler.decay_steps`` beside ``sh.scheduler.decay_steps``)."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for count in range(1, len(parts) + 1):
            name = ".".join(parts[-count:])
            if sum(1 for other in keys if other == name or other.endswith("." + name)) == 1:
                break
        names[key] = name
    return names


def clock_unit(record: Dict[str, Any]) -> str:
    """Budgets on the CPU clock (all threads of the run's process) read "CPU-s"; wall-clock "s (wall)"."""
    return "CPU-s" if record.get("budget_clock") == "cpu" else "s (wall)"


def budget_label(records: List[Dict[str, Any]]) -> str:
    budgets = {(r.get("train_budget_seconds"), r.get("budget_clock")) for r in ok_records(records)}
    if len(budgets) == 1:
        seconds, clock = next(iter(budgets))
        if seconds:
            return f"{seconds:,.0f} {str(clock or 'wall').upper()}-s"
    profiles = sorted({str(r.get("profile")) for r in ok_records(records)})
    return "/".join(profiles) or "?"

