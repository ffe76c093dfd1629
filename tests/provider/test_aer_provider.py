"""aer_mpi.Aer: Qiskit Aer's provider object, name for name (one process)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator, Statevector

import aer_mpi
from aer_mpi import Aer, AerMPISimulator, InvalidInputError
from aer_mpi.provider.aer_provider import BACKEND_OPTIONS


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.rz(0.3, 1)
    return qc


def test_every_name_of_aers_provider_is_served_or_refused_by_name():
    qiskit_aer = pytest.importorskip("qiskit_aer")
    names = {b.name for b in qiskit_aer.Aer.backends()}
    assert set(BACKEND_OPTIONS) <= names
    for name in names - set(BACKEND_OPTIONS):
        with pytest.raises(InvalidInputError, match=f"qiskit_aer.Aer.get_backend\\('{name}'\\)"):
            Aer.get_backend(name)
    with pytest.raises(InvalidInputError, match="'aer_simulator'"):
        Aer.get_backend("aer_simlator")  # a typo gets the list of names
    assert [b.name for b in Aer.backends()] == list(BACKEND_OPTIONS)
    assert Aer.get_backend("aer_simulator_density_matrix").options.method == "density_matrix"
    assert aer_mpi.AerSimulator is AerMPISimulator and isinstance(aer_mpi.AerProvider(), type(Aer))


def test_the_legacy_backends_save_the_final_state_as_aers():
    qc = bell()
    result = Aer.get_backend("statevector_simulator").run(qc).result()
    assert result.results[0].shots == 1  # Aer's legacy default
    np.testing.assert_allclose(result.get_statevector(qc).data, Statevector(qc).data, atol=1e-12)
    unitary = Aer.get_backend("unitary_simulator").run(qc).result().get_unitary(qc)
    np.testing.assert_allclose(unitary.data, Operator(qc).data, atol=1e-12)
    assert "save_statevector" not in qc.count_ops()  # the caller's circuit is left as it was

    # a circuit that saves its own statevector keeps it (one save under the label), options pass through
    own = bell()
    own.save_statevector()
    own.measure_all()
    backend = Aer.get_backend("statevector_simulator", seed_simulator=3)
    result = backend.run([own, bell()], shots=20).result()
    assert sum(result.get_counts(0).values()) == 20 and result.results[0].shots == 20
    np.testing.assert_allclose(result.get_statevector(0).data, Statevector(bell()).data, atol=1e-12)  # its own
    np.testing.assert_allclose(result.get_statevector(1).data, Statevector(bell()).data, atol=1e-12)

    counted = bell()
    counted.measure_all()
    counts = Aer.get_backend("qasm_simulator").run(counted, shots=200, seed_simulator=1).result().get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 200


def test_aers_top_level_names_and_noise_module_import_from_aer_mpi():
    """A notebook whose ``qiskit_aer`` was replaced by ``aer_mpi`` imports these (ModuleNotFoundError
    and ImportError before)."""
    qiskit_aer = pytest.importorskip("qiskit_aer")
    from aer_mpi import AerError, QasmSimulator, StatevectorSimulator, UnitarySimulator
    from aer_mpi.noise import NoiseModel, ReadoutError, depolarizing_error, thermal_relaxation_error

    assert NoiseModel is qiskit_aer.noise.NoiseModel and depolarizing_error is qiskit_aer.noise.depolarizing_error
    assert ReadoutError is qiskit_aer.noise.ReadoutError and callable(thermal_relaxation_error)
    import aer_mpi.noise

    assert set(aer_mpi.noise.__all__) >= {"NoiseModel", "PauliLindbladError", "pauli_error", "kraus_error"}
    with pytest.raises(AerError):  # ``except AerError:`` catches aer_mpi's errors
        AerMPISimulator(method="statevectr")

    # the legacy classes built directly behave as through Aer.get_backend: Aer's defaults and names
    qc = bell()
    for cls, aer_cls in ((StatevectorSimulator, qiskit_aer.StatevectorSimulator),
                         (UnitarySimulator, qiskit_aer.UnitarySimulator)):
        backend = cls()
        assert backend.name == aer_cls().name and backend.options.shots == aer_cls().options.shots == 1
    result = StatevectorSimulator().run(qc).result()
    np.testing.assert_allclose(result.get_statevector(qc).data, Statevector(qc).data, atol=1e-12)
    unitary = UnitarySimulator(seed_simulator=2).run(qc).result().get_unitary(qc)
    np.testing.assert_allclose(unitary.data, Operator(qc).data, atol=1e-12)
    assert QasmSimulator is AerMPISimulator

    # Aer's configuration().to_dict() and clear_options()
    backend = AerMPISimulator(shots=5, seed_simulator=3)
    aer_keys = set(qiskit_aer.AerSimulator().configuration().to_dict()) - {"url"}
    assert aer_keys <= set(backend.configuration().to_dict())
    backend.clear_options()
    assert backend.options.shots == 1024 and backend.options.seed_simulator is None
    legacy = StatevectorSimulator(shots=7)
    legacy.clear_options()
    assert legacy.options.shots == 1 and legacy.options.method == "statevector"

    # a noise model built from aer_mpi.noise runs as one from qiskit_aer.noise
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.2, 1), ["h"])
    noisy = QuantumCircuit(1)
    noisy.h(0)
    noisy.h(0)
    noisy.measure_all()
    counts = AerMPISimulator(noise_model=model, seed_simulator=5).run(noisy, shots=4000).result().get_counts()
    # two depolarizing channels of 0.2 on the way: P(1) = (1 - 0.8**2) / 2 = 0.18
    assert abs(counts.get("1", 0) / 4000 - 0.18) < 0.03


def test_aers_configuration_keywords_shape_the_target():
    """AerSimulator(coupling_map=..., n_qubits=...) as Aer takes them: on the configuration, and transpile
    routes onto the map (Aer's own target keeps its 3-qubit gates there and transpile refuses)."""
    from qiskit import transpile
    from qiskit.transpiler import CouplingMap

    backend = AerMPISimulator(coupling_map=[[0, 1], [1, 2]], max_shots=10, description="line")
    assert backend.configuration().coupling_map == [[0, 1], [1, 2]]
    assert backend.configuration().max_shots == 10 and backend.configuration().description == "line"
    assert backend.num_qubits == 3 and set(backend.coupling_map.get_edges()) >= {(0, 1), (1, 2)}
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 2)
    qc.ccx(0, 1, 2)
    qc.save_statevector()
    routed = transpile(qc, backend, seed_transpiler=1)
    assert "ccx" not in routed.count_ops() and "save_statevector" in routed.count_ops()
    for gate in routed.data:
        if gate.operation.num_qubits == 2:
            pair = {routed.find_bit(q).index for q in gate.qubits}
            assert pair in ({0, 1}, {1, 2})
    state = backend.run(routed).result().get_statevector()
    unsaved = routed.copy_empty_like()
    for gate in routed.data:
        if gate.operation.name != "save_statevector":
            unsaved.append(gate)
    np.testing.assert_allclose(state.data, Statevector(unsaved).data, atol=1e-12)

    line = AerMPISimulator(coupling_map=CouplingMap.from_line(4), basis_gates=["cx", "rz", "sx", "x"])
    assert set(transpile(qc, line, seed_transpiler=1).count_ops()) <= {"cx", "rz", "sx", "x", "save_statevector"}
    assert AerMPISimulator(n_qubits=5).num_qubits == 5 == AerMPISimulator(n_qubits=5).configuration().n_qubits
    backend.set_options(coupling_map=None)  # None removes it, as Aer's set_option
    assert backend.configuration().coupling_map is None and backend.coupling_map is None
    with pytest.raises(InvalidInputError, match="two different"):
        AerMPISimulator(coupling_map=[[0, 0]])
    with pytest.raises(InvalidInputError, match="list of qubit pairs"):
        AerMPISimulator(coupling_map=[0, 1])


def test_transpile_with_a_coupling_map_for_a_noisy_backend_and_aers_custom_instructions():
    """transpile(qc, AerSimulator(noise_model=nm), coupling_map=...) builds a target from the backend's
    names: a 0-qubit operation there (global_phase, saves as 0-qubit instances) made Qiskit refuse it."""
    from qiskit import transpile
    from qiskit.providers.fake_provider import GenericBackendV2

    from aer_mpi.noise import NoiseModel

    pytest.importorskip("qiskit_aer")
    model = NoiseModel.from_backend(GenericBackendV2(5, seed=1))
    qc = QuantumCircuit(4, 2)
    qc.h(0)
    qc.cx(0, 3)
    qc.measure([0, 3], [0, 1])
    ring = [[i, (i + 1) % 6] for i in range(6)]
    routed = transpile(qc, AerMPISimulator(noise_model=model), coupling_map=ring, seed_transpiler=1)
    assert set(routed.count_ops()) <= set(model.basis_gates) | {"measure", "swap"}
    counts = AerMPISimulator(noise_model=model, seed_simulator=2).run(routed, shots=200).result().get_counts()
    assert counts.get("00", 0) + counts.get("11", 0) > 150
    custom = AerMPISimulator().configuration().custom_instructions
    assert isinstance(custom, list) and {"save_statevector", "set_statevector", "if_else", "kraus"} <= set(custom)
    assert "cx" not in custom and "measure" not in custom


def test_run_keywords_aer_lets_through_are_named_as_ignored_and_typos_are_named():
    """Aer's run() passes any keyword without a word (code written for execute() or a device has
    them); they were 'unknown option' here. Device and transpiler keywords pass silently, any other
    with a warning naming it (and what it may be a typo of)."""
    qc = bell()
    qc.measure_all()
    result = AerMPISimulator(seed_simulator=1).run(
        qc, shots=20, optimization_level=1, seed_transpiler=3, init_qubits=True, extended_stabilizer_mixing_time=5
    ).result()
    assert sum(result.get_counts().values()) == 20
    assert {"optimization_level", "seed_transpiler", "init_qubits", "extended_stabilizer_mixing_time"} <= set(
        result.results[0].metadata["ignored_options"])
    with pytest.warns(UserWarning, match="run\\(\\) ignores 'shotz' \\(did you mean 'shots'\\?\\)"):
        typo = AerMPISimulator().run(qc, shotz=3).result()
    assert sum(typo.get_counts().values()) == 1024 and "shotz" in typo.results[0].metadata["ignored_options"]
    with pytest.raises(InvalidInputError, match="unknown option 'optimization_level'"):
        AerMPISimulator().set_options(optimization_level=1)  # Aer's set_options refuses it too


def test_aers_legacy_parameterizations_run_each_circuit_once_per_value():
    """run(circuits, parameterizations=[[[[instruction, parameter], values], ...], ...]), Aer's older
    form of parameter binding (its own tests use it): one experiment per value, in order."""
    circuits = []
    for name in ("a", "b"):
        qc = QuantumCircuit(1, name=name)
        qc.ry(0.1, 0)
        qc.measure_all()
        circuits.append(qc)
    result = AerMPISimulator(seed_simulator=1).run(
        circuits, parameterizations=[[[[0, 0], [0.0, np.pi]]], []], shots=50).result()
    assert result.get_counts(0) == {"0": 50} and result.get_counts(1) == {"1": 50}
    assert len(result.results) == 3 and set(result.get_counts(2)) <= {"0", "1"}
    for bad, match in (([[]], "one list per circuit"), ([[[[0, 0], [1.0]], [[0, 0], [1.0, 2.0]]], []], "as many values"),
                       ([[[[5, 0], [1.0]]], []], "no parameter 0 on instruction 5"), ([[[[0, 0], ["x"]]], []], "not a number")):
        with pytest.raises(InvalidInputError, match=match):
            AerMPISimulator().run(circuits, parameterizations=bad).result()


def test_aers_constructor_arguments():
    """AerSimulator(configuration=, properties=, provider=, target=) as Aer's constructor takes them."""
    qiskit_aer = pytest.importorskip("qiskit_aer")
    from qiskit import transpile
    from qiskit.providers.fake_provider import GenericBackendV2

    device = GenericBackendV2(num_qubits=5, basis_gates=["cx", "rz", "sx", "x"], seed=3)
    backend = AerMPISimulator(target=device.target, properties=None, provider=None)
    assert backend.num_qubits == 5 and backend.properties() is None
    qc = bell()
    qc.save_statevector()
    compiled = transpile(qc, backend, seed_transpiler=1)
    assert set(compiled.count_ops()) <= {"cx", "rz", "sx", "x", "save_statevector"}
    assert AerMPISimulator(configuration=qiskit_aer.AerSimulator().configuration()).num_qubits == 30


def test_aers_submodule_paths_import():
    """`from qiskit_aer.noise.errors import ...` and `qiskit_aer.primitives.estimator_v2`, with the import
    changed, and aer_mpi.noise as an attribute after `import aer_mpi`, as qiskit_aer.noise is."""
    pytest.importorskip("qiskit_aer")
    import qiskit_aer.noise.errors

    from aer_mpi.noise.errors import depolarizing_error
    from aer_mpi.noise.errors.standard_errors import pauli_error
    from aer_mpi.noise.device import basic_device_gate_errors  # noqa: F401
    from aer_mpi.primitives.estimator_v2 import EstimatorV2
    from aer_mpi.primitives.sampler import Sampler

    assert depolarizing_error is qiskit_aer.noise.errors.depolarizing_error and pauli_error is not None
    assert EstimatorV2 is aer_mpi.primitives.EstimatorV2 and Sampler is aer_mpi.primitives.Sampler
    assert aer_mpi.noise.NoiseModel is qiskit_aer.noise.NoiseModel and aer_mpi.library.SaveStatevector
    # Aer's tutorials' other module paths (probe O): the noise utilities are Aer's, the rest aer_mpi's
    import qiskit_aer.utils

    from aer_mpi.aererror import AerError
    from aer_mpi.backends import AerSimulator, StatevectorSimulator  # noqa: F401
    from aer_mpi.jobs import AerJob
    from aer_mpi.library.save_instructions import SaveStatevector
    from aer_mpi.library.save_instructions.save_expectation_value import SaveExpectationValue  # noqa: F401
    from aer_mpi.library.set_instructions import SetStatevector  # noqa: F401
    from aer_mpi.utils import approximate_quantum_error, insert_noise
    from aer_mpi.utils.noise_transformation import transform_noise_model  # noqa: F401

    assert approximate_quantum_error is qiskit_aer.utils.approximate_quantum_error and insert_noise is not None
    assert AerSimulator is aer_mpi.AerSimulator and AerJob is aer_mpi.AerJob and AerError is aer_mpi.AerError
    assert SaveStatevector is aer_mpi.library.SaveStatevector and aer_mpi.utils.transform_noise_model


def test_saved_states_keep_aers_array_attributes():
    """Older notebooks use a saved unitary or state as the array it was before Aer 0.10 (U.round(3),
    sv.shape, rho[0, 0]); Aer's result types still allow it, with a DeprecationWarning; they were
    AttributeError and TypeError here. Equality with Qiskit's own classes holds in both orders."""
    from qiskit.quantum_info import DensityMatrix

    qc = bell()
    saved = qc.copy()
    saved.save_statevector()
    saved.save_density_matrix(label="rho")
    result = AerMPISimulator().run(saved).result()
    state, rho = result.get_statevector(), result.data(0)["rho"]
    unitary_circuit = qc.copy()
    unitary_circuit.save_unitary()
    unitary = AerMPISimulator(method="unitary").run(unitary_circuit).result().get_unitary()
    with pytest.warns(DeprecationWarning, match="not a numpy array"):
        assert state.shape == (4,) and np.allclose(state.round(3), np.round(Statevector(qc).data, 3))
    with pytest.warns(DeprecationWarning):
        assert rho[0, 0] == pytest.approx(0.5) and rho.real.shape == (4, 4)
    with pytest.warns(DeprecationWarning):
        assert np.allclose(unitary.round(12), np.round(Operator(qc).data, 12)) and unitary[0, 0] != 0
    assert isinstance(state, Statevector) and len(state) == 4 and list(state)[0] == state.data[0]
    assert state == Statevector(qc) and Statevector(qc) == state and state != Statevector.from_label("00")
    assert unitary == Operator(qc) and Operator(qc) == unitary and rho == DensityMatrix(qc)
    assert not hasattr(state, "no_such_attribute")
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(state)) == state and copy.deepcopy(rho) == rho


def test_a_simulator_of_a_device_has_aers_properties_and_configuration():
    """from_backend: properties() and configuration().coupling_map as Aer's (BackendV1-style code and
    qiskit-experiments read them); no max_experiments=None in a configuration (mthree divides by it)."""
    qiskit_aer = pytest.importorskip("qiskit_aer")
    from qiskit.providers.fake_provider import GenericBackendV2

    from aer_mpi.noise import NoiseModel

    device = GenericBackendV2(num_qubits=4, coupling_map=[[0, 1], [1, 2], [2, 3]], seed=5)
    ours, aers = AerMPISimulator.from_backend(device), qiskit_aer.AerSimulator.from_backend(device)
    assert sorted(map(tuple, ours.configuration().coupling_map)) == sorted(map(tuple, aers.configuration().coupling_map))
    assert type(ours.properties()) is type(aers.properties())
    assert NoiseModel.from_backend_properties(ours.properties()).basis_gates == \
        NoiseModel.from_backend_properties(aers.properties()).basis_gates
    for backend in (ours, AerMPISimulator()):
        assert getattr(backend.configuration(), "max_experiments", 1) == 1
    # the result names the device, as Aer's "aer_simulator_from(...)"
    measured = QuantumCircuit(1)
    measured.measure_all()
    assert ours.run(measured, shots=4).result().backend_name == ours.name == f"aer_mpi_simulator_from({device.name})"


def test_aers_error_classes_and_a_refused_run_is_a_job_in_error():
    """Code written for Aer: ``except QiskitError`` catches aer_mpi's errors, an unknown backend name is
    Qiskit's QiskitBackendNotFoundError (``backends(name)`` is empty), and ``run()`` of a circuit that
    cannot run returns a job in ERROR whose ``result()`` raises, as Aer's."""
    from qiskit.circuit import Parameter
    from qiskit.exceptions import QiskitError
    from qiskit.providers import JobStatus
    from qiskit.providers.exceptions import QiskitBackendNotFoundError

    with pytest.raises(QiskitBackendNotFoundError, match="'aer_simulator'"):
        Aer.get_backend("nope")
    assert Aer.backends("nope") == []
    qc = QuantumCircuit(1)
    qc.rx(Parameter("t"), 0)
    qc.measure_all()
    job = AerMPISimulator().run(qc)
    assert job.status() == JobStatus.ERROR and job.circuits() == [qc]
    with pytest.raises(QiskitError, match="parameter") as info:
        job.result()
    assert isinstance(info.value, InvalidInputError) and not str(info.value).startswith("'")
    assert AerMPISimulator().run(bell(), shots="many").status() == JobStatus.ERROR


def test_the_legacy_statevector_simulator_takes_a_circuits_save_state():
    qc = bell()
    qc.save_state()
    result = Aer.get_backend("statevector_simulator").run(qc).result()
    assert sorted(result.data(0)) == ["statevector"]
    assert Statevector(result.get_statevector()).equiv(Statevector(bell()))
    assert Aer.get_backend("statevector_simulator").run(qc).circuits() == [qc]  # not the copy it ran


def test_aers_metadata_words_and_the_submitted_circuits_under_noise():
    noise = pytest.importorskip("qiskit_aer.noise")
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.1, 1), ["h"])
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    backend = AerMPISimulator(method="statevector", noise_model=model, seed_simulator=1)
    job = backend.run(qc, shots=50)
    result = job.result()
    assert job.circuits()[0] is qc  # the user's circuit, not the one the noise passes made
    meta = result.results[0].metadata
    assert meta["noise"] == "circuit" and "noise_events" in meta["noise_stats"]
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.1), ["x"])
    qc = qc.remove_final_measurements(inplace=False)
    qc.x(0)
    qc.measure_all()
    assert backend.run(qc, shots=50, noise_model=model).result().results[0].metadata["noise"] == "kraus"
    dense = AerMPISimulator(method="density_matrix", noise_model=model).run(qc, shots=50).result()
    assert dense.results[0].metadata["noise"] == "superop"
    assert AerMPISimulator().run(qc).result().results[0].metadata["noise"] == "ideal"
    for key in ("time_taken_execute", "time_taken_parameter_binding", "max_memory_mb", "parallel_experiments",
                "omp_enabled"):
        assert key in result.metadata, key
    assert isinstance(result.metadata["time_taken_parameter_binding"], float)


def test_a_saved_stabilizer_still_reads_as_aers_old_dict():
    """Aer's saved stabilizer reads as the dict it was before Aer 0.10, with a DeprecationWarning:
    ``Clifford.from_dict(state)``, ``state["stabilizer"]`` (older QEC notebooks use them)."""
    import copy
    import pickle

    from qiskit.quantum_info import Clifford, StabilizerState, random_clifford

    target = random_clifford(2, seed=100)
    qc = QuantumCircuit(2)
    qc.set_stabilizer(target)
    qc.save_stabilizer(label="state")
    state = AerMPISimulator(method="stabilizer").run(qc, shots=1).result().data(0)["state"]
    assert isinstance(state, StabilizerState) and state == StabilizerState(target)
    with pytest.warns(DeprecationWarning, match="not a dict"):
        assert Clifford.from_dict(state) == target
    with pytest.warns(DeprecationWarning):
        assert state["stabilizer"] == target.to_dict()["stabilizer"] and set(state) == {"stabilizer", "destabilizer"}
    with pytest.raises(TypeError, match="not subscriptable"):
        state[0]
    assert pickle.loads(pickle.dumps(state)) == state and copy.deepcopy(state) == state


def test_set_matrix_product_state_takes_what_save_matrix_product_state_gives():
    """Aer's set_matrix_product_state (its own tests, MPS notebooks): the state it stands for, from the
    (sites, lambdas) that save_matrix_product_state gives, here and in Aer."""
    from qiskit import transpile
    from qiskit.circuit.random import random_circuit
    from qiskit.quantum_info import Statevector

    circuit = random_circuit(5, 6, max_operands=2, seed=11)
    saving = circuit.copy()
    saving.save_matrix_product_state(label="mps")
    simulators = [AerMPISimulator(method="matrix_product_state")]
    qiskit_aer = pytest.importorskip("qiskit_aer")
    simulators.append(qiskit_aer.AerSimulator(method="matrix_product_state"))
    for simulator in simulators:
        mps = simulator.run(transpile(saving, simulator), shots=1).result().data(0)["mps"]
        restored = QuantumCircuit(5)
        restored.set_matrix_product_state(mps)
        restored.save_statevector()
        state = AerMPISimulator().run(restored).result().get_statevector()
        assert state.equiv(Statevector(circuit), atol=1e-10), type(simulator).__module__
    bad = QuantumCircuit(2)
    bad.set_matrix_product_state(([([[1, 0]], [[0, 1]]), ([[1], [0]], [[0], [1]])], [[1.0, 1.0]]))
    with pytest.raises(InvalidInputError, match="norm"):
        AerMPISimulator().run(bad).result()


def test_measure_sampling_and_noise_words_are_decided_as_aers():
    """Aer's own tests read metadata["measure_sampling"] and ["noise"]: they depend on the circuit (a save
    or a gate on a measured qubit after the measurements, a reset) and on the noise model as a whole (a
    model of quantum errors is sampled shot by shot even where its errors miss the circuit; a model of
    readout errors only is "readout"), as Aer decides them."""
    from aer_mpi.noise import NoiseModel, ReadoutError, depolarizing_error

    final = QuantumCircuit(2, 2)
    final.x(0)
    final.measure([0, 1], [0, 1])
    again = final.copy()
    again.x(0)
    again.measure(0, 0)
    reset = QuantumCircuit(2, 2)
    reset.x(0)
    reset.reset(0)
    reset.measure([0, 1], [0, 1])
    saved = final.copy()
    saved.save_statevector()
    ideal = AerMPISimulator(method="statevector")
    words = [ideal.run(qc, shots=10).result().results[0].metadata["measure_sampling"] for qc in (final, again, reset, saved)]
    assert words == [True, False, False, False]
    gates = NoiseModel()
    gates.add_all_qubit_quantum_error(depolarizing_error(0.02, 2), "cx")  # no cx in the circuit
    readout = NoiseModel()
    readout.add_all_qubit_readout_error(ReadoutError([[0.99, 0.01], [0.1, 0.9]]))
    meta = AerMPISimulator(method="statevector", noise_model=gates).run(final, shots=10).result().results[0].metadata
    assert (meta["noise"], meta["measure_sampling"]) == ("circuit", False)
    for method in ("statevector", "stabilizer", "density_matrix"):
        meta = AerMPISimulator(method=method, noise_model=readout).run(final, shots=10).result().results[0].metadata
        assert (meta["noise"], meta["measure_sampling"]) == ("readout", True), method
