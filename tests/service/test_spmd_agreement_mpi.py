"""SPMD agreement before every run() (hardening, issue 13).

Under mpiexec every rank calls run(): an error raised on one rank before the
job starts is raised on all, different circuits or options are refused on
all, and a rank that ended or skipped a run() makes the others fail within
AER_MPI_AGREE_TIMEOUT, naming it. After each failure a good job runs right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS_WITH_IDLE


def bell(name="bell"):
    qc = QuantumCircuit(2, 2, name=name)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    return qc


def _error(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the point is which error
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_errors_of_one_rank_and_different_submissions_raise_on_every_rank(comm):
    backend = AerMPISimulator(comm=comm)
    last = comm.size - 1
    # a bad option on the last rank only, before any collective
    error = _error(lambda: backend.run(bell(), shots=-1 if comm.rank == last else 10).result())
    errors = comm.allgather(error)
    assert errors[0] is not None and errors[0][0] == "InvalidInputError" and "shots=-1" in errors[0][1]
    assert all(e == errors[0] for e in errors), errors
    if comm.size > 1:
        # different circuits on the last rank
        circuit = bell()
        if comm.rank == last:
            circuit.x(1)
        errors = comm.allgather(_error(lambda: backend.run(circuit, shots=10, seed_simulator=1).result()))
        assert all(e == errors[0] for e in errors), errors
        assert errors[0][0] == "InvalidInputError" and f"rank {last} differs from rank 0" in errors[0][1]
        assert "different circuits or options" in errors[0][1]
        # different options (shots) on the last rank
        errors = comm.allgather(
            _error(lambda: backend.run(bell(), shots=11 if comm.rank == last else 10, seed_simulator=1).result())
        )
        assert all(e == errors[0] for e in errors) and "different circuits or options" in errors[0][1]
        # a seed left None may differ; circuit names may differ (qiskit's automatic names)
        result = backend.run(bell(f"name{comm.rank}"), shots=100).result()
        assert sum(result.get_counts().values()) == 100
    result = backend.run(bell(), shots=200, seed_simulator=4).result()
    counts = result.get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200
    assert all(c == counts for c in comm.allgather(counts))


# -- a rank that leaves or skips a run() ---------------------------------------------------------
SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from aer_mpi import AerMPISimulator

    mode, absent = sys.argv[1], int(sys.argv[2])
    comm = MPI.COMM_WORLD
    backend = AerMPISimulator(comm=comm)
    qc = QuantumCircuit(2, 2)
    qc.h(0); qc.cx(0, 1); qc.measure([0, 1], [0, 1])
    assert sum(backend.run(qc, shots=10, seed_simulator=1).result().get_counts().values()) == 10
    if comm.rank == absent:
        if mode == "exit":
            sys.exit(0)
        if mode == "caught":
            try:
                raise ValueError("the user's own error")
            except ValueError:
                pass  # the script just ends
        else:  # "skip": this rank skips the run() and ends later
            time.sleep(float(sys.argv[3]))
    else:
        start = time.monotonic()
        try:
            backend.run(qc, shots=10).result()
            outcome = None
        except Exception as exc:
            outcome = [type(exc).__name__, str(exc), getattr(exc, "rank", None)]
        # one write() per line: the ranks share the pipe, and a line under PIPE_BUF is never interleaved
        os.write(1, ("OUTCOME " + json.dumps([comm.rank, outcome, time.monotonic() - start]) + "\\n").encode())
    """
)

#: AER_MPI_AGREE_TIMEOUT in these runs.
AGREE_TIMEOUT = 2


@pytest.mark.parametrize(
    "ranks,mode,absent",
    [(2, "exit", 1), (3, "caught", 2), (2, "skip", 1), (3, "skip", 0), (2, "exit", 0)],
)
def test_a_rank_that_leaves_or_skips_run_makes_the_others_fail_naming_it(tmp_path, ranks, mode, absent):
    script = tmp_path / "spmd.py"
    script.write_text(SCRIPT)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, AER_MPI_AGREE_TIMEOUT=str(AGREE_TIMEOUT), OMP_NUM_THREADS="1")
    sleep = 3 * AGREE_TIMEOUT + 2  # the skipping rank stays longer than any survivor waits
    proc = subprocess.run(
        [mpiexec, "-n", str(ranks), sys.executable, str(script), mode, str(absent), str(sleep)],
        capture_output=True, text=True, timeout=MPI_TIMEOUT, env=env,
    )
    outcomes = [json.loads(line[8:]) for line in proc.stdout.splitlines() if line.startswith("OUTCOME ")]
    assert len(outcomes) == ranks - 1, (proc.stdout, proc.stderr)
    for rank, outcome, seconds in outcomes:
        assert outcome is not None and outcome[0] == "RankMissingError", outcome
        assert f"rank {absent}" in outcome[1] and outcome[2] == absent, outcome
        # at once when the rank ended; within the timeout (rank 0) or twice it (the others) when it skipped
        limit = 2.0 if mode in ("exit", "caught") else (AGREE_TIMEOUT if rank == 0 else 2 * AGREE_TIMEOUT) + 2.0
        assert seconds < limit, (rank, outcome, seconds)


EARLY_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_rank() == 1:
        if sys.argv[1] == "exit":
            sys.exit(0)
        time.sleep(60)
    from aer_mpi import AerMPISimulator
    AerMPISimulator()
    print("built", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["exit", "stall"])
def test_a_rank_that_never_builds_its_backend_ends_the_job_within_the_wait_timeout(tmp_path, mode):
    """Building the backend is collective (its communicators): a rank that ended or stalled before it
    left the others in MPI_Comm_dup forever (no signal could end them). Now the wait watchdog ends the
    job after AER_MPI_WAIT_TIMEOUT, saying why, with its exit status."""
    from aer_mpi.comm.watchdog import WAIT_TIMEOUT_EXIT

    script = tmp_path / "early.py"
    script.write_text(EARLY_SCRIPT)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, AER_MPI_WAIT_TIMEOUT="3", OMP_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), mode],
                          capture_output=True, text=True, timeout=MPI_TIMEOUT, env=env)
    assert proc.returncode == WAIT_TIMEOUT_EXIT, (proc.returncode, proc.stdout, proc.stderr)
    assert "building its AerMPISimulator" in proc.stderr and "built" not in proc.stdout
    assert time.monotonic() - start < 40
