"""Cancel lands everywhere, and batches keep what finished (hardening, issue 13), at 1, 2 and 3 ranks.

Every test ends with a good job on the same ranks, which proves no rank was
left inside a collective.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent import futures

import pytest
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS_WITH_IDLE, working_ranks

#: A cancel must land within this many seconds (a loaded 2-core machine).
CANCEL_WITHIN = 8.0


def ghz(n, name=None, clifford=True):
    qc = QuantumCircuit(n, n, name=name or f"ghz{n}")
    qc.h(0)
    if not clifford:  # a T: a Clifford circuit too wide for memory would run on a stabilizer tableau
        qc.t(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.measure(range(n), range(n))
    return qc


def long_circuit(n=18, layers=1000):
    # seconds even on an idle machine, so the job is still running when it is cancelled at 1.5 s
    # (300 layers ended before that in a CI dry run at 2 ranks)
    qc = QuantumCircuit(n, n, name="long")
    for layer in range(layers):
        for q in range(n):
            qc.rx(0.1 + 0.01 * ((layer + q) % 7), q)
        for q in range(layer % 2, n - 1, 2):
            qc.cx(q, q + 1)
    qc.measure(range(n), range(n))
    return qc


def good_job_after(backend, comm):
    result = backend.run(ghz(3), shots=100, seed_simulator=2).result()
    counts = result.get_counts()
    assert set(counts) <= {"000", "111"} and sum(counts.values()) == 100
    assert all(c == counts for c in comm.allgather(counts))


def cancel_after(job, comm, seconds, cancel_rank=0):
    """Cancel ``job`` on ``cancel_rank`` ``seconds`` after it started; the seconds it took to end."""
    time.sleep(seconds)
    running = comm.allgather(job.status().name)
    sent = time.monotonic()
    if comm.rank == cancel_rank:
        assert job.cancel() is True
    with pytest.raises(futures.CancelledError) as caught:
        job.result(timeout=60)
    return running, time.monotonic() - sent, caught.value


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_a_40_million_shot_job_is_cancelled_while_sampling(comm):
    backend = AerMPISimulator(comm=comm, min_local_qubits=2)
    job = backend.run(ghz(4), shots=4 * 10**7, seed_simulator=3)
    # a cancel on the last working rank stops every rank (the check between sampling chunks);
    # an idle rank (3 ranks: rank 2) takes no part in the checks (docs/reliability.md)
    running, seconds, _ = cancel_after(job, comm, 1.5, cancel_rank=working_ranks(comm.size) - 1)
    assert all(state == "RUNNING" for state in running), running  # still sampling when cancelled
    assert seconds < CANCEL_WITHIN, seconds
    assert job.status().name == "CANCELLED"
    good_job_after(backend, comm)


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_small_circuit_batch_is_cancelled_on_every_rank_and_keeps_what_finished(comm):
    backend = AerMPISimulator(comm=comm)
    # small circuits, each about a second of sampling: the cancel lands between them
    circuits = [ghz(3, "first")] + [ghz(5, f"c{k}") for k in range(40)]
    job = backend.run(circuits, shots=2 * 10**6, seed_simulator=3)
    running, seconds, error = cancel_after(job, comm, 1.5)
    assert running[0] == "RUNNING"
    assert seconds < CANCEL_WITHIN, seconds
    partial = error.__cause__.result  # what finished, the rest marked cancelled
    assert partial.success is False and len(partial.results) == 41
    done = [r for r in partial.results if r.success]
    cancelled = [r for r in partial.results if not r.success]
    assert cancelled and all(r.status.startswith("CANCELLED") for r in cancelled)
    assert all(sum(r.data.counts.values()) == 2 * 10**6 for r in done)
    good_job_after(backend, comm)


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_cancel_or_a_signal_on_the_last_rank_stops_every_rank_even_an_idle_one(comm):
    """At 3 ranks the last rank idles while ranks 0 and 1 run: its cancel() and its stop
    request (a signal that reached it alone) reach rank 0's checkpoints as a notice."""
    from aer_mpi.engine import interrupts

    backend = AerMPISimulator(comm=comm)
    last = comm.size - 1
    job = backend.run(long_circuit(), shots=10, seed_simulator=1)
    running, seconds, _ = cancel_after(job, comm, 1.5, cancel_rank=last)
    assert all(state == "RUNNING" for state in running), running
    assert seconds < CANCEL_WITHIN, seconds
    assert all(s == "CANCELLED" for s in comm.allgather(job.status().name))
    good_job_after(backend, comm)

    job = backend.run(long_circuit(), shots=10, seed_simulator=1)
    time.sleep(1.5)
    running = comm.allgather(job.status().name)
    sent = time.monotonic()
    if comm.rank == last:
        interrupts.request_stop(signal.SIGTERM)  # as the CLI's handler does
    try:
        with pytest.raises(futures.CancelledError):
            job.result(timeout=60)
    finally:
        interrupts.clear_stop()
    assert all(state == "RUNNING" for state in running), running
    assert time.monotonic() - sent < CANCEL_WITHIN
    comm.Barrier()
    good_job_after(backend, comm)

    # Slurm's SIGUSR1 ("checkpoint and stop") that reached the idle rank alone: rank 0 takes the
    # signal as its own, so the checkpoint is written (it stopped without one)
    import shutil
    import tempfile

    from aer_mpi.engine.checkpoint import MANIFEST

    directory = comm.bcast(tempfile.mkdtemp(prefix="aer_mpi-idle-stop-") if comm.rank == 0 else None)
    job = backend.run(long_circuit(), shots=10, seed_simulator=1, checkpoint_dir=directory)
    time.sleep(1.5)
    if comm.rank == last:
        interrupts.request_stop(signal.SIGUSR1)
    try:
        with pytest.raises(futures.CancelledError, match="checkpoint"):
            job.result(timeout=60)
    finally:
        interrupts.clear_stop()
    comm.Barrier()
    if comm.rank == 0:
        assert MANIFEST in os.listdir(directory)
        shutil.rmtree(directory)
    good_job_after(backend, comm)


def test_cancel_of_a_finished_job_returns_false():
    from mpi4py import MPI

    job = AerMPISimulator(comm=MPI.COMM_SELF).run(ghz(2), shots=10)
    job.result()
    assert job.cancel() is False and job.status().name == "DONE"


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_ctrl_c_in_result_cancels_the_job_on_every_rank(comm):
    backend = AerMPISimulator(comm=comm)
    job = backend.run(long_circuit(), shots=10, seed_simulator=1)
    # Ctrl-C: under mpiexec every rank gets the SIGINT; here each rank sends it to itself, 1.5 s
    # after run() (which every rank enters together). A rank whose job another rank's Ctrl-C
    # has already cancelled (ranks drift apart on a loaded machine) sees the cancel instead,
    # and gets no SIGINT, which would otherwise land after the test.
    interrupted = threading.Event()

    def ctrl_c():
        if not job.in_final_state():  # DONE, CANCELLED or ERROR (done() is DONE only)
            interrupted.set()
            os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(1.5, ctrl_c)
    timer.start()
    start = time.monotonic()
    with pytest.raises((KeyboardInterrupt, futures.CancelledError)) as caught:
        job.result()
    timer.join()
    assert caught.type is (KeyboardInterrupt if interrupted.is_set() else futures.CancelledError)
    assert any(comm.allgather(interrupted.is_set()))  # a Ctrl-C did it
    assert time.monotonic() - start < 1.5 + CANCEL_WITHIN
    assert job.status().name == "CANCELLED"
    good_job_after(backend, comm)


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_a_batch_whose_last_circuit_fails_keeps_the_others(comm):
    backend = AerMPISimulator(comm=comm)
    big = ghz(27, "big", clifford=False)  # 2 GiB of state: over max_memory_mb=100
    result = backend.run([ghz(3, "a"), ghz(4, "b"), big], shots=50, seed_simulator=5, max_memory_mb=100).result()
    assert result.success is False
    assert [r.success for r in result.results] == [True, True, False]
    assert result.get_counts(0) and sum(result.get_counts(1).values()) == 50
    assert "InsufficientMemoryError" in result.results[2].status and "MiB" in result.results[2].status
    assert all(s == result.results[2].status for s in comm.allgather(result.results[2].status))
    # every circuit failing is still the job's error (as before)
    with pytest.raises(Exception) as caught:
        backend.run(big, shots=5, max_memory_mb=100).result()
    assert type(caught.value).__name__ == "InsufficientMemoryError"
    good_job_after(backend, comm)
