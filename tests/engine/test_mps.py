"""The matrix product state (engine/mps.py) against Qiskit's Statevector, directly and through the
backend (method="matrix_product_state" on a circuit too wide for max_memory_mb), one process; the
multi-rank check is in tests/provider/test_notebook_corners.py's shared job."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit
from qiskit.quantum_info import Pauli, Statevector, partial_trace

from aer_mpi import AerMPISimulator, InsufficientMemoryError
from aer_mpi.engine.mps import MatrixProductState, is_mps_circuit
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.qobj.translate import to_program
from conftest import MPI_TIMEOUT, RANKS
from test_tableau import ghz


def _program(qc: QuantumCircuit):
    return to_program(assemble_circuits([qc], {"shots": 1, "seed_simulator": 1}).experiments[0])


def _random_circuit(n: int, seed: int, layers: int = 3) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n)
    for layer in range(layers):
        for q in range(n):
            qc.u(*rng.uniform(0, 2 * np.pi, 3), q)
        for q in range(layer % 2, n - 1, 2):
            qc.cx(q, q + 1)
    a, b, c = (int(x) for x in rng.permutation(n)[:3])
    qc.cx(a, b)  # far apart: the chain swaps them together
    qc.ccx(b, c, a)
    qc.swap(a, c)
    qc.cp(0.3, c, b)
    qc.rzz(0.4, a, b)
    qc.unitary(np.linalg.qr(rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8)))[0], [c, a, b])
    qc.global_phase = 0.7
    return qc


@pytest.mark.parametrize("seed", range(6))
def test_the_chain_holds_the_circuits_state(seed):
    n = 5 + seed
    qc = _random_circuit(n, seed)
    chain = MatrixProductState(n)
    for op in _program(qc).ops:
        chain.apply(op)
    np.testing.assert_allclose(chain.statevector(), Statevector(qc).data, atol=1e-10)
    assert chain.discarded < 1e-14


def test_a_bond_limit_truncates_and_says_so():
    qc = _random_circuit(10, 3, layers=6)
    chain = MatrixProductState(10, max_bond=4)
    for op in _program(qc).ops:
        chain.apply(op)
    assert chain.widest_bond <= 4 and chain.discarded > 1e-6
    assert abs(np.linalg.norm(chain.statevector()) - 1) < 1e-10


def check_a_wide_circuit_runs_as_a_chain(comm):
    """20 qubits over a 4 MiB memory limit: the chain's saves are Qiskit's, its counts in distribution."""
    n = 20
    qc = _random_circuit(n, 11)
    reference = Statevector(qc)
    qc.save_expectation_value(Pauli("XYZ"), [3, 0, 8], label="e")
    qc.save_probabilities([5, 1, 9], label="p")
    qc.save_density_matrix([4, 2], label="d")
    qc.save_amplitudes([0, 5, 1234], label="a")
    qc.save_matrix_product_state(label="m")
    qc.measure_all()
    assert is_mps_circuit(_program(qc))
    backend = AerMPISimulator(comm=comm, method="matrix_product_state", max_memory_mb=4)
    with warnings.catch_warnings():  # "runs as the statevector" (circuits that fit do)
        warnings.simplefilter("ignore", UserWarning)
        result = backend.run(qc, shots=8000, seed_simulator=3).result()
    if comm.rank != 0:
        return
    assert result.results[0].metadata["method"] == "matrix_product_state"
    data = result.data(0)
    assert np.isclose(data["e"], reference.expectation_value(Pauli("XYZ"), [3, 0, 8]).real, atol=1e-10)
    assert np.allclose(data["p"], reference.probabilities([5, 1, 9]), atol=1e-10)
    reduced = partial_trace(reference, [q for q in range(n) if q not in (4, 2)]).data
    # partial_trace keeps qubit 2 as the low bit; the save's qubits [4, 2] put qubit 4 there
    assert np.allclose(data["d"].data, reduced.reshape(2, 2, 2, 2).transpose(1, 0, 3, 2).reshape(4, 4), atol=1e-10)
    assert np.allclose(data["a"], reference.data[[0, 5, 1234]], atol=1e-10)
    gammas, lambdas = data["m"]  # Aer's Vidal form, qubit 0 first: the same amplitudes up to a global phase
    assert len(gammas) == n and len(lambdas) == n - 1
    assert all(abs(float(np.sum(v ** 2)) - 1) < 1e-10 for v in lambdas)
    ratios = []
    for index in (0, 5, 1234, 99999):
        matrix = gammas[0][index & 1]
        for q in range(1, n):
            matrix = matrix @ np.diag(lambdas[q - 1]) @ gammas[q][(index >> q) & 1]
        ratios.append(matrix[0, 0] / reference.data[index])
    assert np.allclose(ratios, ratios[0], atol=1e-8) and abs(abs(ratios[0]) - 1) < 1e-8
    low = reference.probabilities([0, 1, 2])
    counts = np.zeros(8)
    for key, count in result.get_counts().items():
        counts[int(key[-3:], 2)] += count
    assert 0.5 * np.abs(counts / 8000 - low).sum() < 0.04


def test_a_wide_circuit_runs_as_a_chain():
    check_a_wide_circuit_runs_as_a_chain(MPI.COMM_SELF)


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_a_wide_circuit_runs_as_a_chain_at_every_rank_count(comm):
    """Every rank computes the same chain: the same saves and counts at any rank count."""
    check_a_wide_circuit_runs_as_a_chain(comm)


def test_a_wide_ghz_with_t_gates_samples_its_two_branches():
    n = 80
    qc = ghz(n, measure=False)
    qc.t(range(n))
    qc.measure_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state").run(
            qc, shots=400, seed_simulator=1).result()
    counts = result.get_counts()
    assert set(counts) == {"0" * n, "1" * n} and 140 < counts["0" * n] < 260
    assert result.results[0].metadata["max_bond_dimension"] == 2


def test_a_bond_limit_is_honoured_on_a_circuit_that_fits():
    """Aer's approximation asked for (a bond limit, a truncation threshold): the chain runs it though the
    exact statevector would fit (the option was ignored, silently: fidelity 1)."""
    qc = _random_circuit(10, 3, layers=6)
    exact = Statevector(qc)
    qc.save_statevector()
    qc.measure_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        limited = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state",
                                  matrix_product_state_max_bond_dimension=4).run(qc, shots=100).result()
        plain = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state").run(qc, shots=100).result()
    meta = limited.results[0].metadata
    assert meta["method"] == "matrix_product_state" and meta["max_bond_dimension"] <= 4
    assert meta["matrix_product_state_truncated_weight"] > 1e-6 and "bond limit" in meta["note"]
    fidelity = abs(np.vdot(exact.data, limited.get_statevector().data)) ** 2
    assert 0.2 < fidelity < 1 - 1e-6
    assert sum(limited.get_counts().values()) == 100
    assert plain.results[0].metadata["method"] == "statevector"  # no approximation asked: exact
    assert plain.get_statevector().equiv(exact)


def test_aers_extended_stabilizer_tutorial_circuit_runs_as_a_chain():
    """Aer's extended-stabilizer tutorial: 40 qubits, Clifford gates and a few T gates (it was a memory error)."""
    rng = np.random.default_rng(1)
    qc = QuantumCircuit(40, 40)
    qc.h(range(40))
    for _ in range(10):
        a, b, t = (int(x) for x in rng.permutation(40)[:3])
        qc.cx(a, b)
        qc.t(t)
    qc.measure(range(40), range(40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = AerMPISimulator(comm=MPI.COMM_SELF, method="extended_stabilizer").run(
            qc, shots=5, seed_simulator=2).result()
    assert result.success and sum(result.get_counts().values()) == 5
    assert result.results[0].metadata["method"] == "matrix_product_state"


def test_an_entangled_wide_circuit_is_refused_naming_the_bond_option():
    qc = _random_circuit(24, 5, layers=12)
    qc.measure_all()
    with pytest.raises(InsufficientMemoryError, match="matrix_product_state_max_bond_dimension"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state", max_memory_mb=16).run(
            qc, shots=10).result()
    # with a bond limit it runs, an approximation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state", max_memory_mb=16,
                                 matrix_product_state_max_bond_dimension=8).run(qc, shots=10).result()
    assert result.results[0].metadata["max_bond_dimension"] <= 8
    assert result.results[0].metadata["matrix_product_state_truncated_weight"] > 0


def test_metadata_reports_the_chains_options_as_aer():
    """Aer's metadata keys of the method: the bond limit (2**64 - 1 when none) and the threshold (an exact
    run without either is the statevector's, and says so)."""
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        limited = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state",
                                  matrix_product_state_max_bond_dimension=2,
                                  matrix_product_state_truncation_threshold=1e-10).run(qc, shots=10).result()
        unlimited = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state",
                                    matrix_product_state_truncation_threshold=1e-12).run(qc, shots=10).result()
    meta = limited.results[0].metadata
    assert meta["matrix_product_state_max_bond_dimension"] == 2
    assert meta["matrix_product_state_truncation_threshold"] == 1e-10
    meta = unlimited.results[0].metadata
    assert meta["matrix_product_state_max_bond_dimension"] == 2**64 - 1
    assert meta["matrix_product_state_truncation_threshold"] == 1e-12


@pytest.mark.parametrize("seed,bond", [(2, 2), (2, 4), (3, 2)])
def test_a_bond_limit_keeps_the_best_cut_as_aer(seed, bond):
    """Each truncation is made at the chain's orthogonality centre, so the values dropped are Schmidt
    values: the approximation is Aer's. Split where the environments were not orthonormal, a bond
    limit dropped the wrong ones (fidelity 0.54 against Aer's 0.83 on the second case, probe R5)."""
    from qiskit import transpile
    from qiskit.circuit.random import random_circuit
    from qiskit_aer import AerSimulator

    qc = transpile(random_circuit(8, 6, max_operands=2, seed=seed), basis_gates=["u", "cx"])
    exact = Statevector(qc).data
    fidelities = []
    for simulator in (AerSimulator, lambda **kw: AerMPISimulator(comm=MPI.COMM_SELF, **kw)):
        saved = qc.copy()
        saved.save_statevector()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            state = simulator(method="matrix_product_state", matrix_product_state_max_bond_dimension=bond).run(
                saved, shots=1).result().get_statevector()
        fidelities.append(abs(np.vdot(exact, np.asarray(state))) ** 2)
    aer, ours = fidelities
    assert aer < 0.999 and ours >= aer - 1e-6, fidelities
