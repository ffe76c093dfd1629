"""Corners of Aer notebooks that ran differently here (found by running them with only the import
changed): each test names what Aer does and checks aer_mpi against Qiskit's own oracles."""

import dataclasses
import functools
import warnings

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.circuit.classical import expr, types
from qiskit.circuit.library import MCXGate
from qiskit.quantum_info import Kraus, Pauli, Statevector

from aer_mpi import AerMPISimulator, InsufficientMemoryError
from aer_mpi.errors import InvalidInputError
from conftest import MPI_TIMEOUT, RANKS, assert_kernels
from test_set_states import check_set_states


def local():
    return AerMPISimulator(comm=MPI.COMM_SELF)


@pytest.mark.parametrize("condition", [
    expr.less(expr.lift(1.5), expr.lift(1.7)),
    expr.cast(expr.lift(0.5), types.Bool()),
])
def test_a_float_constant_in_a_condition_is_refused_not_cut_to_an_integer(condition):
    """1.5 < 1.7 was evaluated as 1 < 1: the wrong branch, silently. Aer refuses it too."""
    qc = QuantumCircuit(1, 1)
    with qc.if_test(condition):
        qc.x(0)
    qc.measure(0, 0)
    with pytest.raises(InvalidInputError, match="only integer and boolean constants"):
        local().run(qc, shots=5).result()


def check_a_box_runs_its_body_in_place_and_transpiles(comm, kernels):
    qc = QuantumCircuit(5)
    qc.h(0)
    with qc.box():
        qc.cx(0, 4)
        qc.ry(0.3, 3)
        with qc.box():
            qc.cz(4, 2)
    qc.rx(0.7, 2)
    backend = AerMPISimulator(comm=comm, min_local_qubits=2)
    flat = QuantumCircuit(5)
    flat.h(0)
    flat.cx(0, 4)
    flat.ry(0.3, 3)
    flat.cz(4, 2)
    flat.rx(0.7, 2)
    expected = Statevector(flat)
    for circuit in (qc, transpile(qc, backend)):
        assert "box" in circuit.count_ops()
        run = circuit.copy()
        run.save_statevector()
        result = backend.run(run).result()
        assert_kernels(result, kernels)
        if comm.rank == 0:
            assert result.get_statevector().equiv(expected)


def test_transpile_keeps_multi_controlled_gates_and_channels_as_aer_does():
    """An 8-control mcx became ~200 gates; a Kraus channel made transpile fail."""
    backend = local()
    qc = QuantumCircuit(9)
    qc.x(range(8))
    qc.append(MCXGate(8), range(9))
    qc.mcp(0.4, list(range(7)), 8)
    qc.append(Kraus([np.sqrt(0.5) * np.eye(2), np.sqrt(0.5) * np.array([[0, 1], [1, 0]])]), [0])
    qc.measure_all()
    compiled = transpile(qc, backend)
    assert compiled.count_ops()["mcx"] == 1 and compiled.count_ops()["mcphase"] == 1
    assert compiled.count_ops()["kraus"] == 1 and len(compiled) == len(qc)
    counts = backend.run(compiled, shots=400, seed_simulator=3).result().get_counts()
    assert set(counts) == {"111111111", "111111110"}  # qubit 0 flipped by the channel half the time
    assert 150 < counts["111111110"] < 250



def test_a_circuit_appended_as_an_instruction_keeps_its_global_phase():
    """The definition's phase was dropped: grover_operator appended as an Instruction gave -|11>
    for |11>. Qiskit's Statevector is the oracle (Aer refuses the instruction untranspiled)."""
    sub = QuantumCircuit(2, global_phase=np.pi / 2)
    sub.x(0)
    sub.cx(0, 1)
    inner = QuantumCircuit(2, global_phase=0.3)
    inner.append(sub.to_instruction(), [1, 0])  # nested: both phases count
    qc = QuantumCircuit(3)
    qc.h(2)
    qc.append(inner.to_instruction(), [0, 2])
    expected = Statevector(qc)
    qc.save_statevector()
    state = local().run(qc).result().get_statevector()
    assert np.allclose(state.data, expected.data, atol=1e-12)

    t = Parameter("t")
    bound = QuantumCircuit(1, global_phase=t)
    bound.rx(t, 0)
    qc = QuantumCircuit(1)
    qc.append(bound.to_instruction(), [0])
    qc.save_statevector()
    result = local().run([qc], parameter_binds=[{t: [0.3, 1.1]}]).result()
    for index, value in enumerate((0.3, 1.1)):
        reference = QuantumCircuit(1, global_phase=value)
        reference.rx(value, 0)
        assert np.allclose(result.get_statevector(index).data, Statevector(reference).data, atol=1e-12)
    only_phase = QuantumCircuit(1, global_phase=t)
    only_phase.x(0)
    qc = QuantumCircuit(1)
    qc.append(only_phase.to_instruction(), [0])
    with pytest.raises(InvalidInputError, match="unbound"):
        local().run(qc).result()


def test_controlled_gates_with_more_qubits_than_controls_and_base_run_by_their_definition():
    """MCMTGate's extra targets and a v-chain mcx's ancillas gave 'expecting a 16x16 matrix'."""
    from qiskit.circuit.library import MCMTGate, XGate, ZGate

    for gate, width in ((MCMTGate(XGate(), 2, 2), 4), (MCMTGate(ZGate(), 3, 2), 5)):
        qc = QuantumCircuit(width)
        qc.h(range(width))
        qc.append(gate, range(width))
        expected = Statevector(qc)
        qc.save_statevector()
        assert np.allclose(local().run(qc).result().get_statevector().data, expected.data, atol=1e-12)
    qc = QuantumCircuit(7)
    qc.h(range(4))
    with warnings.catch_warnings():  # mode= is deprecated since Qiskit 2.1, still in notebooks
        warnings.simplefilter("ignore", DeprecationWarning)
        qc.mcx([0, 1, 2, 3], 4, ancilla_qubits=[5, 6], mode="v-chain")
    expected = Statevector(qc)
    qc.save_statevector()
    assert np.allclose(local().run(qc).result().get_statevector().data, expected.data, atol=1e-12)


def test_per_shot_expectation_values_are_a_numpy_array():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.save_expectation_value(Pauli("ZZ"), [0, 1], label="zz", pershot=True)
    qc.measure_all()  # mid-circuit: each shot runs alone (with final measurements only, Aer too saves once)
    qc.x(1)
    qc.measure_all()
    values = local().run(qc, shots=6).result().data(0)["zz"]
    assert isinstance(values, np.ndarray) and values.shape == (6,) and np.allclose(values, 0.0)


def test_aers_metadata_keys_are_there():
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.save_statevector()
    qc.save_expectation_value(Pauli("ZZ"), [0, 1], label="zz", pershot=True)
    qc.measure_all()
    metadata = local().run(qc, shots=4).result().results[0].metadata
    assert metadata["result_types"] == {"statevector": "save_statevector", "zz": "save_expval"}
    assert metadata["result_subtypes"] == {"statevector": "single", "zz": "list"}
    assert metadata["num_bind_params"] == 1 and metadata["remapped_qubits"] is False
    assert metadata["runtime_parameter_bind"] is False and metadata["batched_shots_optimization"] is False
    assert metadata["required_memory_mb"] >= 1 and metadata["max_memory_mb"] >= metadata["required_memory_mb"]
    assert metadata["sample_measure_time"] >= 0


def test_a_small_circuit_fits_a_small_max_memory_mb():
    """The 16 MiB exchange buffer was charged to a 2-qubit run: max_memory_mb=16 refused it."""
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.measure_all()
    counts = local().run(qc, shots=8, max_memory_mb=1, seed_simulator=1).result().get_counts()
    assert set(counts) <= {"00", "01"} and sum(counts.values()) == 8


@pytest.mark.parametrize("width", [0, 1, 10, 40])
def test_any_fusion_width_is_accepted_as_in_aer(width):
    qc = QuantumCircuit(4)
    for q in range(4):
        qc.h(q)
        qc.cx(q, (q + 1) % 4)
        qc.rz(0.1 * q, q)
    expected = Statevector(qc)
    qc.save_statevector()
    state = local().run(qc, fusion_max_qubit=width, fusion_threshold=1).result().get_statevector()
    assert state.equiv(expected)


def test_bindings_of_parameters_a_circuit_does_not_have_are_ignored_as_in_aer():
    t, u = Parameter("t"), Parameter("u")
    plain = QuantumCircuit(1)
    plain.x(0)
    plain.measure_all()
    result = local().run(plain, shots=5, parameter_binds=[{t: [1.0, 2.0]}]).result()
    assert len(result.results) == 1 and result.get_counts() == {"1": 5}
    rotated = QuantumCircuit(1)
    rotated.rx(t, 0)
    rotated.measure_all()
    result = local().run(rotated, shots=5, parameter_binds=[{t: [0.0, np.pi], u: [1.0, 1.0]}]).result()
    assert result.get_counts() == [{"0": 5}, {"1": 5}]


def test_a_run_option_of_none_keeps_the_backends_value_as_in_aer():
    """Qiskit's BackendSamplerV2 passes seed_simulator=None on every call: it replaced the backend's
    seed with a random one, so seeded VQE/QAOA runs through it did not repeat."""
    from qiskit.primitives import BackendSamplerV2

    qc = QuantumCircuit(2)
    qc.h([0, 1])
    qc.measure_all()
    backend = AerMPISimulator(comm=MPI.COMM_SELF, seed_simulator=11)
    first, second = (backend.run(qc, shots=64, seed_simulator=None).result() for _ in range(2))
    assert first.results[0].seed_simulator == 11 and first.get_counts() == second.get_counts()
    sampler = BackendSamplerV2(backend=backend)
    runs = [sampler.run([qc], shots=64).result()[0].data.meas.get_counts() for _ in range(2)]
    assert runs[0] == runs[1]


def check_qubits_only_errors_act_on_are_left_out_as_aer_leaves_them(comm, kernels):
    """A scheduled circuit of a large device has a delay on every idle qubit, and a device noise
    model puts relaxation on each: the 127-qubit state was asked for. Those qubits never meet the
    others and are never read, so they are left out, with their errors."""
    from qiskit_aer.noise import NoiseModel, amplitude_damping_error, depolarizing_error

    noise = NoiseModel(basis_gates=["cx", "h", "id"])
    noise.add_all_qubit_quantum_error(amplitude_damping_error(0.2), ["id"])
    noise.add_all_qubit_quantum_error(depolarizing_error(0.2, 2), ["cx"])
    qc = QuantumCircuit(40, 2)
    qc.h(0)
    qc.cx(0, 1)
    for q in range(1, 40):
        qc.id(q)  # on qubit 1 the error counts: it is measured
    qc.measure([0, 1], [0, 1])
    backend = AerMPISimulator(comm=comm, noise_model=noise, min_local_qubits=1)
    result = backend.run(qc, shots=2000, seed_simulator=5).result()
    assert_kernels(result, kernels)
    assert result.results[0].metadata["num_qubits"] == 2
    assert result.results[0].metadata["active_input_qubits"] == [0, 1]
    counts = result.get_counts()
    # qubit 1 decays from |1> a fifth of the time after the cx: '01' (qubit 0 set, 1 not) appears
    assert counts.get("01", 0) > 200


def test_an_error_on_a_used_and_an_idle_qubit_keeps_both():
    from aer_mpi import ir
    from aer_mpi.plan.truncate import truncate

    flip = ir.Gate((1,), np.array([[0, 1], [1, 0]], dtype=complex))
    program = ir.Program(num_qubits=4, num_clbits=1, ops=(
        ir.Noise((0, 1), (0.5, 0.5), ((), (flip,))),  # reaches qubit 1 from the measured qubit 0
        ir.Noise((2,), (0.5, 0.5), ((), (dataclasses.replace(flip, qubits=(2,)),))),  # alone: left out
        ir.Noise((1, 3), (0.5, 0.5), ((), ())),  # reaches 3 through 1
        ir.Measure(0, 0),
    ))
    truncated = truncate(program)
    assert truncated.metadata["active_input_qubits"] == [0, 1, 3]
    assert [type(op).__name__ for op in truncated.ops] == ["Noise", "Noise", "Measure"]


def test_estimator_evaluates_after_final_measurements_as_aer():
    """As Aer's EstimatorV2: the observables see the collapsed states; here exactly (no sampling)."""
    from aer_mpi.primitives import EstimatorV2

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    evs = EstimatorV2().run([(qc, ["XX", "ZZ", "ZI", "YY", {"XX": 1, "ZZ": 2}])]).result()[0].data.evs
    np.testing.assert_allclose(evs, [0.0, 1.0, 0.0, 0.0, 2.0], atol=1e-12)
    # a measurement only on qubit 0: X on qubit 1 keeps its value
    partial = QuantumCircuit(2, 1)
    partial.h(0)
    partial.h(1)
    partial.measure(0, 0)
    evs = EstimatorV2().run([(partial, ["XX", "XI", "IX"])]).result()[0].data.evs
    np.testing.assert_allclose(evs, [0.0, 1.0, 0.0], atol=1e-12)


def test_properties_is_none_as_in_aer():
    assert local().properties() is None


@pytest.mark.parametrize("method", ["density_matrix", "matrix_product_state", "stabilizer"])
def test_aers_state_methods_run_and_warn_only_when_the_meaning_changes(method):
    """A noise notebook's AerSimulator(method='density_matrix') runs: same count distribution. No warning
    where the result means what Aer's does (Aer gives none): only when a circuit under density_matrix
    runs as statevector trajectories (a mid-circuit measurement), where its saves are shot averages."""
    import warnings

    from qiskit_aer.noise import NoiseModel, depolarizing_error

    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.3, 2), ["cx"])
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    backend = AerMPISimulator(comm=MPI.COMM_SELF, method=method, noise_model=noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = backend.run(qc, shots=4000, seed_simulator=2).result().get_counts()
    # depolarizing 0.3 on the Bell pair: each of 01 and 10 has 0.3 * 4 / 16 = 0.075
    assert abs(counts.get("01", 0) / 4000 - 0.075) < 0.02 and abs(counts.get("10", 0) / 4000 - 0.075) < 0.02
    midway = QuantumCircuit(2, 2, name="midway")
    midway.h(0)
    midway.measure(0, 0)
    midway.cx(0, 1)
    midway.measure(1, 1)
    job = backend.run(midway, shots=100)
    if method == "density_matrix":
        with pytest.warns(UserWarning, match="method='density_matrix' ran circuit\\(s\\) 'midway' as the distributed "
                                             "statevector, one trajectory per shot"):
            job.result()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert job.result().results[0].metadata["method"] in ("statevector", "stabilizer")  # warned once
    with pytest.raises(InvalidInputError, match="option method='densitymatrix': expecting 'automatic'"):
        backend.run(qc, method="densitymatrix").result()


@pytest.mark.filterwarnings("ignore:method='.*' runs here")
def test_a_wide_circuit_under_aers_mps_method_gets_a_memory_error_naming_it():
    """Not only "use more ranks": the error says that the method runs as the statevector here and
    where a matrix-product-state simulation of a wide circuit is."""
    qc = QuantumCircuit(60)
    qc.h(range(60))
    qc.t(0)  # not Clifford: no tableau
    qc.reset(1)  # a reset: not for the matrix product state here
    qc.measure_all()
    for method, says in (("matrix_product_state", "runs a circuit this wide here as a matrix product state only"),
                         ("extended_stabilizer", "runs a circuit this wide here as a matrix product state only"),
                         ("tensor_network", "runs here as the statevector")):
        with pytest.raises(InsufficientMemoryError, match=rf"method='{method}' {says}.*"
                                                          rf"qiskit_aer.AerSimulator\(method='{method}'\)"):
            AerMPISimulator(comm=MPI.COMM_SELF, method=method).run(qc, shots=10).result()
    with pytest.raises(InsufficientMemoryError) as plain:
        AerMPISimulator(comm=MPI.COMM_SELF).run(qc, shots=10).result()
    assert "qiskit_aer" not in str(plain.value)


def check_zero_shots_run_the_saves_only_as_in_aer(comm, kernels):
    """Aer runs shots=0: a circuit's saves without counts (none for a dynamic or noisy circuit,
    which have no shot to save in)."""
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 2)
    qc.save_probabilities(label="p")
    qc.measure_all()
    dynamic = QuantumCircuit(2, 2)
    dynamic.h(0)
    dynamic.measure(0, 0)
    with dynamic.if_test((dynamic.clbits[0], 1)):
        dynamic.x(1)
    dynamic.save_statevector()
    backend = AerMPISimulator(comm=comm, min_local_qubits=1)
    result = backend.run([qc, dynamic], shots=0, memory=True).result()
    assert_kernels(result, kernels)
    assert [r.shots for r in result.results] == [0, 0]
    assert set(result.data(0)) == {"p"} and np.allclose(result.data(0)["p"], [0.5, 0, 0, 0, 0, 0.5, 0, 0])
    assert result.data(1) == {}


def check_a_save_without_a_measurement_counts_zeros_under_every_method(comm, kernels):
    """Aer's tutorial saves in a circuit with a classical bit and no measurement: Aer reports every shot
    as '0' under each method; the density matrix and stabilizer methods here reported no counts."""
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.cx(0, 1)
    qc.save_expectation_value(Pauli("ZZ"), [0, 1], label="ev")
    for method in ("statevector", "density_matrix", "stabilizer", "matrix_product_state", "automatic"):
        result = AerMPISimulator(comm=comm, method=method, min_local_qubits=1).run(qc, shots=64, memory=True).result()
        if method in ("statevector", "density_matrix"):
            assert_kernels(result, kernels)
        assert result.get_counts() == {"0": 64}, method
        assert result.get_memory() == ["0"] * 64, method
        assert result.data(0)["ev"] == pytest.approx(1.0), method
    # ... but Aer's density matrix of a noisy circuit reports no counts (tests/engine/test_density.py)


def test_save_matrix_product_state_is_aers():
    """Aer's matrix-product-state tutorial: save_matrix_product_state (it was refused) and save_state under
    method="matrix_product_state" give Aer's Vidal tuple, whose contraction is the circuit's state, with
    the same Schmidt values as Aer's; under the automatic method too, and refused by name elsewhere."""
    qiskit_aer = pytest.importorskip("qiskit_aer")
    from qiskit.circuit.random import random_circuit

    qc = random_circuit(5, 5, max_operands=2, seed=6)
    expected = Statevector(qc)
    qc.save_matrix_product_state(label="m")
    qc.save_state()

    def contract(value, n):
        gammas, lambdas = value
        amplitudes = []
        for index in range(1 << n):
            matrix = gammas[0][index & 1]
            for q in range(1, n):
                matrix = matrix @ np.diag(lambdas[q - 1]) @ gammas[q][(index >> q) & 1]
            amplitudes.append(matrix[0, 0])
        return np.array(amplitudes)

    ours = AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state").run(qc).result()
    data = ours.data(0)
    assert set(data) == {"m", "matrix_product_state"} and ours.results[0].metadata["method"] == "matrix_product_state"
    for value in (data["m"], data["matrix_product_state"]):
        assert abs(np.vdot(expected.data, contract(value, 5))) == pytest.approx(1.0, abs=1e-10)
    aers = qiskit_aer.AerSimulator(method="matrix_product_state").run(transpile(qc, qiskit_aer.AerSimulator(
        method="matrix_product_state"))).result().data(0)["m"]
    for mine, theirs in zip(data["m"][1], aers[1]):
        np.testing.assert_allclose(mine, theirs[: len(mine)], atol=1e-8)
    automatic = AerMPISimulator(comm=MPI.COMM_SELF).run(qc).result()
    assert automatic.results[0].metadata["method"] == "matrix_product_state"
    with pytest.raises(InvalidInputError, match="only method='matrix_product_state'"):
        AerMPISimulator(comm=MPI.COMM_SELF, method="statevector").run(qc).result()
    from aer_mpi.library import SaveMatrixProductState

    part = QuantumCircuit(3)
    part.h(0)
    part.cx(0, 2)  # (an x on 2 alone would be left out by the truncation, and the save cover the rest)
    part.append(SaveMatrixProductState(2), [0, 1])
    with pytest.raises(InvalidInputError, match="saved on every qubit"):
        AerMPISimulator(comm=MPI.COMM_SELF, method="matrix_product_state").run(part).result()


#: (seed, width) of the random Cliffords below; 70 qubits: two words of the packed tableau.
STABILIZER_CASES = ((3, 1), (4, 5), (5, 70))


@functools.lru_cache(maxsize=None)
def _stabilizer_circuit(seed: int, width: int):
    """The circuit of ``random_clifford(width, seed)`` with every stabilizer save, the qubits whose
    probabilities it saves, and the Clifford."""
    from qiskit.quantum_info import random_clifford

    from aer_mpi import library

    expected = random_clifford(width, seed=seed)
    qc = expected.to_circuit()
    library.save_stabilizer(qc, label="stab")
    library.save_clifford(qc)
    library.save_state(qc)
    measured = [q for q in (0, width // 2, width - 1)][: min(width, 3)]
    library.save_probabilities(qc, measured, label="p")  # with a stabilizer save: on the tableau too
    library.save_amplitudes_squared(qc, [0, 1], label="a")
    qc.measure_all()
    return qc, measured, expected


@functools.lru_cache(maxsize=None)
def _stabilizer_probabilities(seed: int, width: int):
    """Qiskit's probabilities of the saved qubits and of the outcomes 0 and 1 (what "p" and "a" save)."""
    from qiskit.quantum_info import StabilizerState

    _, measured, expected = _stabilizer_circuit(seed, width)
    state = StabilizerState(expected)
    outcomes = [format(outcome, f"0{width}b") for outcome in (0, 1)]
    return state.probabilities(measured), [state.probabilities_dict_from_bitstring(bits).get(bits, 0.0) for bits in outcomes]


def _run_stabilizer_circuit(comm, method: str, kernels, seed: int, width: int):
    qc, _, _ = _stabilizer_circuit(seed, width)
    with warnings.catch_warnings():  # method='stabilizer' warns that non-Clifford circuits run as the statevector
        warnings.simplefilter("ignore", UserWarning)
        return AerMPISimulator(comm=comm, method=method, kernels=kernels).run(qc, shots=50, seed_simulator=seed).result()


def _assert_stabilizer_saves(result, seed: int, width: int, probabilities: bool = True) -> None:
    """The saves against Qiskit's Clifford and ``StabilizerState`` (its probabilities when
    ``probabilities``: at 70 qubits Qiskit takes seconds for each)."""
    from qiskit.quantum_info import Clifford, StabilizerState

    _, measured, expected = _stabilizer_circuit(seed, width)
    data = result.data(0)
    assert set(data) == {"counts", "stab", "clifford", "stabilizer", "p", "a"}
    if probabilities:
        expected_p, expected_a = _stabilizer_probabilities(seed, width)
        np.testing.assert_allclose(data["p"], expected_p, atol=1e-12)
        np.testing.assert_allclose(data["a"], expected_a, atol=1e-12)
    assert isinstance(data["clifford"], Clifford) and data["clifford"] == expected
    assert isinstance(data["stab"], StabilizerState) and data["stab"] == StabilizerState(expected)
    assert data["stabilizer"] == StabilizerState(expected)  # save_state: the method's state
    assert result.results[0].metadata["method"] == "stabilizer"
    assert sum(result.get_counts(0).values()) == 50


def check_the_stabilizer_saves_are_aers(comm, kernels):
    """save_stabilizer, save_clifford and save_state on a Clifford circuit, under method="stabilizer"
    and "automatic" (Aer's automatic method takes the stabilizer method for a Clifford circuit):
    Qiskit's Clifford of the circuit, at any rank count (every rank runs the tableau). The 70-qubit
    probabilities are one rank's, which the test below checks against Qiskit's once."""
    for seed, width in STABILIZER_CASES:
        for method in ("stabilizer", "automatic"):
            result = _run_stabilizer_circuit(comm, method, kernels, seed, width)
            if comm.rank == 0:
                _assert_stabilizer_saves(result, seed, width, probabilities=width <= 5)
                if width > 5:
                    alone = _run_stabilizer_circuit(MPI.COMM_SELF, method, kernels, seed, width).data(0)
                    assert np.array_equal(result.data(0)["p"], alone["p"])
                    assert np.array_equal(result.data(0)["a"], alone["a"])


def test_the_70_qubit_stabilizer_probabilities_are_qiskits():
    seed, width = STABILIZER_CASES[-1]
    _assert_stabilizer_saves(_run_stabilizer_circuit(MPI.COMM_SELF, "stabilizer", None, seed, width), seed, width)


def test_the_stabilizer_saves_match_aers_and_are_refused_where_aer_refuses_them():
    qiskit_aer = pytest.importorskip("qiskit_aer")
    from qiskit.quantum_info import random_clifford

    from aer_mpi import library

    qc = random_clifford(4, seed=11).to_circuit()
    library.save_stabilizer(qc)
    library.save_clifford(qc, pershot=True)
    qc.measure_all()
    ours = local().run(qc, shots=3, seed_simulator=1).result().data(0)
    aers = qiskit_aer.AerSimulator().run(qc, shots=3, seed_simulator=1).result().data(0)
    # pershot before the measurements: one value, the state every shot shares (Aer's too)
    assert ours["stabilizer"] == aers["stabilizer"] and len(ours["clifford"]) == len(aers["clifford"]) == 1
    assert ours["clifford"][0] == aers["clifford"][0]

    plain = QuantumCircuit(2)
    plain.h(0)
    plain.cx(0, 1)
    plain.save_state()
    assert list(local().run(plain).result().data(0)) == ["stabilizer"]  # as Aer's automatic method
    vector = local().run(plain, method="statevector").result().data(0)["statevector"]
    assert vector.equiv(Statevector(_bell()))

    t_gate = QuantumCircuit(2)
    t_gate.h(0)
    t_gate.t(0)
    library.save_stabilizer(t_gate)
    with pytest.raises(InvalidInputError, match="save_stabilizer needs a Clifford circuit"):
        local().run(t_gate).result()
    late = QuantumCircuit(1, 1)
    late.h(0)
    late.measure(0, 0)
    library.save_clifford(late)
    with pytest.raises(InvalidInputError, match="save_clifford in a circuit with noise, resets, mid-circuit "
                                                "measurements or control flow: each shot ends in its own"):
        local().run(late).result()
    # a Clifford circuit under Pauli noise: the reason named is the noise, not "needs a Clifford circuit"
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    noisy = NoiseModel()
    noisy.add_all_qubit_quantum_error(depolarizing_error(0.05, 2), ["cx"])
    bell = _bell()
    library.save_stabilizer(bell)
    with pytest.raises(InvalidInputError, match="save_stabilizer in a circuit with noise"):
        local().run(bell, method="stabilizer", noise_model=noisy).result()
    for method in ("statevector", "density_matrix", "unitary"):
        bell = _bell()
        library.save_stabilizer(bell)
        with pytest.raises(InvalidInputError, match="save 'stabilizer' .stabilizer. is not|save_stabilizer saves"), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # density_matrix's "runs as the statevector"
            local().run(bell, method=method).result()


def _bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    return qc


def test_a_dynamic_circuit_with_a_clbit_above_63_set_runs():
    """Aer's test_conditional on 64- and 132-bit registers: the final measurements of a dynamic
    circuit were recorded as int64, and a clbit at 63 or above that held 1 overflowed."""
    from qiskit import ClassicalRegister

    qc = QuantumCircuit(1, 70)
    qc.x(0)
    qc.measure(0, 65)  # mid-circuit: the qubit is used again
    qc.h(0)
    qc.measure(0, 0)
    counts = local().run(qc, shots=200, seed_simulator=1).result().get_counts()
    assert set(counts) == {"0" * 4 + "1" + "0" * 64 + bit for bit in "01"}
    wide = ClassicalRegister(64)
    qc = QuantumCircuit(1)
    qc.add_register(wide)
    qc.x(0)
    qc.measure(0, wide[63])
    with qc.if_test((wide, 1 << 63)):
        qc.x(0)
    qc.measure(0, wide[0])
    assert local().run(qc, shots=20).result().get_counts() == {"1" + "0" * 63: 20}


def test_initialize_sets_or_reflects_instead_of_building_the_definitions_matrix():
    """Aer's initialize: of every qubit, the state is set (no reset, so the shots are sampled); of
    some, a reflection taking |0> to the vector (a 10-qubit one took 20-70 s through Operator of its
    multiplexers). Checked against Qiskit's Statevector and DensityMatrix."""
    from qiskit.quantum_info import DensityMatrix, random_statevector

    from aer_mpi.qobj.assemble import assemble_circuits

    v3 = random_statevector(8, seed=1).data
    qc = QuantumCircuit(4)
    qc.h(0)
    qc.cx(0, 1)
    qc.initialize(v3, [3, 0, 1])  # qubits 0 and 1 touched: reset first
    qc.ry(0.3, 2)
    qc.initialize(random_statevector(16, seed=2).data, [2, 0, 3, 1])  # every qubit: set
    qc.rx(0.4, 2)
    qc.initialize(v3[::-1] / np.linalg.norm(v3), [1, 3, 2])
    names = [i["name"] for i in assemble_circuits([qc], {}).experiments[0].instructions]
    assert names == ["h", "cx", "reset", "reset", "state_preparation", "ry", "set_statevector", "rx",
                     "reset", "reset", "reset", "state_preparation"]
    saved = qc.copy()
    saved.save_density_matrix()
    for method in ("statevector", "density_matrix"):
        got = local().run(saved, method=method, shots=2000 if method == "statevector" else 1).result()
        np.testing.assert_allclose(np.asarray(got.data()["density_matrix"]), DensityMatrix(qc).data, atol=1e-10 if
                                   method == "density_matrix" else 0.1)
    fresh = QuantumCircuit(11)
    fresh.h(0)
    fresh.initialize(random_statevector(1 << 10, seed=3).data, range(1, 11))  # fresh: no reset
    fresh.initialize(random_statevector(1 << 11, seed=4).data, range(11))
    fresh.cx(3, 7)
    fresh.measure_all()
    result = local().run(fresh, shots=100).result()
    assert result.results[0].metadata["measure_sampling"] is True
    probabilities = Statevector(fresh.remove_final_measurements(inplace=False)).probabilities_dict()
    assert all(probabilities.get(key, 0) > 0 for key in result.get_counts())


def test_an_initialize_of_every_qubit_keeps_the_global_phase():
    """Probe R: the phase went first and the set state discarded it; Qiskit's Statevector and Aer keep
    it, a bound phase and one bound per parameter_binds alike."""
    from qiskit.circuit import Parameter

    phi = Parameter("phi")
    for phase, binds in ((0.7, None), (phi, [{phi: [0.7, 2.1]}])):
        qc = QuantumCircuit(2)
        qc.global_phase = phase
        qc.rx(0.3, 1)
        qc.initialize([0, 1j, 0, 0], [0, 1])
        qc.h(0)
        saved = qc.copy()
        saved.save_statevector()
        result = local().run(saved, shots=1, parameter_binds=binds).result()
        for k, value in enumerate([0.7] if binds is None else [0.7, 2.1]):
            # e^{i phase} H_0 |set state>, written out: Statevector(qc) resets q1 by sampling a measurement
            # of it, so its phase was -i or i times this one in about 2% of evaluations (a flaky oracle)
            after = QuantumCircuit(2)
            after.h(0)
            expected = np.exp(1j * value) * Statevector([0, 1j, 0, 0]).evolve(after).data
            np.testing.assert_allclose(np.asarray(result.data(k)["statevector"]), expected, atol=1e-12)


def test_wide_library_gates_run_their_definitions_not_a_dense_matrix():
    """QFTGate(10), a permutation, a Grover operator, a Pauli evolution: run raw (Aer asks for
    transpile) they were Operator of their definitions, 3-70 s and 2**n products per amplitude."""
    from qiskit.circuit.library import PauliEvolutionGate, PermutationGate, QFTGate, grover_operator
    from qiskit.quantum_info import SparsePauliOp

    from aer_mpi.qobj.assemble import assemble_circuits

    n = 8
    oracle = QuantumCircuit(n)
    oracle.cz(0, n - 1)
    qc = QuantumCircuit(n)
    qc.h(range(n))
    qc.append(QFTGate(n), range(n))
    qc.append(PermutationGate([3, 0, 7, 1, 6, 2, 5, 4]), range(n))
    qc.append(grover_operator(oracle), range(n))
    instructions = assemble_circuits([qc], {}).experiments[0].instructions
    assert max(len(i["qubits"]) for i in instructions if "controls" not in i) <= 5  # (Grover's mcx: its base)
    # a Pauli evolution is its exact exponential (its definition, a Trotter step, approximates it)
    qc.append(PauliEvolutionGate(SparsePauliOp(["XXIIIIIY", "ZIZIIIII"], [0.3, -0.2]), time=0.7), range(n))
    saved = qc.copy()
    saved.save_statevector()
    got = local().run(saved).result().get_statevector()
    np.testing.assert_allclose(np.asarray(got), Statevector(qc).data, atol=1e-10)


def test_a_qasm3_round_trip_of_a_unitary_runs():
    """Qiskit exports a UnitaryGate as ``gate unitary``; read back it is a plain Gate named
    'unitary' (with a definition): it crashed assembly, which took every 'unitary' for a UnitaryGate."""
    from qiskit import qasm3
    from qiskit.circuit.library import UnitaryGate
    from qiskit.quantum_info import random_unitary

    qc = QuantumCircuit(3)
    qc.h(0)
    qc.append(UnitaryGate(random_unitary(4, seed=7)), [0, 2])
    qc.append(UnitaryGate(random_unitary(2, seed=8)), [1])
    back = qasm3.loads(qasm3.dumps(qc))
    assert any(type(i.operation).__name__ == "Gate" and i.operation.name == "unitary" for i in back.data)
    back.save_statevector()
    state = local().run(back).result().get_statevector()
    assert state.equiv(Statevector(qc))


@pytest.mark.mpi(ranks=[3, 5], timeout=MPI_TIMEOUT)
def test_the_idle_rank_note_gives_the_reason(comm):
    """It said 'a power of two' where the local-qubit minimum left ranks idle."""
    small, wide = QuantumCircuit(3), QuantumCircuit(8)
    for qc in (small, wide):
        qc.h(0)
        qc.measure_all()
    backend = AerMPISimulator(comm=comm, min_local_qubits=3, parallel_experiments=False)
    notes = [r.metadata["note"] for r in backend.run([small, wide], shots=4).result().results]
    working = 1 << (comm.size.bit_length() - 1)
    assert notes[0] == f"{comm.size} ranks: 1 work (3 qubits keep at least 3 local), {comm.size - 1} idle"
    assert notes[1] == f"{comm.size} ranks: {working} work (a power of two), {comm.size - working} idle"


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_the_multi_rank_corners(comm, kernels):
    """The multi-rank checks above in one job per rank count and kernels: a job's start-up (every
    rank imports Qiskit and pytest) cost more than each of them."""
    check_a_box_runs_its_body_in_place_and_transpiles(comm, kernels)
    check_the_stabilizer_saves_are_aers(comm, kernels)
    check_set_states(comm, kernels)
    check_qubits_only_errors_act_on_are_left_out_as_aer_leaves_them(comm, kernels)
    check_zero_shots_run_the_saves_only_as_in_aer(comm, kernels)
    check_a_save_without_a_measurement_counts_zeros_under_every_method(comm, kernels)
