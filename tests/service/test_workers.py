"""AerMPISimulator(processes=P) in a plain Python process (this pytest process).

The workers are real: ``mpiexec -n P python -m aer_mpi.service.worker``. One pool of
4 serves most tests (starting one costs seconds on a small machine); the
tests that kill workers or the caller use their own.
"""

import gc
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent import futures

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter
from qiskit.providers import JobStatus
from qiskit.quantum_info import Statevector

from aer_mpi import (
    AerMPISimulator,
    InsufficientMemoryError,
    InvalidInputError,
    WorkerLostError,
    WorkerStartError,
)
from aer_mpi.comm.watchdog import shared_memory_files
from conftest import fidelity, gone, long_circuit, save_statevector, wait_running

pytestmark = pytest.mark.skipif(
    any(os.environ.get(v) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")),
    reason="starts its own workers: run in a plain process, not under mpiexec",
)


def ghz(n, measure=True, clifford=True):
    qc = QuantumCircuit(n)
    qc.h(0)
    if not clifford:  # a T: a Clifford circuit too wide for memory would run on a stabilizer tableau
        qc.t(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    if measure:
        qc.measure_all()
    return qc


@pytest.fixture(scope="module")
def backend4():
    with AerMPISimulator(processes=4, seed_simulator=11) as backend:
        yield backend
    assert not gone(list(backend.workers.pids.values()), 15)


def test_ghz_16_qubits_on_4_workers(backend4):
    assert backend4.comm is None  # this process never joined MPI
    assert sorted(backend4.workers.pids) == [0, 1, 2, 3]
    assert all(pid != os.getpid() for pid in backend4.workers.pids.values())
    result = backend4.run([ghz(16), save_statevector(ghz(16, measure=False))], shots=2000).result(timeout=120)
    counts = result.get_counts(0)
    assert set(counts) == {"0" * 16, "1" * 16} and sum(counts.values()) == 2000
    assert abs(counts["0" * 16] - 1000) < 150
    meta = result.results[0].metadata
    assert meta["ranks"] == 4 and meta["working_ranks"] == 4 and meta["qubits_per_shard"] == 14
    assert result.metadata["workers"] == 4
    assert fidelity(Statevector(ghz(16, measure=False)).data, result.get_statevector(1)) > 1 - 1e-12


def test_a_deep_copy_shares_the_workers_until_the_last_is_gone():
    """Qiskit IBM Runtime's local mode (and so qiskit-experiments) deep-copies the backend: it failed
    on the pool's locks. The copy shares the workers; they stop when both backends are gone."""
    import copy

    backend = AerMPISimulator(processes=2)
    twin = copy.deepcopy(backend)
    twin.set_options(shots=7)
    assert backend.options.shots != 7 and twin.workers is backend.workers
    workers = backend.workers
    pids = list(workers.pids.values())
    del backend
    gc.collect()
    assert not workers.closed
    assert sum(twin.run(ghz(3)).result(timeout=120).get_counts().values()) == 7
    del twin
    gc.collect()
    assert workers.closed and not gone(pids, 15)


def test_cancel_running_22_qubit_job_then_next_job(backend4):
    pids = backend4.workers.pids
    job = backend4.run(long_circuit(22, 60), shots=10)
    wait_running(job)
    time.sleep(0.5)  # inside the engine, sweeping 22-qubit states
    start = time.monotonic()
    assert job.cancel() is True
    job.wait_for_final_state(timeout=60, wait=0.02)
    latency = time.monotonic() - start
    assert job.status() == JobStatus.CANCELLED
    assert latency < 20, latency  # "within seconds": ~2 s measured on 2 busy cores
    with pytest.raises(futures.CancelledError):
        job.result()
    result = backend4.run(save_statevector(ghz(12, measure=False)), shots=1).result(timeout=120)
    assert fidelity(Statevector(ghz(12, measure=False)).data, result.get_statevector()) > 1 - 1e-12
    assert backend4.workers.pids == pids  # the same workers went on


def test_result_timeout_does_not_harm_the_job(backend4):
    circuit = long_circuit(18, 30)
    job = backend4.run(circuit, shots=100, seed_simulator=5)
    with pytest.raises(futures.TimeoutError):
        job.result(timeout=0.01)
    assert job.status() in (JobStatus.QUEUED, JobStatus.RUNNING)
    result = job.result(timeout=120)  # awaited again
    assert job.status() == JobStatus.DONE and sum(result.get_counts().values()) == 100


def test_bad_input_on_workers_then_good_job(backend4):
    pids = backend4.workers.pids
    cases = [
        (lambda qc: qc.append(Gate("mystery", 1, []), [0]), {}, "unknown instruction 'mystery'"),
        (lambda qc: qc.rx(Parameter("theta"), 0), {}, "unbound parameter theta"),
        (lambda qc: qc.rz(math.nan, 1), {}, "non-finite angle nan"),
        (lambda qc: qc.h(0), {"shots": -1}, "shots=-1: expecting an integer >= 0"),
        (lambda qc: qc.h(0), {"precision": "quad"}, "precision='quad': expecting 'double' or 'single'"),
    ]
    for build, options, pattern in cases:
        qc = QuantumCircuit(3)
        build(qc)
        with pytest.raises(InvalidInputError, match=pattern):
            backend4.run(qc, **options).result()
    job = backend4.run(ghz(40, clifford=False))  # checked on the workers, before they allocate
    with pytest.raises(InsufficientMemoryError, match=r"40 qubits need .* MiB per rank on 4 ranks.*available.*use more ranks"):
        job.result(timeout=120)
    assert job.status() == JobStatus.ERROR
    result = backend4.run(ghz(10), shots=100).result(timeout=120)
    assert set(result.get_counts()) == {"0" * 10, "1" * 10}
    assert backend4.workers.pids == pids


def test_bad_processes_values(monkeypatch):
    for bad in (0, -2, 2.5, "4", True):
        with pytest.raises(InvalidInputError, match="processes="):
            AerMPISimulator(processes=bad)
    with pytest.raises(InvalidInputError, match="not both"):
        AerMPISimulator(processes=2, comm=object())
    monkeypatch.setenv("PMI_SIZE", "3")  # as if this process were one of 3 mpiexec ranks
    with pytest.raises(InvalidInputError, match="already one of 3 MPI ranks"):
        AerMPISimulator(processes=2)


def test_workers_that_cannot_start(monkeypatch):
    monkeypatch.setenv("AER_MPI_MPIEXEC", "/nonexistent/mpiexec")
    with pytest.raises(WorkerStartError, match="could not run '/nonexistent/mpiexec'.*AER_MPI_MPIEXEC"):
        AerMPISimulator(processes=2)
    monkeypatch.setenv("AER_MPI_MPIEXEC", "false")  # starts, then exits at once with code 1
    with pytest.raises(WorkerStartError, match=r"the 2 workers exited \(mpiexec exit code 1\) before they were ready"):
        AerMPISimulator(processes=2)


def test_close_during_a_job_ends_it_in_error():
    backend = AerMPISimulator(processes=2)
    pids = list(backend.workers.pids.values())
    job = backend.run(long_circuit(18, 400), shots=1)
    wait_running(job)
    backend.close()
    job.wait_for_final_state(timeout=30, wait=0.05)
    assert job.status() == JobStatus.ERROR
    assert "close()" in job.error_message()
    assert not gone(pids, 15)


def test_killed_worker_errors_caller_lives_new_backend_runs():
    backend = AerMPISimulator(processes=3)  # not a power of two: one worker idles
    try:
        meta = backend.run(ghz(8), shots=10).result(timeout=120).results[0].metadata
        assert meta["ranks"] == 3 and meta["working_ranks"] == 2 and meta["idle_ranks"] == 1
        old = backend.workers.pids
        job = backend.run(long_circuit(20, 200), shots=10)
        wait_running(job)
        time.sleep(0.5)
        segments = shared_memory_files(old.values())  # MPICH's, removed at MPI_Finalize
        os.kill(old[1], signal.SIGKILL)  # a working rank
        start = time.monotonic()
        job.wait_for_final_state(timeout=30, wait=0.05)
        assert job.status() == JobStatus.ERROR
        assert time.monotonic() - start < 30
        with pytest.raises(WorkerLostError, match=r"worker rank 1 of 3 \(pid \d+\) died") as info:
            job.result()
        assert info.value.rank == 1
        found = re.search(r"Worker output: (\S+)", str(info.value))
        if found:  # what the workers wrote is kept for the user to read
            assert os.path.getsize(found.group(1)) > 0
            shutil.rmtree(os.path.dirname(found.group(1)))
        else:  # they wrote nothing: no empty log is left behind in /tmp
            assert "The workers wrote no output." in str(info.value)
            assert not os.path.exists(os.path.dirname(backend.workers.log_path))
        assert not gone(list(old.values()), 15)  # the other workers were stopped
        assert [f for f in segments if os.path.exists(f)] == []  # and their shared memory removed
        # the same backend restarts its workers for the next job
        result = backend.run(ghz(9), shots=50).result(timeout=120)
        assert set(result.get_counts()) == {"0" * 9, "1" * 9}
        assert set(backend.workers.pids.values()).isdisjoint(old.values())
    finally:
        backend.close()
    fresh = AerMPISimulator(processes=2)  # and a new backend runs too
    result = fresh.run(save_statevector(ghz(7, measure=False)), shots=1).result(timeout=120)
    assert fidelity(Statevector(ghz(7, measure=False)).data, result.get_statevector()) > 1 - 1e-12
    fresh_pids = list(fresh.workers.pids.values())
    del fresh  # dropped without close(): collected, its workers stop
    gc.collect()
    assert not gone(fresh_pids, 15)
    with pytest.raises(InvalidInputError, match="closed"):
        backend.run(ghz(3)).result()


CALLER = textwrap.dedent(
    """
    import os, sys, time, psutil
    from qiskit import QuantumCircuit
    from aer_mpi import AerMPISimulator

    backend = AerMPISimulator(processes=2)
    qc = QuantumCircuit(5)
    qc.h(0)
    qc.measure_all()
    assert sum(backend.run(qc, shots=20).result().get_counts().values()) == 20
    if sys.argv[1] == "hang":  # the test SIGKILLs this process mid-job: no atexit, no close()
        long = QuantumCircuit(18)
        for layer in range(400):  # a brickwork: fusion cannot collapse it
            long.h(range(18))
            long.cx(range(layer % 2, 17, 2), range(layer % 2 + 1, 18, 2))
        job = backend.run(long, shots=1)
        while job.status().name != "RUNNING":
            time.sleep(0.01)
        time.sleep(0.5)
    family = [p.pid for p in psutil.Process().children(recursive=True)]
    print("FAMILY", " ".join(map(str, family)), flush=True)
    if sys.argv[1] == "hang":
        time.sleep(600)
    # "exit": leave without close(); atexit stops the workers
    """
)


def test_no_orphans_after_the_caller_exits(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    callers = {
        mode: subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True, env=env)
        for mode in ("exit", "hang")
    }
    family = {}
    try:
        for mode, proc in callers.items():
            for line in proc.stdout:
                if line.startswith("FAMILY"):
                    family[mode] = [int(p) for p in line.split()[1:]]
                    break
            assert len(family.get(mode, [])) >= 3, (mode, family)  # mpiexec, a proxy, 2 workers
        callers["hang"].kill()
        assert callers["exit"].wait(timeout=60) == 0
        callers["hang"].wait(timeout=60)
        for mode in callers:
            assert not gone(family[mode], 30), (mode, family[mode])
    finally:
        for proc in callers.values():
            if proc.poll() is None:
                proc.kill()
