"""Kernels on one array, against qiskit.quantum_info (no MPI)."""

import numpy as np
import pytest
from qiskit.quantum_info import Operator, random_statevector, random_unitary

from aer_mpi import kernels
from aer_mpi.kernels import numpy_backend


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # Force several chunks even on small arrays, so the chunking is exercised;
    # that needs the numpy kernels active, whatever an earlier test in this
    # process selected (kernels.use is per process).
    before = kernels.active()
    kernels.use("numpy")
    monkeypatch.setattr(numpy_backend, "CHUNK_ELEMENTS", 8)
    yield
    kernels.use(before)


@pytest.mark.parametrize("n", [1, 3, 6])
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_apply_matrix_matches_operator(n, k, dtype, rng):
    if k > n:
        pytest.skip("gate wider than the state")
    state = random_statevector(2**n, seed=int(rng.integers(1 << 30)))
    unitary = random_unitary(2**k, seed=int(rng.integers(1 << 30)))
    positions = [int(p) for p in rng.permutation(n)[:k]]
    expected = state.evolve(Operator(unitary), qargs=positions).data
    array = state.data.astype(dtype)
    kernels.apply_matrix(array, unitary.data, positions)
    tol = 1e-12 if dtype == np.complex128 else 1e-5
    np.testing.assert_allclose(array, expected, atol=tol)


@pytest.mark.parametrize("n,positions", [(4, [2]), (5, [0, 4]), (5, [3, 1, 2])])
def test_apply_diagonal(n, positions, rng):
    state = random_statevector(2**n, seed=7)
    k = len(positions)
    diag = np.exp(1j * rng.uniform(0, 2 * np.pi, 2**k))
    expected = state.evolve(Operator(np.diag(diag)), qargs=positions).data
    array = state.data.copy()
    kernels.apply_diagonal(array, diag, positions)
    np.testing.assert_allclose(array, expected, atol=1e-12)


def test_probability_collapse_and_flip():
    state = random_statevector(2**5, seed=3)
    probs = state.probabilities([2])
    array = state.data.copy()
    assert kernels.probability_of_one(array, 2) == pytest.approx(probs[1], abs=1e-12)
    assert kernels.norm_squared(array) == pytest.approx(1.0, abs=1e-12)
    kernels.collapse(array, 2, 1, 1 / np.sqrt(probs[1]))
    assert kernels.probability_of_one(array, 2) == pytest.approx(1.0, abs=1e-12)
    kernels.flip(array, 2)
    assert kernels.probability_of_one(array, 2) == pytest.approx(0.0, abs=1e-12)


def test_logical_order_chunks_permute_bits():
    n = 5
    array = np.arange(2**n, dtype=np.complex128)
    order = [3, 0, 4, 1, 2]  # bit j of the wanted order is at position order[j]
    out = np.concatenate(list(kernels.logical_order_chunks(array, order, max_elements=4)))
    for i in range(2**n):
        source = sum(((i >> j) & 1) << order[j] for j in range(n))
        assert out[i] == source


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="expecting a 1-d array of length 2\\*\\*n"):
        kernels.apply_matrix(np.zeros(3, dtype=complex), np.eye(2), [0])


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("length", [1, 1 << 10, kernels.PARALLEL_ZERO_LENGTH + 3 * 64])
def test_zero_clears_every_entry_on_any_thread_count(length, threads, rng):
    """Large arrays are zeroed in ranges by the kernel threads: no range is skipped or doubled."""
    before = kernels._threads
    try:
        kernels._threads = threads
        state = (rng.normal(size=length) + 1j * rng.normal(size=length)).astype(np.complex128)
        kernels.zero(state)
        assert not np.any(state.view(np.float64)) and not np.signbit(state.view(np.float64)).any()
    finally:
        kernels._threads = before
