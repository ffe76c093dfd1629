"""A circuit as an operator: Aer's ``unitary`` and ``superop`` methods on the sharded statevector.

A matrix ``M`` on a register of ``m`` qubits is read from a vector of ``4**m`` amplitudes, run by
the statevector engine as a program on ``2m`` qubits, sharded, fused and cache-blocked like any
other: the qubits ``m..2m-1`` are entangled with ``0..m-1`` into ``sum_i |i>|i> / sqrt(2**m)``
(one 2-qubit gate per pair), then the circuit acts on ``0..m-1``, leaving
``sum_i M|i> |i> / sqrt(2**m)``: entry ``j + 2**m i`` is ``M[j, i] / sqrt(2**m)``. A save of the
operator is a statevector save of the ``2m`` qubits where it stands.

* ``unitary``: the register is the circuit's ``n`` qubits and ``M`` its unitary. Aer's method takes
  gates only; a noise model's error whose branches are all unitary has one branch drawn for the run
  (Aer does the same), a non-unitary one is refused.
* ``superop``: the register is the ``2n`` qubits of the density matrix's vector, on which the
  circuit acts as on ``engine/density.py``'s (a gate ``U`` on ``Q`` and ``conj(U)`` on ``Q + n``,
  a reset or an error its superoperator), and ``M`` is the circuit's superoperator
  (column-stacking, as ``qiskit.quantum_info.SuperOp``): resets and every kind of error included.

Both take control flow on classical bits that nothing measures (they stay 0, so each condition is
known before the run), as Aer; measurements and state saves are refused by ``operator_program``
with an error that says what to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aer_mpi import ir
from aer_mpi.engine.density import MAX_ERROR_QUBITS, doubled_ops
from aer_mpi.errors import InvalidInputError

#: ``(|00> + |11>) / sqrt(2)`` from ``|00>`` on the qubits ``(k, m + k)`` (``k`` the low bit): a
#: Hadamard on ``m + k``, then a CX from ``m + k`` to ``k``.
_PAIR = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 1, 0, -1], [1, 0, -1, 0]], dtype=complex) / np.sqrt(2)

#: The methods (and ``ir.Save`` kinds of what they save).
UNITARY = "unitary"
SUPEROP = "superop"
OPERATOR_KINDS = (UNITARY, SUPEROP)

_INSTEAD = "use method='statevector' (or 'automatic') for circuits with measurements"


@dataclass(frozen=True)
class OperatorSave:
    """A save of the circuit's operator: its label and subtype, and the label of the statevector
    save of the ``2m``-qubit program that reads it."""

    label: str
    subtype: str
    read: str


def register_qubits(method: str, num_qubits: int) -> int:
    """The qubits ``m`` of the register the operator of ``method`` acts on (its matrix is ``2**m`` wide)."""
    return num_qubits if method == UNITARY else 2 * num_qubits


def operator_program(program: ir.Program, method: str, seed: int) -> tuple[ir.Program, list[OperatorSave], int]:
    """The program whose state holds ``program``'s operator under ``method`` (``"unitary"`` or
    ``"superop"``), its saves and the number of quantum errors whose branch was drawn (unitary
    only). Raises ``InvalidInputError`` for what the method does not take, as Aer's method refuses
    it. ``seed`` draws the branch of each quantum error (the same on every rank)."""
    n = program.num_qubits
    m = register_qubits(method, n)
    rng = np.random.default_rng(seed)
    ops: list[Any] = [ir.Gate((k, m + k), _PAIR, "operator_pair") for k in range(m)]
    saves: list[OperatorSave] = []
    drawn = [0]
    where = f"circuit {program.name!r} under method={method!r}"
    # nothing is measured: as Aer, conditions read classical bits that stay 0
    clbits = np.zeros(program.num_clbits + program.num_var_bits, dtype=np.int64)

    def add_unitary(op: Any) -> None:
        if isinstance(op, (ir.Gate, ir.Diagonal, ir.Swap, ir.GlobalPhase)):
            ops.append(op)
        elif isinstance(op, ir.Noise):
            if op.kraus or not op.branches:
                raise InvalidInputError(
                    f"{where}: the noise model has a non-unitary error on qubits {list(op.qubits)} (a Kraus "
                    f"channel: amplitude damping, thermal relaxation, ...), which a unitary cannot hold; "
                    f"use method='superop', 'density_matrix' or 'statevector' for this noise model")
            branch = op.branches[int(rng.choice(len(op.branches), p=_normalised(op.probabilities)))]
            drawn[0] += 1
            for inner in branch:
                add_unitary(inner)
        elif isinstance(op, ir.Reset):
            raise InvalidInputError(
                f"{where}: a reset (or a reset error of the noise model) on qubit {op.qubit} is not unitary; "
                f"use method='superop' for its channel, or method='statevector'")
        else:
            add(op)

    def add_superop(op: Any) -> None:
        doubled = doubled_ops(op, n)
        if doubled is not None:
            ops.extend(doubled)
        elif isinstance(op, ir.Noise):
            raise InvalidInputError(
                f"{where}: an error on {len(op.qubits)} qubits: the superop method takes errors on at most "
                f"{MAX_ERROR_QUBITS} qubits here (its superoperator is one dense gate on twice its qubits)")
        else:
            add(op)

    def add(op: Any) -> None:
        """What both methods take alike."""
        if isinstance(op, ir.Save):
            if not (op.kind == method or (op.of_method and op.kind == "statevector")):
                raise InvalidInputError(
                    f"{where}: save {op.label!r} ({op.kind}) is not what the {method} method saves: use "
                    f"save_{method} (or save_state); for states use method='statevector'")
            if len(op.qubits) != n:
                raise InvalidInputError(f"{where}: save_{method} {op.label!r} must be on every qubit of the circuit")
            read = f"_aer_mpi_operator_save_{len(saves)}"
            label = method if op.of_method and op.label == "statevector" else op.label
            saves.append(OperatorSave(label, op.subtype, read))
            ops.append(ir.Save("statevector", tuple(range(2 * m)), read, "single"))
        elif isinstance(op, ir.Measure):
            raise InvalidInputError(f"{where}: a measurement of qubit {op.qubit} is not an operator; " + _INSTEAD)
        elif isinstance(op, ir.SetState) and op.kind == method:
            # set_unitary / set_superop: M itself, entry j + 2**m i is M[j, i] / sqrt(2**m)
            ops.append(ir.SetState(tuple(range(2 * m)), np.asarray(op.state).ravel(order="F") / np.sqrt(1 << m)))
        elif isinstance(op, ir.SetState) and op.kind == "statevector":
            raise InvalidInputError(f"{where}: set_statevector, or an initialize of every qubit, sets the state "
                                    f"whatever it was, which is not unitary: use set_{method} (or method='statevector')")
        elif isinstance(op, ir.SetState):
            raise InvalidInputError(f"{where}: set_{op.kind} sets a {op.kind.replace('_', ' ')}, not a "
                                    f"{method}: use set_{method} (or method={op.kind!r})")
        elif isinstance(op, ir.Readout):
            pass  # a readout error acts on measured values: there are none
        elif isinstance(op, ir.IfElse):
            for inner in (op.true_ops if ir.condition_holds(op.condition, clbits) else op.false_ops):
                each(inner)
        elif isinstance(op, ir.Switch):
            value = ir.evaluate(op.target, clbits)
            for values, body in op.cases:
                if values is None or value in values:
                    for inner in body:
                        each(inner)
                    break
        elif isinstance(op, ir.ForLoop):
            for body in op.bodies:
                for inner in body:
                    each(inner)
        elif isinstance(op, ir.WhileLoop):
            if ir.condition_holds(op.condition, clbits):
                raise InvalidInputError(f"{where}: a while loop whose condition holds on classical bits that "
                                        f"nothing measures never ends")
        else:
            raise InvalidInputError(f"{where}: {type(op).__name__.lower()} is not a gate; " + _INSTEAD)

    each = add_unitary if method == UNITARY else add_superop
    for op in program.ops:
        each(op)
    return ir.Program(2 * m, 0, tuple(ops), program.name, dict(program.metadata)), saves, drawn[0]


def _normalised(probabilities: tuple[float, ...]) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, None)
    return p / p.sum()


def operator_of(amplitudes: np.ndarray, m: int) -> np.ndarray:
    """``M`` from the ``2m``-qubit state ``sum_i M|i>|i> / sqrt(2**m)`` (entry ``j + 2**m i``)."""
    dim = 1 << m
    amplitudes = np.asarray(amplitudes)
    return np.ascontiguousarray(amplitudes.reshape(dim, dim).T) * np.sqrt(dim).astype(amplitudes.real.dtype)


def operator_saves_of(ops: tuple) -> set[str]:
    """The operator kinds ``ops`` (control flow included) save (only the method of that name answers them)."""
    return ir.saved_kinds(ops) & set(OPERATOR_KINDS)
