"""Global<->local bit swaps of a sharded array, in bounded chunks.

The global array has ``n = L + g`` bits; rank ``r`` holds the ``2**L``
entries whose top ``g`` bits equal ``r``. Swapping rank bit ``b`` with local
bit ``l`` moves exactly the entries whose local bit ``l`` differs from rank
bit ``b``: half of each shard, to the one partner ``r ^ (1 << b)``.

Swapping ``m`` pairs at once is one all-to-all inside groups of ``2**m``
ranks: the block of entries whose chosen local bits read ``v`` goes to the
group member ``v``, and is replaced by what member ``v`` sends. Every entry
moves at most once, whatever ``m``.

Data goes through preallocated send and receive buffers of ``buffer_bytes``
in total, never a second copy of the shard, in chunks that form a pipeline:
chunk k is packed while chunk k - 1 is on its way (a non-blocking
all-to-all), and unpacked once it has arrived. Where the transport moves
data by itself (RDMA), the transfer hides behind the packing; through
shared memory on one node MPI copies only inside its calls, and the
pipeline measured no faster or slower than one chunk at a time
(``scripts/bench_exchange.py``). Every wait is under the watchdog's bound.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from itertools import product
from typing import Any, Sequence

import numpy as np

from aer_mpi.comm.watchdog import bounded

#: Default size of the send + receive buffers, per rank.
#: 16 MiB keeps a 24-qubit shard on 2 ranks (128 MiB) within 0.25x of its size
#: with room for the MPI library (the issue asks for 0.25x at 24 qubits, 2 ranks).
DEFAULT_BUFFER_BYTES = 16 << 20
#: Chunks of an exchange on their way at once, sharing the buffers: chunk k is packed while
#: chunk k - 1 travels.
PIPELINE_SLOTS = 2


@dataclass
class ExchangeStats:
    exchanges: int = 0
    bytes_sent: int = 0
    #: Seconds inside ``swap``: packing, unpacking and waiting.
    seconds: float = 0.0
    #: Of which waiting for chunks still on their way (what the pipeline did not hide).
    wait_seconds: float = 0.0


class BitSwapExchange:
    """Swaps rank bits with local bits of one rank's shard.

    ``comm`` must have a power-of-two size; ``buffer_bytes`` bounds the
    memory used beyond the shard.
    """

    def __init__(self, comm: Any, buffer_bytes: int = DEFAULT_BUFFER_BYTES):
        size = comm.Get_size()
        if size & (size - 1):
            raise ValueError(f"expecting a power-of-two communicator size, got {size}")
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.num_rank_bits = size.bit_length() - 1
        self.buffer_bytes = int(buffer_bytes)
        self.stats = ExchangeStats()
        self._groups: dict[tuple[int, ...], Any] = {}
        self._buffers: dict[np.dtype, np.ndarray] = {}
        #: Chunks on their way at once (1: pack, send, unpack in turn).
        self.slots = PIPELINE_SLOTS

    def close(self) -> None:
        for group in self._groups.values():
            group.Free()
        self._groups.clear()
        self._buffers.clear()

    def _group(self, rank_bits: tuple[int, ...]) -> Any:
        """Communicator of the ranks that differ only in ``rank_bits``.

        Its rank order is the value of those bits, ``rank_bits[0]`` lowest.
        """
        group = self._groups.get(rank_bits)
        if group is None:
            mask = sum(1 << b for b in rank_bits)
            key = sum(((self.rank >> b) & 1) << i for i, b in enumerate(rank_bits))
            with bounded(self.comm, "the exchange's groups"):
                group = self.comm.Split(color=self.rank & ~mask, key=key)
            self._groups[rank_bits] = group
        return group

    def _buffer_rows(self, dtype: np.dtype, slots: int, members: int, chunk: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per slot, (send, receive) rows of ``chunk`` entries per member, in one allocation."""
        elements = 2 * slots * members * chunk
        whole = self._buffers.get(dtype)
        if whole is None or whole.size < elements:
            whole = np.empty(elements, dtype=dtype)
            self._buffers[dtype] = whole
        rows = whole[:elements].reshape(slots, 2, members, chunk)
        return [(rows[s, 0], rows[s, 1]) for s in range(slots)]

    def swap(self, shard: np.ndarray, pairs: Sequence[tuple[int, int]]) -> None:
        """Swap rank bit ``b`` with local bit ``l`` for every ``(b, l)`` in ``pairs``, in place.

        Collective over the communicator: every rank calls it with the same
        ``pairs``.
        """
        if not pairs:
            return
        start = time.perf_counter()
        rank_bits = tuple(b for b, _ in pairs)
        local_bits = [l for _, l in pairs]
        if len(set(rank_bits)) != len(rank_bits) or len(set(local_bits)) != len(local_bits):
            raise ValueError(f"expecting distinct bits in each swap, got {list(pairs)}")
        m = len(pairs)
        group = self._group(rank_bits)
        members = 1 << m
        me = group.Get_rank()

        num_local = shard.shape[0].bit_length() - 1
        tensor = shard.reshape((2,) * num_local)
        # blocks[v]: entries whose chosen local bits read v (pairs[0]'s bit lowest)
        blocks = []
        for v in range(members):
            index: list[Any] = [slice(None)] * num_local
            for i, l in enumerate(local_bits):
                index[num_local - 1 - l] = (v >> i) & 1
            blocks.append(tensor[tuple(index) + (Ellipsis,)])

        itemsize = shard.dtype.itemsize
        slots = self.slots
        # every slot holds a send and a receive row per member: all of them within buffer_bytes
        per_member = max(1, self.buffer_bytes // (2 * slots * members * itemsize))
        block_shape = blocks[0].shape
        lead = 0
        chunk_size = blocks[0].size
        while chunk_size > per_member and lead < len(block_shape):
            chunk_size //= block_shape[lead]
            lead += 1
        buffers = self._buffer_rows(shard.dtype, slots, members, chunk_size)
        sub_shape = block_shape[lead:]
        in_flight: deque = deque()  # (request, chunk index, slot), oldest first

        def finish_oldest() -> None:
            request, index, slot = in_flight.popleft()
            wait_start = time.perf_counter()
            with bounded(self.comm, "the amplitude exchange"):
                request.Wait()
            self.stats.wait_seconds += time.perf_counter() - wait_start
            recv_rows = buffers[slot][1]
            for v in range(members):
                if v != me:
                    blocks[v][index + (Ellipsis,)] = recv_rows[v].reshape(sub_shape)

        # a pipeline: chunk k is packed while chunk k - 1 is on its way, and unpacked after
        for k, index in enumerate(product(*(range(d) for d in block_shape[:lead]))):
            if len(in_flight) == slots:
                finish_oldest()
            slot = k % slots
            send_rows, recv_rows = buffers[slot]
            for v in range(members):
                if v != me:
                    send_rows[v].reshape(sub_shape)[...] = blocks[v][index + (Ellipsis,)]
            in_flight.append((group.Ialltoall(send_rows, recv_rows), index, slot))
        while in_flight:
            finish_oldest()
        self.stats.exchanges += 1
        self.stats.bytes_sent += (members - 1) * blocks[0].size * itemsize
        self.stats.seconds += time.perf_counter() - start
