"""The Qobj: round trip through JSON and validation naming the bad field."""

import json

import numpy as np
import pytest
from qiskit import QuantumCircuit

from aer_mpi import Qobj, QobjValidationError
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.qobj.translate import to_program
from aer_mpi.errors import InvalidInputError


def sample_qobj() -> Qobj:
    qc = QuantumCircuit(3, 3, name="bell")
    qc.h(0)
    qc.cx(0, 1)
    qc.unitary([[0, 1], [1, 0]], [2])
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(2)
    qc.measure(range(3), range(3))
    return assemble_circuits([qc], {"shots": 10, "seed_simulator": 1, "memory": False, "precision": "double"})


def test_round_trip_through_json():
    qobj = sample_qobj()
    qobj.validate()
    text = json.dumps(qobj.to_dict())
    again = Qobj.from_dict(json.loads(text))
    again.validate()
    assert again.to_dict() == qobj.to_dict()
    exp = again.experiments[0]
    assert exp.header["name"] == "bell" and exp.header["creg_sizes"] == [["c", 3]]
    assert [i["name"] for i in exp.instructions] == ["h", "cx", "unitary", "if_else", "measure", "measure", "measure"]


@pytest.mark.parametrize(
    "path,value,message",
    [
        (("config", "shots"), -1, "config.shots: expecting an integer >= 0"),
        (("config", "precision"), "half", "config.precision"),
        (("config", "seed_simulator"), -1, "config.seed_simulator"),
        (("experiments", 0, "header", "n_qubits"), 0, "experiments[0].header.n_qubits"),
        (("experiments", 0, "instructions", 0, "name"), "frobnicate", "unknown instruction 'frobnicate'"),
        (("experiments", 0, "instructions", 0, "name"), ["h"], "experiments[0].instructions[0].name"),
        (("experiments", 0, "instructions", 1, "qubits"), [0, 7], "experiments[0].instructions[1].qubits"),
        (("experiments", 0, "instructions", 1, "qubits"), [1, 1], "repeated qubit"),
        (("experiments", 0, "instructions", 1, "qubits"), [-1, 0], "experiments[0].instructions[1].qubits"),
        (("experiments", 0, "instructions", 0, "params"), [True], "expecting finite numbers for gate 'h'"),
        (("experiments", 0, "instructions", 0, "params"), [float("inf")], "expecting finite numbers for gate 'h'"),
        (("experiments", 0, "instructions", 0, "params"), "0.5", "experiments[0].instructions[0].params"),
        (("experiments", 0, "instructions", 4, "memory"), [9], "experiments[0].instructions[4].memory"),
    ],
)
def test_validation_names_the_field(path, value, message):
    data = sample_qobj().to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(QobjValidationError) as info:
        Qobj.from_dict(data).validate()
    assert message in str(info.value)


def test_non_finite_gate_parameter_is_refused():
    data = sample_qobj().to_dict()
    data["experiments"][0]["instructions"][0] = {"name": "rx", "qubits": [0], "params": [float("nan")]}
    with pytest.raises(QobjValidationError, match="finite"):
        Qobj.from_dict(data).validate()


def test_assembly_errors_name_the_problem():
    from qiskit.circuit import Parameter

    theta = Parameter("theta")
    qc = QuantumCircuit(1)
    qc.rx(theta, 0)
    with pytest.raises(InvalidInputError, match="unbound parameter theta"):
        assemble_circuits([qc], {})
    qc = QuantumCircuit(1)
    qc.rx(float("inf"), 0)
    with pytest.raises(InvalidInputError, match="non-finite angle"):
        assemble_circuits([qc], {})


def test_a_circuit_that_expands_past_the_bound_is_refused_by_name(monkeypatch):
    """Gates too wide for a matrix run by their definitions, written out: nested ones multiply, so the
    written-out count is bounded (MAX_ASSEMBLED_INSTRUCTIONS) with an error that says so."""
    from qiskit import QuantumCircuit

    from aer_mpi.errors import InvalidInputError
    from aer_mpi.qobj import assemble

    monkeypatch.setattr(assemble, "MAX_ASSEMBLED_INSTRUCTIONS", 500)
    width = assemble.MAX_OPERATOR_QUBITS + 1
    gate = QuantumCircuit(width, name="layer")
    gate.h(range(width))
    nested = gate.to_gate()
    for level in range(6):  # 11 * 2**6 gates written out
        body = QuantumCircuit(width, name=f"twice{level}")
        body.append(nested, range(width))
        body.append(nested, range(width))
        nested = body.to_gate()
    qc = QuantumCircuit(width)
    qc.append(nested, range(width))
    with pytest.raises(InvalidInputError, match="more than 500 instructions once its gates' definitions"):
        assemble.assemble_circuits([qc], {"shots": 1, "seed_simulator": 1})


def test_a_for_loop_past_the_bound_is_refused_before_it_is_written_out():
    """``for i in [0:100000000]`` in a 7-line OpenQASM 3 file took all the memory before the bound tripped."""
    from qiskit import QuantumCircuit

    from aer_mpi import AerMPISimulator
    from aer_mpi.errors import InvalidInputError

    qc = QuantumCircuit(2, 2)
    with qc.for_loop(range(100_000_000)):
        qc.x(1)
    qc.measure([0, 1], [0, 1])
    with pytest.raises(InvalidInputError, match="a for loop of 100,000,000 passes of 1 instructions is more than"):
        AerMPISimulator().run(qc).result()  # (written out, it took minutes and gigabytes: the timeout fails it)


def test_gates_named_alike_in_a_definition_keep_their_own_matrices():
    """A definition's gates were memoised by name and parameters: two different blocks called the same
    (``to_gate()`` of two circuits, QAOA's cost and mixer evolutions at beta == gamma) got the first's
    matrix, a wrong answer (probe T: QAOA <H> 0.38 where it is 1.65)."""
    from qiskit.circuit.library import QAOAAnsatz
    from qiskit.quantum_info import SparsePauliOp, Statevector

    from aer_mpi import AerSimulator
    from aer_mpi.primitives import EstimatorV2

    hadamard, flip = QuantumCircuit(1, name="blk"), QuantumCircuit(1, name="blk")
    hadamard.h(0)
    flip.x(0)
    outer = QuantumCircuit(2, name="outer")
    outer.append(hadamard.to_gate(), [0])
    outer.append(flip.to_gate(), [1])
    qc = QuantumCircuit(2)
    qc.append(outer.to_gate(), [0, 1])
    saved = qc.copy()
    saved.save_statevector()
    state = AerSimulator().run(saved).result().get_statevector()
    assert np.allclose(np.asarray(state), Statevector(qc).data, atol=1e-12)

    cost = SparsePauliOp.from_list([("ZZII", 1), ("IZZI", 1), ("IIZZ", 1), ("ZIIZ", 1)])
    bound = QAOAAnsatz(cost, reps=1).assign_parameters([0.5, 0.5])
    value = EstimatorV2().run([(bound, cost)]).result()[0].data.evs
    assert abs(float(value) - Statevector(bound).expectation_value(cost).real) < 1e-9


def test_gates_with_plain_float_parameters_assemble_as_the_general_path_does():
    """The assembler reads gates with float parameters from the instruction without building the gate
    object (the bulk of a device-transpiled circuit); numpy numbers, bound expressions, errors and
    open parameters of a template go the general way: every kind gives the same instruction."""
    import numpy as np
    from qiskit.circuit import Parameter

    theta = Parameter("theta")
    bound = (theta * 2).assign(theta, 0.25)  # a bound ParameterExpression, not a float
    qc = QuantumCircuit(3, name="mixed")
    qc.rz(0.5, 0)
    qc.rx(np.float32(0.75), 1)  # not a Python float
    qc.ry(bound, 2)
    qc.cx(0, 2)
    qc.u(1, 2, 3, 1)  # ints
    qc.id(0)  # kept for noise
    instructions = assemble_circuits([qc], {}).experiments[0].instructions
    assert instructions[:5] == [
        {"name": "rz", "qubits": [0], "params": [0.5]},
        {"name": "rx", "qubits": [1], "params": [0.75]},
        {"name": "ry", "qubits": [2], "params": [0.5]},
        {"name": "cx", "qubits": [0, 2], "params": []},
        {"name": "u", "qubits": [1], "params": [1.0, 2.0, 3.0]},
    ]
    assert instructions[5] == {"name": "id", "qubits": [0]}
    assert all(type(p) is float for inst in instructions[:5] for p in inst["params"])
    bad = QuantumCircuit(2, name="bad")
    bad.h(0)
    bad.rz(float("nan"), 1)
    with pytest.raises(InvalidInputError, match=r"circuit 'bad', instruction 1 \(rz\): non-finite angle nan"):
        assemble_circuits([bad], {})
    open_circuit = QuantumCircuit(1)
    open_circuit.rz(theta, 0)
    open_circuit.rx(0.5, 0)
    bound_runs = assemble_circuits([open_circuit], {}, [{theta: [0.1, 0.2]}]).experiments
    assert [e.instructions[0]["params"] for e in bound_runs] == [[0.1], [0.2]]
    assert [e.instructions[1]["params"] for e in bound_runs] == [[0.5], [0.5]]


def test_a_standard_gate_on_the_wrong_number_of_qubits_names_where_it_stands():
    data = sample_qobj().to_dict()
    data["experiments"][0]["instructions"][0] = {"name": "cx", "qubits": [0], "params": []}
    with pytest.raises(InvalidInputError, match=r"experiments\[0\].instructions\[0\] \(cx\): cx acts on 2 qubits"):
        to_program(Qobj.from_dict(data).experiments[0])
