"""method="unitary" and "superop" (engine/operators.py): the circuit's unitary and superoperator
from a state of 2n and 4n qubits on the same engine, exact against qiskit.quantum_info's Operator
and SuperOp and Qiskit Aer's methods, the same at every rank count, and what the methods refuse
refused with an error that names what to use."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import DiagonalGate, MCXGate, UnitaryGate
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator, SuperOp, random_unitary

from aer_mpi import AerMPISimulator, InsufficientMemoryError, InvalidInputError
from conftest import assert_kernels


def gate_circuit(n: int, seed: int) -> QuantumCircuit:
    """Random standard gates, a dense 2-qubit unitary, a diagonal, a swap, a multi-controlled X and
    a global phase: every kind of gate op the engine has."""
    qc = random_circuit(n, 5, max_operands=min(3, n), seed=seed)
    qc.global_phase = 0.3 + seed
    if n >= 2:
        qc.append(UnitaryGate(random_unitary(4, seed=seed)), [n - 1, 0])
        qc.swap(0, n - 1)
        qc.append(DiagonalGate(list(np.exp(1j * np.arange(4) * 0.7))), [1, 0])
    if n >= 3:
        qc.append(MCXGate(2), [2, 0, 1])
    qc.rz(0.4, 0)
    return qc


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_the_unitary_is_qiskits_operator(kernels, n):
    qc = gate_circuit(n, n)
    expected = Operator(qc).data
    qc.save_unitary()
    result = AerMPISimulator(method="unitary").run(qc, shots=10).result()
    assert_kernels(result, kernels)
    unitary = result.get_unitary(qc)
    assert isinstance(unitary, Operator) and unitary.dim == (1 << n, 1 << n)
    np.testing.assert_allclose(unitary.data, expected, atol=1e-12)
    meta = result.results[0].metadata
    assert meta["method"] == "unitary" and meta["num_qubits"] == n and meta["operator_qubits"] == 2 * n
    assert "counts" not in result.data(0)  # no classical bits: no counts

    single = AerMPISimulator(method="unitary", precision="single").run(qc).result().get_unitary(qc)
    np.testing.assert_allclose(single.data, expected, atol=2e-6)


def reset_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(2, global_phase=0.4)
    qc.h(0)
    qc.cx(0, 1)
    qc.reset(0)
    qc.ry(0.7, 0)
    qc.cx(1, 0)
    qc.t(1)
    return qc


def test_the_superop_is_qiskits_and_aers_noise_included(kernels):
    noise = pytest.importorskip("qiskit_aer.noise")
    qiskit_aer = pytest.importorskip("qiskit_aer")
    qc = reset_circuit()
    expected = SuperOp(qc).data
    qc.save_superop()
    result = AerMPISimulator(method="superop").run(qc).result()
    assert_kernels(result, kernels)
    assert isinstance(result.data(0)["superop"], SuperOp)
    np.testing.assert_allclose(result.data(0)["superop"].data, expected, atol=1e-12)
    assert result.results[0].metadata["operator_qubits"] == 8

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.2), ["h", "ry"])
    model.add_all_qubit_quantum_error(noise.thermal_relaxation_error(50, 30, 5), ["t"])
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.1, 2), ["cx"])
    model.add_all_qubit_quantum_error(noise.reset_error(0.1, 0.05), ["reset"])
    noisy = reset_circuit()
    noisy.save_superop(label="middle")
    noisy.x(1)
    noisy.save_state()
    ours = AerMPISimulator(method="superop", noise_model=model).run(noisy).result().data(0)
    aers = qiskit_aer.AerSimulator(method="superop", noise_model=model).run(noisy).result().data(0)
    assert sorted(ours) == sorted(aers) == ["middle", "superop"]
    for label in aers:
        np.testing.assert_allclose(ours[label].data, np.asarray(aers[label].data), atol=1e-12)


def check_every_rank_count_gives_the_operators(comm, kernels):
    """The 2n-qubit vector sharded over the ranks (min_local_qubits=2: rank qubits at 3 qubits too),
    gathered on rank 0; the shards' own unitary qubits are exchanged like any others. Run at 1, 2
    and 4 ranks with both kernels by tests/engine/test_density.py's job (one job per rank count
    and kernels for both matrix methods: a job's start-up costs more than these checks)."""
    circuits = [gate_circuit(n, 10 + n) for n in (3, 5)]
    expected = [Operator(qc).data for qc in circuits]
    for qc in circuits:
        qc.save_unitary()
    result = AerMPISimulator(comm=comm, method="unitary", min_local_qubits=2,
                             parallel_experiments=False).run(circuits).result()
    assert_kernels(result, kernels)
    for i, qc in enumerate(circuits):
        assert result.results[i].metadata["working_ranks"] == comm.Get_size()
        if comm.Get_rank() == 0:
            np.testing.assert_allclose(result.get_unitary(i).data, expected[i], atol=1e-12)
    # the superoperator of a circuit with a reset: 8 qubits over the ranks
    channel = reset_circuit()
    expected_channel = SuperOp(channel).data
    channel.save_superop()
    result = AerMPISimulator(comm=comm, method="superop", min_local_qubits=2).run(channel).result()
    assert_kernels(result, kernels)
    assert result.results[0].metadata["working_ranks"] == comm.Get_size()
    if comm.Get_rank() == 0:
        np.testing.assert_allclose(result.data(0)["superop"].data, expected_channel, atol=1e-12)


def test_saves_labels_bindings_and_counts_as_aers_unitary_method():
    aer = pytest.importorskip("qiskit_aer")
    theta = Parameter("t")
    qc = QuantumCircuit(3, 2)
    qc.h(0)
    qc.save_unitary(label="after_h")
    qc.rx(theta, 1)
    qc.cx(0, 2)
    qc.save_state()  # the method's state: the unitary, under "unitary"
    qc.t(2)
    qc.append(aer.library.SaveUnitary(3, label="per_shot", pershot=True), qc.qubits)
    with qc.if_test((qc.clbits[0], 0)):  # nothing is measured: the bits read 0, so this runs
        qc.x(1)
    with qc.if_test((qc.clbits[1], 1)):
        qc.y(1)
    qc.save_unitary(label="last")
    binds = [{theta: [0.25, 1.5]}]
    ours = AerMPISimulator(method="unitary").run([qc], parameter_binds=binds, shots=7).result()
    theirs = aer.AerSimulator(method="unitary").run([qc], parameter_binds=binds, shots=7).result()
    assert len(ours.results) == len(theirs.results) == 2
    for i in range(2):
        a, b = ours.data(i), theirs.data(i)
        assert sorted(a) == sorted(b) == ["after_h", "counts", "last", "per_shot", "unitary"]
        for label in ("after_h", "unitary", "last"):
            assert isinstance(a[label], Operator)
            np.testing.assert_allclose(a[label].data, np.asarray(b[label]), atol=1e-12)
        assert len(a["per_shot"]) == len(b["per_shot"]) == 1
        np.testing.assert_allclose(a["per_shot"][0].data, np.asarray(b["per_shot"][0]), atol=1e-12)
        assert ours.get_counts(i) == theirs.get_counts(i) == {"00": 7}
    # idle qubits stay in the unitary, as Aer's (no truncation)
    idle = QuantumCircuit(3)
    idle.h(0)
    idle.save_unitary()
    assert AerMPISimulator(method="unitary").run(idle).result().get_unitary().dim == (8, 8)


def test_noise_draws_one_unitary_branch_for_the_run():
    noise = pytest.importorskip("qiskit_aer.noise")
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.pauli_error([("X", 0.5), ("I", 0.5)]), ["h"])
    qc = QuantumCircuit(1)
    qc.h(0)
    qc.save_unitary()
    hadamard = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
    branches = {"I": hadamard, "X": np.array([[0, 1], [1, 0]]) @ hadamard}
    backend = AerMPISimulator(method="unitary", noise_model=model)
    drawn = set()
    for seed in range(12):
        result = backend.run(qc, seed_simulator=seed).result()
        unitary = result.get_unitary().data
        match = [name for name, u in branches.items() if np.allclose(unitary, u, atol=1e-12)]
        assert len(match) == 1
        drawn.add(match[0])
        assert result.results[0].metadata["noise_stats"] == {"errors_drawn": 1}
        again = backend.run(qc, seed_simulator=seed).result().get_unitary().data
        np.testing.assert_array_equal(again, unitary)  # the seed decides the branch
    assert drawn == {"I", "X"}


def _refused(qc: QuantumCircuit, **options) -> str:
    with pytest.raises(InvalidInputError) as info:
        AerMPISimulator(**options).run(qc).result()
    return str(info.value)


@pytest.mark.filterwarnings("ignore:method='density_matrix' runs here")
def test_what_the_unitary_method_refuses_names_what_to_use(tmp_path):
    noise = pytest.importorskip("qiskit_aer.noise")
    measured = QuantumCircuit(1, 1)
    measured.h(0)
    measured.measure(0, 0)
    assert "measurement" in _refused(measured, method="unitary") and "method='statevector'" in _refused(
        measured, method="unitary")
    reset = QuantumCircuit(1)
    reset.reset(0)
    assert "reset" in _refused(reset, method="unitary")
    initialized = QuantumCircuit(1)
    initialized.h(0)
    initialized.initialize([0, 1], 0)  # resets a used qubit (on a fresh one it is a state preparation gate)
    assert "not unitary" in _refused(initialized, method="unitary")
    state = QuantumCircuit(1)
    state.save_statevector()
    assert "save_unitary" in _refused(state, method="unitary")
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.1), ["h"])
    damped = QuantumCircuit(1)
    damped.h(0)
    damped.save_unitary()
    assert "'density_matrix'" in _refused(damped, method="unitary", noise_model=model)
    forever = QuantumCircuit(1, 1)
    with forever.while_loop((forever.clbits[0], 0)):
        forever.x(0)
    assert "never ends" in _refused(forever, method="unitary")
    assert "measurement" in _refused(measured, method="superop")
    wide_error = noise.NoiseModel()
    wide_error.add_all_qubit_quantum_error(noise.depolarizing_error(0.1, 5), ["mcx"])
    ccx = QuantumCircuit(5)
    ccx.mcx([0, 1, 2, 3], 4)
    ccx.save_superop()
    assert "at most 4 qubits" in _refused(ccx, method="superop", noise_model=wide_error)
    superop = QuantumCircuit(1)
    superop.save_superop()
    # save_unitary under a state method, or under the other operator method
    saved = QuantumCircuit(1)
    saved.save_unitary()
    assert "method='superop'" in _refused(superop, method="statevector")
    assert "save_superop" in _refused(saved, method="superop")
    assert "method='unitary'" in _refused(saved, method="statevector")
    assert "method='unitary'" in _refused(saved, method="density_matrix")
    # (the automatic method takes the method of the operator saved, as Aer's: test_set_states.py)
    # too wide: the memory error says why a unitary needs twice the qubits
    wide = QuantumCircuit(12)
    wide.h(0)
    wide.save_unitary()
    with pytest.raises(InsufficientMemoryError, match=r"method='unitary': the unitary of 12 qubits is held as the "
                                                      r"state of 24 qubits"):
        AerMPISimulator(method="unitary", max_memory_mb=16).run(wide).result()
    # a final statevector file has nothing to hold
    target = tmp_path / "out"
    assert "statevector_dir" in _refused(saved, method="unitary", statevector_dir=str(target))
    assert not target.exists()


def test_a_stopped_unitary_run_resumes_from_its_checkpoint_with_the_same_unitary(tmp_path):
    """The 2n-qubit state is checkpointed like any other; the noise branch drawn is the seed's."""
    noise = pytest.importorskip("qiskit_aer.noise")
    from tests.provider.test_checkpoint_api import stopped_run

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.pauli_error([("X", 0.3), ("Z", 0.3), ("I", 0.4)]), ["h"])
    qc = random_circuit(10, 200, max_operands=2, seed=5)
    qc.h(range(10))
    qc.save_unitary()
    backend = AerMPISimulator(method="unitary", noise_model=model, kernels="numba", fusion_enable=False)
    reference = backend.run(qc, seed_simulator=3).result().get_unitary().data
    stopped_run(backend, qc, tmp_path / "ck", seed_simulator=3)
    resumed = backend.run(qc, seed_simulator=3, checkpoint_dir=str(tmp_path / "ck")).result()
    assert resumed.results[0].metadata["checkpoint"]["resumed_from"]["experiment"] == 0
    np.testing.assert_array_equal(resumed.get_unitary().data, reference)
