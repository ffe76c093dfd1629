"""The localiser: decides where qubits live and when data moves.

Rules, in order of cost:

* a swap gate only relabels (no data moves), outside conditional branches;
* a diagonal never moves data: a global qubit is a known bit of the rank;
* a gate that does not flip a global qubit (a control, say) becomes a
  rank-dependent local gate;
* anything else brings the global qubits it flips in, swapping them with
  the local qubits whose next need is furthest away (Belady), and brings in
  at the same time the global qubits that the next ops will need, when a
  victim is free for longer: one all-to-all instead of several.

The layout is never restored just to restore it; conditional branches are
the exception, since both must leave the layout they found; so are loop
bodies and switch cases, which start and end in the layout of their entry.
"""

from __future__ import annotations

import bisect
from typing import Iterable, Optional, Sequence

import numpy as np

from aer_mpi import ir
from aer_mpi.plan.steps import (
    Block,
    BreakStep,
    ContinueStep,
    ForStep,
    ExchangeStep,
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    MeasureStep,
    PhaseStep,
    Plan,
    RankDiagonal,
    RankGate,
    ResetStep,
    SaveStep,
    SetStateStep,
    Step,
    StoreStep,
    SwitchStep,
    WhileStep,
)

from aer_mpi.plan.noise import kraus_qubits, plan_noise  # noqa: E402  (noise, issue 10)

#: Matrix entries below this magnitude count as zero when looking for structure.
STRUCTURE_TOLERANCE = 1e-14
#: Save kinds whose qubits must all be local when they run.
LOCAL_SAVE_KINDS = ("density_matrix",)
#: How many ops ahead the localiser looks for more qubits to bring in.
LOOKAHEAD_OPS = 256


def choose_rank_bits(num_qubits: int, world_size: int, min_local: int) -> int:
    """Number of global qubits g: the largest with 2**g <= world_size and n - g >= min_local."""
    if world_size < 1:
        raise ValueError(f"expecting world_size >= 1, got {world_size}")
    g = world_size.bit_length() - 1
    return max(0, min(g, num_qubits - min_local))


_DIFFER_MASKS: dict[int, np.ndarray] = {}


def _differ_masks(k: int) -> np.ndarray:
    """``masks[j, r, c]``: rows ``r`` and columns ``c`` of a k-qubit matrix differ in bit ``j``."""
    masks = _DIFFER_MASKS.get(k)
    if masks is None:
        idx = np.arange(1 << k)
        masks = np.stack([(((idx[:, None] ^ idx[None, :]) >> j) & 1).astype(bool) for j in range(k)])
        masks.setflags(write=False)
        _DIFFER_MASKS[k] = masks
    return masks


def flipped_qubits(op: ir.Op) -> tuple[int, ...]:
    """Logical qubits whose value the op can change, or that it reads across ranks' boundaries (they must be local).

    A reduced density matrix pairs amplitudes that differ on its qubits, so they are brought local first.
    """
    if isinstance(op, ir.Gate):
        if not op.qubits:
            return ()
        nonzero = np.abs(op.matrix) > STRUCTURE_TOLERANCE
        flips = np.any(nonzero & _differ_masks(len(op.qubits)), axis=(1, 2))
        return tuple(q for q, flip in zip(op.qubits, flips) if flip)
    if isinstance(op, ir.Reset):
        return (op.qubit,)
    if isinstance(op, ir.Save) and op.kind in LOCAL_SAVE_KINDS:
        return tuple(op.qubits)
    if isinstance(op, ir.Noise):  # noise (plan/noise.py)
        return kraus_qubits(op)
    return ()


def _split_by_rank_bits(
    num_qubits_op: int, global_indices: Sequence[int]
) -> tuple[list[int], np.ndarray]:
    """Local op-bit indices, and full op index for (rank value v, local index s)."""
    local_indices = [j for j in range(num_qubits_op) if j not in global_indices]
    values = 1 << len(global_indices)
    sub = 1 << len(local_indices)
    full = np.zeros((values, sub), dtype=np.int64)
    for v in range(values):
        for s in range(sub):
            index = 0
            for i, j in enumerate(global_indices):
                index |= ((v >> i) & 1) << j
            for t, j in enumerate(local_indices):
                index |= ((s >> t) & 1) << j
            full[v, s] = index
    return local_indices, full


class _Localiser:
    def __init__(self, num_qubits: int, num_local: int, layout: Sequence[int], relabel_swaps: bool,
                 blocks: Optional[list] = None):
        self.n = num_qubits
        self.num_local = num_local
        self.layout = list(layout)
        #: Every block planned so far (shared with the localisers of nested blocks).
        self.blocks: list[Block] = [] if blocks is None else blocks
        self._layout_tuple: Optional[tuple[int, ...]] = None
        self.relabel_swaps = relabel_swaps
        self.exchanges = 0
        self.relabels = 0
        self.rank_gates = 0
        #: Exchanges since the innermost loop pass began (a break or continue undoes them); None outside loops.
        self.since_loop: Optional[list[ExchangeStep]] = None

    # -- layout helpers ---------------------------------------------------
    def is_global(self, qubit: int) -> bool:
        return self.layout[qubit] >= self.num_local

    def layout_now(self) -> tuple[int, ...]:
        """The layout as a tuple, shared until the layout changes (a block records it after every op)."""
        if self._layout_tuple is None:
            self._layout_tuple = tuple(self.layout)
        return self._layout_tuple

    def apply_pairs(self, pairs: Iterable[tuple[int, int]]) -> None:
        self._layout_tuple = None
        at = {p: q for q, p in enumerate(self.layout)}
        for b, l in pairs:
            qg, ql = at[self.num_local + b], at[l]
            self.layout[qg], self.layout[ql] = l, self.num_local + b

    # -- planning ----------------------------------------------------------
    def plan(self, ops: Sequence[ir.Op]) -> list[Step]:
        """The steps of ``ops``; ``self.points`` says where each op's steps end (a ``Block`` less its steps)."""
        needs = self._needs(ops)
        steps: list[Step] = []
        entry = self.layout_now()
        ends: list[int] = []
        layouts: list[tuple[int, ...]] = []
        for i, op in enumerate(ops):
            self._plan_op(i, op, ops, needs, steps)
            ends.append(len(steps))
            layouts.append(self.layout_now())
        self.points = (tuple(ends), tuple(layouts), entry)
        return steps

    def block(self, steps: Sequence[Step]) -> tuple[Step, ...]:
        """``steps`` as a block, registered with the points of the last ``plan``."""
        steps = tuple(steps)
        ends, layouts, entry = self.points
        self.blocks.append(Block(steps, ends, layouts, entry))
        return steps

    def _needs(self, ops: Sequence[ir.Op]) -> list[tuple[int, ...]]:
        """Per op, the wires it needs local; a wire is a qubit's data, followed through relabels."""
        wire_of = list(range(self.n))
        self._wire_of = list(range(self.n))  # (``wire_of`` follows the relabels ahead; this, the plan's)
        if self.num_local == self.n:  # one rank holds every qubit: nothing is ever brought local
            self._need_times = {w: [] for w in range(self.n)}
            return [()] * len(ops)
        needs = []
        for op in ops:
            if isinstance(op, ir.Swap) and self.relabel_swaps:
                wire_of[op.qubit0], wire_of[op.qubit1] = wire_of[op.qubit1], wire_of[op.qubit0]
                needs.append(())
            elif isinstance(op, ir.Swap):
                needs.append((wire_of[op.qubit0], wire_of[op.qubit1]))
            else:
                needs.append(tuple(wire_of[q] for q in flipped_qubits(op)))
        self._need_times: dict[int, list[int]] = {w: [] for w in range(self.n)}
        for i, wires in enumerate(needs):
            for w in wires:
                self._need_times[w].append(i)
        return needs

    def _next_need(self, wire: int, after: int) -> int:
        times = self._need_times[wire]
        k = bisect.bisect_right(times, after)
        return times[k] if k < len(times) else 1 << 62

    def _bring_local(self, i: int, qubits: Sequence[int], ops: Sequence[ir.Op], needs, steps: list[Step]) -> None:
        """Swap the global ``qubits`` in, with look-ahead, as one exchange."""
        wanted = [q for q in qubits if self.is_global(q)]
        if not wanted:
            return
        # Only the qubits the op flips must stay local; its controls may go global.
        busy = set(qubits)
        qubit_of_wire = {w: q for q, w in enumerate(self._wire_of)}
        candidates = [
            q for q in range(self.n) if not self.is_global(q) and q not in busy
        ]
        # furthest next need first; among equals, the highest position
        candidates.sort(key=lambda q: (-self._next_need(self._wire_of[q], i), -self.layout[q]))
        if len(candidates) < len(wanted):
            raise ValueError(
                f"an op flipping {len(busy)} qubits needs more than the {self.num_local} local qubits"
            )
        num_global = self.n - self.num_local
        # look ahead: wires needed soon that are global too
        for j in range(i + 1, min(len(ops), i + 1 + LOOKAHEAD_OPS)):
            if len(wanted) >= num_global or len(wanted) >= len(candidates):
                break
            for w in needs[j]:
                q = qubit_of_wire[w]
                if self.is_global(q) and q not in wanted and len(wanted) < len(candidates):
                    victim = candidates[len(wanted)]
                    if self._next_need(self._wire_of[victim], i) > j:
                        wanted.append(q)
        victims = candidates[: len(wanted)]
        pairs = tuple(
            (self.layout[q] - self.num_local, self.layout[v]) for q, v in zip(wanted, victims)
        )
        steps.append(ExchangeStep(pairs))
        self.apply_pairs(pairs)
        self.exchanges += 1
        if self.since_loop is not None:
            self.since_loop.append(steps[-1])

    def _plan_op(self, i: int, op: ir.Op, ops, needs, steps: list[Step]) -> None:
        if isinstance(op, ir.Swap):
            if self.relabel_swaps:
                q0, q1 = op.qubit0, op.qubit1
                self._layout_tuple = None
                self.layout[q0], self.layout[q1] = self.layout[q1], self.layout[q0]
                self._wire_of[q0], self._wire_of[q1] = self._wire_of[q1], self._wire_of[q0]
                self.relabels += 1
                return
            swap = np.eye(4, dtype=complex)[[0, 2, 1, 3]]
            op = ir.Gate((op.qubit0, op.qubit1), swap, "swap")
        if isinstance(op, ir.Gate):
            if self.num_local < self.n:  # (which qubits a gate flips costs a look at its matrix)
                flips = flipped_qubits(op)
                if any(self.is_global(q) for q in flips):
                    self._bring_local(i, flips, ops, needs, steps)
            steps.append(self._gate_step(op))
        elif isinstance(op, ir.Diagonal):
            steps.append(self._diagonal_step(op))
        elif isinstance(op, ir.GlobalPhase):
            steps.append(PhaseStep(op.phase))
        elif isinstance(op, ir.Measure):
            steps.append(MeasureStep(self.layout[op.qubit], op.clbit))
        elif isinstance(op, ir.Reset):
            if self.is_global(op.qubit):
                self._bring_local(i, (op.qubit,), ops, needs, steps)
            steps.append(ResetStep(self.layout[op.qubit]))
        elif isinstance(op, ir.Save):
            if any(self.is_global(q) for q in flipped_qubits(op)):
                self._bring_local(i, flipped_qubits(op), ops, needs, steps)
            steps.append(
                SaveStep(op.kind, op.label, op.subtype, op.qubits, tuple(self.layout), op.params)
            )
        elif isinstance(op, ir.SetState):
            # no data moves: each rank takes its slice of the new state in the current layout
            steps.append(SetStateStep(tuple(self.layout[q] for q in op.qubits), op.state))
        elif isinstance(op, ir.IfElse):
            steps.append(
                IfElseStep(op.condition, self._branch(op.true_ops), self._branch(op.false_ops))
            )
        elif isinstance(op, ir.WhileLoop):
            steps.append(WhileStep(op.condition, self._branch(op.body, loop=True)))
        elif isinstance(op, ir.ForLoop):
            steps.append(ForStep(tuple(self._branch(body, loop=True) for body in op.bodies)))
        elif isinstance(op, (ir.Break, ir.Continue)):
            if self.since_loop is None:
                raise ValueError(f"{type(op).__name__.lower()} outside a loop")
            # put the loop's layout back (each exchange is its own inverse), then jump
            for exchange in reversed(list(self.since_loop)):
                steps.append(exchange)
                self.apply_pairs(exchange.pairs)
                self.exchanges += 1
            self.since_loop.clear()
            steps.append(BreakStep() if isinstance(op, ir.Break) else ContinueStep())
        elif isinstance(op, ir.Store):
            steps.append(StoreStep(op.clbits, op.expr))
        elif isinstance(op, ir.Switch):
            steps.append(
                SwitchStep(op.target, tuple((values, self._branch(body)) for values, body in op.cases))
            )
        elif isinstance(op, (ir.Noise, ir.Readout)):  # noise (plan/noise.py)
            plan_noise(self, i, op, ops, needs, steps)
        else:
            raise TypeError(f"cannot plan op {op!r}")

    def _branch(self, ops: Sequence[ir.Op], loop: bool = False) -> tuple[Step, ...]:
        inner = _Localiser(self.n, self.num_local, self.layout, relabel_swaps=False, blocks=self.blocks)
        # a loop pass starts its own count; a branch inside a pass goes on with the pass's
        inner.since_loop = [] if loop else (None if self.since_loop is None else list(self.since_loop))
        body = inner.plan(ops)
        exchanges = [s for s in body if isinstance(s, ExchangeStep)]
        # Undo the branch's exchanges (each is its own inverse), newest first.
        body.extend(reversed(exchanges))
        self.exchanges += 2 * len(exchanges)
        return inner.block(body)

    def _positions(self, qubits: Sequence[int]) -> tuple[list[int], list[int]]:
        """Positions of ``qubits``, and the indices (into ``qubits``) of those that are rank bits."""
        positions = [self.layout[q] for q in qubits]
        return positions, [j for j, p in enumerate(positions) if p >= self.num_local]

    def _gate_step(self, op: ir.Gate) -> Step:
        positions, global_idx = self._positions(op.qubits)
        if not global_idx:
            return LocalGate(tuple(positions), op.matrix)
        local_idx, full = _split_by_rank_bits(len(op.qubits), global_idx)
        matrices = []
        for v in range(full.shape[0]):
            block = op.matrix[np.ix_(full[v], full[v])]
            is_identity = np.allclose(block, np.eye(block.shape[0]), rtol=0, atol=STRUCTURE_TOLERANCE)
            matrices.append(None if is_identity else block)
        self.rank_gates += 1
        return RankGate(
            tuple(positions[j] - self.num_local for j in global_idx),
            tuple(positions[j] for j in local_idx),
            tuple(matrices),
        )

    def _diagonal_step(self, op: ir.Diagonal) -> Step:
        positions, global_idx = self._positions(op.qubits)
        if not global_idx:
            return LocalDiagonal(tuple(positions), op.diag)
        local_idx, full = _split_by_rank_bits(len(op.qubits), global_idx)
        return RankDiagonal(
            tuple(positions[j] - self.num_local for j in global_idx),
            tuple(positions[j] for j in local_idx),
            tuple(op.diag[full[v]] for v in range(full.shape[0])),
        )


def plan_program(
    program: ir.Program,
    num_local: int,
    initial_layout: Optional[Sequence[int]] = None,
) -> Plan:
    """Plan ``program`` for shards of ``num_local`` qubits (the rest are global)."""
    n = program.num_qubits
    if not 0 <= num_local <= n:
        raise ValueError(f"expecting 0 <= num_local <= {n}, got {num_local}")
    layout = tuple(initial_layout) if initial_layout is not None else tuple(range(n))
    localiser = _Localiser(n, num_local, layout, relabel_swaps=True)
    steps = localiser.block(localiser.plan(program.ops))
    return Plan(
        num_qubits=n,
        num_local=num_local,
        num_global=n - num_local,
        steps=steps,
        initial_layout=layout,
        final_layout=tuple(localiser.layout),
        stats={
            "exchanges": localiser.exchanges,
            "naive_exchanges": naive_exchange_count(program, num_local),
            "relabelled_swaps": localiser.relabels,
            "rank_conditioned_gates": localiser.rank_gates,
        },
        blocks=tuple(localiser.blocks),
    )


def naive_exchange_count(program: ir.Program, num_local: int) -> int:
    """Exchanges of the naive scheme, to compare the planner with.

    Naive: the layout is fixed (the top qubits global; swaps relabel), and
    every gate that flips a global qubit pays one single-pair exchange per
    such qubit (half the state moves). Swapping back afterwards is not
    counted, which flatters the naive scheme.
    """
    if num_local >= program.num_qubits:
        return 0  # nothing is global
    layout = list(range(program.num_qubits))
    count = 0

    def walk(ops: Sequence[ir.Op]) -> None:
        nonlocal count
        for op in ops:
            if isinstance(op, ir.Swap):
                layout[op.qubit0], layout[op.qubit1] = layout[op.qubit1], layout[op.qubit0]
            elif ir.blocks(op):
                for body in ir.blocks(op):
                    walk(body)
            else:
                count += sum(1 for q in flipped_qubits(op) if layout[q] >= num_local)

    walk(program.ops)
    return count


def swaps_to_make_global(
    layout: Sequence[int], num_local: int, qubits: Sequence[int]
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Pairs that make ``qubits`` exactly the global ones, and the layout after.

    Used before sampling: with the top logical qubits global, the ranks in
    order of those qubits' value hold the state in logical-major order.
    """
    layout = list(layout)
    wanted = set(qubits)
    at = {p: q for q, p in enumerate(layout)}
    to_bring = [q for q in qubits if layout[q] < num_local]
    free_globals = sorted(p for p in range(num_local, len(layout)) if at[p] not in wanted)
    pairs = []
    for q, g in zip(to_bring, free_globals):
        pairs.append((g - num_local, layout[q]))
        other = at[g]
        layout[other], layout[q] = layout[q], g
    return tuple(pairs), tuple(layout)


def swap_rounds_to_order(positions: Sequence[int]) -> list[tuple[tuple[int, int], ...]]:
    """At most two rounds of disjoint position swaps that move bit ``j`` from ``positions[j]`` to
    position ``j`` (``positions`` a permutation of ``range(len(positions))``), applied in order.

    Any permutation is the product of two involutions: a cycle ``a0 -> a1 -> ... -> a(L-1)`` is
    the reflection ``a(i) <-> a(-i)`` followed by ``a(i) <-> a(1-i)``. So reading a shard in logical
    order costs at most two swap passes in place, not a strided copy of every amplitude.
    """
    destination = {int(p): j for j, p in enumerate(positions)}  # what sits at p belongs at destination[p]
    if sorted(destination) != list(range(len(positions))):
        raise ValueError(f"positions {list(positions)} are not a permutation of 0..{len(positions) - 1}")
    first: list[tuple[int, int]] = []
    second: list[tuple[int, int]] = []
    seen: set[int] = set()
    for start in range(len(positions)):
        if start in seen or destination[start] == start:
            continue
        cycle = [start]
        while destination[cycle[-1]] != start:
            cycle.append(destination[cycle[-1]])
        seen.update(cycle)
        length = len(cycle)
        for i in range(length):
            for shift, out in ((0, first), (1, second)):
                j = (shift - i) % length
                if i < j:
                    out.append((cycle[i], cycle[j]))
    return [tuple(r) for r in (first, second) if r]
