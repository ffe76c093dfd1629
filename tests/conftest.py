"""Shared test helpers.

Multi-rank tests use pytest-isolate-mpi: a test marked
``@pytest.mark.mpi(ranks=[1, 2, 4], timeout=...)`` runs once per rank count,
each as its own ``mpirun`` job with a timeout, so a hang fails in seconds and
a crash fails one test, not the suite. Inside such a test, the ``comm``
fixture is MPI.COMM_WORLD of that job.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

# Multi-rank jobs oversubscribe a 2-core machine; keep BLAS to one thread per rank.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Multi-rank jobs start fresh processes; the numba kernels cost each one ~1-2 s
# of import and cache loading, so the suite runs the numpy kernels unless a
# test asks for numba (kernels="numba"), as tests/test_kernels_jit.py and
# tests/test_fusion_mpi.py do.
os.environ.setdefault("AER_MPI_KERNELS", "numpy")

#: Timeout (seconds) of one multi-rank test job, start-up included.
MPI_TIMEOUT = 120


def fidelity(a, b) -> float:
    a = np.asarray(a, dtype=complex).ravel()
    b = np.asarray(b, dtype=complex).ravel()
    return float(abs(np.vdot(a, b)) ** 2 / (np.vdot(a, a).real * np.vdot(b, b).real))


def save_statevector(circuit, label: str = "statevector"):
    """A copy of ``circuit`` ending with aer_mpi's own save_statevector."""
    from aer_mpi.library import SaveStatevector

    out = circuit.copy()
    out.append(SaveStatevector(out.num_qubits, label=label), out.qubits)
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
