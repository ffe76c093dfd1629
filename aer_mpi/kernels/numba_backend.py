"""Numba kernels on one local array (optional: used when numba imports).

Same contract as ``numpy_backend``: in place, positions are bit indices of the
local array, no temporary larger than ``2**k`` amplitudes per thread. The
loops are parallel (``prange``); the number of threads is set by the caller
through ``set_threads`` so that ranks on one node never oversubscribe it.

Arithmetic is plain IEEE (no fastmath), with fused multiply-adds written out:
each output amplitude of a dense gate is the sum of ``matrix[r, c] * a[c]``
for ``c`` in increasing order, each column adding its four real products by
four ``fma`` (``_cmul``, ``_cmac``), so results do not depend on the thread
count or on how the work is split, and the native kernels (``native/``), which
do the same fmas, give the same bits. An fma is rounded once, as IEEE
defines it, whether the CPU or libm computes it; it halves the instructions of
a gate's inner loop.

Compiled code is cached on disk (``cache=True``) next to this file, or in
``NUMBA_CACHE_DIR``; when neither is writable numba compiles in memory.
"""

from __future__ import annotations

import numpy as np
import numba
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from aer_mpi.kernels.numpy_backend import CHUNK_ELEMENTS, byte_tables, ends_of

#: Work items (groups of 2**k amplitudes) per parallel block.
_BLOCK_GROUPS = 1 << 12


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma``: an instruction where the CPU has one)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@njit(cache=True, nogil=True, inline="always")
def _cmul(mr, mi, ar, ai):  # pragma: no cover - compiled
    """``m * a`` as the first column of a sum: ``(fma(-mi, ai, mr*ar), fma(mi, ar, mr*ai))``."""
    return _fma(-mi, ai, mr * ar), _fma(mi, ar, mr * ai)


@njit(cache=True, nogil=True, inline="always")
def _cmac(re, im, mr, mi, ar, ai):  # pragma: no cover - compiled
    """``(re, im) + m * a`` as a later column: real part first, then the imaginary part's products."""
    return _fma(-mi, ai, _fma(mr, ar, re)), _fma(mi, ar, _fma(mr, ai, im))


def set_threads(count: int) -> int:
    """Use ``count`` threads (at most numba's pool size); returns the count in use."""
    count = max(1, min(int(count), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(count)
    return count


def get_threads() -> int:
    return numba.get_num_threads()


@njit(parallel=True, cache=True, nogil=True)
def _matrix_1(state, mre, mim, position):  # pragma: no cover - compiled
    half = state.shape[0] >> 1
    bit = np.int64(1) << position
    low = bit - 1
    blocks = (half + _BLOCK_GROUPS - 1) // _BLOCK_GROUPS
    for b in prange(blocks):
        end = min(half, (b + 1) * _BLOCK_GROUPS)
        for g in range(b * _BLOCK_GROUPS, end):
            i0 = ((g & ~low) << 1) | (g & low)
            _pair(state, i0, i0 | bit, mre, mim, 0)


@njit(cache=True, nogil=True, inline="always")
def _pair(state, i0, i1, mre, mim, d0):  # pragma: no cover - compiled
    """A 1-qubit gate (row-major entries from ``d0`` of ``mre``/``mim``) on amplitudes i0, i1."""
    a0r = state[i0].real
    a0i = state[i0].imag
    a1r = state[i1].real
    a1i = state[i1].imag
    re, im = _cmul(mre[d0], mim[d0], a0r, a0i)
    re, im = _cmac(re, im, mre[d0 + 1], mim[d0 + 1], a1r, a1i)
    state[i0] = complex(re, im)
    re, im = _cmul(mre[d0 + 2], mim[d0 + 2], a0r, a0i)
    re, im = _cmac(re, im, mre[d0 + 3], mim[d0 + 3], a1r, a1i)
    state[i1] = complex(re, im)


@njit(cache=True, nogil=True, inline="always")
def _row4(mre, mim, row, a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i):  # pragma: no cover - compiled
    """Output ``row`` of a 2-qubit gate (entries from ``row`` of ``mre``/``mim``), as a complex."""
    re, im = _cmul(mre[row], mim[row], a0r, a0i)
    re, im = _cmac(re, im, mre[row + 1], mim[row + 1], a1r, a1i)
    re, im = _cmac(re, im, mre[row + 2], mim[row + 2], a2r, a2i)
    re, im = _cmac(re, im, mre[row + 3], mim[row + 3], a3r, a3i)
    return complex(re, im)


@njit(cache=True, nogil=True, inline="always")
def _quad(state, i00, i01, i10, i11, mre, mim, d0):  # pragma: no cover - compiled
    """A 2-qubit gate (row-major entries from ``d0``) on amplitudes i00, i01, i10, i11."""
    a0r = state[i00].real
    a0i = state[i00].imag
    a1r = state[i01].real
    a1i = state[i01].imag
    a2r = state[i10].real
    a2i = state[i10].imag
    a3r = state[i11].real
    a3i = state[i11].imag
    state[i00] = _row4(mre, mim, d0, a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i)
    state[i01] = _row4(mre, mim, d0 + 4, a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i)
    state[i10] = _row4(mre, mim, d0 + 8, a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i)
    state[i11] = _row4(mre, mim, d0 + 12, a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i)


@njit(parallel=True, cache=True, nogil=True)
def _matrix_2(state, mre, mim, p0, p1):  # pragma: no cover - compiled
    # p0 is the matrix's low bit, p1 its high bit (positions, any order)
    quarter = state.shape[0] >> 2
    lo = min(p0, p1)
    hi = max(p0, p1)
    mask_lo = (np.int64(1) << lo) - 1
    mask_hi = (np.int64(1) << hi) - 1
    b0 = np.int64(1) << p0
    b1 = np.int64(1) << p1
    blocks = (quarter + _BLOCK_GROUPS - 1) // _BLOCK_GROUPS
    for b in prange(blocks):
        end = min(quarter, (b + 1) * _BLOCK_GROUPS)
        for g in range(b * _BLOCK_GROUPS, end):
            t = ((g & ~mask_lo) << 1) | (g & mask_lo)
            i00 = ((t & ~mask_hi) << 1) | (t & mask_hi)
            _quad(state, i00, i00 | b0, i00 | b1, i00 | b0 | b1, mre, mim, 0)


#: Groups a k-qubit kernel handles together, so the inner loops vectorise.
_BATCH = 64


@njit(cache=True, nogil=True)
def _batch_row(mre, mim, row, dim, ar, ai, outr, outi, count):  # pragma: no cover - compiled
    """Output row of a gate (entries ``row .. row+dim`` of ``mre``/``mim``) for ``count`` groups
    whose column amplitudes are ``ar[c, t]``, ``ai[c, t]``: ``_cmul`` then ``_cmac`` per column."""
    xr = mre[row]
    xi = mim[row]
    for t in range(count):
        outr[t], outi[t] = _cmul(xr, xi, ar[0, t], ai[0, t])
    for c in range(1, dim):
        xr = mre[row + c]
        xi = mim[row + c]
        for t in range(count):
            outr[t], outi[t] = _cmac(outr[t], outi[t], xr, xi, ar[c, t], ai[c, t])


@njit(parallel=True, cache=True, nogil=True)
def _matrix_k(state, mre, mim, sorted_positions, offsets):  # pragma: no cover - compiled
    """``offsets[j]``: where matrix index ``j`` sits relative to its group's base.

    Amplitudes of ``_BATCH`` groups are split into real and imaginary rows,
    so that the multiply-add over the batch is a plain vector loop; each
    output is still the sum over ``c`` in increasing order of
    ``matrix[r, c] * a[c]`` (``_batch_row``). ``mre``/``mim`` are row-major, flat.
    """
    k = sorted_positions.shape[0]
    dim = offsets.shape[0]
    groups = state.shape[0] >> k
    blocks = (groups + _BLOCK_GROUPS - 1) // _BLOCK_GROUPS
    for b in prange(blocks):
        ar = np.empty((dim, _BATCH), dtype=mre.dtype)
        ai = np.empty((dim, _BATCH), dtype=mre.dtype)
        outr = np.empty(_BATCH, dtype=mre.dtype)
        outi = np.empty(_BATCH, dtype=mre.dtype)
        bases = np.empty(_BATCH, dtype=np.int64)
        end = min(groups, (b + 1) * _BLOCK_GROUPS)
        for g0 in range(b * _BLOCK_GROUPS, end, _BATCH):
            count = min(_BATCH, end - g0)
            for t in range(count):
                base = g0 + t
                for j in range(k):
                    p = sorted_positions[j]
                    low = (np.int64(1) << p) - 1
                    base = ((base & ~low) << 1) | (base & low)
                bases[t] = base
                for c in range(dim):
                    v = state[base + offsets[c]]
                    ar[c, t] = v.real
                    ai[c, t] = v.imag
            for r in range(dim):
                _batch_row(mre, mim, r * dim, dim, ar, ai, outr, outi, count)
                off = offsets[r]
                for t in range(count):
                    state[bases[t] + off] = complex(outr[t], outi[t])


@njit(parallel=True, cache=True, nogil=True)
def _diagonal(state, diag, tables):  # pragma: no cover - compiled
    """``diag[idx]`` with ``idx`` the OR of ``tables[t, byte t of the index]``."""
    size = state.shape[0]
    num_tables = tables.shape[0]
    if size < 256:
        for i in range(size):
            state[i] *= diag[tables[0, i]]
        return
    runs = size >> 8
    blocks = (runs + 63) >> 6
    for b in prange(blocks):
        end = min(runs, (b + 1) << 6)
        for run in range(b << 6, end):
            high = np.int64(0)
            for t in range(1, num_tables):
                high |= tables[t, (run >> (8 * (t - 1))) & 255]
            base = run << 8
            for j in range(256):
                state[base + j] *= diag[high | tables[0, j]]


@njit(parallel=True, cache=True, nogil=True)
def _scale(state, factor):  # pragma: no cover - compiled
    size = state.shape[0]
    blocks = (size + (_BLOCK_GROUPS << 2) - 1) // (_BLOCK_GROUPS << 2)
    for b in prange(blocks):
        end = min(size, (b + 1) * (_BLOCK_GROUPS << 2))
        for i in range(b * (_BLOCK_GROUPS << 2), end):
            state[i] *= factor


@njit(parallel=True, cache=True, nogil=True)
def _swap_bits(state, lows, highs):  # pragma: no cover - compiled
    """Exchange index bits ``lows[j]`` and ``highs[j]`` for every j at once (disjoint bits)."""
    size = state.shape[0]
    pairs = lows.shape[0]
    blocks = (size + (_BLOCK_GROUPS << 2) - 1) // (_BLOCK_GROUPS << 2)
    for b in prange(blocks):
        end = min(size, (b + 1) * (_BLOCK_GROUPS << 2))
        for i in range(b * (_BLOCK_GROUPS << 2), end):
            j = i
            for t in range(pairs):
                if ((i >> lows[t]) ^ (i >> highs[t])) & 1:
                    j ^= (np.int64(1) << lows[t]) | (np.int64(1) << highs[t])
            if j > i:
                a = state[i]
                state[i] = state[j]
                state[j] = a


def swap_bits(state: np.ndarray, pairs) -> None:
    lows = np.array([p[0] for p in pairs], dtype=np.int64)
    highs = np.array([p[1] for p in pairs], dtype=np.int64)
    _swap_bits(state, lows, highs)


@njit(parallel=True, cache=True, nogil=True)
def _probabilities(state, out):  # pragma: no cover - compiled
    size = state.shape[0]
    blocks = (size + (_BLOCK_GROUPS << 2) - 1) // (_BLOCK_GROUPS << 2)
    for b in prange(blocks):
        end = min(size, (b + 1) * (_BLOCK_GROUPS << 2))
        for i in range(b * (_BLOCK_GROUPS << 2), end):
            re = np.float64(state[i].real)
            im = np.float64(state[i].imag)
            out[i] = re * re + im * im


@njit(parallel=True, cache=True, nogil=True)
def _outcome_sums(state, position, sums):  # pragma: no cover - compiled
    """``sums[b] = (|a|**2 summed where position reads 0, ... reads 1)`` over block ``b`` of pairs."""
    half = state.shape[0] >> 1
    bit = np.int64(1) << position
    low = bit - 1
    blocks = sums.shape[0]
    for b in prange(blocks):
        end = min(half, (b + 1) * _BLOCK_GROUPS)
        s0 = 0.0
        s1 = 0.0
        for g in range(b * _BLOCK_GROUPS, end):
            i0 = ((g & ~low) << 1) | (g & low)
            a0 = state[i0]
            a1 = state[i0 | bit]
            r0 = np.float64(a0.real)
            m0 = np.float64(a0.imag)
            r1 = np.float64(a1.real)
            m1 = np.float64(a1.imag)
            s0 += r0 * r0 + m0 * m0
            s1 += r1 * r1 + m1 * m1
        sums[b, 0] = s0
        sums[b, 1] = s1


@njit(cache=True, nogil=True)
def _sum_blocks(sums):  # pragma: no cover - compiled
    zero = 0.0
    one = 0.0
    for b in range(sums.shape[0]):  # in block order: the same sums whatever the thread count
        zero += sums[b, 0]
        one += sums[b, 1]
    return zero, one


def outcome_sums(state: np.ndarray, position: int) -> tuple[float, float]:
    half = state.shape[0] >> 1
    sums = np.empty(((half + _BLOCK_GROUPS - 1) // _BLOCK_GROUPS, 2), dtype=np.float64)
    _outcome_sums(state, np.int64(position), sums)
    zero, one = _sum_blocks(sums)
    return float(zero), float(one)


@njit(parallel=True, cache=True, nogil=True)
def _collapse(state, source, position, outcome, factor):  # pragma: no cover - compiled
    """``state`` = ``source`` projected on ``position`` = ``outcome``, times ``factor`` (one pass;
    ``source`` may be ``state``)."""
    half = state.shape[0] >> 1
    bit = np.int64(1) << position
    low = bit - 1
    keep = bit if outcome else np.int64(0)
    drop = bit ^ keep
    blocks = (half + _BLOCK_GROUPS - 1) // _BLOCK_GROUPS
    zero = state.dtype.type(0)
    for b in prange(blocks):
        end = min(half, (b + 1) * _BLOCK_GROUPS)
        for g in range(b * _BLOCK_GROUPS, end):
            i0 = ((g & ~low) << 1) | (g & low)
            state[i0 | keep] = source[i0 | keep] * factor
            state[i0 | drop] = zero


def collapse(state: np.ndarray, position: int, outcome: int, factor: float, source=None) -> None:
    _collapse(state, state if source is None else source, np.int64(position), np.int64(outcome),
              state.real.dtype.type(factor))


def apply_matrix(state: np.ndarray, matrix: np.ndarray, positions) -> None:
    k = len(positions)
    n = state.shape[0].bit_length() - 1
    if k == 0:
        _scale(state, state.dtype.type(matrix[0, 0]))
        return
    matrix = np.asarray(matrix, dtype=state.dtype)
    mre = np.ascontiguousarray(matrix.real).reshape(-1)
    mim = np.ascontiguousarray(matrix.imag).reshape(-1)
    if k == 1:
        _matrix_1(state, mre, mim, np.int64(positions[0]))
    elif k == 2:
        _matrix_2(state, mre, mim, np.int64(positions[0]), np.int64(positions[1]))
    else:
        if max(positions) >= n:
            raise ValueError(f"positions {list(positions)} outside a {n}-qubit array")
        offsets = np.zeros(1 << k, dtype=np.int64)
        for j, p in enumerate(positions):
            offsets[(np.arange(1 << k) >> j) & 1 == 1] |= 1 << int(p)
        _matrix_k(state, mre, mim, np.sort(np.asarray(positions, dtype=np.int64)), offsets)


def apply_diagonal(state: np.ndarray, diag: np.ndarray, positions) -> None:
    n = state.shape[0].bit_length() - 1
    if len(positions) == 0:
        _scale(state, state.dtype.type(diag[0]))
        return
    diag = np.ascontiguousarray(diag, dtype=state.dtype)
    _diagonal(state, diag, byte_tables(n, positions))


def scale(state: np.ndarray, factor: complex) -> None:
    _scale(state, state.dtype.type(factor))


def probabilities(state: np.ndarray) -> np.ndarray:
    out = np.empty(state.shape[0], dtype=np.float64)
    _probabilities(state, out)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _chunk_sums(state, chunk, sums):  # pragma: no cover - compiled
    size = state.shape[0]
    for c in prange(sums.shape[0]):
        total = 0.0
        for k in range(c * chunk, min(size, (c + 1) * chunk)):
            re = np.float64(state[k].real)
            im = np.float64(state[k].imag)
            total += re * re + im * im
        sums[c] = total


def cumulative_ends(state: np.ndarray) -> np.ndarray:
    """``numpy_backend.cumulative_ends``, the chunks summed by the threads (same values)."""
    count = -(-state.shape[0] // CHUNK_ELEMENTS)
    sums = np.empty(count, dtype=np.float64)
    _chunk_sums(state, CHUNK_ELEMENTS, sums)
    return ends_of(sums)


@njit(parallel=True, cache=True, nogil=True)
def _pauli_chunk_sums(mine, partner, offset, x_low, z_masks, chunk, partial):  # pragma: no cover - compiled
    for c in prange(partial.shape[0]):
        for b in range(c * chunk, min(mine.shape[0], (c + 1) * chunk)):
            p = partner[b ^ x_low]
            m = mine[b]
            pr, pi = np.float64(p.real), np.float64(p.imag)
            mr, mi = np.float64(m.real), np.float64(m.imag)
            re = pr * mr + pi * mi  # conj(p) * m
            im = pr * mi - pi * mr
            index = offset + b
            for k in range(z_masks.shape[0]):
                v = index & z_masks[k]
                v ^= v >> 32
                v ^= v >> 16
                v ^= v >> 8
                v ^= v >> 4
                v ^= v >> 2
                v ^= v >> 1
                if v & 1:
                    partial[c, k, 0] -= re
                    partial[c, k, 1] -= im
                else:
                    partial[c, k, 0] += re
                    partial[c, k, 1] += im


def pauli_block_sums(mine: np.ndarray, partner: np.ndarray, offset: int, x_low: int, z_masks) -> np.ndarray:
    """``pauli.pauli_block_sums`` in one read of the block for every Z mask: each chunk of
    ``CHUNK_ELEMENTS`` summed in order by a thread, the chunks' sums added in order (the same
    values on any thread count; rounding differs from numpy's pairwise sums by ~1e-16)."""
    masks = np.asarray(list(z_masks), dtype=np.int64)
    chunks = -(-mine.shape[0] // CHUNK_ELEMENTS)
    partial = np.zeros((chunks, len(masks), 2), dtype=np.float64)
    _pauli_chunk_sums(mine, partner, np.int64(offset), np.int64(x_low), masks, CHUNK_ELEMENTS, partial)
    total = partial.sum(axis=0) if chunks > 1 else partial[0]
    return total[:, 0] + 1j * total[:, 1]


@njit(parallel=True, cache=True, nogil=True)
def _locate(state, chunk, ends, bounds, targets, found):  # pragma: no cover - compiled
    size = state.shape[0]
    for c in prange(bounds.shape[0] - 1):
        j = bounds[c]
        last = bounds[c + 1]
        running = ends[c]
        total = 0.0
        k = c * chunk
        end = min(size, k + chunk)
        while j < last and k < end:
            re = np.float64(state[k].real)
            im = np.float64(state[k].imag)
            total += re * re + im * im
            value = total + running
            while j < last and targets[j] < value:
                found[j] = k
                j += 1
            k += 1
        while j < last:  # not reached: the chunk's last value exceeds its targets
            found[j] = end - 1
            j += 1


def locate(state: np.ndarray, ends: np.ndarray, targets: np.ndarray, found: np.ndarray) -> None:
    """``numpy_backend.locate``, the chunks searched by the threads, each in one pass (same values)."""
    bounds = np.searchsorted(targets, ends, side="left").astype(np.int64)
    _locate(state, CHUNK_ELEMENTS, ends, bounds, targets, found)


# -- cache-blocked stages --------------------------------------------------------
# A stage is a list of gates applied chunk by chunk: each chunk of 2**c
# amplitudes is loaded once, every gate of the stage is applied to it while it
# sits in cache, and it is written back once. A dense gate's positions are all
# below c (it mixes amplitudes inside a chunk only); a diagonal may sit on any
# position (a bit above c is a constant of the chunk). The arithmetic on each
# amplitude is exactly the one of the single-gate kernels above (same
# products, same order of the sums), so a stage gives the same bits as its
# gates one at a time, whatever the chunk size or the thread count.

_DENSE = 0
_DIAGONAL = 1


@njit(cache=True, nogil=True)
def _stage_chunk(state, start, size, kinds, widths, pos, pstart, data, mre, mim, dstart,
                 offs, ostart, tables):  # pragma: no cover - compiled
    """Every gate of the stage on ``state[start:start + size]``, in order."""
    dim_max = 1
    for g in range(kinds.shape[0]):
        if kinds[g] == _DENSE and widths[g] >= 3:
            dim_max = max(dim_max, np.int64(1) << widths[g])
    ar = np.empty((dim_max, _BATCH), dtype=mre.dtype)
    ai = np.empty((dim_max, _BATCH), dtype=mre.dtype)
    outr = np.empty(_BATCH, dtype=mre.dtype)
    outi = np.empty(_BATCH, dtype=mre.dtype)
    bases = np.empty(_BATCH, dtype=np.int64)
    num_tables = tables.shape[1]
    for g in range(kinds.shape[0]):
        k = widths[g]
        d0 = dstart[g]
        if kinds[g] == _DIAGONAL:
            if size < 256:
                for j in range(size):
                    i = start + j
                    idx = np.int64(0)
                    for t in range(num_tables):
                        idx |= tables[g, t, (i >> (8 * t)) & 255]
                    state[i] *= data[d0 + idx]
            else:
                first = start >> 8
                for run in range(first, first + (size >> 8)):
                    high = np.int64(0)
                    for t in range(1, num_tables):
                        high |= tables[g, t, (run >> (8 * (t - 1))) & 255]
                    base = run << 8
                    for j in range(256):
                        state[base + j] *= data[d0 + (high | tables[g, 0, j])]
        elif k == 1:
            p = pos[pstart[g]]
            bit = np.int64(1) << p
            low = bit - 1
            for h in range(size >> 1):
                i0 = start + (((h & ~low) << 1) | (h & low))
                _pair(state, i0, i0 | bit, mre, mim, d0)
        elif k == 2:
            p0 = pos[pstart[g]]
            p1 = pos[pstart[g] + 1]
            lo = min(p0, p1)
            hi = max(p0, p1)
            mask_lo = (np.int64(1) << lo) - 1
            mask_hi = (np.int64(1) << hi) - 1
            b0 = np.int64(1) << p0
            b1 = np.int64(1) << p1
            for q in range(size >> 2):
                t = ((q & ~mask_lo) << 1) | (q & mask_lo)
                i00 = start + (((t & ~mask_hi) << 1) | (t & mask_hi))
                _quad(state, i00, i00 | b0, i00 | b1, i00 | b0 | b1, mre, mim, d0)
        else:
            dim = np.int64(1) << k
            o0 = ostart[g]
            p0 = pstart[g]
            groups = size >> k
            for g0 in range(0, groups, _BATCH):
                count = min(_BATCH, groups - g0)
                for t in range(count):
                    base = g0 + t
                    for j in range(k):
                        low = (np.int64(1) << pos[p0 + j]) - 1
                        base = ((base & ~low) << 1) | (base & low)
                    base += start
                    bases[t] = base
                    for c in range(dim):
                        v = state[base + offs[o0 + c]]
                        ar[c, t] = v.real
                        ai[c, t] = v.imag
                for r in range(dim):
                    _batch_row(mre, mim, d0 + r * dim, dim, ar, ai, outr, outi, count)
                    off = offs[o0 + r]
                    for t in range(count):
                        state[bases[t] + off] = complex(outr[t], outi[t])


@njit(parallel=True, cache=True, nogil=True)
def _stage_parallel(state, chunk_qubits, kinds, widths, pos, pstart, data, mre, mim, dstart,
                    offs, ostart, tables):  # pragma: no cover - compiled
    size = np.int64(1) << chunk_qubits
    for c in prange(state.shape[0] >> chunk_qubits):
        _stage_chunk(state, c * size, size, kinds, widths, pos, pstart, data, mre, mim, dstart,
                     offs, ostart, tables)


@njit(cache=True, nogil=True)
def _stage_serial(state, chunk_qubits, kinds, widths, pos, pstart, data, mre, mim, dstart,
                  offs, ostart, tables):  # pragma: no cover - compiled
    size = np.int64(1) << chunk_qubits
    for c in range(state.shape[0] >> chunk_qubits):
        _stage_chunk(state, c * size, size, kinds, widths, pos, pstart, data, mre, mim, dstart,
                     offs, ostart, tables)


def _pack_stage(gates, n: int, dtype):
    """The stage's gates as flat arrays for ``_stage_chunk`` (per-gate fields gathered in lists and
    made arrays once: numpy's per-element writes were most of the packing of a small state's stage)."""
    count = len(gates)
    kinds, widths, pstart, dstart, ostart = [], [], [], [], []
    num_tables = max(1, (n + 7) // 8)
    tables = np.zeros((count, num_tables, 256), dtype=np.int64)
    pos, data, offs = [], [], []
    npos = ndata = noffs = 0
    for g, (positions, matrix, diag) in enumerate(gates):
        k = len(positions)
        widths.append(k)
        dstart.append(ndata)
        pstart.append(npos)
        ostart.append(noffs)
        if diag is not None:
            kinds.append(_DIAGONAL)
            values = np.asarray(diag, dtype=dtype).reshape(-1)
            tables[g] = byte_tables(n, positions)
        else:
            kinds.append(_DENSE)
            values = np.asarray(matrix, dtype=dtype).reshape(-1)
            if k >= 3:
                ordered = sorted(int(p) for p in positions)
                offsets = np.zeros(1 << k, dtype=np.int64)
                for j, p in enumerate(positions):
                    offsets[(np.arange(1 << k) >> j) & 1 == 1] |= 1 << int(p)
                offs.append(offsets)
                noffs += 1 << k
            else:
                ordered = [int(p) for p in positions]
            pos.extend(ordered)
            npos += k
        data.append(values)
        ndata += values.shape[0]
    data = np.ascontiguousarray(np.concatenate(data)) if data else np.zeros(1, dtype=dtype)
    per_gate = lambda values: np.array(values, dtype=np.int64)  # noqa: E731  (count entries, maybe none)
    pos_array = np.array(pos if pos else [0], dtype=np.int64)
    offs_array = np.concatenate(offs) if offs else np.zeros(1, dtype=np.int64)
    return (per_gate(kinds), per_gate(widths), pos_array, per_gate(pstart), data, np.ascontiguousarray(data.real),
            np.ascontiguousarray(data.imag), per_gate(dstart), offs_array, per_gate(ostart), tables)


def apply_stage(state: np.ndarray, gates, chunk_qubits: int) -> None:
    """Apply ``gates`` (``(positions, matrix, diag)``, one of the last two None) chunk by chunk.

    Dense gates must have every position below ``chunk_qubits``; diagonals
    may have any. The chunk is ``2**min(chunk_qubits, n)`` amplitudes.
    """
    n = state.shape[0].bit_length() - 1
    c = min(int(chunk_qubits), n)
    packed = _pack_stage(gates, n, state.dtype)
    if c < n and numba.get_num_threads() > 1:
        _stage_parallel(state, np.int64(c), *packed)
    else:
        _stage_serial(state, np.int64(c), *packed)
