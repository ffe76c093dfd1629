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
  final values (``apply_readout``, stream ``[seed, shot, 1]``), so a
  circuit whose only noise is readout error samples its ideal outcomes.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from aer_mpi import ir, kernels
from aer_mpi.plan.noise import NOISE_STEPS, KrausStep, NoiseStep, ReadoutStep

#: Third key of the per-shot stream of deferred readout errors.
READOUT_STREAM = 1

__all__ = [
    "NOISE_STEPS", "NoisePending", "apply_readout", "defer_readout", "noise_split", "reduced_density",
]


# -- the state ---------------------------------------------------------------------------
def reduced_density(state: np.ndarray, positions: tuple[int, ...]) -> np.ndarray:
    """This shard's part of the density matrix of local ``positions`` (index bit ``j``: ``positions[j]``)."""
    n = state.shape[0].bit_length() - 1
    k = len(positions)
    tensor = state.reshape((2,) * n)
    axes = [n - 1 - p for p in reversed(positions)]
    m = np.moveaxis(tensor, axes, list(range(n - k, n))).reshape(-1, 1 << k)
    return (m.T @ m.conj()).astype(complex)


def kraus_probabilities(shard: Any, step: KrausStep) -> tuple[np.ndarray, float]:
    """``||K_i psi||**2 / ||psi||**2`` for each Kraus matrix, and ``||psi||**2`` (collective)."""
    parts = shard.collective.allgather(reduced_density(shard.array, step.positions))
    rho = parts[0].copy()
    for part in parts[1:]:  # in rank order: the same sums on every rank
        rho += part
    total = float(np.real(np.trace(rho)))
    probabilities = np.array([max(0.0, float(np.real(np.trace(k @ rho @ k.conj().T)))) for k in step.matrices])
    return probabilities / total, total


def _choose(draws: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(probabilities)
    cumulative /= cumulative[-1]
    choice = np.searchsorted(cumulative, draws, side="right")
    return np.minimum(choice, len(probabilities) - 1)


# -- shot branching ------------------------------------------------------------------------
class NoisePending:
    """Shots that drew side ``side`` of a noise event, waiting on the work stack."""

    __slots__ = ("step", "group", "side", "data", "saved", "then")

    def __init__(self, step: Any, group: Any, side: int, data: Any, saved: Optional[np.ndarray], then: Any):
        self.step = step
        self.group = group
        self.side = side
        self.data = data
        self.saved = saved
        self.then = then

    def resume(self, branching: Any, seq: Callable) -> tuple:
        if self.saved is not None:
            branching.shard.restore(self.saved)
            self.saved = None
            branching.copies_left += 1
        return _take_side(branching, self.step, self.group, self.side, self.data, self.then, seq)


def _stats(branching: Any) -> dict:
    stats = getattr(branching, "noise_stats", None)
    if stats is None:
        stats = branching.noise_stats = {"noise_events": 0, "noise_splits": 0, "noise_branches": 0, "kraus_probabilities": 0}
    return stats


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


def noise_split(branching: Any, step: Any, group: Any, then: Any, stack: list, seq: Callable) -> tuple:
    """Sample ``step`` for every shot of ``group``; returns the (group, frame) that goes on now.

    ``branching`` is the ``Branching`` run (its shard, copies and replays);
    ``seq`` is its frame constructor ``_seq(steps, index, parent)``.
    """
    stats = _stats(branching)
    stats["noise_events"] += 1
    draws = np.array([rng.random() for rng in group.rngs])
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
    for side in reversed(sides[1:]):  # popped in increasing order
        later = group.take(choice == side)
        if isinstance(step, ReadoutStep) and then is None:
            # nothing follows: no copy of the state is needed
            stack.append(NoisePending(step, later, side, data, None, then))
        elif branching.copies_left > 0:
            branching.copies_left -= 1
            stack.append(NoisePending(step, later, side, data, branching.shard.copy(), then))
        else:
            branching.replays.append((later.shots, later.saves_seen))
    return _take_side(branching, step, group.take(choice == sides[0]), sides[0], data, then, seq)


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
    """Each shot's recorded value after the readout errors, drawn from stream ``[seed, shot, 1]``."""
    shots = len(values)
    draws = np.empty((shots, len(readouts)))
    for s in range(shots):
        draws[s] = np.random.default_rng([seed, s, READOUT_STREAM]).random(len(readouts))
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


def final_marginal(shard: Any, positions: list[int]) -> np.ndarray:
    """Joint probabilities of ``positions`` (index bit ``j``: ``positions[j]``), summed across ranks in rank order."""
    num_local = shard.num_local
    local_js = [j for j, p in enumerate(positions) if p < num_local]
    fixed = 0
    for j, p in enumerate(positions):
        if p >= num_local:
            fixed |= shard.bit_of_rank(p) << j
    marginal = kernels.marginal_probabilities(shard.array, [positions[j] for j in local_js])
    t = np.arange(1 << len(local_js), dtype=np.int64)
    index = np.full_like(t, fixed)
    for i, j in enumerate(local_js):
        index |= ((t >> i) & 1) << j
    full = np.zeros(1 << len(positions), dtype=np.float64)
    full[index] = marginal
    parts = shard.collective.allgather(full)
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def sample_final_measures(branching: Any, group: Any, steps: tuple, start: int, values: np.ndarray) -> bool:
    """When ``steps[start:]`` are the program's last steps and all distinct measurements, record every
    shot of ``group`` at once and return True (else False: measure one by one).

    Shot ``s`` draws one number per measurement from its stream, in order, and reads its outcomes
    by the chain rule of the joint distribution: the same law as measuring one by one, with one
    collective instead of one per measurement per trajectory.
    """
    tail = steps[start:]
    from aer_mpi.plan import MeasureStep

    if not all(isinstance(s, MeasureStep) for s in tail):
        return False
    positions = [s.position for s in tail]
    clbits = [s.clbit for s in tail]
    if len(set(positions)) != len(positions) or len(positions) > MAX_FINAL_SAMPLED or max(clbits) >= 62:
        return False
    k = len(positions)
    joint = final_marginal(branching.shard, positions)
    # marginals of the first j measured bits: prefix[j][x], x < 2**j
    prefix = [joint.reshape(-1, 1 << j).sum(axis=0) for j in range(k + 1)]
    draws = np.array([rng.random(k) for rng in group.rngs]).reshape(len(group.rngs), k)
    outcome = np.zeros(len(group.rngs), dtype=np.int64)
    for j in range(k):
        below = prefix[j][outcome]
        one = prefix[j + 1][outcome | (1 << j)]
        p_one = np.divide(one, below, out=np.zeros_like(one), where=below > 0)
        outcome |= (draws[:, j] < p_one).astype(np.int64) << j
    base = group.value()
    for c in clbits:
        base &= ~(1 << c)
    recorded = np.full(len(group.rngs), base, dtype=np.int64)
    for j, c in enumerate(clbits):  # a later measurement into the same clbit wins, as one by one
        recorded = (recorded & ~np.int64(1 << c)) | (((outcome >> j) & 1) << c)
    values[group.shots] = recorded
    _stats(branching)["final_measurements_sampled"] = _stats(branching).get("final_measurements_sampled", 0) + 1
    return True


def has_noise(program: ir.Program) -> bool:
    """Whether ``program`` holds a noise op (at any depth)."""
    def walk(ops: Any) -> bool:
        for op in ops:
            if isinstance(op, (ir.Noise, ir.Readout)):
                return True
            if any(walk(block) for block in ir.blocks(op)):
                return True
        return False

    return walk(program.ops)
