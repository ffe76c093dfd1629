"""Reading the final state in logical order: sampling final measurements, writing the state to a file.

Promise of this module: both read the shard in Qiskit's qubit order without
gathering it. The top logical qubits are made the global ones first (one
exchange, counted in ``Shard.reading_bytes``), and each shard's bits are put
in logical order in place (at most two swap passes), so that the shards in
order of those qubits' value, read front to back, are the state in logical
order. Sampling draws every shot's uniform on
every rank from one stream, so the same seed gives the same outcomes
whatever the number of ranks.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from aer_mpi import kernels
from aer_mpi.comm import write_npy_collective
from aer_mpi.engine.shard import Shard
from aer_mpi.plan import swap_rounds_to_order, swaps_to_make_global


def make_top_global(shard: Shard, layout: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """Make the top logical qubits the global ones (collective, exchanges if needed).

    Returns the layout after and this rank's value of those qubits.
    """
    n, num_local = shard.num_qubits, shard.num_local
    top = list(range(num_local, n))
    pairs, layout = swaps_to_make_global(layout, num_local, top)
    if pairs:
        before = shard.exchange.stats.bytes_sent
        shard.swap(pairs)
        # reported apart from the plan's exchanges: it is the price of reading in logical order
        shard.reading_bytes += shard.exchange.stats.bytes_sent - before
    high = 0
    for k, q in enumerate(top):
        high |= shard.bit_of_rank(layout[q]) << k
    return layout, high


def make_logical_order(shard: Shard, layout: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """``make_top_global``, then the shard's bits put in logical order in place (collective).

    Returns the layout after (logical qubit ``q`` at position ``q`` for every local one) and
    this rank's value of the top logical qubits. A strided copy in logical order took 0.35 s
    for 2**24 amplitudes in a random layout; the swap passes take 10-30 ms.
    """
    layout, high = make_top_global(shard, layout)
    num_local = shard.num_local
    for pairs in swap_rounds_to_order([layout[q] for q in range(num_local)]):
        kernels.swap_bits(shard.array, pairs)
        shard.passes += 1
    return tuple(range(num_local)) + tuple(layout[num_local:]), high


def write_statevector(shard: Shard, layout: Sequence[int], path: str) -> tuple[int, ...]:
    """Write the state as ``path`` (.npy, Qiskit's order) from every rank; never gathered.

    Returns the layout after (the top logical qubits global).
    """
    layout, high = make_logical_order(shard, layout)
    write_npy_collective(
        shard.collective,
        path,
        shard.dtype,
        1 << shard.num_qubits,
        high << shard.num_local,
        kernels.logical_order_chunks(shard.array, range(shard.num_local)),
    )
    return layout


#: Shots sampled in one pass over the state; between passes the ranks meet at a
#: checkpoint, so a job of 4e7 shots can be cancelled. The uniforms are drawn from
#: one stream in order, so the outcomes do not depend on this size.
SAMPLE_CHUNK = 1 << 22


def sample_outcomes(
    shard: Shard,
    layout: Sequence[int],
    shots: int,
    rng: np.random.Generator,
    checkpoint: Optional[Callable[[], None]] = None,
) -> np.ndarray:
    """Outcome (logical basis index) of each shot, on every rank (collective).

    Rank order and local order are made logical first (top logical qubits
    global), so that the same seed gives the same outcomes whatever the
    number of ranks. ``checkpoint()`` (collective) is called between chunks
    of ``SAMPLE_CHUNK`` shots.
    """
    collective = shard.collective
    layout, high = make_logical_order(shard, layout)
    ends = kernels.cumulative_ends(shard.array)
    mass = float(ends[-1])
    gathered = collective.allgather((high, mass))
    order = sorted(range(len(gathered)), key=lambda r: gathered[r][0])
    total = 0.0
    offset = 0.0
    for r in order:
        if r == shard.rank:
            offset = total
        total += gathered[r][1]
    last_rank = order[-1] == shard.rank
    upper = math.inf if last_rank else offset + mass
    outcomes = np.zeros(shots, dtype=np.int64)
    for start in range(0, shots, SAMPLE_CHUNK):
        if start and checkpoint is not None:
            checkpoint()
        count = min(SAMPLE_CHUNK, shots - start)
        uniforms = rng.random(count) * total
        mine = np.nonzero((uniforms >= offset) & (uniforms < upper))[0]
        mine = mine[np.argsort(uniforms[mine], kind="stable")]
        found = _locate(shard, ends, high, uniforms[mine] - offset)
        parts = collective.allgather((mine, found))
        for shot_ids, values in parts:
            outcomes[start + shot_ids] = values
    return outcomes


def _locate(shard: Shard, ends: np.ndarray, high: int, targets: np.ndarray) -> np.ndarray:
    """The basis index of each (sorted) cumulative-probability target, the shard's bits in logical
    order and ``ends`` its ``kernels.cumulative_ends``."""
    found = np.empty(len(targets), dtype=np.int64)
    inside = int(np.searchsorted(targets, ends[-1], side="left"))
    kernels.locate(shard.array, ends, targets[:inside], found[:inside])
    # rounding can leave a few targets past the end: they take the last non-zero entry
    if inside < len(targets):
        found[inside:] = max(kernels.last_nonzero(shard.array), 0)
    found |= high << shard.num_local
    return found


#: The widest classical register held as int64; wider ones are Python ints (an object array).
INT64_CLBITS = 63


def clbit_dtype(num_clbits: int) -> Any:
    """int64 for registers of up to 63 clbits (the fast path), else object (Python ints, any width)."""
    return np.int64 if num_clbits <= INT64_CLBITS else object


def clbit_values(outcomes: np.ndarray, measures: Sequence[tuple[int, int]]) -> np.ndarray:
    """The classical register of each shot, from its outcome and the final (qubit, clbit) measurements."""
    widest = max((clbit for _, clbit in measures), default=0) + 1
    if widest > INT64_CLBITS:
        return _wide_clbit_values(outcomes, measures)
    values = np.zeros(len(outcomes), dtype=np.int64)
    for qubit, clbit in measures:
        bit = (outcomes >> qubit) & 1
        values = (values & ~np.int64(1 << clbit)) | (bit << clbit)
    return values


def _wide_clbit_values(outcomes: np.ndarray, measures: Sequence[tuple[int, int]]) -> np.ndarray:
    """``clbit_values`` for registers wider than 63 clbits: Python ints, one per distinct outcome."""
    values = np.empty(len(outcomes), dtype=object)
    distinct, inverse = np.unique(outcomes, return_inverse=True)
    registers = []
    for outcome in distinct.tolist():
        register = 0
        for qubit, clbit in measures:  # a later measurement into the same clbit wins, as above
            register = (register & ~(1 << clbit)) | (((outcome >> qubit) & 1) << clbit)
        registers.append(register)
    table = np.empty(len(registers), dtype=object)
    table[:] = registers
    values[:] = table[inverse.ravel()]
    return values
