"""Aer's noise objects under aer_mpi's name: ``from aer_mpi.noise import NoiseModel,
depolarizing_error`` is ``from qiskit_aer.noise import ...``, so that a notebook whose
``qiskit_aer`` imports were replaced by ``aer_mpi`` still runs.

aer_mpi reads Aer's own ``NoiseModel`` (``noise_model=``, ``from_backend``; see docs/noise.md)
rather than a copy of it: one noise model for both simulators, built by the library that defines
it. qiskit-aer is therefore needed for noise (``pip install "aer-mpi[noise]"``), never for ideal
runs. Its submodules are Aer's too: ``from aer_mpi.noise.errors import depolarizing_error``
imports ``qiskit_aer.noise.errors`` (registered under aer_mpi's name when this module loads).
"""

import importlib
import pkgutil
import sys

try:
    import qiskit_aer.noise as _aer_noise
except ImportError as exc:  # pragma: no cover - the test extra installs qiskit-aer
    raise ImportError(
        "aer_mpi.noise is Qiskit Aer's noise module (NoiseModel, depolarizing_error, ...) and needs "
        "qiskit-aer: pip install \"aer-mpi[noise]\" (or pip install qiskit-aer)"
    ) from exc

__all__ = sorted(name for name in vars(_aer_noise) if not name.startswith("_"))
globals().update({name: getattr(_aer_noise, name) for name in __all__})

# `from aer_mpi.noise.errors import ...` (and .device, .passes, .noise_model, ...): the import system
# finds a dotted name in sys.modules before it asks whether its parent is a package
for _info in pkgutil.walk_packages(_aer_noise.__path__, prefix="qiskit_aer.noise."):
    try:
        _module = importlib.import_module(_info.name)
    except Exception:  # pragma: no cover - a submodule qiskit-aer itself cannot import
        continue
    sys.modules.setdefault(__name__ + _info.name[len("qiskit_aer.noise"):], _module)
