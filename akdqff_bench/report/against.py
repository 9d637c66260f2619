"""The study's subject against the methods a user would pick today (each bench spec's ``role``)."""

from __future__ import annotations

from typing import Any, Dict, List

import pandas as pd

from akdqff_bench.groups import Spread, default_groups, measured_scenes, method_rank, separated, spread
from akdqff_bench.methods import bench_spec, spec_names
from akdqff_bench.report.format import format_spread, markdown_text, method_label, style_table
from akdqff_bench.report.verdict import MIN_SEEDS


def methods_in_role(role: str) -> List[str]:
    """The methods whose bench spec gives them ``role`` (bench_base.spec.ROLES), in table order."""
    return sorted((name for name in spec_names() if bench_spec(name).role == role), key=method_rank)


def _gap_words(subject: Spread, other: Spread, higher_is_better: bool) -> str:
    """Whether the seed ranges of two groups lie apart or overlap (the sentence says which side)."""
    if min(subject.n, other.n) < MIN_SEEDS:
        return "one seed: no spread to judge"
    apart = separated(subject, other, higher_is_better)
    return "seed ranges overlap" if apart is None else "seed ranges apart"


def _times(ratio: float, better: str, worse: str) -> str:
    """'2.3× smaller' or '1.7× larger': the ratio read in the direction that makes it at least 1."""
    return f"{ratio:.1f}× {better}" if ratio >= 1 else f"{1 / ratio:.1f}× {worse}"


AGAINST_REFERENCES_RULE = (
    "Each method at its default settings, per scene, over its seeds, all trained for the same budget (the profile's: in the "
    "quick profile the same CPU time). PSNR and SSIM: mean ± sample std (n); the difference is the subject's mean minus the "
    "reference's, and the seed ranges are *apart* when one method's whole range (min to max) lies above the other's. Size "
    "ratio: the reference's stored model over the subject's (above 1: the subject's is smaller). Update-speed ratio: the "
    "reference's median s/iter over the subject's (above 1: the subject's updates are faster). Methods that need CUDA are "
    "listed below the table when they have no record.")


def against_references(records: List[Dict[str, Any]]) -> pd.DataFrame:
    """One row per (scene, reference method) where both it and the study's subject have measured
    runs: their PSNR and SSIM, the size and update-speed ratios, and a sentence saying where the
    subject stands (computed from these numbers)."""
    groups = default_groups(records)
    columns = ["Scene", "Reference", "Subject PSNR", "Reference PSNR", "PSNR difference", "Subject SSIM", "Reference SSIM",
               "Size ratio", "Update-speed ratio", "Where the subject stands"]
    rows = []
    for subject in methods_in_role("subject"):
        for scene in measured_scenes(records):
            for reference in methods_in_role("reference"):
                ours, theirs = groups.get((scene, subject), []), groups.get((scene, reference), [])
                if not ours or not theirs:
                    continue
                psnr = spread(ours, "psnr"), spread(theirs, "psnr")
                ssim = spread(ours, "ssim"), spread(theirs, "ssim")
                size = spread(theirs, "model_size_bytes").mean / spread(ours, "model_size_bytes").mean
                speed = spread(theirs, "s_per_iter").mean / spread(ours, "s_per_iter").mean
                difference = psnr[0].mean - psnr[1].mean
                side = "above" if difference >= 0 else "below"
                sentence = (f"On {scene}, {method_label(subject)} scores {abs(difference):.2f} dB {side} {method_label(reference)} "
                            f"({_gap_words(*psnr, True)}), SSIM {ssim[0].mean - ssim[1].mean:+.3f} ({_gap_words(*ssim, True)}); "
                            f"its stored model is {_times(size, 'smaller', 'larger')} and its updates "
                            f"{_times(speed, 'faster', 'slower')}.")
                rows.append({"Scene": scene, "Reference": method_label(reference),
                             "Subject PSNR": f"{format_spread(psnr[0], 'psnr')} (n={psnr[0].n})",
                             "Reference PSNR": f"{format_spread(psnr[1], 'psnr')} (n={psnr[1].n})",
                             "PSNR difference": f"{difference:+.2f} dB", "Subject SSIM": format_spread(ssim[0], "ssim"),
                             "Reference SSIM": format_spread(ssim[1], "ssim"), "Size ratio": f"{size:.2f}×",
                             "Update-speed ratio": f"{speed:.2f}×", "Where the subject stands": sentence})
    return pd.DataFrame(rows, columns=columns)


def needing_cuda_sentence(records: List[Dict[str, Any]]) -> str:
    """The declared methods that cannot run on a CPU and have no record here, once, with why."""
    measured = {r.get("method") for r in records}
    waiting = [name for name in sorted(spec_names(), key=method_rank) if not bench_spec(name).runs_on("cpu") and name not in measured]
    if not waiting:
        return ""
    parts = [f"{markdown_text(method_label(name))} ({markdown_text(bench_spec(name).device_reason or 'its bench spec says so')})"
             for name in waiting]
    return f"Declared, but they need CUDA and have no record here: {'; '.join(parts)}. `./run_all.sh gpu-check` runs them on a GPU."


def styled_against_references(records: List[Dict[str, Any]]):
    table = against_references(records)
    if table.empty:
        return None
    subject = ", ".join(method_label(m) for m in methods_in_role("subject"))
    caption = f"{subject} against each reference method. " + AGAINST_REFERENCES_RULE.replace("*", "")
    return style_table(table, caption=caption, wrap=("Where the subject stands",))

