"""A circuit's unitary: Aer's ``unitary`` method on the sharded statevector.

The unitary ``U`` of ``n`` qubits is read from a vector of ``4**n`` amplitudes, run by the
statevector engine as a program on ``2n`` qubits, sharded, fused and cache-blocked like any other:
the qubits ``n..2n-1`` are entangled with ``0..n-1`` into ``sum_i |i>|i> / sqrt(2**n)`` (one
2-qubit gate per pair), then the circuit acts on ``0..n-1``, leaving ``sum_i U|i> |i> / sqrt(2**n)``:
entry ``j + 2**n i`` is ``U[j, i] / sqrt(2**n)``. A ``save_unitary`` (or ``save_state``) is a
statevector save of the ``2n`` qubits where it stands.

Aer's method takes gates, barriers and ``save_unitary``/``save_state`` only, and control flow on
classical bits that nothing measures (they stay 0, so each condition is known before the run); a
noise model's error whose branches are all unitary is sampled once per run (one branch: Aer does
the same), a non-unitary one is refused. Everything else is refused by ``unitary_program`` with an error that
says what to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import InvalidInputError

#: ``(|00> + |11>) / sqrt(2)`` from ``|00>`` on the qubits ``(k, n + k)`` (``k`` the low bit): a
#: Hadamard on ``n + k``, then a CX from ``n + k`` to ``k``.
_PAIR = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 1, 0, -1], [1, 0, -1, 0]], dtype=complex) / np.sqrt(2)

#: ``ir.Save.kind`` of a saved unitary.
UNITARY = "unitary"

_INSTEAD = "use method='statevector' (or 'automatic') for circuits with measurements or resets"


@dataclass(frozen=True)
class UnitarySave:
    """A save of the circuit's unitary: its label and subtype, and the label of the statevector
    save of the ``2n``-qubit program that reads it."""

    label: str
    subtype: str
    read: str


def is_unitary_save(op: Any) -> bool:
    """A ``save_unitary``, or a ``save_state`` (the method's own state)."""
    return isinstance(op, ir.Save) and (op.kind == UNITARY or (op.of_method and op.kind == "statevector"))


def unitary_program(program: ir.Program, seed: int) -> tuple[ir.Program, list[UnitarySave], int]:
    """The ``2n``-qubit program whose state holds ``program``'s unitary, its saves and the number of
    quantum errors whose branch was drawn. Raises
    ``InvalidInputError`` for what the unitary method does not take (as Aer's: measurements,
    resets, other saves, control flow, non-unitary errors). ``seed`` draws the branch of each
    quantum error (the same on every rank)."""
    n = program.num_qubits
    rng = np.random.default_rng(seed)
    ops: list[Any] = [ir.Gate((k, n + k), _PAIR, "unitary_pair") for k in range(n)]
    saves: list[UnitarySave] = []
    drawn = [0]
    where = f"circuit {program.name!r} under method='unitary'"
    # nothing is measured: as Aer, conditions read classical bits that stay 0
    clbits = np.zeros(program.num_clbits + program.num_var_bits, dtype=np.int64)

    def add(op: Any) -> None:
        if isinstance(op, (ir.Gate, ir.Diagonal, ir.Swap, ir.GlobalPhase)):
            ops.append(op)
        elif isinstance(op, ir.Noise):
            if op.kraus or not op.branches:
                raise InvalidInputError(
                    f"{where}: the noise model has a non-unitary error on qubits {list(op.qubits)} (a Kraus "
                    f"channel: amplitude damping, thermal relaxation, ...), which a unitary cannot hold; "
                    f"use method='density_matrix' or 'statevector' for this noise model")
            branch = op.branches[int(rng.choice(len(op.branches), p=_normalised(op.probabilities)))]
            drawn[0] += 1
            for inner in branch:
                add(inner)
        elif isinstance(op, ir.Reset):
            raise InvalidInputError(
                f"{where}: a reset (or a reset error of the noise model) on qubit {op.qubit} is not unitary; "
                + _INSTEAD)
        elif isinstance(op, ir.Save):
            if not is_unitary_save(op):
                raise InvalidInputError(
                    f"{where}: save {op.label!r} ({op.kind}) saves a state; the unitary method saves the "
                    f"unitary (save_unitary, save_state); for states use method='statevector'")
            if len(op.qubits) != n:
                raise InvalidInputError(f"{where}: save_unitary {op.label!r} must be on every qubit of the circuit")
            read = f"_aer_mpi_unitary_save_{len(saves)}"
            label = UNITARY if op.of_method and op.label == "statevector" else op.label
            saves.append(UnitarySave(label, op.subtype, read))
            ops.append(ir.Save("statevector", tuple(range(2 * n)), read, "single"))
        elif isinstance(op, ir.Measure):
            raise InvalidInputError(f"{where}: a measurement of qubit {op.qubit} is not unitary; " + _INSTEAD)
        elif isinstance(op, ir.SetState):
            raise InvalidInputError(f"{where}: set_statevector (or initialize) sets a state; " + _INSTEAD)
        elif isinstance(op, ir.Readout):
            pass  # a readout error acts on measured values: there are none
        elif isinstance(op, ir.IfElse):
            for inner in (op.true_ops if ir.condition_holds(op.condition, clbits) else op.false_ops):
                add(inner)
        elif isinstance(op, ir.Switch):
            value = ir.evaluate(op.target, clbits)
            for values, body in op.cases:
                if values is None or value in values:
                    for inner in body:
                        add(inner)
                    break
        elif isinstance(op, ir.ForLoop):
            for body in op.bodies:
                for inner in body:
                    add(inner)
        elif isinstance(op, ir.WhileLoop):
            if ir.condition_holds(op.condition, clbits):
                raise InvalidInputError(f"{where}: a while loop whose condition holds on classical bits that "
                                        f"nothing measures never ends")
        else:
            raise InvalidInputError(f"{where}: {type(op).__name__.lower()} is not a gate; " + _INSTEAD)

    for op in program.ops:
        add(op)
    return ir.Program(2 * n, 0, tuple(ops), program.name, dict(program.metadata)), saves, drawn[0]


def _normalised(probabilities: tuple[float, ...]) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, None)
    return p / p.sum()


def unitary_of(amplitudes: np.ndarray, n: int) -> np.ndarray:
    """``U`` from the ``2n``-qubit state ``sum_i U|i>|i> / sqrt(2**n)`` (entry ``j + 2**n i``)."""
    dim = 1 << n
    return np.ascontiguousarray(np.asarray(amplitudes).reshape(dim, dim).T) * np.sqrt(dim).astype(
        np.asarray(amplitudes).real.dtype)


def has_unitary_saves(ops: tuple) -> bool:
    """Whether ``ops`` (control flow included) hold a ``save_unitary`` (only the unitary method answers it)."""
    return any((isinstance(op, ir.Save) and op.kind == UNITARY) or any(has_unitary_saves(b) for b in ir.blocks(op))
               for op in ops)
