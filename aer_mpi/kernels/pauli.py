"""Reductions of one shard: marginal probabilities and Pauli partial sums.

No MPI and no rank: where a sum depends on where the shard sits in the
global state, the caller passes the offsets and masks in. Sums are made in
complex128 / float64 whatever the shard's precision, chunk by chunk in a
fixed order.

Pauli convention: a Pauli string with X-mask ``x`` (bits where it has X or
Y), Z-mask ``z`` (Z or Y) and ``ny`` Y's maps basis state ``b`` to
``i**ny * (-1)**popcount(b & z) * |b ^ x>``, so

    <psi|P|psi> = i**ny * sum_b conj(psi[b ^ x]) * (-1)**popcount(b & z) * psi[b].

The kernels compute the sum without the ``i**ny`` factor, for many Z-masks
sharing one X-mask in a single pass.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aer_mpi.kernels.numpy_backend import CHUNK_ELEMENTS, _num_qubits, _target_view, chunk_views


def marginal_probabilities(state: np.ndarray, positions: Sequence[int]) -> np.ndarray:
    """Unnormalised probabilities of the basis states of local ``positions``.

    Entry ``i`` has bit ``j`` equal to the value of ``positions[j]``; the
    result has ``2**len(positions)`` float64 entries.
    """
    k = len(positions)
    dim = 1 << k
    out = np.zeros(dim, dtype=np.float64)
    n = _num_qubits(state)
    if n == 0:
        out[0] = float(abs(state[0]) ** 2)
        return out
    view = _target_view(state, positions)
    for chunk in chunk_views(view, max(CHUNK_ELEMENTS, dim)):
        block = chunk.reshape(-1, dim)
        out += (block.real.astype(np.float64) ** 2 + block.imag.astype(np.float64) ** 2).sum(axis=0)
    return out


def parities(indices: np.ndarray, z_masks: Sequence[int]) -> list[np.ndarray]:
    """For each Z mask, whether each index has an odd number of its bits set."""
    return [(np.bitwise_count(indices & np.int64(z)) & 1).astype(bool) for z in z_masks]


def pauli_block_sums(
    mine: np.ndarray, partner: np.ndarray, offset: int, x_low: int, z_masks: Sequence[int]
) -> np.ndarray:
    """Partial sums over one aligned block of the shard.

    ``mine`` is the block of entries ``offset .. offset + len(mine) - 1``
    (``len(mine)`` a power of two, ``offset`` a multiple of it); ``partner``
    holds the entries ``b ^ x`` for those ``b``, in the order of
    ``(b - offset) ^ x_low`` (``x_low < len(mine)``). Returns, for each
    ``z`` in ``z_masks``, ``sum_b conj(partner[(b - offset) ^ x_low]) * (-1)**popcount(b & z) * mine[b - offset]``.
    """
    size = mine.shape[0]
    step = min(size, CHUNK_ELEMENTS)  # temporaries stay this small whatever the block
    local = np.arange(step, dtype=np.int64)
    x_sub, x_within = x_low & ~(step - 1), x_low & (step - 1)
    out = np.zeros(len(z_masks), dtype=np.complex128)
    for start in range(0, size, step):
        other_start = start ^ x_sub
        other = partner[other_start : other_start + step]
        if x_within:
            other = other[local ^ x_within]
        products = np.conj(other.astype(np.complex128)) * mine[start : start + step].astype(np.complex128)
        total = products.sum()
        indices = local | np.int64(offset + start)
        for k, odd in enumerate(parities(indices, z_masks)):
            out[k] += total - 2 * products[odd].sum() if z_masks[k] else total
    return out


def block_size(num_elements: int, limit: int = CHUNK_ELEMENTS) -> int:
    """Largest power of two dividing ``num_elements`` (itself a power of two) and at most ``limit``."""
    size = 1
    while size * 2 <= min(num_elements, max(1, limit)):
        size *= 2
    return size


def nonzero_entries(state: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Local indices and values of the entries whose magnitude exceeds ``threshold``."""
    indices, values = [], []
    for start in range(0, state.shape[0], CHUNK_ELEMENTS):
        part = state[start : start + CHUNK_ELEMENTS]
        found = np.nonzero(np.abs(part) > threshold)[0]
        indices.append(found + start)
        values.append(part[found])
    return np.concatenate(indices).astype(np.int64), np.concatenate(values)
