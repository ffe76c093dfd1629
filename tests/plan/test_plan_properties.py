"""Property test: any sequence of gates, any shard count, the plan is exact."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import Statevector

from aer_mpi.plan import plan_program
from conftest import fidelity
from test_plan import emulate, program_of

GATES = sorted(
    (name, gate)
    for name, gate in get_standard_gate_name_mapping().items()
    if name not in {"measure", "reset", "delay", "barrier", "global_phase"} and gate.num_qubits <= 3
)


@st.composite
def circuits(draw):
    n = draw(st.integers(3, 7))
    qc = QuantumCircuit(n)
    for _ in range(draw(st.integers(1, 25))):
        name, gate = draw(st.sampled_from(GATES))
        if gate.num_qubits > n:
            continue
        qubits = draw(st.permutations(range(n)))[: gate.num_qubits]
        params = [draw(st.floats(-np.pi, np.pi)) for _ in gate.params]
        qc.append(type(gate)(*params), qubits)
    return qc


@settings(max_examples=60, deadline=None)
@given(circuit=circuits(), global_qubits=st.integers(0, 3))
def test_plan_is_exact_for_any_circuit_and_shard_count(circuit, global_qubits):
    n = circuit.num_qubits
    num_local = max(3, n - global_qubits)
    plan = plan_program(program_of(circuit), num_local)
    assert fidelity(Statevector(circuit).data, emulate(plan, n)) > 1 - 1e-10
