"""The exchange layer alone, by round trips: swap, compare with numpy, swap back.

The reference is computed once (the full array, every rank alike) and each
rank compares its own shard.
"""

import numpy as np
import pytest

from aer_mpi.comm import BitSwapExchange, Collective
from aer_mpi.errors import RankFailedError
from conftest import MPI_TIMEOUT, RANKS, RANKS_SMALL, working_ranks


def full_reference(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)


def swap_bits(full: np.ndarray, n: int, a: int, b: int) -> np.ndarray:
    axes = list(range(n))
    axes[n - 1 - a], axes[n - 1 - b] = axes[n - 1 - b], axes[n - 1 - a]
    return full.reshape((2,) * n).transpose(axes).reshape(-1)


def check_swaps_match_numpy_and_undo(comm, buffer_bytes):
    size = comm.size
    # the exchange serves the working ranks only: a power of two (refused otherwise, below)
    assert size == working_ranks(size), "this test needs a power-of-two rank count"
    g = size.bit_length() - 1
    local = 6
    n = local + g
    full = full_reference(n)
    shard_len = 1 << local
    exchange = BitSwapExchange(comm, buffer_bytes=buffer_bytes)
    shard = full[comm.rank * shard_len : (comm.rank + 1) * shard_len].copy()
    original = shard.copy()
    rng = np.random.default_rng(3)
    for _ in range(6):
        m = int(rng.integers(0, g + 1))
        rank_bits = [int(b) for b in rng.permutation(g)[:m]]
        local_bits = [int(b) for b in rng.permutation(local)[:m]]
        pairs = list(zip(rank_bits, local_bits))
        exchange.swap(shard, pairs)
        expected = full
        for b, l in pairs:
            expected = swap_bits(expected, n, local + b, l)
        np.testing.assert_array_equal(shard, expected[comm.rank * shard_len : (comm.rank + 1) * shard_len])
        exchange.swap(shard, pairs)  # each swap is its own inverse
        np.testing.assert_array_equal(shard, original)
    if g:
        assert exchange.stats.bytes_sent > 0
    exchange.close()


def check_an_error_on_one_rank_is_raised_on_every_rank(comm):
    collective = Collective(comm)
    error = ValueError("boom on the last rank") if comm.rank == comm.size - 1 else None
    with pytest.raises(RankFailedError) as info:
        collective.agree(error)
    assert info.value.rank == comm.size - 1
    assert str(info.value) == f"rank {comm.size - 1}: ValueError: boom on the last rank"
    # and the communicator is still usable
    assert collective.sum_in_rank_order(1.0) == comm.size


def test_non_power_of_two_communicator_is_refused():
    class FakeComm:
        def Get_size(self):
            return 3

        def Get_rank(self):
            return 0

    with pytest.raises(ValueError, match="power-of-two"):
        BitSwapExchange(FakeComm())


@pytest.mark.mpi(ranks=RANKS_SMALL, timeout=MPI_TIMEOUT)
def test_exchange_at_every_rank_count(comm):
    """The checks above in one job per rank count (a job's start-up cost more than each of them)."""
    for buffer_bytes in (64, 1 << 20):
        check_swaps_match_numpy_and_undo(comm, buffer_bytes)
    if comm.size in RANKS:
        check_an_error_on_one_rank_is_raised_on_every_rank(comm)
