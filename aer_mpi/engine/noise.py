"""Noise by trajectories on the sharded state.

Promise of this module: every noise step of a plan is sampled once per
shot from that shot's own stream (``default_rng([seed, shot])``, the one
its measurements draw from, one number per event, in program order), so
the outcomes of a shot do not depend on the shots it travels with, on the
number of ranks or on memory. Shots share one state until a noise event
sends them different ways (as a measurement does in ``branching.py``):

* a mixture (``NoiseStep``): each shot draws its branch; the shots are
  grouped by branch; the first group goes on at once (the identity,
  when any shot drew it, so it costs nothing), the others wait on the work
  stack with a copy of the shard, or are replayed from the start when no
  copy can be afforded. A branch is plain steps (gates on the shard:
  never a matrix over the whole state);
* a Kraus channel (``KrausStep``): the probabilities ``||K_i psi||**2``
  come from the reduced density matrix of the channel's qubits, summed
  over ranks in rank order (one pass, one collective); each shot draws
  its ``K_i``; ``K_i psi`` is renormalised;
* a readout error (``ReadoutStep``): each shot draws what it records; the
  state is untouched. Readout errors that nothing later reads (no
  conditional, no classical save, no re-measurement of their clbits) are
  taken out of the program (``defer_readout``) and applied per shot to the
  final values (``apply_readout``, row ``shot`` of stream ``[seed, 1]``), so a
  circuit whose only noise is readout error samples its ideal outcomes.

Between the events that split it, a group runs ahead of the interpreter
(``run_ahead``): it gathers its gates, takes on the spot the events that all
its shots sample alike (a sampled Pauli branch is one more gate), and applies
the gathered gates fused (``plan/fusion.py``) only when something needs the
state. The sides of one split share one shard copy; shots that get no copy
are replayed from the start, the replays of one run merged.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from aer_mpi import ir, kernels
from aer_mpi.plan import (
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    MeasureStep,
    PhaseStep,
    RankDiagonal,
    RankGate,
    StageStep,
    SwitchStep,
)
from aer_mpi.plan.fusion import FusionOptions, fuse_ops
from aer_mpi.plan.noise import NOISE_STEPS, KrausStep, NoiseStep, ReadoutStep

#: Third key of the per-shot stream of deferred readout errors.
READOUT_STREAM = 1

#: Plan steps that only change the amplitudes, with no communication: run ahead, fused.
GATE_STEPS = (LocalGate, LocalDiagonal, RankGate, RankDiagonal, PhaseStep)
#: Steps at which a noisy run goes ahead of the interpreter (``run_ahead``).
RUN_AHEAD_STEPS = GATE_STEPS + NOISE_STEPS
#: Most shots one merged replay holds (branching's batch of random streams).
REPLAY_BATCH = 8192
#: Most steps a group gathers before applying them (then it meets the other ranks).
RUN_AHEAD_MAX = 128
#: Fused runs of gates remembered per run (keyed by the steps they fuse).
FUSED_CACHE = 1024

__all__ = [
    "GATE_STEPS", "NOISE_STEPS", "RUN_AHEAD_STEPS", "NoisePending", "apply_readout", "defer_readout",
    "noise_split", "reduced_density", "run_ahead", "runs_ahead",
]


# -- the state ---------------------------------------------------------------------------
#: Amplitudes ``reduced_density`` reads at a time: its reshape and conjugate copy a piece, not the shard.
REDUCED_PIECE_QUBITS = 16


def reduced_density(state: np.ndarray, positions: tuple[int, ...]) -> np.ndarray:
    """This shard's part of the density matrix of local ``positions`` (index bit ``j``: ``positions[j]``).

    Piece by piece, in a fixed order: the whole shard at once made two copies of it (the reshape of
    a strided view, and its conjugate), which at 30 qubits took 32 GiB beside a 16 GiB state."""
    n = state.shape[0].bit_length() - 1
    k = len(positions)
    tensor = state.reshape((2,) * n)
    axes = [n - 1 - p for p in reversed(positions)]
    moved = np.moveaxis(tensor, axes, list(range(n - k, n)))  # a view, the positions last
    looped = max(0, n - max(k, REDUCED_PIECE_QUBITS))  # leading axes walked one value at a time
    rho = np.zeros((1 << k, 1 << k), dtype=complex)
    for index in np.ndindex(*(2,) * looped):
        m = moved[index].reshape(-1, 1 << k)
        rho += m.T @ m.conj()
    return rho


def kraus_probabilities(shard: Any, step: KrausStep) -> tuple[np.ndarray, float]:
    """``||K_i psi||**2 / ||psi||**2`` for each Kraus matrix, and ``||psi||**2`` (collective)."""
    parts = shard.collective.allgather(reduced_density(shard.array, step.positions))
    rho = parts[0].copy()
    for part in parts[1:]:  # in rank order: the same sums on every rank
        rho += part
    total = float(np.real(np.trace(rho)))
    matrices = np.asarray(step.matrices)
    # trace(K_i rho K_i^dagger) for every i at once
    probabilities = np.maximum(np.einsum("kij,jl,kil->k", matrices, rho, matrices.conj()).real, 0.0)
    return probabilities / total, total


def _choose(draws: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(probabilities)
    cumulative /= cumulative[-1]
    choice = np.searchsorted(cumulative, draws, side="right")
    return np.minimum(choice, len(probabilities) - 1)


# -- shot branching ------------------------------------------------------------------------
class NoisePending:
    """Shots that drew side ``side`` of a noise event, waiting on the work stack.

    The sides of one event share one copy of the shard: the side pushed first (popped last)
    owns it (``saved``, and gives the copy back when it resumes); the others read it
    (``shared``).
    """

    __slots__ = ("step", "group", "side", "data", "saved", "shared", "then")

    def __init__(self, step: Any, group: Any, side: int, data: Any, saved: Optional[np.ndarray], then: Any,
                 shared: Optional[np.ndarray] = None):
        self.step = step
        self.group = group
        self.side = side
        self.data = data
        self.saved = saved
        self.shared = shared
        self.then = then

    def resume(self, branching: Any, seq: Callable) -> tuple:
        if self.saved is not None:
            branching.shard.restore(self.saved)
            self.saved = None
            branching.copies_left += 1
        elif self.shared is not None:
            branching.shard.restore(self.shared)
            self.shared = None
        return _take_side(branching, self.step, self.group, self.side, self.data, self.then, seq)


def stats_of(branching: Any) -> dict:
    """The counters of a shot-branching run (``metadata["noise_stats"]``, or ``metadata["branching"]`` for
    an ideal dynamic circuit); checkpointed with the run."""
    stats = getattr(branching, "noise_stats", None)
    if stats is None:
        stats = branching.noise_stats = {
            "noise_events": 0, "noise_splits": 0, "noise_branches": 0, "kraus_probabilities": 0,
            "shard_copies": 0, "replayed_shots": 0, "gates_gathered": 0, "fused_ops": 0,
        }
    for key in ("measurements", "measure_splits", "measure_copies", "groups_finished"):
        stats.setdefault(key, 0)  # a checkpoint written before these counters existed
    return stats


_stats = stats_of


def _take_side(branching: Any, step: Any, group: Any, side: int, data: Any, then: Any, seq: Callable) -> tuple:
    """Put ``group`` (shots that drew ``side``) on its side; returns (group, frame) to go on with."""
    if isinstance(step, NoiseStep):
        return group, seq(step.branches[side], 0, then)
    if isinstance(step, KrausStep):
        probabilities, total = data
        shard = branching.shard
        kernels.apply_matrix(shard.array, step.matrices[side], step.positions)
        kernels.scale(shard.array, 1.0 / float(np.sqrt(probabilities[side] * total)))
        return group, then
    # a readout error: record the drawn value
    for j, c in enumerate(step.clbits):
        group.clbits[c] = (side >> j) & 1
    return group, then


def _draw(group: Any) -> np.ndarray:
    """One number per shot of ``group``, each from its own stream."""
    return np.array([rng.random() for rng in group.rngs])


def _replay(branching: Any, group: Any) -> None:
    """Queue ``group`` to be replayed from the start; joins the replay queued just before by a noise
    split when it can (same saves met), so that the replayed shots share their common prefix again."""
    replays = branching.replays
    last = getattr(branching, "noise_last_replay", None)
    if (replays and last is not None and replays[-1] is last and last[1] == group.saves_seen
            and len(last[0]) + len(group.shots) <= REPLAY_BATCH):
        entry = (np.sort(np.concatenate([last[0], group.shots])), last[1])
        replays[-1] = entry
    else:
        entry = (group.shots, group.saves_seen)
        replays.append(entry)
    branching.noise_last_replay = entry
    _stats(branching)["replayed_shots"] += len(group.shots)


def noise_split(branching: Any, step: Any, group: Any, then: Any, stack: list, seq: Callable,
                draws: Optional[np.ndarray] = None) -> tuple:
    """Sample ``step`` for every shot of ``group``; returns the (group, frame) that goes on now.

    ``branching`` is the ``Branching`` run (its shard, copies and replays);
    ``seq`` is its frame constructor ``_seq(steps, index, parent)``; ``draws``,
    when given, are the shots' numbers for this event (already drawn).
    """
    stats = _stats(branching)
    stats["noise_events"] += 1
    if draws is None:
        draws = _draw(group)
    data: Any = None
    if isinstance(step, NoiseStep):
        probabilities = np.asarray(step.probabilities, dtype=float)
    elif isinstance(step, KrausStep):
        data = kraus_probabilities(branching.shard, step)
        probabilities = data[0]
        stats["kraus_probabilities"] += 1
    else:
        true = sum(int(group.clbits[c]) << j for j, c in enumerate(step.clbits))
        probabilities = np.asarray(step.assignment[true], dtype=float)
    choice = _choose(draws, probabilities)
    sides = [int(s) for s in np.unique(choice)]
    if len(sides) == 1:
        return _take_side(branching, step, group, sides[0], data, then, seq)
    stats["noise_splits"] += 1
    stats["noise_branches"] += len(sides) - 1
    copy: Optional[np.ndarray] = None  # one copy for all the sides of this event
    for side in reversed(sides[1:]):  # popped in increasing order
        later = group.take(choice == side)
        if isinstance(step, ReadoutStep) and then is None:
            # nothing follows: no copy of the state is needed
            stack.append(NoisePending(step, later, side, data, None, then))
        elif copy is not None:
            stack.append(NoisePending(step, later, side, data, None, then, shared=copy))
        elif branching.copies_left > 0:
            branching.copies_left -= 1
            copy = branching.shard.copy()
            stats["shard_copies"] += 1
            stack.append(NoisePending(step, later, side, data, copy, then))
        else:
            _replay(branching, later)
    return _take_side(branching, step, group.take(choice == sides[0]), sides[0], data, then, seq)


# -- going ahead of the interpreter: gates fused between the events that split ----------------------
class Collapse(LocalDiagonal):
    """A measurement's collapse, deferred by shot branching to be applied with the gates after it."""


def runs_ahead(branching: Any, step: Any) -> bool:
    """Whether ``run_ahead`` takes over at ``step`` (a step of ``RUN_AHEAD_STEPS``): at every noise
    step, and at the gates of a program run with ``fuse_ahead`` (every dynamic program: its groups
    fuse their gates between splits, noise or not)."""
    return isinstance(step, NOISE_STEPS) or bool(getattr(branching, "fuse_ahead", False))


def _pending_op(step: Any, rank_value: Callable) -> Any:
    """``step`` as an op on positions for the fuser (a rank step: this rank's block); None: identity."""
    if isinstance(step, LocalGate):
        return ir.Gate(step.positions, step.matrix)
    if isinstance(step, LocalDiagonal):
        return ir.Diagonal(step.positions, step.diag)
    if isinstance(step, RankGate):
        matrix = step.matrices[rank_value(step.rank_bits)]
        return None if matrix is None else ir.Gate(step.positions, matrix)
    if isinstance(step, RankDiagonal):
        return ir.Diagonal(step.positions, step.diags[rank_value(step.rank_bits)])
    return ir.GlobalPhase(step.phase)


def _fusion(branching: Any) -> Optional[FusionOptions]:
    """The run's fusion options when its shard is wide enough to fuse, else None."""
    options = getattr(branching, "noise_fusion", None)
    if options is None or not options.enabled or branching.shard.num_qubits < options.threshold:
        return None
    return options


def _apply_op(state: np.ndarray, op: Any) -> None:
    if isinstance(op, ir.Gate):
        kernels.apply_matrix(state, op.matrix, op.qubits)
    elif isinstance(op, ir.Diagonal):
        kernels.apply_diagonal(state, op.diag, op.qubits)
    else:
        kernels.scale(state, complex(np.exp(1j * op.phase)))


def _apply_ops(state: np.ndarray, ops: Any, cache_qubits: Optional[int] = None) -> int:
    """Apply ``ops`` in order; returns the passes over ``state`` they took. With ``cache_qubits``
    (the cache tier is on and the shard is wider), each run of at least two ops that fit in a chunk
    (diagonals anywhere, dense gates below ``cache_qubits``) is one cache-blocked stage, one pass:
    the same bits as one op at a time (``kernels.apply_stage``)."""
    if cache_qubits is None or state.shape[0] <= (1 << cache_qubits):
        for op in ops:
            _apply_op(state, op)
        return len(ops)
    passes = 0
    run: list = []

    def close() -> int:
        if len(run) >= 2:
            kernels.apply_stage(state, [_stage_gate(op) for op in run], cache_qubits)
            done = 1
        else:
            for op in run:
                _apply_op(state, op)
            done = len(run)
        run.clear()
        return done

    for op in ops:
        if isinstance(op, ir.Gate) and (not op.qubits or max(op.qubits) >= cache_qubits):
            passes += close()
            _apply_op(state, op)
            passes += 1
        else:
            run.append(op)
    return passes + close()


def _stage_gate(op: Any) -> tuple:
    """``op`` as a gate of ``kernels.apply_stage``: ``(positions, matrix, diag)``."""
    if isinstance(op, ir.Gate):
        return tuple(op.qubits), op.matrix, None
    if isinstance(op, ir.Diagonal):
        return tuple(op.qubits), None, op.diag
    return (), None, np.array([np.exp(1j * op.phase)])


def _flush(branching: Any, steps: list) -> None:
    """Apply the gate ``steps`` gathered by ``run_ahead``, fused when the run fuses (the fused ops of a
    run of steps are remembered: trajectories that resume at one point fuse the same runs)."""
    if not steps:
        return
    shard = branching.shard
    ops = [op for op in (_pending_op(s, shard.rank_value) for s in steps) if op is not None]
    options = _fusion(branching) if len(ops) > 1 else None
    if options is not None:
        cache = getattr(branching, "noise_fused", None)
        if cache is None or len(cache) >= FUSED_CACHE:
            cache = branching.noise_fused = {}
        if isinstance(steps[0], Collapse):  # its factor is this group's: fused afresh, not remembered
            ops = fuse_ops(ops, options)[0]
        else:
            key = tuple(id(s) for s in steps)
            fused = cache.get(key)
            if fused is None:
                fused = cache[key] = fuse_ops(ops, options)[0]
            ops = fused
    shard.passes += _apply_ops(shard.array, ops, getattr(branching, "cache_qubits", None))
    stats = _stats(branching)
    stats["gates_gathered"] += len(steps)
    stats["fused_ops"] += len(ops)
    steps.clear()


def run_ahead(branching: Any, group: Any, frame: Any, stack: list, seq: Callable) -> tuple:
    """Run ``group`` from ``frame`` (a ``_Seq`` of branching whose next step is in ``RUN_AHEAD_STEPS``)
    up to the next noise event that splits it, or the next step that is neither a gate nor noise;
    returns the (group, frame) to go on with.

    Gates are gathered, not applied, and the noise events that every shot of the group samples alike
    are taken on the spot: the identity is nothing, a branch of gates joins the gathered gates (a
    sampled Pauli error is one more gate to fuse). The gathered gates are applied fused before
    anything that needs the state (a split, a Kraus channel, a measurement, an exchange, the end), so
    a trajectory costs the fused passes of its gates, not a pass per gate. Each shot draws exactly the
    numbers it would draw event by event, in the same order: results do not change.
    """
    seq_type = type(frame)
    interpreter = branching.interpreter
    gathered: list = []
    deferred = getattr(branching, "deferred", None)
    if deferred is not None:  # a measurement's collapse (branching.py): applied with the gates
        gathered.append(deferred)
        branching.deferred = None
    stats = _stats(branching)
    # Steps are counted (the meetings: cancel, progress, checkpoints) once applied, not when
    # gathered, so that a meeting follows the work; a run is applied every RUN_AHEAD_MAX steps, and
    # when a meeting asked for a checkpoint the group stops at the next op boundary for _advance.
    uncounted = 0
    index = getattr(branching, "index", None)

    def settle() -> None:
        nonlocal uncounted
        _flush(branching, gathered)
        for _ in range(uncounted):
            interpreter.count_step()
        uncounted = 0

    while isinstance(frame, seq_type):
        steps, j, parent = frame.steps, frame.index, frame.parent
        frame = parent
        while j < len(steps):
            if uncounted >= RUN_AHEAD_MAX:
                settle()
            if interpreter.checkpoint_due and index is not None and j in index.boundaries(index.block_of(steps)):
                settle()
                return group, seq(steps, j, parent)
            step = steps[j]
            if isinstance(step, GATE_STEPS):
                gathered.append(step)
                uncounted += 1
                j += 1
                continue
            if isinstance(step, StageStep):  # a cache-blocked run of gates: gathered like its gates
                gathered.extend(step.steps)
                uncounted += 1
                j += 1
                continue
            if isinstance(step, IfElseStep):
                # every shot of the group holds the same classical memory: take the branch on the spot
                branch = step.true_steps if ir.condition_holds(step.condition, group.clbits) else step.false_steps
                frame = seq(branch, 0, seq(steps, j + 1, parent))
                break
            if isinstance(step, SwitchStep):
                body = step.body_for(ir.evaluate(step.target, group.clbits))
                frame = seq(body, 0, seq(steps, j + 1, parent))
                break
            if isinstance(step, NoiseStep):
                draws = _draw(group)
                choice = _choose(draws, np.asarray(step.probabilities, dtype=float))
                side = int(choice[0])
                if (choice == side).all():
                    branch = step.branches[side]
                    if all(isinstance(s, GATE_STEPS) for s in branch):
                        stats["noise_events"] += 1
                        for s in branch:
                            gathered.append(s)
                            uncounted += 1
                        j += 1
                        continue
                settle()
                return noise_split(branching, step, group, seq(steps, j + 1, parent), stack, seq, draws)
            settle()
            if isinstance(step, NOISE_STEPS):  # a Kraus channel or a readout error
                return noise_split(branching, step, group, seq(steps, j + 1, parent), stack, seq)
            return group, seq(steps, j, parent)
    settle()
    return group, frame


# -- readout errors on the final values ---------------------------------------------------------
def defer_readout(program: ir.Program) -> tuple[ir.Program, list]:
    """The program without its readout errors, and the errors (clbits, assignment), when they can
    be applied to the final values; else the program unchanged and ``[]``."""
    ops = program.ops
    if not any(isinstance(op, ir.Readout) for op in ops):
        return program, []

    def reads_clbits(op: Any) -> bool:
        if isinstance(op, ir.CONTROL_FLOW):
            return True
        if isinstance(op, ir.Save) and str(op.subtype).startswith("c_"):
            return True
        if isinstance(op, ir.Noise):
            return any(reads_clbits(o) or isinstance(o, (ir.Measure, ir.Readout)) for b in op.branches for o in b)
        return False

    if any(reads_clbits(op) for op in ops):
        return program, []
    readouts = []
    kept = []
    for i, op in enumerate(ops):
        if isinstance(op, ir.Readout):
            later = {o.clbit for o in ops[i + 1:] if isinstance(o, ir.Measure)}
            if later.intersection(op.clbits):
                return program, []
            readouts.append((op.clbits, op.assignment))
        else:
            kept.append(op)
    return (
        ir.Program(program.num_qubits, program.num_clbits, tuple(kept), program.name, dict(program.metadata)),
        readouts,
    )


def apply_readout(values: np.ndarray, readouts: list, seed: int) -> np.ndarray:
    """Each shot's recorded value after the readout errors: ``values`` holds every shot, in order,
    and shot ``s`` takes row ``s`` of the draws of stream ``[seed, 1]``, so what it records depends
    on neither the ranks nor how its shots were grouped (every rank draws alike)."""
    shots = len(values)
    draws = np.random.default_rng([seed, READOUT_STREAM]).random((shots, len(readouts)))
    out = values.copy()
    for r, (clbits, assignment) in enumerate(readouts):
        true = np.zeros(shots, dtype=np.int64)
        for j, c in enumerate(clbits):
            true |= ((out >> c) & 1).astype(np.int64) << j
        cumulative = np.cumsum(assignment, axis=1)
        cumulative /= cumulative[:, -1:]
        recorded = (draws[:, r, None] >= cumulative[true]).sum(axis=1)
        recorded = np.minimum(recorded, assignment.shape[1] - 1)
        for j, c in enumerate(clbits):
            bit = (recorded >> j) & 1
            out = (out & ~(1 << c)) | (bit.astype(out.dtype) << c)
    return out


# -- final measurements of a noisy program ---------------------------------------------------------
#: Widest set of final measurements sampled at once from their joint distribution (2**k floats).
MAX_FINAL_SAMPLED = 24


def final_joint(shard: Any, positions: list[int]) -> tuple[np.ndarray, list[int]]:
    """Joint probabilities of ``positions``, summed across ranks in rank order, and the order of its
    index bits: bit ``b`` is position ``order[b]``, ``order`` ascending (the shard's own order, so no
    amplitude is moved: the local positions are the low bits, the rank-bit positions the high ones).

    Each rank sends only its own part (the block its rank bits select), not the whole table.
    """
    num_local = shard.num_local
    order = sorted(positions)
    local = [p for p in order if p < num_local]
    fixed = 0
    for b, p in enumerate(p for p in order if p >= num_local):
        fixed |= shard.bit_of_rank(p) << b
    if len(local) == num_local:
        part = kernels.probabilities(shard.array)
    else:
        part = kernels.marginal_probabilities(shard.array, local)
    parts = shard.collective.allgather((fixed, part)) if shard.collective.size > 1 else [(fixed, part)]
    block = 1 << len(local)
    if len(local) == len(order):
        total = parts[0][1]
        for _, more in parts[1:]:  # in rank order: the same sums on every rank
            total = total + more
        return total, order
    total = np.zeros(1 << len(order), dtype=np.float64)
    for rank_fixed, more in parts:  # in rank order: the same sums on every rank
        total[rank_fixed * block:(rank_fixed + 1) * block] += more
    return total, order


def sample_final_measures(branching: Any, group: Any, steps: tuple, start: int, values: np.ndarray) -> bool:
    """When ``steps[start:]`` are the program's last steps and all distinct measurements, record every
    shot of ``group`` at once and return True (else False: measure one by one).

    Shot ``s`` draws one number per measurement from its stream, in order, and reads its outcomes
    by the chain rule of the joint distribution: the same law as measuring one by one, with one
    collective instead of one per measurement per trajectory, and about two passes over the shard
    (its probabilities, then the marginals of the first ``j`` measurements, each from the next).
    """
    tail = steps[start:]
    if not all(isinstance(s, MeasureStep) for s in tail):
        return False
    positions = [s.position for s in tail]
    clbits = [s.clbit for s in tail]
    if len(set(positions)) != len(positions) or len(positions) > MAX_FINAL_SAMPLED or max(clbits) >= 62:
        return False
    k = len(positions)
    joint, order = final_joint(branching.shard, positions)
    # tables[j]: marginal of the first j measurements; bits[j][i]: the index bit of measurement i < j there
    tables: list = [None] * (k + 1)
    bits: list = [None] * (k + 1)
    tables[k] = joint
    remaining = list(order)
    bits[k] = [remaining.index(p) for p in positions]
    for j in range(k - 1, -1, -1):
        b = remaining.index(positions[j])
        pairs = tables[j + 1].reshape(-1, 2, 1 << b)
        tables[j] = (pairs[:, 0, :] + pairs[:, 1, :]).reshape(-1)
        remaining.pop(b)
        bits[j] = [remaining.index(p) for p in positions[:j]]
    shots = len(group.rngs)
    draws = np.array([rng.random(k) for rng in group.rngs]).reshape(shots, k)
    outcome = np.zeros((shots, k), dtype=np.int64)  # outcome[:, i] << bits[j][i]: index in tables[j]
    below_index = np.zeros(shots, dtype=np.int64)
    for j in range(k):
        below = tables[j][below_index]
        index = np.zeros(shots, dtype=np.int64)
        for i in range(j):
            index |= outcome[:, i] << bits[j + 1][i]
        one = tables[j + 1][index | (1 << bits[j + 1][j])]
        p_one = np.divide(one, below, out=np.zeros_like(one), where=below > 0)
        outcome[:, j] = draws[:, j] < p_one
        below_index = index | (outcome[:, j] << bits[j + 1][j])
    base = group.value()
    for c in clbits:
        base &= ~(1 << c)
    if values.dtype == object:  # a register wider than 63 clbits: Python ints (sampling.clbit_dtype)
        recorded = np.full(shots, base, dtype=object)
        for j, c in enumerate(clbits):  # a later measurement into the same clbit wins, as one by one
            recorded = (recorded & ~(1 << c)) | (outcome[:, j].astype(object) << c)
    else:
        recorded = np.full(shots, base, dtype=np.int64)
        for j, c in enumerate(clbits):
            recorded = (recorded & ~np.int64(1 << c)) | (outcome[:, j] << c)
    values[group.shots] = recorded
    stats = _stats(branching)
    stats["final_measurements_sampled"] = stats.get("final_measurements_sampled", 0) + 1
    stats["groups_finished"] += 1
    return True


def has_noise(program: ir.Program) -> bool:
    """Whether ``program`` holds a noise op (at any depth)."""
    return aer_noise_label(program) != "ideal"


def aer_noise_label(program: ir.Program) -> str:
    """Aer's ``metadata["noise"]`` for a trajectory run of ``program``: ``"ideal"`` without noise,
    ``"kraus"`` when an error is a Kraus channel (applied as such, not as sampled gates), else
    ``"circuit"`` (every error a mixture of gates, resets or readouts). The density matrix says
    ``"superop"``. The counters of what the noise did are ``metadata["noise_stats"]``."""
    found = set()

    def walk(ops: Any) -> None:
        for op in ops:
            if isinstance(op, ir.Noise):
                found.add("kraus" if op.kraus else "circuit")
            elif isinstance(op, ir.Readout):
                found.add("circuit")
            for block in ir.blocks(op):
                walk(block)

    walk(program.ops)
    return "kraus" if "kraus" in found else ("circuit" if found else "ideal")
