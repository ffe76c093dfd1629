"""Qiskit circuits -> Qobj.

Every check that needs only the circuit happens here, on every rank alike:
unknown instructions, unbound parameters and non-finite angles are reported
before anything runs, naming the instruction and what to do.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj.instructions import (
    BOX,
    IGNORED,
    KEPT_FOR_NOISE,
    METHOD_LABEL,
    PARAMS_BASIS_STATES,
    PARAMS_PAULI_TERMS,
    SAVE_INSTRUCTIONS,
    SAVE_PREFIX,
    SET_MATRIX_PRODUCT_STATE,
    SET_MATRIX_PRODUCT_STATE_MAX_QUBITS,
    SET_STATE_KINDS,
    SET_STATEVECTOR,
    STATE_PREPARATION,
    STORE,
    LOOP_JUMPS,
    NOT_PLAIN_GATES,
    UNSUPPORTED_CONTROL_FLOW,
)
from aer_mpi.qobj.model import Qobj, QobjExperiment, gate_names
from aer_mpi.qobj.noise import circuit_noise

#: Instructions with no definition and no matrix wider than this are refused.
MAX_OPERATOR_QUBITS = 10
#: Widest gate with a definition that runs as its matrix: a wider one runs its definition, which
#: fusion merges as it pays. Its dense matrix cost 2**n products per amplitude and Operator of the
#: definition to build (QFTGate(10): 3.4 s and 1024 products, where its 55 gates take milliseconds).
WIDEST_MATRIX_OVER_DEFINITION = 5
#: Controlled gates of this many qubits (controls and base) run as their base and the controls
#: (a ``unitary`` instruction with ``"controls"``): from 4 (ccx and the like are standard gates),
#: up to the widest diagonal the kernels take (translate.py makes one of every qubit).
CONTROLLED_QUBITS = (4, 20)
#: ... whose base acts on at most this many qubits.
CONTROLLED_BASE_QUBITS = 3

_BINARY_NAMES = {
    "BIT_AND": "bit_and", "BIT_OR": "bit_or", "BIT_XOR": "bit_xor",
    "LOGIC_AND": "logic_and", "LOGIC_OR": "logic_or",
    "EQUAL": "equal", "NOT_EQUAL": "not_equal", "LESS": "less", "LESS_EQUAL": "less_equal",
    "GREATER": "greater", "GREATER_EQUAL": "greater_equal",
    "SHIFT_LEFT": "shift_left", "SHIFT_RIGHT": "shift_right",
    "ADD": "add", "SUB": "sub", "MUL": "mul", "DIV": "div",
}


def encode_matrix(matrix: np.ndarray) -> np.ndarray:
    """A complex matrix as the Qobj carries it: ``[re, im]`` pairs, a float array (``Qobj.to_dict`` writes
    it as nested lists). A numpy array, not lists: ``tolist`` of a 10-qubit matrix took 1.9 s and
    reading it back 1 s, on every run (probe S); as a Python loop 6.6 s."""
    matrix = np.asarray(matrix, dtype=complex)
    return np.stack((matrix.real, matrix.imag), axis=-1)


def encode_vector(vector: np.ndarray) -> np.ndarray:
    """A complex vector as ``encode_matrix`` carries a matrix."""
    vector = np.asarray(vector, dtype=complex)
    return np.stack((vector.real, vector.imag), axis=-1)


def _bound_value(p: Any, op_name: str, where: str) -> float:
    """One gate parameter as a finite float, or the error that says what to do."""
    from qiskit.circuit import ParameterExpression

    if isinstance(p, ParameterExpression):
        if p.parameters:
            names = ", ".join(sorted(str(x) for x in p.parameters))
            raise InvalidInputError(
                f"{where}: unbound parameter {names} in {op_name!r}: bind it with "
                f"circuit.assign_parameters(...) or run(..., parameter_binds=[{{...}}])"
            )
        p = complex(p)
        if abs(p.imag) > 1e-12:
            raise InvalidInputError(f"{where}: complex parameter {p} in {op_name!r}")
        p = p.real
    if isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool):
        value = float(p)
        if not math.isfinite(value):
            raise InvalidInputError(
                f"{where}: non-finite angle {value} in {op_name!r}: every parameter must be a finite number"
            )
        return value
    raise InvalidInputError(f"{where}: parameter {p!r} of {op_name!r} is not a number")


def _finite_floats(params: Sequence[Any]) -> Optional[list[float]]:
    """``params`` as a list when every one is a finite float (``_bound_value`` of each), else None."""
    for p in params:
        if type(p) is not float or not math.isfinite(p):
            return None
    return list(params)


def _bound_params(op: Any, where: str) -> list[float]:
    return [_bound_value(p, op.name, where) for p in op.params]


def _unbound(p: Any) -> bool:
    from qiskit.circuit import ParameterExpression

    return isinstance(p, ParameterExpression) and bool(p.parameters)


def _check_bound(op: Any, where: str) -> None:
    """Refuse an unbound parameter; other parameters (arrays, complex numbers, strings) are the gate's business."""
    from qiskit.circuit import ParameterExpression

    for p in op.params:
        if isinstance(p, ParameterExpression) and p.parameters:
            names = ", ".join(sorted(str(x) for x in p.parameters))
            raise InvalidInputError(
                f"{where}: unbound parameter {names} in {op.name!r}: bind it with "
                f"circuit.assign_parameters(...) or run(..., parameter_binds=[{{...}}])"
            )


def _gate_matrix(op: Any) -> Optional[np.ndarray]:
    """The unitary of a gate: its own matrix, else ``Operator`` of its definition; None when neither works."""
    try:
        return np.asarray(_own_matrix(op), dtype=complex)
    except Exception:
        pass
    from qiskit.circuit import ControlledGate

    if (isinstance(op, ControlledGate) and op.base_gate is not None
            and op.num_ctrl_qubits + op.base_gate.num_qubits == op.num_qubits):
        # (a gate with more qubits than its controls and base, MCMTGate's extra targets or a v-chain
        # mcx's ancillas, goes by its definition below)
        # exactly the identity but where the controls read ctrl_state (Operator of the definition
        # leaves 1e-16 on entries that are 0 or 1, which rank counts then apply differently)
        base = _gate_matrix(op.base_gate)
        if base is not None:
            return _controlled_matrix(base, op.num_ctrl_qubits, op.ctrl_state)
    matrix = _definition_matrix(op, {})
    if matrix is not None:
        return matrix
    try:
        from qiskit.quantum_info import Operator

        return np.asarray(Operator(op).data, dtype=complex)
    except Exception:
        return None


#: Widest gate whose matrix from a definition is brought back to the nearest unitary when rounding
#: drifted (``_definition_matrix``).
POLAR_QUBITS = 6


def is_qasm2_gate(op: Any) -> bool:
    """Whether ``op`` is a gate a QASM 2 file defines (Qiskit's parser's own class): its body is built
    anew at each use, and its matrix is ``Operator`` of that body, every gate in it written out."""
    return (type(op).__module__ or "").startswith("qiskit.qasm2")


def _own_matrix(op: Any) -> Any:
    """``op.to_matrix()``, except for a gate a QASM 2 file defines (``is_qasm2_gate``): by its
    definition, memoised (see ``_definition_matrix``)."""
    if is_qasm2_gate(op):
        raise TypeError("a QASM 2 gate definition: by its definition")
    from scipy.sparse import SparseEfficiencyWarning  # (scipy: a dependency of Qiskit)

    with warnings.catch_warnings():
        # PauliEvolutionGate's matrix is scipy's sparse expm, which warns about its own formats (a
        # hundred warnings in one QAOA run): nothing the user can act on
        warnings.simplefilter("ignore", category=SparseEfficiencyWarning)
        return op.to_matrix()


def _definition_matrix(op: Any, memo: dict) -> Optional[np.ndarray]:
    """The unitary of ``op`` from its definition, each distinct gate in it (name, width, numeric
    parameters) computed once. A gate defined by two of the one before, forty deep, is a 40-line
    QASM file but 2**39 gates written out: here forty matrices, where Qiskit's ``Operator`` writes
    every gate out (minutes, then all the memory). None when a definition holds anything but gates."""
    from qiskit.circuit import Gate
    from qiskit.quantum_info import Operator

    key, source = _definition_key(op)
    if key is not None and key in memo:
        return memo[key]
    matrix: Optional[np.ndarray] = None
    try:
        matrix = np.asarray(_own_matrix(op), dtype=complex)
    except Exception:
        try:
            definition = op.definition
        except Exception:
            definition = None
        if definition is not None and isinstance(op, Gate):
            total = Operator(np.eye(1 << op.num_qubits, dtype=complex))
            for item in definition.data:
                if item.operation.name == "barrier":
                    continue
                part = _definition_matrix(item.operation, memo) if isinstance(item.operation, Gate) else None
                if part is None:
                    return None
                total = total.compose(Operator(part), qargs=[definition.find_bit(q).index for q in item.qubits])
            try:
                phase = float(definition.global_phase)
            except (TypeError, ValueError):
                return None
            matrix = np.asarray(total.data, dtype=complex) * np.exp(1j * phase)
            if op.num_qubits <= POLAR_QUBITS:
                # the nearest unitary (its polar factor) once rounding shows: it compounds over deep
                # definitions (2**39 Hadamards drifted past the unitarity check); small gates only,
                # where nested definitions come from and the check costs nothing
                drift = np.abs(matrix @ matrix.conj().T - np.eye(len(matrix))).max()
                if drift > 1e-13:
                    left, _, right = np.linalg.svd(matrix)
                    matrix = left @ right
    if key is not None:
        memo[key] = matrix
        memo.setdefault("sources kept alive", []).append(source)  # (so that no other object takes its id)
    return matrix


def _definition_key(op: Any) -> tuple[Optional[tuple], Any]:
    """What makes two gates of a definition the same gate, for ``_definition_matrix``'s memo; None: not
    memoised (parameters that are not numbers). A name and parameters are not enough: two blocks named
    alike (``to_gate()`` of different circuits, QAOA's cost and mixer evolutions at beta == gamma)
    got one matrix (a wrong answer, probe T). A standard gate is its name, parameters and control
    state; a QASM 2 gate its statement's body (one per ``gate`` statement, shared by every use); any
    other gate its definition's object or its own: returned with the key, for the memo to keep alive."""
    numeric = all(isinstance(p, (int, float, complex, np.number)) and not isinstance(p, bool) for p in op.params)
    if not numeric:
        return None, None
    params = tuple(complex(p) for p in op.params)
    control = getattr(op, "ctrl_state", None)
    if getattr(op, "_standard_gate", None) is not None:
        return ("standard", op.name, op.num_qubits, params, control), None
    source = getattr(op, "_bytecode", None) if is_qasm2_gate(op) else None
    if not source:
        source = getattr(op, "_definition", None)
    if source is None:
        source = op
    return (type(op), id(source), op.name, op.num_qubits, params, control), source


def matrix_product_state_vector(state: Any, num_qubits: int, where: str) -> np.ndarray:
    """The statevector of Aer's matrix product state ``(sites, lambdas)``: site ``i`` (qubit ``i``) is a
    pair of matrices ``(G0, G1)``, one per value of its bit, ``lambdas[i]`` the Schmidt values of
    the bond to its right; amplitude ``b`` is ``G[b_0] diag(l_0) G[b_1] ... G[b_{n-1}]`` (one by one)."""
    def bad(why: str) -> InvalidInputError:
        return InvalidInputError(f"{where}: set_matrix_product_state: {why}; expecting (sites, lambdas) as Aer's "
                                 f"save_matrix_product_state gives it")

    try:
        sites, lambdas = state
        sites = [(np.asarray(g0, dtype=complex), np.asarray(g1, dtype=complex)) for g0, g1 in sites]
        lambdas = [np.asarray(values, dtype=float).ravel() for values in lambdas]
    except (TypeError, ValueError) as exc:
        raise bad(f"not a matrix product state ({exc})") from None
    if len(sites) != num_qubits or len(lambdas) != num_qubits - 1:
        raise bad(f"{len(sites)} sites and {len(lambdas)} bonds for a circuit of {num_qubits} qubits")
    if num_qubits > SET_MATRIX_PRODUCT_STATE_MAX_QUBITS:
        raise InvalidInputError(
            f"{where}: set_matrix_product_state of {num_qubits} qubits: aer_mpi runs it as the statevector it "
            f"stands for, at most {SET_MATRIX_PRODUCT_STATE_MAX_QUBITS} qubits; use qiskit_aer's "
            f"matrix_product_state method for a wider one")
    vector = np.ones((1, 1), dtype=complex)  # rows: the bits so far (qubit 0 lowest); columns: the open bond
    for index, (g0, g1) in enumerate(sites):
        if g0.ndim != 2 or g0.shape != g1.shape or g0.shape[0] != vector.shape[1]:
            raise bad(f"site {index}'s matrices have shapes {g0.shape} and {g1.shape}, the bond before it "
                      f"{vector.shape[1]} values")
        vector = np.concatenate([vector @ g0, vector @ g1])  # the new bit is the highest
        if index < num_qubits - 1:
            if lambdas[index].shape != (vector.shape[1],):
                raise bad(f"bond {index} has {lambdas[index].size} values, its sites {vector.shape[1]}")
            vector = vector * lambdas[index]
    if vector.shape[1] != 1:
        raise bad(f"the last site leaves a bond of {vector.shape[1]} values open")
    vector = vector[:, 0]
    if not np.isclose(np.vdot(vector, vector).real, 1.0, atol=1e-8):
        raise bad(f"its state has norm {np.linalg.norm(vector):.6g}, not 1")
    return vector


def _set_params(name: str, state: Any, where: str) -> Any:
    """A set instruction's state as the Qobj carries it (``SET_STATE_KINDS``)."""
    kind = SET_STATE_KINDS[name]
    if kind == "stabilizer":
        if isinstance(state, dict):  # Aer's SetStabilizer holds Clifford.to_dict()
            return state
        from qiskit.quantum_info import Clifford, StabilizerState

        try:
            return (state.clifford if isinstance(state, StabilizerState) else Clifford(state)).to_dict()
        except Exception as exc:
            raise InvalidInputError(f"{where}: set_stabilizer needs a Clifford or a StabilizerState: {exc}") from None
    data = np.asarray(getattr(state, "data", state), dtype=complex)
    return encode_vector(data.ravel()) if kind == "statevector" else encode_matrix(data)


def _bound_phase(phase: Any, where: str) -> float:
    """A definition's global phase as a float in [0, 2 pi)."""
    try:
        return float(phase) % (2 * math.pi)
    except TypeError:
        raise InvalidInputError(
            f"{where}: its definition's global phase {phase} has unbound parameters: assign them "
            f"(circuit.assign_parameters or parameter_binds) before running") from None


def prepared_vector(op: Any) -> Optional[np.ndarray]:
    """The amplitudes a ``state_preparation`` (``initialize``'s second part) given by them prepares
    from |0...0>; None for any other op, one given by a label or an integer (a few 1-qubit gates)
    or an inverse one."""
    if op.name != "state_preparation" or getattr(op, "_from_label", False) or getattr(op, "_from_int", False) \
            or getattr(op, "_inverse", False) or len(op.params) != 1 << op.num_qubits:
        return None
    try:
        vector = np.asarray(op.params, dtype=complex)
    except (TypeError, ValueError):
        return None
    return vector if np.isclose(np.vdot(vector, vector).real, 1.0, atol=1e-8) else None


def _unnormalised(op: Any) -> Optional[float]:
    """The squared norm of a state preparation's amplitudes when it is not 1, else None."""
    try:
        vector = np.asarray(op.params, dtype=complex)
    except (TypeError, ValueError):
        return None
    if len(vector) != 1 << op.num_qubits:
        return None
    norm = float(np.vdot(vector, vector).real)
    return None if np.isclose(norm, 1.0, atol=1e-8) else norm


def _in_qubit_order(vector: np.ndarray, qubits: list[int]) -> np.ndarray:
    """``vector``, whose index bit ``j`` is ``qubits[j]``'s, with bit ``q`` qubit ``q``'s instead."""
    n = len(qubits)
    tensor = np.asarray(vector).reshape((2,) * n)  # axis i holds index bit n - 1 - i
    qubit_of_axis = [qubits[n - 1 - i] for i in range(n)]
    return tensor.transpose([qubit_of_axis.index(n - 1 - i) for i in range(n)]).reshape(-1)


def _definition(op: Any) -> Any:
    """``op.definition``, a ``PermutationGate``'s swaps (Qiskit leaves its synthesis to a plugin;
    swaps are relabellings here, free), or None (none, or a synthesis that fails)."""
    try:
        definition = op.definition
    except Exception:
        return None
    if definition is None and op.name == "permutation" and getattr(op, "pattern", None) is not None:
        from qiskit.synthesis import synth_permutation_basic

        definition = synth_permutation_basic(op.pattern)
    return definition


def _controlled_parts(op: Any) -> Optional[tuple[np.ndarray, list[int]]]:
    """(base matrix, [number of controls, ctrl_state]) of a controlled gate that runs as its base
    (``CONTROLLED_QUBITS``); None for any other gate."""
    from qiskit.circuit import ControlledGate

    if not (isinstance(op, ControlledGate) and op.base_gate is not None
            and CONTROLLED_QUBITS[0] <= op.num_qubits <= CONTROLLED_QUBITS[1]
            and op.base_gate.num_qubits <= CONTROLLED_BASE_QUBITS
            and op.num_ctrl_qubits + op.base_gate.num_qubits == op.num_qubits):
        return None
    try:
        base = _gate_matrix(op.base_gate)
    except Exception:  # (an unbound parameter: _check_bound says so)
        return None
    if base is None:
        return None
    return base, [int(op.num_ctrl_qubits), int(op.ctrl_state)]


def _controlled_matrix(base: np.ndarray, num_ctrl: int, ctrl_state: int) -> np.ndarray:
    """The matrix of ``base`` controlled by ``num_ctrl`` qubits (Qiskit's order: the controls are the
    low qubits), applied where they read ``ctrl_state``."""
    size = base.shape[0]
    matrix = np.eye(size << num_ctrl, dtype=complex)
    where = ctrl_state + (np.arange(size) << num_ctrl)
    matrix[np.ix_(where, where)] = base
    return matrix


def _save_label(op: Any, default: str) -> str:
    label = getattr(op, "_label", None) or getattr(op, "label", None)
    return str(label) if label and label != METHOD_LABEL else default


def _jumps(instructions: list[dict]) -> bool:
    """Whether a break or continue in ``instructions`` belongs to the loop around them (not to a nested one)."""
    for inst in instructions:
        if inst["name"] in LOOP_JUMPS:
            return True
        if inst["name"] == "if_else" and (_jumps(inst.get("true_body", [])) or _jumps(inst.get("false_body", []))):
            return True
        if inst["name"] == "switch_case" and any(_jumps(c["body"]) for c in inst.get("cases", [])):
            return True
    return False


#: Instructions one circuit may have once the definitions it runs by are written out: a bound on
#: what a few lines of nested gate definitions can ask for (each level may double it).
MAX_ASSEMBLED_INSTRUCTIONS = 10_000_000


class _CircuitAssembler:
    def __init__(self, circuit: Any, index: int, template: bool = False):
        self.circuit = circuit
        self.name = circuit.name or f"circuit-{index}"
        #: A template leaves the unbound parameters of top-level gates open, as ``slots``:
        #: (its instruction, [(parameter index, expression)]); anything else unbound is refused
        #: as usual (the caller then binds the circuit itself, one copy per binding).
        self.template = template
        self.slots: list[tuple[dict, list[tuple[int, Any]]]] = []
        self.phase_slot: Any = None
        #: The state an initialize of every qubit sets (top level): the circuit's global phase goes
        #: after the last, which discards what came before it (as Qiskit's Statevector and Aer keep it).
        self.initialized_states: list[dict] = []
        self.gates = gate_names()
        #: Qubits an instruction met so far (top level) may have moved out of |0>.
        self.touched: set[int] = set()
        #: Classical variables -> their clbits, allocated after the circuit's memory.
        self.var_bits: dict[Any, list[int]] = {}
        self.next_var_bit = circuit.num_clbits
        #: Instructions met so far, definitions' included (``MAX_ASSEMBLED_INSTRUCTIONS``).
        self.visited = 0

    def phase_position(self, instructions: list[dict]) -> int:
        """Where the global phase goes among ``instructions``: first, or after the last state an
        initialize of every qubit set."""
        states = {id(state) for state in self.initialized_states}
        return max((i + 1 for i, inst in enumerate(instructions) if id(inst) in states), default=0)

    def where(self, position: int, op: Any) -> str:
        return f"circuit {self.name!r}, instruction {position} ({op.name})"

    def instructions(
        self, circuit: Any, qubit_map: Sequence[int], clbit_map: Sequence[int], depth: int = 0
    ) -> list[dict]:
        from qiskit.circuit.library import DiagonalGate, UnitaryGate

        out: list[dict] = []
        if depth > 50:
            raise InvalidInputError(f"circuit {self.name!r}: definitions nest too deeply")
        qubit_index = {q: i for i, q in enumerate(circuit.qubits)}
        plain_gates = self.gates - NOT_PLAIN_GATES
        for position, item in enumerate(circuit.data):
            self.visited += 1
            if self.visited > MAX_ASSEMBLED_INSTRUCTIONS:
                raise InvalidInputError(
                    f"circuit {self.name!r}: more than {MAX_ASSEMBLED_INSTRUCTIONS:,} instructions once its gates' "
                    f"definitions are written out (gates defined by repeating other gates multiply); "
                    f"split the circuit, or define its wide gates by their matrices (UnitaryGate)")
            qubits = [qubit_map[qubit_index[q]] for q in item.qubits]
            name = item.name
            if name in plain_gates:
                # A gate with floats for parameters, the bulk of a transpiled circuit: read from the
                # instruction without building its gate object (Qiskit makes one per access of a
                # standard gate) or its position's text, which only an error needs. Others (open
                # parameters, numpy numbers, bad values) take the general path below.
                values = _finite_floats(item.params)
                if values is not None:
                    if depth == 0:
                        self.touched.update(qubits)
                    out.append({"name": name, "qubits": qubits, "params": values})
                    continue
            op = item.operation
            clbits = [clbit_map[circuit.find_bit(c).index] for c in item.clbits]
            where = self.where(position, op)
            if name in KEPT_FOR_NOISE:  # no-ops that a noise model may put errors on; translation drops them
                out.append({"name": name, "qubits": qubits})
                continue
            if name in IGNORED:
                continue
            if depth == 0 and name != "initialize" and not name.startswith(SAVE_PREFIX):
                # qubits an instruction may have moved out of |0> (for ``initialize``)
                self.touched.update(qubits)
            if name == "measure":
                out.append({"name": "measure", "qubits": qubits, "memory": clbits})
            elif name == "reset":
                out.append({"name": "reset", "qubits": qubits})
            elif name == "global_phase":
                out.append({"name": "global_phase", "qubits": [], "params": _bound_params(op, where)})
            elif name in SAVE_INSTRUCTIONS:
                out.append(self._save(op, qubits, where))
            elif name == "if_else":
                out.append(self._if_else(op, qubits, clbits, where, depth, circuit, clbit_map))
            elif name == "while_loop":
                out.append(
                    {
                        "name": "while_loop",
                        "qubits": [],
                        "condition": self._condition(op.condition, where, circuit, clbit_map),
                        "body": self.instructions(op.blocks[0], qubits, clbits, depth + 1),
                    }
                )
            elif name == "for_loop":
                out.extend(self._for_loop(op, qubits, clbits, where, depth))
            elif name == BOX:  # runs once, where it stands: at the box's own depth (initialize's resets)
                out.extend(self.instructions(op.blocks[0], qubits, clbits, depth))
            elif name == STORE:
                out.append({
                    "name": STORE, "qubits": [],
                    "clbits": self._lvalue(op.lvalue, where, circuit, clbit_map),
                    "expr": self._expr(op.rvalue, where, circuit, clbit_map),
                })
            elif name in LOOP_JUMPS:
                out.append({"name": name, "qubits": []})
            elif name == "switch_case":
                out.append(self._switch(op, qubits, clbits, where, depth, circuit, clbit_map))
            elif name in SET_STATE_KINDS or name == SET_MATRIX_PRODUCT_STATE:
                if sorted(qubits) != list(range(self.circuit.num_qubits)) or depth:
                    raise InvalidInputError(f"{where}: {name} must act on every qubit of the circuit, at its top level")
                if name == SET_MATRIX_PRODUCT_STATE:  # the statevector it stands for
                    vector = matrix_product_state_vector(op.params[0], len(qubits), where)
                    out.append({"name": SET_STATEVECTOR, "qubits": qubits, "params": [encode_vector(vector)]})
                else:
                    out.append({"name": name, "qubits": qubits, "params": [_set_params(name, op.params[0], where)]})
            elif name == "initialize":
                out.extend(self._initialize(op, qubits, where, depth))
            elif name in UNSUPPORTED_CONTROL_FLOW:
                raise InvalidInputError(
                    f"{where}: {name} is not supported; write the loop with a while_loop condition instead"
                )
            elif name in ("kraus", "superop", "quantum_channel"):  # noise placed in the circuit (qobj/noise.py)
                out.extend(circuit_noise(op, qubits, where))
            elif name in self.gates:
                if self.template and depth == 0 and any(_unbound(p) for p in op.params):
                    open_params = [(j, p) for j, p in enumerate(op.params) if _unbound(p)]
                    params = [0.0 if _unbound(p) else _bound_value(p, name, where) for p in op.params]
                    inst = {"name": name, "qubits": qubits, "params": params}
                    self.slots.append((inst, open_params))
                    out.append(inst)
                else:
                    out.append({"name": name, "qubits": qubits, "params": _bound_params(op, where)})
            elif name == "unitary" and isinstance(op, UnitaryGate):
                inst = {"name": "unitary", "qubits": qubits, "params": [encode_matrix(op.to_matrix())]}
                if getattr(op, "label", None):  # a noise model may key errors on it (as Aer)
                    inst["label"] = str(op.label)
                out.append(inst)
            elif name == "diagonal" and isinstance(op, DiagonalGate):
                out.append({"name": "diagonal", "qubits": qubits, "params": encode_vector(op.params)})
            else:
                out.extend(self._other(op, qubits, clbits, where, depth))
        return out

    def _initialize(self, op: Any, qubits: list[int], where: str, depth: int) -> list[dict]:
        """``initialize`` = reset + state preparation. As Aer does, the resets of qubits
        nothing has touched yet (still |0>, at the top level of the circuit) are left out,
        so a circuit starting with an initialize stays a non-dynamic one."""
        _check_bound(op, where)
        fresh = set() if depth else set(qubits) - self.touched
        self.touched.update(qubits)  # a second initialize of these qubits resets them
        definition = _definition(op)
        if definition is None:  # (a loader's bare Instruction named "initialize", or params that are no state)
            raise InvalidInputError(f"{where}: initialize has no definition (a reset and a state preparation) "
                                    f"to run: build it with QuantumCircuit.initialize(state, qubits)")
        out: list[dict] = []
        for item in definition.data:
            inner = [qubits[definition.find_bit(q).index] for q in item.qubits]
            vector = prepared_vector(item.operation)
            if vector is None and item.operation.name == "state_preparation" and _unnormalised(item.operation):
                raise InvalidInputError(f"{where}: initialize: the state is not normalised (its squared norm is "
                                        f"{_unnormalised(item.operation):.6g}): divide it by its norm")
            if item.operation.name == "reset":
                out.extend({"name": "reset", "qubits": [q]} for q in inner if q not in fresh)
            elif vector is not None and not depth and sorted(inner) == list(range(self.circuit.num_qubits)):
                # every qubit reset, then prepared: the state is set, whatever came before (as Aer)
                state = {"name": SET_STATEVECTOR, "qubits": sorted(inner),
                         "params": [encode_vector(_in_qubit_order(vector, inner))]}
                self.initialized_states.append(state)
                return [state]
            elif vector is not None and len(inner) <= MAX_OPERATOR_QUBITS:
                # by its vector (translate.py makes the gate: a reflection), where Operator of the
                # definition's multiplexers took 20-70 s at 10 qubits
                out.append({"name": STATE_PREPARATION, "qubits": inner, "params": encode_vector(vector)})
            else:  # the state preparation: by its matrix (small) or its definition
                out.extend(self._other(item.operation, inner, [], where, depth + 1))
        return out

    def _save(self, op: Any, qubits: list[int], where: str) -> dict:
        save = SAVE_INSTRUCTIONS[op.name]
        inst = {
            "name": op.name,
            "qubits": qubits,
            "label": _save_label(op, save.label),
            "subtype": str(getattr(op, "_subtype", "single")),
        }
        if save.kind.params == PARAMS_BASIS_STATES:
            inst["params"] = [int(p) for p in op.params]
        elif save.kind.params == PARAMS_PAULI_TERMS:
            terms = []
            for term in op.params:
                label, coeffs = term
                coeffs = list(coeffs) if isinstance(coeffs, (list, tuple)) else [coeffs, 0.0]
                terms.append([str(label), [float(np.real(coeffs[0])), float(np.real(coeffs[1]))]])
            inst["params"] = terms
        return inst

    def _variable(self, var: Any, where: str) -> list[int]:
        """The clbits of a classical variable (``expr.Var`` not standing for a clbit or register)."""
        from qiskit.circuit.classical import types

        key = (var.var, var.name)
        if key not in self.var_bits:
            if isinstance(var.type, types.Bool):
                width = 1
            elif isinstance(var.type, types.Uint):
                width = int(var.type.width)
            else:
                raise InvalidInputError(f"{where}: variable {var.name!r} of type {var.type} is not supported "
                                        f"(Bool and Uint are)")
            self.var_bits[key] = list(range(self.next_var_bit, self.next_var_bit + width))
            self.next_var_bit += width
        return self.var_bits[key]

    def _lvalue(self, node: Any, where: str, circuit: Any, clbit_map) -> list[int]:
        """The clbits a ``store`` writes: a variable, a clbit, a register or one bit of them."""
        from qiskit.circuit.classical import expr

        if isinstance(node, expr.Var):
            return self._bits(node.var, where, circuit, clbit_map) if not node.standalone \
                else self._variable(node, where)
        if isinstance(node, expr.Index) and isinstance(node.index, expr.Value):
            return [self._lvalue(node.target, where, circuit, clbit_map)[int(node.index.value)]]
        raise InvalidInputError(f"{where}: cannot store into {node!r}")

    def _bits(self, target: Any, where: str, circuit: Any, clbit_map) -> list[int]:
        from qiskit.circuit import Clbit, ClassicalRegister

        if isinstance(target, Clbit):
            return [clbit_map[circuit.find_bit(target).index]]
        if isinstance(target, ClassicalRegister):
            return [clbit_map[circuit.find_bit(b).index] for b in target]
        raise InvalidInputError(
            f"{where}: classical variables ({target!r}) are not supported; condition on clbits or registers"
        )

    def _expr(self, node: Any, where: str, circuit: Any, clbit_map) -> list:
        """JSON form of a classical expression (see ``ir.evaluate``)."""
        from qiskit.circuit.classical import expr, types

        if isinstance(node, expr.Var):
            if node.standalone:
                return ["bits", self._variable(node, where)]
            return ["bits", self._bits(node.var, where, circuit, clbit_map)]
        if isinstance(node, expr.Index) and isinstance(node.index, expr.Value):
            return ["bits", [self._lvalue(node.target, where, circuit, clbit_map)[int(node.index.value)]]]
        if isinstance(node, expr.Value):
            if not isinstance(node.type, (types.Bool, types.Uint)):
                # a float or a duration would be cut to an integer: the wrong branch, silently
                raise InvalidInputError(
                    f"{where}: the constant {node.value!r} in a classical expression has type {node.type}; only "
                    f"integer and boolean constants are supported (Qiskit Aer refuses such expressions too)"
                )
            return ["const", int(node.value)]
        if isinstance(node, expr.Cast):
            inner = self._expr(node.operand, where, circuit, clbit_map)
            if isinstance(node.type, types.Bool):
                return ["bool", inner]
            if isinstance(node.type, types.Uint):
                return ["bit_and", inner, ["const", (1 << node.type.width) - 1]]
        if isinstance(node, expr.Unary):
            inner = self._expr(node.operand, where, circuit, clbit_map)
            if node.op == expr.Unary.Op.LOGIC_NOT or (
                node.op == expr.Unary.Op.BIT_NOT and isinstance(node.type, types.Bool)
            ):
                return ["logic_not", inner]
            if node.op == expr.Unary.Op.BIT_NOT:
                return ["bit_not", inner, int(node.type.width)]
        if isinstance(node, expr.Binary):
            name = _BINARY_NAMES.get(node.op.name)
            if name is not None:
                out = [name, self._expr(node.left, where, circuit, clbit_map),
                       self._expr(node.right, where, circuit, clbit_map)]
                if name in ir.WIDTH_OPS:
                    out.append(int(node.type.width))
                return out
        raise InvalidInputError(
            f"{where}: the classical expression {node!r} is not supported; use comparisons, "
            f"bitwise and logical operations on clbits, registers and integer constants"
        )

    def _condition(self, condition: Any, where: str, circuit: Any, clbit_map) -> dict:
        from qiskit.circuit import Clbit

        if isinstance(condition, tuple):
            target, value = condition
            bits = self._bits(target, where, circuit, clbit_map)
            return {"clbits": bits, "value": int(bool(value)) if isinstance(target, Clbit) else int(value)}
        return {"expr": self._expr(condition, where, circuit, clbit_map)}

    def _for_loop(self, op: Any, qubits, clbits, where: str, depth: int) -> list[dict]:
        """A for loop is unrolled: one copy of the body per index, its loop parameter bound.

        A body that breaks or continues (outside a nested loop) keeps the loop: ``{"bodies": [...]}``."""
        indexset, parameter, body = op.params
        # a loop is written out once per pass: refuse one that would pass the instruction bound before
        # writing it (a 7-line OpenQASM 3 file with `for int i in [0:100000000]` took all the memory first)
        passes_count = len(indexset) if hasattr(indexset, "__len__") else 0
        if self.visited + passes_count * max(1, len(body.data)) > MAX_ASSEMBLED_INSTRUCTIONS:
            raise InvalidInputError(
                f"{where}: a for loop of {passes_count:,} passes of {len(body.data):,} instructions is more than "
                f"{MAX_ASSEMBLED_INSTRUCTIONS:,} instructions written out (aer_mpi unrolls for loops): "
                f"run fewer passes, or split the loop over several circuits")
        passes: list[list[dict]] = []
        for value in indexset:
            bound = body
            if parameter is not None and parameter in body.parameters:
                bound = body.assign_parameters({parameter: value}, inplace=False)
            passes.append(self.instructions(bound, qubits, clbits, depth + 1))
        if any(_jumps(p) for p in passes):
            return [{"name": "for_loop", "qubits": [], "bodies": passes}]
        return [inst for p in passes for inst in p]

    def _switch(self, op: Any, qubits, clbits, where: str, depth: int, circuit: Any, clbit_map) -> dict:
        from qiskit.circuit import CASE_DEFAULT, Clbit, ClassicalRegister

        target = op.target
        if isinstance(target, (Clbit, ClassicalRegister)):
            target_json = ["bits", self._bits(target, where, circuit, clbit_map)]
        else:
            target_json = self._expr(target, where, circuit, clbit_map)
        cases = []
        for values, body in op.cases_specifier():
            if any(v is CASE_DEFAULT for v in values):
                case_values = None
            else:
                case_values = [int(v) for v in values]
            cases.append({"values": case_values, "body": self.instructions(body, qubits, clbits, depth + 1)})
        return {"name": "switch_case", "qubits": [], "target": target_json, "cases": cases}

    def _if_else(self, op: Any, qubits, clbits, where: str, depth: int, circuit: Any, clbit_map) -> dict:
        true_body, false_body = op.blocks[0], (op.blocks[1] if len(op.blocks) > 1 else None)
        result = {
            "name": "if_else",
            "qubits": [],
            "condition": self._condition(op.condition, where, circuit, clbit_map),
            "true_body": self.instructions(true_body, qubits, clbits, depth + 1),
            "false_body": self.instructions(false_body, qubits, clbits, depth + 1) if false_body is not None else [],
        }
        return result

    def _other(self, op: Any, qubits, clbits, where: str, depth: int) -> list[dict]:
        from qiskit.circuit import Gate

        controlled = _controlled_parts(op) if not clbits else None
        if controlled is not None:
            # a gate controlled by many qubits (Grover's mcx, mcphase) as its small base: a dense
            # matrix of 2**n rows did 2**n products per amplitude (translate.controlled_ops)
            _check_bound(op, where)
            base, controls = controlled
            return [{"name": "unitary", "qubits": qubits, "params": [encode_matrix(base)], "controls": controls,
                     "label": op.name}]
        dense = isinstance(op, Gate) and not clbits and op.num_qubits <= MAX_OPERATOR_QUBITS
        definition = None
        if op.num_qubits > WIDEST_MATRIX_OVER_DEFINITION or not dense:
            definition = _definition(op)
            # a Pauli evolution's definition is its synthesis, an approximation: its matrix is the
            # exact exponential, which Statevector and Operator take
            dense = dense and (definition is None or op.name == "PauliEvolution")
        if dense:
            # array or complex parameters (StatePreparation, HamiltonianGate, ...) are fine here:
            # the gate is run by its matrix
            _check_bound(op, where)
            matrix = _gate_matrix(op)
            if matrix is not None:
                return [{"name": "unitary", "qubits": qubits, "params": [encode_matrix(matrix)], "label": op.name}]
            definition = _definition(op)
        if definition is not None:
            body = self.instructions(definition, qubits, clbits, depth + 1)
            # the definition's own phase (a circuit appended as an Instruction keeps it in there)
            phase = _bound_phase(definition.global_phase, where)
            return ([{"name": "global_phase", "qubits": [], "params": [phase]}] if phase else []) + body
        raise InvalidInputError(
            f"{where}: unknown instruction {op.name!r}: aer_mpi cannot run it; "
            f"transpile(circuit, backend) or circuit.decompose() first"
        )

    def _check_save_labels(self, instructions: list[dict], seen: dict) -> None:
        """Saves sharing a label must be of one kind and subtype (their values are combined)."""
        for inst in instructions:
            name = inst["name"]
            if name in SAVE_INSTRUCTIONS:
                kind = (SAVE_INSTRUCTIONS[name].kind.kind, inst["subtype"])
                if seen.setdefault(inst["label"], kind) != kind:
                    raise InvalidInputError(
                        f"circuit {self.name!r}: two saves share the label {inst['label']!r} but differ in kind "
                        f"or subtype: give each its own label (label=...)"
                    )
            for body in ("true_body", "false_body", "body"):
                self._check_save_labels(inst.get(body, []), seen)
            for case in inst.get("cases", []):
                self._check_save_labels(case["body"], seen)
            for body in inst.get("bodies", []):
                self._check_save_labels(body, seen)

    def _labels_of_one_shot(self, instructions: list[dict]) -> set:
        """The labels one shot through ``instructions`` can save; raises when a label can be saved twice
        in one shot (two saves on one path, as Aer refuses them: the second would overwrite or skew
        the first). Saves in exclusive branches (if/else, switch cases) may share a label."""
        saved: set = set()

        def add(labels: set) -> None:
            twice = saved & labels
            if twice:
                raise InvalidInputError(
                    f"circuit {self.name!r}: the label {sorted(twice)[0]!r} is saved twice in one run of the "
                    f"circuit; give each save its own label (label=...)"
                )
            saved.update(labels)

        for inst in instructions:
            if inst["name"] in SAVE_INSTRUCTIONS:
                add({inst["label"]})
            branches = [inst[b] for b in ("true_body", "false_body") if inst.get(b)]
            branches += [case["body"] for case in inst.get("cases", [])]
            if branches:  # one of them runs
                add(set().union(*(self._labels_of_one_shot(b) for b in branches)))
            if inst.get("body"):  # a loop's body: each pass on its own (a pass saves once)
                add(self._labels_of_one_shot(inst["body"]))
            for body in inst.get("bodies", []):  # a for loop's passes, one after the other
                add(self._labels_of_one_shot(body))
        return saved

    def experiment(self) -> QobjExperiment:
        c = self.circuit
        n = c.num_qubits
        if getattr(c, "num_input_vars", 0):
            raise InvalidInputError(f"circuit {self.name!r}: input variables are not supported; "
                                    f"give each variable an initial value with add_var")
        instructions = self.instructions(c, list(range(n)), list(range(c.num_clbits)))
        self._check_save_labels(instructions, {})
        self._labels_of_one_shot(instructions)
        phase = c.global_phase
        if not isinstance(phase, (int, float)):
            from qiskit.circuit import ParameterExpression

            if isinstance(phase, ParameterExpression) and phase.parameters:
                if not self.template:
                    raise InvalidInputError(f"circuit {self.name!r}: unbound parameter in the global phase")
                self.phase_slot, phase = phase, 0.0
            phase = float(phase)
        if phase:
            instructions.insert(self.phase_position(instructions), {"name": "global_phase", "qubits": [],
                                                                     "params": [float(phase)]})
        header = {
            "name": self.name,
            "n_qubits": max(n, 1),  # a circuit of classical bits only runs on one idle qubit, as Aer runs it
            "memory_slots": c.num_clbits,
            "var_slots": self.next_var_bit - c.num_clbits,
            "creg_sizes": [[r.name, r.size] for r in c.cregs],
            "qreg_sizes": [[r.name, r.size] for r in c.qregs],
            "clbit_labels": [[r.name, i] for r in c.cregs for i in range(r.size)],
            "global_phase": float(phase),
            "metadata": dict(c.metadata or {}),
        }
        return QobjExperiment(header=header, instructions=instructions)


def assemble_circuits(circuits: Sequence[Any], config: dict,
                      parameter_binds: Optional[Sequence[dict]] = None) -> Qobj:
    """A Qobj holding ``circuits`` with the run ``config``; with Aer's ``parameter_binds`` (one dict
    per circuit mapping a parameter to a list of values), one experiment per value of each list.

    A circuit with bindings is assembled once, its open gate parameters are filled in per
    binding (the instructions without one are shared): what assembling each
    ``assign_parameters`` copy would give, at a fraction of the cost. Circuits whose parameters
    sit elsewhere (inside control flow, definitions, the gates' matrices) are bound copy by copy.
    """
    value_sets = _value_sets(circuits, parameter_binds)
    experiments: list[QobjExperiment] = []
    for circuit, values in zip(circuits, value_sets):
        if values is None:
            experiments.append(_CircuitAssembler(circuit, len(experiments)).experiment())
        else:
            experiments.extend(_bound_experiments(circuit, values, len(experiments)))
    return Qobj.new(config=dict(config), experiments=experiments)


def _value_sets(circuits: Sequence[Any], parameter_binds: Optional[Sequence[dict]]) -> list:
    """Per circuit: None (no bindings), or one ``{parameter: float}`` per binding."""
    if parameter_binds is None:
        return [None] * len(circuits)
    if len(parameter_binds) != len(circuits):
        raise InvalidInputError(
            f"parameter_binds: expecting one dict per circuit ({len(circuits)}), got {len(parameter_binds)}"
        )
    out: list = []
    for circuit, binds in zip(circuits, parameter_binds):
        if binds:
            # as Aer: values of parameters the circuit does not have are ignored (a circuit without
            # parameters runs once)
            present = set(circuit.parameters) | {p.name for p in circuit.parameters}
            binds = {p: v for p, v in binds.items() if p in present}
        if not binds:
            out.append(None)
            continue
        lengths = {len(np.atleast_1d(v)) for v in binds.values()}
        if len(lengths) != 1:
            raise InvalidInputError(
                f"parameter_binds for circuit {circuit.name!r}: every parameter needs the same number of values"
            )
        (count,) = lengths
        if count == 0:
            raise InvalidInputError(
                f"parameter_binds for circuit {circuit.name!r}: no values to bind; give each parameter at "
                f"least one value (or leave the circuit out of the run)"
            )
        try:
            columns = {p: np.atleast_1d(np.asarray(v, dtype=float)) for p, v in binds.items()}
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"parameter_binds for circuit {circuit.name!r}: values must be real numbers "
                                    f"({error})") from None
        for p, column in columns.items():
            if not np.all(np.isfinite(column)):
                raise InvalidInputError(
                    f"parameter_binds for circuit {circuit.name!r}: non-finite value "
                    f"{column[~np.isfinite(column)][0]} for {p}: every parameter must be a finite number"
                )
        out.append([{p: float(column[i]) for p, column in columns.items()} for i in range(count)])
    return out


def _bound_experiments(circuit: Any, value_sets: list[dict], first_index: int) -> list[QobjExperiment]:
    from qiskit.circuit import Parameter

    template = None
    keys = value_sets[0].keys()
    if all(isinstance(p, Parameter) for p in keys) and set(keys) <= set(circuit.parameters):
        try:
            assembler = _CircuitAssembler(circuit, first_index, template=True)
            template = assembler.experiment()
        except InvalidInputError:  # a parameter the template cannot leave open: bind copies
            template = None
    if template is None:
        experiments = []
        for i, values in enumerate(value_sets):
            bound = circuit.assign_parameters(values, inplace=False)
            bound.name = circuit.name  # as Aer: every binding's result carries the circuit's name
            experiments.append(_CircuitAssembler(bound, first_index + i).experiment())
        return experiments
    return [_fill(assembler, template, values, first_index + i) for i, values in enumerate(value_sets)]


def _fill(assembler: _CircuitAssembler, template: QobjExperiment, values: dict, index: int) -> QobjExperiment:
    """The template's experiment with ``values`` in its open parameters."""
    name = assembler.circuit.name or f"circuit-{index}"
    filled = {}
    for inst, open_params in assembler.slots:
        params = list(inst["params"])
        for j, expr in open_params:
            value = values.get(expr)  # a plain Parameter: its value, a finite float (_value_sets checked it)
            if type(value) is not float:
                value = _bound_value(_evaluate(expr, values), inst["name"], f"circuit {name!r} ({inst['name']})")
            params[j] = value
        filled[id(inst)] = {**inst, "params": params}
    instructions = [filled.get(id(inst), inst) for inst in template.instructions]
    header = {**template.header, "name": name, "metadata": dict(template.header["metadata"])}
    if assembler.phase_slot is not None:
        phase = _bound_value(_evaluate(assembler.phase_slot, values), "global phase", f"circuit {name!r}")
        phase %= 2 * math.pi  # as QuantumCircuit.global_phase stores a bound phase
        header["global_phase"] = phase
        if phase:
            instructions.insert(assembler.phase_position(template.instructions),
                                {"name": "global_phase", "qubits": [], "params": [phase]})
    return QobjExperiment(header=header, instructions=instructions)


def _evaluate(expr: Any, values: dict) -> Any:
    """``expr`` with ``values`` bound (a Parameter is looked up; an expression is bound)."""
    from qiskit.circuit import Parameter

    if isinstance(expr, Parameter):
        return values.get(expr, expr)
    known = {p: values[p] for p in expr.parameters if p in values}
    return expr.bind(known, allow_unknown_parameters=True) if known else expr
