"""One benchmark run: (method, scene, profile, seed) -> one JSON record.

The run trains with nerfstudio's own ``Trainer``; the harness only adds callbacks that time each
iteration, stop at the profile's wall-clock budget and evaluate the quality-against-time curve.
Then it exports the stored representation, loads it into a freshly built model and measures
every test view from that model, so the quality we publish is the quality of the file we size.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.trainer import TrainerConfig
from PIL import Image

from bench_base import metrics
from bench_base import representation as method_api
from akdqff_bench.datasets import DatasetError, DatasetMissing, SceneSpec, resolve_scene, scene_identity, scene_kind
from akdqff_bench.methods import apply_overrides, bench_spec, method_config
from akdqff_bench.profiles import WARMUP_ITERATIONS, curve_fractions, curve_points
from bench_base.spec import DEFAULT_CAPACITY
from akdqff_bench.load import OtherLoad
from akdqff_bench.records import RunRecord, git_commit, package_versions, portable_path, portable_text, write_record
from akdqff_bench.request import RunRequest
from akdqff_bench.speed_probe import measure_speed
from bench_base.lpips import LPIPS_NET, build_lpips_or_missing, lpips_available, lpips_score, offline_safe_lpips
from bench_base.views import TestViews, load_test_views, render_view  # noqa: F401 (re-exported)

NEVER = 10**9  # a step interval that never comes: nerfstudio's own in-training eval and saves are off
RENDERS_SAVED = 4  # test views saved as PNG beside each record, for the notebooks


def device_description(device_type: str) -> str:
    if device_type == "cuda" and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name()}"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "cpu")
    except OSError:
        model = "cpu"
    return f"cpu:{model} x{torch.get_num_threads()} threads"


def peak_memory(device_type: str) -> tuple:
    """(bytes, kind): peak CUDA allocation on a GPU; on a CPU, the process's peak resident set,
    which includes torch and nerfstudio themselves (each run runs in its own kernel process)."""
    if device_type == "cuda":
        return torch.cuda.max_memory_allocated(), "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_peak_rss"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_config(request: RunRequest, scene: SceneSpec, output_dir: Path) -> TrainerConfig:
    """The method's config for ``request`` on ``scene``: the scene's own settings, the harness's
    (device, seed, no in-training evaluation), the profile's stopping rule and rays, then the
    method's profile settings and the request's extra overrides."""
    profile, seed = request.profile, request.seed
    config = method_config(request.method)
    config.pipeline.datamanager.dataparser = scene.dataparser_config()
    config.data = scene.path
    # The scene's own settings (near/far, background) first: a profile's overrides may still refine them.
    apply_overrides(config, scene.settings.model_overrides(config.pipeline.model))
    config.output_dir = output_dir
    config.experiment_name = f"{scene.dataset}-{scene.scene}"
    config.timestamp = f"seed{seed}"
    config.machine.device_type = request.device
    config.machine.seed = seed
    config.vis = "tensorboard"
    config.viewer.quit_on_train_completion = True
    config.logging.local_writer.enable = False  # the harness prints its own progress (with ETA)
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = NEVER
    config.steps_per_save = NEVER  # the trainer still saves one checkpoint at the end
    config.max_num_iterations = profile.max_iterations or NEVER
    if hasattr(config.pipeline.datamanager, "train_num_rays_per_batch"):  # full-image methods (splatfacto) have none
        config.pipeline.datamanager.train_num_rays_per_batch = profile.rays_per_batch
    apply_overrides(config, request.overrides())
    return config


@dataclass
class TrainingMonitor:
    """Times iterations on two clocks, enforces the budget on one of them and records the quality curve.

    The clocks: wall (``time.perf_counter``) and CPU, ``time.process_time``: user + system seconds of
    this whole process, every thread included (torch's intra-op pool, nerfstudio's loader threads).
    No child process trains: nerfstudio's ``CacheDataloader`` caches the images in this process and
    hands out batches from that cache, so its ``num_workers`` only sizes a thread pool. A budget on
    the CPU clock stops a run after the same work whether or not other programs share the cores;
    a wall budget shortens it by however much they took. Only training iterations are timed on
    both clocks (each from before the first callback to after the last: the model's own per-step
    work counts), never the curve's evaluations. The clocks are fields so tests can inject fakes.
    """

    trainer: Any
    budget_seconds: Optional[float]
    max_iterations: Optional[int]
    curve_views: TestViews
    curve_points: int
    device_type: str
    label: str
    log: Callable[[str], None] = print
    budget_clock: str = "wall"  # "cpu" or "wall": which clock budget_seconds is on
    # Where each curve point saves its render of the first curve view (the renders over training);
    # None saves none.
    curve_renders_dir: Optional[Path] = None
    # The fractions of the budget at which the curve is evaluated (profiles.curve_fractions); None:
    # evenly, 1/curve_points, 2/curve_points, ..., 1.
    curve_fractions: Optional[Sequence[float]] = None
    wall_clock: Callable[[], float] = time.perf_counter
    cpu_clock: Callable[[], float] = time.process_time
    iteration_seconds: List[float] = field(default_factory=list)  # wall
    iteration_cpu_seconds: List[float] = field(default_factory=list)
    curve: List[Dict[str, float]] = field(default_factory=list)
    _started: float = 0.0
    _started_cpu: float = 0.0
    _last_log: float = 0.0

    def __post_init__(self) -> None:
        if self.budget_clock not in ("cpu", "wall"):
            raise ValueError(f"budget_clock must be 'cpu' or 'wall', not {self.budget_clock!r}")

    @property
    def trained_seconds(self) -> float:
        return float(sum(self.iteration_seconds))

    @property
    def trained_cpu_seconds(self) -> float:
        return float(sum(self.iteration_cpu_seconds))

    @property
    def budget_spent(self) -> float:
        """Training time so far on the budget's clock."""
        return self.trained_cpu_seconds if self.budget_clock == "cpu" else self.trained_seconds

    def _sync(self) -> None:
        if self.device_type == "cuda":
            torch.cuda.synchronize()

    def start_iteration(self, step: int) -> None:
        self._sync()
        self._started = self.wall_clock()
        self._started_cpu = self.cpu_clock()

    def end_iteration(self, step: int) -> None:
        self._sync()
        self.iteration_cpu_seconds.append(self.cpu_clock() - self._started_cpu)
        self.iteration_seconds.append(self.wall_clock() - self._started)
        progress = self.progress()
        if len(self.curve) < self.curve_points and progress >= self.next_curve_fraction() - 1e-9:
            self.evaluate_curve(step)
        if self.budget_seconds is not None and self.budget_spent >= self.budget_seconds:
            self.trainer.stop_training = True
        if time.perf_counter() - self._last_log > 15:
            self._last_log = time.perf_counter()
            self.log_progress(step)

    def next_curve_fraction(self) -> float:
        if self.curve_fractions is not None:
            return float(self.curve_fractions[len(self.curve)])
        return (len(self.curve) + 1) / self.curve_points

    def progress(self) -> float:
        if self.budget_seconds is not None:
            return min(1.0, self.budget_spent / self.budget_seconds)
        return min(1.0, len(self.iteration_seconds) / max(1, self.max_iterations or 1))

    def log_progress(self, step: int) -> None:
        done = self.progress()
        per_iter = statistics.median(self.iteration_seconds[-50:])
        if self.budget_seconds is not None:
            # The ETA is in wall time: the budget left, at the recent ratio of wall to budget clock.
            recent_budget = sum((self.iteration_cpu_seconds if self.budget_clock == "cpu" else self.iteration_seconds)[-50:])
            wall_per_budget = sum(self.iteration_seconds[-50:]) / recent_budget if recent_budget > 0 else 1.0
            remaining = max(0.0, self.budget_seconds - self.budget_spent) * wall_per_budget
        else:
            remaining = per_iter * max(0, (self.max_iterations or 0) - len(self.iteration_seconds))
        last = f", curve PSNR {self.curve[-1]['psnr']:.2f} dB" if self.curve else ""
        self.log(
            f"[{self.label}] iter {step + 1}, {100 * done:5.1f}% of training, {per_iter:.3f} s/iter, "
            f"training ETA {remaining / 60:.1f} min{last}"
        )

    def evaluate_curve(self, step: int) -> None:
        pipeline = self.trainer.pipeline
        pipeline.eval()
        started = time.perf_counter()
        renders = [render_view(pipeline.model, self.curve_views.cameras, i) for i in range(len(self.curve_views.images))]
        psnrs = [metrics.psnr(render, image) for render, image in zip(renders, self.curve_views.images)]
        if self.curve_renders_dir is not None and renders:
            self.curve_renders_dir.mkdir(parents=True, exist_ok=True)
            save_png(renders[0], self.curve_renders_dir / curve_render_name(step + 1))
        point = {
            "iteration": step + 1,
            "train_seconds": self.trained_seconds,
            "train_cpu_seconds": self.trained_cpu_seconds,
            "psnr": float(np.mean(psnrs)),
            "eval_seconds": time.perf_counter() - started,
        }
        point.update(method_api.benchmark_scalars(pipeline.model))
        self.curve.append(point)
        pipeline.train()

    def attach(self) -> None:
        callbacks = self.trainer.callbacks
        # First before every other callback, last after them: the model's own per-step work
        # (densification, pruning, codebook updates) is part of the update cost we time.
        callbacks.insert(0, TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], self.start_iteration))
        callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self.end_iteration))


def curve_render_name(iteration: int) -> str:
    """The file of a curve point's render (of the first curve view) in the run's ``renders/curve``."""
    return f"iter_{iteration:06d}.png"


def save_png(image: torch.Tensor, path: Path) -> None:
    """An [H, W, 3] image in [0, 1] as an 8-bit PNG."""
    Image.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)).save(path)


def evaluate_views(model, views: TestViews, renders_dir: Optional[Path] = None) -> Dict[str, Any]:
    """PSNR/SSIM (and LPIPS when its weights are local) on every view; renders the first few to PNG."""
    lpips_metric = build_lpips_or_missing()
    per_image, seconds = [], 0.0
    for index, target in enumerate(views.images):
        started = time.perf_counter()
        pred = render_view(model, views.cameras, index)
        seconds += time.perf_counter() - started
        per_image.append(
            {
                "index": index,
                "file": Path(views.filenames[index]).name,
                "psnr": metrics.psnr(pred, target),
                "ssim": metrics.ssim(pred, target),
                "lpips": lpips_score(lpips_metric, pred, target),
            }
        )
        if renders_dir is not None and index < RENDERS_SAVED:
            renders_dir.mkdir(parents=True, exist_ok=True)
            save_png(torch.cat([target, pred], dim=1), renders_dir / f"test_{index:03d}.png")
    lpips_values = [p["lpips"] for p in per_image if p["lpips"] is not None]
    return {
        "psnr": float(np.mean([p["psnr"] for p in per_image])),
        "ssim": float(np.mean([p["ssim"] for p in per_image])),
        "lpips": float(np.mean(lpips_values)) if lpips_values else None,
        "lpips_net": LPIPS_NET if lpips_values else None,
        "render_fps": len(per_image) / seconds if seconds > 0 else None,
        "num_test_views": len(per_image),
        "per_image": per_image,
    }


@dataclass
class RunResult:
    record: Dict[str, Any]
    record_path: Path
    pipeline: Any = None  # the pipeline rebuilt from the stored model (None when skipped/failed)
    test_views: Optional[TestViews] = None
    train_pipeline: Any = None  # the trained pipeline, for method-specific analysis


def offline_safe_setup(config):
    """While inside, the model of ``config`` builds LPIPS only when its weights are on disk
    (nerfstudio's own models build it unconditionally and would download it)."""
    import importlib

    target = getattr(config.pipeline.model, "_target", None)
    module = importlib.import_module(target.__module__) if target is not None else None
    return offline_safe_lpips(*([module] if module is not None else []))


def reload_render_difference(trained, reloaded, views: TestViews) -> Optional[float]:
    """Max |trained - reloaded| over the first test view's pixels (None without a test view)."""
    if not len(views):
        return None
    trained.eval()
    return float((render_view(trained, views.cameras, 0) - render_view(reloaded, views.cameras, 0)).abs().max())


class RunFailed(RuntimeError):
    """A run that trained but whose result cannot stand (non-finite metrics, no test view)."""


# A learning curve that ends this far below its best point marks the run as diverged.
DIVERGENCE_DB = 1.0


def pending_path(record_path: Path) -> Path:
    """Where a run's record waits until everything the run promises is there (``complete_run``)."""
    return Path(record_path).with_name(Path(record_path).name + ".pending")


def complete_run(result: "RunResult") -> None:
    """The run's record becomes its record: called by the run notebook after its last cell of
    evidence, so that a run killed before then has no record and is run again."""
    pending = pending_path(result.record_path)
    if pending.exists():
        os.replace(pending, result.record_path)


def curve_drop(curve: List[Dict[str, float]]) -> Optional[float]:
    """How far the learning curve's last point lies below its best (dB; None without a curve)."""
    values = [point["psnr"] for point in curve or [] if point.get("psnr") is not None and np.isfinite(point["psnr"])]
    return float(max(values) - values[-1]) if values else None


def new_record(request: RunRequest, path: Path) -> RunRecord:
    """What a run records before it starts: who, where, with which settings and code."""
    method, capacity = request.method, request.capacity or DEFAULT_CAPACITY
    capacity_overrides = request.profile.capacity_overrides(method, request.capacity)  # an unknown label stops here, before any record
    dataset_name, scene_name = scene_identity(request.scene)
    return RunRecord(
        run_id=path.stem, method=method, dataset=dataset_name, scene=scene_name, profile=request.profile.name,
        device=device_description(request.device), seed=request.seed, capacity=capacity, capacity_overrides=capacity_overrides,
        commit=git_commit(), versions=package_versions(), **request.settings(), method_at_defaults=bench_spec(method).at_defaults,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), evidence=request.evidence,
        curve_points=curve_points(request.profile, request.evidence), lpips_available=lpips_available(),
        scene_kind=scene_kind(request.scene),
        iterations_from_reference=dict(request.iterations_from_reference) if request.iterations_from_reference else None,
    )


def read_scene(request: RunRequest, record: RunRecord) -> SceneSpec:
    """The scene, checked, with what its layout decided (image folder, near/far, box, background)
    and what of it went into this method's config recorded; DatasetError before anything trains."""
    spec = resolve_scene(request.scene, request.profile.synthetic_bed_variant)
    model_config = method_config(request.method).pipeline.model
    record.update(data_path=portable_path(spec.path), eval_protocol=spec.protocol, scene_settings=spec.settings.as_record(),
                  data_overrides=spec.settings.model_overrides(model_config),
                  data_settings_not_applicable=spec.settings.not_applicable(model_config))
    spec.validate()
    return spec


@dataclass
class Trained:
    """What training leaves for the evaluation: the trainer, its monitor and the test views."""

    config: TrainerConfig
    trainer: Any
    monitor: TrainingMonitor
    views: TestViews
    other_load_cores: Optional[float]


def train(request: RunRequest, spec: SceneSpec, record: RunRecord, results_root: Path, artifacts: Path, label: str,
          log: Callable[[str], None]) -> Trained:
    """nerfstudio's Trainer on the scene, timed on both clocks, stopped by the profile's rule, its
    learning curve evaluated on the way; the machine's speed and other programs' load recorded."""
    prof, device_type = request.profile, request.device
    seed_everything(request.seed)
    config = build_config(request, spec, Path(results_root) / prof.name / "nerfstudio" / artifacts.name)
    views = load_test_views(config, prof.max_test_views)
    record.update(data_fingerprint=spec.fingerprint())  # the split used, and a hash of what it read
    config.save_config()  # config.yml beside the checkpoint, so ns-eval / ns-render work on the run
    if device_type == "cuda":  # runs in one process (no notebooks) must not inherit each other's peak
        torch.cuda.reset_peak_memory_stats()
    trainer = config.setup(local_rank=0, world_size=1)
    with offline_safe_setup(config):
        trainer.setup()
    monitor = TrainingMonitor(
        trainer, prof.train_budget_seconds, prof.max_iterations, views.first(prof.curve_views), record.curve_points, device_type,
        label, log, budget_clock=prof.budget_clock, curve_renders_dir=artifacts / "renders" / "curve",
        curve_fractions=curve_fractions(prof, request.evidence),
    )
    shutil.rmtree(monitor.curve_renders_dir, ignore_errors=True)  # an earlier run's points are not this one's
    monitor.attach()
    budget = f"{prof.train_budget_seconds:.0f} {prof.budget_clock.upper()}-s budget" if prof.train_budget_seconds else f"{prof.max_iterations} iterations"
    reproduced = request.iterations_from_reference
    if reproduced:
        budget += f", the median of the reference's seeds {', '.join(map(str, reproduced['seeds']))}"
    # The machine's speed, measured in this process as it is about to train (outside the budget).
    record.update(speed_probe=measure_speed(device_type))
    log(f"[{label}] training ({budget})")
    load = OtherLoad.start()
    trainer.train()
    other_load_cores = load.cores() if load else None
    if not monitor.curve or monitor.curve[-1]["iteration"] != len(monitor.iteration_seconds):
        monitor.evaluate_curve(len(monitor.iteration_seconds) - 1)
    return Trained(config, trainer, monitor, views, other_load_cores)


def evaluate_stored(request: RunRequest, trained: Trained, record: RunRecord, artifacts: Path, label: str,
                    log: Callable[[str], None]):
    """Export the stored model, rebuild the pipeline from the config, load the file into it and
    measure every test view from it (what we measure is what we ship); the record gets every
    metric. Returns the pipeline rebuilt from the file. RunFailed when nothing can stand."""
    trainer, monitor, views, device_type = trained.trainer, trained.monitor, trained.views, request.device
    timed = monitor.iteration_seconds[WARMUP_ITERATIONS:] or monitor.iteration_seconds
    timed_cpu = monitor.iteration_cpu_seconds[WARMUP_ITERATIONS:] or monitor.iteration_cpu_seconds
    model_path = artifacts / "model.bin"
    model_size = method_api.export_representation(trainer.pipeline.model, model_path, bench_spec(request.method).stored_attributes)
    log(f"[{label}] stored model: {model_size / 1e6:.3f} MB; evaluating {len(views)} test views from it")
    with offline_safe_setup(trained.config):
        eval_pipeline = trained.config.pipeline.setup(device=trainer.device, test_mode="test")
    method_api.load_representation(eval_pipeline.model, model_path)
    eval_pipeline.eval()
    evaluation = evaluate_views(eval_pipeline.model, views, artifacts / "renders")
    if not evaluation["num_test_views"]:
        raise RunFailed("the scene's test split has no view: nothing was measured")
    bad = [p["index"] for p in evaluation["per_image"] if not (np.isfinite(p["psnr"]) and np.isfinite(p["ssim"]))]
    if bad:
        raise RunFailed(f"non-finite PSNR or SSIM on {len(bad)} of {len(evaluation['per_image'])} test views (first: view {bad[0]}): "
                        "the stored model renders NaN or infinite colours")
    peak_bytes, peak_kind = peak_memory(device_type)  # before the trained model renders below
    reload_difference = reload_render_difference(trainer.pipeline.model, eval_pipeline.model, views)
    drop = curve_drop(monitor.curve)
    record.update(
        status="ok",
        message="",
        iterations=len(monitor.iteration_seconds),
        train_seconds=monitor.trained_seconds,  # wall time of the training iterations
        train_cpu_seconds=monitor.trained_cpu_seconds,  # their CPU time (this process, all threads)
        # Mean cores other programs kept busy during training (0 on a quiet machine; niced
        # programs count too): how quiet the timings above were.
        other_load_cores=trained.other_load_cores,
        machine_cores=os.cpu_count(),
        s_per_iter=statistics.median(timed),
        cpu_s_per_iter=statistics.median(timed_cpu),
        model_size_bytes=model_size,
        model_file=portable_path(model_path),
        peak_memory_bytes=peak_bytes,
        peak_memory_kind=peak_kind,
        curve=monitor.curve,
        final_scalars=method_api.benchmark_scalars(trainer.pipeline.model),
        adaptation_history=method_api.adaptation_history(trainer.pipeline.model),
        reload_max_abs_difference=reload_difference,
        curve_drop_db=drop,
        diverged=drop is not None and drop > DIVERGENCE_DB,
        **evaluation,
    )
    if record.diverged:
        log(f"[{label}] diverged: its learning curve ends {drop:.2f} dB below its best point (more than {DIVERGENCE_DB:g} dB)")
    return eval_pipeline


def run_one(request: RunRequest, results_root: Path = Path("results"), log: Callable[[str], None] = print,
            complete: bool = True) -> RunResult:
    """Train, export, reload, evaluate; write the record and return it (with the live pipelines).

    With ``complete`` False (the run notebook) an ``ok`` record waits beside its place
    (``pending_path``) until the caller's ``complete_run``: a record says ``ok`` only when all the
    run promises exists. Whatever the run had recorded before is removed when it starts training.

    The request's capacity point's overrides go on top of the method's and into the record; a
    sweep's ``extra_overrides`` and ``record_file`` keep its runs outside the profile's (so they never
    enter metrics.csv). ``evidence`` (profiles.EVIDENCE_LEVELS) sets how many learning-curve points
    are evaluated (profiles.curve_points).
    """
    path = request.record_path(results_root)
    record = new_record(request, path)
    # Messages are committed with the results: paths in them are relative to the repository.
    try:
        spec = read_scene(request, record)
    except DatasetMissing as missing:
        record.update(status="skipped", message=portable_text(str(missing)))
        write_record(path, record)
        log(f"[{path.stem}] skipped: {record['message']}")
        return RunResult(record.as_dict(), path)
    except DatasetError as bad:
        record.update(status="failed", message=portable_text(str(bad)))
        write_record(path, record)
        raise

    capacity = request.capacity or DEFAULT_CAPACITY
    label = f"{request.method} | {request.scene} | {request.profile.name}" + ("" if capacity == DEFAULT_CAPACITY else f" | {capacity}")
    artifacts = path.with_suffix("")
    try:
        # The files about to be overwritten are no longer what an earlier record describes.
        path.unlink(missing_ok=True)
        pending_path(path).unlink(missing_ok=True)
        trained = train(request, spec, record, results_root, artifacts, label, log)
        eval_pipeline = evaluate_stored(request, trained, record, artifacts, label, log)
        write_record(path if complete else pending_path(path), record)
        log(
            f"[{label}] done: PSNR {record['psnr']:.2f} dB, SSIM {record['ssim']:.3f}, "
            f"{record['s_per_iter']:.4f} s/iter, {record['model_size_bytes'] / 1e6:.3f} MB"
        )
        return RunResult(record.as_dict(), path, eval_pipeline, trained.views, trained.trainer.pipeline)
    except Exception as error:
        record.update(status="failed", message=portable_text(f"{type(error).__name__}: {error}"),
                      traceback=portable_text(traceback.format_exc()))
        write_record(path, record)
        raise
