"""Aer's zero_threshold: entries at or below it are left out of saved dicts, as Aer leaves them out."""

import numpy as np
import pytest
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS

pytest.importorskip("qiskit_aer")


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_zero_threshold_chops_saved_dicts_as_aer(comm):
    from qiskit_aer import AerSimulator

    qc = QuantumCircuit(4)
    qc.ry(2 * np.arcsin(1e-3), 0)  # amplitudes ~1e-3, probabilities ~1e-6 on qubit 0 = 1
    qc.h(3)  # a rank-bit qubit at 2 and 4 ranks (min_local_qubits=2)
    qc.save_statevector_dict(label="sv")
    qc.save_probabilities_dict(label="p")
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    for threshold in (1e-10, 1e-5):
        mine = backend.run(qc, zero_threshold=threshold).result().data(0)
        aer = AerSimulator(zero_threshold=threshold).run(qc).result().data(0)
        assert sorted(mine["p"]) == sorted(aer["p"]), threshold
        assert sorted(mine["sv"]) == sorted(aer["sv"]) if comm.rank == 0 else True
    assert len(backend.run(qc, zero_threshold=1e-5).result().data(0)["p"]) == 2
