"""The layers of DESIGN.md, checked on the source: every module imports, no
import cycle (function-level imports included), and no layer imports one above it."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import aer_mpi

ROOT = Path(aer_mpi.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at any depth of its code (aer_mpi's resolved to modules)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in MODULES else base)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _internal(name: str) -> set[str]:
    return {m for m in GRAPH[name] if m in MODULES and m != name}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith("__main__")))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_walk_packages_finds_the_same_modules():
    walked = {m.name for m in pkgutil.walk_packages(aer_mpi.__path__, "aer_mpi.")} | {"aer_mpi"}
    assert walked == set(MODULES)


def test_no_import_cycles():
    """Tarjan's strongly connected components; a package's __init__ re-exporting its
    own modules is not a cycle of the code, so package -> own submodule edges are kept
    only one way (module -> package __init__ edges of a module inside it are dropped)."""

    def edges(name: str) -> set[str]:
        out = set()
        for target in _internal(name):
            # ``from aer_mpi.x import y`` inside aer_mpi.x.z runs aer_mpi.x/__init__ first anyway
            if name.startswith(target + "."):
                continue
            out.add(target)
        return out

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    assert cycles == [], f"import cycles: {cycles}"


LOW_LAYERS = ("aer_mpi.kernels", "aer_mpi.comm", "aer_mpi.plan", "aer_mpi.engine")
HIGH = ("aer_mpi.qobj", "aer_mpi.service", "aer_mpi.provider", "aer_mpi.cli", "aer_mpi.library", "aer_mpi.primitives")


def _in(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _forbidden(rule_for: tuple, forbidden: tuple) -> list[str]:
    bad = []
    for name in MODULES:
        if not _in(name, rule_for):
            continue
        for target in GRAPH[name]:
            if _in(target, forbidden) or target == "aer_mpi":
                bad.append(f"{name} imports {target}")
    return sorted(bad)


#: The one Qiskit module below the Qiskit layer: aer_mpi's errors are QiskitErrors, as Aer's are, so that
#: ``except QiskitError`` in users' code catches them (docs/architecture.md, "Errors").
ERRORS_BASE = "aer_mpi.errors imports qiskit.exceptions"


def test_low_layers_know_no_qiskit_and_nothing_above():
    bad = _forbidden(LOW_LAYERS + ("aer_mpi.ir", "aer_mpi.errors", "aer_mpi.environment"), ("qiskit",) + HIGH)
    assert [b for b in bad if b != ERRORS_BASE] == []


def test_comm_knows_no_plan_or_engine():
    assert _forbidden(("aer_mpi.comm",), ("aer_mpi.plan", "aer_mpi.engine")) == []


def test_kernels_know_no_mpi():
    assert _forbidden(("aer_mpi.kernels",), ("aer_mpi.comm", "mpi4py", "aer_mpi.plan", "aer_mpi.engine")) == []


def test_plan_knows_no_mpi():
    assert _forbidden(("aer_mpi.plan",), ("aer_mpi.comm", "mpi4py", "aer_mpi.engine")) == []


def test_ir_errors_and_environment_are_the_bottom():
    below = ("aer_mpi.kernels", "aer_mpi.comm", "mpi4py", "aer_mpi.ir") + LOW_LAYERS + HIGH
    assert _forbidden(("aer_mpi.ir", "aer_mpi.errors", "aer_mpi.environment"), below) == []
