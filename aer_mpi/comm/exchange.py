"""Global<->local bit swaps of a sharded array, in bounded chunks.

The global array has ``n = L + g`` bits; rank ``r`` holds the ``2**L``
entries whose top ``g`` bits equal ``r``. Swapping rank bit ``b`` with local
bit ``l`` moves exactly the entries whose local bit ``l`` differs from rank
bit ``b``: half of each shard, to the one partner ``r ^ (1 << b)``.

Swapping ``m`` pairs at once is one all-to-all inside groups of ``2**m``
ranks: the block of entries whose chosen local bits read ``v`` goes to the
group member ``v``, and is replaced by what member ``v`` sends. Every entry
moves at most once, whatever ``m``.

Data goes through two preallocated buffers (send and receive) of
``buffer_bytes`` in total, never a second copy of the shard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import product
from typing import Any, Sequence

import numpy as np

#: Default size of the send + receive buffers, per rank.
#: 16 MiB keeps a 24-qubit shard on 2 ranks (128 MiB) within 0.25x of its size
#: with room for the MPI library (the issue asks for 0.25x at 24 qubits, 2 ranks).
DEFAULT_BUFFER_BYTES = 16 << 20


@dataclass
class ExchangeStats:
    exchanges: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0


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
        self._buffers: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

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
            group = self.comm.Split(color=self.rank & ~mask, key=key)
            self._groups[rank_bits] = group
        return group

    def _buffer_pair(self, dtype: np.dtype, elements: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self._buffers.get(dtype)
        if pair is None or pair[0].size < elements:
            pair = (np.empty(elements, dtype=dtype), np.empty(elements, dtype=dtype))
            self._buffers[dtype] = pair
        return pair[0][:elements], pair[1][:elements]

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
        per_member = max(1, self.buffer_bytes // (2 * members * itemsize))
        block_shape = blocks[0].shape
        lead = 0
        chunk_size = blocks[0].size
        while chunk_size > per_member and lead < len(block_shape):
            chunk_size //= block_shape[lead]
            lead += 1
        send, recv = self._buffer_pair(shard.dtype, chunk_size * members)
        send_rows = send.reshape(members, chunk_size)
        recv_rows = recv.reshape(members, chunk_size)
        sub_shape = block_shape[lead:]
        for index in product(*(range(d) for d in block_shape[:lead])):
            for v in range(members):
                if v != me:
                    send_rows[v].reshape(sub_shape)[...] = blocks[v][index + (Ellipsis,)]
            group.Alltoall(send, recv)
            for v in range(members):
                if v != me:
                    blocks[v][index + (Ellipsis,)] = recv_rows[v].reshape(sub_shape)
        self.stats.exchanges += 1
        self.stats.bytes_sent += (members - 1) * blocks[0].size * itemsize
        self.stats.seconds += time.perf_counter() - start
