"""Assembly, validation and translation of Aer's statevector instructions (no MPI)."""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.classical import expr, types

from aer_mpi import ir
from aer_mpi.errors import InvalidInputError, QobjValidationError
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.qobj.model import Qobj, QobjExperiment
from aer_mpi.qobj.translate import to_program


def _experiment(circuit):
    qobj = assemble_circuits([circuit], {"shots": 1, "seed_simulator": 1})
    qobj.validate()
    return qobj.experiments[0]


def _names(instructions):
    return [inst["name"] for inst in instructions]


def test_initialize_resets_only_qubits_already_touched():
    qc = QuantumCircuit(3)
    qc.h(2)
    qc.initialize([0, 1, 0, 0], [0, 2])
    names = _names(_experiment(qc).instructions)
    assert names == ["h", "reset", "state_preparation"]  # qubit 0 is still |0>: no reset
    inst = _experiment(qc).instructions
    assert inst[1]["qubits"] == [2]
    twice = QuantumCircuit(2)
    twice.initialize([0, 1], [0])
    twice.initialize([1, 0], [0])
    assert _names(_experiment(twice).instructions) == ["state_preparation", "reset", "state_preparation"]
    every = QuantumCircuit(2)  # every qubit: the state is set, no reset
    every.h(0)
    every.initialize([0, 1, 0, 0], [1, 0])
    assert _names(_experiment(every).instructions) == ["h", "set_statevector"]


def test_for_loop_is_unrolled_unless_its_body_jumps():
    plain = QuantumCircuit(1, 1)
    with plain.for_loop(range(3)):
        plain.x(0)
    assert _names(_experiment(plain).instructions) == ["x", "x", "x"]
    jumping = QuantumCircuit(1, 1)
    with jumping.for_loop(range(3)):
        jumping.x(0)
        jumping.measure(0, 0)
        with jumping.if_test((jumping.clbits[0], 1)):
            jumping.break_loop()
    (loop,) = _experiment(jumping).instructions
    assert loop["name"] == "for_loop" and len(loop["bodies"]) == 3
    program = to_program(_experiment(jumping))
    assert isinstance(program.ops[0], ir.ForLoop) and ir.is_dynamic(program)


def test_variables_take_clbits_after_the_memory():
    qc = QuantumCircuit(1, 2)
    a = qc.add_var("a", expr.lift(5, types.Uint(3)))
    b = qc.add_var("b", True)
    qc.store(a, expr.sub(a, 6))
    with qc.if_test(b):
        qc.x(0)
    experiment = _experiment(qc)
    assert experiment.header["var_slots"] == 4
    program = to_program(experiment)
    assert program.num_clbits == 2 and program.num_var_bits == 4
    stores = [op for op in program.ops if isinstance(op, ir.Store)]
    assert stores[0].clbits == (2, 3, 4) and stores[1].clbits == (5,)
    assert ir.evaluate(stores[2].expr, [0, 0, 1, 0, 1, 0]) == (5 - 6) % 8


def test_set_statevector_needs_every_qubit_and_a_full_state():
    header = {"n_qubits": 2, "memory_slots": 0, "name": "c"}
    bad = {"name": "set_statevector", "qubits": [0], "params": [[[1.0, 0.0], [0.0, 0.0]]]}
    with pytest.raises(QobjValidationError, match="set_statevector"):
        Qobj.new({"shots": 1, "seed_simulator": 1}, [QobjExperiment(header, [bad])]).validate()
    unnormalised = {"name": "set_statevector", "qubits": [0, 1], "params": [[[1.0, 0.0]] * 4]}
    with pytest.raises(InvalidInputError, match="normalised"):
        to_program(QobjExperiment(header, [unnormalised]))


def test_break_outside_a_loop_is_refused():
    header = {"n_qubits": 1, "memory_slots": 1, "name": "c"}
    with pytest.raises(InvalidInputError, match="outside a loop"):
        to_program(QobjExperiment(header, [{"name": "break_loop", "qubits": []}]))


def test_save_state_takes_the_statevector_label():
    qc = QuantumCircuit(2)
    qc.save_state()
    qc.save_density_matrix([1])
    save_state, save_dm = _experiment(qc).instructions
    assert save_state["label"] == "statevector" and save_dm["subtype"] == "average"
    program = to_program(_experiment(qc))
    assert [op.kind for op in program.ops] == ["statevector", "density_matrix"]


def test_gates_with_array_parameters_run_by_their_matrix():
    from qiskit.circuit.library import HamiltonianGate, StatePreparation

    qc = QuantumCircuit(2)
    qc.append(HamiltonianGate(np.diag([1.0, -1.0]), 0.2), [1])
    qc.append(StatePreparation([0.6, 0.8j]), [0])
    assert _names(_experiment(qc).instructions) == ["unitary", "unitary"]
