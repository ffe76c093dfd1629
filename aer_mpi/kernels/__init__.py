"""Single-array numerics.

Promise of this layer: functions on ONE local statevector array (a shard),
in place where they change it, with temporaries bounded by a chunk size and
never the size of the array. Qubits are given as *positions* (bit indices of
the local array). This layer knows nothing of MPI, ranks or Qiskit; where a
result depends on where the shard sits in the global state, the caller passes
the offsets in.

Two implementations of the gate kernels: ``numba`` (``numba_backend.py``, parallel,
used when numba imports) and ``numpy`` (``numpy_backend.py``, always available and
tested against the same oracle). Under ``numba``, cache-blocked stages, bit
swaps and one-gate passes on large arrays run in native C kernels (``native.py``: SIMD vectors, built on first use)
when a C compiler is found; they give the numba kernels' bits, so which one ran
changes no result (``AER_MPI_NATIVE=0`` turns them off). ``use(name)`` picks one for the process;
the environment variable ``AER_MPI_KERNELS`` (``auto``, ``numba`` or
``numpy``) sets the default. ``probabilities`` (every ``|a|**2``, read once per
noisy trajectory), ``outcome_sums`` and ``collapse`` (once per mid-circuit
measurement per group of shots: thousands of times in a dynamic circuit)
have both back ends too; the other functions (marginals, sampling order)
are numpy only.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from aer_mpi import environment
from aer_mpi.errors import InvalidInputError
from aer_mpi.kernels import native, numpy_backend
from aer_mpi.kernels.numpy_backend import (
    chunk_views,
    flip,
    last_nonzero,
    logical_order_chunks,
    norm_squared,
    probability_of_one,
)
from aer_mpi.kernels import pauli as _pauli
from aer_mpi.kernels.pauli import (
    block_size,
    marginal_probabilities,
    nonzero_entries,
)

KERNEL_NAMES = ("auto", "numba", "numpy")

_numba = None  # the numba module once imported
_numba_error: Optional[str] = None
_active = "numpy"
_threads = 1


def _load_numba():
    """Import the numba kernels, or record why not (then numpy is used)."""
    global _numba, _numba_error
    if _numba is not None or _numba_error is not None:
        return _numba
    try:
        if "NUMBA_CACHE_DIR" not in os.environ:
            here = os.path.dirname(os.path.abspath(__file__))
            if not os.access(here, os.W_OK):
                import tempfile

                os.environ["NUMBA_CACHE_DIR"] = os.path.join(
                    tempfile.gettempdir(), f"aer_mpi-numba-{os.getuid() if hasattr(os, 'getuid') else 0}"
                )
        from aer_mpi.kernels import numba_backend as module
    except Exception as exc:  # numba missing or broken: numpy works everywhere
        _numba_error = f"{type(exc).__name__}: {exc}"
        return None
    _numba = module
    return module


def use(name: str = "auto") -> str:
    """Select the gate kernels for this process; returns the name in use.

    ``auto`` is numba when it imports, else numpy; asking for ``numba`` when
    it does not import raises ``ImportError`` saying why.
    """
    global _active
    if name not in KERNEL_NAMES:
        raise ValueError(f"kernels={name!r}: expecting one of {', '.join(KERNEL_NAMES)}")
    if name == "numpy":
        _active = "numpy"
    else:
        module = _load_numba()
        if module is None:
            if name == "numba":
                raise ImportError(f"kernels='numba' but numba cannot be used ({_numba_error}): "
                                  "install numba or use kernels='numpy'")
            _active = "numpy"
        else:
            _active = "numba"
    return _active


def active() -> str:
    """Name of the gate kernels in use: ``numba`` or ``numpy``."""
    return _active


def native_status() -> str:
    """``on: PATH`` when stages and swaps run in the native kernels, else ``off: WHY``."""
    if _active != "numba":
        return f"off: kernels={_active} (the native kernels serve the numba back end)"
    return native.status()


def set_threads(count: int) -> int:
    """Threads the numba kernels may use in this process; returns the count in use."""
    global _threads
    module = _load_numba() if _active == "numba" else None
    _threads = module.set_threads(count) if module is not None else 1
    return _threads


def _check(state: np.ndarray, positions: Sequence[int], n: Optional[int] = None) -> None:
    """Refuse positions out of ``range(n)`` (the state's qubits) or repeated."""
    n = numpy_backend._num_qubits(state) if n is None else n
    if len(positions) and (min(positions) < 0 or max(positions) >= n or len(set(positions)) != len(positions)):
        raise ValueError(f"expecting distinct positions in range({n}), got {list(positions)}")


def apply_matrix(state: np.ndarray, matrix: np.ndarray, positions: Sequence[int]) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to local ``positions``, in place."""
    _check(state, positions)
    if _active == "numba":
        if not native.apply_matrix(state, matrix, positions, _threads):
            _numba.apply_matrix(state, matrix, positions)
    else:
        numpy_backend.apply_matrix(state, matrix, positions)


def apply_diagonal(state: np.ndarray, diag: np.ndarray, positions: Sequence[int]) -> None:
    """Multiply basis state ``i`` of local ``positions`` by ``diag[i]``, in place."""
    _check(state, positions)
    if _active == "numba":
        if not native.apply_diagonal(state, diag, positions, _threads):
            _numba.apply_diagonal(state, diag, positions)
    else:
        numpy_backend.apply_diagonal(state, diag, positions)


def probabilities(state: np.ndarray) -> np.ndarray:
    """``|state[i]|**2`` of every local entry, in float64 (``re*re + im*im``: the same in both back ends)."""
    if _active == "numba":
        return _numba.probabilities(state)
    return numpy_backend.probabilities(state)


def cumulative_ends(state: np.ndarray) -> np.ndarray:
    """Sampling's cumulative probability at each chunk's end (``numpy_backend.cumulative_ends``):
    the same values in both back ends."""
    if _active == "numba":
        return _numba.cumulative_ends(state)
    return numpy_backend.cumulative_ends(state)


def locate(state: np.ndarray, ends: np.ndarray, targets: np.ndarray, found: np.ndarray) -> None:
    """Sampling's search for sorted ``targets`` below ``ends[-1]`` (``numpy_backend.locate``):
    the same values in both back ends."""
    if _active == "numba":
        _numba.locate(state, ends, targets, found)
    else:
        numpy_backend.locate(state, ends, targets, found)


def pauli_block_sums(mine: np.ndarray, partner: np.ndarray, offset: int, x_low: int,
                     z_masks: Sequence[int]) -> np.ndarray:
    """Pauli partial sums of one block for many Z masks sharing one X mask (``pauli.pauli_block_sums``):
    one read of the block in the numba kernels, numpy's chunked sums otherwise."""
    if _active == "numba" and len(z_masks):
        return _numba.pauli_block_sums(mine, partner, offset, x_low, z_masks)
    return _pauli.pauli_block_sums(mine, partner, offset, x_low, z_masks)


def pauli_sums(state: np.ndarray, x_mask: int, z_masks: Sequence[int]) -> np.ndarray:
    """``pauli_block_sums`` over the whole shard, the shard its own partner (``x_mask`` local)."""
    size = state.shape[0]
    block = block_size(size)
    x_low, x_high = x_mask & (block - 1), x_mask & ~(block - 1)
    out = np.zeros(len(z_masks), dtype=np.complex128)
    for offset in range(0, size, block):
        partner_offset = offset ^ x_high
        out += pauli_block_sums(state[offset: offset + block], state[partner_offset: partner_offset + block], offset,
                                x_low, z_masks)
    return out


def outcome_sums(state: np.ndarray, position: int) -> tuple[float, float]:
    """Unnormalised probabilities that local ``position`` reads 0 and reads 1, in one read of the
    state (summed in a fixed blocking: the same on any thread count)."""
    _check(state, [position])
    if _active == "numba":
        return _numba.outcome_sums(state, position)
    return numpy_backend.outcome_sums(state, position)


def collapse(state: np.ndarray, position: int, outcome: int, factor: float,
             source: Optional[np.ndarray] = None) -> None:
    """Zero the entries where local ``position`` != ``outcome`` and scale the others by ``factor``,
    in place; with ``source`` (an array like ``state``), ``state`` becomes ``source`` collapsed
    (a restore and a collapse in one pass)."""
    _check(state, [position])
    if source is not None and source.shape != state.shape:
        raise ValueError(f"collapse from an array of shape {source.shape} into one of shape {state.shape}")
    if _active == "numba":
        _numba.collapse(state, position, outcome, factor, source)
    else:
        numpy_backend.collapse(state, position, outcome, factor, source)


def apply_stage(state: np.ndarray, gates: Sequence[tuple], chunk_qubits: int) -> None:
    """Apply ``gates`` in order, cache-blocked: chunk by chunk of ``2**chunk_qubits`` amplitudes.

    Each gate is ``(positions, matrix, diag)`` with one of ``matrix`` (dense,
    every position below ``chunk_qubits``) and ``diag`` (any positions)
    given. A chunk is read once, every gate applied to it, written once, so a
    stage costs one pass over the state however many gates it holds. The
    numba kernels do that (threads over chunks) with the arithmetic of their
    one-gate kernels, so the result is the same bits as the gates one at a
    time; the numpy back end applies the gates one at a time.
    """
    n = numpy_backend._num_qubits(state)
    for positions, matrix, diag in gates:
        _check(state, positions, n)
        if diag is None and len(positions) and max(positions) >= chunk_qubits and chunk_qubits < n:
            raise ValueError(f"a dense gate of a stage on positions {list(positions)}: "
                             f"expecting every position below {chunk_qubits}")
    if _active == "numba":
        if n < native.MIN_STAGE_QUBITS or not native.apply_stage(state, gates, chunk_qubits, _threads):
            _numba.apply_stage(state, gates, chunk_qubits)
        return
    for positions, matrix, diag in gates:
        if diag is not None:
            if len(positions):
                numpy_backend.apply_diagonal(state, diag, positions)
            else:
                numpy_backend.scale(state, complex(diag[0]))
        else:
            numpy_backend.apply_matrix(state, matrix, positions)


def swap_bits(state: np.ndarray, pairs: Sequence[tuple[int, int]]) -> None:
    """Exchange local index bits ``a`` and ``b`` for each ``(a, b)`` (all distinct), in place: one
    pass (the native kernels take one per ``native.SWAP_PASS_PAIRS`` pairs)."""
    flat = [int(p) for pair in pairs for p in pair]
    _check(state, flat)
    if _active == "numba":
        if not native.swap_bits(state, pairs, _threads):
            _numba.swap_bits(state, pairs)
    else:
        numpy_backend.swap_bits(state, pairs)


def scale(state: np.ndarray, factor: complex) -> None:
    if _active == "numba":
        _numba.scale(state, factor)
    else:
        numpy_backend.scale(state, factor)


#: Arrays at least this long are zeroed by every kernel thread.
PARALLEL_ZERO_LENGTH = 1 << 20


def zero(state: np.ndarray) -> None:
    """Every entry 0; on large arrays by the kernel threads, each a contiguous range.

    A fresh array's page faults are taken here, and the kernel's time for them can be large (on a
    VM, after another process fragmented memory, 256 MiB in huge pages took 0.6 s of system time
    on one thread); ``fill`` releases the GIL, so the threads fault their ranges at once.
    """
    length = state.shape[0]
    if _threads > 1 and length >= PARALLEL_ZERO_LENGTH and state.flags.c_contiguous:
        pieces = 64
        native.run_split(lambda first, last: state[first * length // pieces:last * length // pieces].fill(0),
                         pieces, _threads)
    else:
        state.fill(0)


try:
    use(environment.choice("AER_MPI_KERNELS"))
except InvalidInputError:
    use("auto")  # importing stays possible; the run's check_environment() names the bad value

__all__ = [
    "KERNEL_NAMES",
    "active",
    "block_size",
    "marginal_probabilities",
    "native_status",
    "nonzero_entries",
    "pauli_block_sums",
    "pauli_sums",
    "apply_diagonal",
    "apply_matrix",
    "apply_stage",
    "chunk_views",
    "collapse",
    "flip",
    "locate",
    "cumulative_ends",
    "last_nonzero",
    "logical_order_chunks",
    "norm_squared",
    "outcome_sums",
    "probabilities",
    "probability_of_one",
    "scale",
    "set_threads",
    "swap_bits",
    "use",
    "zero",
]
