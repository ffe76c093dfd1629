"""The estimators on circuits whose state is random, as Qiskit Aer's: measurements and resets before
the end (custom instructions' and ``initialize``'s included), control flow, final measurements, and
precision under noise. Oracles: Qiskit's ``DensityMatrix`` (the average over trajectories) and
values worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit
from qiskit.quantum_info import DensityMatrix, SparsePauliOp

from aer_mpi import AerMPISimulator
from aer_mpi.primitives import Estimator, EstimatorV2, _stochastic, _without_final_measurements

from conftest import MPI_TIMEOUT, RANKS


def reset_inside_an_instruction() -> QuantumCircuit:
    """A Bell pair whose qubit 1 a custom instruction resets and flips: <IZ> = 0, <ZI> = -1 (labels are
    little-endian: "ZI" is Z on qubit 1)."""
    sub = QuantumCircuit(1, name="rst")
    sub.reset(0)
    sub.x(0)
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.append(sub.to_instruction(), [1])
    return qc


def initialize_an_entangled_qubit() -> QuantumCircuit:
    """``initialize`` resets its qubit first: on half of a Bell pair that is a measurement."""
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.initialize([0, 1], 1)
    return qc


def feed_forward() -> QuantumCircuit:
    """Measure qubit 0 and flip qubit 1 on a 1: |00> or |11>, <ZZ> = 1 (the bit is read after the
    measurement, which is therefore not final even though nothing acts on its qubit)."""
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    return qc


def local(**options):
    return AerMPISimulator(comm=MPI.COMM_SELF, **options)


def averaged(qc: QuantumCircuit, label: str) -> float:
    """The exact average over trajectories: the density matrix after the circuit's channels."""
    unrolled = qc.decompose(["rst", "initialize"], reps=2)
    return float(np.real(DensityMatrix(unrolled).expectation_value(SparsePauliOp(label))))


def test_what_counts_as_a_random_state():
    assert _stochastic(reset_inside_an_instruction()) and _stochastic(initialize_an_entangled_qubit())
    assert _stochastic(feed_forward())
    fresh = QuantumCircuit(2)
    fresh.initialize([0, 1], 1)  # its reset acts on a fresh qubit: nothing random
    fresh.reset(0)
    fresh.h(0)
    assert not _stochastic(fresh)
    stripped, measured = _without_final_measurements(feed_forward())
    assert stripped.count_ops()["measure"] == 1 and measured == frozenset()
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    stripped, measured = _without_final_measurements(bell)
    assert "measure" not in stripped.count_ops() and measured == {0, 1} and not _stochastic(stripped)


@pytest.mark.parametrize("circuit, label, exact", [
    (reset_inside_an_instruction, "IZ", 0.0),
    (reset_inside_an_instruction, "ZI", -1.0),
    (initialize_an_entangled_qubit, "IZ", 0.0),
    (feed_forward, "ZZ", 1.0),
    (feed_forward, "IZ", 0.0),
])
def test_a_random_state_is_averaged_over_trajectories(circuit, label, exact):
    """It was one trajectory's value (+1 or -1, silently) for resets inside instructions, and
    refused for mid-circuit measurements; Aer averages its shots."""
    qc = circuit()
    if circuit is not feed_forward:
        assert averaged(qc, label) == pytest.approx(exact, abs=1e-12)
    data = EstimatorV2(backend=local(seed_simulator=11)).run([(qc, label)]).result()[0].data
    std = float(data.stds)
    assert abs(float(data.evs) - exact) <= max(5 * std, 1e-12)
    if exact in (1.0, -1.0):
        assert std == 0.0  # every trajectory gives the same value
    else:
        assert 0.0 < std < 0.05  # 1024 trajectories of +-1: about 1/32
    # the V1 estimator averages the same trajectories
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        value = Estimator(approximation=True, backend_options={"seed_simulator": 11}).run(
            qc, label, shots=None).result().values[0]
    assert abs(value - exact) < 0.2


def test_run_options_shots_set_the_trajectories():
    data = EstimatorV2(options={"run_options": {"shots": 64, "seed_simulator": 3}}).run(
        [(initialize_an_entangled_qubit(), "IZ")]).result()[0].data
    assert float(data.stds) > 0.08  # 64 trajectories: about 1/8


def test_unknown_run_options_are_named_and_ignored_as_aer_ignores_them():
    qc = QuantumCircuit(1)
    qc.h(0)
    with pytest.warns(UserWarning, match="'seed'.* ignored"):
        evs = EstimatorV2(options={"run_options": {"seed": 1}}).run([(qc, "X")]).result()[0].data.evs
    assert evs == pytest.approx(1.0)
    qc.measure_all()
    from aer_mpi.primitives import SamplerV2

    with pytest.warns(UserWarning, match="'approximation'"):
        counts = SamplerV2(options={"run_options": {"approximation": True}}).run([qc], shots=10).result()
    assert counts[0].data.meas.num_shots == 10
    with warnings.catch_warnings():  # a device keyword Aer's run() lets through: no warning, named as ignored
        warnings.simplefilter("error", UserWarning)
        counts = SamplerV2(options={"run_options": {"init_qubits": True}}).run([qc], shots=10).result()
    assert "init_qubits" in counts[0].metadata["simulator_metadata"]["ignored_options"]


def test_precision_under_noise_is_aers():
    """Under a noise model with precision > 0: stds is the precision and the noise on the value is fresh on
    every call, also when the backend has a seed (Aer seeds it from run_options only); an estimator seed
    repeats it. (It was stds 0 under the density matrix, and the same noise on every call.)"""
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.1, 2), ["cx"])
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    exact = 0.9  # <XX> after a 2-qubit depolarizing channel of 0.1: (1 - 0.1) rho + 0.1 I / 4
    estimator = EstimatorV2(backend=local(noise_model=noise, seed_simulator=5))
    first, second = (estimator.run([(bell, "XX", None, 0.05)]).result()[0].data for _ in range(2))
    assert float(first.stds) == float(second.stds) == 0.05
    assert float(first.evs) != float(second.evs)
    assert abs(float(first.evs) - exact) < 0.25 and abs(float(second.evs) - exact) < 0.25
    exact_value = estimator.run([(bell, "XX")]).result()[0].data
    assert float(exact_value.evs) == pytest.approx(exact, abs=1e-12) and float(exact_value.stds) == 0.0
    seeded = EstimatorV2(backend=local(noise_model=noise), seed=9)
    again = [float(seeded.run([(bell, "XX", None, 0.05)]).result()[0].data.evs) for _ in range(2)]
    assert again[0] == again[1]


def check_random_states_on_every_rank(comm, kernels):
    """The averages and the precision's noise are the same on every rank (rank 0's seeds)."""
    backend = AerMPISimulator(comm=comm, seed_simulator=4)
    estimator = EstimatorV2(backend=backend)
    pubs = [(feed_forward(), ["ZZ", "IZ"]), (initialize_an_entangled_qubit(), "IZ", None, 0.1)]
    results = [estimator.run(pubs).result() for _ in range(2)]
    values = [np.concatenate([np.ravel(r.data.evs) for r in result]) for result in results]
    gathered = comm.allgather(values)
    assert all(np.array_equal(v[0], gathered[0][0]) and np.array_equal(v[1], gathered[0][1]) for v in gathered)
    assert values[0][0] == 1.0 and abs(values[0][1]) < 0.2
    assert values[0][2] != values[1][2]  # fresh noise on every call


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_random_states_on_every_rank(comm, kernels):
    check_random_states_on_every_rank(comm, kernels)
