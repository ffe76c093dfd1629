"""Streaming a partner rank's shard in blocks, without a second copy of it.

Generic data movement: ``stream_partner_blocks`` walks the shard in aligned
blocks and, for each, hands the caller the partner rank's block at a given
XOR of the offset, through one receive buffer of the block's size. It knows
nothing of what the caller computes with the pair of blocks.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional

import numpy as np

from aer_mpi.comm.exchange import ExchangeStats
from aer_mpi.comm.watchdog import bounded


def stream_partner_blocks(
    comm: Any,
    shard: np.ndarray,
    partner: int,
    block: int,
    xor_offset: int = 0,
    stats: Optional[ExchangeStats] = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(offset, partner_block)`` for ``offset`` = 0, block, 2*block, ...

    ``partner_block`` is the partner's ``shard[offset ^ xor_offset : ... + block]``;
    this rank sends its own block at the same place in exchange. Collective
    between the two ranks (both call it with the same ``block`` and
    ``xor_offset``, each naming the other); ``partner`` equal to this rank
    reads the shard itself, with no communication. The yielded buffer is
    reused: consume it before asking for the next block.
    ``xor_offset`` must be a multiple of ``block``.
    """
    size = shard.shape[0]
    if block < 1 or size % block or xor_offset % block:
        raise ValueError(f"expecting a block dividing {size} and an offset XOR that is a multiple of it")
    me = comm.Get_rank()
    if partner == me:
        for offset in range(0, size, block):
            other = offset ^ xor_offset
            yield offset, shard[other : other + block]
        return
    recv = np.empty(block, dtype=shard.dtype)
    for offset in range(0, size, block):
        other = offset ^ xor_offset
        start = time.perf_counter()
        with bounded(comm, f"exchange with rank {partner}"):
            comm.Sendrecv(shard[other : other + block], dest=partner, sendtag=91, recvbuf=recv, source=partner,
                          recvtag=91)
        if stats is not None:
            stats.bytes_sent += block * shard.dtype.itemsize
            stats.seconds += time.perf_counter() - start
        yield offset, recv
