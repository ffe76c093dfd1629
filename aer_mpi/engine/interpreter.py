"""Straight-line plan steps on a Shard, with meetings for cancellation, progress and checkpoints.

Promise of this module: ``Interpreter.apply`` carries out one plain step
(a local or rank-conditioned gate, a diagonal, a global phase, an exchange)
on the shard; ``Interpreter.run`` runs a sequence of them, handing save
steps to a callback. Every ``meeting_every`` steps all ranks meet
(``meet``): rank 0 reports progress and every rank says whether its job
was cancelled or a signal asked it to stop (``interrupts``); if any rank
says so, every rank raises ``JobCancelledError``. When the job keeps
checkpoints (``RunControl.checkpoints``), the ranks also agree at the
meeting that one is due (the period passed on rank 0, a signal, or
``cancel(checkpoint=True)``): ``checkpoint_due`` is set on every rank and
the run writes it at its next op boundary (``at_boundary``), then goes on,
or stops when a stop asked for it. Control flow, mid-circuit
measurement and reset never reach here: shot branching (``branching``)
handles them and hands this module one plain step at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from aer_mpi import kernels
from aer_mpi.engine.config import RunControl
from aer_mpi.engine.interrupts import stop_requested
from aer_mpi.engine.shard import Shard
from aer_mpi.errors import InternalError, JobCancelledError
from aer_mpi.plan import (
    ExchangeStep,
    LocalDiagonal,
    LocalGate,
    MeasureStep,
    PhaseStep,
    RankDiagonal,
    RankGate,
    SaveStep,
    LocalSwapStep,
    SetStateStep,
    StageStep,
)

#: Amplitudes a rank may sweep between two meetings (~0.1 s of work),
#: so that a cancel lands quickly on wide shards, where one step is a full pass.
MEETING_AMPLITUDES = 1 << 22


def meeting_interval(every: int, num_local: int) -> int:
    """Steps between meetings: ``every`` at most, fewer on wide shards."""
    return max(1, min(every, MEETING_AMPLITUDES >> num_local))


def stage_gates(shard: Shard, stage: StageStep) -> list[tuple]:
    """The gates of ``stage`` as this rank applies them: ``(positions, matrix, diag)`` each."""
    gates: list[tuple] = []
    for step in stage.steps:
        if isinstance(step, LocalGate):
            gates.append((step.positions, step.matrix, None))
        elif isinstance(step, LocalDiagonal):
            gates.append((step.positions, None, step.diag))
        elif isinstance(step, RankGate):
            matrix = step.matrices[shard.rank_value(step.rank_bits)]
            if matrix is not None:
                gates.append((step.positions, matrix, None))
        elif isinstance(step, RankDiagonal):
            gates.append((step.positions, None, step.diags[shard.rank_value(step.rank_bits)]))
        elif isinstance(step, PhaseStep):
            gates.append(((), None, np.array([np.exp(1j * step.phase)])))
        else:
            raise InternalError(f"a stage cannot hold {step!r}")
    return gates


class Interpreter:
    """Runs plan steps on ``shard``; meets the other ranks every ``meeting_every`` steps."""

    def __init__(self, shard: Shard, control: RunControl, meeting_every: int, total_steps: int = 1):
        self.shard = shard
        self.control = control
        self.meeting_every = meeting_every
        #: What progress reports as the whole (the plan's top-level steps).
        self.total_steps = max(1, total_steps)
        self.steps_done = 0
        self.steps_since_meeting = 0
        #: Set on every rank at once (at a meeting): write a checkpoint at the next op boundary.
        self.checkpoint_due = False
        #: ... and stop after it (a signal, ``cancel(checkpoint=True)``).
        self.stop_after_checkpoint = False

    def run(self, steps: Sequence[Any], save: Callable[[SaveStep], None], start: int = 0,
            boundaries: frozenset = frozenset(), at_boundary: Optional[Callable[[int], None]] = None) -> None:
        """Run straight-line ``steps[start:]``; ``save(step)`` records each save step.

        A ``MeasureStep`` here is a final measurement: all shots are sampled
        afterwards in one pass, so it does nothing. When a checkpoint is due,
        ``at_boundary(i)`` writes it at the first index ``i`` in ``boundaries``
        (the end included).
        """
        for i in range(start, len(steps)):
            if self.checkpoint_due and i in boundaries:
                at_boundary(i)
            step = steps[i]
            if isinstance(step, SaveStep):
                save(step)
                self.count_step()
            else:
                self.apply(step)
        if self.checkpoint_due and len(steps) in boundaries:
            at_boundary(len(steps))

    def apply(self, step: Any) -> None:
        """Carry out one plain step, then count it."""
        shard = self.shard
        state = shard.array
        if isinstance(step, LocalGate):
            kernels.apply_matrix(state, step.matrix, step.positions)
        elif isinstance(step, LocalDiagonal):
            kernels.apply_diagonal(state, step.diag, step.positions)
        elif isinstance(step, RankGate):
            matrix = step.matrices[shard.rank_value(step.rank_bits)]
            if matrix is not None:
                kernels.apply_matrix(state, matrix, step.positions)
        elif isinstance(step, RankDiagonal):
            kernels.apply_diagonal(state, step.diags[shard.rank_value(step.rank_bits)], step.positions)
        elif isinstance(step, PhaseStep):
            kernels.scale(state, complex(np.exp(1j * step.phase)))
        elif isinstance(step, ExchangeStep):
            shard.swap(step.pairs)
        elif isinstance(step, SetStateStep):
            shard.set_state(step.state, step.positions)
        elif isinstance(step, StageStep):
            kernels.apply_stage(state, stage_gates(shard, step), step.cache_qubits)
        elif isinstance(step, LocalSwapStep):
            kernels.swap_bits(state, step.pairs)
        elif isinstance(step, MeasureStep):
            pass  # a final measurement: sampled afterwards
        else:
            raise InternalError(f"unknown plan step {step!r}")
        if not isinstance(step, MeasureStep):
            shard.passes += 1  # each of these reads and writes the shard once
        self.count_step()

    def count_step(self) -> None:
        self.steps_done += 1
        self.steps_since_meeting += 1
        if self.steps_since_meeting >= self.meeting_every:
            self.meet()

    def meet(self) -> None:
        """Collective: any rank may say stop (its job's cancel, a signal) or ask for a checkpoint;
        rank 0 reports progress."""
        self.steps_since_meeting = 0
        control = self.control
        checkpoints = control.checkpoints
        # (cancel first: rank 0 hears there a signal that reached an idle rank, and takes it as its own)
        cancel = bool(control.cancel_requested())
        signal = stop_requested() is not None
        # a signal or cancel(checkpoint=True) stops after a checkpoint when the job keeps them
        keep = checkpoints is not None and (signal or bool(control.checkpoint_requested()))
        periodic = checkpoints is not None and self.shard.rank == 0 and checkpoints.due()
        if self.shard.rank == 0 and control.progress is not None:
            control.progress(self.steps_done, self.total_steps)
        votes = self.shard.collective.allgather((signal or cancel, keep, periodic))
        stop = any(v[0] for v in votes)
        keep = any(v[1] for v in votes)
        if stop and not keep:
            raise JobCancelledError("the job was cancelled")
        if keep or any(v[2] for v in votes):
            self.checkpoint_due = True
            self.stop_after_checkpoint = self.stop_after_checkpoint or keep

    def checkpoint_written(self, where: str, failure: Optional[str] = None) -> None:
        """After a checkpoint (or a failed one): go on, or stop (every rank alike) when a stop asked for it."""
        self.checkpoint_due = False
        if self.stop_after_checkpoint:
            if failure is not None:
                raise JobCancelledError(f"the job was stopped; the checkpoint at {where} could not be written "
                                        f"({failure}): the previous one, if any, is kept")
            raise JobCancelledError(f"the job was stopped after a checkpoint ({where}): run it again with the "
                                    f"same checkpoint directory to resume")

    def stage(self, name: str) -> None:
        """Tell the caller (on rank 0) that the run enters stage ``name``."""
        if self.shard.rank == 0 and self.control.stage is not None:
            self.control.stage(name)
