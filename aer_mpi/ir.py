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

from dataclasses import dataclass, field
from typing import Any, Union

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


SAVE_KINDS = (
    "statevector",
    "statevector_dict",
    "probabilities",
    "probabilities_dict",
    "amplitudes",
    "amplitudes_sq",
    "expectation_value",
    "expectation_value_variance",
)


@dataclass(frozen=True)
class Condition:
    """True when the classical bits ``clbits`` (LSB first) read ``value``."""

    clbits: tuple[int, ...]
    value: int


@dataclass(frozen=True)
class IfElse:
    condition: Condition
    true_ops: tuple["Op", ...]
    false_ops: tuple["Op", ...] = ()


Op = Union[Gate, Diagonal, Swap, GlobalPhase, Measure, Reset, Save, IfElse]


@dataclass(frozen=True)
class Program:
    """One circuit, ready to plan: ops on qubits ``0..num_qubits-1``."""

    num_qubits: int
    num_clbits: int
    ops: tuple[Op, ...]
    name: str = "circuit"
    metadata: dict = field(default_factory=dict)


def is_dynamic(program: Program) -> bool:
    """Whether shots must run one trajectory each.

    A program is *not* dynamic when every measurement is final: no operation
    after a measure touches the measured qubit, no save follows a measure,
    and there is no reset or conditional. Then sampling once from the final
    probabilities is exact.
    """
    measured: set[int] = set()
    for op in program.ops:
        if isinstance(op, (Reset, IfElse)):
            return True
        if isinstance(op, Measure):
            measured.add(op.qubit)
        elif measured and isinstance(op, Save):
            return True
        elif isinstance(op, (Gate, Diagonal)) and measured.intersection(op.qubits):
            return True
        elif isinstance(op, Swap) and measured.intersection((op.qubit0, op.qubit1)):
            return True
    return False


def final_measurements(program: Program) -> tuple[tuple[int, int], ...]:
    """(qubit, clbit) pairs of the measurements of a non-dynamic program.

    Swaps after a measure relabel qubits, so the logical qubit measured is
    resolved through them.
    """
    return tuple((op.qubit, op.clbit) for op in program.ops if isinstance(op, Measure))
