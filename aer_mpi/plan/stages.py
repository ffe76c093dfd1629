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

Anything else (a dense gate on a position at or above ``cache_qubits``, an
exchange, a save, a measurement, control flow) ends the stage and runs as
before; the bodies of control flow are staged the same way. A stage of one
step is left as that step. The gates keep their order, so the result is
the same (the numba kernels give the same bits: ``kernels.apply_stage``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from aer_mpi.plan.steps import (
    ForStep,
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    PhaseStep,
    RankDiagonal,
    RankGate,
    StageStep,
    Step,
    SwitchStep,
    WhileStep,
)

#: Fewest steps worth a stage (one step alone runs as it is).
MIN_STAGE_STEPS = 2


def stageable(step: Step, cache_qubits: int) -> bool:
    """Whether ``step`` can run inside a stage of ``2**cache_qubits``-amplitude chunks."""
    if isinstance(step, (LocalDiagonal, RankDiagonal, PhaseStep)):
        return True
    if isinstance(step, (LocalGate, RankGate)):
        return len(step.positions) > 0 and max(step.positions) < cache_qubits
    return False


def stage_steps(steps: Sequence[Step], cache_qubits: int) -> tuple[Step, ...]:
    """``steps`` with each run of at least ``MIN_STAGE_STEPS`` stageable steps made one ``StageStep``."""
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
            continue
        close()
        out.append(_inner(step, cache_qubits))
    close()
    return tuple(out)


def _inner(step: Step, cache_qubits: int) -> Step:
    """Control flow with its bodies staged; any other step as it is."""
    if isinstance(step, IfElseStep):
        return dataclasses.replace(step, true_steps=stage_steps(step.true_steps, cache_qubits),
                                   false_steps=stage_steps(step.false_steps, cache_qubits))
    if isinstance(step, WhileStep):
        return dataclasses.replace(step, body=stage_steps(step.body, cache_qubits))
    if isinstance(step, ForStep):
        return dataclasses.replace(step, bodies=tuple(stage_steps(b, cache_qubits) for b in step.bodies))
    if isinstance(step, SwitchStep):
        return dataclasses.replace(step, cases=tuple((values, stage_steps(body, cache_qubits))
                                                     for values, body in step.cases))
    return step
