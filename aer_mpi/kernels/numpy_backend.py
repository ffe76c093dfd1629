"""Pure-numpy kernels on one local array.

Every function works on a view of the array as a tensor of shape
``(2,) * num_local_qubits`` (axis ``a`` is bit ``L - 1 - a``) and walks it in
chunks of at most ``CHUNK_ELEMENTS`` amplitudes, so the temporaries stay
small whatever the shard size.
"""

from __future__ import annotations

import functools
from itertools import product
from typing import Iterator, Sequence

import numpy as np

#: Largest number of amplitudes a kernel copies into a temporary at once.
CHUNK_ELEMENTS = 1 << 16


def _num_qubits(state: np.ndarray) -> int:
    size = state.shape[0]
    n = size.bit_length() - 1
    if size != 1 << n or state.ndim != 1:
        raise ValueError(f"expecting a 1-d array of length 2**n, got shape {state.shape}")
    return n


def _axis(num_qubits: int, position: int) -> int:
    return num_qubits - 1 - position


def chunk_views(tensor: np.ndarray, max_elements: int = CHUNK_ELEMENTS) -> Iterator[np.ndarray]:
    """Views of ``tensor`` that together cover it, each of at most ``max_elements``.

    The leading axes are fixed one combination at a time; the views come in
    C order of those axes.
    """
    lead = 0
    size = tensor.size
    while size > max_elements and lead < tensor.ndim:
        size //= tensor.shape[lead]
        lead += 1
    if lead == 0:
        yield tensor
        return
    for index in product(*(range(d) for d in tensor.shape[:lead])):
        yield tensor[index + (Ellipsis,)]


def _target_view(state: np.ndarray, positions: Sequence[int]) -> np.ndarray:
    """Tensor view whose last axes are ``positions`` (``positions[0]`` last)."""
    n = _num_qubits(state)
    tensor = state.reshape((2,) * n) if n else state.reshape(())
    targets = [_axis(n, p) for p in reversed(positions)]
    others = [a for a in range(n) if a not in targets]
    return tensor.transpose(others + targets)


def apply_matrix(state: np.ndarray, matrix: np.ndarray, positions: Sequence[int]) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to local ``positions``, in place."""
    k = len(positions)
    if k == 0:
        state *= matrix[0, 0]
        return
    view = _target_view(state, positions)
    matrix_t = np.ascontiguousarray(matrix.T, dtype=state.dtype)
    dim = 1 << k
    per_chunk = max(CHUNK_ELEMENTS, dim)
    parts = _real_parts(matrix_t)  # once per gate, not per chunk
    for chunk in chunk_views(view, per_chunk):
        block = chunk.reshape(-1, dim)  # a copy when the targets are strided
        chunk[...] = ordered_product(block, parts).reshape(chunk.shape)


def _real_parts(matrix_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The real and imaginary parts of ``matrix_t``, shaped ``(k, j, 1)`` for ``ordered_product``."""
    return np.ascontiguousarray(matrix_t.real)[:, :, None], np.ascontiguousarray(matrix_t.imag)[:, :, None]


def ordered_product(block: np.ndarray, parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``block @ matrix_t``, every output summed over ``k`` in order, each product and sum rounded alone.

    BLAS's product rounds according to the shapes it is given (its blocking over ``k``, its one-row
    path), and a gate on a global qubit reaches a rank as a sub-block of its matrix: with BLAS, the
    same circuit and seed gave states that differed in the last bits at 1 and 2 ranks, and in
    single precision a shot's outcome now and then. In order, a missing term is an exact zero, so
    every rank count gets the same bits. ``parts`` is ``_real_parts(matrix_t)``.
    """
    rows, dim = block.shape
    real = block.real.dtype
    xr, xi = block.real.T, block.imag.T  # (dim, rows) views: no copy of the chunk (peak memory)
    mr, mi = parts
    acc_r = np.zeros((dim, rows), real)
    acc_i = np.zeros((dim, rows), real)
    term = np.empty((dim, rows), real)
    for k in range(dim):
        np.multiply(mr[k], xr[k], out=term)
        acc_r += term
        np.multiply(mi[k], xi[k], out=term)
        acc_r -= term
        np.multiply(mi[k], xr[k], out=term)
        acc_i += term
        np.multiply(mr[k], xi[k], out=term)
        acc_i += term
    out = np.empty((rows, dim), block.dtype)
    out.real = acc_r.T
    out.imag = acc_i.T
    return out


def apply_diagonal(state: np.ndarray, diag: np.ndarray, positions: Sequence[int]) -> None:
    """Multiply basis state ``i`` of local ``positions`` by ``diag[i]``, in place."""
    k = len(positions)
    if k == 0:
        state *= diag[0]
        return
    view = _target_view(state, positions)
    factors = np.asarray(diag, dtype=state.dtype).reshape((2,) * k)
    for chunk in chunk_views(view):
        chunk *= factors


def swap_bits(state: np.ndarray, pairs: Sequence[tuple[int, int]]) -> None:
    """Exchange index bits ``a`` and ``b`` for each ``(a, b)`` (disjoint), in place, chunk by chunk."""
    n = _num_qubits(state)
    for a, b in pairs:
        low, high = min(a, b), max(a, b)
        x = state.reshape(1 << (n - 1 - high), 2, 1 << (high - low - 1), 2, 1 << low)
        for one, other in zip(chunk_views(x[:, 1, :, 0, :]), chunk_views(x[:, 0, :, 1, :])):
            held = one.copy()
            one[...] = other
            other[...] = held


def scale(state: np.ndarray, factor: complex) -> None:
    state *= factor


def norm_squared(state: np.ndarray) -> float:
    """Sum of squared magnitudes, accumulated chunk by chunk in a fixed order."""
    total = 0.0
    for start in range(0, state.shape[0], CHUNK_ELEMENTS):
        total += _squares(state[start : start + CHUNK_ELEMENTS])
    return total


def probabilities(state: np.ndarray) -> np.ndarray:
    """``|state[i]|**2`` for every entry, in float64 (each ``re*re + im*im``), chunk by chunk."""
    out = np.empty(state.shape[0], dtype=np.float64)
    for start in range(0, state.shape[0], CHUNK_ELEMENTS):
        part = state[start : start + CHUNK_ELEMENTS]
        re = part.real.astype(np.float64)
        im = part.imag.astype(np.float64)
        np.add(re * re, im * im, out=out[start : start + CHUNK_ELEMENTS])
    return out


def _squares(flat: np.ndarray) -> float:
    """Sum of squared magnitudes of a contiguous 1-d chunk, without BLAS.

    ``np.vdot`` goes to a threaded BLAS (OpenBLAS zdotc), whose threads cost
    milliseconds per call when the cores are busy (measured: 23 us alone,
    2.6 ms with a second BLAS thread on a loaded 2-core machine), more than
    the sum itself on a small state.
    """
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    parts = flat.view(flat.real.dtype)
    return float(np.add.reduce(np.square(parts, dtype=np.float64), dtype=np.float64))


def _half_chunks(state: np.ndarray, position: int, outcome: int) -> Iterator[np.ndarray]:
    """Views of the entries of ``state`` where ``position`` reads ``outcome``, each of at most
    ``CHUNK_ELEMENTS`` (slices of whole rows: a low position does not make them tiny)."""
    pairs = state.reshape(-1, 2, 1 << position)
    rows = pairs.shape[0]
    step = max(1, CHUNK_ELEMENTS >> position)
    for start in range(0, rows, step):
        half = pairs[start:start + step, outcome, :]
        if half.size > CHUNK_ELEMENTS:
            yield from chunk_views(half)
        else:
            yield half


def outcome_sums(state: np.ndarray, position: int) -> tuple[float, float]:
    """Unnormalised probabilities that local ``position`` reads 0 and 1 (one read of the state)."""
    sums = []
    for outcome in (0, 1):
        total = 0.0
        for chunk in _half_chunks(state, position, outcome):
            total += _squares(chunk.reshape(-1))
        sums.append(total)
    return sums[0], sums[1]


def probability_of_one(state: np.ndarray, position: int) -> float:
    """Unnormalised probability that local ``position`` reads 1."""
    total = 0.0
    for chunk in _half_chunks(state, position, 1):
        total += _squares(chunk.reshape(-1))
    return total


def collapse(state: np.ndarray, position: int, outcome: int, factor: float, source=None) -> None:
    """Zero the half where ``position`` != ``outcome``; scale the rest by ``factor``
    (from ``source``, an array of the same shape, when given: instead of a copy and a collapse)."""
    if source is not None:
        np.copyto(state, source)
    for chunk in _half_chunks(state, position, 1 - outcome):
        chunk[...] = 0
    if factor != 1.0:
        for chunk in _half_chunks(state, position, outcome):
            chunk *= factor


def flip(state: np.ndarray, position: int) -> None:
    """Apply X on a local position (exchange the two halves), chunk by chunk."""
    for chunk0, chunk1 in zip(_half_chunks(state, position, 0), _half_chunks(state, position, 1)):
        saved = chunk0.copy()
        chunk0[...] = chunk1
        chunk1[...] = saved


def logical_order_chunks(
    state: np.ndarray, positions_by_significance: Sequence[int], max_elements: int = CHUNK_ELEMENTS
) -> Iterator[np.ndarray]:
    """Contiguous copies of the shard, read in a given bit order.

    ``positions_by_significance[j]`` is the local position holding bit ``j``
    of the order wanted. Concatenated, the chunks are the shard permuted into
    that order; each is at most ``max_elements`` long.
    """
    n = _num_qubits(state)
    view = _target_view(state, list(positions_by_significance)) if n else state
    for chunk in chunk_views(view, max_elements):
        yield np.ascontiguousarray(chunk).reshape(-1)


def _probs(chunk: np.ndarray) -> np.ndarray:
    return chunk.real.astype(np.float64) ** 2 + chunk.imag.astype(np.float64) ** 2


def cumulative_ends(state: np.ndarray) -> np.ndarray:
    """Sampling's cumulative probability at the end of each chunk of ``CHUNK_ELEMENTS`` entries,
    after a leading 0: ``ends[c + 1] = (p_0 + ... + p_last of chunk c) + ends[c]``, each chunk's
    sum in order (``p = re*re + im*im`` in float64). ``ends[-1]`` is the state's mass."""
    count = -(-state.shape[0] // CHUNK_ELEMENTS)
    sums = [np.cumsum(_probs(state[c * CHUNK_ELEMENTS:(c + 1) * CHUNK_ELEMENTS]))[-1] for c in range(count)]
    return ends_of(sums)


def ends_of(sums) -> np.ndarray:
    """``cumulative_ends`` from each chunk's sum: a leading 0, then the running sum in order."""
    ends = np.zeros(len(sums) + 1, dtype=np.float64)
    running = 0.0
    for c, total in enumerate(sums):
        running = float(total) + running
        ends[c + 1] = running
    return ends


def locate(state: np.ndarray, ends: np.ndarray, targets: np.ndarray, found: np.ndarray) -> None:
    """Sampling's search: for each sorted target below ``ends[-1]``, ``found[j]`` = the first
    index whose cumulative value exceeds it; the value at entry k of chunk c is
    ``(p_0 + ... + p_k of the chunk) + ends[c]``, so each chunk is searched on its own."""
    bounds = np.searchsorted(targets, ends, side="left")  # chunk c holds targets bounds[c]:bounds[c+1]
    for c in np.flatnonzero(bounds[1:] > bounds[:-1]):
        chunk = state[c * CHUNK_ELEMENTS:(c + 1) * CHUNK_ELEMENTS]
        cumulative = np.cumsum(_probs(chunk)) + ends[c]
        first, last = bounds[c], bounds[c + 1]
        idx = np.searchsorted(cumulative, targets[first:last], side="right")
        found[first:last] = c * CHUNK_ELEMENTS + np.minimum(idx, len(chunk) - 1)


def last_nonzero(state: np.ndarray) -> int:
    """Index of the last entry with a non-zero probability, or -1."""
    for c in reversed(range(-(-state.shape[0] // CHUNK_ELEMENTS))):
        nonzero = np.flatnonzero(_probs(state[c * CHUNK_ELEMENTS:(c + 1) * CHUNK_ELEMENTS]))
        if len(nonzero):
            return c * CHUNK_ELEMENTS + int(nonzero[-1])
    return -1


def byte_tables(num_bits: int, positions) -> np.ndarray:
    """Per byte of a local index, the diagonal-index bits that byte carries
    (the lookup of the numba and the native diagonal kernels). Shared by every call with the same
    arguments (a small circuit's bindings built the same tables again and again): never write to it.
    (Not flagged read-only: numba compiles a function again for a read-only array.)"""
    return _byte_tables(int(num_bits), tuple(int(p) for p in positions))


@functools.lru_cache(maxsize=4096)
def _byte_tables(num_bits: int, positions: tuple) -> np.ndarray:
    num_tables = max(1, (num_bits + 7) // 8)
    tables = np.zeros((num_tables, 256), dtype=np.int64)
    values = np.arange(256, dtype=np.int64)
    for j, p in enumerate(positions):
        t, shift = divmod(int(p), 8)
        tables[t] |= ((values >> shift) & 1) << j
    return tables
