"""Fusion end to end at 1, 2 and 4 ranks, with both kernel back ends."""

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit
from qiskit.circuit.library import quantum_volume
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector
from qiskit.synthesis import synth_qft_full

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS, assert_kernels, fidelity, save_statevector, working_ranks

FUSED = dict(fusion_enable=True, fusion_threshold=1, min_local_qubits=2)


def _circuits():
    qft = QuantumCircuit(9)
    qft.h(range(9))
    qft.compose(synth_qft_full(9), inplace=True)
    return [qft, quantum_volume(8, 6, seed=3), random_circuit(10, 8, max_operands=3, seed=30)]


def check_fused_circuits_match_statevector_one_rank_and_double_precision(comm, kernels):
    circuits = _circuits()
    backend = AerMPISimulator(comm=comm, **FUSED)
    result = backend.run([save_statevector(c) for c in circuits], shots=1).result()
    assert_kernels(result, kernels)
    for i, circuit in enumerate(circuits):
        meta = result.results[i].metadata
        assert meta["fusion"]["enabled"] and meta["fusion"]["ops_out"] < meta["fusion"]["ops_in"]
        if comm.rank == 0:
            got = np.asarray(result.get_statevector(i))
            assert fidelity(Statevector(circuit).data, got) > 1 - 1e-9, i

    # the same seed gives bit-identical shots on this many ranks and on one
    for c in circuits:
        c.measure_all()
    options = dict(shots=4000, seed_simulator=123, memory=True)
    here = AerMPISimulator(comm=comm, **FUSED).run(circuits, **options).result()
    alone = AerMPISimulator(comm=MPI.COMM_SELF, **FUSED).run(circuits, **options).result()
    assert_kernels(here, kernels)
    assert_kernels(alone, kernels)
    unfused = AerMPISimulator(comm=MPI.COMM_SELF, min_local_qubits=2, fusion_enable=False)
    reference = unfused.run(circuits, **options).result()
    for i in range(len(circuits)):
        assert here.get_memory(i) == alone.get_memory(i)
        # fusion changes rounding only: the distributions agree
        a, b = here.get_counts(i), reference.get_counts(i)
        tvd = 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / 4000
        assert tvd < 0.1

    # single precision (fused: wide matrices rounded to complex64) stays close to double
    circuit = quantum_volume(10, 6, seed=8)
    single = backend.run(save_statevector(circuit), shots=1, precision="single").result()
    double = backend.run(save_statevector(circuit), shots=1, precision="double").result()
    assert single.results[0].metadata["precision"] == "single"
    assert_kernels(single, kernels)
    if comm.rank == 0:
        a = np.asarray(single.get_statevector())
        b = np.asarray(double.get_statevector())
        assert fidelity(a, b) > 1 - 1e-6
        np.testing.assert_allclose(np.abs(a) ** 2, np.abs(b) ** 2, atol=1e-6)


def check_small_circuits_run_whole_in_parallel_and_match_one_rank(comm):
    circuits = [random_circuit(n, 6, max_operands=2, seed=40 + n, measure=True) for n in (3, 4, 5, 6, 7)]
    big = random_circuit(14, 4, max_operands=2, seed=50)
    big.measure_all()
    batch = circuits + [big]
    options = dict(shots=500, seed_simulator=9, memory=True)
    here = AerMPISimulator(comm=comm).run(batch, **options).result()
    alone = AerMPISimulator(comm=MPI.COMM_SELF).run(batch, **options).result()
    for i in range(len(batch)):
        assert here.get_memory(i) == alone.get_memory(i), i
    meta = [r.metadata for r in here.results]
    if comm.size > 1:
        assert all(m["parallel_experiments"] == comm.size for m in meta[:-1])
        assert {m["experiment_rank"] for m in meta[:-1]} == set(range(min(comm.size, 5)))
        assert "parallel_experiments" not in meta[-1] and meta[-1]["working_ranks"] == working_ranks(comm.size)
    else:
        assert not any("parallel_experiments" in m for m in meta)
    off = AerMPISimulator(comm=comm, parallel_experiments=False).run(circuits[:2], shots=10).result()
    assert not any("parallel_experiments" in r.metadata for r in off.results)


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_fusion_at_every_rank_count(comm, kernels):
    """The checks above in one job per rank count and kernels (a job's start-up (every rank imports Qiskit and pytest) cost more than most of them)."""
    check_fused_circuits_match_statevector_one_rank_and_double_precision(comm, kernels)
    if kernels == "numpy":  # it takes no kernels: in a job of its own it ran numpy's
        check_small_circuits_run_whole_in_parallel_and_match_one_rank(comm)
