"""Idle-qubit truncation: simulate only the qubits a program touches (Aer's ``enable_truncation``).

Promise: ``truncate(program)`` is a pure function returning a program on
``0..k-1`` where ``k`` is the number of qubits any op uses (gates, swaps,
measures, resets, saves, ops in control-flow bodies, and any op class with
``qubits`` / ``qubit`` / ``qubit0`` / ``qubit1`` fields), renumbered in
increasing order of the original index. Classical bits are untouched, so
counts and memory keep the user's layout; saves on qubits are renumbered
with them (a save of every qubit keeps every qubit). The map is recorded in
``program.metadata``: ``active_input_qubits`` (Aer's key, sorted) and
``input_qubit_map`` (``[input, simulated]`` pairs). A program that uses
every qubit is returned as it is.

Noise alone does not make a qubit used: a qubit that only errors act on (a
device noise model's relaxation on the delays of a scheduled circuit's idle
qubits) never meets the others and is never read, so it and its errors are
left out, as Aer leaves it out. An error that also acts on a used qubit keeps
all of its qubits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional

from aer_mpi import ir

#: Fields holding one qubit, and the field holding a tuple of them.
_QUBIT_FIELDS = ("qubit", "qubit0", "qubit1")
_QUBITS_FIELD = "qubits"


def _op_qubits(op: Any) -> Iterable[int]:
    for name in _QUBIT_FIELDS:
        value = getattr(op, name, None)
        if value is not None:
            yield int(value)
    yield from (int(q) for q in getattr(op, _QUBITS_FIELD, ()) or ())


def used_qubits(ops: Iterable[ir.Op], stop_at: Optional[int] = None,
                noise: Optional[list] = None) -> set[int]:
    """Every qubit an op of ``ops`` or of their nested blocks uses (no recursion on Python's stack);
    with ``stop_at``, possibly only those seen once there are that many (most circuits use every
    qubit within their first layer, and a parameter sweep asks for each binding). With a
    ``noise`` list, errors (``ir.Noise``) are not counted but their qubit sets appended to it."""
    used: set[int] = set()
    stack = [iter(ops)]
    while stack and (stop_at is None or len(used) < stop_at):
        op = next(stack[-1], None)
        if op is None:
            stack.pop()
            continue
        if noise is not None and isinstance(op, ir.Noise):
            noise.append(frozenset(int(q) for q in op.qubits))
            continue
        used.update(_op_qubits(op))
        for block in ir.blocks(op):
            stack.append(iter(block))
    return used


def observed_qubits(ops: Iterable[ir.Op]) -> set[int]:
    """The qubits ``ops`` use, but for those only errors act on (see the module's docstring)."""
    errors: list = []
    used = used_qubits(ops, noise=errors)
    pending = set(errors)
    while True:  # an error touching a used qubit makes all of its qubits used, which may reach others
        reached = {e for e in pending if e & used}
        if not reached:
            return used
        for error in reached:
            used |= error
        pending -= reached


def _remap_ops(ops: tuple, mapping: dict[int, int]) -> tuple:
    # errors on left-out qubits only go with them (observed_qubits)
    return tuple(_remap(op, mapping) for op in ops
                 if not (isinstance(op, ir.Noise) and not any(int(q) in mapping for q in op.qubits)))


def _remap(op: Any, mapping: dict[int, int]) -> Any:
    if isinstance(op, ir.IfElse):
        return dataclasses.replace(op, true_ops=_remap_ops(op.true_ops, mapping),
                                   false_ops=_remap_ops(op.false_ops, mapping))
    if isinstance(op, ir.WhileLoop):
        return dataclasses.replace(op, body=_remap_ops(op.body, mapping))
    if isinstance(op, ir.Switch):
        return dataclasses.replace(op, cases=tuple((v, _remap_ops(b, mapping)) for v, b in op.cases))
    if isinstance(op, ir.ForLoop):
        return dataclasses.replace(op, bodies=tuple(_remap_ops(b, mapping) for b in op.bodies))
    if isinstance(op, ir.Noise):  # its branches are ops on circuit qubits too
        return dataclasses.replace(op, qubits=tuple(mapping[int(q)] for q in op.qubits),
                                   branches=tuple(_remap_ops(b, mapping) for b in op.branches))
    if not dataclasses.is_dataclass(op):
        return op
    changes: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(op)}
    for name in _QUBIT_FIELDS:
        if name in names and getattr(op, name) is not None:
            changes[name] = mapping[int(getattr(op, name))]
    if _QUBITS_FIELD in names:
        changes[_QUBITS_FIELD] = tuple(mapping[int(q)] for q in getattr(op, _QUBITS_FIELD))
    return dataclasses.replace(op, **changes) if changes else op


def truncate(program: ir.Program) -> ir.Program:
    """``program`` on its used qubits only (see the module's promise)."""
    n = program.num_qubits
    seen = used_qubits(program.ops, stop_at=n, noise=[])
    if not all(q in seen for q in range(n)):  # not every qubit yet: read every op
        seen = observed_qubits(program.ops)
    used = sorted(q for q in seen if 0 <= q < n)
    if not used:
        used = [0]  # nothing touches a qubit: one qubit still makes a state
    metadata = dict(program.metadata)
    metadata["active_input_qubits"] = list(used)
    metadata["input_qubit_map"] = [[q, i] for i, q in reversed(list(enumerate(used)))]  # Aer's order: highest first
    if len(used) == program.num_qubits:
        return dataclasses.replace(program, metadata=metadata)
    mapping = {q: i for i, q in enumerate(used)}
    return dataclasses.replace(
        program,
        num_qubits=len(used),
        ops=_remap_ops(program.ops, mapping),
        metadata=dict(metadata, remapped_qubits=True),
    )


__all__ = ["observed_qubits", "truncate", "used_qubits"]
