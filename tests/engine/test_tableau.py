"""Clifford circuits on the stabilizer tableau (engine/tableau.py): exact distributions against
qiskit.quantum_info, Aer's stabilizer method, wide circuits no state vector holds, and the same shots at
1, 2 and 4 ranks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.quantum_info import Statevector, random_clifford, random_unitary

from aer_mpi import AerMPISimulator
from aer_mpi.engine import tableau
from aer_mpi.errors import InsufficientMemoryError
from conftest import MPI_TIMEOUT, RANKS


def stabilizer_backend(**options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the method warning names the statevector fallback
        return AerMPISimulator(method="stabilizer", **options)


def run(backend, circuits, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return backend.run(circuits, **options).result()


def ghz(n: int, measure: bool = True) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"ghz{n}")
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    if measure:
        qc.measure_all()
    return qc


@pytest.mark.parametrize("basis", [None, ["rz", "sx", "cx"], ["h", "s", "sdg", "cz", "swap", "x"], ["u", "ecr"]])
def test_random_cliffords_sample_their_exact_distribution(basis):
    """Support exactly that of the state, and a small distance from its probabilities; whatever gates
    the circuit was written in (Clifford-angle rotations and unitaries count as Clifford)."""
    rng = np.random.default_rng(7)
    backend = stabilizer_backend()
    shots = 20_000
    for trial in range(4):
        n = int(rng.integers(1, 6))
        qc = random_clifford(n, seed=int(rng.integers(1 << 30))).to_circuit()
        if basis is not None:
            qc = transpile(qc, basis_gates=basis, optimization_level=1, seed_transpiler=trial)
        probabilities = Statevector(qc).probabilities()
        qc.measure_all()
        result = run(backend, qc, shots=shots, seed_simulator=trial)
        assert result.results[0].metadata["method"] == "stabilizer"
        counts = result.get_counts()
        sampled = np.zeros(1 << n)
        for key, value in counts.items():
            sampled[int(key, 2)] = value / shots
        assert set(np.nonzero(sampled)[0]) == set(np.nonzero(probabilities > 1e-12)[0]), (trial, basis)
        assert 0.5 * np.abs(sampled - probabilities).sum() < 0.03, (trial, basis)


def test_pauli_tables_of_known_gates():
    h = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
    images, signs = tableau.pauli_table(h)
    # index bits: x of qubit 0 is 1, z is 2: H takes X (1) to Z (2), Z to X, Y (3) to -Y
    assert (images[1], signs[1]) == (2, 0) and (images[2], signs[2]) == (1, 0) and (images[3], signs[3]) == (3, 1)
    images, signs = tableau.pauli_table(np.diag([1, 1j]))  # S: X -> Y, Y -> -X
    assert (images[1], signs[1]) == (3, 0) and (images[3], signs[3]) == (1, 1)
    assert tableau.pauli_table(np.diag([1, np.exp(1j * np.pi / 4)])) is None  # T
    assert tableau.pauli_table(random_unitary(4, seed=3).data) is None
    three = random_clifford(3, seed=11).to_matrix()
    assert tableau.pauli_table(three) is not None
    assert tableau.pauli_table(np.eye(32)) is None  # wider than MAX_GATE_QUBITS


def test_packed_popcounts_with_and_without_numpy_2():
    words = np.random.default_rng(2).integers(0, 1 << 63, size=(5, 3), dtype=np.int64).astype(np.uint64)
    words[0, 0] = np.uint64((1 << 64) - 1)
    expected = [sum(bin(int(w)).count("1") for w in row) for row in words]
    assert tableau.popcounts(words).tolist() == expected
    assert tableau._popcounts_unpacked(words).tolist() == expected


def test_a_wide_random_clifford_circuit_samples_its_support():
    """130 qubits (three 64-bit words per row) of random layers: every shot satisfies the state's
    Z-only stabilizers, checked with qiskit's own tableau of the circuit."""
    from qiskit.quantum_info import Clifford, StabilizerState

    rng = np.random.default_rng(4)
    n = 130
    qc = QuantumCircuit(n)
    for _ in range(6):
        for q in range(n):
            [qc.h, qc.s, qc.sx, qc.y][int(rng.integers(4))](q)
        order = rng.permutation(n)
        for a, b in zip(order[0::2], order[1::2]):
            qc.cx(int(a), int(b))
    clifford = Clifford(qc)
    stabilizers = clifford.to_labels(mode="S")
    qc.measure_all()
    memory = run(AerMPISimulator(), qc, shots=1000, seed_simulator=1, memory=True).get_memory()
    assert len(set(memory)) > 900  # many outcomes: the state is spread, the test checks something
    bits = np.array([[int(c) for c in shot[::-1]] for shot in memory])  # bits[s, j]: qubit j of shot s
    # marginals on a few qubits against qiskit's StabilizerState
    state = StabilizerState(clifford)
    for qubits in ([0, 1, 2], [63, 64, 129]):
        exact = state.probabilities_dict(qargs=qubits)
        keys, counts = np.unique(bits[:, qubits[::-1]], axis=0, return_counts=True)
        sampled = {"".join(map(str, k)): c / len(memory) for k, c in zip(keys.tolist(), counts.tolist())}
        assert set(sampled) <= {k for k, v in exact.items() if v > 1e-12}, qubits
        assert 0.5 * sum(abs(sampled.get(k, 0) - v) for k, v in exact.items()) < 0.08, qubits
    # and every shot obeys the Z-only stabilizers among the generators
    z_only = [label for label in stabilizers if set(label[1:]) <= {"I", "Z"}]
    assert z_only
    for label in z_only:
        mask = np.array([p == "Z" for p in reversed(label[1:])])
        assert np.all(bits[:, mask].sum(axis=1) % 2 == (label[0] == "-")), label


def test_matches_aers_stabilizer_method_on_a_wide_register():
    """100 qubits, 100 clbits (wider than int64): the keys Aer's stabilizer method gives, at its rates."""
    from qiskit_aer import AerSimulator

    qc = QuantumCircuit(100, 100)
    qc.h(0)
    qc.cx(0, 99)
    qc.x(50)
    qc.h(7)
    qc.s(7)
    qc.s(7)
    qc.h(7)  # H Z H = X: qubit 7 is 1
    qc.h(20)
    qc.cz(20, 21)  # qubit 20 random, 21 stays 0
    qc.measure(range(100), range(100))
    ours = run(AerMPISimulator(), qc, shots=2000, seed_simulator=3, memory=True)
    theirs = AerSimulator(method="stabilizer").run(qc, shots=2000, seed_simulator=3).result().get_counts()
    assert set(ours.get_counts()) == set(theirs) and len(theirs) == 4
    assert len(ours.get_memory()) == 2000 and all(len(m) == 100 for m in ours.get_memory())
    assert all(450 < v < 550 for v in ours.get_counts().values())
    assert "does not fit" in ours.results[0].metadata["note"]


def test_a_wide_clifford_circuit_runs_unless_the_statevector_is_asked_for():
    counts = run(AerMPISimulator(), ghz(300), shots=1000, seed_simulator=1).get_counts()
    assert set(counts) == {"0" * 300, "1" * 300} and 400 < counts["0" * 300] < 600
    with pytest.raises(InsufficientMemoryError, match="300 qubits need"):
        run(AerMPISimulator(method="statevector"), ghz(300), shots=10)
    wide = ghz(50)
    wide.t(3)  # not Clifford: no tableau, the memory error names the fixes
    with pytest.raises(InsufficientMemoryError, match="use more ranks"):
        run(AerMPISimulator(), wide, shots=10)


def test_non_clifford_under_stabilizer_runs_as_the_statevector():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.t(0)
    qc.cx(0, 1)
    qc.measure_all()
    result = run(stabilizer_backend(), qc, shots=100, seed_simulator=1)
    assert result.results[0].metadata["method"] == "statevector"
    assert set(result.get_counts()) <= {"00", "11"}


def test_a_seed_repeats_and_memory_matches_counts():
    backend = stabilizer_backend()
    first = run(backend, ghz(40), shots=500, seed_simulator=9, memory=True)
    second = run(backend, ghz(40), shots=500, seed_simulator=9, memory=True)
    assert first.get_memory() == second.get_memory()
    memory = first.get_memory()
    assert {k: memory.count(k) for k in set(memory)} == first.get_counts()


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_the_same_shots_at_every_rank_count(comm):
    """An 80-qubit Clifford circuit (no state vector holds it): every rank count gives one rank's shots."""
    from mpi4py import MPI

    qc = random_clifford(6, seed=5).to_circuit()
    wide = QuantumCircuit(80)
    wide.compose(qc, qubits=[0, 17, 33, 50, 64, 79], inplace=True)
    for q in range(0, 79, 2):
        wide.cx(q, q + 1)
    wide.measure_all()
    spread = run(AerMPISimulator(comm=comm), wide, shots=300, seed_simulator=4, memory=True)
    alone = run(AerMPISimulator(comm=MPI.COMM_SELF), wide, shots=300, seed_simulator=4, memory=True)
    assert spread.get_memory() == alone.get_memory()
    assert spread.results[0].metadata["method"] == "stabilizer"
    assert spread.results[0].metadata["ranks"] == comm.Get_size()


def test_a_wide_clifford_circuit_whose_shots_do_not_fit_gets_the_shots_error():
    with pytest.raises(InsufficientMemoryError, match=r"shots need .* for their outcomes.*fewer shots"):
        run(AerMPISimulator(), ghz(100), shots=1 << 24, memory=True, max_memory_mb=64)


def test_expectation_values_of_stabilizers_and_random_paulis_match_qiskit():
    """save_expectation_value(_variance) on the tableau: exact against Statevector, for Paulis of the
    stabilizer group (+-1), products of them with signs, and random ones (mostly 0)."""
    from qiskit.quantum_info import Clifford, Pauli, SparsePauliOp

    rng = np.random.default_rng(8)
    backend = stabilizer_backend()
    for trial in range(5):
        n = int(rng.integers(2, 7))
        qc = random_clifford(n, seed=int(rng.integers(1 << 30))).to_circuit()
        stabilizers = [Pauli(label) for label in Clifford(qc).to_labels(mode="S")]
        labels = []
        for _ in range(6):  # a product of some generators: a stabilizer, with its sign
            product = Pauli("I" * n)
            for g in stabilizers:
                if rng.integers(2):
                    product = product.compose(g)
            labels.append(product)
        labels += [Pauli("".join(rng.choice(list("IXYZ"), size=n))) for _ in range(4)]
        terms = []
        for pauli in labels:
            phase = (-1j) ** pauli.phase  # a label with a sign: the term's coefficient carries it
            pauli = pauli.copy()
            pauli.phase = 0
            terms.append((pauli.to_label(), float(np.real(phase)) if abs(np.imag(phase)) < 1e-12 else 0.0))
        observable = SparsePauliOp.from_list([(label, c + 0.5) for label, c in terms])
        exact = Statevector(qc)
        expected = exact.expectation_value(observable).real
        variance = exact.expectation_value(observable @ observable).real - expected**2
        saved = qc.copy()
        saved.save_expectation_value(observable, list(range(n)), label="mean")
        saved.save_expectation_value_variance(observable, list(range(n)), label="var")
        for k, (label, _) in enumerate(terms):  # each Pauli alone: +1, -1 or 0
            saved.save_expectation_value(SparsePauliOp(label), list(range(n)), label=f"p{k}")
        result = run(backend, saved, shots=1)
        data = result.data(0)
        assert result.results[0].metadata["method"] == "stabilizer"
        assert data["mean"] == pytest.approx(expected, abs=1e-9), trial
        assert data["var"][1] == pytest.approx(variance, abs=1e-9), trial
        values = [data[f"p{k}"] for k in range(len(terms))]
        assert values == pytest.approx([exact.expectation_value(Pauli(label)).real for label, _ in terms], abs=1e-9)
        assert any(v != 0 for v in values[:6]), values  # the stabilizers are not all left at 0


def test_estimator_on_a_clifford_circuit_wider_than_memory():
    """EstimatorV2 on a 100-qubit GHZ state (no state vector holds it), as Aer's automatic method."""
    from qiskit.quantum_info import SparsePauliOp

    from aer_mpi.primitives import EstimatorV2

    n = 100
    qc = ghz(n, measure=False)
    observables = [SparsePauliOp("I" * 40 + "Z" + "I" * 58 + "Z"), SparsePauliOp("X" * n), SparsePauliOp("Z" + "I" * 99),
                   SparsePauliOp("YY" + "X" * 98), SparsePauliOp.from_list([("X" * n, 0.5), ("Z" * n, 2.0)])]
    evs = EstimatorV2().run([(qc, observables)]).result()[0].data.evs
    # Z^n on 100 qubits of GHZ is +1 (an even count of Z), so 0.5 * 1 + 2 * 1
    np.testing.assert_allclose(evs, [1.0, 1.0, 0.0, -1.0, 2.5], atol=1e-12)


def test_saves_and_final_measurements_in_one_circuit():
    """The saves' tableau is the one the final measurements sample (the gates run once)."""
    from qiskit.quantum_info import SparsePauliOp

    qc = ghz(80)
    qc.remove_final_measurements()
    qc.save_expectation_value(SparsePauliOp("Z" + "I" * 78 + "Z"), list(range(80)), label="zz")
    qc.save_expectation_value(SparsePauliOp("Z" + "I" * 79), list(range(80)), label="z")
    qc.measure_all()
    result = run(AerMPISimulator(), qc, shots=1000, seed_simulator=2)
    assert result.results[0].metadata["method"] == "stabilizer"
    assert result.data(0)["zz"] == 1.0 and result.data(0)["z"] == 0.0
    counts = result.get_counts()
    assert set(counts) == {"0" * 80, "1" * 80} and 400 < counts["0" * 80] < 600


@pytest.mark.parametrize("seed", range(8))
def test_probabilities_of_some_qubits_are_qiskits(seed):
    """save_probabilities(_dict) and save_amplitudes_squared on the tableau: the outcomes' affine space
    projected on the saved qubits (they were refused, and a wide circuit's were a memory error)."""
    rng = np.random.default_rng(seed)
    qc = random_clifford(7, seed=seed).to_circuit()
    state = Statevector(qc)
    qubits = [int(q) for q in rng.permutation(7)[: 1 + seed % 4]]
    indices = [int(i) for i in rng.choice(128, size=6, replace=False)]
    final = tableau.Tableau(7, destabilizers=True)
    from aer_mpi.qobj.assemble import assemble_circuits
    from aer_mpi.qobj.translate import to_program

    for op in to_program(assemble_circuits([qc], {"shots": 1, "seed_simulator": 1}).experiments[0]).ops:
        if isinstance(op, tableau.ir.Swap):
            final.swap(op.qubit0, op.qubit1)
        elif not isinstance(op, tableau.ir.GlobalPhase):
            final.apply(op.qubits, tableau.op_table(op))
    np.testing.assert_allclose(tableau.outcome_probabilities(final, tuple(qubits)), state.probabilities(qubits),
                               atol=1e-12)
    np.testing.assert_allclose(tableau.outcome_probability(final, tuple(range(7)), indices),
                               np.abs(state.data[indices]) ** 2, atol=1e-12)


def test_a_wide_ghz_saves_its_probabilities_on_the_tableau():
    n = 60
    qc = ghz(n, measure=False)
    qc.save_probabilities([0, n - 1], label="p")
    qc.save_probabilities_dict([0, 1, n - 1], label="d")
    qc.save_amplitudes_squared([0, 1, (1 << n) - 1], label="a")
    qc.measure_all()
    result = AerMPISimulator(method="stabilizer").run(qc, shots=10).result()
    data = result.data(0)
    np.testing.assert_allclose(data["p"], [0.5, 0, 0, 0.5])
    assert data["d"] == {0: 0.5, 7: 0.5} and np.allclose(data["a"], [0.5, 0, 0.5])
    assert result.results[0].metadata["method"] == "stabilizer"
    with pytest.raises(Exception, match="at most 24 qubits"):
        wide = QuantumCircuit(n)
        wide.h(0)
        wide.save_probabilities(list(range(30)))
        AerMPISimulator(method="stabilizer").run(wide).result()


def test_a_save_the_tableau_does_not_compute_is_named_beside_save_stabilizer():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.save_stabilizer()
    qc.save_statevector(label="sv")
    with pytest.raises(Exception, match="does not compute save_statevector"):
        AerMPISimulator(method="stabilizer").run(qc).result()


def test_clifford_circuits_past_a_thousand_qubits_run_and_others_get_the_memory_error():
    """The memory check's message overflowed a float past ~1040 qubits (OverflowError), so the tableau
    was never tried and the error named no fix."""
    n = 1100
    qc = QuantumCircuit(n)
    qc.h(0)
    qc.cx(0, n - 1)
    qc.measure_all()
    counts = AerMPISimulator().run(qc, shots=20, seed_simulator=1).result().get_counts()
    assert set(counts) <= {"0" * n, "1" + "0" * (n - 2) + "1"} and sum(counts.values()) == 20
    qc.t(0)
    with pytest.raises(InsufficientMemoryError, match=r"about 2\^\d+ bytes per rank.*use more ranks"):
        AerMPISimulator().run(qc, shots=20).result()
