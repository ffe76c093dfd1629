"""Gate fusion on the logical program, before localisation.

Promise: ``fuse(program)`` returns a program with the same unitary (up to
rounding) whose runs of gates on few qubits are merged into one ``ir.Gate``
of at most ``max_qubits`` qubits, and whose runs of diagonals are merged into
one ``ir.Diagonal`` of at most ``max_diagonal_qubits`` qubits. It depends
only on the program and the options, never on the number of ranks, so the
same seed gives the same result whatever the distribution.

Method (greedy, one pass, like Aer's): *open blocks* on disjoint qubit sets
collect gates. An op joins the open blocks it touches when the merged block
is no more expensive to apply than the blocks and the op apart (a measured
cost per kind and width, ``COSTS``); otherwise those blocks are closed
(emitted) and the op opens a new block. Open blocks on disjoint qubits
commute, so emitting them in the order they close keeps the program's
meaning. Non-unitary ops (measure, reset, save, conditionals) close every
block; swaps, being relabellings, close only the blocks on their qubits.

Fused matrices have entries below ``ZERO`` set to exact zero, so that the
localiser sees the exact structure (a control stays a control) and a gate
split into rank-conditioned blocks computes the same sums as the whole.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from aer_mpi import ir

#: Cost of one dense gate on k qubits applied as its own pass over the state (memory-bound), in
#: passes of a 1-qubit gate (best of 8, interleaved, numba kernels on a 22-qubit array, one
#: thread: a 1-qubit pass took 0.024 s; see docs/performance.md). Re-measuring with these costs
#: against the first guess (1, 1.6, 2.6, 4.5, 9; diagonal 1.0) took QFT-22 from 6.3 s to 3.1 s
#: and QV-22 from 4.3 s to 3.3 s.
DENSE_COSTS = {0: 1.0, 1: 1.0, 2: 2.2, 3: 3.0, 4: 3.9, 5: 7.3}
#: Cost of one diagonal pass (a table look-up per amplitude), up to ``max_diagonal_qubits``.
DIAGONAL_COST = 0.8
#: The same inside a cache-blocked stage (plan/stages.py), where a chunk stays in cache while
#: every gate of the stage runs on it: there a gate costs its arithmetic, 2**k complex products
#: per amplitude, not a pass over memory, so wide gates cost far more than the narrow ones they
#: replace (native kernels, 64 random gates of each width on 2**16 and 2**20 amplitudes, chunks
#: of 2**16, 1 and 2 threads, in units of a 1-qubit gate: 1, 1.6-1.7, 3.1, 5.9, 19-21; a
#: diagonal of 1-12 qubits 1.6-1.9; ``python scripts/bench_kernels.py --fusion-costs``), on an
#: Intel Xeon with AVX-512. On an AMD EPYC (Zen 3, AVX2) a 4-qubit gate costs 8.6-12.7 1-qubit
#: gates (its 16 fmas per amplitude at the fma units' rate), and 8 here stops the fusion from
#: bridging two 2-qubit blocks into a 4-qubit gate that does more arithmetic than its parts:
#: at 24 qubits there, QFT 1.10 -> 0.96 s, QV 1.84 -> 1.65 s (528 -> 472 complex products per
#: amplitude), random and brickwork unchanged (two alternating pairs of runs each).
STAGE_DENSE_COSTS = {0: 1.0, 1: 1.0, 2: 1.65, 3: 3.1, 4: 8.0, 5: 20.0}
STAGE_DIAGONAL_COST = 1.7
#: What each fused op costs besides its arithmetic when the program is wider than the cache: an
#: op more is an op more that may need a cache swap first, or run as a pass of its own when no
#: swap pays (plan/stages.py). Chosen by measurement: QV, random, QFT and brickwork circuits at
#: 24 qubits, 0, 0.5, 1 and 2 tried; 0.5-1 was best on all four (docs/performance.md).
CACHE_TIER_OP_COST = 1.0
#: A stage's chunk as the fusion assumes it when the cache_qubits option is not set: 1 MiB of
#: double amplitudes (the engine sizes chunks from the L2 cache, which the fusion must not
#: depend on: the same program fuses alike on every machine).
TYPICAL_CHUNK_QUBITS = 16
#: Default widest fused dense gate (Aer's ``fusion_max_qubit`` is 5).
DEFAULT_MAX_QUBITS = 5
#: Widest fused dense gate and diagonal the kernels take.
MAX_QUBITS = 10
MAX_DIAGONAL_QUBITS = 20
#: Default widest fused diagonal (its table has ``2**k`` entries).
DEFAULT_MAX_DIAGONAL_QUBITS = 12
#: Default smallest program that is fused (Aer's ``fusion_threshold`` is 14 too).
DEFAULT_THRESHOLD = 14
#: Fused-matrix entries below this magnitude are made exact zeros.
ZERO = 1e-14


@dataclass
class FusionOptions:
    enabled: bool = True
    max_qubits: int = DEFAULT_MAX_QUBITS
    max_diagonal_qubits: int = DEFAULT_MAX_DIAGONAL_QUBITS
    #: Programs with fewer qubits are not fused (Aer's ``fusion_threshold``).
    threshold: int = DEFAULT_THRESHOLD
    #: Whether the gates run in cache-blocked stages (the costs of ``STAGE_DENSE_COSTS``) or as
    #: passes of their own over the state (``DENSE_COSTS``).
    staged: bool = True
    #: With ``staged``: the program has more qubits than a stage's chunk, so the cache tier swaps
    #: positions in (each op costs ``CACHE_TIER_OP_COST`` more). From the program's qubits, not a
    #: shard's, so that the fusion is the same at any rank count.
    wider_than_cache: bool = False

    def check(self) -> None:
        if not 1 <= self.max_qubits <= MAX_QUBITS:
            raise ValueError(f"fusion max_qubits={self.max_qubits}: expecting 1 to {MAX_QUBITS}")
        if not self.max_qubits <= self.max_diagonal_qubits <= MAX_DIAGONAL_QUBITS:
            raise ValueError(
                f"fusion max_diagonal_qubits={self.max_diagonal_qubits}: expecting {self.max_qubits} to {MAX_DIAGONAL_QUBITS}"
            )


@dataclass
class _Block:
    indices: list = field(default_factory=list)  # of its ops in the list being fused
    qubits: list = field(default_factory=list)  # in order of first appearance
    diagonal: bool = True
    order: int = 0  # when the block opened (for a stable emission order)

    def cost(self, options: FusionOptions) -> float:
        return _cost(len(self.qubits), self.diagonal, options)


def _cost(width: int, diagonal: bool, options: FusionOptions) -> float:
    if not options.staged:
        return DIAGONAL_COST if diagonal else DENSE_COSTS.get(width, float("inf"))
    extra = CACHE_TIER_OP_COST if options.wider_than_cache else 0.0
    return extra + (STAGE_DIAGONAL_COST if diagonal else STAGE_DENSE_COSTS.get(width, float("inf")))


def _op_cost(op: ir.Op, options: FusionOptions) -> float:
    return _cost(len(op.qubits), isinstance(op, ir.Diagonal), options)


@dataclass
class FusionStats:
    ops_in: int = 0
    ops_out: int = 0
    fused_gates: int = 0
    fused_diagonals: int = 0
    widest: int = 0

    def as_dict(self) -> dict:
        return {
            "ops_in": self.ops_in,
            "ops_out": self.ops_out,
            "fused_gates": self.fused_gates,
            "fused_diagonals": self.fused_diagonals,
            "widest": self.widest,
        }


#: How a flat op list fuses depends only on each op's kind and qubits (``_Fuser._add``), never on
#: its matrix: the bindings of one parameterised circuit share one schedule, and only their fused
#: matrices are rebuilt. Entries: ``(index,)`` keeps op ``index``; ``(indices, qubits, diagonal)``
#: fuses those ops. Most recent programs' schedules, by structure.
_SCHEDULES: "OrderedDict[tuple, list]" = OrderedDict()
_SCHEDULES_KEPT = 32


def _structure(ops: Sequence[ir.Op], options: FusionOptions) -> Optional[tuple]:
    """What decides ``ops``' fusion schedule, or None when it is not kept (an ``IfElse``, whose
    branches are fused on their own)."""
    key: list = [(options.max_qubits, options.max_diagonal_qubits, options.staged, options.wider_than_cache)]
    for op in ops:
        kind = type(op)
        if kind is ir.Gate or kind is ir.Diagonal:
            key.append((kind, op.qubits))
        elif kind is ir.Swap:
            key.append((kind, op.qubit0, op.qubit1))
        elif kind is ir.IfElse:
            return None
        else:  # a phase is kept in place; any other op closes every block
            key.append(kind)
    return tuple(key)


class _Fuser:
    def __init__(self, options: FusionOptions):
        self.options = options
        self.out: list[ir.Op] = []
        self.open: list[_Block] = []
        self.opened = 0
        self.stats = FusionStats()
        self.schedule: list[tuple] = []
        self.ops: Sequence[ir.Op] = ()

    def run(self, ops: Sequence[ir.Op]) -> list[ir.Op]:
        self.ops = ops
        for index, op in enumerate(ops):
            self.stats.ops_in += 1
            if isinstance(op, (ir.Gate, ir.Diagonal)):
                self._add(op, index)
            elif isinstance(op, ir.GlobalPhase):
                self._keep(op, index)  # commutes with everything
            elif isinstance(op, ir.Swap):
                self._close_touching({op.qubit0, op.qubit1})
                self._keep(op, index)
            elif isinstance(op, ir.IfElse):
                self._close_all()
                self._keep(
                    ir.IfElse(
                        op.condition,
                        tuple(_Fuser(self.options).run(op.true_ops)),
                        tuple(_Fuser(self.options).run(op.false_ops)),
                    ),
                    index,
                )
            else:
                self._close_all()
                self._keep(op, index)
        self._close_all()
        self.stats.ops_out = len(self.out)
        return self.out

    def replay(self, ops: Sequence[ir.Op], schedule: list[tuple]) -> list[ir.Op]:
        """What ``run(ops)`` gives, by the schedule ``run`` recorded for ops of the same structure."""
        self.stats.ops_in = len(ops)
        for entry in schedule:
            if len(entry) == 1:
                self.out.append(ops[entry[0]])
            else:
                indices, qubits, diagonal = entry
                self.out.append(self._fused([ops[i] for i in indices], qubits, diagonal))
        self.stats.ops_out = len(self.out)
        return self.out

    def _keep(self, op: ir.Op, index: int) -> None:
        self.out.append(op)
        self.schedule.append((index,))

    def _add(self, op, index: int) -> None:
        qubits = set(op.qubits)
        touching = [b for b in self.open if qubits.intersection(b.qubits)]
        diagonal = isinstance(op, ir.Diagonal) and all(b.diagonal for b in touching)
        union = set(qubits)
        for b in touching:
            union.update(b.qubits)
        limit = self.options.max_diagonal_qubits if diagonal else self.options.max_qubits
        if touching and len(union) <= limit:
            merged_cost = _cost(len(union), diagonal, self.options)
            apart = sum(b.cost(self.options) for b in touching) + _op_cost(op, self.options)
            if merged_cost <= apart:
                self._merge(touching, op, index)
                return
        self._close(touching)
        block = _Block(order=self.opened, diagonal=isinstance(op, ir.Diagonal))
        self.opened += 1
        block.indices.append(index)
        block.qubits.extend(op.qubits)
        self.open.append(block)

    def _merge(self, blocks: list[_Block], op, index: int) -> None:
        first = min(blocks, key=lambda b: b.order)
        # the blocks are disjoint, so they commute: concatenating keeps the meaning
        for b in sorted(blocks, key=lambda b: b.order):
            if b is first:
                continue
            first.indices.extend(b.indices)
            first.qubits.extend(b.qubits)
            first.diagonal = first.diagonal and b.diagonal
            self.open.remove(b)
        first.indices.append(index)
        first.qubits.extend(q for q in op.qubits if q not in first.qubits)
        first.diagonal = first.diagonal and isinstance(op, ir.Diagonal)

    def _close_touching(self, qubits: set) -> None:
        self._close([b for b in self.open if qubits.intersection(b.qubits)])

    def _close_all(self) -> None:
        self._close(list(self.open))

    def _close(self, blocks: list[_Block]) -> None:
        for b in sorted(blocks, key=lambda b: b.order):
            self.open.remove(b)
            if len(b.indices) == 1:
                self._keep(self.ops[b.indices[0]], b.indices[0])
            else:
                qubits = tuple(sorted(b.qubits))
                self.out.append(self._fused([self.ops[i] for i in b.indices], qubits, b.diagonal))
                self.schedule.append((tuple(b.indices), qubits, b.diagonal))

    def _fused(self, ops: list, qubits: tuple[int, ...], diagonal: bool) -> ir.Op:
        self.stats.widest = max(self.stats.widest, len(qubits))
        if diagonal:
            self.stats.fused_diagonals += 1
            return ir.Diagonal(qubits, fused_diagonal(qubits, ops), f"fused_diag{len(ops)}")
        matrix = fused_matrix(qubits, ops)
        self.stats.fused_gates += 1
        if ir.is_diagonal(matrix):
            return ir.Diagonal(qubits, np.diag(matrix).copy(), f"fused_diag{len(ops)}")
        return ir.Gate(qubits, matrix, f"fused{len(ops)}")


def _bits(index: np.ndarray, sub: Sequence[int]) -> np.ndarray:
    """Index of each ``index`` restricted to the bit numbers ``sub`` (sub[0] lowest)."""
    out = np.zeros_like(index)
    for j, b in enumerate(sub):
        out |= ((index >> b) & 1) << j
    return out


def fused_diagonal(qubits: Sequence[int], ops: Sequence[ir.Diagonal]) -> np.ndarray:
    """Diagonal on ``qubits`` (``qubits[0]`` lowest) equal to the product of ``ops``."""
    where = {q: j for j, q in enumerate(qubits)}
    index = np.arange(1 << len(qubits), dtype=np.int64)
    diag = np.ones(1 << len(qubits), dtype=complex)
    for op in ops:
        diag *= np.asarray(op.diag, dtype=complex)[_bits(index, [where[q] for q in op.qubits])]
    return diag


#: Widest fused gate built by embedding each op as a full matrix (cheap up to 32 x 32).
_EMBED_MAX_QUBITS = 6


@functools.lru_cache(maxsize=4096)
def _embedding(k: int, sub: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For an op whose bit j is bit ``sub[j]`` of a k-qubit index: the op's row and column index
    of each entry of the k-qubit matrix, and where the other bits agree (else the entry is 0)."""
    index = np.arange(1 << k, dtype=np.int64)
    op_index = _bits(index, sub)
    mask = 0
    for b in sub:
        mask |= 1 << b
    rest = index & ~mask
    same = rest[:, None] == rest[None, :]
    rows = np.broadcast_to(op_index[:, None], same.shape)
    cols = np.broadcast_to(op_index[None, :], same.shape)
    for a in (op_index, same):
        a.setflags(write=False)
    return rows, cols, same


def fused_matrix(qubits: Sequence[int], ops: Sequence[ir.Op]) -> np.ndarray:
    """Matrix on ``qubits`` (``qubits[0]`` lowest) equal to applying ``ops`` in order."""
    k = len(qubits)
    where = {q: j for j, q in enumerate(qubits)}
    if k <= _EMBED_MAX_QUBITS:
        # each op as a full 2^k x 2^k matrix, multiplied in: a few small numpy calls per op
        acc = np.eye(1 << k, dtype=complex)
        for op in ops:
            rows, cols, same = _embedding(k, tuple(where[q] for q in op.qubits))
            if isinstance(op, ir.Diagonal):
                acc = np.asarray(op.diag, dtype=complex)[rows[:, 0]][:, None] * acc
            else:
                acc = (np.asarray(op.matrix, dtype=complex)[rows, cols] * same) @ acc
        acc = np.where(np.abs(acc) < ZERO, 0, acc)
        return np.ascontiguousarray(acc)
    # rows of ``acc`` as a tensor: axis a is bit k-1-a of the row index
    acc = np.eye(1 << k, dtype=complex).reshape((2,) * k + (1 << k,))
    for op in ops:
        m = len(op.qubits)
        if isinstance(op, ir.Diagonal):
            factors = np.asarray(op.diag, dtype=complex).reshape((2,) * m)
            # factors axis a is op bit m-1-a; move them onto the accumulator's axes
            axes = [k - 1 - where[op.qubits[m - 1 - a]] for a in range(m)]
            shape = [1] * (k + 1)
            for ax in axes:
                shape[ax] = 2
            order = np.argsort(axes)
            acc = acc * factors.transpose(order).reshape(shape)
            continue
        gate = np.asarray(op.matrix, dtype=complex).reshape((2,) * (2 * m))
        # gate axes: outputs (op bit m-1 .. 0), inputs (op bit m-1 .. 0)
        in_axes = [k - 1 - where[op.qubits[m - 1 - a]] for a in range(m)]
        acc = np.tensordot(gate, acc, axes=(list(range(m, 2 * m)), in_axes))
        # the result has the op's output axes first: put them back in place
        rest = [ax for ax in range(k + 1) if ax not in in_axes]
        current = in_axes + rest  # position i of the result holds original axis current[i]
        acc = np.moveaxis(acc, list(range(k + 1)), current)
    matrix = acc.reshape(1 << k, 1 << k)
    matrix = np.where(np.abs(matrix) < ZERO, 0, matrix)
    return np.ascontiguousarray(matrix)


def fuse_ops(ops: Sequence[ir.Op], options: Optional[FusionOptions] = None) -> tuple[list[ir.Op], FusionStats]:
    options = options or FusionOptions()
    options.check()
    fuser = _Fuser(options)
    key = _structure(ops, options)
    schedule = _SCHEDULES.get(key) if key is not None else None
    if schedule is not None:
        _SCHEDULES.move_to_end(key)
        return fuser.replay(ops, schedule), fuser.stats
    out = fuser.run(ops)
    if key is not None:
        _SCHEDULES[key] = fuser.schedule
        while len(_SCHEDULES) > _SCHEDULES_KEPT:
            _SCHEDULES.popitem(last=False)
    return out, fuser.stats


def fuse(program: ir.Program, options: Optional[FusionOptions] = None) -> tuple[ir.Program, FusionStats]:
    """The fused program, and what fusion did (see the module docstring)."""
    options = options or FusionOptions()
    options.check()
    if not options.enabled or program.num_qubits < options.threshold:
        stats = FusionStats(len(program.ops), len(program.ops))
        return program, stats
    ops, stats = fuse_ops(program.ops, options)
    return dataclasses.replace(program, ops=tuple(ops), metadata=dict(program.metadata)), stats
