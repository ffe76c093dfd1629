"""``Shard.relayout``: a state moved from one layout to another is the same state, exactly.

A checkpoint is resumed by reading the saved state in the layout it was
written in and moving it to the layout the new plan has at that point
(engine/checkpoint.py); any permutation of qubits over local and rank
positions must come out bit for bit.
"""

import numpy as np
import pytest

from aer_mpi import kernels as aer_kernels
from aer_mpi.comm import BitSwapExchange, Collective
from aer_mpi.engine.shard import Shard
from conftest import KERNELS, MPI_TIMEOUT, RANKS, working_ranks


def physical(full: np.ndarray, n: int, layout) -> np.ndarray:
    """``full`` (logical order) laid out as ``layout`` says (logical qubit q at position layout[q])."""
    tensor = full.reshape((2,) * n)
    # axis i of the tensor is bit n-1-i; the physical array has logical qubit q at bit layout[q]
    axes = [0] * n
    for q, p in enumerate(layout):
        axes[n - 1 - p] = n - 1 - q
    return tensor.transpose(axes).reshape(-1)


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_relayout_moves_every_amplitude_exactly(comm):
    for name in KERNELS:  # both back ends in one job (each job is a new mpirun)
        aer_kernels.use(name)
        _check_relayout(comm)


def _check_relayout(comm):
    size = comm.size
    assert size == working_ranks(size)
    g = size.bit_length() - 1
    n = 5 + g
    rng = np.random.default_rng(7)
    full = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    collective = Collective(comm)
    exchange = BitSwapExchange(comm, 1 << 12)
    shard = Shard(collective, exchange, n, n - g, np.dtype(complex), 1 << 12)
    for trial in range(8):
        layout = [int(p) for p in rng.permutation(n)]
        target = [int(p) for p in rng.permutation(n)]
        start = physical(full, n, layout)
        shard.array[:] = start[comm.rank << (n - g) : (comm.rank + 1) << (n - g)]
        shard.relayout(layout, target)
        expected = physical(full, n, target)
        np.testing.assert_array_equal(shard.array, expected[comm.rank << (n - g) : (comm.rank + 1) << (n - g)])
    exchange.close()
