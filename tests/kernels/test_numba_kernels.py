"""The numba kernels against the numpy kernels and qiskit.quantum_info (no MPI)."""

import numpy as np
import pytest
from qiskit.quantum_info import Operator, random_statevector, random_unitary

pytest.importorskip("numba")

from aer_mpi import kernels  # noqa: E402
from aer_mpi.kernels import numba_backend, numpy_backend  # noqa: E402


@pytest.mark.parametrize("n", [1, 4, 9, 12])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_matrix_numba_numpy_and_operator_agree(n, k, dtype, rng):
    if k > n:
        pytest.skip("gate wider than the state")
    state = random_statevector(2**n, seed=int(rng.integers(1 << 30)))
    unitary = random_unitary(2**k, seed=int(rng.integers(1 << 30))).data if k else np.array([[np.exp(0.3j)]])
    positions = [int(p) for p in rng.permutation(n)[:k]]
    expected = state.evolve(Operator(unitary), qargs=positions).data if k else state.data * unitary[0, 0]
    fast, slow = state.data.astype(dtype), state.data.astype(dtype)
    numba_backend.apply_matrix(fast, unitary, positions)
    numpy_backend.apply_matrix(slow, unitary, positions)
    tol = 1e-12 if dtype == np.complex128 else 2e-6
    np.testing.assert_allclose(fast, expected, atol=tol)
    np.testing.assert_allclose(slow, expected, atol=tol)


@pytest.mark.parametrize("n,k", [(3, 1), (5, 3), (9, 2), (10, 8), (13, 12)])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_diagonal_numba_numpy_and_operator_agree(n, k, dtype, rng):
    state = random_statevector(2**n, seed=5)
    positions = [int(p) for p in rng.permutation(n)[:k]]
    diag = np.exp(1j * rng.uniform(0, 2 * np.pi, 2**k))
    expected = state.evolve(Operator(np.diag(diag)), qargs=positions).data
    fast, slow = state.data.astype(dtype), state.data.astype(dtype)
    numba_backend.apply_diagonal(fast, diag, positions)
    numpy_backend.apply_diagonal(slow, diag, positions)
    tol = 1e-12 if dtype == np.complex128 else 2e-6
    np.testing.assert_allclose(fast, expected, atol=tol)
    np.testing.assert_allclose(slow, expected, atol=tol)


def test_split_gate_sums_are_bit_identical():
    # A controlled gate applied whole (1 rank) or as its block (the control on
    # a rank bit) must give the same bits: the engine's determinism rests on it.
    u = random_unitary(4, seed=9).data
    full = np.eye(8, dtype=complex)
    full[4:, 4:] = u  # control on bit 2
    state = random_statevector(2**10, seed=2).data
    whole = state.copy()
    numba_backend.apply_matrix(whole, full, [3, 7, 1])
    tensor = state.copy().reshape(2, 2, 2, 2, 2, 2, 2, 2, 2, 2)  # axis a is bit 9 - a
    one = np.ascontiguousarray(tensor[:, :, :, :, :, :, :, :, 1, :]).reshape(-1)  # bit 1 = 1
    numba_backend.apply_matrix(one, u, [2, 6])  # bits 3, 7 become 2, 6 once bit 1 is removed
    tensor[:, :, :, :, :, :, :, :, 1, :] = one.reshape(tensor[:, :, :, :, :, :, :, :, 1, :].shape)
    assert np.array_equal(whole, tensor.reshape(-1))


def test_dispatch_checks_positions_and_switches():
    state = np.zeros(8, dtype=complex)
    with pytest.raises(ValueError, match=r"expecting distinct positions in range\(3\)"):
        kernels.apply_matrix(state, np.eye(2), [3])
    with pytest.raises(ValueError, match="expecting distinct positions"):
        kernels.apply_diagonal(state, np.ones(4), [1, 1])
    before = kernels.active()
    try:
        assert kernels.use("numba") == "numba"
        assert kernels.set_threads(1) == 1
        state[0] = 1
        kernels.apply_matrix(state, np.array([[0, 1], [1, 0]]), [2])
        assert state[4] == 1
        assert kernels.use("numpy") == "numpy"
        with pytest.raises(ValueError, match="kernels='fast': expecting one of auto, numba, numpy"):
            kernels.use("fast")
    finally:
        kernels.use(before)


@pytest.mark.parametrize("n", [0, 3, 17])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_probabilities_numba_and_numpy_are_bit_identical(n, dtype, rng):
    # noisy trajectories sample their final measurements from these (engine/noise.py)
    state = (rng.normal(size=2**n) + 1j * rng.normal(size=2**n)).astype(dtype)
    fast, slow = numba_backend.probabilities(state), numpy_backend.probabilities(state)
    assert fast.dtype == slow.dtype == np.float64
    wide = state.astype(np.complex128)
    assert np.array_equal(fast, slow) and np.array_equal(slow, wide.real * wide.real + wide.imag * wide.imag)


@pytest.mark.parametrize("n", [1, 5, 13, 17])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_measurement_kernels_numba_numpy_and_reference_agree(n, dtype, rng):
    """outcome_sums and collapse (in place, and from a saved copy) on every position, both back ends."""
    state = random_statevector(2**n, seed=int(rng.integers(1 << 30))).data.astype(dtype)
    tol = 1e-12 if dtype == np.complex128 else 2e-6
    for position in sorted({0, n // 2, n - 1}):
        bits = (np.arange(2**n) >> position) & 1
        squares = np.abs(state.astype(np.complex128)) ** 2
        expected = (squares[bits == 0].sum(), squares[bits == 1].sum())
        for backend in (numba_backend, numpy_backend):
            np.testing.assert_allclose(backend.outcome_sums(state, position), expected, atol=tol)
        for outcome in (0, 1):
            factor = 1 / np.sqrt(expected[outcome])
            reference = np.where(bits == outcome, state * factor, 0)
            for backend in (numba_backend, numpy_backend):
                inplace = state.copy()
                backend.collapse(inplace, position, outcome, factor)
                np.testing.assert_allclose(inplace, reference, atol=tol)
                restored = np.full_like(state, 7)
                backend.collapse(restored, position, outcome, factor, state)
                np.testing.assert_array_equal(restored, inplace)
    # a certain outcome stays certain: nothing reads 0, so the sums say p(1) == 1 exactly
    one = np.zeros(2**n, dtype=dtype)
    one[-1] = 1
    for backend in (numba_backend, numpy_backend):
        zero_sum, one_sum = backend.outcome_sums(one, n - 1)
        assert zero_sum == 0.0 and one_sum / (zero_sum + one_sum) == 1.0


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("size", [300, 5 * numpy_backend.CHUNK_ELEMENTS + 123])
def test_sampling_search_gives_the_numpy_answer_and_the_sequential_one_exactly(dtype, size, rng):
    """Chunks summed and searched by the threads in numba, temporaries in numpy: the same chunk
    ends and indices as one running sum over the chunks in order (``running + (p_0 + ... + p_k)``
    within a chunk), zeros, empty chunks and targets equal to a cumulative value included."""
    chunk = numpy_backend.CHUNK_ELEMENTS
    state = (rng.normal(size=size) + 1j * rng.normal(size=size)).astype(dtype)
    state[rng.permutation(size)[:size // 5]] = 0
    state[-7:] = 0  # the last non-zero entry is not the last entry
    if size > 2 * chunk:
        state[chunk:2 * chunk] = 0  # a chunk without mass: no target falls in it
    # the sequential reference: one cumulative value per entry, a chunk at a time
    values, running = [], 0.0
    for start in range(0, size, chunk):
        part = np.cumsum(numpy_backend._probs(state[start:start + chunk])) + running
        values.append(part)
        running = float(part[-1])
    values = np.concatenate(values)
    ends = numba_backend.cumulative_ends(state)
    np.testing.assert_array_equal(ends, numpy_backend.cumulative_ends(state))
    assert ends[-1] == running
    targets = np.sort(np.concatenate([rng.uniform(0, running, 500), values[[3, 50, 51]], ends[1:-1]]))
    expected = np.searchsorted(values, targets, side="right")
    for backend in (numba_backend, numpy_backend):
        found = np.full(len(targets), -1, dtype=np.int64)
        backend.locate(state, ends, targets, found)
        np.testing.assert_array_equal(found, expected)
    assert numpy_backend.last_nonzero(state) == np.flatnonzero(state)[-1]
    assert numpy_backend.last_nonzero(np.zeros(4, dtype=dtype)) == -1


def exact_fma(a, b, c):
    """``a * b + c`` rounded once to double (exact rational arithmetic; int / int rounds correctly)."""
    from fractions import Fraction

    return float(Fraction(a) * Fraction(b) + Fraction(c))


def documented_dense_product(matrix, amplitudes):
    """The arithmetic numba_backend's docstring promises: column 0 by a product then an fma, each
    later column by two fmas per part, columns in order."""
    out = []
    for row in matrix:
        mr, mi = row[0].real, row[0].imag
        ar, ai = amplitudes[0].real, amplitudes[0].imag
        re, im = exact_fma(-mi, ai, mr * ar), exact_fma(mi, ar, mr * ai)
        for m, a in zip(row[1:], amplitudes[1:]):
            re = exact_fma(-m.imag, a.imag, exact_fma(m.real, a.real, re))
            im = exact_fma(m.imag, a.real, exact_fma(m.real, a.imag, im))
        out.append(complex(re, im))
    return np.array(out)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("staged", [False, True])
def test_dense_gates_round_as_documented_so_any_machine_gives_the_same_bits(k, staged, rng):
    """Each output is the documented chain of fmas, each rounded once (IEEE), which any CPU or libm
    computes alike: a plain product-and-sum differs in the last bits of most amplitudes."""
    n = 4
    matrix = random_unitary(1 << k, seed=int(rng.integers(1 << 30))).data
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    positions = [int(p) for p in rng.permutation(n)[:k]]
    ours = state.copy()
    if staged:
        numba_backend.apply_stage(ours, [(tuple(positions), matrix, None)], n)
    else:
        numba_backend.apply_matrix(ours, matrix, positions)
    expected = state.copy()
    index = np.arange(1 << k)
    offsets = np.zeros(1 << k, dtype=np.int64)
    for j, p in enumerate(positions):
        offsets[(index >> j) & 1 == 1] |= 1 << p
    mask = int(offsets[-1])
    for base in range(1 << n):
        if base & mask == 0:
            expected[base + offsets] = documented_dense_product(matrix, state[base + offsets])
    assert ours.tobytes() == expected.tobytes()


@pytest.mark.parametrize("n", [1, 4, 15, 17])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_pauli_block_sums_numba_match_numpy_and_quantum_info(n, dtype, rng):
    """Many Z masks sharing one X mask, blocks at offsets with a partner block, a block of several
    chunks (n = 17): the numba kernel's sums equal numpy's (summed in another order) to 1e-12, and
    kernels.pauli_sums under the numba kernels equals quantum_info's expectation value."""
    from aer_mpi.kernels import pauli
    from qiskit.quantum_info import Pauli, Statevector

    state = (rng.normal(size=2**n) + 1j * rng.normal(size=2**n)).astype(dtype)
    state /= np.linalg.norm(state)
    size = 1 << n
    block = min(size, 1 << 16) if n < 17 else size
    zs = [0] + [int(v) for v in rng.integers(0, size, 6)]
    for x in (0, int(rng.integers(0, size)), size - 1):
        x_low, x_high = x & (block - 1), x & ~(block - 1)
        for offset in range(0, size, block):
            mine, partner = state[offset:offset + block], state[(offset ^ x_high):(offset ^ x_high) + block]
            fast = numba_backend.pauli_block_sums(mine, partner, offset, x_low, zs)
            slow = pauli.pauli_block_sums(mine, partner, offset, x_low, zs)
            np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    before = kernels.active()
    try:
        assert kernels.use("numba") == "numba"
        wide = state.astype(np.complex128)
        for _ in range(4):
            label = "".join(rng.choice(list("IXYZ"), n))
            x = sum(1 << j for j, c in enumerate(reversed(label)) if c in "XY")
            z = sum(1 << j for j, c in enumerate(reversed(label)) if c in "ZY")
            (value,) = kernels.pauli_sums(state, x, [z])
            expected = Statevector(wide).expectation_value(Pauli(label))
            assert abs(value * 1j ** label.count("Y") - expected) < (1e-12 if dtype == np.complex128 else 1e-5)
    finally:
        kernels.use(before)
