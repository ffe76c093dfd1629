"""The backend end to end at 1, 2, 4 and 8 ranks, against Qiskit's Statevector."""

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS, RANKS_ODD, RANKS_SMALL, assert_kernels, fidelity, save_statevector, working_ranks


def _random_circuits(seed0: int, count: int, qubit_range=(3, 16)):
    rng = np.random.default_rng(seed0)
    for i in range(count):
        n = int(rng.integers(qubit_range[0], qubit_range[1] + 1))
        depth = int(rng.integers(3, 10))
        yield random_circuit(n, depth, max_operands=3, seed=seed0 + i)


def check_random_circuits_match_statevector(comm, kernels):
    # min_local_qubits=2 shards even small circuits, so exchanges happen often;
    # parallel_experiments=False keeps the batch from running them whole, one per rank.
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    circuits = list(_random_circuits(11, 24))
    result = backend.run([save_statevector(c) for c in circuits], shots=1).result()
    assert_kernels(result, kernels)
    if comm.rank == 0:
        for i, circuit in enumerate(circuits):
            expected = Statevector(circuit).data
            got = np.asarray(result.get_statevector(i))
            assert fidelity(expected, got) > 1 - 1e-9, (i, circuit.num_qubits)
    meta = result.results[-1].metadata
    assert meta["ranks"] == comm.size
    # the exchanges' time, and of it the waits for chunks on their way (the rest is packing)
    assert 0 <= meta["time_exchange_waiting"] <= meta["time_exchange"] <= meta["time_communication"]
    assert (meta["time_exchange"] > 0) == (meta["exchanges"] > 0) == (meta["working_ranks"] > 1)


def check_default_sharding_and_tiny_circuits(comm):
    backend = AerMPISimulator(comm=comm, parallel_experiments=False)
    tiny = QuantumCircuit(2)
    tiny.h(0)
    tiny.cx(0, 1)
    wide = random_circuit(12, 6, max_operands=3, seed=5)
    result = backend.run([save_statevector(tiny), save_statevector(wide)], shots=1).result()
    tiny_meta, wide_meta = result.results[0].metadata, result.results[1].metadata
    # a 2-qubit circuit is too small to shard: it runs on one rank
    assert tiny_meta["working_ranks"] == 1
    working = working_ranks(comm.size)
    assert wide_meta["working_ranks"] == working
    assert wide_meta["qubits_per_shard"] == 12 - (working.bit_length() - 1)
    if comm.rank == 0:
        assert fidelity(Statevector(tiny).data, result.get_statevector(0)) > 1 - 1e-12
        assert fidelity(Statevector(wide).data, result.get_statevector(1)) > 1 - 1e-9


def check_counts_match_probabilities_and_seed_is_rank_independent(comm, kernels):
    circuit = random_circuit(8, 6, max_operands=2, seed=42)
    circuit.measure_all()
    shots = 20000
    backend = AerMPISimulator(comm=comm, min_local_qubits=2)
    result = backend.run(circuit, shots=shots, seed_simulator=99, memory=True).result()
    assert_kernels(result, kernels)
    counts = result.get_counts()
    assert sum(counts.values()) == shots
    probs = Statevector(circuit.remove_final_measurements(inplace=False)).probabilities_dict()
    # total variation distance within sampling noise (256 outcomes, 20000 shots)
    tvd = 0.5 * sum(abs(counts.get(k, 0) / shots - probs.get(k, 0.0)) for k in set(counts) | set(probs))
    assert tvd < 0.05
    memory = result.get_memory()
    assert len(memory) == shots and all(len(m) == 8 for m in memory)
    # the same seed on one rank alone gives identical counts and memory
    single = AerMPISimulator(comm=MPI.COMM_SELF, min_local_qubits=2)
    alone = single.run(circuit, shots=shots, seed_simulator=99, memory=True).result()
    assert_kernels(alone, kernels)
    assert alone.get_counts() == counts
    assert alone.get_memory() == memory


def check_counts_keys_follow_registers_like_aer(comm):
    from qiskit import ClassicalRegister, QuantumRegister

    q = QuantumRegister(6, "q")
    a, b = ClassicalRegister(2, "a"), ClassicalRegister(3, "b")
    circuit = QuantumCircuit(q, a, b)
    circuit.x([0, 3, 5])
    circuit.measure([0, 1], a)
    circuit.measure([3, 4, 5], b)
    result = AerMPISimulator(comm=comm, min_local_qubits=2).run(circuit, shots=10, seed_simulator=1).result()
    assert result.get_counts() == {"101 01": 10}


def check_transpile_keeps_circuits_and_single_precision(comm, kernels):
    backend = AerMPISimulator(comm=comm, min_local_qubits=2)
    circuit = random_circuit(9, 8, max_operands=3, seed=8)
    assert dict(transpile(circuit, backend, optimization_level=0).count_ops()) == dict(circuit.count_ops())
    result = backend.run(save_statevector(circuit), shots=1, precision="single").result()
    assert_kernels(result, kernels)
    if comm.rank == 0:
        vector = np.asarray(result.get_statevector())
        assert result.results[0].metadata["precision"] == "single"
        assert fidelity(Statevector(circuit).data, vector) > 1 - 1e-5


@pytest.mark.mpi(ranks=RANKS_SMALL, timeout=MPI_TIMEOUT)
def test_backend_end_to_end(comm, kernels):
    """The checks above, in one job per rank count and kernels (a job's start-up, every rank importing
    Qiskit and pytest, cost more than most of them); the 8-rank job takes the statevector ones."""
    check_random_circuits_match_statevector(comm, kernels)
    check_default_sharding_and_tiny_circuits(comm)
    if comm.size in RANKS:
        check_counts_match_probabilities_and_seed_is_rank_independent(comm, kernels)
        check_counts_keys_follow_registers_like_aer(comm)
        check_transpile_keeps_circuits_and_single_precision(comm, kernels)


@pytest.mark.mpi(ranks=RANKS_ODD, timeout=MPI_TIMEOUT)
def test_rank_count_not_a_power_of_two_idles_the_extra_ranks(comm):
    circuit = random_circuit(10, 6, max_operands=3, seed=21)
    measured = circuit.copy()
    measured.measure_all()
    backend = AerMPISimulator(comm=comm)
    result = backend.run([save_statevector(circuit), measured], shots=500, seed_simulator=4).result()
    meta = result.results[0].metadata
    working = working_ranks(comm.size)
    assert working < comm.size  # RANKS_ODD: what this test is about
    assert meta["working_ranks"] == working
    assert meta["idle_ranks"] == comm.size - working
    assert f"{comm.size - working} idle" in meta["note"]
    if comm.rank == 0:
        assert fidelity(Statevector(circuit).data, result.get_statevector(0)) > 1 - 1e-9
    # idle ranks get the same counts as the working ones, and as one rank alone
    alone = AerMPISimulator(comm=MPI.COMM_SELF).run([circuit, measured], shots=500, seed_simulator=4).result()
    assert result.get_counts(1) == alone.get_counts(1)


@pytest.mark.mpi(ranks=[2, 3, 4], timeout=MPI_TIMEOUT)
def test_the_scripts_own_collectives_while_a_job_runs_never_meet_the_jobs(comm):
    """A job runs in a thread; a script that meanwhile gathers on the same communicator (here, the
    job's status, as an SPMD script that watches its job would) must not be matched with the job's
    own collectives. Before the jobs had their own duplicate, MPICH aborted ("Message truncated")."""
    qc = QuantumCircuit(14, 14)
    for layer in range(60):
        for q in range(14):
            qc.rx(0.1 + 0.01 * layer, q)
        for q in range(layer % 2, 13, 2):
            qc.cx(q, q + 1)
    qc.measure(range(14), range(14))
    backend = AerMPISimulator(comm=comm, kernels="numpy")
    job = backend.run([qc] * 3, shots=200, seed_simulator=5)
    rounds = 0
    while True:
        states = comm.allgather(job.status().name)
        comm.Barrier()
        rounds += 1
        if all(s in ("DONE", "ERROR", "CANCELLED") for s in states):
            break
    result = job.result(timeout=MPI_TIMEOUT)
    assert result.success and rounds >= 1
    counts = result.get_counts()
    assert all(c == counts for c in comm.allgather(counts))
