"""Shot branching of ideal dynamic circuits: gates fused between splits (through if/else and switch),
final measurements sampled at once, restore and collapse in one pass. Against Aer, the same with and
without fusion, and the same at any rank count (MQT Bench's dynamic QFT and dynamic GHZ, small)."""

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit.classical import expr

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS, assert_kernels


def dynamic_qft(n: int) -> QuantumCircuit:
    """MQT Bench's dynamic_qft (semiclassical QFT) on an entangled, uneven input."""
    q, meas = QuantumRegister(n, "q"), ClassicalRegister(n, "meas")
    qc = QuantumCircuit(q, meas, name="dynamic_qft")
    for i in range(n):
        qc.ry(0.3 + 0.4 * i, i)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    for qubit in reversed(range(n)):
        for source in reversed(range(qubit + 1, n)):
            with qc.if_test((meas[n - source - 1], 1)):
                qc.p(np.pi * 2.0 ** (qubit - source), q[qubit])
        qc.h(q[qubit])
        qc.measure(q[qubit], meas[n - qubit - 1])
    return qc


def ghz_dynamic(n: int) -> QuantumCircuit:
    """MQT Bench's ghz_dynamic (parity measurements, XOR-conditioned corrections), with a switch."""
    q, final = QuantumRegister(n, "q"), ClassicalRegister(n, "final")
    mid = ClassicalRegister(n // 2, "mid")
    qc = QuantumCircuit(q, final, mid, name="ghz_dynamic")
    qc.h(range(0, n, 2))
    for i in range(0, n, 2):
        if i - 1 >= 0:
            qc.cx(i, i - 1)
        if i + 1 < n - 1:
            qc.cx(i, i + 1)
    for clbit, qubit in zip(mid, range(1, n, 2)):
        qc.measure(qubit, clbit)
        with qc.if_test((clbit, 1)):
            qc.x(qubit)
    condition = mid[0]
    for i in range(2, n, 2):
        with qc.if_test(expr.equal(condition, True)):
            qc.x(i)
        if i // 2 < len(mid):
            condition = expr.bit_xor(condition, mid[i // 2])
    for i in range(0, n - 1, 2):
        qc.cx(i, i + 1)
    with qc.switch(mid) as case:  # a phase per pattern: the counts do not change
        with case(0, 3):
            qc.rz(0.7, 0)
        with case(case.DEFAULT):
            qc.t(1)
    qc.measure(q, final)
    return qc


def _tvd(counts: dict, reference: dict) -> float:
    shots, total = sum(counts.values()), sum(reference.values())
    return 0.5 * sum(abs(counts.get(k, 0) / shots - reference.get(k, 0) / total) for k in set(counts) | set(reference))


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_fused_branching_matches_aer_and_rank_counts(comm):
    # numba kernels (the numpy ones are exercised by test_semantics_mpi's dynamic circuits, and the
    # measurement kernels of both are compared in tests/kernels/test_numba_kernels.py)
    pytest.importorskip("numba")
    kernels = "numba"
    circuits = [dynamic_qft(4), ghz_dynamic(6)]
    options = dict(shots=2000, seed_simulator=11, memory=True, kernels=kernels)
    fused = dict(fusion_threshold=1, min_local_qubits=2, parallel_experiments=False)
    here = AerMPISimulator(comm=comm, **fused).run(circuits, **options).result()
    assert_kernels(here, kernels)
    alone = AerMPISimulator(comm=MPI.COMM_SELF, **fused).run(circuits, **options).result()
    unfused = AerMPISimulator(comm=MPI.COMM_SELF, fusion_enable=False, min_local_qubits=2).run(
        circuits, **options).result()
    references = None
    if comm.rank == 0:
        from qiskit_aer import AerSimulator

        aer = AerSimulator(method="statevector")
        references = [aer.run(c, shots=20000, seed_simulator=5).result().get_counts() for c in circuits]
    references = comm.bcast(references, root=0)
    for i, circuit in enumerate(circuits):
        assert here.get_memory(i) == alone.get_memory(i) == unfused.get_memory(i), circuit.name
        counts = here.get_counts(i)
        assert _tvd(counts, references[i]) < 0.06, (circuit.name, counts, references[i])
        stats = here.results[i].metadata["branching"]
        assert stats["measure_splits"] > 0 and stats["groups_finished"] > 1, stats
        assert alone.results[i].metadata["branching"]["fused_ops"] < stats["gates_gathered"], stats
    ghz = here.results[1].metadata["branching"]
    assert ghz["final_measurements_sampled"] == ghz["groups_finished"], ghz  # the final measurements, at once
    for key, value in here.get_counts(1).items():  # the final register is a GHZ state: all equal
        assert key.split(" ")[1] in ("000000", "111111"), (key, value)
