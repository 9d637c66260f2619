"""Where the grid's runs execute: here, one after another (the default), or on a Ray cluster.

``run_grid`` decides which runs are still to do (resume, ``--force``) and hands them to an
executor; both executors leave the same files under the results folder:

- :class:`LocalExecutor` runs them in this process or, with notebooks, one papermill kernel per run.
  It needs no Ray.
- :class:`RayExecutor` makes each run one Ray task that reserves what the run needs (a CPU run: its
  CPUs; a CUDA run: one GPU). The task runs in a scratch folder on whichever node Ray picks and
  returns the run's record and files as bytes; this process, the driver, writes them under the
  results folder, each file atomically and the record last, so a run counts as finished only when
  everything it made is in place. Nodes need not share the driver's disk; they need the same code
  and environment (a clone at the same commit with its ``.venv``) and the data: their own ``data/``,
  or ``AKDQFF_BENCH_DATA`` set on the driver to a folder every node sees at that path (the driver
  passes it, and ``OMP_WAIT_POLICY``, on to every task). A task whose worker process or node dies
  is retried by Ray (``max_retries``); after the last attempt the driver records the run as failed
  with Ray's error, and the rest of the grid goes on. An exception inside a run (bad data, a bug) is not retried: it
  would fail again the same way, so it is recorded as failed at once, as the local executor does.

Either way the console gets one line per run (what ran, its status, PSNR, time and the grid's ETA);
each run's own output (notebook cells, nerfstudio, the training progress) goes to its log file,
``<results>/<profile>/logs/<run_id>.log``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from akdqff_bench import runner  # runner.run_one is looked up at call time: tests replace it
from akdqff_bench.datasets import scene_identity
from akdqff_bench.groups import group_key
from akdqff_bench.notebooks import RUN_NOTEBOOK, execute_notebook, run_notebook_path
from akdqff_bench.paths import REPO_ROOT
from akdqff_bench.records import PATH_LAYOUTS, RunRecord, git_commit, load_records, log_path, portable_path, read_record, write_record
from akdqff_bench.request import RunRequest
from bench_base.files import write_atomically
from bench_base.spec import DEFAULT_CAPACITY


# Ray retries a run whose worker process or node died this many times before recording it as failed.
DEFAULT_RETRIES = 2
# The committed quick results were measured with 2 cores per run. A time-budgeted run (quick) is
# measured by time, its s/iter and what it trains within its budget, so on a cluster it gets the
# same 2 cores, not a share of a busy node. A run stopped by an iteration count (smoke) needs one.
BUDGETED_RUN_CPUS = 2
ITERATION_RUN_CPUS = 1
# How often the driver says how far the grid is while no run finishes.
HEARTBEAT_SECONDS = 300.0
DATA_ENV = "AKDQFF_BENCH_DATA"
# Passed from the driver to every task when set there: where the data is, and how OpenMP threads wait
# (records name it: under contention it changes what a CPU-time budget buys).
FORWARDED_ENV = (DATA_ENV, "OMP_WAIT_POLICY")
EXECUTORS = ("local", "ray")
CLUSTER_INSTALL_HINT = "install the 'cluster' extra: .venv/bin/pip install -e '.[cluster]' (or ./run_all.sh ... --ray ADDRESS does it)"


class ExecutorError(RuntimeError):
    """The grid cannot start as asked (nothing has been trained when this is raised)."""


class ResultsNotWritable(ExecutorError):
    pass


# What a full or read-only disk raises: the results cannot be written, whatever the code does.
DISK_FULL_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@contextlib.contextmanager
def writing_results(what: str, where: Path) -> Iterator[None]:
    """A full (or read-only) disk while writing ``what`` under ``where`` becomes one line
    (:class:`ResultsNotWritable`, exit 2) instead of a traceback; the run records written before
    stand (each is written atomically). Other errors pass through."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL_ERRORS:
            raise
        raise ResultsNotWritable(f"cannot write {what} under {where}: {error.strerror}. The finished runs' records are kept; "
                                 "free some space and run `akdqff-bench compare`") from error


def minutes(seconds: float) -> str:
    """A duration as people read it: ``42 s``, ``5.2 min``, ``2.7 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def check_results_writable(results_root: Path, profile_name: str) -> Path:
    """Create ``<results>/<profile>/runs`` and write a file in it, or say why not, before any training."""
    runs = Path(results_root) / profile_name / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs, prefix=".write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ResultsNotWritable(
            f"cannot write results under {runs}: {reason} ({error.filename or runs}). Nothing was run; "
            "choose a results folder this process can write (--results PATH) or fix that one."
        ) from error
    return runs


@dataclass
class GridPlan:
    """The runs still to do, in order, and what an executor needs to run and report them."""

    profile_name: str
    results_root: Path
    runs: List[RunRequest]
    trains: Dict[str, bool]  # scene -> its data is present (absent scenes end at once, recorded as skipped)
    notebooks: bool
    first_estimate_seconds: float  # the ETA's cost of a run with no measured duration in ``estimates``
    # run_id -> seconds that run is expected to take: measured on the same (method, scene, capacity)
    # before (measured_run_seconds), since a run's evaluation differs by method and scene (AKDQFF's
    # evidence on the real scene takes minutes more than a NeRF's figures).
    estimates: Dict[str, float] = field(default_factory=dict)

    def training_runs(self, runs) -> int:
        return sum(1 for run in runs if self.trains[run.scene])

    def expected_seconds(self, runs) -> float:
        """What ``runs`` are expected to take one after another; runs whose data is absent end at once."""
        return sum(self.estimates.get(run.run_id, self.first_estimate_seconds) for run in runs if self.trains[run.scene])

    def eta_seconds(self, remaining, finished: List[Tuple[RunRequest, float]]) -> float:
        """The remaining runs' expected time, scaled by how long the finished ones took against their
        expectation (a slower or busier machine than the one the estimates were measured on)."""
        finished = [(run, seconds) for run, seconds in finished if self.trains[run.scene]]
        expected = self.expected_seconds([run for run, _ in finished])
        pace = sum(seconds for _, seconds in finished) / expected if expected > 0 else 1.0
        return pace * self.expected_seconds(remaining)

    def runs_notebook(self, run: RunRequest) -> bool:
        """A run whose data is absent only writes its skipped record: in-process, without starting a
        notebook kernel for it (~9 s each)."""
        return self.notebooks and self.trains[run.scene]


def _first_line(text: Optional[str], limit: int = 300) -> str:
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), "")
    return line[:limit] + ("..." if len(line) > limit else "")


def outcome(record: Optional[Dict[str, Any]]) -> str:
    """A finished run in a few words: ``ok, PSNR 23.41 dB``, ``skipped (data not present)``, ``failed``."""
    if record is None:
        return "failed (it wrote no record)"
    status = record.get("status")
    if status == "ok":
        text = f"ok, PSNR {record['psnr']:.2f} dB" if record.get("psnr") is not None else "ok"
        return text + (f", DIVERGED (its curve ends {record.get('curve_drop_db', 0):.1f} dB below its best)" if record.get("diverged") else "")
    if status == "skipped":
        return "skipped (data not present)"
    return str(status)


# Beyond this ratio either way a run's CPU cost per iteration says its machine is not the one its
# other seeds ran on (their own spread on one machine stays well inside it).
OTHER_MACHINE_RATIO = 1.3


def cost_against_other_seeds(record: Dict[str, Any], results_root: Path, profile_name: str) -> str:
    """How this run's CPU seconds per training iteration compare with those of the finished runs
    of the same method, scene and capacity in the same results (its other seeds), as a few words
    for the run's console line; flagged when the ratio says another kind of machine: a CPU-time
    budget buys fewer iterations on a slower one, so its quality would not compare. Empty when
    there is nothing to compare."""
    from statistics import median

    mine = record.get("cpu_s_per_iter")
    others = [r["cpu_s_per_iter"] for r in load_records(Path(results_root), profile_name)
              if r.get("status") == "ok" and r.get("run_id") != record.get("run_id") and group_key(r) == group_key(record)
              and r.get("cpu_s_per_iter")]
    if record.get("status") != "ok" or not mine or not others:
        return ""
    ratio = mine / median(others)
    text = f", {ratio:.2f}x the CPU-s per iteration of its {len(others)} other seed{'s' if len(others) > 1 else ''}"
    if not 1 / OTHER_MACHINE_RATIO <= ratio <= OTHER_MACHINE_RATIO:
        text += " (another machine's speed? in a CPU budget its iterations, and so its quality, do not compare)"
    return text


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """While inside, everything this process writes to stdout and stderr goes to ``path``: Python's
    streams (print, nerfstudio's console, warnings, papermill's log of the notebook's cells) and the
    file descriptors under them, which the notebook kernel's process inherits (its own warnings)
    and C libraries write to. The console keeps the grid's one line per run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with open(path, "w", encoding="utf-8", buffering=1) as log:
        log.write(f"# {path.stem}: started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, code at commit {git_commit()}\n")
        saved: Dict[int, int] = {}
        try:
            for fd in (1, 2):
                try:
                    copy = os.dup(fd)
                except OSError:  # no such descriptor (an embedding host): Python's streams are still redirected
                    continue
                saved[fd] = copy
                os.dup2(log.fileno(), fd)
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            for stream in (sys.stdout, sys.stderr, log):
                with contextlib.suppress(ValueError, OSError):
                    stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


class LocalExecutor:
    """One run after another in this process (or one papermill kernel per run)."""

    name = "local"

    def run(self, plan: GridPlan) -> int:
        """Run ``plan.runs``; returns the number that failed. One console line per run: its start,
        completed when it ends with its status, PSNR, time and the grid's ETA."""
        finished: List[Tuple[RunRequest, float]] = []
        failures = 0
        todo = plan.runs
        for number, run in enumerate(todo, start=1):
            print(f"== [{number}/{len(todo)}] {run.describe()} ... ", end="", flush=True)
            log = log_path(plan.results_root, plan.profile_name, run.run_id)
            record_file = run.record_path(plan.results_root)
            started, started_at = time.perf_counter(), time.time()
            error = None
            try:
                execute_run(run, Path(plan.results_root), plan.runs_notebook(run), log_file=log)
            except Exception as exc:  # keep going: one failed run must not cost the rest of the grid
                error = f"{type(exc).__name__}: {_first_line(str(exc))}"
            except KeyboardInterrupt:
                print(f"interrupted; finished runs keep their records (this run's output: {portable_path(log)})", flush=True)
                raise
            seconds = time.perf_counter() - started
            finished.append((run, seconds))
            # The record this run wrote (a failed run's record from before is no news).
            record = read_record(record_file) if record_file.exists() and record_file.stat().st_mtime >= started_at - 1 else None
            eta = f"grid ETA about {minutes(plan.eta_seconds(todo[number:], finished))}"
            if error is not None or record is None or record.get("status") == "failed":
                failures += 1
                reason = _first_line((record or {}).get("message")) or error or "it wrote no record"
                print(f"failed after {minutes(seconds)}: {reason}; log: {portable_path(log)}; {eta}", flush=True)
            else:
                print(f"{outcome(record)}{cost_against_other_seeds(record, plan.results_root, plan.profile_name)}, {minutes(seconds)}; {eta}",
                      flush=True)
        return failures


def execute_run(request: RunRequest, results_root: Path, notebooks: bool, log_file: Optional[Path] = None) -> None:
    """One run, as the grid runs it: the run notebook through papermill, or ``run_one`` in-process;
    with ``log_file``, everything the run prints goes there instead of the console."""
    with output_to(log_file) if log_file is not None else contextlib.nullcontext():
        if notebooks:
            target = run_notebook_path(results_root, request.profile.name, request.run_id)
            execute_notebook(RUN_NOTEBOOK, target, dict(request=request.to_json(), results_root=str(results_root)))
        else:
            runner.run_one(request, Path(results_root))


# ----------------------------------------------------------------------------------------------
# Ray


def require_ray():
    try:
        import ray
    except ImportError as error:
        raise ExecutorError(f"the Ray executor needs Ray ({error}); {CLUSTER_INSTALL_HINT}") from None
    return ray


def portable_scene(scene: str) -> str:
    """A scene given by path, as a worker finds it: relative to the repository when it is inside it
    (the worker runs in its own clone's root), else absolute. The run's name (``scene_file_id``)
    comes out the same on both sides, so the driver resumes by the records the workers make."""
    layout, sep, rest = scene.partition(":")
    if sep and layout in PATH_LAYOUTS and rest:
        return f"{layout}:{portable_path(Path(rest).expanduser())}"
    return scene


@dataclass
class WorkerJob:
    """What a Ray task needs to make one run (small: the data is read on the worker's node)."""

    request: RunRequest  # its scene as the worker finds it (portable_scene)
    notebooks: bool
    cpu_threads: Optional[int]  # CPU runs: torch's threads, the CPUs the task reserved
    results_root: str  # the driver's, as given: nerfstudio's config.yml names its output folder by it
    results_root_portable: str  # the driver's, as records and notebooks name it (records.portable_path)
    before_run: Optional[Callable[["WorkerJob"], None]] = None  # tests: fault injection on the worker

    @property
    def profile_name(self) -> str:
        return self.request.profile.name

    @property
    def run_id(self) -> str:
        return self.request.run_id

    def describe(self) -> str:
        return self.request.describe()


def _replace_in_json_text(data: bytes, old: str, new: str) -> bytes:
    escape = lambda s: json.dumps(s)[1:-1]  # noqa: E731 (paths as they appear inside JSON strings)
    return data.decode("utf-8").replace(escape(old), escape(new)).encode("utf-8")


def _nerfstudio_config_for(path: Path, output_dir: Path) -> bytes:
    """The run's nerfstudio config.yml with ``output_dir`` moved to the driver's results folder, so
    ns-eval / ns-render load the checkpoint where the driver writes it."""
    import yaml

    config = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.Loader)
    config.output_dir = output_dir
    return yaml.dump(config).encode("utf-8")


def collect_run_files(scratch: Path, job: WorkerJob) -> Dict[str, bytes]:
    """Every file the run wrote under the scratch results folder, keyed by its path relative to it,
    with the scratch folder's name replaced by the driver's results folder where files record paths."""
    files: Dict[str, bytes] = {}
    nerfstudio_dir = scratch / job.profile_name / "nerfstudio" / job.run_id
    for path in sorted(p for p in scratch.rglob("*") if p.is_file()):
        relative = path.relative_to(scratch).as_posix()
        if path.name == "config.yml" and nerfstudio_dir in path.parents:
            data = _nerfstudio_config_for(path, Path(job.results_root) / job.profile_name / "nerfstudio" / job.run_id)
        elif path.suffix in (".json", ".ipynb"):
            data = _replace_in_json_text(path.read_bytes(), str(scratch), job.results_root_portable)
        elif path.suffix == ".log":
            data = path.read_bytes().replace(str(scratch).encode("utf-8"), job.results_root_portable.encode("utf-8"))
        else:
            data = path.read_bytes()
        files[relative] = data
    return files


def run_on_worker(job: WorkerJob) -> Dict[str, Any]:
    """The body of one Ray task: make the run in a scratch folder, return its files as bytes."""
    import ray

    started = time.perf_counter()
    placement = {"hostname": socket.gethostname(), "node_ip": ray.util.get_node_ip_address(),
                 "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
    # Ray forwards this to the driver's output, as it does the run's own progress lines.
    print(f"== {job.describe()} started on {placement['hostname']} ({placement['node_ip']})", flush=True)
    # Where a local run works: relative scene paths are the repository's (the process serves this run only).
    os.chdir(REPO_ROOT)
    if job.before_run is not None:
        job.before_run(job)
    if job.cpu_threads:
        os.environ["OMP_NUM_THREADS"] = str(job.cpu_threads)  # the notebook's kernel inherits it
        import torch

        torch.set_num_threads(job.cpu_threads)
    scratch = Path(tempfile.mkdtemp(prefix="akdqff-bench-run-")).resolve()
    try:
        error = None
        try:
            # The run's own output goes to its log file, which comes back with its other files.
            execute_run(job.request, scratch, job.notebooks, log_file=log_path(scratch, job.profile_name, job.run_id))
        except Exception as exc:  # the run's own failure: recorded by run_one, reported to the driver
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
        files = collect_run_files(scratch, job)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"files": files, "error": error, "placement": placement, "seconds": time.perf_counter() - started}


def _relative_inside(relative: str, profile_name: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != profile_name:
        raise ValueError(f"a worker returned a file outside results/{profile_name}: {relative!r}")
    return path


def failed_record(request: RunRequest, message: str) -> Dict[str, Any]:
    """The record of a run that left none of its own (its worker died on every attempt)."""
    dataset_name, scene_name = scene_identity(request.scene)
    return RunRecord(run_id=request.run_id, method=request.method, dataset=dataset_name, scene=scene_name, profile=request.profile.name,
                     seed=request.seed, capacity=request.capacity or DEFAULT_CAPACITY, commit=git_commit(), status="failed",
                     message=message).as_dict()


def store_run(results_root: Path, job: WorkerJob, payload: Dict[str, Any]) -> Dict[str, Any]:
    """Write what a task returned under the results folder: every file first, the record last."""
    record_name = f"{job.profile_name}/runs/{job.run_id}.json"
    files = payload["files"]
    for relative, data in files.items():
        if relative != record_name:
            write_atomically(Path(results_root) / _relative_inside(relative, job.profile_name), data)
    if record_name in files:
        record = json.loads(files[record_name])
    else:  # the run ended before run_one wrote anything (e.g. the notebook's kernel died)
        record = failed_record(job.request, payload["error"] or "the run wrote no record")
    record["ray"] = {**payload["placement"], "task_seconds": payload["seconds"]}
    write_record(Path(results_root) / record_name, record)
    return record


def task_resources(device_type: str, cpus_per_run: int) -> Dict[str, float]:
    if device_type == "cuda":
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": cpus_per_run}


def concurrent_slots(nodes: List[Dict[str, Any]], resources: Dict[str, float]) -> int:
    """How many runs the cluster's live nodes can hold at once with these reservations."""
    wanted = {{"num_cpus": "CPU", "num_gpus": "GPU"}[key]: amount for key, amount in resources.items() if amount}
    slots = 0
    for node in nodes:
        if node.get("Alive"):
            have = node.get("Resources", {})
            slots += min(int(have.get(name, 0) // amount) for name, amount in wanted.items())
    return slots


class RayExecutor:
    """Each run one Ray task; the driver (this process) writes every record and file."""

    name = "ray"

    def __init__(self, address: Optional[str] = None, retries: int = DEFAULT_RETRIES, cpus_per_run: Optional[int] = None,
                 before_run: Optional[Callable[[WorkerJob], None]] = None, heartbeat_seconds: float = HEARTBEAT_SECONDS):
        require_ray()  # fail before anything else when Ray is missing
        if retries < 0:
            raise ValueError(f"--retries must be 0 or more, not {retries}")
        if cpus_per_run is not None and cpus_per_run < 1:
            raise ValueError(f"--cpus-per-run must be 1 or more, not {cpus_per_run}")
        self.address = address
        self.retries = retries
        self.cpus_per_run = cpus_per_run
        self.before_run = before_run
        self.heartbeat_seconds = heartbeat_seconds

    def _connect(self) -> bool:
        """Join the cluster (or, without an address, the one running here or a new local one);
        True when this call started Ray, so that it also stops it."""
        ray = require_ray()
        if ray.is_initialized():
            return False
        try:
            ray.init(address=self.address, log_to_driver=True)
        except ConnectionError as error:
            raise ExecutorError(
                f"could not join a Ray cluster at {self.address!r}: {str(error).rstrip('.')}. Start one first "
                "(`ray start --head` on the head node, `ray start --address HEAD:6379` on the others) or leave --address out "
                "to start a local one."
            ) from error
        return True

    def run(self, plan: GridPlan) -> int:
        if not plan.runs:
            return 0
        ray = require_ray()
        profile = plan.runs[0].profile
        device_type = plan.runs[0].device
        # A reproduction of budgeted reference runs trains as they did, on as many CPUs.
        budgeted = profile.train_budget_seconds or plan.runs[0].iterations_from_reference
        cpus = self.cpus_per_run or (BUDGETED_RUN_CPUS if budgeted else ITERATION_RUN_CPUS)
        resources = task_resources(device_type, cpus)
        started_ray = self._connect()
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            slots = concurrent_slots(nodes, resources)
            described = ", ".join(f"{n['NodeManagerAddress']} ({', '.join(f'{k} {v:g}' for k, v in sorted(n['Resources'].items()) if k in ('CPU', 'GPU'))})"
                                  for n in nodes)
            if slots == 0:
                raise ExecutorError(f"no node of the Ray cluster can hold one run of the {plan.profile_name} profile on {device_type} "
                                    f"(each reserves {resources}); nodes: {described or 'none'}. Nothing was run.")
            print(f"== ray: {len(nodes)} node(s): {described}; each run reserves {resources}, {slots} at once; "
                  f"a run whose worker dies is retried {self.retries} time(s)", flush=True)
            return self._run_tasks(ray, plan, resources, cpus if device_type != "cuda" else None, slots, portable_path(Path(plan.results_root)))
        finally:
            if started_ray:
                ray.shutdown()

    def _run_tasks(self, ray, plan: GridPlan, resources: Dict[str, float], cpu_threads: Optional[int], slots: int,
                   results_root_portable: str) -> int:
        from ray.exceptions import RayError, RayTaskError

        options: Dict[str, Any] = dict(
            **resources,
            max_retries=self.retries,  # worker process or node died: run it again
            retry_exceptions=False,  # an exception in the run would happen again: record it
        )
        forwarded = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
        if forwarded:
            options["runtime_env"] = {"env_vars": forwarded}
        # max_calls=1: a fresh worker process per run, as the local grid gives each run its own kernel:
        # the record's peak memory is this run's, and no GPU memory or state is left from the last run.
        task = ray.remote(max_calls=1)(run_on_worker).options(**options)
        driver_commit = git_commit()
        # ref -> (what the task runs, the scene as the grid names it: plan.trains is keyed by that)
        pending: Dict[Any, Tuple[WorkerJob, str]] = {}
        for run in plan.runs:
            job = WorkerJob(run.with_scene(portable_scene(run.scene)), plan.runs_notebook(run), cpu_threads, str(plan.results_root),
                            results_root_portable, self.before_run)
            pending[task.remote(job)] = (job, run.scene)
        total, failures = len(pending), 0
        finished: List[Tuple[RunRequest, float]] = []

        def eta() -> str:
            # Runs in flight or queued spread over the slots; a rough figure, as Ray orders them itself.
            remaining = [job.request.with_scene(scene) for job, scene in pending.values()]
            return minutes(plan.eta_seconds(remaining, finished) / max(1, min(slots, len(remaining))))

        print(f"== ray: {total} runs submitted; grid ETA about {eta()}", flush=True)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.heartbeat_seconds)
                if not ready:
                    print(f"== ray: {total - len(pending)}/{total} finished, {len(pending)} running or queued; grid ETA about {eta()}", flush=True)
                    continue
                job, scene = pending.pop(ready[0])
                where, payload, record = "its node", None, None
                shown = job.request.with_scene(scene).describe()  # the scene as the grid names it
                try:
                    payload = ray.get(ready[0])
                except RayTaskError as exc:  # raised in the task around the run (the run's own errors come back in the payload)
                    error = f"{type(exc).__name__}: {str(exc)[:500]}"
                except RayError as exc:  # the worker process or its node died on every attempt
                    error = f"{type(exc).__name__} on each of {self.retries + 1} attempt(s): {str(exc)[:500]}"
                if payload is None:
                    write_record(Path(plan.results_root) / plan.profile_name / "runs" / f"{job.run_id}.json", failed_record(job.request, error))
                else:
                    where = f"{payload['placement']['hostname']} ({payload['placement']['node_ip']})"
                    record = store_run(plan.results_root, job, payload)
                    finished.append((job.request.with_scene(scene), payload["seconds"]))
                    error = payload["error"]
                    if record.get("commit") not in (None, driver_commit):
                        print(f"!! {job.run_id} ran code at commit {record.get('commit')} on {where}; this driver is at {driver_commit}", flush=True)
                done = total - len(pending)
                if error:
                    failures += 1
                    log = log_path(plan.results_root, plan.profile_name, job.run_id)
                    print(f"!! [{done}/{total}] {shown} failed on {where}: {error}" + (f"; log: {portable_path(log)}" if log.exists() else ""),
                          flush=True)
                else:
                    print(f"== [{done}/{total}] {shown} {record.get('status')} on {where} in {minutes(payload['seconds'])}"
                          f"{outcome(record).removeprefix(str(record.get('status')))}"
                          f"{cost_against_other_seeds(record, plan.results_root, plan.profile_name)}; grid ETA about {eta()}", flush=True)
        except BaseException:
            # Interrupted: every finished run is written; the runs still out are lost and run again on resume.
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return failures


def make_executor(name: str, address: Optional[str] = None, retries: int = DEFAULT_RETRIES, cpus_per_run: Optional[int] = None):
    if name == "local":
        if address is not None:
            raise ValueError("--address is for --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address, retries=retries, cpus_per_run=cpus_per_run)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
