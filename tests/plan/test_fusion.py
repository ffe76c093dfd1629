"""Gate fusion and the planner, without MPI: fused programs against Operator."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import UnitaryGate, quantum_volume
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Operator
from qiskit.synthesis import synth_qft_full

from aer_mpi import ir
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.plan import plan_program
from aer_mpi.plan.fusion import FusionOptions, fuse, fused_matrix
from aer_mpi.plan.localiser import flipped_qubits, naive_exchange_count
from aer_mpi.qobj.translate import to_program


def program_of(circuit) -> ir.Program:
    qobj = assemble_circuits([circuit], {"shots": 1, "seed_simulator": 1})
    return to_program(qobj.experiments[0])


def operator_of(program: ir.Program) -> Operator:
    qc = QuantumCircuit(program.num_qubits)
    for op in program.ops:
        if isinstance(op, ir.Gate):
            qc.append(UnitaryGate(op.matrix, check_input=False), list(op.qubits))
        elif isinstance(op, ir.Diagonal):
            qc.append(UnitaryGate(np.diag(op.diag), check_input=False), list(op.qubits))
        elif isinstance(op, ir.Swap):
            qc.swap(op.qubit0, op.qubit1)
        elif isinstance(op, ir.GlobalPhase):
            qc.global_phase += op.phase
        else:
            raise AssertionError(f"unexpected op {op!r}")
    return Operator(qc)


@pytest.mark.parametrize("max_qubits", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", range(8))
def test_fused_random_circuits_match_operator(seed, max_qubits):
    circuit = random_circuit(6, 12, max_operands=3, seed=seed)
    program = program_of(circuit)
    options = FusionOptions(max_qubits=max_qubits, max_diagonal_qubits=max(max_qubits, 4), threshold=1)
    fused, stats = fuse(program, options)
    assert stats.ops_out == len(fused.ops) <= len(program.ops)
    widths = [len(op.qubits) for op in fused.ops if isinstance(op, ir.Gate) and op.name.startswith("fused")]
    assert max(widths, default=0) <= max_qubits
    assert operator_of(fused).equiv(Operator(circuit), atol=1e-10)


def test_fusion_merges_and_reduces_passes():
    circuit = QuantumCircuit(3)
    for _ in range(4):
        circuit.h(0)
        circuit.cx(0, 1)
        circuit.rz(0.3, 1)
    circuit.cp(0.1, 0, 2)
    circuit.rzz(0.2, 1, 2)
    circuit.t(2)
    fused, stats = fuse(program_of(circuit), FusionOptions(max_qubits=2, threshold=1))
    assert stats.fused_gates >= 1 and stats.fused_diagonals >= 1
    # the trailing diagonals become one diagonal op
    assert isinstance(fused.ops[-1], ir.Diagonal) and set(fused.ops[-1].qubits) == {0, 1, 2}
    assert operator_of(fused).equiv(Operator(circuit), atol=1e-10)


def test_qft_fusion_matches_and_keeps_measurements():
    circuit = synth_qft_full(7)
    circuit.measure_all()
    program = program_of(circuit)
    fused, stats = fuse(program, FusionOptions(threshold=1))
    assert stats.ops_out < stats.ops_in
    assert [op for op in fused.ops if isinstance(op, ir.Measure)] == [
        op for op in program.ops if isinstance(op, ir.Measure)
    ]
    unitary = ir.Program(7, 0, tuple(op for op in fused.ops if not isinstance(op, ir.Measure)))
    assert operator_of(unitary).equiv(Operator(synth_qft_full(7)), atol=1e-10)


def _bricks() -> QuantumCircuit:
    """Random 2-qubit unitaries on (0,1) and (2,3), then one on (1,2) that joins them."""
    circuit = QuantumCircuit(4)
    for seed, pair in enumerate([(0, 1), (2, 3), (1, 2)]):
        circuit.append(UnitaryGate(Operator(random_circuit(2, 3, seed=seed)).data), list(pair))
    return circuit


def test_in_stages_a_gate_costs_its_arithmetic_so_fusion_stays_narrow():
    """One pass per gate: wide fused gates save passes. In a cache-blocked stage a k-qubit gate
    costs 2**k products per amplitude, so three 2-qubit gates stay three ops; a program wider
    than the chunk pays per op too (the cache tier), but not enough to make them one 4-qubit
    gate, which takes 16 products per amplitude against their 12 (measured slower on an AVX2
    machine: docs/performance.md)."""
    circuit = _bricks()
    widths = {}
    for name, options in {"passes": FusionOptions(threshold=1, staged=False),
                          "stages": FusionOptions(threshold=1, staged=True),
                          "cache tier": FusionOptions(threshold=1, staged=True, wider_than_cache=True)}.items():
        fused, _ = fuse(program_of(circuit), options)
        widths[name] = sorted(len(op.qubits) for op in fused.ops)
        assert operator_of(fused).equiv(Operator(circuit), atol=1e-10)
    assert widths == {"passes": [4], "stages": [2, 2, 2], "cache tier": [2, 2, 2]}


def test_disabled_and_threshold_leave_program_alone():
    program = program_of(random_circuit(5, 5, seed=3))
    assert fuse(program, FusionOptions(enabled=False))[0] is program
    assert fuse(program, FusionOptions(threshold=6))[0] is program


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="max_qubits=11: expecting 1 to 10"):
        fuse(program_of(random_circuit(3, 2, seed=1)), FusionOptions(max_qubits=11))


def test_fused_matrix_keeps_controls_exact():
    # H then CP: the result never flips qubit 1, exactly (no 1e-17 entries)
    ops = [ir.Gate((0,), np.array([[1, 1], [1, -1]]) / np.sqrt(2)), ir.Diagonal((0, 1), np.array([1, 1, 1, 1j]))]
    matrix = fused_matrix((0, 1), ops)
    assert flipped_qubits(ir.Gate((0, 1), matrix)) == (0,)
    assert np.count_nonzero(matrix) == 8


@pytest.mark.parametrize("kind", ["qft", "qv"])
@pytest.mark.parametrize("num_global", [1, 2, 3])
def test_planner_exchanges_below_naive(kind, num_global):
    n = 12
    if kind == "qft":
        circuit = QuantumCircuit(n)
        circuit.h(range(n))
        circuit.compose(synth_qft_full(n), inplace=True)
    else:
        circuit = quantum_volume(n, 10, seed=5)
    program = program_of(circuit)
    naive = naive_exchange_count(program, n - num_global)
    fused = fuse(program, FusionOptions(threshold=1))[0]
    for candidate in (program, fused):
        plan = plan_program(candidate, n - num_global)
        assert plan.stats["exchanges"] <= naive
    assert plan_program(fused, n - num_global).stats["exchanges"] < naive


def test_bindings_of_one_circuit_reuse_the_schedule_and_fuse_as_afresh():
    """The schedule (which ops fuse) is kept by structure; each binding's matrices are rebuilt, so a
    reused schedule gives exactly what fusing afresh gives, including a block that one binding makes
    diagonal (ry(0) is the identity)."""
    from aer_mpi.plan import fusion
    from qiskit.circuit import ParameterVector

    theta = ParameterVector("t", 8)
    qc = QuantumCircuit(4, 4)
    for q in range(4):
        qc.ry(theta[q], q)
        qc.rz(theta[4 + q], q)
    for q in range(3):
        qc.cx(q, q + 1)
    qc.measure(range(4), range(4))
    options = FusionOptions(threshold=1)
    first = [0.3, 1.1, -0.4, 2.0, 0.5, 0.6, 0.7, 0.8]
    # the same structure as the first binding; then one whose ry(0) are diagonals (another structure)
    for values, kept in (([1.0, 0.2, 2.0, 0.1, 0.1, 0.2, 0.3, 0.4], 1), ([0.0] * 8, 2)):
        fusion._SCHEDULES.clear()
        fuse(program_of(qc.assign_parameters(first)), options)  # records the first binding's schedule
        program = program_of(qc.assign_parameters(values))
        reused, stats = fuse(program, options)
        assert len(fusion._SCHEDULES) == kept
        fusion._SCHEDULES.clear()
        fresh, fresh_stats = fuse(program, options)
        assert stats == fresh_stats
        assert [type(op) for op in reused.ops] == [type(op) for op in fresh.ops]
        for a, b in zip(reused.ops, fresh.ops):
            for field_name in ("matrix", "diag"):
                if hasattr(a, field_name):
                    assert np.array_equal(getattr(a, field_name), getattr(b, field_name))
            assert getattr(a, "qubits", None) == getattr(b, "qubits", None)
        unitary = ir.Program(4, 0, tuple(op for op in reused.ops if not isinstance(op, ir.Measure)), "x")
        expected = qc.remove_final_measurements(inplace=False).assign_parameters(values)
        assert operator_of(unitary).equiv(Operator(expected), atol=1e-10)
