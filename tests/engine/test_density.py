"""Noisy circuits as a density matrix (engine/density.py): the diagonal is exact against Aer's own
density-matrix method, the counts match Aer's, the automatic method takes it when Aer's does, and
every rank count gives the same shots."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import QFTGate

import aer_mpi.engine.runner as runner
from aer_mpi import AerMPISimulator
from aer_mpi.errors import InsufficientMemoryError, InvalidInputError
from conftest import MPI_TIMEOUT, RANKS, assert_kernels

noise = pytest.importorskip("qiskit_aer.noise")
qiskit_aer = pytest.importorskip("qiskit_aer")


def mixed_noise_model():
    """Every kind of error the method turns into a superoperator: Kraus channels, mixtures with
    resets, thermal relaxation (a mixture holding a Kraus channel), 2-qubit errors, readout."""
    model = noise.NoiseModel(basis_gates=["h", "rx", "x", "cx", "t", "u", "swap"])
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.08), ["h"])
    model.add_all_qubit_quantum_error(noise.phase_damping_error(0.1).compose(noise.depolarizing_error(0.02, 1)),
                                      ["rx"])
    model.add_all_qubit_quantum_error(noise.reset_error(0.05, 0.03), ["x"])
    model.add_all_qubit_quantum_error(noise.thermal_relaxation_error(50e3, 40e3, 500), ["t", "u"])
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.06, 2), ["cx"])
    model.add_quantum_error(noise.pauli_error([("XZ", 0.1), ("II", 0.9)]), ["swap"], [0, 1])
    model.add_all_qubit_readout_error(noise.ReadoutError([[0.95, 0.05], [0.1, 0.9]]))
    return model


def random_noisy_circuit(rng: np.random.Generator, n: int, depth: int, resets: bool = True) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    for _ in range(depth):
        q = [int(x) for x in rng.permutation(n)]
        kind = int(rng.integers(8))
        if (n == 1 and kind in (3, 6)) or (kind == 7 and not resets):
            kind = 0
        if kind == 0:
            qc.h(q[0])
        elif kind == 1:
            qc.rx(float(rng.uniform(0, 2 * np.pi)), q[0])
        elif kind == 2:
            qc.x(q[0])
        elif kind == 3:
            qc.cx(q[0], q[1])
        elif kind == 4:
            qc.t(q[0])
        elif kind == 5:
            qc.u(*rng.uniform(0, 2 * np.pi, 3), q[0])
        elif kind == 6:
            qc.swap(q[0], q[1])
        else:
            qc.reset(q[0])
    return qc


def exact_probabilities(qc: QuantumCircuit, model) -> np.ndarray:
    """Aer's density-matrix method, without readout errors (they act on the recorded bits)."""
    bare = qc.remove_final_measurements(inplace=False)
    bare.save_probabilities()
    result = qiskit_aer.AerSimulator(method="density_matrix", noise_model=model).run(bare, shots=1).result()
    return np.asarray(result.data(0)["probabilities"])


def captured_diagonals(monkeypatch) -> list:
    """The diagonals the runner samples from (the exact probabilities of every qubit)."""
    seen = []
    original = runner.sample_diagonal

    def capture(diagonal, shots, seed):
        seen.append(np.real(np.asarray(diagonal)).copy())
        return original(diagonal, shots, seed)

    monkeypatch.setattr(runner, "sample_diagonal", capture)
    return seen


def test_the_diagonal_is_exact_against_aers_density_matrix(monkeypatch, kernels):
    model = mixed_noise_model()
    seen = captured_diagonals(monkeypatch)
    rng = np.random.default_rng(5)
    circuits = [random_noisy_circuit(rng, n, 24) for n in (1, 2, 3, 4, 5)]
    for qc in circuits:
        qc.measure_all()
    backend = AerMPISimulator(method="density_matrix", noise_model=model)
    result = backend.run(circuits, shots=10, seed_simulator=1).result()
    assert_kernels(result, kernels)
    assert len(seen) == len(circuits)
    for i, (qc, diagonal) in enumerate(zip(circuits, seen)):
        assert result.results[i].metadata["method"] == "density_matrix"
        np.testing.assert_allclose(diagonal, exact_probabilities(qc, model), atol=1e-12, err_msg=str(i))


def test_a_device_noise_model_matches_aer_counts():
    """A transpiled QFT with FakeManilaV2's noise (thermal relaxation, depolarizing, readout): the
    counts against Aer's (which takes its density-matrix method too)."""
    fake = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    device = fake.FakeManilaV2()
    model = noise.NoiseModel.from_backend(device)
    qc = QuantumCircuit(5)
    qc.x(0)
    qc.append(QFTGate(5), range(5))
    qc.measure_all()
    qc = transpile(qc, device, seed_transpiler=1)
    shots = 40000
    ours = AerMPISimulator(noise_model=model).run(qc, shots=shots, seed_simulator=3).result()
    aers = qiskit_aer.AerSimulator(noise_model=model).run(qc, shots=shots, seed_simulator=3).result()
    assert ours.results[0].metadata["method"] == "density_matrix"
    assert aers.results[0].metadata["method"] == "density_matrix"
    a, b = ours.get_counts(), aers.get_counts()
    distance = 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / shots
    assert distance < 0.03, distance  # both sample 32 outcomes: about 0.01-0.02 apart by chance


def noisy_circuit_for_methods(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.t(0)
    qc.measure_all()
    return qc


def method_of(result, i=0):
    return result.results[i].metadata["method"]


def test_the_automatic_method_takes_it_as_aer_does():
    model = mixed_noise_model()
    qc = noisy_circuit_for_methods(4)
    backend = AerMPISimulator(noise_model=model)
    assert method_of(backend.run(qc, shots=17, seed_simulator=1).result()) == "density_matrix"  # 17 > 2**4
    assert method_of(backend.run(qc, shots=16, seed_simulator=1).result()) == "statevector"  # trajectories
    mid = QuantumCircuit(4, 5)
    mid.h(0)
    mid.measure(0, 4)
    mid.cx(0, 1)  # touches a measured qubit: not a final measurement
    mid.measure(range(4), range(4))
    assert method_of(backend.run(mid, shots=1000, seed_simulator=1).result()) == "statevector"
    # a Clifford circuit with Pauli noise goes to the tableau first, as in Aer
    clifford = QuantumCircuit(3)
    clifford.h(0)
    clifford.cx(0, 1)
    clifford.measure_all()
    pauli = noise.NoiseModel()
    pauli.add_all_qubit_quantum_error(noise.depolarizing_error(0.1, 2), ["cx"])
    assert method_of(AerMPISimulator(noise_model=pauli).run(clifford, shots=1000).result()) == "stabilizer"
    # without noise the statevector samples every shot from one run already
    assert method_of(AerMPISimulator().run(qc, shots=1000).result()) == "statevector"


def test_a_density_matrix_that_does_not_fit_leaves_the_automatic_method_to_trajectories():
    model = mixed_noise_model()
    qc = noisy_circuit_for_methods(10)  # 4**10 amplitudes: 16 MiB; the statevector 16 KiB
    result = AerMPISimulator(noise_model=model, max_memory_mb=8).run(qc, shots=1100, seed_simulator=2).result()
    assert method_of(result) == "statevector"
    assert sum(result.get_counts().values()) == 1100
    with pytest.raises(InsufficientMemoryError):
        AerMPISimulator(noise_model=model, max_memory_mb=8, method="density_matrix").run(qc, shots=10).result()


def test_without_noise_the_method_still_samples_the_exact_distribution(monkeypatch):
    seen = captured_diagonals(monkeypatch)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.7, 2)
    qc.measure_all()
    result = AerMPISimulator(method="density_matrix").run(qc, shots=2000, seed_simulator=9, memory=True).result()
    from qiskit.quantum_info import Statevector

    expected = Statevector(qc.remove_final_measurements(inplace=False)).probabilities()
    np.testing.assert_allclose(seen[0], expected, atol=1e-12)
    memory = result.get_memory()
    assert len(memory) == 2000 and {m: memory.count(m) for m in set(memory)} == result.get_counts()


def test_a_seed_gives_the_same_shots_and_partial_measurements_map_to_their_clbits():
    model = mixed_noise_model()
    qc = QuantumCircuit(3, 2)
    qc.h(0)
    qc.cx(0, 2)
    qc.x(1)
    qc.measure(2, 0)
    qc.measure(1, 1)
    backend = AerMPISimulator(noise_model=model, method="density_matrix")
    first = backend.run(qc, shots=3000, seed_simulator=4, memory=True).result()
    again = backend.run(qc, shots=3000, seed_simulator=4, memory=True).result()
    assert first.get_memory() == again.get_memory()
    counts = first.get_counts()
    assert set(counts) <= {"00", "01", "10", "11"}
    assert counts.get("10", 0) + counts.get("11", 0) > 2000  # clbit 1 reads the flipped qubit 1


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_the_matrix_methods_at_every_rank_count(comm, kernels, monkeypatch):
    """The density matrix here and the unitary and superop methods (tests/engine/test_operators.py) in
    one job per rank count and kernels: a job's start-up costs more than their checks."""
    from tests.engine.test_operators import check_every_rank_count_gives_the_operators

    check_every_rank_count_gives_one_ranks_shots_and_the_exact_diagonal(comm, kernels, monkeypatch)
    check_every_rank_count_gives_the_operators(comm, kernels)


def check_every_rank_count_gives_one_ranks_shots_and_the_exact_diagonal(comm, kernels, monkeypatch):
    """The 2n-qubit vector sharded over the ranks (min_local_qubits=2: rank qubits even at 4 qubits)."""
    from mpi4py import MPI

    model = mixed_noise_model()
    seen = captured_diagonals(monkeypatch)
    rng = np.random.default_rng(11)
    circuits = [random_noisy_circuit(rng, n, 20) for n in (3, 4)]  # 2-qubit errors: 4 local qubits
    for qc in circuits:
        qc.measure_all()
    spread = AerMPISimulator(comm=comm, noise_model=model, method="density_matrix", min_local_qubits=2,
                             parallel_experiments=False)
    alone = AerMPISimulator(comm=MPI.COMM_SELF, noise_model=model, method="density_matrix")
    many = spread.run(circuits, shots=500, seed_simulator=8, memory=True).result()
    assert_kernels(many, kernels)
    one = alone.run(circuits, shots=500, seed_simulator=8, memory=True).result()
    for i, qc in enumerate(circuits):
        assert many.results[i].metadata["working_ranks"] == comm.Get_size()
        assert many.get_memory(i) == one.get_memory(i)
        np.testing.assert_allclose(seen[i], exact_probabilities(qc, model), atol=1e-12)


def saves_circuit(rng: np.random.Generator, n: int) -> QuantumCircuit:
    from qiskit.quantum_info import SparsePauliOp

    qc = random_noisy_circuit(rng, n, 18)
    qc.save_density_matrix(label="rho")
    qc.save_density_matrix([2, 0], label="rho_20", pershot=True)
    qc.save_probabilities(label="p")
    qc.save_probabilities_dict([1, 2], label="pd")
    observable = SparsePauliOp(["XYZ", "ZZI", "IYY", "XII"], coeffs=[0.5, -1.0, 0.25, 2.0])
    qc.save_expectation_value(observable, [0, 1, 2], label="ev")
    qc.save_expectation_value_variance(observable, [2, 0, 1], label="var")
    qc.h(1)  # saves read the state where they stand
    qc.save_expectation_value(SparsePauliOp("YX"), [1, 2], label="ev_after", pershot=True)
    qc.measure_all()
    return qc


def test_saves_are_exact_against_aers_density_matrix(kernels):
    model = mixed_noise_model()
    rng = np.random.default_rng(21)
    for n in (3, 4):
        qc = saves_circuit(rng, n)
        ours = AerMPISimulator(noise_model=model).run(qc, shots=100, seed_simulator=2).result()
        aers = qiskit_aer.AerSimulator(noise_model=model, method="density_matrix").run(qc, shots=100).result()
        assert ours.results[0].metadata["method"] == "density_matrix"  # 100 shots > 2**n
        assert_kernels(ours, kernels)
        got, want = ours.data(0), aers.data(0)
        for label in ("rho", "rho_20"):
            np.testing.assert_allclose(np.asarray(got[label][0] if label == "rho_20" else got[label]),
                                       np.asarray(want[label][0] if label == "rho_20" else want[label]),
                                       atol=1e-10, err_msg=label)
        assert len(got["rho_20"]) == len(want["rho_20"]) == 1  # one value: every shot saw the same state
        np.testing.assert_allclose(got["p"], want["p"], atol=1e-10)
        assert set(got["pd"]) == set(want["pd"])
        for key in want["pd"]:
            assert abs(got["pd"][key] - want["pd"][key]) < 1e-10
        assert abs(got["ev"] - want["ev"]) < 1e-10
        np.testing.assert_allclose(got["var"], want["var"], atol=1e-10)
        np.testing.assert_allclose(got["ev_after"], want["ev_after"], atol=1e-10)
        assert sum(ours.get_counts().values()) == 100


def test_estimator_v2_under_noise_gives_the_exact_value():
    """Its 1024 trajectories outnumber a small circuit's basis states: the automatic method takes the
    density matrix, and the expectation value is exact (Aer's density matrix)."""
    from qiskit.quantum_info import SparsePauliOp

    from aer_mpi.primitives import EstimatorV2

    model = mixed_noise_model()
    qc = random_noisy_circuit(np.random.default_rng(4), 3, 15, resets=False)  # (the estimator refuses resets)
    observable = SparsePauliOp(["ZZI", "XIX", "IYZ"], coeffs=[1.0, 0.5, -0.3])
    estimator = EstimatorV2(backend=AerMPISimulator(noise_model=model))
    value = estimator.run([(qc, observable)]).result()[0].data.evs
    exact = qc.copy()
    exact.save_expectation_value(observable, [0, 1, 2])
    want = qiskit_aer.AerSimulator(noise_model=model, method="density_matrix").run(exact).result().data(0)
    assert abs(float(value) - want["expectation_value"]) < 1e-10


def test_classical_bits_and_a_save_without_measurements_give_no_counts_as_aers_density_matrix():
    model = mixed_noise_model()
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.save_density_matrix()
    ours = AerMPISimulator(noise_model=model).run(qc, shots=50).result()
    aers = qiskit_aer.AerSimulator(noise_model=model).run(qc, shots=50).result()
    assert ours.results[0].metadata["method"] == aers.results[0].metadata["method"] == "density_matrix"
    assert "counts" not in ours.results[0].data.to_dict() and "counts" not in aers.results[0].data.to_dict()
    np.testing.assert_allclose(np.asarray(ours.data(0)["density_matrix"]),
                               np.asarray(aers.data(0)["density_matrix"]), atol=1e-10)


def test_save_state_saves_the_density_matrix_as_aers_method():
    """save_state is the method's state: under the density matrix, the density matrix (Aer's label)."""
    model = mixed_noise_model()
    qc = random_noisy_circuit(np.random.default_rng(31), 3, 12)
    qc.save_state()
    qc.x(0)
    qc.save_state(label="after_x")
    qc.measure_all()
    ours = AerMPISimulator(noise_model=model, method="density_matrix").run(qc, shots=20).result()
    aers = qiskit_aer.AerSimulator(noise_model=model, method="density_matrix").run(qc, shots=20).result()
    assert sorted(ours.data(0)) == sorted(aers.data(0)) == ["after_x", "counts", "density_matrix"]
    for label in ("density_matrix", "after_x"):
        assert type(ours.data(0)[label]).__name__ == "DensityMatrix"
        np.testing.assert_allclose(np.asarray(ours.data(0)[label]), np.asarray(aers.data(0)[label]), atol=1e-10)


def test_a_pauli_lindblad_error_is_exact_against_aers_density_matrix_and_sampled_on_the_tableau():
    """Aer's PauliLindbladError (the layer noise of error-mitigation workflows): each generator on its
    own with probability (1 - exp(-2 rate)) / 2; a negative rate is refused by name."""
    from qiskit.quantum_info import PauliList

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(
        noise.PauliLindbladError(PauliList(["XI", "IY", "ZZ", "XX"]), [0.1, 0.05, 0.2, 0.15]), ["cx"])
    model.add_all_qubit_quantum_error(noise.PauliLindbladError(PauliList(["X", "Y"]), [0.3, 0.0]), ["h"])
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.t(1)
    qc.h(2)
    qc.save_probabilities(label="p")
    qc.measure_all()
    ours = AerMPISimulator(noise_model=model, method="density_matrix").run(qc, shots=100).result()
    aers = qiskit_aer.AerSimulator(noise_model=model, method="density_matrix").run(qc, shots=100).result()
    np.testing.assert_allclose(ours.data(0)["p"], aers.data(0)["p"], atol=1e-12)
    clifford = QuantumCircuit(3)
    clifford.h(0)
    clifford.cx(0, 1)
    clifford.cx(1, 2)
    clifford.measure_all()
    frames = AerMPISimulator(noise_model=model).run(clifford, shots=20000, seed_simulator=3).result()
    assert frames.results[0].metadata["method"] == "stabilizer"
    exact = clifford.remove_final_measurements(inplace=False)
    exact.save_probabilities_dict(label="p")
    want = qiskit_aer.AerSimulator(noise_model=model, method="density_matrix").run(exact).result().data(0)["p"]
    got = frames.get_counts()
    distance = 0.5 * sum(abs(got.get(format(k, "03b"), 0) / 20000 - v) for k, v in want.items())
    assert distance < 0.02

    # one placed in a circuit (qc.append(error, qubits)), as Aer runs it
    placed = QuantumCircuit(2)
    placed.h(0)
    placed.append(noise.PauliLindbladError(PauliList(["XY", "ZI"]), [0.2, 0.1]), [0, 1])
    placed.save_probabilities(label="p")
    ours = AerMPISimulator(method="density_matrix").run(placed).result().data(0)["p"]
    np.testing.assert_allclose(ours, qiskit_aer.AerSimulator(method="density_matrix").run(placed).result().data(0)["p"],
                               atol=1e-12)

    negative = noise.NoiseModel()
    negative.add_all_qubit_quantum_error(noise.PauliLindbladError(PauliList(["X"]), [-0.1]), ["h"])
    with pytest.raises(InvalidInputError, match="negative or non-finite rate"):
        AerMPISimulator(noise_model=negative).run(clifford, shots=10).result()


def test_errors_on_three_qubits_are_exact_as_in_aer(kernels):
    """A 3-qubit error (on ccx) left the density matrix: the circuit ran as trajectories, its saves shot
    averages (-0.46 for -0.4 at 1000 shots), and method='superop' refused it."""
    from qiskit.quantum_info import DensityMatrix, SparsePauliOp, SuperOp

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.2, 3), ["ccx"])
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.1), ["h"])
    qc = QuantumCircuit(3)
    qc.h([0, 1])
    qc.ccx(0, 1, 2)
    qc.save_density_matrix()
    qc.save_expectation_value(SparsePauliOp("ZZZ"), [0, 1, 2])
    qc.measure_all()
    ours = AerMPISimulator(kernels=kernels, noise_model=model).run(qc, shots=200, seed_simulator=3).result()
    aers = qiskit_aer.AerSimulator(noise_model=model, method="density_matrix").run(qc, shots=200).result()
    assert ours.results[0].metadata["method"] == "density_matrix"
    np.testing.assert_allclose(DensityMatrix(ours.data(0)["density_matrix"]).data,
                               DensityMatrix(aers.data(0)["density_matrix"]).data, atol=1e-12)
    assert ours.data(0)["expectation_value"] == pytest.approx(aers.data(0)["expectation_value"], abs=1e-12)
    bare = QuantumCircuit(3)
    bare.ccx(0, 1, 2)
    bare.save_superop()
    mine = AerMPISimulator(method="superop", kernels=kernels, noise_model=model).run(bare).result()
    theirs = qiskit_aer.AerSimulator(method="superop", noise_model=model).run(bare).result()
    np.testing.assert_allclose(SuperOp(mine.data(0)["superop"]).data, SuperOp(theirs.data(0)["superop"]).data,
                               atol=1e-12)


def test_amplitudes_squared_are_the_density_matrixs_diagonal():
    """Probe R: save_amplitudes_squared sent a density_matrix run to statevector trajectories (sampled
    values, the saved state a Statevector); they are rho[a, a] of the basis states asked for."""
    from qiskit.quantum_info import DensityMatrix, Kraus

    damping = Kraus([np.array([[1, 0], [0, np.sqrt(0.7)]]), np.array([[0, np.sqrt(0.3)], [0, 0]])])
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 2)
    qc.ry(0.4, 1)
    qc.append(damping.to_instruction(), [2])
    expected = DensityMatrix(qc)
    states = [0, 5, 4, 1, 7]
    qc.save_amplitudes_squared(states, label="a2")
    result = AerMPISimulator(method="density_matrix").run(qc, shots=1).result()
    assert result.results[0].metadata["method"] == "density_matrix"
    np.testing.assert_allclose(result.data(0)["a2"], [expected.data[a, a].real for a in states], atol=1e-12)
