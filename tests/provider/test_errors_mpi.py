"""Bad input, failures and cancel under mpiexec (SPMD) at 1, 2 and 3 ranks.

Every bad input must raise one clear error, the same on every rank, with no
rank left in a collective; the proof of the last part is that a good job
run right after it on the same ranks gives the right answer. 3 ranks is not
a power of two: one rank idles, and the metadata says so.
"""

import math
import os
import subprocess
import sys
import textwrap
import time
from concurrent import futures

import pytest
from qiskit import QuantumCircuit
from qiskit.exceptions import QiskitError
from qiskit.circuit import Gate, Instruction, Parameter
from qiskit.providers import JobStatus
from qiskit.quantum_info import Statevector

from aer_mpi import AerMPISimulator, InsufficientMemoryError, InvalidInputError, RankFailedError
from conftest import MPI_TIMEOUT, RANKS_WITH_IDLE, fidelity, save_statevector, working_ranks

#: (what is wrong, how to make the circuit and options, a regex the error must match)
BAD_INPUTS = [
    ("unknown instruction", lambda qc: qc.append(Gate("mystery", 1, []), [0]), {}, "unknown instruction 'mystery'"),
    ("unbound parameter", lambda qc: qc.rx(Parameter("theta"), 0), {}, "unbound parameter theta"),
    ("infinite angle", lambda qc: qc.rz(math.inf, 1), {}, "non-finite angle inf"),
    ("nan angle", lambda qc: qc.ry(math.nan, 1), {}, "non-finite angle nan"),
    ("shots < 0", lambda qc: qc.h(0), {"shots": -1}, r"shots=-1: expecting an integer >= 0"),
    ("bad option value", lambda qc: qc.h(0), {"precision": "quad"}, "precision='quad': expecting 'double' or 'single'"),
    ("option of the wrong type", lambda qc: qc.h(0), {"memory": "yes"}, "memory='yes': expecting"),
    # probe P: a loader's bare instruction raised AttributeError out of run() on rank 0 only
    ("initialize without a definition", lambda qc: qc.append(Instruction("initialize", 1, 0, [1.0, 0.0]), [0]), {},
     "initialize has no definition"),
    ("initialize of an unnormalised state", lambda qc: _unnormalised_initialize(qc), {},
     r"the state is not normalised \(its squared norm is 2\): divide it by its norm"),
]


def _unnormalised_initialize(qc):
    qc.initialize([1, 0], [0])
    qc.data[-1].operation.params = [1.0, 1.0]


def good_circuit(n=7):
    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.ry(0.3, n - 1)
    qc.cp(0.7, 0, n - 1)
    return qc


def check_good_job(backend, comm):
    """A good job on the same ranks gives the right state: nobody was left behind."""
    circuit = good_circuit()
    result = backend.run(save_statevector(circuit), shots=1).result(timeout=MPI_TIMEOUT)
    meta = result.results[0].metadata
    assert meta["ranks"] == comm.size
    if comm.rank == 0:
        assert fidelity(Statevector(circuit).data, result.get_statevector()) > 1 - 1e-9
    return meta


def errors_on_every_rank(comm, error):
    """Every rank's (type, message) of ``error``; they must all be the same."""
    mine = (type(error).__name__, str(error))
    everyone = comm.allgather(mine)
    assert all(e == mine for e in everyone), everyone
    return mine


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_bad_input_failure_and_cancel_then_good_job(comm, monkeypatch):
    # one mpirun per rank count for all three: each start costs seconds on a small machine
    check_bad_input_same_error_everywhere_then_good_job(comm)
    check_failure_on_one_rank_ends_the_job_on_all(comm, monkeypatch)
    check_cancel_running_job_stops_every_rank(comm)


def check_bad_input_same_error_everywhere_then_good_job(comm):
    backend = AerMPISimulator(comm=comm, min_local_qubits=2)
    for what, build, options, pattern in BAD_INPUTS:
        qc = QuantumCircuit(3)
        build(qc)
        qc.measure_all()
        job = backend.run(qc, **options)  # as Aer's run(): the job is refused, not run() itself
        assert job.status() == JobStatus.ERROR and job.in_final_state(), what
        with pytest.raises(InvalidInputError, match=pattern) as info:
            job.result()
        assert isinstance(info.value, QiskitError)  # as Aer's AerError: `except QiskitError` catches it
        assert job.refusal() is info.value and job.circuits() == [qc]
        assert errors_on_every_rank(comm, info.value), what
    # too many qubits for the memory: refused before allocating, naming the sizes and the fix
    wide = QuantumCircuit(40)
    wide.h(0)
    wide.t(0)  # not Clifford: a Clifford circuit this wide would run on a stabilizer tableau
    wide.measure_all()
    job = backend.run(wide)
    with pytest.raises(InsufficientMemoryError) as info:
        job.result(timeout=MPI_TIMEOUT)
    assert job.status() == JobStatus.ERROR
    kind, message = errors_on_every_rank(comm, info.value)
    assert "40 qubits need" in message and "MiB per rank" in message and "available" in message
    assert "use more ranks" in message and "precision='single'" in message
    meta = check_good_job(backend, comm)
    working = working_ranks(comm.size)
    assert meta["working_ranks"] == working
    assert meta["idle_ranks"] == comm.size - working
    if working < comm.size:
        assert f"{comm.size - working} idle" in meta["note"]


def check_failure_on_one_rank_ends_the_job_on_all(comm, monkeypatch):
    import aer_mpi.kernels as kernels

    bad_rank = working_ranks(comm.size) - 1  # the last working rank (at 3 ranks, rank 2 idles)
    hits = []
    original = kernels.apply_matrix

    def broken(*args, **kwargs):
        hits.append(1)
        raise ValueError("kernel exploded")

    if comm.rank == bad_rank:
        monkeypatch.setattr(kernels, "apply_matrix", broken)
    # without the cache tier, so that every gate goes through apply_matrix (stages do not)
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, cache_blocking=False)
    circuit = QuantumCircuit(8)
    circuit.h(range(8))
    circuit.measure_all()
    job = backend.run(circuit)
    with pytest.raises(Exception) as info:
        job.result(timeout=MPI_TIMEOUT)
    assert job.status() == JobStatus.ERROR
    assert "kernel exploded" in str(info.value)
    if comm.rank != bad_rank:
        assert isinstance(info.value, RankFailedError) and info.value.rank == bad_rank
        assert f"rank {bad_rank}" in str(info.value)
    assert comm.allgather(bool(hits))[bad_rank]  # the failure really happened there
    monkeypatch.setattr(kernels, "apply_matrix", original)
    check_good_job(backend, comm)


def check_cancel_running_job_stops_every_rank(comm):
    backend = AerMPISimulator(comm=comm)
    n = 18
    long = QuantumCircuit(n)
    for layer in range(400):  # minutes of work if it were not cancelled; a brickwork fusion cannot collapse
        long.h(range(n))
        long.cx(range(layer % 2, n - 1, 2), range(layer % 2 + 1, n, 2))
    long.measure_all()
    job = backend.run(long, shots=10)
    if comm.rank == 0:
        while job.status() != JobStatus.RUNNING:
            time.sleep(0.01)
        start = time.monotonic()
        assert job.cancel() is True
    with pytest.raises(futures.CancelledError):
        job.result(timeout=MPI_TIMEOUT)
    assert job.status() == JobStatus.CANCELLED
    if comm.rank == 0:
        assert time.monotonic() - start < 30
    check_good_job(backend, comm)


ABORT_SCRIPT = textwrap.dedent(
    """
    import sys
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from aer_mpi import AerMPISimulator

    comm = MPI.COMM_WORLD
    backend = AerMPISimulator(min_local_qubits=2)
    circuit = QuantumCircuit(6)
    circuit.h(range(6))
    circuit.measure_all()
    if sys.argv[1] == "script" and comm.rank == 2:
        raise ValueError("user code failed on rank 2")  # outside any aer_mpi collective
    if sys.argv[1] == "engine" and comm.rank == 1:  # a working rank (rank 2 of 3 idles)
        import aer_mpi.kernels as kernels

        def broken(*args, **kwargs):
            raise ValueError("kernel failed on rank 1")

        kernels.apply_matrix = broken
    backend.run(circuit).result()
    print("finished", comm.rank, flush=True)
    """
)


@pytest.mark.parametrize("mode", ["script", "engine"])
def test_spmd_exception_exits_nonzero_never_hangs(tmp_path, mode):
    script = tmp_path / "fail.py"
    script.write_text(ABORT_SCRIPT)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    proc = subprocess.run(
        [mpiexec, "-n", "3", sys.executable, str(script), mode],
        capture_output=True, text=True, timeout=MPI_TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "finished" not in output
    if mode == "script":
        assert "user code failed on rank 2" in output
    else:
        assert "rank 1: ValueError: kernel failed on rank 1" in output


def test_what_run_cannot_read_is_a_refused_job_never_an_exception_out_of_run():
    """Any error preparing the circuits that is not aer_mpi's comes back as the job's (in ERROR), so that
    under mpiexec every rank sees the same; running out of memory there is InsufficientMemoryError."""
    from unittest import mock

    import aer_mpi.provider.backend as backend_module

    qc = QuantumCircuit(1)
    qc.h(0)
    qc.measure_all()
    for raised, expected, pattern in ((KeyError("odd"), InvalidInputError, "cannot read these circuits.*KeyError"),
                                      (MemoryError(), InsufficientMemoryError, r"ran out of memory .*\(MemoryError\)")):
        with mock.patch.object(backend_module, "assemble_circuits", side_effect=raised):
            job = AerMPISimulator().run(qc)
        assert job.status() == JobStatus.ERROR
        with pytest.raises(expected, match=pattern):
            job.result()
