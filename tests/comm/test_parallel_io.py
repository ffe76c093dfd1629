"""One .npy file written by every rank at once (comm/parallel_io), and the backend's statevector_dir."""

import io
import os
import shutil
import tempfile

import numpy as np
import pytest
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector

from aer_mpi import AerMPISimulator, InvalidInputError
from aer_mpi.comm import Collective, write_npy_collective
from aer_mpi.comm.parallel_io import npy_header
from conftest import MPI_TIMEOUT, RANKS, fidelity


def test_npy_header_is_what_numpy_writes():
    for dtype in (np.complex128, np.complex64):
        array = np.zeros(1 << 5, dtype=dtype)
        buffer = io.BytesIO()
        np.save(buffer, array)
        header = npy_header(dtype, array.size)
        assert buffer.getvalue()[: len(header)] == header and len(header) % 64 == 0


@pytest.fixture
def shared_dir(comm):
    """A temporary directory made by rank 0 for all ranks, removed after the test.

    Not pytest's tmp_path: each rank is its own pytest session, and pytest's
    rotation of its base directories may delete another session's.
    """
    folder = comm.bcast(tempfile.mkdtemp(prefix="aer-mpi-test-io-") if comm.rank == 0 else None, root=0)
    yield folder
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_round_trip_with_uneven_chunks_and_errors_everywhere(comm, shared_dir):
    folder = shared_dir
    collective = Collective(comm)
    total = 3000
    full = (np.arange(total) + 1j * np.arange(total)[::-1]).astype(np.complex128)
    # rank r holds an uneven slice, cut into r + 1 chunks (so ranks write different numbers)
    bounds = np.linspace(0, total, comm.size + 1).astype(int)
    mine = full[bounds[comm.rank] : bounds[comm.rank + 1]]
    path = os.path.join(folder, "sub", "x.npy")
    write_npy_collective(collective, path, np.complex128, total, int(bounds[comm.rank]), np.array_split(mine, comm.rank + 1))
    comm.Barrier()
    loaded = np.load(path, mmap_mode="r")
    assert loaded.dtype == np.complex128 and np.array_equal(loaded, full)
    assert not os.path.exists(path + ".partial")

    # a file that cannot be written: the same clear error on every rank, nobody hangs
    with pytest.raises(InvalidInputError, match="cannot write /proc/aer-mpi/x.npy"):
        write_npy_collective(collective, "/proc/aer-mpi/x.npy", np.complex64, 4, 0, [])

    # a chunk that fails on one rank stops every rank at the same round
    def failing():
        yield np.zeros(1, dtype=np.complex128)
        raise RuntimeError("disk on fire")

    chunks = failing() if comm.rank == comm.size - 1 else [np.zeros(1, dtype=np.complex128)] * 3
    with pytest.raises(Exception, match="disk on fire"):
        write_npy_collective(collective, os.path.join(folder, "y.npy"), np.complex128, 4 * comm.size, 0, chunks)
    comm.Barrier()
    assert not os.path.exists(os.path.join(folder, "y.npy"))


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_backend_statevector_dir_single_precision(comm, shared_dir):
    folder = shared_dir
    circuit = random_circuit(8, 8, max_operands=3, seed=17)
    circuit.name = "r/8"
    backend = AerMPISimulator(comm=comm, min_local_qubits=2)
    result = backend.run(circuit, shots=1, precision="single", statevector_dir=folder).result()
    path = result.results[0].metadata["statevector_file"]
    assert path == os.path.join(folder, "r_8.npy")
    if comm.rank == 0:
        state = np.load(path, mmap_mode="r")
        assert state.dtype == np.complex64
        assert fidelity(Statevector(circuit).data, state) > 1 - 1e-5
