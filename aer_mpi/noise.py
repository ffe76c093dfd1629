"""Aer's noise objects under aer_mpi's name: ``from aer_mpi.noise import NoiseModel,
depolarizing_error`` is ``from qiskit_aer.noise import ...``, so that a notebook whose
``qiskit_aer`` imports were replaced by ``aer_mpi`` still runs.

aer_mpi reads Aer's own ``NoiseModel`` (``noise_model=``, ``from_backend``; see docs/noise.md)
rather than a copy of it: one noise model for both simulators, built by the library that defines
it. qiskit-aer is therefore needed for noise (``pip install "aer-mpi[noise]"``), never for ideal
runs. Names only: ``aer_mpi.noise.errors.standard_errors`` works as an attribute, but submodules
are imported from ``qiskit_aer.noise`` itself.
"""

try:
    import qiskit_aer.noise as _aer_noise
except ImportError as exc:  # pragma: no cover - the test extra installs qiskit-aer
    raise ImportError(
        "aer_mpi.noise is Qiskit Aer's noise module (NoiseModel, depolarizing_error, ...) and needs "
        "qiskit-aer: pip install \"aer-mpi[noise]\" (or pip install qiskit-aer)"
    ) from exc

__all__ = sorted(name for name in vars(_aer_noise) if not name.startswith("_"))
globals().update({name: getattr(_aer_noise, name) for name in __all__})
