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
