"""Instruction and save names: ONE table.

Promise: every name a Qobj instruction may carry besides Qiskit's standard
gates is here, and every save instruction is one row saying which
``ir.Save`` kind it becomes, its default label, and (per kind) the subtypes
it allows, the shape of its params and how its value is given back in a
``Result``. Assembly (``assemble.py``), validation (``model.py``),
translation (``translate.py``), the backend's ``Target``, the library's
save instructions and result formatting (``service/results.py``) all read
it; none keeps a list of its own.

To add a save kind: add its ``SaveKind`` row (and the kind to
``ir.SAVE_KINDS``, and its computation to the engine), then one
``SaveInstruction`` row per name it is known by (Aer's, aer_mpi's);
optionally a class in ``library.py``. ``tests/qobj/test_instruction_table.py``
runs every row from a circuit to its formatted result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from aer_mpi import ir

# -- subtypes (Aer's) ---------------------------------------------------------------------
#: ``single`` (one value), ``list`` (one per shot), ``average`` (mean over shots),
#: ``accum`` (sum over shots); the ``c_`` forms are keyed by the classical memory.
SAVE_SUBTYPES = ("single", "list", "average", "accum", "c_single", "c_list", "c_average", "c_accum")
#: Subtypes of a save whose value cannot be averaged (a state, an amplitude).
UNAVERAGED_SUBTYPES = ("single", "list", "c_single", "c_list")

# -- params shapes ------------------------------------------------------------------------
#: No params.
PARAMS_NONE = "none"
#: Basis states (integers in ``range(2**num_qubits)``).
PARAMS_BASIS_STATES = "basis_states"
#: ``[pauli label, [coeff in O, coeff in O @ O]]`` terms.
PARAMS_PAULI_TERMS = "pauli_terms"

# -- how a saved value is given back ----------------------------------------------------------
#: ``qiskit.quantum_info.Statevector``.
RESULT_STATEVECTOR = "Statevector"
#: ``qiskit.result.ProbDistribution``.
RESULT_PROB_DISTRIBUTION = "ProbDistribution"
#: ``qiskit.quantum_info.DensityMatrix``.
RESULT_DENSITY_MATRIX = "DensityMatrix"
#: ``qiskit.quantum_info.Operator``.
RESULT_OPERATOR = "Operator"
#: ``qiskit.quantum_info.SuperOp``.
RESULT_SUPEROP = "SuperOp"
#: ``qiskit.quantum_info.StabilizerState`` (the engine gives Qiskit's Clifford tableau).
RESULT_STABILIZER = "StabilizerState"
#: ``qiskit.quantum_info.Clifford`` (the same tableau).
RESULT_CLIFFORD = "Clifford"
#: As the engine returns it (an array, a dict, a float).
RESULT_PLAIN = "plain"


@dataclass(frozen=True)
class SaveKind:
    """What the engine computes for one ``ir.Save.kind``."""

    kind: str
    subtypes: tuple[str, ...]
    params: str
    result: str
    #: The instruction name Aer reports for it in ``metadata["result_types"]``.
    aer_type: str

    @property
    def averaged(self) -> bool:
        """Whether shots can be averaged (``average``/``accum`` subtypes)."""
        return "average" in self.subtypes


@dataclass(frozen=True)
class SaveInstruction:
    """One save instruction name."""

    name: str
    kind: SaveKind
    #: Label of a save built without one (Aer's default).
    label: str
    #: ``save_state``: saves the method's own state (the row's kind is the statevector method's).
    of_method: bool = False


def _kind(kind: str, averaged: bool, params: str, aer_type: str, result: str = RESULT_PLAIN) -> SaveKind:
    return SaveKind(kind, SAVE_SUBTYPES if averaged else UNAVERAGED_SUBTYPES, params, result, aer_type)


#: ``ir.Save.kind`` -> what it allows and how its value is formatted.
SAVE_KINDS: Mapping[str, SaveKind] = {
    k.kind: k
    for k in (
        _kind("statevector", False, PARAMS_NONE, "save_statevector", RESULT_STATEVECTOR),
        _kind("statevector_dict", False, PARAMS_NONE, "save_statevector_dict"),
        _kind("probabilities", True, PARAMS_NONE, "save_probabilities"),
        _kind("probabilities_dict", True, PARAMS_NONE, "save_probabilities_dict", RESULT_PROB_DISTRIBUTION),
        _kind("amplitudes", False, PARAMS_BASIS_STATES, "save_amplitudes"),
        _kind("amplitudes_sq", True, PARAMS_BASIS_STATES, "save_amplitudes_sq"),
        _kind("expectation_value", True, PARAMS_PAULI_TERMS, "save_expval"),
        _kind("expectation_value_variance", True, PARAMS_PAULI_TERMS, "save_expval_var"),
        _kind("density_matrix", True, PARAMS_NONE, "save_density_matrix", RESULT_DENSITY_MATRIX),
        # the unitary and superop methods' (engine/operators.py): one value a run, or a list of one (pershot)
        SaveKind("unitary", ("single", "list"), PARAMS_NONE, RESULT_OPERATOR, "save_unitary"),
        SaveKind("superop", ("single", "list"), PARAMS_NONE, RESULT_SUPEROP, "save_superop"),
        # the stabilizer tableau's (engine/stabilizer.py): Clifford circuits, saves before any measurement
        SaveKind("stabilizer", UNAVERAGED_SUBTYPES, PARAMS_NONE, RESULT_STABILIZER, "save_stabilizer"),
        SaveKind("clifford", ("single", "list"), PARAMS_NONE, RESULT_CLIFFORD, "save_clifford"),
        # the chain's (engine/mps.py, method="matrix_product_state"): Aer's tuple of Vidal tensors
        SaveKind("matrix_product_state", ("single", "list"), PARAMS_NONE, RESULT_PLAIN, "save_matrix_product_state"),
    )
}
if set(SAVE_KINDS) != set(ir.SAVE_KINDS):  # pragma: no cover - an internal invariant
    raise ImportError("aer_mpi.qobj.instructions.SAVE_KINDS and aer_mpi.ir.SAVE_KINDS disagree")


def _save(name: str, kind: str, label: str, of_method: bool = False) -> SaveInstruction:
    return SaveInstruction(name, SAVE_KINDS[kind], label, of_method)


#: Save instruction name -> its row. Aer's names (``save_expval``,
#: ``save_expval_var``, ``save_amplitudes_sq``) and the long forms.
SAVE_INSTRUCTIONS: Mapping[str, SaveInstruction] = {
    s.name: s
    for s in (
        _save("save_statevector", "statevector", "statevector"),
        _save("save_statevector_dict", "statevector_dict", "statevector_dict"),
        _save("save_probabilities", "probabilities", "probabilities"),
        _save("save_probabilities_dict", "probabilities_dict", "probabilities_dict"),
        _save("save_amplitudes", "amplitudes", "amplitudes"),
        _save("save_amplitudes_sq", "amplitudes_sq", "amplitudes_squared"),
        _save("save_expval", "expectation_value", "expectation_value"),
        _save("save_expval_var", "expectation_value_variance", "expectation_value_variance"),
        _save("save_expectation_value", "expectation_value", "expectation_value"),
        _save("save_expectation_value_variance", "expectation_value_variance", "expectation_value_variance"),
        # the statevector method's save_state is a save_statevector (Aer's label "_method_" -> "statevector")
        _save("save_state", "statevector", "statevector", of_method=True),
        _save("save_density_matrix", "density_matrix", "density_matrix"),
        _save("save_unitary", "unitary", "unitary"),
        _save("save_superop", "superop", "superop"),
        _save("save_stabilizer", "stabilizer", "stabilizer"),
        _save("save_clifford", "clifford", "clifford"),
        _save("save_matrix_product_state", "matrix_product_state", "matrix_product_state"),
    )
}
SAVE_NAMES = frozenset(SAVE_INSTRUCTIONS)
#: Aer's placeholder label (``save_state``): the simulation method's own label, the row's default here.
METHOD_LABEL = "_method_"
SAVE_PREFIX = "save_"

# -- everything else that is not a standard gate ------------------------------------------------
#: Jumps out of (``break_loop``) or to the next pass of (``continue_loop``) the innermost loop.
LOOP_JUMPS = frozenset({"break_loop", "continue_loop"})
#: Control flow a Qobj carries (conditions on clbits and classical expressions). A ``for_loop`` is
#: unrolled by assembly unless its body breaks or continues; then it is ``{"bodies": [pass, ...]}``.
QOBJ_CONTROL_FLOW = frozenset({"if_else", "while_loop", "switch_case", "for_loop"}) | LOOP_JUMPS
#: Qiskit's ``box``: a scope run once, in place; assembly writes its body inline.
BOX = "box"
#: Control flow the backend accepts.
CONTROL_FLOW = QOBJ_CONTROL_FLOW | {BOX}
#: Control flow refused at assembly, with a hint (none left).
UNSUPPORTED_CONTROL_FLOW: frozenset = frozenset()
#: Instructions that do nothing to the state: dropped by translation (and barriers by assembly).
IGNORED = frozenset({"barrier", "delay", "id"})
#: Of those, the ones assembly keeps: a noise model may put errors on them (Aer's device models do on id).
KEPT_FOR_NOISE = frozenset({"delay", "id"})
#: Aer's instruction replacing the whole state (``QuantumCircuit.set_statevector``): params ``[vector]``.
SET_STATEVECTOR = "set_statevector"
#: Aer's instructions that set the state, on every qubit of the circuit -> the state they set, each the
#: state of the method of that name (``ir.SetState.kind``). Params: ``[vector]`` of ``[re, im]``
#: pairs; ``[matrix]`` (rows of pairs) for the density matrix, the unitary and the superoperator;
#: ``[{"stabilizer": [labels], "destabilizer": [labels]}]`` (``Clifford.to_dict()``) for the stabilizer.
SET_STATE_KINDS: Mapping[str, str] = {
    SET_STATEVECTOR: "statevector",
    "set_density_matrix": "density_matrix",
    "set_unitary": "unitary",
    "set_superop": "superop",
    "set_stabilizer": "stabilizer",
}
SET_INSTRUCTIONS = frozenset(SET_STATE_KINDS)
#: Aer's ``set_matrix_product_state`` (params ``[(sites, lambdas)]``): assembly contracts it into a
#: ``set_statevector``, so a Qobj never holds it.
SET_MATRIX_PRODUCT_STATE = "set_matrix_product_state"
#: Widest matrix product state assembly contracts (2**26 amplitudes, 1 GiB).
SET_MATRIX_PRODUCT_STATE_MAX_QUBITS = 26
#: Qiskit's ``store`` (a classical variable, clbit or register := an expression): ``{"clbits": [...], "expr": [...]}``;
#: variables take ``header["var_slots"]`` clbits after the memory's.
STORE = "store"
#: ``{"name": "state_preparation", "qubits": [...], "params": [[re, im] x 2**len(qubits)]}``: takes
#: the qubits, all in |0>, to the unit vector given (the second half of an ``initialize``).
STATE_PREPARATION = "state_preparation"
#: Instructions a Qobj may contain besides the standard gates and the saves.
NON_GATE_INSTRUCTIONS = frozenset(
    {"measure", "reset", "barrier", "delay", "global_phase", "unitary", "diagonal"}
) | QOBJ_CONTROL_FLOW | SET_INSTRUCTIONS | {STORE, STATE_PREPARATION}
#: Noise instructions (Aer's names; aer_mpi/qobj/noise.py): a Qobj may carry them too.
NOISE_INSTRUCTIONS = frozenset({"quantum_error", "kraus", "superop", "roerror"})
NON_GATE_INSTRUCTIONS = NON_GATE_INSTRUCTIONS | NOISE_INSTRUCTIONS
#: Names among the gates a backend lists that are not plain gates (a name and numbers for parameters):
#: the assembler and the translator take each by a branch of its own, and the rest by a fast path.
NOT_PLAIN_GATES = (NON_GATE_INSTRUCTIONS | KEPT_FOR_NOISE | IGNORED | SAVE_NAMES | CONTROL_FLOW
                   | UNSUPPORTED_CONTROL_FLOW | {SET_MATRIX_PRODUCT_STATE, "initialize", "quantum_channel"})


def save_subtype(name: str, unnormalized: bool = False, pershot: bool = False, conditional: bool = False) -> str:
    """Aer's subtype of save ``name`` from its flags: per shot, averaged (summed) over shots, or one value."""
    if pershot:
        base = "list"
    elif SAVE_INSTRUCTIONS[name].kind.averaged:
        base = "accum" if unnormalized else "average"
    else:
        base = "single"
    return ("c_" if conditional else "") + base


__all__ = [
    "CONTROL_FLOW", "IGNORED", "KEPT_FOR_NOISE", "LOOP_JUMPS", "METHOD_LABEL", "RESULT_DENSITY_MATRIX", "RESULT_OPERATOR", "RESULT_SUPEROP", "RESULT_STABILIZER", "RESULT_CLIFFORD", "NON_GATE_INSTRUCTIONS", "PARAMS_BASIS_STATES", "PARAMS_NONE",
    "PARAMS_PAULI_TERMS", "QOBJ_CONTROL_FLOW", "RESULT_PLAIN", "RESULT_PROB_DISTRIBUTION",
    "RESULT_STATEVECTOR", "SAVE_INSTRUCTIONS", "SET_INSTRUCTIONS", "SET_MATRIX_PRODUCT_STATE", "SET_MATRIX_PRODUCT_STATE_MAX_QUBITS", "SET_STATE_KINDS", "SET_STATEVECTOR", "STORE", "SAVE_KINDS", "SAVE_NAMES", "SAVE_SUBTYPES", "SaveInstruction",
    "SaveKind", "UNSUPPORTED_CONTROL_FLOW", "save_subtype",
]
