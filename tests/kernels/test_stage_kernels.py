"""kernels.apply_stage (cache-blocked stages) against the gates one at a time, no MPI."""

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Statevector, random_unitary

from aer_mpi import kernels
from aer_mpi.kernels import numpy_backend


def random_stage(rng, n, cache_qubits, count=24):
    gates = []
    low = min(n, cache_qubits)
    for _ in range(count):
        if rng.random() < 0.35:  # a diagonal: any positions, up to 12 qubits, or none (a phase)
            k = int(rng.integers(0, min(n, 12) + 1))
            positions = tuple(int(p) for p in rng.permutation(n)[:k])
            gates.append((positions, None, np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k))))
        else:  # dense: positions below the chunk
            k = int(rng.integers(1, min(5, low) + 1))
            positions = tuple(int(p) for p in rng.permutation(low)[:k])
            gates.append((positions, random_unitary(1 << k, seed=int(rng.integers(1 << 30))).data, None))
    return gates


def one_at_a_time(state, gates):
    for positions, matrix, diag in gates:
        if diag is not None:
            kernels.apply_diagonal(state, diag, positions) if positions else kernels.scale(state, diag[0])
        else:
            kernels.apply_matrix(state, matrix, positions)


@pytest.mark.parametrize("n,cache_qubits", [(4, 2), (9, 3), (10, 8), (12, 9), (11, 11), (6, 10)])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("threads", [1, 2])
def test_numba_stage_gives_the_same_bits_as_the_gates_one_at_a_time(n, cache_qubits, dtype, threads, rng):
    pytest.importorskip("numba")
    before = kernels.active()
    try:
        kernels.use("numba")
        kernels.set_threads(threads)
        gates = random_stage(rng, n, cache_qubits)
        state = (rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)).astype(dtype)
        sparse = np.zeros(1 << n, dtype=dtype)  # zeros, whose signs the arithmetic must keep too
        sparse[rng.permutation(1 << n)[:3]] = state[:3]
        for start in (state, sparse):
            staged, plain = start.copy(), start.copy()
            kernels.apply_stage(staged, gates, cache_qubits)
            one_at_a_time(plain, gates)
            assert staged.tobytes() == plain.tobytes()
    finally:
        kernels.set_threads(1)
        kernels.use(before)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_numba_stage_keeps_the_signs_of_zeros(dtype):
    """Entries with negative real and positive imaginary parts map zeros to -0 + 0j: every
    kernel keeps that sign (``_matrix_k`` builds its output with ``complex(re, im)``; once it
    wrote ``re + 1j * im``, which turns -0 into +0), so the stage must too."""
    pytest.importorskip("numba")
    before = kernels.active()
    try:
        kernels.use("numba")
        dense = [(0,), (3,), (1, 0), (4, 3), (2, 0, 4), (4, 5, 6), (3, 0, 4, 5, 6)]
        gates = [(p, np.full((1 << len(p), 1 << len(p)), -1 + 1j), None) for p in dense]
        gates += [((1, 7), None, np.full(4, -1 + 1j))]
        for gate in gates:
            state = np.zeros(1 << 8, dtype=dtype)
            staged, plain = state.copy(), state.copy()
            kernels.apply_stage(staged, [gate], 8)
            one_at_a_time(plain, [gate])
            assert staged.tobytes() == plain.tobytes()
    finally:
        kernels.use(before)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_stage_matches_qiskit(backend, rng):
    if backend == "numba":
        pytest.importorskip("numba")
    before = kernels.active()
    try:
        kernels.use(backend)
        n = 9
        gates = random_stage(rng, n, 4)
        expected = Statevector.from_label("0" * n)
        for positions, matrix, diag in gates:
            operator = Operator(matrix if diag is None else np.diag(diag)) if positions else None
            if operator is None:
                expected = Statevector(expected.data * diag[0])
            else:
                expected = expected.evolve(operator, qargs=list(positions))
        state = np.zeros(1 << n, dtype=complex)
        state[0] = 1
        kernels.apply_stage(state, gates, 4)
        np.testing.assert_allclose(state, expected.data, atol=1e-12)
    finally:
        kernels.use(before)


def test_a_dense_gate_above_the_chunk_is_refused():
    state = np.zeros(1 << 6, dtype=complex)
    with pytest.raises(ValueError, match="expecting every position below 3"):
        kernels.apply_stage(state, [((1, 4), np.eye(4), None)], 3)
    numpy_backend.apply_matrix(state, np.eye(4), (1, 4))  # fine outside a stage


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_swap_bits_exchanges_index_bits(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    before = kernels.active()
    try:
        kernels.use(backend)
        n = 10
        state = np.arange(1 << n).astype(complex)
        pairs = [(0, 7), (3, 9), (2, 4)]
        kernels.swap_bits(state, pairs)
        index = np.arange(1 << n)
        source = index.copy()
        for a, b in pairs:
            differ = ((index >> a) ^ (index >> b)) & 1
            source ^= (differ << a) | (differ << b)
        assert np.array_equal(state, source.astype(complex))
        with pytest.raises(ValueError, match="expecting distinct positions"):
            kernels.swap_bits(state, [(1, 1)])
    finally:
        kernels.use(before)
