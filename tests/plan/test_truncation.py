"""Idle-qubit truncation (plan/truncate.py): a pure Program -> Program map."""

import numpy as np

from aer_mpi import ir
from aer_mpi.plan.truncate import truncate, used_qubits

X = np.array([[0, 1], [1, 0]], dtype=complex)


def test_unused_qubits_are_dropped_and_the_rest_renumbered():
    ops = (
        ir.Gate((5,), X, "x"),
        ir.Swap(5, 9),
        ir.IfElse(ir.Condition((0,), 1), (ir.Reset(12),), (ir.Diagonal((9,), np.ones(2)),)),
        ir.WhileLoop(ir.Condition((1,), 0), (ir.Measure(12, 1),)),
        ir.Switch(("bits", (0,)), ((None, (ir.Gate((2, 5), np.eye(4), "u"),)),)),
        ir.Save("probabilities", (9, 2), "p"),
        ir.Measure(5, 0),
        ir.GlobalPhase(0.3),
    )
    program = ir.Program(20, 2, ops)
    assert used_qubits(program.ops) == {2, 5, 9, 12}
    out = truncate(program)
    assert out.num_qubits == 4 and out.num_clbits == 2
    assert out.metadata["active_input_qubits"] == [2, 5, 9, 12]
    assert out.metadata["input_qubit_map"] == [[12, 3], [9, 2], [5, 1], [2, 0]]  # Aer's order
    assert out.ops[0].qubits == (1,)
    assert (out.ops[1].qubit0, out.ops[1].qubit1) == (1, 2)
    assert out.ops[2].true_ops[0].qubit == 3 and out.ops[2].false_ops[0].qubits == (2,)
    assert out.ops[3].body[0] == ir.Measure(3, 1)  # the clbit keeps its index
    assert out.ops[4].cases[0][1][0].qubits == (0, 1)
    assert out.ops[5].qubits == (2, 0)
    assert out.ops[6] == ir.Measure(1, 0)
    assert out.ops[7] == ir.GlobalPhase(0.3)


def test_a_program_using_every_qubit_is_unchanged():
    program = ir.Program(3, 0, (ir.Gate((0,), X), ir.Save("statevector", (0, 1, 2), "sv")))
    out = truncate(program)
    assert out.num_qubits == 3 and out.ops == program.ops
    assert out.metadata["active_input_qubits"] == [0, 1, 2]


def test_an_empty_program_keeps_one_qubit():
    out = truncate(ir.Program(4, 1, ()))
    assert out.num_qubits == 1 and out.metadata["active_input_qubits"] == [0]


def test_noise_and_its_branches_are_renumbered():
    """A sampled error's qubits and the gates of its branches follow the qubits they act on."""
    flip = ir.Noise((7,), (0.9, 0.1), ((), (ir.Gate((7,), X, "x"),)))
    program = ir.Program(8, 1, (ir.Gate((7,), X, "x"), flip, ir.Measure(7, 0)))
    out = truncate(program)
    assert out.num_qubits == 1
    noise = out.ops[1]
    assert noise.qubits == (0,) and noise.branches[1][0].qubits == (0,) and noise.probabilities == (0.9, 0.1)
