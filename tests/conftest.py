"""Shared test helpers: rank counts, kernel back ends, oracles.

Multi-rank tests use pytest-isolate-mpi: a test marked
``@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)`` runs once per rank
count, each as its own ``mpirun`` job with a timeout, so a hang fails in
seconds and a crash fails one test, not the suite. Inside such a test, the
``comm`` fixture is MPI.COMM_WORLD of that job.

Rank counts come from the constants below, never literal lists, so the suite's
coverage (and its cost) is decided in one place.

Oracles in multi-rank jobs: an outside oracle (Qiskit Aer, ``Statevector``, ``StabilizerState``)
that takes seconds is computed at one rank; at more ranks the job checks that it gets what one
rank gets with the same seed (``comm=MPI.COMM_SELF`` on rank 0), which is what the project promises
and costs a fraction: rank 0 computing an oracle while the other ranks wait was most of several
jobs' time (a 70-qubit ``StabilizerState`` 22 s of a 30 s job).

Kernel back ends: a test that takes the ``kernels`` fixture runs once with
the numba kernels (what users get by default) and once with the numpy ones.
The parameter is part of the test id (``test_x[numba-2]``), and the mpirun
sub-session is started with that id, so each rank selects the same parameter
and the fixture sets ``AER_MPI_KERNELS`` there, for every backend the test
builds (COMM_SELF references and primitives included). Check it took with
``assert_kernels(result, kernels)``. Tests without the fixture run the numpy
kernels: a process that never selects numba never imports it (~1.5 s saved
per rank per job).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

# Multi-rank jobs oversubscribe a 2-core machine; keep BLAS to one thread per rank.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The default for tests that do not take the ``kernels`` fixture (see above).
os.environ.setdefault("AER_MPI_KERNELS", "numpy")

#: Timeout (seconds) of one multi-rank test job, start-up included.
MPI_TIMEOUT = 120

#: Rank counts of every distributed behaviour (DESIGN.md, Testing).
RANKS = [1, 2, 4]
#: The same plus 8 ranks, for cases small enough to afford it.
RANKS_SMALL = [*RANKS, 8]
#: Rank counts that are not a power of two: the largest power of two works, the rest idle.
RANKS_ODD = [3, 5]
#: Bad input, failures and cancel: one rank, a power of two, and one with an idle rank.
RANKS_WITH_IDLE = [1, 2, 3]

#: Gate kernel back ends; the ``kernels`` fixture runs a test with each.
KERNELS = ["numba", "numpy"]

#: Set by pytest-isolate-mpi in its mpirun sub-sessions.
_IN_MPI_SUBSESSION = "PYTEST_ISOLATE_MPI_IS_FORKED"


def working_ranks(size: int) -> int:
    """Ranks that hold a shard on ``size`` ranks: the largest power of two <= size."""
    return 1 << (size.bit_length() - 1)


def mpiexec_or_skip() -> str:
    """The ``mpiexec`` beside this Python (the mpich extra's), else on PATH; skips the test without one."""
    import shutil
    from pathlib import Path

    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        pytest.skip("no mpiexec: install the mpich extra (pip install 'aer-mpi[mpich]')")
    return found


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


def assert_kernels(result, name: str) -> None:
    """Every experiment of ``result`` ran with the ``name`` kernels."""
    used = [r.metadata["kernels"] for r in result.results]
    assert used and all(k == name for k in used), (name, used)


@pytest.fixture(params=KERNELS)
def kernels(request, monkeypatch):
    """The gate kernels of this test ("numba" or "numpy"), set through AER_MPI_KERNELS."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("AER_MPI_KERNELS", request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# -- numba's on-disk cache -------------------------------------------------------
# Every mpirun job is fresh processes; with numba's cache (cache=True, next to
# aer_mpi/kernels/numba_backend.py) warm, a process loads the compiled kernels in
# ~1.5 s, with it cold each rank of each job compiles them (~10 s, and ranks of
# one job race to write the cache). So the main session compiles them once,
# before any test, in a child process (the main session's own kernel selection
# stays as it is).

_WARM_NUMBA = textwrap.dedent(
    """
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import DiagonalGate, UnitaryGate
    from qiskit.quantum_info import SparsePauliOp, random_unitary
    from aer_mpi import AerMPISimulator
    from aer_mpi.library import save_expectation_value

    qc = QuantumCircuit(6, global_phase=0.2)
    qc.h(range(6))
    qc.cx(0, 5)
    qc.rz(0.1, 2)
    qc.append(UnitaryGate(random_unitary(8, seed=1)), [0, 3, 5])
    qc.append(DiagonalGate([1, 1j, -1, -1j]), [1, 4])
    expval = qc.copy()
    save_expectation_value(expval, SparsePauliOp(["XYZIIZ", "ZZIIII"]), label="e")  # the Pauli sums' kernel
    qc.measure_all()
    for precision in ("double", "single"):
        for fusion in (True, False):
            backend = AerMPISimulator(comm=MPI.COMM_SELF, kernels="numba", fusion_enable=fusion, fusion_threshold=1)
            backend.run(qc, shots=4, precision=precision).result()
        backend.run(expval, shots=1, precision=precision).result()
    """
)


def pytest_collection_modifyitems(config, items):
    """Leave out the numpy kernels at 8 ranks: on 2 cores they cost minutes and test nothing that
    the numba kernels at 8 ranks and the numpy kernels at 1, 2 and 4 ranks do not."""
    if os.environ.get(_IN_MPI_SUBSESSION):
        return
    dropped = [item for item in items if "[numpy-8]" in item.name]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if "[numpy-8]" not in item.name]


def pytest_collection_finish(session):
    if os.environ.get(_IN_MPI_SUBSESSION) or session.config.option.collectonly:
        return
    wants_numba = any(
        getattr(item, "callspec", None) is not None and item.callspec.params.get("kernels") == "numba"
        for item in session.items
    )
    if not wants_numba:
        return
    try:
        import numba  # noqa: F401
    except ImportError:
        return  # the numba tests skip
    proc = subprocess.run(
        [sys.executable, "-c", _WARM_NUMBA], capture_output=True, text=True, timeout=MPI_TIMEOUT,
        env={**os.environ, "AER_MPI_KERNELS": "numba"},
    )
    if proc.returncode != 0:  # not fatal: the tests say what is wrong
        print(f"\nwarming numba's cache failed:\n{proc.stdout}{proc.stderr}", file=sys.stderr)


# -- processes (worker pools) -------------------------------------------------------------------
def wait_running(job, limit=60):
    """Wait until ``job`` is RUNNING (fails after ``limit`` seconds)."""
    from qiskit.providers import JobStatus

    deadline = time.monotonic() + limit
    while job.status() != JobStatus.RUNNING:
        assert time.monotonic() < deadline, job.status()
        time.sleep(0.01)


def gone(pids, limit):
    """Wait until none of ``pids`` runs (zombies count as gone); return those still there."""
    deadline = time.monotonic() + limit
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def long_circuit(n, layers):
    """A brickwork of h and cx: gate fusion cannot collapse it, so its cost grows with ``layers``."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n)
    for layer in range(layers):
        qc.h(range(n))
        start = layer % 2
        qc.cx(range(start, n - 1, 2), range(start + 1, n, 2))
    qc.measure_all()
    return qc
