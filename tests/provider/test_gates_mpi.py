"""Every instruction of Qiskit's standard library, on local and global qubits."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import DiagonalGate, UnitaryGate, get_standard_gate_name_mapping
from qiskit.quantum_info import Statevector, random_statevector, random_unitary

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS, RANKS_SMALL, assert_kernels, save_statevector, working_ranks

SKIP = {"measure", "reset", "delay", "barrier"}


def all_gates_circuit(n: int, seed: int) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n, global_phase=0.3)
    qc.h(range(n))
    for name, gate in sorted(get_standard_gate_name_mapping().items()):
        if name in SKIP:
            continue
        params = [float(x) for x in rng.uniform(-np.pi, np.pi, len(gate.params))]
        op = type(gate)(*params)
        if op.num_qubits == 0:
            qc.append(op, [])
            continue
        qubits = [int(q) for q in rng.permutation(n)[: op.num_qubits]]
        qc.append(op, qubits)
    qc.append(UnitaryGate(random_unitary(4, seed=seed)), [0, n - 1])
    qc.append(UnitaryGate(random_unitary(8, seed=seed + 1)), [n - 2, 1, n - 1])
    qc.append(DiagonalGate(list(np.exp(1j * rng.uniform(0, 6, 4)))), [n - 1, 2])
    qc.barrier()
    qc.delay(100, 0)
    return qc


def check_every_standard_gate_matches_statevector(comm, kernels):
    backend = AerMPISimulator(comm=comm, parallel_experiments=False)  # shard each circuit
    circuits = [all_gates_circuit(n, seed) for n, seed in [(6, 1), (7, 2), (9, 3)]]
    result = backend.run([save_statevector(c) for c in circuits], shots=1).result()
    assert_kernels(result, kernels)
    if comm.rank == 0:
        for i, circuit in enumerate(circuits):
            expected = Statevector(circuit.remove_final_measurements(inplace=False)).data
            got = np.asarray(result.get_statevector(i))
            # global phase included: compare amplitudes, not just fidelity
            np.testing.assert_allclose(got, expected, atol=1e-10)
    assert result.results[2].metadata["working_ranks"] == working_ranks(comm.size)  # 9 qubits: room for all


def multi_controlled_circuit(n: int, seed: int) -> QuantumCircuit:
    """Controlled gates of 4 or more qubits (run as their base and a diagonal), on local and global
    qubits, with every kind of base: X, diagonal, 1-3 qubit unitaries, open controls."""
    from qiskit.circuit.library import MCXGate, MCPhaseGate, RXGate, SXGate, YGate

    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n)
    # fresh qubits, a global one among them: prepared by a reflection, no reset
    qc.initialize(random_statevector(8, seed=seed).data, [n - 1, 0, 2])
    qc.h(range(3, n - 1))
    qc.ry(0.4, 1)
    gates = [MCXGate(3), MCXGate(n - 1, ctrl_state=int(rng.integers(1 << (n - 1)))), MCPhaseGate(0.7, n - 2),
             RXGate(1.1).control(3, ctrl_state="101"), YGate().control(4), SXGate().control(n - 2, ctrl_state=0),
             UnitaryGate(random_unitary(2, seed=seed)).control(5),
             UnitaryGate(random_unitary(4, seed=seed + 1)).control(2, ctrl_state=1),
             UnitaryGate(random_unitary(8, seed=seed + 2)).control(2)]
    for gate in gates:
        qc.append(gate, [int(q) for q in rng.permutation(n)[: gate.num_qubits]])
        qc.cx(n - 1, 0)
    qc.mcx(list(range(1, n)), 0)  # target low, controls up to the top (global) qubits
    qc.mcx(list(range(n - 1)), n - 1)  # target the top qubit
    return qc


def check_multi_controlled_gates_match_statevector(comm, kernels):
    backend = AerMPISimulator(comm=comm, parallel_experiments=False)
    circuits = [multi_controlled_circuit(n, seed) for n, seed in [(7, 4), (9, 5)]]
    result = backend.run([save_statevector(c) for c in circuits], shots=1).result()
    assert_kernels(result, kernels)
    if comm.rank == 0:
        for i, circuit in enumerate(circuits):
            np.testing.assert_allclose(np.asarray(result.get_statevector(i)), Statevector(circuit).data, atol=1e-10)
            # each as its base, a diagonal and the base's inverse basis: a few products per amplitude,
            # not the 2**n of a dense matrix
            assert result.results[i].metadata["plan"]["complex_products_per_amplitude"] < 20 * len(circuit.data)


def check_mid_circuit_measure_and_reset_on_global_qubits(comm, kernels):
    # qubit 5 is global at 2+ ranks (at most 5 local qubits)
    qc = QuantumCircuit(6, 2)
    qc.h(5)
    qc.measure(5, 0)  # collapses a global qubit
    qc.cx(5, 0)  # copies the outcome
    qc.reset(5)
    qc.x(4)
    qc.measure(0, 1)
    shots = 400
    # idle qubits 1-3 kept (enable_truncation=False), so the state has 6 qubits and is sharded
    result = AerMPISimulator(comm=comm, enable_truncation=False).run(qc, shots=shots, seed_simulator=3).result()
    assert_kernels(result, kernels)
    counts = result.get_counts()
    assert set(counts) <= {"00", "11"}  # the second measure copies the first
    assert abs(counts.get("11", 0) - shots / 2) < 5 * np.sqrt(shots) / 2
    assert result.results[0].metadata["dynamic"] is True
    assert result.results[0].metadata["working_ranks"] == working_ranks(comm.size)  # sharded: qubit 5 global


@pytest.mark.mpi(ranks=RANKS_SMALL, timeout=MPI_TIMEOUT)
def test_gates_at_every_rank_count(comm, kernels):
    """The checks above in one job per rank count and kernels (a job's start-up (every rank imports Qiskit and pytest) cost more than most of them); 8 ranks take the gates only."""
    check_every_standard_gate_matches_statevector(comm, kernels)
    check_multi_controlled_gates_match_statevector(comm, kernels)
    if comm.size in RANKS:
        check_mid_circuit_measure_and_reset_on_global_qubits(comm, kernels)
