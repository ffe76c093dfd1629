"""Every save of the instruction table, from a circuit to its formatted result (one process)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Clifford, Operator, StabilizerState, Statevector, SuperOp
from qiskit.result import ProbDistribution

from aer_mpi import AerMPISimulator, ir
from aer_mpi.engine import ExperimentOutput, RunConfig
from aer_mpi.library import SaveData
from aer_mpi.provider.backend import build_target
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.qobj.instructions import (
    CONTROL_FLOW,
    PARAMS_BASIS_STATES,
    PARAMS_PAULI_TERMS,
    RESULT_CLIFFORD,
    RESULT_OPERATOR,
    RESULT_PROB_DISTRIBUTION,
    RESULT_STABILIZER,
    RESULT_SUPEROP,
    RESULT_STATEVECTOR,
    SAVE_INSTRUCTIONS,
    SAVE_KINDS,
    save_subtype,
)
from aer_mpi.qobj.translate import to_program
from aer_mpi.service.results import experiment_result

EXPECTED_TYPE = {RESULT_STATEVECTOR: Statevector, RESULT_PROB_DISTRIBUTION: ProbDistribution,
                 RESULT_OPERATOR: Operator, RESULT_SUPEROP: SuperOp, RESULT_STABILIZER: StabilizerState,
                 RESULT_CLIFFORD: Clifford}
#: Save kinds only a method of their own answers (the others: the default method, but save_state, the
#: statevector method's row: the default method saves a stabilizer state of this Clifford circuit, as Aer's).
METHOD_OF_KIND = {"unitary": "unitary", "superop": "superop", "stabilizer": "stabilizer", "clifford": "stabilizer"}


def _circuit(name: str, subtype: str) -> QuantumCircuit:
    save = SAVE_INSTRUCTIONS[name]
    params: list = []
    if save.kind.params == PARAMS_BASIS_STATES:
        params = [0, 3]
    elif save.kind.params == PARAMS_PAULI_TERMS:
        params = [("ZZ", [1.0, 1.0]), ("XI", [0.5, 0.25])]
    qc = QuantumCircuit(2, 2, name=name)
    qc.h(0)
    qc.cx(0, 1)
    qc.append(SaveData(name, 2, "saved", subtype, params), qc.qubits)
    if save.kind.kind not in METHOD_OF_KIND:  # the unitary method measures nothing
        qc.measure([0, 1], [0, 1])
    return qc


def _cases():
    for name, save in sorted(SAVE_INSTRUCTIONS.items()):
        for subtype in ("single", "list", "average", "c_single"):
            if subtype in save.kind.subtypes:
                yield name, subtype


@pytest.mark.parametrize("name,subtype", list(_cases()))
def test_every_save_round_trips_to_its_result_type(name, subtype):
    save = SAVE_INSTRUCTIONS[name]
    circuit = _circuit(name, subtype)
    qobj = assemble_circuits([circuit], {"shots": 4, "seed_simulator": 5})
    qobj.validate()
    (inst,) = [i for i in qobj.experiments[0].instructions if i["name"] == name]
    assert inst["subtype"] == subtype
    (op,) = [op for op in to_program(qobj.experiments[0]).ops if isinstance(op, ir.Save)]
    assert (op.kind, op.subtype, op.label) == (save.kind.kind, subtype, "saved")

    method = "statevector" if save.of_method else METHOD_OF_KIND.get(save.kind.kind, "automatic")
    result = AerMPISimulator(method=method).run(circuit, shots=4, seed_simulator=5).result()
    value = result.data(0)["saved"]
    expected = EXPECTED_TYPE.get(save.kind.result)
    items = [value]
    if subtype.startswith("c_"):
        assert isinstance(value, dict) and value
        items = list(value.values())
    if subtype.endswith("list"):
        # one expectation value per shot is a numpy array, as in Aer; the other kinds a list
        sequence = np.ndarray if save.kind.kind == "expectation_value" else list
        assert all(isinstance(v, sequence) and len(v) for v in items)
        items = [x for v in items for x in v]
    for item in items:
        if expected is not None:
            assert isinstance(item, expected)
        else:
            assert not isinstance(item, (Statevector, ProbDistribution, Operator, SuperOp, StabilizerState, Clifford))


def test_every_save_kind_has_instructions_and_subtypes():
    assert {s.kind.kind for s in SAVE_INSTRUCTIONS.values()} == set(SAVE_KINDS) == set(ir.SAVE_KINDS)
    assert save_subtype("save_statevector", unnormalized=True) == "single"
    assert save_subtype("save_probabilities", unnormalized=True, conditional=True) == "c_accum"
    assert save_subtype("save_expval", pershot=True) == "list"


def test_target_holds_every_save_and_control_flow_name():
    names = set(build_target().operation_names)
    assert set(SAVE_INSTRUCTIONS) <= names and CONTROL_FLOW <= names


def test_results_are_formatted_from_the_engines_save_kinds():
    """The engine's save_kinds decide, not the program's instructions."""
    state = np.array([1.0, 0.0], dtype=complex)
    output = ExperimentOutput(None, None, {"a": state, "b": {"0x0": 1.0}, "c": state},
                              save_kinds={"a": ("statevector", "single"), "b": ("probabilities_dict", "single"),
                                          "c": ("amplitudes", "single")})
    data = experiment_result(output, {"name": "x"}, RunConfig()).data
    assert isinstance(data.a, Statevector) and isinstance(data.b, ProbDistribution)
    assert isinstance(data.c, np.ndarray)
