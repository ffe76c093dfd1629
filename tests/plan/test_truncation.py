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


def test_qubits_that_never_meet_a_read_qubit_are_left_out_with_their_ops():
    """Aer's truncation: gates, errors and resets on qubits that no measurement or save reads, and that
    no op on several qubits joins to one, cannot change the results (Aer's test_truncate)."""
    CX = np.eye(4)[[0, 1, 3, 2]].astype(complex)
    flip = ir.Noise((3,), (0.9, 0.1), ((), (ir.Gate((3,), X, "x"),)))
    ops = (
        ir.Gate((1,), X, "x"),
        ir.Gate((2,), X, "x"),          # 2 and 3: a pair of their own, never read
        ir.Gate((2, 3), CX, "cx"),
        flip,
        ir.Reset(4),                     # 4: only reset
        ir.Gate((0, 5), CX, "cx"),       # 5 joins 0, which is measured: kept
        ir.IfElse(ir.Condition((0,), 1), (ir.Gate((3,), X, "x"),), (ir.Gate((1,), X, "x"),)),
        ir.Save("expectation_value", (6,), "z", params=None),
        ir.Measure(0, 0),
        ir.Measure(1, 1),
        ir.GlobalPhase(0.1),
    )
    out = truncate(ir.Program(8, 2, ops))
    assert out.metadata["active_input_qubits"] == [0, 1, 5, 6]
    assert out.num_qubits == 4
    assert out.ops[0].qubits == (1,) and out.ops[0].name == "x"
    assert out.ops[1].qubits == (0, 2)  # the cx of 0 and 5
    assert out.ops[2].true_ops == () and out.ops[2].false_ops[0].qubits == (1,)  # the if stays, its x on 3 goes
    assert out.ops[3].qubits == (3,) and out.ops[-1] == ir.GlobalPhase(0.1)
    assert len(out.ops) == 7

    # an error on a read and an unread qubit joins them: both stay, with the gates before it
    joined = ir.Noise((1, 3), (1.0,), ((),))
    out = truncate(ir.Program(4, 1, (ir.Gate((3,), X, "x"), joined, ir.Measure(1, 0))))
    assert out.metadata["active_input_qubits"] == [1, 3] and out.ops[0].qubits == (1,)


def test_a_read_of_every_qubit_at_the_end_keeps_every_qubit():
    program = ir.Program(3, 3, (ir.Gate((0,), X), *(ir.Measure(q, q) for q in range(3))))
    assert truncate(program).ops == program.ops


def test_a_program_that_reads_nothing_keeps_a_whole_component():
    """No measurement or save (a circuit run for nothing, shots only): one component stays whole, so
    no op is left with a qubit of its own removed."""
    CX = np.eye(4)[[0, 1, 3, 2]].astype(complex)
    program = ir.Program(5, 0, (ir.Gate((1, 3), CX, "cx"), ir.Gate((4,), X, "x"), ir.Gate((3, 1), CX, "cx")))
    out = truncate(program)
    assert out.metadata["active_input_qubits"] == [1, 3]
    assert [op.qubits for op in out.ops] == [(0, 1), (1, 0)]


def test_op_qubits_reads_dataclass_fields_and_other_classes_attributes():
    """``ir.op_qubits`` looks a dataclass's qubit fields up once per class; any other op class keeps
    being read attribute by attribute (its qubits may be the instance's own)."""
    import numpy as np

    from aer_mpi import ir

    assert ir.op_qubits(ir.Gate((3, 1), np.eye(4))) == (3, 1)
    assert ir.op_qubits(ir.Swap(2, 5)) == (2, 5)
    assert ir.op_qubits(ir.Measure(4, 0)) == (4,)
    assert ir.op_qubits(ir.GlobalPhase(0.1)) == ()

    class Custom:
        def __init__(self):
            self.qubit = np.int64(7)
            self.qubits = [1, 2]

    assert ir.op_qubits(Custom()) == (7, 1, 2)
