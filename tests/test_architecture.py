"""The layout's rules, read from the code: the harness names no method and imports none, a method
imports no harness, the base imports neither, and no package imports itself in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HARNESS = "akdqff_bench"
BASE = "bench_base"
METHOD_PACKAGES = ("akdqff_method", "baselines", "references")


def _imports(path: Path):
    """Every module an import statement in ``path`` names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield base
            for alias in node.names:  # "from pkg import module"
                yield f"{base}.{alias.name}"


def _top(name: str) -> str:
    return name.split(".")[0]


def _modules(package: str):
    return sorted((REPO / package).rglob("*.py"))


def test_the_harness_imports_no_method():
    offending = [(str(p.relative_to(REPO)), name) for p in _modules(HARNESS) for name in _imports(p) if _top(name) in METHOD_PACKAGES]
    assert not offending


def test_no_method_imports_the_harness():
    offending = [(str(p.relative_to(REPO)), name) for package in METHOD_PACKAGES for p in _modules(package)
                 for name in _imports(p) if _top(name) == HARNESS]
    assert not offending


def test_the_base_imports_neither_the_harness_nor_a_method():
    offending = [(str(p.relative_to(REPO)), name) for p in _modules(BASE) for name in _imports(p)
                 if _top(name) in (HARNESS, *METHOD_PACKAGES)]
    assert not offending


ORCHESTRATION = ("grid", "executors", "runner", "request", "sweeps")
PRESENTATION = ("akdqff_bench.report", "akdqff_bench.comparison")


def test_orchestration_imports_no_presentation():
    """The grid, the executors, the runner and the sweeps read records through ``akdqff_bench.groups``;
    the comparison page (``report``, ``comparison``) sits above them, never below (anywhere in the
    file: an import inside a function counts too)."""
    offending = [(module, name) for module in ORCHESTRATION for name in _imports(REPO / HARNESS / f"{module}.py")
                 if any(name == p or name.startswith(p + ".") for p in PRESENTATION)]
    assert not offending


def test_no_module_imports_itself_in_a_circle_at_import_time():
    """Only top-level imports run at import time (imports inside functions run when called)."""
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
               for package in (HARNESS, BASE, *METHOD_PACKAGES) for p in _modules(package)}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join(stack + [node, nxt]))
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])


def test_the_harness_names_no_method():
    """No method's name as a string in the harness's code (its docstrings and comments may name them)."""
    names = {"nerf", "akdqff", "plenoxels", "block-nerf", "splatfacto", "instant-ngp", "nerfacto", "tensorf", "vanilla-nerf"}
    found = []
    for path in _modules(HARNESS):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and node.value in names:
                found.append((str(path.relative_to(REPO)), node.value, node.lineno))
    assert not found


def test_importing_a_method_leaves_the_harness_out():
    code = "import sys, akdqff_method.config, baselines.nerf.config, baselines.plenoxels.config, baselines.block_nerf.config; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] == 'akdqff_bench'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
