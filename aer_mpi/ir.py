"""Intermediate representation of one program.

Promise of this layer: frozen dataclasses describing operations on *logical*
qubit indices, with dense matrices or diagonals where the operation has one.
It knows nothing of kernels, MPI or Qiskit; the Qiskit layer builds it and the
planner consumes it.

Matrix convention (Qiskit's): for an op on ``qubits = (q0, q1, ...)`` the
matrix index bit ``j`` is the value of ``qubits[j]`` (``q0`` is the least
significant bit).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np


@dataclass(frozen=True, eq=False)
class Gate:
    """A unitary on ``qubits`` given by its dense matrix."""

    qubits: tuple[int, ...]
    matrix: np.ndarray
    name: str = "unitary"


@dataclass(frozen=True, eq=False)
class Diagonal:
    """A diagonal unitary on ``qubits``: ``diag[i]`` multiplies basis state ``i``."""

    qubits: tuple[int, ...]
    diag: np.ndarray
    name: str = "diagonal"


@dataclass(frozen=True)
class Swap:
    """Exchange two qubits; executed by relabelling, never by moving data."""

    qubit0: int
    qubit1: int


@dataclass(frozen=True)
class GlobalPhase:
    phase: float


@dataclass(frozen=True)
class Measure:
    qubit: int
    clbit: int


@dataclass(frozen=True)
class Reset:
    qubit: int


@dataclass(frozen=True, eq=False)
class SetState:
    """Replace the state by ``state`` (Aer's ``set_statevector``): index bit ``j`` is ``qubits[j]``.

    ``kind`` says what ``state`` is, each the state of the method of that name (Aer's ``set_*``):
    ``"statevector"`` a vector; ``"density_matrix"``, ``"unitary"`` and ``"superop"`` a matrix on
    ``qubits`` in order ``0..n-1``; ``"stabilizer"`` Qiskit's Clifford tableau (``(2n, 2n + 1)``
    bools)."""

    qubits: tuple[int, ...]
    state: np.ndarray
    kind: str = "statevector"


@dataclass(frozen=True)
class Save:
    """Record something about the state without changing it.

    ``kind`` is one of the names in ``SAVE_KINDS``; ``params`` carries what
    the kind needs (basis states for amplitudes, Pauli terms for expectation
    values).
    """

    kind: str
    qubits: tuple[int, ...]
    label: str
    subtype: str = "single"
    params: Any = None
    #: A ``save_state``: the method's own state (the statevector; the unitary under method="unitary"; the
    #: stabilizer state on the tableau; the chain under method="matrix_product_state").
    of_method: bool = False


SAVE_KINDS = (
    "statevector",
    "statevector_dict",
    "probabilities",
    "probabilities_dict",
    "amplitudes",
    "amplitudes_sq",
    "expectation_value",
    "expectation_value_variance",
    "density_matrix",
    "unitary",
    "superop",
    "stabilizer",
    "clifford",
    "matrix_product_state",
)


@dataclass(frozen=True)
class Condition:
    """True when the classical bits ``clbits`` (LSB first) read ``value``."""

    clbits: tuple[int, ...]
    value: int


@dataclass(frozen=True)
class ExprCondition:
    """True when the classical expression ``expr`` evaluates to a non-zero value.

    ``expr`` is a nested tuple (see ``evaluate``): ``("bits", (c0, c1, ...))``
    reads clbits as an unsigned integer (``c0`` lowest), ``("const", v)`` is a
    constant, and ``(op, a)`` / ``(op, a, b)`` apply one of ``UNARY_OPS`` /
    ``BINARY_OPS``.
    """

    expr: tuple


UNARY_OPS = ("bit_not", "logic_not", "bool")
BINARY_OPS = (
    "bit_and", "bit_or", "bit_xor", "logic_and", "logic_or",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "shift_left", "shift_right", "add", "sub", "mul", "div",
)
#: Ops whose result is cut to a width in bits, given as their last element: ``(op, a[, b], width)``.
WIDTH_OPS = ("bit_not", "shift_left", "add", "sub", "mul")


def is_diagonal(matrix: np.ndarray) -> bool:
    """Whether every entry of ``matrix`` off its diagonal is exactly zero (a NaN is not zero).

    Two C calls, no temporary: it runs per gate of every binding of a parameter sweep (and a
    1-qubit gate, the most common, is two element tests)."""
    if matrix.shape == (2, 2):
        return bool(matrix[0, 1] == 0 and matrix[1, 0] == 0)
    return np.count_nonzero(matrix) == np.count_nonzero(np.diagonal(matrix))


def evaluate(expr: tuple, clbits: Any) -> int:
    """Value of ``expr`` for the classical bits ``clbits`` (indexable by clbit)."""
    kind = expr[0]
    if kind == "bits":
        return sum(int(clbits[c]) << i for i, c in enumerate(expr[1]))
    if kind == "const":
        return int(expr[1])
    if kind == "bit_not":  # ("bit_not", arg, width)
        return ~evaluate(expr[1], clbits) & ((1 << expr[2]) - 1)
    if kind == "logic_not":
        return int(not evaluate(expr[1], clbits))
    if kind == "bool":
        return int(bool(evaluate(expr[1], clbits)))
    if kind == "logic_and":
        return int(bool(evaluate(expr[1], clbits)) and bool(evaluate(expr[2], clbits)))
    if kind == "logic_or":
        return int(bool(evaluate(expr[1], clbits)) or bool(evaluate(expr[2], clbits)))
    a, b = evaluate(expr[1], clbits), evaluate(expr[2], clbits)
    if kind == "bit_and":
        return a & b
    if kind == "bit_or":
        return a | b
    if kind == "bit_xor":
        return a ^ b
    if kind == "equal":
        return int(a == b)
    if kind == "not_equal":
        return int(a != b)
    if kind == "less":
        return int(a < b)
    if kind == "less_equal":
        return int(a <= b)
    if kind == "greater":
        return int(a > b)
    if kind == "greater_equal":
        return int(a >= b)
    if kind == "shift_left":  # ("shift_left", a, b, width)
        return (a << b) & ((1 << expr[3]) - 1)
    if kind == "shift_right":
        return a >> b
    if kind == "add":  # unsigned arithmetic modulo 2**width, as Qiskit's Uint types
        return (a + b) & ((1 << expr[3]) - 1)
    if kind == "sub":
        return (a - b) & ((1 << expr[3]) - 1)
    if kind == "mul":
        return (a * b) & ((1 << expr[3]) - 1)
    if kind == "div":
        if b == 0:
            raise ValueError("classical division by zero")
        return a // b
    raise ValueError(f"unknown classical expression {kind!r}")


def condition_holds(condition: Union[Condition, ExprCondition], clbits: Any) -> bool:
    if isinstance(condition, ExprCondition):
        return bool(evaluate(condition.expr, clbits))
    value = sum(int(clbits[c]) << i for i, c in enumerate(condition.clbits))
    return value == condition.value


@dataclass(frozen=True)
class IfElse:
    condition: Union[Condition, ExprCondition]
    true_ops: tuple["Op", ...]
    false_ops: tuple["Op", ...] = ()


@dataclass(frozen=True)
class WhileLoop:
    """Run ``body`` while ``condition`` holds (checked before each pass)."""

    condition: Union[Condition, ExprCondition]
    body: tuple["Op", ...]


@dataclass(frozen=True)
class Switch:
    """Run the body of the first case whose ``values`` hold the target's value.

    ``target`` is an expression (see ``evaluate``); a case whose ``values``
    is ``None`` is the default.
    """

    target: tuple
    cases: tuple[tuple[Any, tuple["Op", ...]], ...]


# -- noise (issue 10; see aer_mpi/engine/noise.py) ------------------------------------------
@dataclass(frozen=True, eq=False)
class Noise:
    """A quantum error, sampled once per shot (a trajectory).

    A *mixture* (``kraus`` empty): branch ``i`` (ops on circuit qubits, ``()``
    for the identity) happens with probability ``probabilities[i]``. A
    *Kraus channel* (``kraus`` given): ``K_i`` on ``qubits`` is chosen with
    probability ``||K_i psi||**2`` and the state renormalised.
    """

    qubits: tuple[int, ...]
    probabilities: tuple[float, ...] = ()
    branches: tuple[tuple["Op", ...], ...] = ()
    kraus: tuple[np.ndarray, ...] = ()
    name: str = "noise"


@dataclass(frozen=True, eq=False)
class Readout:
    """Readout error: the value ``v`` of ``clbits`` (``clbits[0]`` lowest) is recorded as ``w``
    with probability ``assignment[v][w]``."""

    clbits: tuple[int, ...]
    assignment: np.ndarray




@dataclass(frozen=True)
class ForLoop:
    """A for loop kept as a loop because its body breaks or continues: ``bodies[i]`` is pass ``i``
    (its loop parameter bound). For loops without ``Break``/``Continue`` are unrolled by assembly."""

    bodies: tuple[tuple["Op", ...], ...]


@dataclass(frozen=True)
class Break:
    """Leave the innermost loop (``WhileLoop`` or ``ForLoop``)."""


@dataclass(frozen=True)
class Continue:
    """Go on with the next pass of the innermost loop."""


@dataclass(frozen=True)
class Store:
    """Write the value of the expression ``expr`` into the classical bits ``clbits`` (LSB first, cut to
    their width): Qiskit's ``store`` on a classical variable, a clbit or a register."""

    clbits: tuple[int, ...]
    expr: tuple


Op = Union[Gate, Diagonal, Swap, GlobalPhase, Measure, Reset, Save, SetState, IfElse, WhileLoop, Switch, ForLoop,
           Break, Continue, Store, Noise, Readout]

#: Ops holding nested blocks of ops.
CONTROL_FLOW = (IfElse, WhileLoop, Switch, ForLoop)


def set_state_kinds(ops: Sequence[Op]) -> set[str]:
    """The kinds of the states ``ops`` set (``SetState.kind``; sets stand at the top level only)."""
    return {op.kind for op in ops if isinstance(op, SetState)}


def saved_kinds(ops: Sequence[Op]) -> set[str]:
    """The save kinds in ``ops``, control flow included."""
    found: set[str] = set()
    for op in ops:
        if isinstance(op, Save):
            found.add(op.kind)
        for block in blocks(op):
            found |= saved_kinds(block)
    return found


def blocks(op: Op) -> tuple[tuple[Op, ...], ...]:
    """The nested op sequences of a control-flow op (none for the others)."""
    if not isinstance(op, CONTROL_FLOW):  # most ops: one test (every save and method check walks them all)
        return ()
    if isinstance(op, IfElse):
        return (op.true_ops, op.false_ops)
    if isinstance(op, WhileLoop):
        return (op.body,)
    if isinstance(op, Switch):
        return tuple(body for _, body in op.cases)
    if isinstance(op, ForLoop):
        return op.bodies
    return ()


@dataclass(frozen=True)
class Program:
    """One circuit, ready to plan: ops on qubits ``0..num_qubits-1``."""

    num_qubits: int
    num_clbits: int
    ops: tuple[Op, ...]
    name: str = "circuit"
    metadata: dict = field(default_factory=dict)
    #: Classical bits of the circuit's variables, after the ``num_clbits`` of its memory (not in counts).
    num_var_bits: int = 0


def is_dynamic(program: Program) -> bool:
    """Whether shots must run one trajectory each.

    A program is *not* dynamic when every measurement is final: no operation
    after a measure touches the measured qubit, no save follows a measure,
    and there is no reset or conditional. Then sampling once from the final
    probabilities is exact.
    """
    measured: set[int] = set()
    for op in program.ops:
        if isinstance(op, (Reset, Store) + CONTROL_FLOW):
            return True
        if isinstance(op, (Noise, Readout)):  # noise: one trajectory per shot
            return True
        if isinstance(op, Measure):
            measured.add(op.qubit)
        elif measured and isinstance(op, Save):
            return True
        elif isinstance(op, (Gate, Diagonal, SetState)) and measured.intersection(op.qubits):
            return True
        elif isinstance(op, Swap) and measured.intersection((op.qubit0, op.qubit1)):
            return True
    return False


#: Fields of an op holding one qubit, and the field holding a tuple of them.
QUBIT_FIELDS = ("qubit", "qubit0", "qubit1")
QUBITS_FIELD = "qubits"


def op_qubits(op: Any) -> tuple[int, ...]:
    """The qubits ``op`` acts on (any op class with ``qubit`` / ``qubit0`` / ``qubit1`` / ``qubits``)."""
    kind = type(op)
    if kind is Gate or kind is Diagonal:  # most ops
        return tuple(map(int, op.qubits))
    fields = qubit_fields(kind)
    if fields is None:  # not a dataclass: its attributes may be the instance's own
        single, many = QUBIT_FIELDS, True
    else:
        single, many = fields
    out = [int(value) for value in (getattr(op, name, None) for name in single) if value is not None]
    if many:
        out.extend(int(q) for q in getattr(op, QUBITS_FIELD, ()) or ())
    return tuple(out)


@functools.lru_cache(maxsize=None)
def qubit_fields(cls: type) -> Optional[tuple[tuple[str, ...], bool]]:
    """(the single-qubit fields of dataclass ``cls``, whether it has ``qubits``), or None for another
    class: looked up once per class, since truncation and planning ask every op of a device-sized
    circuit (1500 ops on 127 qubits) and ``getattr`` of four names per op was most of the truncation."""
    if not dataclasses.is_dataclass(cls):
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    return tuple(name for name in QUBIT_FIELDS if name in names), QUBITS_FIELD in names


def aer_measure_sampling(program: Program) -> tuple[bool, bool]:
    """Aer's ``metadata["measure_sampling"]`` for ``program``, as Aer decides it (its Circuit and
    Executor): (for the statevector-like methods, for the density matrix / superop / unitary).

    No control flow or classical store; after the first measurement only measurements, readout errors
    and ops on unmeasured qubits (a save there, or a gate on a measured qubit, says no); and, but for
    the density methods, no reset and no sampled error (Aer runs those shot by shot). aer_mpi may
    sample where Aer would not (an ``id`` between two measurements is dropped here); the metadata
    says what Aer would do, as code and tests written for Aer read it.
    """
    measured: set[int] = set()
    stochastic = False
    for op in program.ops:
        if isinstance(op, CONTROL_FLOW + (Store,)):
            return False, False
        if isinstance(op, (Reset, Noise)):
            stochastic = True
        if isinstance(op, Measure):
            measured.add(op.qubit)
            continue
        if isinstance(op, (Readout, GlobalPhase)) or not measured:
            continue
        if isinstance(op, Save):
            return False, False
        if measured.intersection(op_qubits(op)):
            return False, False
    return not stochastic, True


def final_measurements(program: Program) -> tuple[tuple[int, int], ...]:
    """(qubit, clbit) pairs of the measurements of a non-dynamic program.

    Swaps after a measure relabel qubits, so the logical qubit measured is
    resolved through them.
    """
    return tuple((op.qubit, op.clbit) for op in program.ops if isinstance(op, Measure))
