"""Cache-blocked stages: runs of gates that can share one pass over the shard.

Promise of this module: ``stage_steps(steps, cache_qubits)`` is a pure
function from a plan's steps to the same steps with runs of consecutive
in-cache gates grouped into one ``StageStep``. The engine applies a stage
chunk by chunk (``kernels.apply_stage``): each chunk of ``2**cache_qubits``
amplitudes is read once, every gate of the stage applied to it while it is
in cache, and written once, so a stage costs one pass over the shard
however many gates it holds.

What may join a stage, in the order of the program:

* a dense gate (``LocalGate``, ``RankGate``) whose positions are all below
  ``cache_qubits``: it mixes amplitudes inside a chunk only;
* a diagonal (``LocalDiagonal``, ``RankDiagonal``) on any local positions:
  a bit above the chunk is a constant of the chunk;
* a global phase (``PhaseStep``), a diagonal on no qubit.

A stage holds at most ``max_steps`` steps (the engine passes its meeting
interval, so that a cancel still lands between stages). Anything else (a
dense gate on a position at or above ``cache_qubits``, an
exchange, a save, a measurement, control flow) ends the stage and runs as
before; the bodies of control flow are staged the same way. A stage of one
step is left as that step. The gates keep their order, so the result is
the same (the numba kernels give the same bits: ``kernels.apply_stage``).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Sequence

from aer_mpi.plan.noise import KrausStep, NoiseStep, ReadoutStep
from aer_mpi.plan.steps import (
    BreakStep,
    ContinueStep,
    ExchangeStep,
    ForStep,
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    LocalSwapStep,
    MeasureStep,
    PhaseStep,
    RankDiagonal,
    RankGate,
    ResetStep,
    SaveStep,
    SetStateStep,
    StageStep,
    Step,
    StoreStep,
    SwitchStep,
    WhileStep,
)

#: Fewest steps worth a stage (one step alone runs as it is).
MIN_STAGE_STEPS = 2
#: Most steps one stage holds by default: the engine meets the other ranks (cancel, progress) between
#: steps only, so a stage is kept to about what that many one-gate steps cost (the engine passes its
#: ``meeting_every``).
MAX_STAGE_STEPS = 32


def stageable(step: Step, cache_qubits: int) -> bool:
    """Whether ``step`` can run inside a stage of ``2**cache_qubits``-amplitude chunks."""
    if isinstance(step, (LocalDiagonal, RankDiagonal, PhaseStep)):
        return True
    if isinstance(step, (LocalGate, RankGate)):
        return len(step.positions) > 0 and max(step.positions) < cache_qubits
    return False


def stage_steps(steps: Sequence[Step], cache_qubits: int, max_steps: int = MAX_STAGE_STEPS) -> tuple[Step, ...]:
    """``steps`` with each run of at least ``MIN_STAGE_STEPS`` stageable steps made one ``StageStep``
    (a longer run: consecutive stages of at most ``max_steps`` steps)."""
    max_steps = max(MIN_STAGE_STEPS, max_steps)
    out: list[Step] = []
    run: list[Step] = []

    def close() -> None:
        if len(run) >= MIN_STAGE_STEPS:
            out.append(StageStep(tuple(run), cache_qubits))
        else:
            out.extend(run)
        run.clear()

    for step in steps:
        if stageable(step, cache_qubits):
            run.append(step)
            if len(run) == max_steps:
                close()
            continue
        close()
        out.append(_inner(step, cache_qubits, max_steps))
    close()
    return tuple(out)


def _inner(step: Step, cache_qubits: int, max_steps: int) -> Step:
    """Control flow with its bodies staged; any other step as it is."""
    if isinstance(step, IfElseStep):
        return dataclasses.replace(step, true_steps=stage_steps(step.true_steps, cache_qubits, max_steps),
                                   false_steps=stage_steps(step.false_steps, cache_qubits, max_steps))
    if isinstance(step, WhileStep):
        return dataclasses.replace(step, body=stage_steps(step.body, cache_qubits, max_steps))
    if isinstance(step, ForStep):
        return dataclasses.replace(step, bodies=tuple(stage_steps(b, cache_qubits, max_steps) for b in step.bodies))
    if isinstance(step, SwitchStep):
        return dataclasses.replace(step, cases=tuple((values, stage_steps(body, cache_qubits, max_steps))
                                                     for values, body in step.cases))
    return step


# -- the cache tier: bring out-of-cache qubits in with local bit swaps -------------
#: Steps ahead the cache planner looks for more positions to bring in with the same swap.
CACHE_LOOKAHEAD = 64
#: In-cache positions below this are never evicted (with a cache of at least ``LOW_POSITIONS +
#: ROTATING_POSITIONS``): a swap that moves one of them moves scattered runs of fewer than
#: ``2**LOW_POSITIONS`` amplitudes (a cache line holds 4 doubles) and takes 2-4x a swap of higher
#: positions (native kernels, 2**24 amplitudes, docs/performance.md).
LOW_POSITIONS = 3
ROTATING_POSITIONS = 8


class _Unknown(Exception):
    """A step the cache planner cannot renumber: the plan is left without cache swaps."""


def _dense_positions(step: Step) -> tuple[int, ...]:
    if isinstance(step, (LocalGate, RankGate)) and step.positions:
        return tuple(step.positions)
    return ()


def place_in_cache(
    steps: Sequence[Step], num_local: int, cache_qubits: int, final_layout: Sequence[int]
) -> tuple[tuple[Step, ...], tuple[int, ...]]:
    """Bring the positions that dense gates need below ``cache_qubits`` with local bit swaps.

    The cache tier of the localiser, one tier below the ranks: a dense gate
    on a local position at or above ``cache_qubits`` cannot join a stage, so
    before it a ``LocalSwapStep`` (one pass, several bit pairs at once)
    exchanges that position with an in-cache one whose next use by a dense
    gate is furthest away (Belady), and brings in, in the same pass, the
    positions that the next dense gates (``CACHE_LOOKAHEAD`` steps) will
    need, while a victim is free for longer. The swaps are never undone:
    every later step is renumbered (gates, exchanges, measurements, saves'
    layouts, the final layout). Control-flow bodies are renumbered but get
    no swaps of their own, so they start and end in the same placement.
    Returns ``(steps, final_layout)``; unchanged when nothing needs a swap,
    the shard fits in cache, or a step is of a kind it cannot renumber.
    """
    if num_local <= cache_qubits:
        return tuple(steps), tuple(final_layout)
    uses: dict[int, list[int]] = {}
    for i, step in enumerate(steps):
        for p in _dense_positions(step):
            uses.setdefault(p, []).append(i)

    def next_use(p: int, after: int) -> float:
        times = uses.get(p, ())
        k = bisect.bisect_right(times, after)
        return times[k] if k < len(times) else math.inf

    place = list(range(num_local))  # plan position -> position in memory
    held = list(range(num_local))  # position in memory -> plan position
    out: list[Step] = []
    swaps = 0
    try:
        for i, step in enumerate(steps):
            dense = _dense_positions(step)
            missing = [p for p in dense if place[p] >= cache_qubits]
            if missing:
                pairs = _choose_swaps(i, steps, dense, missing, place, held, cache_qubits, next_use)
                for low, high in pairs:
                    a, b = held[low], held[high]
                    place[a], place[b] = high, low
                    held[low], held[high] = b, a
                if pairs:  # none when the gate is wider than the cache allows
                    out.append(LocalSwapStep(tuple(pairs)))
                    swaps += 1
            out.append(_renumber(step, place, num_local) if swaps else step)
    except _Unknown:
        return tuple(steps), tuple(final_layout)
    if not swaps:
        return tuple(steps), tuple(final_layout)
    return tuple(out), tuple(place[p] if p < num_local else p for p in final_layout)


def _choose_swaps(i, steps, dense, missing, place, held, cache_qubits, next_use) -> list[tuple[int, int]]:
    """Memory bit pairs ``(in-cache, out-of-cache)`` to swap before step ``i``."""
    # what to bring in: this gate's missing positions, then those of the next dense gates
    wanted = [(i, p) for p in missing]
    seen = set(missing)
    for j in range(i + 1, min(len(steps), i + 1 + CACHE_LOOKAHEAD)):
        for p in _dense_positions(steps[j]):
            if p not in seen and place[p] >= cache_qubits:
                seen.add(p)
                wanted.append((j, p))
    # victims: in-cache positions this gate does not use, furthest next use first (Belady)
    keep = set(dense)
    lowest = LOW_POSITIONS if cache_qubits >= LOW_POSITIONS + ROTATING_POSITIONS else 0
    horizon = i + 1 + CACHE_LOOKAHEAD
    victims = sorted((min(next_use(held[m], i), horizon), m) for m in range(lowest, cache_qubits)
                     if held[m] not in keep)
    pairs = []
    back = horizon  # when the first victim is needed again
    for when, p in wanted:
        if not victims:
            break
        free_until, m = victims[-1]
        if when != i and free_until <= when:
            break  # the best victim is needed before this position would be: stop here
        victims.pop()
        pairs.append((m, place[p]))
        back = min(back, free_until)
    # worth it only when the steps until a victim is needed again cost fewer passes, the swap's
    # own included (beyond that point another swap decides, so its gates count for neither)
    after = list(place)
    for low, high in pairs:
        a, b = held[low], held[high]
        after[a], after[b] = high, low
    window = steps[i:back]
    if 1 + _passes(window, after, cache_qubits) < _passes(window, place, cache_qubits):
        return pairs
    return []


def _passes(steps: Sequence[Step], place: Sequence[int], cache_qubits: int) -> int:
    """Passes ``steps`` would cost with positions placed by ``place``: a run of steps that can
    share a stage is one, any other step one each (saves and measurements as one too: they
    end a run, and count the same with and without a swap)."""
    passes = 0
    in_run = False
    for step in steps:
        dense = _dense_positions(step)
        if (dense and all(place[p] < cache_qubits for p in dense)) or isinstance(
            step, (LocalDiagonal, RankDiagonal, PhaseStep)
        ):
            if not in_run:
                passes += 1
                in_run = True
        else:
            passes += 1
            in_run = False
    return passes


def _renumber(step: Step, place: list[int], num_local: int) -> Step:
    """``step`` with its local positions moved to where ``place`` keeps them."""
    def at(p: int) -> int:
        return place[p] if p < num_local else p

    def body(steps: Sequence[Step]) -> tuple[Step, ...]:
        return tuple(_renumber(s, place, num_local) for s in steps)

    if isinstance(step, (LocalGate, LocalDiagonal, RankGate, RankDiagonal, KrausStep)):
        return dataclasses.replace(step, positions=tuple(at(p) for p in step.positions))
    if isinstance(step, ExchangeStep):
        return ExchangeStep(tuple((b, at(p)) for b, p in step.pairs))
    if isinstance(step, SetStateStep):
        return dataclasses.replace(step, positions=tuple(at(p) for p in step.positions))
    if isinstance(step, (MeasureStep, ResetStep)):
        return dataclasses.replace(step, position=at(step.position))
    if isinstance(step, SaveStep):
        return dataclasses.replace(step, layout=tuple(at(p) for p in step.layout))
    if isinstance(step, (PhaseStep, StoreStep, BreakStep, ContinueStep, ReadoutStep)):
        return step
    if isinstance(step, IfElseStep):
        return dataclasses.replace(step, true_steps=body(step.true_steps), false_steps=body(step.false_steps))
    if isinstance(step, WhileStep):
        return dataclasses.replace(step, body=body(step.body))
    if isinstance(step, ForStep):
        return dataclasses.replace(step, bodies=tuple(body(b) for b in step.bodies))
    if isinstance(step, SwitchStep):
        return dataclasses.replace(step, cases=tuple((values, body(b)) for values, b in step.cases))
    if isinstance(step, NoiseStep):
        return dataclasses.replace(step, branches=tuple(body(b) for b in step.branches))
    raise _Unknown(type(step).__name__)
