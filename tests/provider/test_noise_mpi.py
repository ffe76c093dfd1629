"""Noisy circuits by trajectories: counts agree with Qiskit Aer's noisy counts, at 1, 2 and 4 ranks,
and are identical, shot by shot, to a one-rank run with the same seed.

Small shards (``min_local_qubits=2`` on 5 qubits) put qubits on rank bits, so noise lands there too.
Every backend here says ``method="statevector"``: the automatic method would sample the Clifford
circuits with Pauli noise on the tableau's Pauli frames (tests/engine/test_stabilizer_frames.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import MPI_TIMEOUT, RANKS

pytest.importorskip("qiskit_aer")

SHOTS = 4000
#: Shots of the reference: Aer's density-matrix method (exact noise, no trajectories), five times the shots
#: under test (its own sampling adds about 10% to the expected distance; the tolerance is twice it).
#: Aer takes about 70 us a shot here (readout errors and conditionals leave it no measure sampling).
REFERENCE_SHOTS = 20_000


def tvd(a: dict, b: dict, shots: int, b_shots: int = 0) -> float:
    """Total variation distance between counts ``a`` (``shots``) and ``b`` (``b_shots``, default ``shots``)."""
    b_shots = b_shots or shots
    return 0.5 * sum(abs(a.get(k, 0) / shots - b.get(k, 0) / b_shots) for k in set(a) | set(b))


def tolerance(reference: dict, shots: int = SHOTS) -> float:
    """Twice the expected TVD of ``shots`` samples from the (near exact) reference distribution.

    E|p_hat - p| = sqrt(2 p (1 - p) / (pi N)) per outcome; half their sum is the expected TVD
    (about 0.03 for 32 outcomes at 4000 shots); measured TVDs sit at about 1x it.
    """
    total = sum(reference.values())
    p = np.array([v / total for v in reference.values()])
    return 2 * 0.5 * float(np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * shots)))) + 0.005


def aer_reference(circuits, noise_model=None):
    """Aer's noisy counts (density-matrix method, ``REFERENCE_SHOTS``), one dict per circuit."""
    from qiskit_aer import AerSimulator

    result = AerSimulator(method="density_matrix", noise_model=noise_model).run(
        circuits, shots=REFERENCE_SHOTS, seed_simulator=5
    ).result()
    return [result.get_counts(i) for i in range(len(circuits))]


def assert_close(reference: dict, counts: dict, what) -> None:
    distance = tvd(counts, reference, SHOTS, REFERENCE_SHOTS)
    assert distance < tolerance(reference), (what, distance, tolerance(reference))


def _circuits():
    from qiskit import QuantumCircuit

    ghz = QuantumCircuit(5, 5, name="ghz")
    ghz.h(0)
    for i in range(4):
        ghz.cx(i, i + 1)
    ghz.x(4)
    ghz.measure(range(5), range(5))

    mixed = QuantumCircuit(5, 5, name="mixed")
    mixed.h(range(5))
    mixed.sx(3)
    mixed.cx(4, 0)
    mixed.x(4)
    mixed.cx(2, 4)
    mixed.sx(4)
    mixed.measure(range(5), range(5))

    dynamic = QuantumCircuit(5, 5, name="dynamic")
    dynamic.x(4)
    dynamic.h(1)
    dynamic.measure(4, 0)
    dynamic.reset(4)
    dynamic.cx(1, 4)
    dynamic.sx(3)
    with dynamic.if_test((dynamic.clbits[0], 1)):
        dynamic.x(2)
    dynamic.measure([1, 2, 3, 4], [1, 2, 3, 4])
    return [ghz, mixed, dynamic]


def _noise_models():
    from qiskit_aer.noise import (
        NoiseModel,
        ReadoutError,
        amplitude_damping_error,
        depolarizing_error,
        pauli_error,
        phase_damping_error,
        thermal_relaxation_error,
    )

    depolarizing = NoiseModel()
    depolarizing.add_all_qubit_quantum_error(depolarizing_error(0.06, 1), ["h", "x", "sx"])
    depolarizing.add_all_qubit_quantum_error(depolarizing_error(0.1, 2), ["cx"])
    depolarizing.add_all_qubit_readout_error(ReadoutError([[0.95, 0.05], [0.1, 0.9]]))
    depolarizing.add_readout_error(ReadoutError([[0.8, 0.2], [0.25, 0.75]]), [4])

    relaxation = NoiseModel()
    relaxation.add_all_qubit_quantum_error(thermal_relaxation_error(40, 30, 8), ["h", "sx"])
    relaxation.add_all_qubit_quantum_error(thermal_relaxation_error(30, 50, 8), ["x"])  # T2 > T1: Kraus form
    relaxation.add_all_qubit_quantum_error(
        thermal_relaxation_error(40, 30, 20).expand(thermal_relaxation_error(40, 30, 20)), ["cx"]
    )

    damping = NoiseModel()
    damping.add_all_qubit_quantum_error(amplitude_damping_error(0.15), ["x", "sx", "h"])
    damping.add_quantum_error(phase_damping_error(0.3), ["h"], [0])
    damping.add_all_qubit_quantum_error(amplitude_damping_error(0.2), ["measure"])
    damping.add_all_qubit_quantum_error(amplitude_damping_error(0.3), ["reset"])

    pauli = NoiseModel()
    pauli.add_all_qubit_quantum_error(pauli_error([("X", 0.05), ("Y", 0.03), ("Z", 0.1), ("I", 0.82)]), ["h", "x", "sx"])
    pauli.add_all_qubit_quantum_error(pauli_error([("XZ", 0.08), ("YI", 0.04), ("II", 0.88)]), ["cx"])
    pauli.add_quantum_error(pauli_error([("X", 0.2), ("I", 0.8)]), ["measure"], [1])
    return {"depolarizing+readout": depolarizing, "thermal relaxation": relaxation,
            "amplitude damping": damping, "pauli": pauli}


def test_noisy_counts_match_aer():
    """Each noise model on each circuit, 4000 shots, against Aer (one rank: the test below shows
    that 2 and 4 ranks give the same shots, bit for bit)."""
    from mpi4py import MPI

    from aer_mpi.provider.backend import AerMPISimulator

    circuits = _circuits()
    backend = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, min_local_qubits=2)
    for name, model in _noise_models().items():
        result = backend.run(circuits, shots=SHOTS, seed_simulator=11, noise_model=model).result()
        references = aer_reference(circuits, model)
        for i, circuit in enumerate(circuits):
            assert result.results[i].metadata["dynamic"], (name, circuit.name)
            assert_close(references[i], result.get_counts(i), (name, circuit.name))


def check_noisy_shots_do_not_depend_on_ranks(comm):
    """The same seed: the same shots, bit for bit, on 1, 2 and 4 ranks (small shards, so noise lands
    on rank-bit qubits: Kraus probabilities summed across ranks, mixtures on exchanged qubits)."""
    from mpi4py import MPI

    from aer_mpi.provider.backend import AerMPISimulator

    circuits = _circuits()
    backend = AerMPISimulator(method="statevector", comm=comm, min_local_qubits=2, parallel_experiments=False)
    alone = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, min_local_qubits=2, parallel_experiments=False)
    for name, model in _noise_models().items():
        spread = backend.run(circuits, shots=120, seed_simulator=23, noise_model=model, memory=True).result()
        one = alone.run(circuits, shots=120, seed_simulator=23, noise_model=model, memory=True).result()
        for i, circuit in enumerate(circuits):
            assert spread.results[i].metadata["working_ranks"] == min(comm.size, 8)
            assert spread.get_memory(i) == one.get_memory(i), (name, circuit.name)


def check_fake_device_from_backend_matches_aer(comm):
    from mpi4py import MPI
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from aer_mpi.provider.backend import AerMPISimulator

    device = FakeManilaV2()
    backend = AerMPISimulator.from_backend(device, comm=comm, min_local_qubits=2, parallel_experiments=False)
    assert backend.num_qubits == 5 and backend.options.noise_model is not None
    circuit = QuantumCircuit(5)
    circuit.h(0)
    for i in range(4):
        circuit.cx(i, i + 1)
    circuit.measure_all()
    compiled = transpile(circuit, backend, seed_transpiler=3, optimization_level=1)
    assert set(compiled.count_ops()) <= {"rz", "sx", "x", "cx", "measure", "barrier"}
    result = backend.run(compiled, shots=SHOTS, seed_simulator=4, memory=True).result()
    if comm.size == 1:  # against Aer once; at more ranks the same shots as one rank
        aer = AerSimulator.from_backend(device, method="density_matrix")
        reference = aer.run(compiled, shots=REFERENCE_SHOTS, seed_simulator=9).result().get_counts()
        assert_close(reference, result.get_counts(), "FakeManilaV2")
    elif comm.rank == 0:
        alone = AerMPISimulator.from_backend(device, comm=MPI.COMM_SELF, min_local_qubits=2)
        assert alone.run(compiled, shots=SHOTS, seed_simulator=4, memory=True).result().get_memory() == result.get_memory()


def check_readout_only_samples_the_ideal_state(comm):
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel, ReadoutError

    from aer_mpi.provider.backend import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.3, 0.7]]))
    circuit = QuantumCircuit(5, 5)
    circuit.h(0)
    circuit.cx(0, 3)
    circuit.x(4)
    circuit.measure(range(5), range(5))
    backend = AerMPISimulator(method="statevector", comm=comm, min_local_qubits=2, parallel_experiments=False, noise_model=model)
    result = backend.run(circuit, shots=SHOTS, seed_simulator=2).result()
    meta = result.results[0].metadata
    assert not meta["dynamic"] and meta["noise_stats"]["readout_errors_on_final_values"] == 5
    assert meta["noise"] == "readout"  # Aer's word for a model of readout errors only
    if comm.size == 1:  # against Aer once; at more ranks the same counts as one rank
        assert_close(aer_reference([circuit], model)[0], result.get_counts(), "readout only")
    elif comm.rank == 0:
        from mpi4py import MPI

        alone = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, min_local_qubits=2, noise_model=model)
        assert alone.run(circuit, shots=SHOTS, seed_simulator=2).result().get_counts() == result.get_counts()


def test_circuit_kraus_and_quantum_error_match_aer():
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Kraus, SuperOp
    from qiskit_aer.noise import amplitude_damping_error, depolarizing_error, thermal_relaxation_error

    from aer_mpi.provider.backend import AerMPISimulator

    circuit = QuantumCircuit(3, 3)
    circuit.x(0)
    circuit.h(1)
    circuit.append(Kraus(amplitude_damping_error(0.4)), [0])
    circuit.append(depolarizing_error(0.3, 2), [1, 2])
    circuit.append(SuperOp(thermal_relaxation_error(30, 20, 15)), [1])
    circuit.measure(range(3), range(3))
    backend = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF)
    got = backend.run(circuit, shots=SHOTS, seed_simulator=3).result().get_counts()
    assert_close(aer_reference([circuit])[0], got, "circuit channels")
    assert np.isclose(sum(got.values()), SHOTS)


def test_primitives_with_a_noise_model():
    """SamplerV2 samples noisy counts; EstimatorV2 averages the expectation value over trajectories."""
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_aer.noise import NoiseModel, ReadoutError, amplitude_damping_error, depolarizing_error
    from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2

    from aer_mpi.primitives import EstimatorV2, SamplerV2
    from aer_mpi.provider.backend import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["h"])
    model.add_all_qubit_quantum_error(amplitude_damping_error(0.2), ["x"])
    model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]))
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.x(2)
    observable = SparsePauliOp.from_list([("ZZI", 1.0), ("ZII", 0.5), ("IIX", 0.3)])
    backend = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, noise_model=model)
    exact = AerEstimatorV2(options={"backend_options": {"noise_model": model, "method": "density_matrix"}})
    expected = float(exact.run([(circuit, observable)]).result()[0].data.evs)
    for precision in (0.02, 0.0):  # 2500 trajectories; 1024 at precision 0
        data = EstimatorV2(backend=backend, seed=3).run([(circuit, observable)], precision=precision).result()[0].data
        # stds is the trajectories' standard error: not 0, and it covers the distance to the exact value
        assert 0.005 < float(data.stds) < 0.05, (precision, data.stds)
        assert abs(float(data.evs) - expected) < 4 * float(data.stds), (precision, data.evs, data.stds, expected)
    measured = circuit.copy()
    measured.measure_all()
    counts = SamplerV2(backend=backend, seed=4).run([measured], shots=SHOTS).result()[0].data.meas.get_counts()
    assert_close(aer_reference([measured], model)[0], counts, "SamplerV2")


# -- trajectories run ahead: gates fused between the noise events that split (engine/noise.py) --------
def _layered(n: int = 6):
    """Layers of h/sx, rz and a cx ladder; a subset of the qubits measured, out of order."""
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(n, 4, name="layered")
    for layer in range(3):
        for q in range(n):
            circuit.h(q) if layer % 2 == 0 else circuit.sx(q)
            circuit.rz(0.3 * (q + 1) * (layer + 1), q)
        for q in range(layer % 2, n - 1, 2):
            circuit.cx(q, q + 1)
    circuit.measure([3, 0, 5, 1], [0, 2, 1, 3])
    return circuit


def _layered_model():
    """Mixtures (depolarizing; thermal relaxation with T2 <= T1: reset branches), a Kraus channel
    (T2 > T1) and readout errors."""
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, thermal_relaxation_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.03, 1), ["h"])
    model.add_all_qubit_quantum_error(thermal_relaxation_error(40, 30, 6), ["sx"])
    model.add_quantum_error(thermal_relaxation_error(30, 50, 6), ["rz"], [2])
    model.add_all_qubit_quantum_error(depolarizing_error(0.06, 2), ["cx"])
    model.add_all_qubit_readout_error(ReadoutError([[0.95, 0.05], [0.1, 0.9]]))
    return model


def test_layered_noisy_counts_match_aer_with_fusion_between_events():
    """Gates fused between noise events (fusion from 1 qubit on): counts still agree with Aer's."""
    from mpi4py import MPI

    from aer_mpi.provider.backend import AerMPISimulator

    circuit, model = _layered(), _layered_model()
    backend = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, fusion_threshold=1)
    result = backend.run(circuit, shots=SHOTS, seed_simulator=8, noise_model=model).result()
    noise = result.results[0].metadata["noise_stats"]
    assert noise["fused_ops"] < noise["gates_gathered"], noise  # fusion did happen between events
    assert_close(aer_reference([circuit], model)[0], result.get_counts(), "layered, fused")


def test_a_shot_does_not_depend_on_its_companions_or_on_memory(monkeypatch):
    """Shot s draws from its own stream: the same outcomes whatever the other shots (fewer shots,
    other groups), whether the run fuses, and whatever the shard copies (none: every split replayed,
    the replays merged; one; the default)."""
    from mpi4py import MPI

    from aer_mpi.engine import resources
    from aer_mpi.provider.backend import AerMPISimulator

    circuit, model = _layered(), _layered_model()
    backend = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, fusion_threshold=1)

    def memory(shots: int, **options) -> list:
        result = backend.run(circuit, shots=shots, seed_simulator=31, noise_model=model, memory=True, **options)
        return result.result().get_memory()

    reference = memory(300)
    assert memory(97) == reference[:97]
    assert memory(300, fusion_enable=False) == reference
    for copies in (0, 1):
        monkeypatch.setattr(resources, "MAX_BRANCH_COPIES", copies)
        assert memory(300) == reference, copies


def check_fused_trajectories_do_not_depend_on_ranks(comm):
    """Fused between events, qubits on rank bits (exchanges and rank-conditioned gates inside the runs),
    final measurements of a subset sampled from a joint table spread over ranks: the same shots as one
    unfused rank."""
    from mpi4py import MPI

    from aer_mpi.provider.backend import AerMPISimulator

    circuit, model = _layered(), _layered_model()
    spread = AerMPISimulator(method="statevector", comm=comm, min_local_qubits=2, fusion_threshold=1, parallel_experiments=False)
    alone = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, min_local_qubits=2, fusion_enable=False)
    got = spread.run(circuit, shots=200, seed_simulator=13, noise_model=model, memory=True).result()
    want = alone.run(circuit, shots=200, seed_simulator=13, noise_model=model, memory=True).result()
    assert got.results[0].metadata["working_ranks"] == min(comm.size, 8)
    assert got.get_memory() == want.get_memory()


def test_errors_on_id_delay_and_a_labelled_unitary_are_applied():
    """No-ops carry noise as in Aer (device models put errors on id), and a unitary's label keys its errors."""
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import UnitaryGate
    from qiskit_aer.noise import NoiseModel, pauli_error

    from aer_mpi.provider.backend import AerMPISimulator

    flip = pauli_error([("X", 0.3), ("I", 0.7)])
    backend = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF)
    for name, add in [("id", lambda qc: qc.id(0)), ("delay", lambda qc: qc.delay(100, 0)),
                      ("myu", lambda qc: qc.append(UnitaryGate(np.eye(2), label="myu"), [0]))]:
        model = NoiseModel()
        model.add_all_qubit_quantum_error(flip, [name])
        circuit = QuantumCircuit(1)
        add(circuit)
        circuit.measure_all()
        counts = backend.run(circuit, shots=SHOTS, seed_simulator=2, noise_model=model).result().get_counts()
        assert abs(counts.get("1", 0) / SHOTS - 0.3) < 0.03, (name, counts)


def test_a_noise_models_own_passes_add_relaxation_on_scheduled_delays():
    """NoiseModel.from_backend keeps the delays' thermal relaxation in a pass, not in to_dict()."""
    import warnings

    from qiskit import QuantumCircuit, transpile
    from qiskit.providers.fake_provider import GenericBackendV2
    from qiskit_aer.noise import NoiseModel

    from aer_mpi.provider.backend import AerMPISimulator

    device = GenericBackendV2(2, seed=1)
    circuit = QuantumCircuit(1)
    circuit.x(0)
    circuit.delay(100, 0, unit="us")
    circuit.measure_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NoiseModel.from_backend(device)
        scheduled = transpile(circuit, device, scheduling_method="alap", optimization_level=0)
    counts = AerMPISimulator(method="statevector", noise_model=model).run(scheduled, shots=SHOTS, seed_simulator=3).result().get_counts()
    assert_close(aer_reference([scheduled], model)[0], counts, "delay relaxation")
    assert counts.get("0", 0) > SHOTS // 4  # 100 us against a T1 of about 150 us: far from the 1% readout error


def test_transpile_for_a_noisy_backend_writes_the_noise_models_basis_as_aer():
    """As Aer's: with a noise model the target offers its basis gates, so the errors on sx and rz
    apply to a circuit written with h; basis_gates= sets them (the common
    AerSimulator(noise_model=nm, basis_gates=nm.basis_gates) idiom)."""
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    from aer_mpi.provider.backend import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.2, 1), ["sx"])
    circuit = QuantumCircuit(1)
    circuit.h(0)
    circuit.h(0)
    circuit.measure_all()
    for backend in (AerMPISimulator(method="statevector", noise_model=model), AerMPISimulator(method="statevector", noise_model=model, basis_gates=model.basis_gates)):
        compiled = transpile(circuit, backend, optimization_level=0)
        assert set(compiled.count_ops()) <= set(model.basis_gates) | {"measure", "barrier"}, compiled.count_ops()
        assert {"measure", "if_else", "save_statevector", "reset"} <= set(backend.target.operation_names)
        counts = backend.run(compiled, shots=SHOTS, seed_simulator=5).result().get_counts()
        assert_close(aer_reference([compiled], model)[0], counts, "noise basis")
        assert counts.get("1", 0) > SHOTS // 20  # the ideal circuit never reads 1
    plain = AerMPISimulator(method="statevector", basis_gates=["rz", "sx", "cx"])
    assert not {"h", "x", "ccx"} & set(plain.target.operation_names)
    assert set(transpile(circuit, plain).count_ops()) <= {"rz", "sx", "measure", "barrier"}
    assert "h" in AerMPISimulator(method="statevector").target.operation_names


def check_noise_on_idle_instructions_does_not_depend_on_ranks(comm):
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel, amplitude_damping_error, pauli_error

    from aer_mpi.provider.backend import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_quantum_error(pauli_error([("X", 0.2), ("I", 0.8)]), ["id"])
    model.add_all_qubit_quantum_error(amplitude_damping_error(0.3), ["delay"])
    circuit = QuantumCircuit(5)
    circuit.h(range(5))
    circuit.id(range(5))
    circuit.cx(0, 4)
    circuit.delay(50, [1, 4])
    circuit.measure_all()
    options = dict(shots=200, seed_simulator=17, noise_model=model, memory=True)
    spread = AerMPISimulator(method="statevector", comm=comm, min_local_qubits=2, parallel_experiments=False).run(circuit, **options).result()
    alone = AerMPISimulator(method="statevector", comm=MPI.COMM_SELF, min_local_qubits=2).run(circuit, **options).result()
    assert spread.get_memory() == alone.get_memory()


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT * 3)
def test_noise_at_every_rank_count(comm):
    """The multi-rank checks above in one job per rank count (a job's start-up (every rank imports Qiskit and pytest) cost more than most of them)."""
    check_noisy_shots_do_not_depend_on_ranks(comm)
    check_fake_device_from_backend_matches_aer(comm)
    check_readout_only_samples_the_ideal_state(comm)
    check_fused_trajectories_do_not_depend_on_ranks(comm)
    check_noise_on_idle_instructions_does_not_depend_on_ranks(comm)
