"""Idle-qubit truncation: simulate only the qubits a program touches (Aer's ``enable_truncation``).

Promise: ``truncate(program)`` is a pure function returning a program on
``0..k-1`` where ``k`` is the number of qubits that can change its results
(below; ops are found at any depth of control flow, and any op class with
``qubits`` / ``qubit`` / ``qubit0`` / ``qubit1`` fields counts), renumbered in
increasing order of the original index. Classical bits are untouched, so
counts and memory keep the user's layout; saves on qubits are renumbered
with them (a save of every qubit keeps every qubit). The map is recorded in
``program.metadata``: ``active_input_qubits`` (Aer's key, sorted) and
``input_qubit_map`` (``[input, simulated]`` pairs). A program that uses
every qubit is returned as it is.

Only the qubits that can change the results are kept (Aer's truncation does
the same): those that a measurement, save or set reads, and those joined to
them by ops on several qubits (gates, errors, swaps, in control flow too). A
qubit that only errors act on (a device noise model's relaxation on the
delays of a scheduled circuit's idle qubits), or only gates that never meet a
read qubit, is left out with its ops. An error that also acts on a kept
qubit keeps all of its qubits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional

from aer_mpi import ir

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
        used.update(ir.op_qubits(op))
        for block in ir.blocks(op):
            stack.append(iter(block))
    return used


#: Ops that read their qubits into the results: a qubit joined to none of them, by gates or errors
#: on several qubits, cannot change what the user gets.
_READING = (ir.Measure, ir.Save, ir.SetState)


def _read_at_the_end(ops: tuple, num_qubits: int) -> bool:
    """Whether the measurements and saves that end ``ops`` read every qubit (``measure_all``,
    ``save_statevector``): then every qubit is observed, without a walk over the whole program."""
    read: set[int] = set()
    for op in reversed(ops):
        if isinstance(op, ir.GlobalPhase):
            continue
        if not isinstance(op, _READING):
            break
        read.update(ir.op_qubits(op))
        if len(read) >= num_qubits:
            return True
    return False


def observed_qubits(ops: Iterable[ir.Op], first_if_none: bool = False) -> set[int]:
    """The qubits that can change what a run gives: those joined, by ops on several qubits (gates,
    errors, swaps, at any depth of control flow), to a qubit that a measurement, save or set reads.
    A qubit that only errors act on, or only gates that never meet a read qubit, is left out with
    its ops, as Aer's truncation leaves it out (see the module's docstring)."""
    parent: dict[int, int] = {}

    def root(q: int) -> int:
        parent.setdefault(q, q)
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    read: set[int] = set()
    stack = [iter(ops)]
    while stack:
        op = next(stack[-1], None)
        if op is None:
            stack.pop()
            continue
        qubits = list(ir.op_qubits(op))
        if qubits:
            first = root(qubits[0])
            for q in qubits[1:]:
                parent[root(q)] = first
        if isinstance(op, _READING):
            read.update(qubits)
        elif isinstance(op, ir.CONTROL_FLOW):
            for block in ir.blocks(op):
                stack.append(iter(block))
    if not read and first_if_none and parent:
        read = {min(parent)}  # nothing is read: a state still needs qubits; the first one's kept whole
    roots = {root(q) for q in read}
    return {q for q in parent if root(q) in roots}


def _remap_ops(ops: tuple, mapping: dict[int, int]) -> tuple:
    # ops on left-out qubits go with them (observed_qubits: an op's qubits are all kept or all left out)
    return tuple(_remap(op, mapping) for op in ops if _kept(op, mapping))


def _kept(op: Any, mapping: dict[int, int]) -> bool:
    if isinstance(op, ir.CONTROL_FLOW):
        return True  # control flow stays (its condition reads clbits); its blocks are remapped
    qubits = ir.op_qubits(op)
    return not qubits or any(q in mapping for q in qubits)


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
    kind = type(op)
    if kind is ir.Gate:  # most ops: built directly (dataclasses.replace is a few times slower)
        return ir.Gate(tuple(mapping[int(q)] for q in op.qubits), op.matrix, op.name)
    if kind is ir.Diagonal:
        return ir.Diagonal(tuple(mapping[int(q)] for q in op.qubits), op.diag, op.name)
    fields = ir.qubit_fields(kind)
    if fields is None:
        return op
    single, many = fields
    changes: dict[str, Any] = {}
    for name in single:
        if getattr(op, name) is not None:
            changes[name] = mapping[int(getattr(op, name))]
    if many:
        changes[ir.QUBITS_FIELD] = tuple(mapping[int(q)] for q in getattr(op, ir.QUBITS_FIELD))
    return dataclasses.replace(op, **changes) if changes else op


def truncate(program: ir.Program) -> ir.Program:
    """``program`` on its used qubits only (see the module's promise)."""
    n = program.num_qubits
    if _read_at_the_end(program.ops, n):
        seen: set[int] = set(range(n))
    else:
        seen = observed_qubits(program.ops, first_if_none=True)
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
