"""The primitives as Aer users call them (single process): ISA circuits of wide devices, seeds,
``from_backend`` with a device, circuits without measurements, empty sweeps."""

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.quantum_info import SparsePauliOp

from aer_mpi import AerMPISimulator
from aer_mpi.primitives import EstimatorV2, SamplerV2
from conftest import MPI_TIMEOUT, RANKS


def test_estimator_on_an_isa_circuit_of_a_127_qubit_device_simulates_only_the_used_qubits():
    ansatz = efficient_su2(5, reps=1)
    values = np.linspace(0, 1, ansatz.num_parameters)
    observable = SparsePauliOp.from_list([("ZZIII", 1), ("IXXII", 0.5), ("IIIIY", 0.3), ("IIIII", 0.2)])
    expected = StatevectorEstimator().run([(ansatz, observable, values)]).result()[0].data.evs
    device = GenericBackendV2(127, seed=1)
    isa = transpile(ansatz, device, optimization_level=1, seed_transpiler=1)
    result = EstimatorV2().run([(isa, observable.apply_layout(isa.layout), values)]).result()[0]
    # it runs at all because only the gates' and the observable's qubits are simulated (2**127 could not)
    assert abs(result.data.evs - expected) < 1e-10


def test_initial_resets_are_accepted_by_the_estimator():
    qc = QuantumCircuit(2)
    qc.reset([0, 1])
    qc.barrier()
    qc.h(0)
    qc.cx(0, 1)
    assert abs(EstimatorV2().run([(qc, "ZZ")]).result()[0].data.evs - 1) < 1e-12


def measured_h():
    qc = QuantumCircuit(3)
    qc.h(range(3))
    qc.measure_all()
    return qc


def test_a_sampler_seed_gives_each_pub_and_binding_its_own_stream():
    theta = Parameter("t")
    swept = QuantumCircuit(3)
    swept.h(range(3))
    swept.rz(theta, 0)
    swept.measure_all()
    pubs = [(swept, [[0.0], [0.0]]), (measured_h(),)]
    first = SamplerV2(seed=5).run(pubs, shots=64).result()
    again = SamplerV2(seed=5).run(pubs, shots=64).result()
    streams = [first[0].data.meas.array[0], first[0].data.meas.array[1], first[1].data.meas.array]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(streams[a], streams[b])  # same distribution, different draws
    assert np.array_equal(first[1].data.meas.array, again[1].data.meas.array)


def test_the_backends_seed_is_the_samplers_when_it_has_none():
    runs = [SamplerV2.from_backend(AerMPISimulator(seed_simulator=5)).run([measured_h()], shots=64).result()
            for _ in range(2)]
    assert np.array_equal(runs[0][0].data.meas.array, runs[1][0].data.meas.array)
    via_options = SamplerV2(options={"backend_options": {"seed_simulator": 5}}).run([measured_h()], shots=64).result()
    assert np.array_equal(via_options[0].data.meas.array, runs[0][0].data.meas.array)


def test_from_backend_with_a_device_runs_its_noise():
    pytest.importorskip("qiskit_aer")
    device = GenericBackendV2(3, seed=1)
    sampler = SamplerV2.from_backend(device, seed=3)
    assert sampler.backend.options.noise_model is not None
    qc = QuantumCircuit(3)
    qc.x(range(3))
    qc.measure_all()
    counts = sampler.run([transpile(qc, device)], shots=2000).result()[0].data.meas.get_counts()
    assert counts.get("111", 0) > 1500 and len(counts) > 1  # mostly right, with the device's errors
    estimator = EstimatorV2.from_backend(device)
    assert estimator.backend.options.noise_model is not None


def test_from_backend_with_qiskit_aers_simulator_keeps_its_options():
    qiskit_aer = pytest.importorskip("qiskit_aer")
    sampler = SamplerV2.from_backend(qiskit_aer.AerSimulator(seed_simulator=9))
    assert isinstance(sampler.backend, AerMPISimulator) and sampler.backend.options.seed_simulator == 9


def test_classical_bits_without_measurements_read_zero():
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    assert SamplerV2().run([qc], shots=10).result()[0].data.c.get_counts() == {"00": 10}


def test_an_empty_sweep_gives_empty_results():
    theta = Parameter("t")
    qc = QuantumCircuit(1)
    qc.rx(theta, 0)
    estimated = EstimatorV2().run([(qc, "Z", np.zeros((0, 1)))]).result()[0]
    assert estimated.data.evs.shape == (0,) and estimated.data.stds.shape == (0,)
    qc.measure_all()
    sampled = SamplerV2().run([(qc, np.zeros((0, 1)))], shots=16).result()[0]
    assert sampled.data.meas.array.shape == (0, 16, 1)


def check_a_sampler_without_a_seed_runs_on_every_rank_and_they_agree(comm):
    """No seed anywhere: the backend draws one for all ranks (a seed drawn per rank would make the
    ranks submit different runs)."""
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    result = SamplerV2(backend=backend).run([measured_h()], shots=32).result()[0]
    arrays = comm.allgather(result.data.meas.array)
    assert all(np.array_equal(arrays[0], a) for a in arrays)


def test_v1_primitives_take_aers_arguments_and_give_exact_and_sampled_results():
    """Aer still exports its V1 Sampler and Estimator: same arguments, same results (the oracle is
    Qiskit's Statevector)."""
    from qiskit.circuit.library import real_amplitudes
    from qiskit.quantum_info import Statevector

    from aer_mpi.primitives import Estimator, Sampler

    ansatz = real_amplitudes(3, reps=1)
    values = np.linspace(0, 1, ansatz.num_parameters)
    observable = SparsePauliOp.from_list([("ZZI", 1), ("IXX", 0.5)])
    state = Statevector(ansatz.assign_parameters(values))
    with pytest.warns(DeprecationWarning):
        estimator = Estimator(approximation=True, run_options={"shots": None})
    exact = estimator.run([ansatz, ansatz], [observable, "ZII"], [values, values]).result()
    assert np.allclose(exact.values, [state.expectation_value(observable).real,
                                      state.expectation_value(SparsePauliOp("ZII")).real], atol=1e-12)
    sampled = estimator.run(ansatz, observable, values, shots=4000, seed=3).result()
    assert sampled.metadata[0]["shots"] == 4000 and sampled.metadata[0]["variance"] > 0
    assert abs(sampled.values[0] - exact.values[0]) < 5 * np.sqrt(sampled.metadata[0]["variance"] / 4000)

    with pytest.warns(DeprecationWarning):
        sampler = Sampler()
    measured = ansatz.measure_all(inplace=False)
    probabilities = state.probabilities_dict()
    quasi = sampler.run(measured, values, shots=None).result().quasi_dists[0]
    assert all(abs(quasi.get(int(k, 2), 0) - p) < 1e-12 for k, p in probabilities.items())
    # every clbit in the keys, as Aer's (they were cut to the highest bit set)
    assert all(len(key) == measured.num_clbits for key in quasi.binary_probabilities())
    low = QuantumCircuit(4)
    low.h(0)
    low.measure_all()
    assert set(sampler.run(low, shots=None).result().quasi_dists[0].binary_probabilities()) == {"0000", "0001"}
    counted = sampler.run([measured], [values], shots=4000, seed=1).result()
    assert counted.metadata[0]["shots"] == 4000
    assert sum(abs(counted.quasi_dists[0].get(int(k, 2), 0) - p) for k, p in probabilities.items()) < 0.08


def check_v1_estimator_is_exact_at_any_rank_count(comm):
    import warnings

    from qiskit.circuit.library import real_amplitudes
    from qiskit.quantum_info import Statevector

    from aer_mpi.primitives import Estimator

    ansatz = real_amplitudes(5, reps=2)
    values = np.linspace(0, 2, ansatz.num_parameters)
    observable = SparsePauliOp.from_list([("ZZIII", 1), ("IXXIY", 0.5), ("YIIIX", -0.25)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        estimator = Estimator(backend_options={"comm": comm, "min_local_qubits": 2}, approximation=True,
                              run_options={"shots": None})
    value = estimator.run(ansatz, observable, values).result().values[0]
    assert abs(value - Statevector(ansatz.assign_parameters(values)).expectation_value(observable).real) < 1e-12


def test_v1_primitives_average_over_noise_trajectories_in_their_exact_modes():
    """Under a noise model, one shot is one trajectory: the V1 sampler's ``shots=None`` and the V1
    estimator average over many (they returned the ideal values). The oracle is the density matrix."""
    import warnings

    from qiskit.quantum_info import DensityMatrix, Kraus
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    from aer_mpi.primitives import Estimator, Sampler

    error = depolarizing_error(0.3, 2)
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(error, ["cx"])
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    rho = DensityMatrix(qc.copy_empty_like()).evolve(qc).evolve(Kraus(error))
    observable = SparsePauliOp(["ZZ", "XX", "ZI"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sampler = Sampler(backend_options={"noise_model": noise}, run_options={"shots": None, "seed": 5})
        estimators = [Estimator(backend_options={"noise_model": noise}, approximation=approximation,
                                run_options={"shots": shots, "seed": 5})
                      for approximation, shots in [(True, None), (True, 4000), (False, 4000)]]
    quasi = sampler.run(qc.measure_all(inplace=False)).result().quasi_dists[0]
    probabilities = rho.probabilities()
    assert all(abs(quasi.get(k, 0) - probabilities[k]) < 0.05 for k in range(4))  # 1024 trajectories
    assert quasi.get(1, 0) > 0.03  # the ideal Bell state has none
    expected = rho.expectation_value(observable).real  # 1.4; ideal 2
    for estimator in estimators:
        assert abs(estimator.run(qc, observable).result().values[0] - expected) < 0.15


def test_a_negative_seed_runs_as_its_64_bit_pattern_as_in_aer():
    qc = measured_h()
    backend = AerMPISimulator()
    result = backend.run(qc, shots=64, seed_simulator=-1).result()
    assert result.results[0].seed_simulator == (1 << 64) - 1
    assert result.get_counts() == backend.run(qc, shots=64, seed_simulator=(1 << 64) - 1).result().get_counts()
    sampled = SamplerV2(seed=-2).run([qc], shots=64).result()[0].data.meas.array
    assert np.array_equal(sampled, SamplerV2(seed=(1 << 64) - 2).run([qc], shots=64).result()[0].data.meas.array)


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_primitives_at_every_rank_count(comm):
    """The checks above in one job per rank count (a job's start-up (every rank imports Qiskit and pytest) cost more than most of them)."""
    check_a_sampler_without_a_seed_runs_on_every_rank_and_they_agree(comm)
    check_v1_estimator_is_exact_at_any_rank_count(comm)


def test_sampler_bit_arrays_match_qiskits_reference_sampler_register_by_register():
    """Registers of 2, 0 and 70 bits, a sweep of two bindings, deterministic outcomes: every register's
    bits (and the empty one's shape) as Qiskit's StatevectorSampler gives them."""
    from qiskit import ClassicalRegister, QuantumRegister
    from qiskit.primitives import StatevectorSampler

    q, a, empty, wide = QuantumRegister(3), ClassicalRegister(2, "a"), ClassicalRegister(0, "e"), ClassicalRegister(70, "b")
    t = Parameter("t")
    qc = QuantumCircuit(q, a, empty, wide)
    qc.rx(t, 0)
    qc.cx(0, 1)
    qc.x(2)
    qc.measure(0, a[1])
    qc.measure(1, wide[65])
    qc.measure(2, wide[0])
    pub = (qc, [[0.0], [np.pi]])
    ours = SamplerV2(seed=1).run([pub], shots=20).result()[0].data
    theirs = StatevectorSampler(seed=1).run([pub], shots=20).result()[0].data
    for name in ("a", "e", "b"):
        assert ours[name].shape == theirs[name].shape == (2,) and ours[name].num_bits == theirs[name].num_bits
        assert ours[name].num_shots == 20
        np.testing.assert_array_equal(ours[name].array, theirs[name].array)
    assert ours["b"][1].get_int_counts() == {1 + (1 << 65): 20}


# -- probe L: what the estimators leave out of a circuit, and Aer's option and result shapes ----------------

def _store_fed_forward():
    from qiskit.circuit.classical import expr

    qc = QuantumCircuit(2, 1)
    flag = qc.add_var("flag", expr.lift(False))
    qc.h(0)
    qc.measure(0, 0)
    qc.store(flag, qc.clbits[0])  # the measurement is read through the variable only
    with qc.if_test(flag):
        qc.x(1)
    return qc


def test_a_measurement_read_through_a_stored_variable_is_not_final():
    qc = _store_fed_forward()
    evs = EstimatorV2(options={"run_options": {"seed_simulator": 5, "shots": 2000}}).run(
        [(qc, ["ZI", "ZZ"])]).result()[0].data.evs
    # q1 follows q0's outcome: <Z1 Z0> = 1 exactly, <Z1> about 0 (it was 1, 0 with the measurement left out)
    assert abs(evs[1] - 1) < 1e-12 and abs(evs[0]) < 0.1
    with pytest.warns(DeprecationWarning):
        from aer_mpi.primitives import Estimator
        v1 = Estimator(approximation=True, skip_transpilation=True)
    values = v1.run([qc, qc], ["ZI", "ZZ"], shots=None, seed=1).result().values
    assert abs(values[1] - 1) < 1e-12 and abs(values[0]) < 0.15


def _pauli_noise(instruction, p=0.2):
    from qiskit_aer.noise import NoiseModel, pauli_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(pauli_error([("X", p), ("I", 1 - p)]), instruction)
    return model


def test_the_noise_of_an_initial_reset_and_of_a_final_measurement_counts():
    pytest.importorskip("qiskit_aer")
    options = {"run_options": {"seed_simulator": 3, "shots": 4000}}
    reset_first = QuantumCircuit(1)
    reset_first.reset(0)
    reset_first.id(0)
    noisy_reset = {**options, "backend_options": {"noise_model": _pauli_noise("reset")}}
    assert abs(EstimatorV2(options=noisy_reset).run([(reset_first, "Z")]).result()[0].data.evs - 0.6) < 0.05
    measured = QuantumCircuit(1, 1)
    measured.x(0)
    measured.measure(0, 0)
    noisy_measure = {**options, "backend_options": {"noise_model": _pauli_noise("measure")}}
    assert abs(EstimatorV2(options=noisy_measure).run([(measured, "Z")]).result()[0].data.evs + 0.6) < 0.05
    # without noise on them, both are still left out: exact values, no trajectories
    result = EstimatorV2(options={"backend_options": {"noise_model": _pauli_noise("x")}}).run(
        [(reset_first, "Z")]).result()[0]
    assert result.data.evs == 1 and result.data.stds == 0


def test_the_v1_estimator_removes_final_measurements_unless_transpilation_is_skipped():
    from aer_mpi.primitives import Estimator

    bell = QuantumCircuit(2, 2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure([0, 1], [0, 1])
    observables = ["XX", "ZZ", "YY"]
    with pytest.warns(DeprecationWarning):
        default, skipping = Estimator(approximation=True), Estimator(approximation=True, skip_transpilation=True)
    # as Aer's: its transpilation drops the final measurements; skipped, the values are after them
    before = default.run([bell] * 3, observables, shots=None).result().values
    after = skipping.run([bell] * 3, observables, shots=None).result().values
    assert np.allclose(before, [1, 1, -1]) and np.allclose(after, [0, 1, 0])


def test_the_v1_estimators_sampled_metadata_lists_the_simulator_metadata_as_aers():
    from aer_mpi.primitives import Estimator

    qc = QuantumCircuit(1)
    qc.h(0)
    with pytest.warns(DeprecationWarning):
        sampling, approximating = Estimator(), Estimator(approximation=True)
    assert isinstance(sampling.run([qc], ["X"], shots=100, seed=1).result().metadata[0]["simulator_metadata"], list)
    assert isinstance(approximating.run([qc], ["X"], shots=100, seed=1).result().metadata[0]["simulator_metadata"],
                      dict)


def test_bad_estimator_shots_fail_the_job_whatever_the_circuit():
    from aer_mpi.errors import InvalidInputError

    qc = QuantumCircuit(1)
    qc.h(0)
    job = EstimatorV2(options={"run_options": {"shots": -1}}).run([(qc, "X")])
    with pytest.raises(InvalidInputError, match="shots=-1"):
        job.result()
    assert job.status().name == "ERROR"


def test_the_sampler_refuses_the_estimators_default_precision_as_aers():
    with pytest.raises(TypeError, match="default_precision"):
        SamplerV2(options={"default_precision": 0.1})


def test_projector_terms_of_a_sparse_observable_are_their_pauli_sums():
    from qiskit.quantum_info import SparseObservable, Statevector

    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.3, 2)
    state = Statevector(qc)
    for label in ("-II", "+IZ", "I-Z", "0lr", "1IX"):
        observable = SparseObservable.from_list([(label, 0.7), ("ZZI", -0.2)])
        expected = state.expectation_value(SparsePauliOp.from_sparse_observable(observable)).real
        result = EstimatorV2().run([(qc, observable)]).result()[0]
        assert abs(result.data.evs - expected) < 1e-12, label
        assert isinstance(result.data.stds, np.ndarray)  # a 0-d array, as Aer's and the reference's
