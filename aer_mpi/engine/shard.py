"""One rank's part of the distributed state.

Promise of this module: a ``Shard`` holds this rank's amplitudes (the
``array``: ``2**num_local`` entries), knows which rank bits it stands for,
and does the operations that need the array and the ranks together: reset
to |0...0>, a global<->local swap through the exchange, the probability
that a qubit reads 1 (collective) and the collapse after a measurement,
copies for shot branching. Positions ``0..num_local-1`` are bits of the
local index; position ``num_local + b`` is bit ``b`` of the rank number.
Gate arithmetic is in ``aer_mpi.kernels`` (no MPI there); moving blocks is
in ``aer_mpi.comm`` (no gates there).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from aer_mpi import kernels
from aer_mpi.comm import BitSwapExchange, Collective


class Shard:
    """This rank's amplitudes of an ``num_qubits``-qubit state spread over ``collective``'s ranks."""

    def __init__(
        self,
        collective: Collective,
        exchange: BitSwapExchange,
        num_qubits: int,
        num_local: int,
        dtype: np.dtype,
        buffer_bytes: int,
        backend: tuple[str, int] = ("numpy", 1),
    ):
        self.collective = collective
        self.exchange = exchange
        self.rank = collective.rank
        self.num_qubits = num_qubits
        self.num_local = num_local
        self.num_global = num_qubits - num_local
        self.dtype = np.dtype(dtype)
        #: Bytes one block of a streamed partner shard may take (the exchange buffer).
        self.buffer_bytes = buffer_bytes
        #: The kernel back end chosen for this run and its threads (``resources.configure_kernels``).
        self.backend = backend
        self.array = np.zeros(1 << num_local, dtype=self.dtype)
        #: Bytes exchanged only to read the state in logical order (sampling, file output).
        self.reading_bytes = 0
        #: Read + write passes over the array so far (a cache-blocked stage is one).
        self.passes = 0

    # -- layout ---------------------------------------------------------------
    def bit_of_rank(self, position: int) -> int:
        """This rank's value of the global ``position``."""
        return (self.rank >> (position - self.num_local)) & 1

    def rank_value(self, rank_bits: Sequence[int]) -> int:
        """This rank's value of ``rank_bits`` (``rank_bits[0]`` lowest)."""
        return sum(((self.rank >> b) & 1) << i for i, b in enumerate(rank_bits))

    def logical_indices(self, local_indices: np.ndarray, layout: Sequence[int]) -> np.ndarray:
        """Logical basis index of local entries of this shard in the given layout."""
        physical = np.asarray(local_indices, dtype=np.int64) | np.int64(self.rank << self.num_local)
        logical = np.zeros_like(physical)
        for q, p in enumerate(layout):
            logical |= ((physical >> p) & 1) << q
        return logical

    # -- state ----------------------------------------------------------------
    def reset(self) -> None:
        """|0...0>: amplitude 1 on rank 0's first entry."""
        kernels.zero(self.array)
        if self.rank == 0:
            self.array[0] = 1

    def set_state(self, state: np.ndarray, positions: Sequence[int]) -> None:
        """This rank's slice of the full ``state``, whose index bit ``j`` is at ``positions[j]`` (no communication)."""
        physical = np.arange(1 << self.num_local, dtype=np.int64) | np.int64(self.rank << self.num_local)
        index = np.zeros_like(physical)
        for j, p in enumerate(positions):
            index |= ((physical >> p) & 1) << j
        self.array[:] = state[index]

    def copy(self) -> np.ndarray:
        """A copy of the amplitudes, for ``restore`` (shot branching)."""
        return self.array.copy()

    def restore(self, saved: np.ndarray) -> None:
        self.array[:] = saved

    def swap(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Swap rank bit ``b`` with local position ``l`` for each ``(b, l)`` (collective)."""
        self.collective.agree()
        self.exchange.swap(self.array, pairs)

    def relayout(self, layout: Sequence[int], target: Sequence[int]) -> None:
        """Move the data from ``layout`` (logical qubit -> position) to ``target`` (collective).

        Exact (amplitudes are only moved): an exchange brings in the qubits
        ``target`` wants local, three exchanges through a local position swap
        two global ones, and a permutation gate swaps two local ones. Used
        when a checkpoint is resumed on another number of ranks.
        """
        current = list(layout)
        target = list(target)
        num_local = self.num_local
        at = {p: q for q, p in enumerate(current)}

        def swap(pairs: list[tuple[int, int]]) -> None:
            self.swap(pairs)
            for b, l in pairs:
                qg, ql = at[num_local + b], at[l]
                current[qg], current[ql] = l, num_local + b
                at[l], at[num_local + b] = qg, ql

        incoming = [q for q, p in enumerate(current) if p >= num_local and target[q] < num_local]
        outgoing = [q for q, p in enumerate(current) if p < num_local and target[q] >= num_local]
        if incoming:
            swap([(current[qg] - num_local, current[ql]) for qg, ql in zip(incoming, outgoing)])
        while True:  # global positions: one transposition at a time
            wrong = [q for q, p in enumerate(current) if p >= num_local and p != target[q]]
            if not wrong:
                break
            q = wrong[0]
            a, b = current[q] - num_local, target[q] - num_local
            swap([(a, 0)])
            swap([(b, 0)])
            swap([(a, 0)])
        permutation = np.eye(4, dtype=self.dtype)[[0, 2, 1, 3]]
        while True:  # local positions: one transposition at a time
            wrong = [q for q, p in enumerate(current) if p != target[q]]
            if not wrong:
                break
            q = wrong[0]
            other = at[target[q]]
            kernels.apply_matrix(self.array, permutation, (current[q], target[q]))
            current[q], current[other] = target[q], current[q]
            at[current[q]], at[current[other]] = q, other

    def flip(self, position: int) -> None:
        """X on a local position."""
        kernels.flip(self.array, position)

    def probability_of_one(self, position: int) -> tuple[float, float]:
        """Probability that the qubit at ``position`` reads 1, and the squared norm (collective).

        The sums are added in rank order, so every rank gets the same numbers.
        """
        state = self.array
        if position < self.num_local:
            zero, one = kernels.outcome_sums(state, position)  # one read of the shard
            norm = zero + one  # == one exactly when nothing reads 0: a certain outcome stays certain
        else:
            norm = kernels.norm_squared(state)
            one = norm if self.bit_of_rank(position) else 0.0
        parts = self.collective.allgather((one, norm))
        total_one = sum(p[0] for p in parts)
        total = sum(p[1] for p in parts)
        return min(1.0, max(0.0, total_one / total)), total

    def collapse(self, position: int, outcome: int, p_one: float, total: float,
                 saved: Optional[np.ndarray] = None) -> None:
        """Keep the part where ``position`` reads ``outcome`` and renormalise (no communication);
        of ``saved`` (a ``copy``) when given: a restore and a collapse in one pass."""
        state = self.array
        kept = p_one if outcome else 1.0 - p_one
        factor = 1.0 / math.sqrt(kept * total)
        if position < self.num_local:
            kernels.collapse(state, position, outcome, factor, saved)
        elif self.bit_of_rank(position) == outcome:
            if saved is not None:
                self.restore(saved)
            kernels.scale(state, factor)
        else:
            state[:] = 0
