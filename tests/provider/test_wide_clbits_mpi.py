"""Classical registers wider than 63 clbits (hardening, issue 13): counts, memory and conditions.

Clbit values are int64 up to 63 clbits; wider registers are Python ints
(``engine.sampling.clbit_dtype``). Compared with Aer at 1 and 2 ranks,
``min_local_qubits=2`` so that the measured qubits are global at 2 ranks too.
"""

import pytest
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT

WIDE_RANKS = [1, 2]


def wide_circuits():
    static = QuantumCircuit(4, 70, name="static70")
    static.x(1)
    static.h(3)
    static.measure(0, 0)
    static.measure(1, 63)
    static.measure(2, 64)
    static.measure(3, 69)
    dynamic = QuantumCircuit(4, 70, name="dynamic70")
    dynamic.x(0)
    dynamic.h(2)
    for clbit in range(70):  # >63 measured bits, mid-circuit
        dynamic.measure(clbit % 3, clbit)
    with dynamic.if_test((dynamic.clbits[66], 1)):  # clbit 66 = qubit 0 = 1
        dynamic.x(3)
    with dynamic.if_test((dynamic.clbits[68], 1)):  # qubit 2, random
        dynamic.x(1)
    dynamic.measure(3, 65)
    dynamic.measure(1, 67)
    return [static, dynamic]


@pytest.mark.mpi(ranks=WIDE_RANKS, timeout=MPI_TIMEOUT)
def test_seventy_clbits_match_aer(comm):
    from qiskit_aer import AerSimulator

    circuits = wide_circuits()
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    result = backend.run(circuits, shots=400, seed_simulator=5, memory=True).result()
    aer = AerSimulator(method="statevector").run(circuits, shots=400, seed_simulator=5, memory=True).result()
    for i in range(len(circuits)):
        ours, theirs = result.get_counts(i), aer.get_counts(i)
        assert set(ours) == set(theirs), (circuits[i].name, ours, theirs)
        assert all(len(key) == 70 for key in ours)
        assert sum(ours.values()) == 400
        memory = result.get_memory(i)
        assert len(memory) == 400 and set(memory) == set(theirs)
        # the same register values as Aer's hex keys (Aer zero-pads its lower 64-bit words)
        assert {int(k, 16) for k in result.results[i].data.counts} == {
            int(k, 16) for k in aer.results[i].data.counts
        }
    # each random bit is fair
    for i, bit in ((0, 69), (1, 68)):
        ones = sum(v for k, v in result.get_counts(i).items() if k[69 - bit] == "1")
        assert 120 < ones < 280


def test_int64_fast_path_kept_for_narrow_registers():
    import numpy as np

    from aer_mpi.engine.sampling import clbit_dtype, clbit_values

    outcomes = np.array([0, 1, 2, 3], dtype=np.int64)
    assert clbit_values(outcomes, [(0, 62), (1, 0)]).dtype == np.int64
    assert clbit_dtype(63) == np.int64 and clbit_dtype(64) == object
    wide = clbit_values(outcomes, [(0, 100), (1, 0)])
    assert wide.dtype == object and list(wide) == [0, 1 << 100, 1, (1 << 100) | 1]
