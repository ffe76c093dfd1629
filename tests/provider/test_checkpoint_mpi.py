"""A damaged or mismatched checkpoint under mpiexec: one error, the same on every rank (idle ranks
included), and the directory left as it was (issue 11)."""

from __future__ import annotations

import os
import shutil
import time
from concurrent import futures

import pytest

from aer_mpi import AerMPISimulator
from aer_mpi.engine.checkpoint import MANIFEST, CheckpointError
from conftest import MPI_TIMEOUT, RANKS_WITH_IDLE, long_circuit


@pytest.mark.mpi(ranks=RANKS_WITH_IDLE, timeout=MPI_TIMEOUT)
def test_refusals_are_the_same_on_every_rank(comm, tmp_path):
    directory = os.path.join(str(comm.bcast(str(tmp_path) if comm.rank == 0 else None)), "ck")
    # the jobs' collectives on their own communicator: the test's barriers below never meet them
    backend = AerMPISimulator(comm=comm.Dup())
    circuit = long_circuit(14, 400)
    job = backend.run(circuit, shots=50, seed_simulator=2, checkpoint_dir=directory, checkpoint_every_seconds=0.05)
    # every rank waits for the first checkpoint, then asks for a stop with a checkpoint
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(directory, MANIFEST)):
        assert time.monotonic() < deadline and not job.done()
        time.sleep(0.01)
    job.cancel(checkpoint=True)
    with pytest.raises(futures.CancelledError):
        job.result(timeout=120)
    comm.Barrier()

    def listing():
        return sorted((name, os.path.getsize(os.path.join(directory, name))) for name in os.listdir(directory))

    before = listing()
    with pytest.raises(CheckpointError, match="another job") as other:
        backend.run(long_circuit(14, 401), shots=50, seed_simulator=2, checkpoint_dir=directory).result()
    messages = comm.allgather(str(other.value))
    assert len(set(messages)) == 1, messages
    assert listing() == before
    comm.Barrier()  # every rank has looked before rank 0 damages the file

    if comm.rank == 0:  # truncate the state file: every rank must refuse it
        state = next(n for n in os.listdir(directory) if n.startswith("state-"))
        with open(os.path.join(directory, state), "r+b") as handle:
            handle.truncate(os.path.getsize(os.path.join(directory, state)) - 64)
    comm.Barrier()
    damaged = listing()
    with pytest.raises(CheckpointError, match="damaged") as bad:
        backend.run(circuit, shots=50, seed_simulator=2, checkpoint_dir=directory).result()
    assert len(set(comm.allgather(type(bad.value).__name__))) == 1
    assert listing() == damaged
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(directory)
