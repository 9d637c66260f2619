"""Sweeps: one loop that trains a list of runs, each once, keeping each run's record so that a
sweep interrupted or run in parts resumes where it stopped. ``akdqff-bench sweep`` (a method's
sweeps from its bench spec) and the experiments (``cpu_calibration``, ``contention``) all use it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from akdqff_bench import runner
from akdqff_bench.lock import holding, sweep_lock
from akdqff_bench.methods import bench_spec, check_runnable
from akdqff_bench.profiles import get_profile
from akdqff_bench.records import read_record, scene_file_id
from akdqff_bench.request import RunRequest, as_recorded, stale_because
from bench_base.files import write_atomically

DEFAULT_SWEEP = "quick"
# The metrics a sweep's table shows beside each candidate's settings.
TABLE_METRICS = ("psnr", "ssim", "iterations", "s_per_iter", "model_size_bytes")


class UnknownCandidate(ValueError):
    """A sweep or candidate the method's bench spec does not have."""


def resume_each(requests: Sequence[RunRequest], results_root: Path, force: bool = False, wanted: Optional[Iterable[int]] = None,
                train: Optional[Callable[[RunRequest, Path], Dict[str, Any]]] = None, label: str = "sweep") -> List[Dict[str, Any]]:
    """Each request's record: the one it left before when that one is ``ok`` (unless ``force``),
    else trained now (``train``: the runner's run_one by default). Requests whose index is not in
    ``wanted`` are not trained: their earlier record or ``{"status": "not run"}``. A failed run is
    recorded as failed and the others still run."""
    train = train or (lambda request, root: runner.run_one(request, root).record)
    wanted = set(range(len(requests))) if wanted is None else set(wanted)
    records = []
    for index, request in enumerate(requests):
        record_file = request.record_path(results_root)
        record = read_record(record_file)
        # A record made with other settings is not this request's, whatever its file is called.
        changed = stale_because(request, record) if record is not None else ""
        if changed and not force:
            print(f"== {label} [{index + 1}/{len(requests)}]: its record ran with other settings ({changed}): run again", flush=True)
            record = None
        if index not in wanted:
            record = record or {"status": "not run"}
        elif force or record is None or record.get("status") != "ok":
            print(f"== {label} [{index + 1}/{len(requests)}]: {request.describe()} {dict(request.extra_overrides) or ''}", flush=True)
            try:
                record = train(request, Path(results_root))
            except Exception as error:  # recorded as failed by the runner; the other runs still run
                print(f"!! {label} run {index} failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
                record = read_record(record_file) or {"status": "failed"}
        records.append(record)
    return records


def settings_key(request: RunRequest) -> str:
    """12 hex digits of a sha256 of every setting the request trains with (``RunRequest.settings``):
    a sweep's records are named by it, so a candidate keeps its record wherever the list puts it."""
    return hashlib.sha256(json.dumps(as_recorded(request.settings()), sort_keys=True).encode("utf-8")).hexdigest()[:12]


def candidate_record(sweep_dir: Path, index: int, request: RunRequest) -> Path:
    """Where a sweep candidate's record is: ``candidate-<settings_key>.json``; a record of the same
    settings under the name sweeps gave before (``candidate<index>.json``) is kept where it is."""
    earlier = Path(sweep_dir) / f"candidate{index}.json"
    record = read_record(earlier)
    if record is not None:
        if not stale_because(replace(request, record_file=str(earlier)), record):
            return earlier
    return Path(sweep_dir) / f"candidate-{settings_key(request)}.json"


def sweep_requests(method: str, candidates, profile, scene: str, sweep_dir: Path) -> List[RunRequest]:
    """One request per candidate (seed 0, the candidate's overrides on top of the profile's
    settings), each with its record under ``sweep_dir`` (``candidate_record``)."""
    requests = [RunRequest(method, scene, profile, 0, extra_overrides=dict(candidate.overrides)) for candidate in candidates]
    return [replace(request, record_file=str(candidate_record(sweep_dir, index, request))) for index, request in enumerate(requests)]


def sweep_name(method: str, profile_name: str, scene: str, sweep: str = DEFAULT_SWEEP) -> str:
    """``nerf-quick`` (the method's main sweep on synthetic-bed), ``nerf-quick-ethiopian-head``,
    ``akdqff-quick-lambda``: the CSV's and the records folder's name under results/sweeps/."""
    return (f"{method}-{profile_name}" + ("" if sweep == DEFAULT_SWEEP else f"-{sweep}")
            + ("" if scene == "synthetic-bed" else f"-{scene_file_id(scene)}"))


def run_sweep(method: str, profile_name: str, results_root: Path, force: bool = False, scene: str = "synthetic-bed",
              candidates: Optional[Iterable[int]] = None, sweep: str = DEFAULT_SWEEP, wait: bool = False) -> Path:
    """Train every candidate of the method's ``sweep`` (its bench spec's; or only the numbers in
    ``candidates``: a sweep in parts) in the profile's budget on ``scene``, seed 0; rank them by
    test PSNR into ``results/sweeps/<name>.csv``. A candidate neither trained now nor before is
    listed as "not run"."""
    profile = get_profile(profile_name)  # an unknown profile is named before anything trains
    check_runnable([method], profile.device_type)
    spec = bench_spec(method)
    if sweep not in spec.sweeps:
        raise UnknownCandidate(f"{method} has no sweep {sweep!r}" + (f"; its sweeps: {', '.join(spec.sweeps)}" if spec.sweeps else
                               " (its bench spec defines none)"))
    chosen = spec.sweeps[sweep].candidates
    wanted = set(range(len(chosen)) if candidates is None else candidates)
    if not wanted or not wanted <= set(range(len(chosen))):
        raise UnknownCandidate(f"{method}'s {sweep} sweep has candidates 0-{len(chosen) - 1}; asked for {sorted(wanted)}")
    name = sweep_name(method, profile.name, scene, sweep)
    with holding(sweep_lock(results_root, name), wait=wait):
        return _sweep_locked(method, spec, sweep, profile, results_root, force, scene, wanted, name)


def _sweep_locked(method, spec, sweep: str, profile, results_root: Path, force: bool, scene: str, wanted, name: str) -> Path:
    import pandas as pd

    chosen = spec.sweeps[sweep].candidates
    sweep_dir = Path(results_root) / "sweeps" / name
    requests = sweep_requests(method, chosen, profile, scene, sweep_dir)
    records = resume_each(requests, results_root, force, wanted, label=f"sweep {method}")
    rows = []
    for index, (candidate, record) in enumerate(zip(chosen, records)):
        settings = {k.removeprefix("pipeline.model."): str(v) for k, v in candidate.overrides.items()}
        rows.append({"candidate": index, "name": candidate.name, **settings, "status": record.get("status"),
                     **{k: record.get(k) for k in TABLE_METRICS}})
    table = pd.DataFrame(rows).sort_values("psnr", ascending=False, na_position="last")
    if table["psnr"].isna().all():
        raise RuntimeError(f"every {method} sweep candidate failed; see the records in {sweep_dir}")
    out = Path(results_root) / "sweeps" / f"{name}.csv"
    write_atomically(out, table.to_csv(index=False))
    figure = training_figure([(c.name, r, Path(q.record_path(results_root)).with_suffix("")) for c, r, q in zip(chosen, records, requests)],
                             f"{method}: {spec.sweeps[sweep].description or sweep} on {scene}", spec.sweeps[sweep].curve_scalars)
    if figure is not None:
        figure.savefig(out.with_suffix(".png"), dpi=110, bbox_inches="tight")
    print(table.to_string(index=False), flush=True)
    best = table.iloc[0]
    print(f"== best candidate for {method}: {best['candidate']} ({best['name']}) -> {out}", flush=True)
    return out



RENDER_COLUMNS = 5  # renders over training shown per candidate (evenly spread over its curve points)


def training_figure(runs: Sequence, title: str, scalars: Sequence[str] = ()):
    """Each candidate over training, from its record and its run folder: test PSNR of the curve
    views against training CPU seconds, each curve scalar of ``scalars`` (a model's own, such as
    AKDQFF's ``kernels``) against the iteration, and its renders of the first curve view at up to
    RENDER_COLUMNS curve points beside the ground truth. ``runs``: (name, record, run folder), in the
    sweep's order; candidates that did not finish are left out. None when none finished."""
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    finished = [(name, record, folder) for name, record, folder in runs if record.get("status") == "ok" and record.get("curve")]
    if not finished:
        return None
    rows = len(finished)
    plots = 1 + len(scalars)
    fig = plt.figure(figsize=(max(3.2 * plots, 1.5 * (RENDER_COLUMNS + 1)), 3.0 + 1.5 * rows), constrained_layout=True)
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.0, 1.5 * rows])
    axes = np.atleast_1d(top.subplots(1, plots))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, record, _) in enumerate(finished):
        curve, color = record["curve"], colors[index % len(colors)]
        axes[0].plot([p["train_cpu_seconds"] for p in curve], [p["psnr"] for p in curve], marker=".", color=color, label=name)
        for ax, scalar in zip(axes[1:], scalars):
            points = [p for p in curve if p.get(scalar) is not None]
            ax.plot([p["iteration"] for p in points], [p[scalar] for p in points], marker=".", color=color)
    axes[0].set(xlabel="training CPU seconds", ylabel="test PSNR of the curve views (dB)")
    for ax, scalar in zip(axes[1:], scalars):
        ax.set(xlabel="iteration", ylabel=scalar)
    for ax in axes:
        ax.grid(alpha=0.3)
    top.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)
    top.suptitle(title, fontsize=10)
    grid = bottom.subplots(rows, RENDER_COLUMNS + 1, squeeze=False)
    for row, (name, record, folder) in enumerate(finished):
        for ax in grid[row]:
            ax.axis("off")
        renders = sorted((Path(folder) / "renders" / "curve").glob("iter_*.png"))
        picks = [renders[i] for i in sorted(set(np.linspace(0, len(renders) - 1, RENDER_COLUMNS).round().astype(int)))] if renders else []
        for column, path in enumerate(picks):
            grid[row][column].imshow(Image.open(path))
            grid[row][column].set_title(f"iter {int(path.stem.split('_')[1]):,}", fontsize=7)
        side_by_side = Path(folder) / "renders" / "test_000.png"
        if side_by_side.is_file():
            image = np.asarray(Image.open(side_by_side))
            grid[row][-1].imshow(image[:, : image.shape[1] // 2])
            grid[row][-1].set_title("ground truth", fontsize=7)
        grid[row][0].text(-0.08, 0.5, f"{name}\n{record['psnr']:.2f} dB", transform=grid[row][0].transAxes, ha="right", va="center", fontsize=7)
    return fig
