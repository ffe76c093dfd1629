"""Aer's set instructions of the other methods' states: set_density_matrix, set_unitary, set_superop
and set_stabilizer, against Aer and Qiskit's quantum_info (one process; the multi-rank check runs in
tests/provider/test_notebook_corners.py's shared job)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit
from qiskit.quantum_info import (Clifford, DensityMatrix, Kraus, Operator, Pauli, StabilizerState, SuperOp,
                                 random_clifford, random_density_matrix, random_statevector, random_unitary)

from aer_mpi import AerMPISimulator, InvalidInputError
from aer_mpi import library as lib
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.qobj.translate import to_program
from aer_mpi.errors import QobjValidationError


def local(**options) -> AerMPISimulator:
    return AerMPISimulator(comm=MPI.COMM_SELF, **options)


def run(qc: QuantumCircuit, **options):
    with warnings.catch_warnings():  # method='density_matrix' warns what else runs as the statevector
        warnings.simplefilter("ignore", UserWarning)
        return local().run(qc, **options).result()


def _channel() -> SuperOp:
    flip = Kraus([np.sqrt(0.7) * np.eye(2), np.sqrt(0.3) * np.array([[0, 1], [1, 0]])])
    return SuperOp(flip.tensor(Kraus([np.array([[1, 0], [0, 1j]])])))


def check_set_states(comm, kernels) -> None:
    """Each set instruction, then gates, under its method (and the automatic one): the same values
    at any rank count as Qiskit's."""
    backend = AerMPISimulator(comm=comm, kernels=kernels)
    rho = random_density_matrix(8, seed=3)
    qc = QuantumCircuit(3)
    lib.set_density_matrix(qc, rho)
    qc.h(1)
    qc.cx(1, 2)
    expected = rho.evolve(qc.copy_empty_like().compose(_gates()))
    lib.save_density_matrix(qc)
    unitary = random_unitary(8, seed=4)
    uc = QuantumCircuit(3)
    lib.set_unitary(uc, unitary)
    uc.h(0)
    lib.save_unitary(uc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = backend.run([qc, uc], shots=0).result()
    if comm.rank == 0:
        assert np.allclose(result.data(0)["density_matrix"].data, expected.data, atol=1e-12)
        h0 = QuantumCircuit(3)
        h0.h(0)
        assert np.allclose(result.get_unitary(1).data, (Operator(h0) @ unitary).data, atol=1e-12)


def _gates() -> QuantumCircuit:
    qc = QuantumCircuit(3)
    qc.h(1)
    qc.cx(1, 2)
    return qc


def test_each_set_state_matches_aer():
    qiskit_aer = pytest.importorskip("qiskit_aer")
    aer = qiskit_aer.AerSimulator()
    rho = random_density_matrix(8, seed=3)
    qc = QuantumCircuit(3)
    lib.set_density_matrix(qc, rho)
    qc.h(1)
    qc.cx(1, 2)
    qc.save_density_matrix()
    qc.save_probabilities([0, 2], label="p")
    ours, theirs = run(qc), aer.run(qc).result()
    assert ours.results[0].metadata["method"] == "density_matrix"  # as Aer's automatic method
    assert np.allclose(ours.data()["density_matrix"].data, theirs.data()["density_matrix"].data, atol=1e-12)
    assert np.allclose(ours.data()["p"], theirs.data()["p"], atol=1e-12)

    unitary = random_unitary(8, seed=4)
    qc = QuantumCircuit(3)
    lib.set_unitary(qc, unitary)
    qc.h(0)
    qc.save_unitary()
    assert np.allclose(run(qc).get_unitary().data, aer.run(qc).result().get_unitary().data, atol=1e-12)

    qc = QuantumCircuit(2)
    lib.set_superop(qc, _channel())
    qc.reset(0)
    qc.h(1)
    qc.save_superop()
    assert np.allclose(run(qc).data()["superop"].data, aer.run(qc).result().data()["superop"].data, atol=1e-12)

    clifford = random_clifford(4, seed=2)
    qc = QuantumCircuit(4)
    lib.set_stabilizer(qc, StabilizerState(clifford))
    qc.h(2)
    qc.cx(2, 3)
    qc.save_stabilizer()
    qc.save_expectation_value(Pauli("ZZII"), range(4), label="e")
    qc.measure_all()
    ours, theirs = run(qc, shots=2000, seed_simulator=2), aer.run(qc, shots=2000, seed_simulator=2).result()
    assert ours.data()["stabilizer"] == theirs.data()["stabilizer"] and ours.data()["e"] == theirs.data()["e"]
    assert set(ours.get_counts()) == set(theirs.get_counts())


def test_a_set_state_on_reordered_qubits_is_placed_by_them():
    """Qiskit's semantics: the instruction's qubit j is qubits[j] (set_statevector did so already;
    Aer 0.18 takes the state in the circuit's order whatever the qubits)."""
    unitary = random_unitary(8, seed=4)
    qc = QuantumCircuit(3)
    qc.append(lib.SetUnitary(unitary), [2, 0, 1])
    qc.save_unitary()
    reference = QuantumCircuit(3)
    reference.unitary(unitary, [2, 0, 1])
    assert np.allclose(run(qc).get_unitary().data, Operator(reference).data, atol=1e-12)

    psi = random_statevector(8, seed=1)
    qc = QuantumCircuit(3)
    qc.append(lib.SetDensityMatrix(DensityMatrix(psi)), [1, 2, 0])
    qc.save_density_matrix()
    vector = QuantumCircuit(3)
    vector.append(lib.SetStatevector(psi), [1, 2, 0])
    vector.save_statevector()
    assert np.allclose(run(qc).data()["density_matrix"].data, DensityMatrix(run(vector).get_statevector()).data,
                       atol=1e-12)

    clifford = random_clifford(4, seed=2)
    qc = QuantumCircuit(4)
    qc.append(lib.SetStabilizer(clifford), [3, 1, 0, 2])
    qc.save_clifford()
    assert run(qc).data()["clifford"] == Clifford(QuantumCircuit(4).compose(clifford.to_circuit(), [3, 1, 0, 2]))

    qc = QuantumCircuit(2)
    qc.append(lib.SetSuperOp(_channel()), [1, 0])
    qc.save_superop()
    expected = SuperOp(np.eye(16)).compose(_channel(), qargs=[1, 0])
    assert np.allclose(run(qc).data()["superop"].data, expected.data, atol=1e-12)


def test_the_automatic_method_takes_the_method_of_the_state_as_aer():
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    for save, method in ((lib.save_unitary, "unitary"), (lib.save_superop, "superop")):
        qc = bell.copy()
        save(qc)
        assert run(qc).results[0].metadata["method"] == method
    qc = QuantumCircuit(2)
    lib.set_stabilizer(qc, Clifford(bell))
    qc.measure_all()
    result = run(qc, shots=100, seed_simulator=1)
    assert result.results[0].metadata["method"] == "stabilizer" and set(result.get_counts()) == {"00", "11"}


def test_a_set_state_outside_its_method_is_refused_naming_it():
    rho = random_density_matrix(4, seed=1)
    cases = []
    qc = QuantumCircuit(2)
    lib.set_density_matrix(qc, rho)
    cases.append((qc, "statevector", "set_density_matrix sets the state of method='density_matrix'"))
    qc = QuantumCircuit(2)
    lib.set_unitary(qc, random_unitary(4, seed=1))
    cases.append((qc, "density_matrix", "set_unitary sets the state of method='unitary'"))
    qc = QuantumCircuit(2)
    lib.set_stabilizer(qc, random_clifford(2, seed=1))
    qc.t(0)
    cases.append((qc, "automatic", "set_stabilizer needs a Clifford circuit"))
    qc = QuantumCircuit(2, 1)
    lib.set_density_matrix(qc, rho)
    qc.measure(0, 0)
    qc.h(0)
    cases.append((qc, "density_matrix", "set_density_matrix: the density matrix here runs circuits whose measurements"))
    qc = QuantumCircuit(2)
    lib.set_statevector(qc, [1, 0, 0, 0])
    lib.save_unitary(qc)
    cases.append((qc, "unitary", "set_statevector, or an initialize of every qubit, sets the state whatever it was, which is not unitary"))
    for circuit, method, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            run(circuit, method=method)


def test_states_that_are_not_what_they_say_are_refused():
    with pytest.raises(ValueError, match="square matrix"):
        lib.SetUnitary(np.eye(3))
    not_unitary = QuantumCircuit(1)
    not_unitary.append(lib.SetUnitary(np.array([[1, 1], [0, 1]])), [0])
    not_unitary.save_unitary()
    with pytest.raises(InvalidInputError, match="not unitary"):
        run(not_unitary)
    negative = QuantumCircuit(1)
    negative.append(lib.SetDensityMatrix(np.diag([1.5, -0.5])), [0])
    negative.save_density_matrix()
    with pytest.raises(InvalidInputError, match="not a density matrix"):
        run(negative)
    qobj = assemble_circuits([QuantumCircuit(2)], {"shots": 1, "seed_simulator": 1})
    qobj.experiments[0].instructions.append({"name": "set_unitary", "qubits": [0, 1], "params": [[[[1, 0]]]]})
    with pytest.raises(QobjValidationError, match=r"set_unitary needs every qubit and params \[\[4 rows"):
        qobj.validate()
    bad = {"destabilizer": ["+X"], "stabilizer": ["+X"]}  # X and X commute: not a tableau
    qobj = assemble_circuits([QuantumCircuit(1)], {"shots": 1, "seed_simulator": 1})
    qobj.experiments[0].instructions.append({"name": "set_stabilizer", "qubits": [0], "params": [bad]})
    qobj.validate()
    with pytest.raises(InvalidInputError, match="not a Clifford tableau"):
        to_program(qobj.experiments[0])
