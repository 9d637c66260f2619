"""The suite's notebooks, executed with papermill: the run notebook (one per run) and the
comparison; executed copies are made portable (no absolute paths) and exported as a reader's page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from akdqff_bench.paths import NOTEBOOKS, REPO_ROOT, portable_path, portable_text
from bench_base.files import atomic_path, write_atomically

RUN_NOTEBOOK = NOTEBOOKS / "run_single.ipynb"
COMPARE_NOTEBOOK = NOTEBOOKS / "compare.ipynb"


def execute_notebook(source: Path, target: Path, parameters: dict) -> None:
    import logging

    import papermill

    # papermill forwards the kernel's output through its logger: write it where this process's
    # stdout is now (the console for a single run, the run's log file in a grid: executors.output_to).
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    # The kernel runs in the repository root, so a results root inside the repository is passed
    # relative to it: the executed notebook is committed and must not name this machine's folders.
    parameters = {key: portable_path(Path(value)) if key in ("results_root", "reference_root") and value else value
                  for key, value in parameters.items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    # papermill rewrites its output after every cell: it writes beside the target, which appears
    # whole when the kernel is done (a killed run leaves no half-executed notebook under the name).
    running = running_path(target)
    executed = False
    try:
        papermill.execute_notebook(
            str(source), str(running), parameters=parameters, log_output=True, progress_bar=False, cwd=str(REPO_ROOT), kernel_name="python3"
        )
        executed = True
    finally:  # a failed run's notebook is written too, traceback included
        logger.removeHandler(handler)
        if running.exists():
            try:
                make_notebook_portable(running, target)
            except Exception:
                if executed:
                    raise
                # Written half way (a full disk): the notebook's own error is the one to report.
            finally:
                running.unlink(missing_ok=True)


def run_notebook_path(results_root: Path, profile_name: str, run_id: str) -> Path:
    """Where a grid run's executed notebook goes."""
    return Path(results_root) / profile_name / "notebooks" / f"{run_id}.ipynb"


def running_path(target: Path) -> Path:
    """Where papermill writes ``target`` while the notebook executes (hidden; renamed when it ends)."""
    return target.with_name(f".{target.stem}.running.ipynb")


def settle_leftover(target: Path, finished: bool) -> None:
    """The notebook a killed process left beside ``target`` while it executed: kept as the run's
    notebook when the run ``finished`` (stopped after its record was complete) and has none, then
    removed. Only a process holding the results folder's lock may call it (no run executes then)."""
    running = running_path(target)
    if not running.exists():
        return
    if finished and not target.exists():
        try:
            make_notebook_portable(running, target)
        except Exception:  # written half way when the process died: nothing to keep
            pass
    running.unlink(missing_ok=True)


def make_notebook_portable(path: Path, target: Optional[Path] = None) -> None:
    """Write the executed notebook at ``path`` to ``target`` (default: over itself), atomically, with
    the repository's absolute location taken out of its text: papermill's metadata (input/output
    path) and what libraries print (warnings and log lines name their source files, nerfstudio
    prints its output folder). Images are left alone."""
    import nbformat

    def portable(node):
        if isinstance(node, str):
            return portable_text(node)
        if isinstance(node, list):
            return [portable(item) for item in node]
        if isinstance(node, dict):
            return {key: value if key.startswith("image/") else portable(value) for key, value in node.items()}
        return node

    target = Path(target or path)
    notebook = nbformat.read(path, as_version=4)
    if "papermill" in notebook.metadata:
        notebook.metadata["papermill"]["output_path"] = str(target)
    with atomic_path(target) as tmp:
        nbformat.write(nbformat.from_dict(portable(notebook)), tmp)


def export_html(notebook: Path) -> Path:
    """The executed notebook as a reader's page: no code, no prompts, no stderr (warnings name
    files on this machine); tables and figures as the notebook shows them."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": "AKDQFF benchmark: results"}})
    html = notebook.with_suffix(".html")
    write_atomically(html, body)
    print(f"== comparison: {notebook} and {html}", flush=True)
    return html


# The run notebook's cell that draws the method's own evidence carries this tag; the grid's time
# estimate takes that cell's duration from earlier notebooks.
EVIDENCE_TAG = "evidence"


def is_evidence_cell(cell: dict) -> bool:
    """The evidence cell of an executed run notebook (notebooks made before the tag: the one that called method_figures)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return EVIDENCE_TAG in tags or "report.method_figures(" in "".join(cell.get("source", ""))
