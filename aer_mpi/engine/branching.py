"""Shot branching for dynamic programs, on an explicit work stack.

Promise of this module: every shot of a program with mid-circuit
measurements, resets or control flow runs, shots sharing one state until
a measurement (or reset) splits them by outcome. Shot ``s`` draws from its
own stream ``default_rng([seed, s])``, so its outcomes do not depend on
which shots it travels with, on the number of ranks, or on memory. Every
decision is the same on every rank (probabilities are agreed collectively).

How it runs. A *continuation* says what a group of shots does next: an
immutable linked list of frames, innermost first:

* ``_Seq(steps, index, parent)``: run ``steps[index:]``, then ``parent``;
* ``_Loop(step, passes, parent)``: a while loop that has made ``passes``
  passes: test its condition, then run its body (with a ``_Loop`` of
  ``passes + 1`` after it) or go on with ``parent``.

Frames share their parents and are never copied, so a continuation is as
deep as the control flow is nested, whatever the number of loop passes or
measurements (a pass replaces its ``_Loop`` frame by the next one). A split
runs the shots of outcome 0 on at once (depth first); the shots of outcome
1 wait on the work stack with a copy of the shard taken before the
collapse (at most ``copies`` such copies at once). When no copy can be
afforded, those shots are queued to be replayed from the start instead,
with the saves they already met skipped. No recursion anywhere.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Optional, Union

import numpy as np

from aer_mpi import environment, ir, kernels
from aer_mpi.engine.checkpoint import load_state
from aer_mpi.engine.interpreter import Interpreter
from aer_mpi.engine.noise import (
    RUN_AHEAD_STEPS,
    Collapse,
    NoisePending,
    run_ahead,
    runs_ahead,
    sample_final_measures,
    stats_of,
)
from aer_mpi.engine.sampling import clbit_dtype
from aer_mpi.engine.saves import Saves
from aer_mpi.engine.shard import Shard
from aer_mpi.errors import InvalidInputError
from aer_mpi.plan import (
    BreakStep,
    ContinueStep,
    ForStep,
    IfElseStep,
    MeasureStep,
    ResetStep,
    SaveStep,
    StoreStep,
    SwitchStep,
    WhileStep,
)

#: Steps that neither read nor change the state (a deferred collapse waits across them).
_NO_STATE_STEPS = (IfElseStep, SwitchStep, WhileStep, ForStep, BreakStep, ContinueStep, StoreStep)

#: Defer a measurement's collapse to the gates after it (one cache-blocked pass with them).
DEFER_COLLAPSE = True

#: Shots that start together in shot branching (each holds a random stream).
SHOT_BATCH = 8192


def clbits_value(clbits: np.ndarray) -> int:
    """The classical register as an integer, clbit 0 lowest."""
    out = 0
    for i, bit in enumerate(clbits):
        out |= int(bit) << i
    return out


class ShotGroup:
    """Shots that share one state and one classical memory (``clbits``)."""

    __slots__ = ("shots", "rngs", "clbits", "saves_seen", "skip_saves", "memory_bits")

    def __init__(self, shots: np.ndarray, rngs: list, clbits: np.ndarray, skip_saves: int = 0,
                 memory_bits: Optional[int] = None):
        self.shots = shots
        self.rngs = rngs
        self.clbits = clbits
        #: The first ``memory_bits`` clbits are the circuit's memory; the rest hold its classical variables.
        self.memory_bits = len(clbits) if memory_bits is None else memory_bits
        #: Saves met so far, and how many of the first ones were already recorded (a replay).
        self.saves_seen = 0
        self.skip_saves = skip_saves

    def take(self, mask: np.ndarray) -> "ShotGroup":
        rngs = [rng for rng, keep in zip(self.rngs, mask) if keep]
        sub = ShotGroup(self.shots[mask], rngs, self.clbits.copy(), self.skip_saves, self.memory_bits)
        sub.saves_seen = self.saves_seen
        return sub

    def value(self) -> int:
        """The classical memory as an integer (the variables' bits left out)."""
        return clbits_value(self.clbits[: self.memory_bits])


class _Seq:
    """Run ``steps[index:]``, then ``parent``."""

    __slots__ = ("steps", "index", "parent")

    def __init__(self, steps: tuple, index: int, parent: "_Frame"):
        self.steps = steps
        self.index = index
        self.parent = parent


class _Loop:
    """A while loop ``step`` after ``passes`` passes; then ``parent``."""

    __slots__ = ("step", "passes", "parent")

    def __init__(self, step: WhileStep, passes: int, parent: "_Frame"):
        self.step = step
        self.passes = passes
        self.parent = parent


class _ForPass:
    """A for loop ``step`` whose pass ``index`` comes next; then ``parent``."""

    __slots__ = ("step", "index", "parent")

    def __init__(self, step: ForStep, index: int, parent: "_Frame"):
        self.step = step
        self.index = index
        self.parent = parent


_Frame = Optional[Union[_Seq, _Loop, _ForPass]]  # None: the shots are done


def _innermost_loop(frame: _Frame) -> Union[_Loop, _ForPass]:
    """The loop frame a ``break`` / ``continue`` at ``frame`` belongs to."""
    while frame is not None and not isinstance(frame, (_Loop, _ForPass)):
        frame = frame.parent
    if frame is None:
        raise InvalidInputError("break_loop or continue_loop outside a loop")
    return frame


def _seq(steps: tuple, index: int, parent: _Frame) -> _Frame:
    """``_Seq(steps, index, parent)``, or just ``parent`` when nothing is left of ``steps``."""
    return _Seq(steps, index, parent) if index < len(steps) else parent


class _Pending:
    """Shots of outcome 1 of a split, waiting (on the work stack) for the outcome-0 shots to finish."""

    __slots__ = ("step", "group", "p_one", "total", "saved", "then")

    def __init__(self, step: Any, group: ShotGroup, p_one: float, total: float, saved: np.ndarray, then: _Frame):
        self.step = step
        self.group = group
        self.p_one = p_one
        self.total = total
        self.saved = saved
        self.then = then


class Branching:
    """Runs a dynamic plan's steps for all shots on ``shard``."""

    def __init__(
        self,
        shard: Shard,
        interpreter: Interpreter,
        saves: Saves,
        seed: int,
        num_clbits: int,
        copies: int,
        num_var_bits: int = 0,
    ):
        self.shard = shard
        self.interpreter = interpreter
        self.loop_passes = environment.count("AER_MPI_MAX_LOOP_PASSES")  # the bound on a loop that never ends
        self.saves = saves
        self.seed = seed
        self.num_clbits = max(num_clbits, 0)
        #: Bits of the classical variables, kept after the memory's.
        self.num_var_bits = max(num_var_bits, 0)
        #: Shard copies that may still be taken (agreed: the least of any rank).
        self.copies_left = copies
        #: Shots to replay from the start: (shots, saves already recorded), first in first out.
        self.replays: deque = deque()
        #: The job's checkpoints and the plan's index of points (``keep_checkpoints``).
        self.checkpoints: Any = None
        self.index: Any = None
        #: A measurement's collapse not applied yet (a ``LocalDiagonal``): the gates run ahead after
        #: it take it in (one cache-blocked pass with them); anything else that reads the state
        #: applies it first (``_settle``).
        self.deferred: Optional[Collapse] = None

    def keep_checkpoints(self, checkpoints: Any, index: Any) -> None:
        """Write checkpoints to ``checkpoints`` (engine/checkpoint.py) when the interpreter says one is due."""
        self.checkpoints = checkpoints
        self.index = index

    def run(self, steps: tuple, shots: int, resume: Optional[dict] = None) -> np.ndarray:
        """The final classical register of every shot (collective); from a checkpoint's ``resume`` part."""
        # registers wider than 63 clbits are Python ints (sampling.clbit_dtype)
        values = np.zeros(shots, dtype=clbit_dtype(self.num_clbits))
        steps = tuple(steps)
        first = True
        if resume is None:
            # batches bound the per-shot random streams held at once
            all_shots = np.arange(shots, dtype=np.int64)
            self.replays.extend((all_shots[i : i + SHOT_BATCH], 0) for i in range(0, shots, SHOT_BATCH))
        else:
            values, current, stack = self._restore(resume)
            self._run_tree(current[0], current[1], values, stack)
            first = False
        while self.replays:
            if not first:  # a cancel lands between batches of shots too (collective)
                self.interpreter.meet()
            first = False
            batch, skip_saves = self.replays.popleft()
            group = ShotGroup(
                batch,
                [np.random.default_rng([self.seed, int(s)]) for s in batch],
                np.zeros(self.num_clbits + self.num_var_bits, dtype=np.uint8),
                skip_saves,
                self.num_clbits,
            )
            self.shard.reset()
            self._run_tree(group, _seq(steps, 0, None), values)
        return values

    def _run_tree(self, group: ShotGroup, then: _Frame, values: np.ndarray, stack: Optional[list] = None) -> None:
        """Run ``group`` and every group split from it that keeps a shard copy, depth first."""
        stack = [] if stack is None else stack
        current: Optional[tuple[ShotGroup, _Frame]] = (group, then)
        try:
            while True:
                if current is None:
                    if not stack:
                        return
                    pending = stack.pop()
                    if isinstance(pending, NoisePending):  # noise (engine/noise.py)
                        group, then = pending.resume(self, _seq)
                        current = self._advance(group, then, stack, values)
                        continue
                    saved, pending.saved = pending.saved, None
                    # the copy restored and collapsed in one pass
                    current = (self._outcome(pending.step, pending.group, 1, pending.p_one, pending.total, saved),
                               pending.then)
                    self.copies_left += 1
                group, then = current
                current = self._advance(group, then, stack, values)
        finally:
            # an error: give back the copies still held
            self.copies_left += sum(1 for pending in stack if pending.saved is not None)

    def _advance(
        self, group: ShotGroup, frame: _Frame, stack: list, values: np.ndarray
    ) -> Optional[tuple[ShotGroup, _Frame]]:
        """Run ``group`` along ``frame`` up to its next split (returns what goes on) or its end (None)."""
        interpreter = self.interpreter
        loop_passes = self.loop_passes
        while frame is not None:
            if isinstance(frame, _ForPass):
                bodies = frame.step.bodies
                frame = (
                    _Seq(bodies[frame.index], 0, _ForPass(frame.step, frame.index + 1, frame.parent))
                    if frame.index < len(bodies) else frame.parent
                )
                continue
            if isinstance(frame, _Loop):
                step = frame.step
                if not ir.condition_holds(step.condition, group.clbits):
                    frame = frame.parent
                    continue
                if frame.passes >= loop_passes:
                    raise InvalidInputError(
                        f"a while loop ran {loop_passes} passes in one shot: make sure its condition can "
                        f"become false, or allow more passes (AER_MPI_MAX_LOOP_PASSES={loop_passes})"
                    )
                frame = _seq(step.body, 0, _Loop(step, frame.passes + 1, frame.parent))
                continue
            steps, i, parent = frame.steps, frame.index, frame.parent
            frame = None
            while i < len(steps):
                if interpreter.checkpoint_due and i in self.index.boundaries(self.index.block_of(steps)):
                    self._settle()
                    self._checkpoint(group, _Seq(steps, i, parent), stack, values)
                step = steps[i]
                i += 1
                if self.deferred is not None and not isinstance(step, _NO_STATE_STEPS) and not (
                        isinstance(step, RUN_AHEAD_STEPS) and runs_ahead(self, step)):
                    self._settle()
                if (isinstance(step, MeasureStep) and parent is None and getattr(self, "sample_final", False)
                        and sample_final_measures(self, group, steps, i - 1, values)):  # noise (engine/noise.py)
                    return None
                if isinstance(step, (MeasureStep, ResetStep)):
                    return self._split(step, group, _seq(steps, i, parent), stack)
                if isinstance(step, RUN_AHEAD_STEPS) and runs_ahead(self, step):
                    # noise (engine/noise.py): gates fused and noise sampled up to the next split
                    return run_ahead(self, group, _Seq(steps, i - 1, parent), stack, _seq)
                if isinstance(step, IfElseStep):
                    branch = step.true_steps if ir.condition_holds(step.condition, group.clbits) else step.false_steps
                    frame = _seq(branch, 0, _seq(steps, i, parent))
                    break
                if isinstance(step, SwitchStep):
                    body = step.body_for(ir.evaluate(step.target, group.clbits))
                    frame = _seq(body, 0, _seq(steps, i, parent))
                    break
                if isinstance(step, WhileStep):
                    frame = _Loop(step, 0, _seq(steps, i, parent))
                    break
                if isinstance(step, ForStep):
                    frame = _ForPass(step, 0, _seq(steps, i, parent))
                    break
                if isinstance(step, (BreakStep, ContinueStep)):
                    # the innermost loop frame is a parent of this block's: leave it, or test it again
                    loop = _innermost_loop(parent)
                    frame = loop.parent if isinstance(step, BreakStep) else loop
                    break
                if isinstance(step, StoreStep):
                    value = ir.evaluate(step.expr, group.clbits)
                    for j, c in enumerate(step.clbits):
                        group.clbits[c] = (value >> j) & 1
                    continue
                if isinstance(step, SaveStep):
                    group.saves_seen += 1
                    if group.saves_seen > group.skip_saves:
                        self.saves.save(step, group.shots, hex(group.value()))
                else:
                    interpreter.apply(step)
            else:
                frame = parent
        self._settle()
        values[group.shots] = group.value()
        stats_of(self)["groups_finished"] += 1
        return None

    def _settle(self) -> None:
        """Apply the deferred collapse, if any."""
        deferred, self.deferred = self.deferred, None
        if deferred is not None:
            kernels.apply_diagonal(self.shard.array, deferred.diag, deferred.positions)
            self.shard.passes += 1

    # -- checkpoints: the records are below the class ---------------------------------------
    def _checkpoint(self, group: ShotGroup, frame: _Frame, stack: list, values: np.ndarray) -> None:
        """Write a checkpoint of the whole run: this group at ``frame``, the work stack, the queued replays."""
        index, shard = self.index, self.shard
        current = _frame_record(index, frame)
        states = [(shard.array, _frame_layout(index, current))]
        pending = []
        written: dict[int, int] = {}  # id of a copy -> its state (the sides of a noise event share one)

        def state_of(array: Optional[np.ndarray], layout: tuple) -> Optional[int]:
            if array is None:
                return None
            if id(array) not in written:
                written[id(array)] = len(states)
                states.append((array, layout))
            return written[id(array)]

        for item in stack:
            b, op = index.op_of(item.step)
            layout = index.blocks[b].layouts[op]
            record = {"noise": isinstance(item, NoisePending), "op": (b, op), "group": _group_record(item.group),
                      "then": _frame_record(index, item.then), "state": state_of(item.saved, layout)}
            if isinstance(item, NoisePending):
                record.update(side=item.side, data=item.data, shared=state_of(item.shared, layout))
            else:
                record.update(p_one=item.p_one, total=item.total)
            pending.append(record)
        where = f"shot branching, {len(values)} shots, {len(stack)} groups waiting"
        engine = {"kind": "dynamic", "where": where, "current": current, "group": _group_record(group),
                  "pending": pending, "replays": list(self.replays), "values": values,
                  "steps_done": self.interpreter.steps_done, "noise_stats": getattr(self, "noise_stats", None)}
        failure = self.checkpoints.write(shard.collective, engine, states,
                                         {"saves": self.saves.state()} if shard.rank == 0 else None)
        self.interpreter.checkpoint_written(where, failure)

    def _restore(self, resume: dict) -> tuple:
        """Values, the current (group, frame) and the work stack of a checkpoint, states loaded (collective)."""
        index, shard = self.index, self.shard
        files = resume["states"]
        if shard.rank == 0:
            self.saves.restore(resume["saves"])
        self.interpreter.steps_done = resume["steps_done"]
        if resume.get("noise_stats") is not None:
            self.noise_stats = dict(resume["noise_stats"])
        self.replays.extend(resume["replays"])
        stack: list = []
        loaded: dict[int, np.ndarray] = {}  # state -> its copy, loaded once (the sides of a noise event share one)

        def copy_of(state: Optional[int], layout: tuple) -> Optional[np.ndarray]:
            if state is None:
                return None
            if state not in loaded:
                load_state(self.checkpoints, shard, files[state], layout)
                loaded[state] = shard.copy()
            return loaded[state]

        for record in resume["pending"]:
            b, op = record["op"]
            layout = index.blocks[b].layouts[op]
            saved = copy_of(record["state"], layout)
            if saved is not None:
                self.copies_left -= 1
            step = index.last_step(b, op)
            group = _group_from(record["group"])
            then = _frame_from(index, record["then"])
            if record["noise"]:
                stack.append(NoisePending(step, group, record["side"], record["data"], saved, then,
                                          shared=copy_of(record.get("shared"), layout)))
            else:
                stack.append(_Pending(step, group, record["p_one"], record["total"], saved, then))
        self.copies_left = max(0, self.copies_left)
        load_state(self.checkpoints, shard, files[0], _frame_layout(index, resume["current"]))
        current = (_group_from(resume["group"]), _frame_from(index, resume["current"]))
        return resume["values"], current, stack

    def _split(self, step: Any, group: ShotGroup, then: _Frame, stack: list) -> tuple[ShotGroup, _Frame]:
        """Measure (or reset) every shot of ``group``; returns the side that goes on now."""
        shard = self.shard
        p_one, total = shard.probability_of_one(step.position)
        draws = np.array([rng.random() for rng in group.rngs])
        ones = draws < p_one
        sides = [(outcome, mask) for outcome, mask in ((0, ~ones), (1, ones)) if mask.any()]
        stats = stats_of(self)
        stats["measurements"] += 1
        if len(sides) == 2:
            stats["measure_splits"] += 1
            later = group.take(sides[1][1])
            if self.copies_left > 0:
                self.copies_left -= 1
                stats["measure_copies"] += 1
                stack.append(_Pending(step, later, p_one, total, shard.copy(), then))
            else:
                # replayed from the start later; the saves met so far are recorded already
                stats["replayed_shots"] += len(later.shots)
                self.replays.append((later.shots, later.saves_seen))
            return self._outcome(step, group.take(sides[0][1]), 0, p_one, total), then
        # every shot reads the same outcome: no copy of the group's memory is needed
        return self._outcome(step, group, sides[0][0], p_one, total), then

    def _outcome(self, step: Any, group: ShotGroup, outcome: int, p_one: float, total: float,
                 saved: Optional[np.ndarray] = None) -> ShotGroup:
        """Collapse onto ``outcome`` (of ``saved``, a copy of the state before, when given) and record
        it (a measurement) or undo it (a reset). A measurement's collapse on a local position is
        deferred when the group fuses its gates (``deferred``): it joins the gates that follow."""
        shard = self.shard
        if (saved is None and DEFER_COLLAPSE and getattr(self, "fuse_ahead", False) and step.position < shard.num_local
                and (isinstance(step, MeasureStep) or not outcome)):
            kept = p_one if outcome else 1.0 - p_one
            diag = np.zeros(2, dtype=complex)
            diag[outcome] = 1.0 / math.sqrt(kept * total)  # the factor of Shard.collapse
            self._settle()
            self.deferred = Collapse((step.position,), diag)
        else:
            shard.collapse(step.position, outcome, p_one, total, saved)
        if isinstance(step, MeasureStep):
            group.clbits[step.clbit] = outcome
        elif outcome:
            self.shard.flip(step.position)
        return group


# -- checkpoints (engine/checkpoint.py) --------------------------------------------------------
# A checkpoint names frames and steps by (block, op) of the plan (``PlanIndex``), which are the
# same at any number of ranks; each state is kept in the layout of its point, and moved to the
# new plan's layout there when resumed (``load_state``).

def _group_record(group: ShotGroup) -> dict:
    return {"shots": group.shots, "rngs": [rng.bit_generator.state for rng in group.rngs],
            "clbits": group.clbits, "saves_seen": group.saves_seen, "skip_saves": group.skip_saves,
            "memory_bits": group.memory_bits}


def _group_from(record: dict) -> ShotGroup:
    rngs = []
    for state in record["rngs"]:
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = state
        rngs.append(rng)
    group = ShotGroup(record["shots"], rngs, record["clbits"], record["skip_saves"], record["memory_bits"])
    group.saves_seen = record["saves_seen"]
    return group


def _frame_record(index: Any, frame: _Frame) -> list:
    """The frames of a continuation, innermost first, by (block, op)."""
    out = []
    while frame is not None:
        if isinstance(frame, _Seq):
            b = index.block_of(frame.steps)
            out.append(("seq", b, index.ops_done(b, frame.index)))
        else:
            b, op = index.op_of(frame.step)
            out.append(("loop" if isinstance(frame, _Loop) else "for", b, op,
                        frame.passes if isinstance(frame, _Loop) else frame.index))
        frame = frame.parent
    return out


def _frame_from(index: Any, record: list) -> _Frame:
    frame: _Frame = None
    for entry in reversed(record):
        if entry[0] == "seq":
            _, b, ops_done = entry
            frame = _Seq(index.blocks[b].steps, index.index_after(b, ops_done), frame)
        elif entry[0] == "loop":
            frame = _Loop(index.last_step(entry[1], entry[2]), entry[3], frame)
        else:
            frame = _ForPass(index.last_step(entry[1], entry[2]), entry[3], frame)
    return frame


def _frame_layout(index: Any, record: list) -> tuple:
    """The layout of the state at a continuation's point (its innermost frame)."""
    kind, b, op = record[0][:3]
    return index.blocks[b].layout_at(op) if kind == "seq" else index.blocks[b].layouts[op]
