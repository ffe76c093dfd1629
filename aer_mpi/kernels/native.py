"""Native kernels (C with SIMD vectors) for cache-blocked stages, bit swaps and one-gate passes.

The numba kernels run a fused 3-5 qubit gate at 3-7.5 flops per cycle
(``scripts/bench_kernels.py``): LLVM vectorises their batch loops only
partly. ``native/stage.c`` writes the same arithmetic with 64-byte vectors
(GCC vector extensions: AVX-512, AVX2 or SSE, whatever the CPU has), one
vector holding consecutive amplitudes, so that a dense gate's multiply-adds
run on whole registers and a gate on the lowest qubits permutes lanes
instead of leaving the vector loop. Every amplitude gets exactly the scalar
arithmetic of ``numba_backend`` (the same fused multiply-adds, written out
as instructions, in the same order; the compiler fuses nothing else:
``-ffp-contract=off``), so the results are the same bits;
``tests/kernels/test_native.py`` checks it.

Built on first use with the C compiler found (``$CC``, ``cc`` or ``gcc``),
for this CPU (``-march=native``), into a cache keyed by the source, the
compiler and the CPU, as numba caches its JIT output:
``$AER_MPI_CACHE_DIR``, else ``$XDG_CACHE_HOME/aer_mpi`` or
``~/.cache/aer_mpi``. The library is written under a random name and renamed
into place, so ranks that build at once on a shared file system never load a
half-written file, and it is loaded only from a directory owned by the user
and writable by no one else. No compiler, a failed build or
``AER_MPI_NATIVE=0``: the numba kernels run, with the reason in
``status()``. ``python -m aer_mpi.kernels.native`` builds it ahead of time.

Threads: the caller cuts the chunks (or runs of a swap) into contiguous pieces, several per
thread, which the threads take in turn (``run_split``); ctypes releases the GIL during a call.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import functools
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from aer_mpi import environment
from aer_mpi.errors import InvalidInputError
from aer_mpi.kernels.numpy_backend import byte_tables

#: int64 fields per gate in a stage's descriptor (``DESC_FIELDS`` in stage.c).
DESC_FIELDS = 12
#: Widest dense gate the native stage takes (``MAX_DIM`` in stage.c is 2**6).
MAX_QUBITS = 6
_SUFFIX = {np.dtype(np.complex128): "f64", np.dtype(np.complex64): "f32"}
_ABI = 3
#: Pieces per thread of a split call (run_split): enough to even out threads that start late or
#: lose their core, few enough that a call's fixed cost (some microseconds) stays nothing.
PIECES_PER_THREAD = 8
#: Seconds a build may take before it is given up (the numba kernels then run).
BUILD_TIMEOUT = 120.0

_SOURCE_DIR = Path(__file__).with_name("native")
_SOURCES = ("stage.c", "stage_impl.h")

_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None
_status: Optional[str] = None  # "on: PATH" or "off: REASON" once tried
_pools: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_vector_bytes = 64  # of the loaded library: 64 with AVX-512, else 32 (stage.c's VBYTES)


def _disabled_by_environment() -> bool:
    try:
        return not environment.switch("AER_MPI_NATIVE")
    except InvalidInputError:
        return False  # the run's check_environment() names the bad value


def _private_directory(path: Path) -> Optional[Path]:
    """``path``, created if need be, when it is a directory of this user that no one else may write."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError:
        return None
    if not path.is_dir() or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None
    return path


def cache_directory() -> Optional[Path]:
    """Where built libraries are kept: the first private directory of the documented places."""
    candidates = []
    if os.environ.get("AER_MPI_CACHE_DIR"):
        candidates.append(Path(os.environ["AER_MPI_CACHE_DIR"]))
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        candidates.append(Path(base) / "aer_mpi")
        candidates.append(Path(tempfile.gettempdir()) / f"aer_mpi-{os.getuid()}")
    for candidate in candidates:
        found = _private_directory(candidate)
        if found is not None:
            return found
    return None


def _compiler() -> Optional[str]:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_identity() -> str:
    """The CPU model and feature flags: a library built with -march=native runs only on its like."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def _flag_sets() -> list[list[str]]:
    # no fused multiply-add but the written ones (-ffp-contract=off) and no SLP vectoriser: GCC 12
    # turns the scalar complex products of the diagonal loop into vfmaddsub even with contraction off
    common = ["-O3", "-ffp-contract=off", "-fno-tree-slp-vectorize", "-fno-fast-math", "-std=gnu11", "-shared", "-fPIC"]
    return [common + ["-march=native"], common]


def _build(cc: str, directory: Path, key: str) -> Path:
    """Compile the sources into ``directory``; returns the library's path (raises on failure)."""
    target = directory / f"aer_mpi_native-{key}.so"
    if target.exists():
        return target
    errors = []
    for flags in _flag_sets():
        handle, partial = tempfile.mkstemp(prefix=".aer_mpi_native-", suffix=".so", dir=directory)
        os.close(handle)
        try:
            done = subprocess.run([cc, *flags, "-o", partial, str(_SOURCE_DIR / "stage.c")],
                                  capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            if done.returncode == 0:
                os.replace(partial, target)  # atomic: another rank's loader sees all of it or nothing
                return target
            errors.append(f"{' '.join(flags)}: {done.stderr.strip()[-400:]}")
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    raise RuntimeError("; ".join(errors))


def _load() -> Optional[ctypes.CDLL]:
    global _library, _status, _vector_bytes
    if _status is not None:
        return _library
    with _lock:
        if _status is not None:
            return _library
        if _disabled_by_environment():
            _status = "off: AER_MPI_NATIVE=0"
            return None
        cc = _compiler()
        if cc is None:
            _status = "off: no C compiler found (set CC, or install gcc); the numba kernels run"
            return None
        directory = cache_directory()
        if directory is None:
            _status = ("off: no private cache directory (set AER_MPI_CACHE_DIR to a directory of yours "
                       "that others cannot write)")
            return None
        try:
            version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
            digest = hashlib.sha256()
            for name in _SOURCES:
                digest.update((_SOURCE_DIR / name).read_bytes())
            for part in (cc, version, repr(_flag_sets()), _cpu_identity(), platform.machine(), str(_ABI)):
                digest.update(part.encode())
            path = _build(cc, directory, digest.hexdigest()[:20])
            info = path.stat()
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                raise RuntimeError(f"{path} is not the user's own, or others may write it")
            library = ctypes.CDLL(str(path))
            if library.aer_mpi_native_abi() != _ABI:
                raise RuntimeError(f"{path} has another interface version")
            if not library.aer_mpi_native_hardware_fma():
                _status = ("off: built without hardware fused multiply-add (-march=native failed), so every fma "
                           "would be a call to libm; the numba kernels run")
                return None
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            _status = f"off: the build failed ({type(exc).__name__}: {exc}); the numba kernels run"
            return None
        _vector_bytes = bind(library)
        _library = library
        _status = f"on: {path}"
        return library


def bind(library: ctypes.CDLL) -> int:
    """Declare the library's functions for ctypes; returns its vector size in bytes."""
    pointer, i64 = ctypes.c_void_p, ctypes.c_int64
    for suffix in _SUFFIX.values():
        stage = getattr(library, f"aer_mpi_stage_{suffix}")
        stage.argtypes = [pointer, i64, i64, i64, i64, pointer, pointer, pointer]
        stage.restype = None
        swap = getattr(library, f"aer_mpi_swap_tiles_{suffix}")
        swap.argtypes = [pointer, i64, i64, i64, pointer, pointer, i64, pointer, i64, i64]
        swap.restype = None
    return int(library.aer_mpi_native_vector_bytes())


def vector_bits_of(dtype) -> int:
    """Index bits one vector of the loaded library spans (its lanes): with AVX-512, 2 for complex128
    and 3 for complex64; with 32-byte vectors, 1 and 2."""
    return (_vector_bytes // np.dtype(dtype).itemsize).bit_length() - 1


def status() -> str:
    """``on: PATH`` when the native kernels are built and loaded, else ``off: WHY`` (builds on first call)."""
    _load()
    return _status or "off"


def available(dtype) -> bool:
    """Whether arrays of ``dtype`` may use the native kernels (building them on first call)."""
    return np.dtype(dtype) in _SUFFIX and _load() is not None


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _pools.clear()  # their threads are not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def run_split(function, total: int, threads: int) -> None:
    """``function(first, last)`` over ``[0, total)``, by ``threads`` threads taking ranges in turn.

    The range is cut into ``PIECES_PER_THREAD`` pieces per thread, which the threads take as they
    finish their previous one: with one fixed range each, a thread that started late or lost its
    core for a while (a busy node, a VM's stolen time) left the other waiting at the end of every
    call (QV-24: 86 ms of 0.95 s). The pieces change which thread computes a chunk, not how: the
    same bits.
    """
    threads = max(1, min(int(threads), total))
    if threads == 1:
        function(0, total)
        return
    with _lock:  # one pool per size, kept: callers in several threads never see one shut down
        pool = _pools.get(threads - 1)
        if pool is None:
            pool = _pools[threads - 1] = concurrent.futures.ThreadPoolExecutor(
                threads - 1, thread_name_prefix="aer_mpi-kernel")
    pieces = min(total, threads * PIECES_PER_THREAD)
    bounds = [total * p // pieces for p in range(pieces + 1)]
    taken = itertools.count()  # next() is atomic under the GIL

    def work() -> None:
        piece = next(taken)
        while piece < pieces:
            function(bounds[piece], bounds[piece + 1])
            piece = next(taken)

    futures = [pool.submit(work) for _ in range(1, threads)]
    try:
        work()
    finally:
        for future in futures:
            future.result()  # C loops over bounded ranges: they end


# -- packing a stage --------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _dense_layout(positions: tuple, vector_bits: int):
    """What a dense gate's positions alone decide: ``(kout, kin, dim)``, the sorted vector bits,
    the vector offsets, each column's source vector, the lane permutations and, with ``kin``, the
    row each output lane holds (None without). Kept per positions: the bindings of a sweep and
    the repeated layers of a circuit pack the same gates again and again, only their matrices
    change. The arrays are read-only, as they are shared."""
    k = len(positions)
    dim = 1 << k
    inner = [j for j, p in enumerate(positions) if p < vector_bits]
    outer = [j for j, p in enumerate(positions) if p >= vector_bits]
    nout = 1 << len(outer)
    lanes = 1 << vector_bits
    rows = np.arange(dim)
    # the vectors of a group, in the order of the outer matrix bits
    combos = np.arange(nout)
    voff = np.zeros(nout, dtype=np.int64)
    for i, j in enumerate(outer):
        voff |= ((combos >> i) & 1) << positions[j]
    source = np.zeros(dim, dtype=np.int64)
    for i, j in enumerate(outer):
        source |= ((rows >> j) & 1) << i
    qs = np.array(sorted(positions[j] - vector_bits for j in outer), dtype=np.int64)
    perm = np.zeros(0, dtype=np.int64)
    row = None
    if inner:
        lane = np.arange(lanes)
        in_mask = 0
        for j in inner:
            in_mask |= 1 << positions[j]
        # column c reads, in lane l, the lane with l's bits outside the gate and c's inner bits
        column_bits = np.zeros(dim, dtype=np.int64)
        for j in inner:
            column_bits |= ((rows >> j) & 1) << positions[j]
        read_lane = (lane[None, :] & ~in_mask) | column_bits[:, None]            # (dim, lanes)
        perm = np.stack([2 * read_lane, 2 * read_lane + 1], axis=-1).reshape(-1).astype(np.int64)
        # output vector o, lane l holds row r: o's outer bits and l's inner bits
        row = np.zeros((nout, lanes), dtype=np.int64)
        for i, j in enumerate(outer):
            row |= ((combos[:, None] >> i) & 1) << j
        for j in inner:
            row |= ((lane[None, :] >> positions[j]) & 1) << j
    for array in (qs, voff, source, perm) + ((row,) if row is not None else ()):
        array.flags.writeable = False
    return (len(outer), len(inner), dim), qs, voff, source, perm, row


def _dense_parts(positions: Sequence[int], matrix: np.ndarray, vector_bits: int, real_dtype):
    """(fields 1-3, sorted vector bits, vector offsets, sources, lane permutations, coefficients)."""
    fields, qs, voff, source, perm, row = _dense_layout(tuple(int(p) for p in positions), vector_bits)
    dim = fields[2]
    matrix = np.asarray(matrix, dtype=np.complex128).reshape(dim, dim)
    if row is None:
        coefficients = np.concatenate([matrix.real.reshape(-1), matrix.imag.reshape(-1)]).astype(real_dtype)
    else:
        entries = matrix[row[:, None, :], np.arange(dim)[None, :, None]]       # (nout, dim, lanes)
        real = np.repeat(entries.real, 2, axis=-1).reshape(-1)
        imag = np.repeat(entries.imag, 2, axis=-1).reshape(-1)
        coefficients = np.concatenate([real, imag]).astype(real_dtype)
    return fields, qs, voff, source, perm, coefficients


def pack_stage(gates, num_bits: int, dtype):
    """The stage as (descriptor, int64 pool, real pool) for ``aer_mpi_stage_*``, or None when a gate
    is wider than ``MAX_QUBITS``."""
    dtype = np.dtype(dtype)
    vector_bits = vector_bits_of(dtype)
    real_dtype = np.float64 if dtype == np.complex128 else np.float32
    desc = np.zeros((len(gates), DESC_FIELDS), dtype=np.int64)
    ints: list[np.ndarray] = []
    reals: list[np.ndarray] = []
    nint = nreal = 0

    def put_int(values) -> int:
        nonlocal nint
        at = nint
        ints.append(np.asarray(values, dtype=np.int64).reshape(-1))
        nint += ints[-1].shape[0]
        return at

    def put_real(values) -> int:
        nonlocal nreal
        at = nreal
        reals.append(np.asarray(values, dtype=real_dtype).reshape(-1))
        nreal += reals[-1].shape[0]
        return at

    for g, (positions, matrix, diag) in enumerate(gates):
        if diag is not None:
            tables = byte_tables(num_bits, positions)
            values = np.asarray(diag, dtype=dtype).reshape(-1)
            desc[g, 0] = 1
            desc[g, 9] = tables.shape[0]
            desc[g, 10] = put_int(tables)
            desc[g, 11] = put_real(values.view(real_dtype))
            continue
        if len(positions) > MAX_QUBITS or len(positions) == 0:
            return None
        (kout, kin, dim), qs, voff, source, perm, coefficients = _dense_parts(
            positions, matrix, vector_bits, real_dtype)
        desc[g, 1:4] = (kout, kin, dim)
        desc[g, 4] = put_int(qs) if qs.size else 0
        desc[g, 5] = put_int(voff)
        desc[g, 6] = put_int(source)
        desc[g, 7] = put_int(perm) if perm.size else 0
        desc[g, 8] = put_real(coefficients)
    int_pool = np.concatenate(ints) if ints else np.zeros(1, dtype=np.int64)
    real_pool = np.concatenate(reals) if reals else np.zeros(1, dtype=real_dtype)
    return desc, np.ascontiguousarray(int_pool), np.ascontiguousarray(real_pool)


def apply_stage(state: np.ndarray, gates, chunk_qubits: int, threads: int) -> bool:
    """``kernels.apply_stage`` natively; False (nothing done) when this stage or array cannot be."""
    dtype = state.dtype
    if dtype not in _SUFFIX or not state.flags.c_contiguous or not available(dtype):
        return False
    n = state.shape[0].bit_length() - 1
    vector_bits = vector_bits_of(dtype)
    if n < vector_bits:
        return False
    packed = pack_stage(gates, n, dtype)
    if packed is None:
        return False
    desc, int_pool, real_pool = packed
    # a chunk spans at least one vector; the chunk size changes no bits, only what stays in cache
    c = max(min(int(chunk_qubits), n), vector_bits)
    function = getattr(_library, f"aer_mpi_stage_{_SUFFIX[dtype]}")
    head = (state.ctypes.data, c)
    tail = (len(gates), desc.ctypes.data, int_pool.ctypes.data, real_pool.ctypes.data)
    run_split(lambda first, last: function(*head, first, last, *tail), 1 << (n - c), threads)
    return True


#: Smallest array ``kernels.apply_stage`` runs natively: below it, packing the stage (some 10
#: microseconds of numpy per gate) costs more than numba's arithmetic (12 gates of 1-2 qubits:
#: 150-190 us native, 30-70 us numba at 4-10 qubits; even at 12), which a parameter sweep of a small
#: circuit pays per binding. Both give the same bits, so the choice, which depends on the shard's
#: size, changes no result.
MIN_STAGE_QUBITS = 12
#: Chunk of a one-gate pass (a diagonal, or a dense gate on low positions): small enough that
#: the threads get many, large enough that a chunk's fixed cost is nothing.
ONE_GATE_CHUNK_QUBITS = 14
#: Smallest array a one-gate pass runs natively: below it, packing the gate (tens of
#: microseconds of numpy) costs more than numba's whole pass, and dynamic circuits and noisy
#: trajectories make thousands of such calls on small states.
MIN_ONE_GATE_QUBITS = 14


def apply_matrix(state: np.ndarray, matrix: np.ndarray, positions, threads: int) -> bool:
    """``kernels.apply_matrix`` natively, as a one-gate stage whose chunk spans the gate; False
    (nothing done) when the gate is too wide or spans so much of the array that the threads would
    not share it (the numba kernel splits it otherwise)."""
    n = state.shape[0].bit_length() - 1
    if not positions or len(positions) > MAX_QUBITS or n < MIN_ONE_GATE_QUBITS:
        return False
    chunk = max(max(int(p) for p in positions) + 1, min(n, ONE_GATE_CHUNK_QUBITS))
    if threads > 1 and (n - chunk) < threads.bit_length():
        return False
    return apply_stage(state, [(positions, matrix, None)], chunk, threads)


def apply_diagonal(state: np.ndarray, diag: np.ndarray, positions, threads: int) -> bool:
    """``kernels.apply_diagonal`` natively (a one-gate stage); False when the array cannot be."""
    n = state.shape[0].bit_length() - 1
    if n < MIN_ONE_GATE_QUBITS:
        return False
    return apply_stage(state, [(positions, None, diag)], min(n, ONE_GATE_CHUNK_QUBITS), threads)


#: Largest tile of a swap, in exchanged bits: its table of run pairs has 2**(bits-1) entries.
MAX_SWAP_TILE_BITS = 20
#: Most pairs one swap pass takes; more are split into passes of at most this many (disjoint
#: pairs commute). Past 8 pairs the tables (16 B per run pair) outgrow the L2 cache: at 24 qubits
#: in single precision, 10 pairs from bit 3 up took 43 ms in one pass and 20 ms in two, and the
#: 12 pairs that reverse the bit order 0.74 s in the numba fallback and 36 ms in two passes.
SWAP_PASS_PAIRS = 8


#: Free bits just above the lowest exchanged one that the swap kernel's inner loop takes, at most.
#: With a tile per run pair, six pairs that exchanged bit 3 (runs of one cache line in single
#: precision) took 21-23 ms at 24 qubits, two numpy passes over the state; 9-11 ms walked so.
MAX_SPREAD_BITS = 8


def swap_tables(pairs, num_bits: int):
    """(run bits, spread bits, offsets a, offsets b, free bits) of ``aer_mpi_swap_tiles_*`` for
    ``pairs``, or None when they exchange more than ``MAX_SWAP_TILE_BITS`` bits. The spread bits
    are the free bits just above the run bits, up to the next exchanged bit: the kernel's inner
    loop takes them, so that a run of a few amplitudes is not a tile of its own."""
    involved = sorted(int(b) for pair in pairs for b in pair)
    if len(involved) > MAX_SWAP_TILE_BITS:
        return None
    run_bits = involved[0]
    mate = {}
    for low, high in pairs:
        mate[int(low)], mate[int(high)] = int(high), int(low)
    # every amplitude index made of the involved bits, and its partner (the same index with each
    # pair's bits exchanged), built by doubling: a bit permutation maps a sum of disjoint bits to
    # the sum of their images, so each table costs one write per entry (not one pass per bit)
    index = np.zeros(1 << len(involved), dtype=np.int64)
    partner = np.zeros_like(index)
    for i, bit in enumerate(involved):
        half = 1 << i
        np.bitwise_or(index[:half], 1 << bit, out=index[half:2 * half])
        np.bitwise_or(partner[:half], 1 << mate[bit], out=partner[half:2 * half])
    keep = partner > index  # each pair of runs once; a fixed point stays
    spread_bits = min(involved[1] - run_bits - 1, MAX_SPREAD_BITS)
    free = np.array([b for b in range(run_bits + 1 + spread_bits, num_bits) if b not in set(involved)],
                    dtype=np.int64)
    return run_bits, spread_bits, np.ascontiguousarray(index[keep]), np.ascontiguousarray(partner[keep]), free


def swap_bits(state: np.ndarray, pairs, threads: int) -> bool:
    """``kernels.swap_bits`` natively; False (nothing done) when this array or these pairs cannot be."""
    dtype = state.dtype
    if dtype not in _SUFFIX or not state.flags.c_contiguous or not pairs or not available(dtype):
        return False
    n = state.shape[0].bit_length() - 1
    pairs = sorted((min(int(a), int(b)), max(int(a), int(b))) for a, b in pairs)
    passes = -(-len(pairs) // SWAP_PASS_PAIRS)
    size = -(-len(pairs) // passes)  # balanced: 12 pairs are two passes of 6, not 8 and 4
    groups = [swap_tables(pairs[i:i + size], n) for i in range(0, len(pairs), size)]
    if any(tables is None for tables in groups):
        return False
    function = getattr(_library, f"aer_mpi_swap_tiles_{_SUFFIX[dtype]}")
    for run_bits, spread_bits, offs_a, offs_b, free in groups:
        head = (state.ctypes.data, run_bits, spread_bits, offs_a.shape[0], offs_a.ctypes.data, offs_b.ctypes.data,
                free.shape[0], free.ctypes.data if free.size else None)
        run_split(lambda first, last, head=head: function(*head, first, last), offs_a.shape[0] << free.shape[0],
                  threads)
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build (or find) the library now, e.g. once after install on a shared file system."""
    text = status()
    print(f"aer_mpi native kernels: {text}")
    return 0 if text.startswith("on") else 1


if __name__ == "__main__":
    sys.exit(main())
