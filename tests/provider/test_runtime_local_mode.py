"""qiskit-ibm-runtime's local testing mode on AerMPISimulator: ``SamplerV2(mode=backend)``.

Local mode runs Qiskit's BackendSamplerV2 / BackendEstimatorV2 on the
backend it is given, after checking (for a non-simulator) that circuits are
ISA circuits of its target; ``configuration().simulator`` tells it that
AerMPISimulator is a simulator. One rank.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

from aer_mpi import AerMPISimulator

runtime = pytest.importorskip("qiskit_ibm_runtime")

# qiskit-ibm-runtime 0.50+ deprecates SamplerV2/EstimatorV2 in favour of executor-based ones
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def backend():
    return AerMPISimulator(comm=MPI.COMM_SELF)


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(1, n):
        qc.cx(i - 1, i)
    return qc


def test_runtime_sampler_in_local_mode(backend):
    qc = ghz(4)
    qc.measure_all()
    isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(qc)
    sampler = runtime.SamplerV2(mode=backend)
    sampler.options.default_shots = 2000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sampler.run([isa]).result()
    counts = result[0].data.meas.get_counts()
    assert sum(counts.values()) == 2000 and set(counts) == {"0000", "1111"}
    assert abs(counts["0000"] - 1000) < 150


def test_runtime_sampler_seed_is_reproducible(backend):
    qc = ghz(3)
    qc.measure_all()
    sampler = runtime.SamplerV2(mode=backend, options={"simulator": {"seed_simulator": 42}, "default_shots": 100})
    first = sampler.run([qc]).result()[0].data.meas.get_bitstrings()
    second = sampler.run([qc]).result()[0].data.meas.get_bitstrings()
    assert first == second


def test_runtime_estimator_in_local_mode(backend):
    qc = QuantumCircuit(3)
    qc.ry(0.7, 0)
    qc.cx(0, 1)
    qc.rx(0.3, 2)
    obs = SparsePauliOp.from_list([("ZZI", 1.0), ("IIZ", 0.5), ("XII", 0.2)])
    exact = Statevector(qc).expectation_value(obs).real
    estimator = runtime.EstimatorV2(mode=backend)
    estimator.options.default_precision = 0.01  # 10,000 shots per basis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = float(estimator.run([(qc, obs)]).result()[0].data.evs)
    assert abs(ev - exact) < 0.06


def test_native_estimator_matches_the_runtime_one_within_its_precision(backend):
    from aer_mpi.primitives import EstimatorV2

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(0.4, 1)
    obs = SparsePauliOp("ZZ")
    exact = float(EstimatorV2(backend=backend).run([(qc, obs)]).result()[0].data.evs)
    assert np.isclose(exact, Statevector(qc).expectation_value(obs).real, atol=1e-12)
