"""The native (C, SIMD) kernels give the numba kernels' bits, and fall back cleanly, no MPI.

``kernels.apply_stage``, ``apply_matrix``, ``apply_diagonal`` and ``swap_bits``
run natively under the numba back end when a C compiler is found; the numba
kernels are the reference. Same bits means same bytes, signs of zeros
included, for every gate width the native kernel takes (1-6 qubits), on
positions inside one SIMD vector (the lowest 2 bits in double precision, 3 in
single) and outside it, on 1 and 2 threads.
"""

import itertools
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from qiskit.quantum_info import random_unitary

from aer_mpi.kernels import native

numba_backend = pytest.importorskip("aer_mpi.kernels.numba_backend")

pytestmark = pytest.mark.skipif(not native.available(np.complex128),
                                reason=f"native kernels not built here: {native.status()}")

DTYPES = [np.complex128, np.complex64]


def random_state(rng, n, dtype, sparse=False):
    state = (rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)).astype(dtype)
    if sparse:  # mostly zeros: the arithmetic must keep their signs as numba does
        keep = np.zeros(1 << n, dtype=dtype)
        keep[rng.permutation(1 << n)[:3]] = state[:3]
        return keep
    return state


def random_gates(rng, n, chunk, count, widest=6):
    gates = []
    for _ in range(count):
        if rng.random() < 0.3:
            k = int(rng.integers(0, min(n, 10) + 1))
            positions = tuple(int(p) for p in rng.permutation(n)[:k])
            gates.append((positions, None, np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k))))
        else:
            k = int(rng.integers(1, min(widest, chunk) + 1))
            positions = tuple(int(p) for p in rng.permutation(chunk)[:k])
            matrix = random_unitary(1 << k, seed=int(rng.integers(1 << 30))).data
            if rng.random() < 0.3:  # negative real, positive imaginary parts: -0 from zeros
                matrix = -np.abs(matrix.real) + 1j * np.abs(matrix.imag)
            gates.append((positions, matrix, None))
    return gates


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n,chunk", [(3, 3), (4, 2), (8, 8), (10, 6), (12, 9)])
def test_a_stage_gives_the_numba_stages_bits(n, chunk, dtype, threads, rng):
    for sparse in (False, True):
        gates = random_gates(rng, n, chunk, 16)
        start = random_state(rng, n, dtype, sparse)
        reference, ours = start.copy(), start.copy()
        numba_backend.apply_stage(reference, gates, chunk)
        assert native.apply_stage(ours, gates, chunk, threads)
        assert ours.tobytes() == reference.tobytes()


def assert_one_gate_stage_gives_the_numba_bits(rng, n, chunk, positions, dtype):
    """A random gate on ``positions`` as a native one-gate stage: numba's one-gate kernel's bytes."""
    matrix = random_unitary(1 << len(positions), seed=int(rng.integers(1 << 30))).data
    start = random_state(rng, n, dtype)
    reference, ours = start.copy(), start.copy()
    numba_backend.apply_matrix(reference, matrix, positions)
    assert native.apply_stage(ours, [(positions, matrix, None)], chunk, 1)
    assert ours.tobytes() == reference.tobytes(), positions


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_every_width_on_the_lowest_positions_and_above(k, dtype, rng):
    """Positions inside the vector permute lanes; each mix of inside and outside is its own path."""
    n = 9
    layouts = [tuple(range(k)), tuple(range(n - k, n)), tuple(int(p) for p in rng.permutation(n)[:k])]
    for positions in layouts:
        assert_one_gate_stage_gives_the_numba_bits(rng, n, n, positions, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_every_ordered_placement_of_a_small_gate_gives_the_numba_bits(k, dtype, rng):
    """Gates of 1-4 qubits take their own loop (coefficients held, runs of vectors sharing one
    layout): every ordered choice of positions, in-vector lanes or not, on two chunks."""
    n, chunk = 7, 6
    for positions in itertools.permutations(range(chunk), k):
        assert_one_gate_stage_gives_the_numba_bits(rng, n, chunk, positions, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_one_gate_passes_give_the_numba_bits(dtype, threads, rng):
    n = 17  # enough chunks for two threads
    for _ in range(6):
        k = int(rng.integers(1, 7))
        positions = tuple(int(p) for p in rng.permutation(n)[:k])
        matrix = random_unitary(1 << k, seed=int(rng.integers(1 << 30))).data
        diag = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k))
        start = random_state(rng, n, dtype)
        reference, ours = start.copy(), start.copy()
        numba_backend.apply_matrix(reference, matrix, positions)
        if native.apply_matrix(ours, matrix, positions, threads):
            assert ours.tobytes() == reference.tobytes()
        reference, ours = start.copy(), start.copy()
        numba_backend.apply_diagonal(reference, diag, positions)
        assert native.apply_diagonal(ours, diag, positions, threads)
        assert ours.tobytes() == reference.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_bit_swaps_give_the_numba_permutation(dtype, threads, rng):
    n = 20
    reverse = [(j, n - 1 - j) for j in range(n // 2)]
    # exchanging every bit above their lowest: one tile, its run pairs shared by the threads; more
    # than SWAP_PASS_PAIRS pairs: several passes (the order reversed, 9 pairs given high first)
    for pairs in ([(0, 11)], [(0, 7), (1, 9), (2, 10)], [(3, 4)], [(5, 8), (6, 11)],
                  [(4, 19), (5, 18), (6, 17), (7, 16)], reverse, [(b, a) for a, b in reverse[1:]],
                  [(j, 19 - j) for j in range(2, 10)],
                  # free bits just above the lowest exchanged one, taken by the inner loop: all of
                  # them, the most it takes (MAX_SPREAD_BITS) with more above, and a few
                  [(3, 19)], [(1, 18), (12, 13)], [(2, 6), (9, 15)], [(0, 19)]):
        start = random_state(rng, n, dtype)
        reference, ours = start.copy(), start.copy()
        numba_backend.swap_bits(reference, pairs)
        assert native.swap_bits(ours, pairs, threads)
        assert np.array_equal(ours, reference)


def test_what_the_native_kernels_do_not_take_is_left_to_numba(rng):
    state = random_state(rng, 8, np.complex128)
    before = state.copy()
    wide = tuple(range(7))
    assert not native.apply_stage(state, [(wide, np.eye(128), None)], 8, 1)  # wider than 6 qubits
    assert not native.apply_stage(state.astype(np.complex256) if hasattr(np, "complex256") else state[::2],
                                  [((0,), np.eye(2), None)], 8, 1)  # another dtype, or not contiguous
    assert not native.swap_bits(state, [(0, 1)] * 0, 1)
    # one-gate passes on small arrays: numba's pass is cheaper than packing the gate
    assert not native.apply_matrix(state, np.eye(2), (0,), 1)
    assert not native.apply_diagonal(state, np.ones(2), (0,), 1)
    assert np.array_equal(state, before)


def machine_has(*flags):
    try:
        with open("/proc/cpuinfo") as f:
            found = set(" ".join(line for line in f if line.startswith("flags")).split())
    except OSError:
        return False
    return all(flag in found for flag in flags)


@pytest.fixture(scope="module", params=["-march=haswell", "baseline"])
def other_library(request, tmp_path_factory):
    """The kernels built for another machine (once per module): AVX2 with FMA instructions
    (32-byte vectors, the AMD EPYC case), or baseline x86-64 (each fma a libm call, the code path
    every CPU without AVX2 or AVX-512 compiles, such as aarch64 with its scalar fma)."""
    import ctypes

    flags = [] if request.param == "baseline" else [request.param]
    if request.param != "baseline" and not machine_has("avx2", "fma"):
        pytest.skip(f"this CPU cannot run a {request.param} build")
    cc = native._compiler()
    if cc is None or not machine_has("sse2"):
        pytest.skip("needs an x86-64 C compiler")
    target = tmp_path_factory.mktemp("other") / "other.so"
    common = native._flag_sets()[1]
    if request.param == "baseline":
        # its libm fmas inlined at -O3 take 20 s to compile here, at -O1 2.5 s: the bits are the
        # source's (-ffp-contract=off, no fast-math), whatever the optimiser does with them
        common = [flag for flag in common if not flag.startswith("-O")] + ["-O1"]
    subprocess.run([cc, *common, *flags, "-w", "-o", str(target), str(native._SOURCE_DIR / "stage.c")],
                   check=True, timeout=120)
    return ctypes.CDLL(str(target))


@pytest.fixture
def other_build(other_library, monkeypatch):
    """``other_library`` in place of this machine's for one test."""
    monkeypatch.setattr(native, "_vector_bytes", native.bind(other_library))
    monkeypatch.setattr(native, "_library", other_library)
    assert native._vector_bytes == 32
    return other_library


@pytest.mark.parametrize("dtype", DTYPES)
def test_builds_for_other_machines_give_the_same_bits(other_build, dtype, rng):
    """The written fmas round once whatever computes them, so the AVX2 and the baseline builds
    give numba's bits too, with 32-byte vectors (lanes: 1 bit in double precision, 2 in single)."""
    for n, chunk in [(3, 3), (8, 8), (12, 9)]:
        for sparse in (False, True):
            gates = random_gates(rng, n, chunk, 16)
            start = random_state(rng, n, dtype, sparse)
            reference, ours = start.copy(), start.copy()
            numba_backend.apply_stage(reference, gates, chunk)
            assert native.apply_stage(ours, gates, chunk, 2)
            assert ours.tobytes() == reference.tobytes()
    for k in (1, 2, 3):
        for positions in itertools.permutations(range(5), k):
            assert_one_gate_stage_gives_the_numba_bits(rng, 6, 5, positions, dtype)


def run_python(code, env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_it_builds_into_a_private_cache_once_and_leaves_no_partial_file(tmp_path):
    cache = tmp_path / "cache"
    code = """
        from aer_mpi.kernels import native
        print(native.status())
    """
    compiler = native._compiler()
    if compiler is None:
        pytest.skip("no C compiler")
    # the build at -O1 (the last -O wins): what is tested is where it goes, not how fast it runs
    # (at -O3 the build took 8-10 s of the suite)
    quick = tmp_path / "cc-O1"
    quick.write_text(f'#!/bin/sh\nexec {compiler} "$@" -O1\n')
    quick.chmod(0o755)
    env = {"AER_MPI_CACHE_DIR": str(cache), "CC": str(quick)}
    first = run_python(code, env)
    assert first.stdout.startswith("on: " + str(cache)), first.stdout + first.stderr
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].endswith(".so") and not files[0].startswith(".")
    library = cache / files[0]
    assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(library.stat().st_mode) & 0o022 == 0
    built = library.stat().st_mtime_ns
    second = run_python(code, env)
    assert second.stdout == first.stdout
    assert library.stat().st_mtime_ns == built  # loaded, not built again


def test_a_cache_others_may_write_is_refused_and_numba_runs(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    done = run_python("""
        import numpy as np
        from aer_mpi import kernels
        kernels.use("numba")
        print(kernels.native_status())
        state = np.zeros(1 << 10, dtype=complex); state[0] = 1
        kernels.apply_stage(state, [((0,), np.array([[0, 1], [1, 0]]), None)], 8)
        print(abs(state[1]))
    """, {"AER_MPI_CACHE_DIR": str(shared)})
    lines = done.stdout.split("\n")
    assert lines[0].startswith("off: no private cache directory"), done.stdout + done.stderr
    assert "AER_MPI_CACHE_DIR" in lines[0]
    assert lines[1] == "1.0"
    assert list(shared.iterdir()) == []  # nothing written where others could swap it


@pytest.mark.parametrize("env,reason", [({"AER_MPI_NATIVE": "0"}, "off: AER_MPI_NATIVE=0"),
                                        ({"CC": "/nonexistent/cc", "PATH": "/nonexistent"}, "off: no C compiler")])
def test_turned_off_or_without_a_compiler_the_numba_kernels_run(env, reason, tmp_path):
    done = run_python("""
        from aer_mpi.kernels import native
        print(native.status())
    """, {"AER_MPI_CACHE_DIR": str(tmp_path / "cache"), **env})
    assert done.stdout.startswith(reason), done.stdout + done.stderr


def test_python_m_aer_mpi_kernels_reports_the_native_kernels_without_a_warning():
    """``python -m aer_mpi.kernels.native`` printed runpy's RuntimeWarning (the package imports the module
    it runs) on every call (probe V); ``python -m aer_mpi.kernels`` says the same line, exit 0 when on."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "aer_mpi.kernels"],
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.startswith("aer_mpi native kernels: "), (done.stdout, done.stderr)
    assert done.returncode == (0 if done.stdout.split(": ")[1].startswith("on") else 1)
    assert "RuntimeWarning" not in done.stderr


@pytest.mark.parametrize("total, threads", [(1, 2), (3, 2), (16, 2), (17, 3), (1000, 2), (5, 8)])
def test_run_split_gives_every_index_to_exactly_one_call(total, threads):
    """Threads take pieces as they finish (a late or descheduled thread no longer holds the others up):
    the pieces still cover [0, total) once, in ranges, from every thread."""
    import threading

    from aer_mpi.kernels import native

    seen = np.zeros(total, dtype=np.int64)
    lock = threading.Lock()
    callers = set()

    def function(first, last):
        assert 0 <= first < last <= total
        with lock:
            seen[first:last] += 1
            callers.add(threading.get_ident())

    native.run_split(function, total, threads)
    assert (seen == 1).all()
    assert len(callers) <= max(1, min(threads, total))


def test_run_split_passes_a_thread_error_on_after_every_thread_ends():
    from aer_mpi.kernels import native

    def function(first, last):
        if first == 0:
            raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError, match="kernel failed"):
        native.run_split(function, 64, 2)
