"""aer_mpi's own Qobj: the serialisable form of a job.

Qiskit 2 removed ``qiskit.qobj``; this module keeps the historical QasmQobj
shape (``qobj_id``, ``config``, ``experiments[i].header``,
``experiments[i].instructions``) as plain JSON-compatible dicts. It is what
rank 0 broadcasts to the other ranks, what the worker processes receive,
and what the CLI can write and read.

Instruction dicts::

    {"name": "cx", "qubits": [0, 1], "params": []}
    {"name": "unitary", "qubits": [0], "params": [[[re, im], [re, im]], [[re, im], [re, im]]]}
    {"name": "unitary", "qubits": [c0, c1, c2, t], "params": [base 2x2], "controls": [3, ctrl_state]}
    {"name": "diagonal", "qubits": [0, 1], "params": [[re, im], ...]}
    {"name": "state_preparation", "qubits": [0, 1], "params": [[re, im] x 4]}
    {"name": "measure", "qubits": [0], "memory": [0]}
    {"name": "save_statevector", "qubits": [0, 1], "label": "statevector", "subtype": "single"}
    {"name": "if_else", "condition": {"clbits": [0], "value": 1},
     "true_body": [...], "false_body": [...]}
    {"name": "while_loop", "condition": {"expr": ["equal", ["bits", [0, 1]], ["const", 2]]},
     "body": [...]}
    {"name": "switch_case", "target": ["bits", [0, 1]],
     "cases": [{"values": [0, 1], "body": [...]}, {"values": null, "body": [...]}]}
    {"name": "save_amplitudes", "qubits": [0, 1], "label": "a", "subtype": "single", "params": [0, 3]}
    {"name": "save_expval", "qubits": [0, 1], "label": "e", "subtype": "average",
     "params": [["XZ", [0.5, 0.0]], ["ZZ", [1.0, 0.0]]]}

A condition is ``{"clbits": [...], "value": int}`` (the clbits, lowest
first, read as an integer equal ``value``) or ``{"expr": expression}``; an
expression is ``["bits", [clbits]]``, ``["const", int]`` or an operation
``[op, operand, ...]`` as ``aer_mpi.ir.evaluate`` defines. Expectation-value
terms carry a Pauli label over the instruction's qubits (its last character
acts on ``qubits[0]``) and two real coefficients: of the term in the
observable, and in the observable's square (used by the variance).
"""

from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import QobjValidationError

from aer_mpi.qobj.instructions import (
    NON_GATE_INSTRUCTIONS,
    SET_INSTRUCTIONS,
    SET_STATE_KINDS,
    STORE,
    PARAMS_BASIS_STATES,
    PARAMS_PAULI_TERMS,
    SAVE_INSTRUCTIONS,
    SAVE_SUBTYPES,
)
from aer_mpi.qobj.options import validate_config

_UNARY = frozenset(ir.UNARY_OPS)
_BINARY = frozenset(ir.BINARY_OPS)


def _gate_names() -> frozenset[str]:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    return frozenset(
        name
        for name, op in get_standard_gate_name_mapping().items()
        if name not in ("measure", "reset", "delay", "barrier")
    )


_GATE_NAMES: Optional[frozenset[str]] = None


def gate_names() -> frozenset[str]:
    """Names of Qiskit's standard gates (cached)."""
    global _GATE_NAMES
    if _GATE_NAMES is None:
        _GATE_NAMES = _gate_names()
    return _GATE_NAMES


@dataclass
class QobjExperiment:
    header: dict
    instructions: list[dict]
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "header": copy.deepcopy(self.header),
            "config": copy.deepcopy(self.config),
            "instructions": _plain(self.instructions),
        }


def _plain(value: Any) -> Any:
    """A copy of ``value`` with its numpy arrays (matrices and vectors as ``[re, im]`` pairs) as nested
    lists: ``to_dict`` is JSON's."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return copy.deepcopy(value)


@dataclass
class Qobj:
    """A job: a config shared by its experiments, and the experiments."""

    qobj_id: str
    config: dict
    experiments: list[QobjExperiment]
    header: dict = field(default_factory=dict)
    type: str = "QASM"
    schema_version: str = "1.3.0"

    @classmethod
    def new(cls, config: dict, experiments: list[QobjExperiment], header: Optional[dict] = None) -> "Qobj":
        return cls(str(uuid.uuid4()), config, experiments, header or {})

    def to_dict(self) -> dict:
        return {
            "qobj_id": self.qobj_id,
            "type": self.type,
            "schema_version": self.schema_version,
            "header": copy.deepcopy(self.header),
            "config": copy.deepcopy(self.config),
            "experiments": [e.to_dict() for e in self.experiments],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Qobj":
        if not isinstance(data, dict):
            raise QobjValidationError(f"qobj: expecting a dict, got {type(data).__name__}")
        for key in ("qobj_id", "config", "experiments"):
            if key not in data:
                raise QobjValidationError(f"{key}: missing")
        experiments = data["experiments"]
        if not isinstance(experiments, list):
            raise QobjValidationError("experiments: expecting a list")
        exps = []
        for i, e in enumerate(experiments):
            if not isinstance(e, dict):
                raise QobjValidationError(f"experiments[{i}]: expecting a dict")
            exps.append(
                QobjExperiment(
                    header=copy.deepcopy(e.get("header", {})),
                    instructions=copy.deepcopy(e.get("instructions")),
                    config=copy.deepcopy(e.get("config", {})),
                )
            )
        return cls(
            qobj_id=data["qobj_id"],
            config=copy.deepcopy(data["config"]),
            experiments=exps,
            header=copy.deepcopy(data.get("header", {})),
            type=data.get("type", "QASM"),
            schema_version=data.get("schema_version", "1.3.0"),
        )

    def validate(self) -> None:
        """Raise ``QobjValidationError`` naming the first bad field."""
        if not isinstance(self.qobj_id, str) or not self.qobj_id:
            raise QobjValidationError("qobj_id: expecting a non-empty string")
        if self.type != "QASM":
            raise QobjValidationError(f"type: expecting 'QASM', got {self.type!r}")
        validate_config(self.config, "config")
        if not isinstance(self.experiments, list) or not self.experiments:
            raise QobjValidationError("experiments: expecting a non-empty list")
        # experiments of one circuit's parameter_binds share their unparameterised instructions
        # (qobj/assemble.py): each is checked once per (instruction, qubits, clbits)
        checked: set = set()
        for i, exp in enumerate(self.experiments):
            _validate_experiment(exp, f"experiments[{i}]", checked)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_experiment(exp: QobjExperiment, where: str, checked: Optional[set] = None) -> None:
    header = exp.header
    if not isinstance(header, dict):
        raise QobjValidationError(f"{where}.header: expecting a dict")
    n = header.get("n_qubits")
    if not _is_int(n) or n < 1:
        raise QobjValidationError(f"{where}.header.n_qubits: expecting an integer >= 1, got {n!r}")
    slots = header.get("memory_slots", 0)
    if not _is_int(slots) or slots < 0:
        raise QobjValidationError(f"{where}.header.memory_slots: expecting an integer >= 0, got {slots!r}")
    var_slots = header.get("var_slots", 0)
    if not _is_int(var_slots) or var_slots < 0:
        raise QobjValidationError(f"{where}.header.var_slots: expecting an integer >= 0, got {var_slots!r}")
    # classical variables live in clbits after the memory's (conditions and stores may use them)
    slots += var_slots
    if exp.config:
        validate_config(exp.config, f"{where}.config", required=False)
    if not isinstance(exp.instructions, list):
        raise QobjValidationError(f"{where}.instructions: expecting a list")
    _validate_instructions(exp.instructions, n, slots, f"{where}.instructions", checked)


def _plain_gate_fits(inst: dict, n: int) -> bool:
    """A gate's qubits are distinct indices below ``n`` and its params finite numbers (what the
    checks below ask of a gate); False sends it through them for the error's text."""
    qubits, params = inst.get("qubits", []), inst.get("params", [])
    if type(qubits) is not list or type(params) is not list:
        return False
    for q in qubits:
        if type(q) is not int or not 0 <= q < n:
            return False
    for p in params:
        if type(p) is not float and type(p) is not int or not math.isfinite(p):
            return False
    return len(qubits) < 2 or len(set(qubits)) == len(qubits)


def _validate_instructions(instructions: list, n: int, slots: int, where: str,
                           checked: Optional[set] = None) -> None:
    gates = gate_names()
    checked = set() if checked is None else checked
    for i, inst in enumerate(instructions):
        key = (id(inst), n, slots)
        if key in checked:
            continue
        if (type(inst) is dict and type(inst.get("name")) is str and inst["name"] in gates and "memory" not in inst
                and _plain_gate_fits(inst, n)):
            checked.add(key)  # the common case, without the error texts' work (a binding's gates, each time)
            continue
        at = f"{where}[{i}]"
        if not isinstance(inst, dict):
            raise QobjValidationError(f"{at}: expecting a dict")
        name = inst.get("name")
        if not isinstance(name, str):
            raise QobjValidationError(f"{at}.name: expecting a string")
        if name not in gates and name not in NON_GATE_INSTRUCTIONS and name not in SAVE_INSTRUCTIONS:
            raise QobjValidationError(f"{at}.name: unknown instruction {name!r}")
        qubits = inst.get("qubits", [])
        if not isinstance(qubits, list) or not all(_is_int(q) and 0 <= q < n for q in qubits):
            raise QobjValidationError(
                f"{at}.qubits: expecting qubit indices in range({n}), got {qubits!r}"
            )
        if len(set(qubits)) != len(qubits):
            raise QobjValidationError(f"{at}.qubits: repeated qubit in {qubits!r}")
        memory = inst.get("memory", [])
        if not isinstance(memory, list) or not all(_is_int(c) and 0 <= c < slots for c in memory):
            raise QobjValidationError(
                f"{at}.memory: expecting clbit indices in range({slots}), got {memory!r}"
            )
        params = inst.get("params", [])
        if not isinstance(params, (list, np.ndarray)):  # (an array: a vector's [re, im] pairs, encode_vector)
            raise QobjValidationError(f"{at}.params: expecting a list")
        if name in gates:
            for p in params:
                if not isinstance(p, (int, float)) or isinstance(p, bool) or not math.isfinite(p):
                    raise QobjValidationError(
                        f"{at}.params: expecting finite numbers for gate {name!r}, got {p!r}"
                    )
        if name in SET_INSTRUCTIONS:
            kind = SET_STATE_KINDS[name]
            rows = 1 << (2 * n if kind == "superop" else n)
            if kind == "stabilizer":
                shape, fits = "[{'destabilizer': [labels], 'stabilizer': [labels]}]", (
                    len(params) == 1 and isinstance(params[0], dict))
            else:
                shape = f"[[2**{n} [re, im] pairs]]" if kind == "statevector" else f"[[{rows} rows of {rows} [re, im] pairs]]"
                fits = len(params) == 1 and isinstance(params[0], (list, np.ndarray)) and len(params[0]) == rows
            if sorted(qubits) != list(range(n)) or not fits:
                raise QobjValidationError(f"{at}: {name} needs every qubit and params {shape}")
        if name == "measure" and len(memory) != len(qubits):
            raise QobjValidationError(f"{at}.memory: measure needs one clbit per qubit")
        if name in ("if_else", "while_loop"):
            _validate_condition(inst.get("condition"), slots, f"{at}.condition")
            for body in ("true_body", "false_body") if name == "if_else" else ("body",):
                if not isinstance(inst.get(body, []), list):
                    raise QobjValidationError(f"{at}.{body}: expecting a list of instructions")
                _validate_instructions(inst.get(body, []), n, slots, f"{at}.{body}", checked)
        if name == STORE:
            clbits = inst.get("clbits")
            if not isinstance(clbits, list) or not clbits or not all(_is_int(c) and 0 <= c < slots for c in clbits):
                raise QobjValidationError(f"{at}.clbits: expecting clbit indices in range({slots})")
            _validate_expr(inst.get("expr"), slots, f"{at}.expr")
        if name == "for_loop":
            bodies = inst.get("bodies")
            if not isinstance(bodies, list) or not all(isinstance(b, list) for b in bodies):
                raise QobjValidationError(f"{at}.bodies: expecting a list of instruction lists (one per pass)")
            for k, body in enumerate(bodies):
                _validate_instructions(body, n, slots, f"{at}.bodies[{k}]", checked)
        if name == "switch_case":
            _validate_expr(inst.get("target"), slots, f"{at}.target")
            cases = inst.get("cases")
            if not isinstance(cases, list):
                raise QobjValidationError(f"{at}.cases: expecting a list of {{'values': [...] or null, 'body': [...]}}")
            for k, case in enumerate(cases):
                if not isinstance(case, dict):
                    raise QobjValidationError(f"{at}.cases[{k}]: expecting a dict")
                values = case.get("values")
                if values is not None and (not isinstance(values, list) or not all(_is_int(v) for v in values)):
                    raise QobjValidationError(f"{at}.cases[{k}].values: expecting a list of integers or null")
                if not isinstance(case.get("body", []), list):
                    raise QobjValidationError(f"{at}.cases[{k}].body: expecting a list of instructions")
                _validate_instructions(case.get("body", []), n, slots, f"{at}.cases[{k}].body", checked)
        if name in SAVE_INSTRUCTIONS:
            _validate_save(inst, name, len(qubits), at)
        checked.add(key)


def _validate_condition(cond: Any, slots: int, where: str) -> None:
    if isinstance(cond, dict) and "expr" in cond:
        _validate_expr(cond["expr"], slots, f"{where}.expr")
        return
    if not isinstance(cond, dict) or not isinstance(cond.get("clbits"), list) or not _is_int(cond.get("value")):
        raise QobjValidationError(f"{where}: expecting {{'clbits': [...], 'value': int}} or {{'expr': [...]}}")
    if not all(_is_int(c) and 0 <= c < slots for c in cond["clbits"]):
        raise QobjValidationError(f"{where}.clbits: expecting indices in range({slots})")


def _validate_expr(expr: Any, slots: int, where: str, depth: int = 0) -> None:
    if depth > 100:
        raise QobjValidationError(f"{where}: expression nests too deeply")
    if not isinstance(expr, list) or not expr or not isinstance(expr[0], str):
        raise QobjValidationError(f"{where}: expecting an expression list [op, ...]")
    kind = expr[0]
    if kind == "bits":
        if len(expr) != 2 or not isinstance(expr[1], list) or not all(_is_int(c) and 0 <= c < slots for c in expr[1]):
            raise QobjValidationError(f"{where}: expecting ['bits', [clbit indices in range({slots})]]")
    elif kind == "const":
        if len(expr) != 2 or not _is_int(expr[1]) or expr[1] < 0:
            raise QobjValidationError(f"{where}: expecting ['const', integer >= 0]")
    elif kind in _UNARY or kind in _BINARY:
        arity = 1 if kind in _UNARY else 2
        extra = 1 if kind in ir.WIDTH_OPS else 0
        if len(expr) != 1 + arity + extra:
            raise QobjValidationError(f"{where}: {kind!r} takes {arity} operand(s){' and a width' if extra else ''}")
        for k in range(arity):
            _validate_expr(expr[1 + k], slots, f"{where}[{1 + k}]", depth + 1)
        if extra and (not _is_int(expr[-1]) or expr[-1] < 0):
            raise QobjValidationError(f"{where}: the width of {kind!r} must be an integer >= 0")
    else:
        raise QobjValidationError(
            f"{where}: unknown expression {kind!r}; expecting bits, const, "
            + ", ".join(sorted(_UNARY | _BINARY))
        )


def _validate_save(inst: dict, name: str, num_qubits: int, at: str) -> None:
    label = inst.get("label")
    if not isinstance(label, str) or not label:
        raise QobjValidationError(f"{at}.label: expecting a non-empty string")
    subtype = inst.get("subtype", "single")
    if subtype not in SAVE_SUBTYPES:
        raise QobjValidationError(f"{at}.subtype: expecting one of {', '.join(SAVE_SUBTYPES)}, got {subtype!r}")
    kind = SAVE_INSTRUCTIONS[name].kind
    if subtype not in kind.subtypes:
        raise QobjValidationError(f"{at}.subtype: {name} saves a state, which cannot be averaged ({subtype!r})")
    if num_qubits < 1:
        raise QobjValidationError(f"{at}.qubits: a save needs at least one qubit")
    params = inst.get("params", [])
    if kind.params == PARAMS_BASIS_STATES:
        if not params or not all(_is_int(p) and 0 <= p < (1 << num_qubits) for p in params):
            raise QobjValidationError(
                f"{at}.params: expecting a non-empty list of basis states in range(2**{num_qubits})"
            )
    elif kind.params == PARAMS_PAULI_TERMS:
        if not params:
            raise QobjValidationError(f"{at}.params: expecting a non-empty list of [pauli, [coeff, coeff]] terms")
        for k, term in enumerate(params):
            ok = (
                isinstance(term, list) and len(term) == 2 and isinstance(term[0], str)
                and len(term[0]) == num_qubits and set(term[0]) <= set("IXYZ")
                and isinstance(term[1], list) and len(term[1]) == 2
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in term[1])
            )
            if not ok:
                raise QobjValidationError(
                    f"{at}.params[{k}]: expecting [pauli label of {num_qubits} characters from IXYZ, "
                    f"[finite coeff, finite coeff]], got {term!r}"
                )
    elif params:
        raise QobjValidationError(f"{at}.params: {name} takes no params")
