"""The parallel .npy writer never writes through a symbolic link, never uses a
predictable temporary name, and leaves no partial file on any failure path."""

import os
import shutil
import tempfile

import numpy as np
import pytest

from aer_mpi import InvalidInputError
from aer_mpi.comm import Collective, write_npy_collective
from aer_mpi.comm import parallel_io
from conftest import MPI_TIMEOUT


@pytest.fixture
def shared_dir(comm):
    folder = comm.bcast(tempfile.mkdtemp(prefix="aer-mpi-test-io-safety-") if comm.rank == 0 else None, root=0)
    yield folder
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(parallel_io.PARTIAL_SUFFIX))


def my_part(comm, total):
    full = np.arange(total, dtype=np.complex128)
    bounds = np.linspace(0, total, comm.size + 1).astype(int)
    return full, int(bounds[comm.rank]), [full[bounds[comm.rank] : bounds[comm.rank + 1]]]


@pytest.mark.mpi(ranks=[1, 2], timeout=MPI_TIMEOUT)
def test_symlinks_refused_and_temporary_names_unpredictable(comm, shared_dir):
    collective = Collective(comm)
    full, offset, chunks = my_part(comm, 64)
    victim = os.path.join(shared_dir, "victim.txt")
    link = os.path.join(shared_dir, "sv.npy")
    if comm.rank == 0:
        with open(victim, "w") as handle:
            handle.write("precious")
        os.symlink(victim, link)
        # the old predictable name, planted as a link: it must not be used
        os.symlink(victim, os.path.join(shared_dir, "ok.npy.partial"))
    comm.Barrier()
    with pytest.raises(InvalidInputError, match="symbolic link"):
        write_npy_collective(collective, link, np.complex128, 64, offset, chunks)
    comm.Barrier()
    assert open(victim).read() == "precious" and os.path.islink(link)
    assert leftovers(shared_dir) == ["ok.npy.partial"]
    comm.Barrier()  # every rank has looked before rank 0 makes the next temporary file

    ok = os.path.join(shared_dir, "ok.npy")
    write_npy_collective(collective, ok, np.complex128, 64, offset, chunks)
    comm.Barrier()
    assert np.array_equal(np.load(ok), full) and not os.path.islink(ok)
    assert open(victim).read() == "precious"


@pytest.mark.mpi(ranks=[1, 2], timeout=MPI_TIMEOUT)
def test_partial_file_removed_when_a_write_fails(comm, shared_dir, monkeypatch):
    collective = Collective(comm)
    full, offset, chunks = my_part(comm, 64)
    path = os.path.join(shared_dir, "full.npy")

    class FullDisk:
        """An MPI file handle whose writes fail as on a full disk."""

        def __init__(self, real):
            self.real = real

        def Write_at_all(self, position, data):  # noqa: N802 (MPI's name)
            raise OSError(28, "No space left on device")

    real_rounds = parallel_io._write_rounds
    monkeypatch.setattr(
        parallel_io, "_write_rounds", lambda c, handle, *rest: real_rounds(c, FullDisk(handle), *rest)
    )
    with pytest.raises(Exception, match="No space left on device"):
        write_npy_collective(collective, path, np.complex128, 64, offset, chunks)
    monkeypatch.undo()
    comm.Barrier()
    assert not os.path.exists(path) and leftovers(shared_dir) == []
    comm.Barrier()  # every rank has looked before rank 0 makes the next temporary file

    # the header cannot be written (rank 0): same error everywhere, nothing left
    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parallel_io, "_write_header", no_space)
    with pytest.raises(InvalidInputError, match="No space left on device"):
        write_npy_collective(collective, path, np.complex128, 64, offset, chunks)
    monkeypatch.undo()
    comm.Barrier()
    assert not os.path.exists(path) and leftovers(shared_dir) == []
    comm.Barrier()  # every rank has looked before rank 0 makes the next temporary file

    # the final rename fails: the partial file goes too, the previous output stays
    if comm.rank == 0:
        with open(path, "w") as handle:
            handle.write("previous")
    comm.Barrier()

    def no_rename(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(parallel_io, "_publish", no_rename)
    with pytest.raises(InvalidInputError, match="Input/output error"):
        write_npy_collective(collective, path, np.complex128, 64, offset, chunks)
    monkeypatch.undo()
    comm.Barrier()
    assert open(path).read() == "previous" and leftovers(shared_dir) == []
