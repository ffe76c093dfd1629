"""Qiskit Aer's modules of objects that are not simulators (noise models and their utilities) under
aer_mpi's names, so that a notebook whose ``qiskit_aer`` imports were replaced still runs: one
definition of each, Aer's, never a copy. qiskit-aer is needed for these (``pip install
"aer-mpi[noise]"``), never for ideal runs."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType


def forward(alias: str, target: str, namespace: dict) -> ModuleType:
    """Fill ``namespace`` (module ``alias``'s globals) with module ``target``'s public names, and
    register its submodules under ``alias`` (``from aer_mpi.noise.errors import ...``: the import
    system finds a dotted name in sys.modules before it asks whether its parent is a package)."""
    try:
        module = importlib.import_module(target)
    except ImportError as exc:  # pragma: no cover - the test extra installs qiskit-aer
        raise ImportError(f"{alias} is Qiskit Aer's {target} and needs qiskit-aer: pip install \"aer-mpi[noise]\" "
                          f"(or pip install qiskit-aer)") from exc
    names = sorted(name for name in vars(module) if not name.startswith("_"))
    namespace.update({name: getattr(module, name) for name in names})
    namespace["__all__"] = names
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=target + "."):
        try:
            submodule = importlib.import_module(info.name)
        except Exception:  # pragma: no cover - a submodule qiskit-aer itself cannot import
            continue
        sys.modules.setdefault(alias + info.name[len(target):], submodule)
    return module
