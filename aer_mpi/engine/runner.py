"""Run one program on every rank of a communicator.

The world communicator may have any size. The first ``2**g`` ranks work
(each holds one shard); the rest idle and receive the results at the end.
Every collective here goes through ``Collective`` (errors agreed on), and a
rank that raises locally joins the next collective with its error, so every
rank leaves with the same exception and none is left waiting.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import ir, kernels
from aer_mpi.comm import (
    BitSwapExchange,
    Collective,
    ranks_on_this_node,
    stream_partner_blocks,
    write_npy_collective,
)
from aer_mpi.engine.config import PRECISIONS, ExperimentOutput, RunConfig, RunControl
from aer_mpi.errors import InsufficientMemoryError, InternalError, InvalidInputError, JobCancelledError
from aer_mpi.plan import (
    ExchangeStep,
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    MeasureStep,
    PhaseStep,
    RankDiagonal,
    RankGate,
    ResetStep,
    SaveStep,
    SwitchStep,
    WhileStep,
    choose_rank_bits,
    plan_program,
    swaps_to_make_global,
)
from aer_mpi.plan.fusion import FusionOptions, fuse
from aer_mpi.plan.localiser import flipped_qubits, naive_exchange_count

#: Scratch a rank holds besides its shard and exchange buffer (kernel chunks, bookkeeping).
SCRATCH_BYTES = 8 << 20
#: Entries of magnitude below this are left out of saved dicts (Aer's default chop threshold).
CHOP_THRESHOLD = 1e-10
#: A reduced array larger than this is summed on rank 0 only (it stays there, like a statevector).
SMALL_ARRAY = 1 << 16
#: Passes a while loop may make in one shot before the run stops with an error.
MAX_LOOP_ITERATIONS = 10_000
#: Most shard copies shot branching keeps (one per pending measurement outcome).
MAX_BRANCH_COPIES = 64
#: Shots that start together in shot branching (each holds a random stream).
SHOT_BATCH = 8192

#: Amplitudes a rank may sweep between two cancellation checkpoints (~0.1 s of work),
#: so that a cancel lands quickly on wide shards, where one step is a full pass.
CHECKPOINT_AMPLITUDES = 1 << 22


def checkpoint_interval(every: int, num_local: int) -> int:
    """Steps between checkpoints: ``every`` at most, fewer on wide shards."""
    return max(1, min(every, CHECKPOINT_AMPLITUDES >> num_local))


def widest_local_need(ops: Sequence[ir.Op]) -> int:
    """Most qubits one op needs local at once (its flipped qubits)."""
    widest = 1
    for op in ops:
        if isinstance(op, ir.CONTROL_FLOW):
            widest = max([widest] + [widest_local_need(block) for block in ir.blocks(op)])
        elif isinstance(op, ir.Swap):
            widest = max(widest, 2)
        else:
            widest = max(widest, len(flipped_qubits(op)))
    return widest


def has_statevector_save(ops: Sequence[ir.Op]) -> bool:
    for op in ops:
        if isinstance(op, ir.Save) and op.kind in ("statevector", "statevector_dict"):
            return True
        if isinstance(op, ir.CONTROL_FLOW) and any(has_statevector_save(b) for b in ir.blocks(op)):
            return True
    return False


def memory_needed(
    program: ir.Program, config: RunConfig, num_local: int, rank: int, working: bool
) -> int:
    """Bytes this rank will hold during the run, counted before allocating any."""
    itemsize = np.dtype(PRECISIONS[config.precision]).itemsize
    # per shot while sampling: uniform, outcome, clbit value, owner index (8 bytes
    # each, some twice), plus a hex string per shot when memory=True
    outcomes = (64 + (80 if config.memory else 0)) * config.shots
    if not working:
        return outcomes
    need = (itemsize << num_local) + config.buffer_bytes + SCRATCH_BYTES + outcomes
    if rank == 0 and has_statevector_save(program.ops):
        # the gathered state in Qiskit's order, plus one shard received at a time
        need += (itemsize << program.num_qubits) + (itemsize << num_local)
    return need


def branch_copies(program: ir.Program, config: RunConfig, num_local: int, rank: int, available: int) -> int:
    """How many copies of the shard shot branching may hold at once besides the rest."""
    itemsize = np.dtype(PRECISIONS[config.precision]).itemsize
    spare = available - memory_needed(program, config, num_local, rank, True) - 64 * config.shots
    return max(0, min(MAX_BRANCH_COPIES, spare // (itemsize << num_local)))


def memory_available(comm: Any, config: RunConfig, node_ranks: Optional[int] = None) -> int:
    if config.max_memory_bytes is not None:
        return int(config.max_memory_bytes)
    import psutil

    if node_ranks is None:
        node_ranks = ranks_on_this_node(comm)
    return int(psutil.virtual_memory().available // node_ranks)


def fusion_options(config: RunConfig) -> FusionOptions:
    return FusionOptions(
        enabled=config.fusion_enable,
        max_qubits=config.fusion_max_qubit,
        max_diagonal_qubits=max(config.fusion_max_qubit, config.fusion_max_diagonal_qubit),
        threshold=config.fusion_threshold,
    )


def cores_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_kernels(config: RunConfig, node_ranks: int) -> tuple[str, int]:
    """Pick the gate kernels and their threads so the node's ranks share its cores."""
    name = kernels.use(config.kernels or os.environ.get("AER_MPI_KERNELS", "auto"))
    threads = config.threads_per_rank or max(1, cores_available() // max(1, node_ranks))
    return name, kernels.set_threads(threads)


def _mib(num_bytes: int) -> str:
    return f"{num_bytes / (1 << 20):,.0f} MiB" if num_bytes >= 1 << 20 else f"{num_bytes:,} bytes"


def run_experiment(
    program: ir.Program,
    config: RunConfig,
    comm: Any,
    control: Optional[RunControl] = None,
) -> ExperimentOutput:
    """Run ``program`` collectively on ``comm``; every rank must call it."""
    return _Run(program, config, comm, control or RunControl()).run()


def clbits_value(clbits: np.ndarray) -> int:
    """The classical register as an integer, clbit 0 lowest."""
    out = 0
    for i, bit in enumerate(clbits):
        out |= int(bit) << i
    return out


class _Trajectory:
    """Classical state of one shot."""

    def __init__(self, num_clbits: int):
        self.clbits = np.zeros(max(num_clbits, 0), dtype=np.uint8)

    def value(self) -> int:
        return clbits_value(self.clbits)


class _Run:
    def __init__(self, program: ir.Program, config: RunConfig, comm: Any, control: RunControl):
        self.program = program
        self.config = config
        self.world = comm
        self.world_collective = Collective(comm)
        self.control = control
        self.data: dict[str, Any] = {}
        self.steps_done = 0
        self.steps_since_checkpoint = 0
        self.total_steps = 1
        self.saves: dict[str, _SaveRecord] = {}
        self.copies_allowed = 0

    # -- top level -------------------------------------------------------
    def run(self) -> ExperimentOutput:
        start = time.perf_counter()
        config = self.config
        fusion_start = time.perf_counter()
        # Fused on the logical program, so independent of the rank count.
        self.unfused = self.program
        self.program, fusion_stats = fuse(self.program, fusion_options(config))
        self.fusion = dict(fusion_stats.as_dict(), seconds=time.perf_counter() - fusion_start,
                           enabled=config.fusion_enable and self.program.num_qubits >= config.fusion_threshold)
        program = self.program
        n = program.num_qubits
        min_local = max(config.min_local_qubits, widest_local_need(program.ops))
        g = choose_rank_bits(n, self.world_collective.size, min_local)
        working = 1 << g
        rank = self.world_collective.rank
        is_working = rank < working

        error: Optional[BaseException] = None
        node_ranks = ranks_on_this_node(self.world)
        try:
            self.kernels = configure_kernels(config, node_ranks)
            need = memory_needed(program, config, n - g, rank, is_working)
            have = memory_available(self.world, config, node_ranks)
            if is_working and need <= have:
                self.copies_allowed = branch_copies(program, config, n - g, rank, have)
            if need > have:
                raise InsufficientMemoryError(
                    f"{n} qubits need {_mib(need)} per rank on {working} rank"
                    f"{'s' if working > 1 else ''} ({config.precision} precision); "
                    f"{_mib(have)} are available on rank {rank}: use more ranks"
                    + (", precision='single'" if config.precision == "double" else "")
                    + " or fewer qubits"
                )
        except Exception as exc:  # reported to every rank just below
            error = exc
        self.world_collective.agree(error)

        sub = self.world.Split(color=0 if is_working else 1, key=rank)
        output: Optional[ExperimentOutput] = None
        failure: Optional[BaseException] = None
        try:
            if is_working:
                output = self._run_working(sub, g)
        except Exception as exc:
            failure = exc
        finally:
            sub.Free()

        # Rank 0 always works; it tells every rank the outcome.
        if rank == 0:
            packet = ("error", failure) if failure is not None else ("ok", _small_part(output))
        else:
            packet = None
        try:
            packet = self.world_collective.bcast(packet)
        except Exception as exc:  # an unpicklable error: send its text instead
            raise InternalError(f"could not share the outcome of the run: {exc}") from exc
        if packet[0] == "error":
            if failure is not None:
                raise failure
            raise packet[1]
        if output is None or rank != 0:
            big = output.data if output is not None else {}
            output = packet[1]
            # keep what this rank has that rank 0 did not send (nothing large)
            for key, value in big.items():
                output.data.setdefault(key, value)
        output.metadata["ranks"] = self.world_collective.size
        output.metadata["idle_ranks"] = self.world_collective.size - working
        if self.world_collective.size != working:
            output.metadata["note"] = (
                f"{self.world_collective.size} ranks: {working} work "
                f"({'a power of two' if n - g >= min_local else f'{n} qubits need at least {min_local} local'}), "
                f"{self.world_collective.size - working} idle"
            )
        output.metadata["time_taken"] = time.perf_counter() - start
        return output

    # -- the working ranks ------------------------------------------------
    def _run_working(self, sub: Any, g: int) -> ExperimentOutput:
        config = self.config
        self.collective = Collective(sub)
        self.exchange = BitSwapExchange(sub, config.buffer_bytes)
        try:
            return self._run_working_inner(g)
        except Exception as exc:
            if getattr(exc, "_agreed", False) or isinstance(exc, JobCancelledError):
                raise
            # A local failure: meet the others at their next collective with it.
            self.collective.agree(exc)
            raise InternalError(f"rank {self.collective.rank} failed but no rank reported it") from exc
        finally:
            self.exchange.close()

    def _run_working_inner(self, g: int) -> ExperimentOutput:
        program, config = self.program, self.config
        n = program.num_qubits
        self.num_local = n - g
        self.checkpoint_every = checkpoint_interval(config.checkpoint_every, self.num_local)
        self.rank = self.collective.rank
        plan_start = time.perf_counter()
        plan = plan_program(program, self.num_local)
        plan_seconds = time.perf_counter() - plan_start
        self.plan = plan
        self.dtype = np.dtype(PRECISIONS[config.precision])
        self.state = np.zeros(1 << self.num_local, dtype=self.dtype)
        self.sampling_bytes = 0
        self.rng = np.random.default_rng(config.seed)
        dynamic = ir.is_dynamic(program)

        compute_start = time.perf_counter()
        values: Optional[np.ndarray] = None
        statevector_file: Optional[str] = None
        self._stage("simulating")
        if not dynamic:
            self.total_steps = max(1, len(plan.steps))
            self._reset_state()
            traj = _Trajectory(program.num_clbits)
            self._execute(plan.steps, traj)
            layout = plan.final_layout
            if config.statevector_path is not None:
                layout = self._write_statevector(layout, config.statevector_path)
                statevector_file = config.statevector_path
            measures = ir.final_measurements(program)
            if measures:
                self._stage("sampling")
                outcomes = self._sample(layout, config.shots)
                values = _clbit_values(outcomes, measures)
        else:
            self.total_steps = max(1, len(plan.steps))
            values = np.zeros(config.shots, dtype=np.int64)
            self._run_branching(plan.steps, values)
        for label, record in self.saves.items():
            value = record.result()
            if value is not None:
                self.data[label] = value
        self.collective.agree()  # the last collective: a late local error meets it here
        elapsed = time.perf_counter() - compute_start

        stats = (self.exchange.stats.exchanges, self.exchange.stats.bytes_sent,
                 self.exchange.stats.seconds + self.collective.seconds, self.sampling_bytes)
        all_stats = self.collective.allgather(stats)
        comm_seconds = max(s[2] for s in all_stats)
        counts = memory = None
        if values is not None:
            counts = _counts(values)
            if config.memory:
                memory = [hex(int(v)) for v in values]
        metadata = {
            "method": "statevector",
            "precision": config.precision,
            "num_qubits": n,
            "working_ranks": 1 << g,
            "global_qubits": g,
            "qubits_per_shard": self.num_local,
            "shots": config.shots,
            "seed_simulator": config.seed,
            "dynamic": dynamic,
            "exchanges": all_stats[0][0],
            "bytes_exchanged": int(sum(s[1] for s in all_stats)),
            # the exchange that puts the top logical qubits global before sampling
            "sampling_bytes_exchanged": int(sum(s[3] for s in all_stats)),
            "time_communication": comm_seconds,
            "time_compute": max(0.0, elapsed - comm_seconds),
            "time_planning": plan_seconds,
            "plan": dict(plan.stats, steps=len(plan.steps)),
            # one exchange per gate on a global qubit, unfused, fixed layout (plan/localiser.py)
            "naive_exchanges": naive_exchange_count(self.unfused, self.num_local),
            "fusion": self.fusion,
            "kernels": self.kernels[0],
            "threads_per_rank": self.kernels[1],
        }
        if config.statevector_path is not None:
            metadata["statevector_file"] = statevector_file
            if statevector_file is None:
                metadata["statevector_note"] = (
                    "not written: the circuit has mid-circuit measurements, resets or "
                    "conditionals, so its final state differs from shot to shot"
                )
        return ExperimentOutput(counts=counts, memory=memory, data=self.data, metadata=metadata)

    def _reset_state(self) -> None:
        self.state[:] = 0
        if self.rank == 0:
            self.state[0] = 1

    # -- steps -------------------------------------------------------------
    def _rank_value(self, rank_bits: Sequence[int]) -> int:
        return sum(((self.rank >> b) & 1) << i for i, b in enumerate(rank_bits))

    def _execute(self, steps, traj: Any) -> None:
        """Run straight-line steps. Control flow, mid-circuit measurement and
        reset reach the engine only through shot branching (``_run_group``),
        which hands this method one plain step at a time."""
        state = self.state
        for step in steps:
            if isinstance(step, LocalGate):
                kernels.apply_matrix(state, step.matrix, step.positions)
            elif isinstance(step, LocalDiagonal):
                kernels.apply_diagonal(state, step.diag, step.positions)
            elif isinstance(step, RankGate):
                matrix = step.matrices[self._rank_value(step.rank_bits)]
                if matrix is not None:
                    kernels.apply_matrix(state, matrix, step.positions)
            elif isinstance(step, RankDiagonal):
                kernels.apply_diagonal(state, step.diags[self._rank_value(step.rank_bits)], step.positions)
            elif isinstance(step, PhaseStep):
                kernels.scale(state, complex(np.exp(1j * step.phase)))
            elif isinstance(step, ExchangeStep):
                self.collective.agree()
                self.exchange.swap(state, step.pairs)
            elif isinstance(step, MeasureStep):
                pass  # a final measurement: all shots are sampled afterwards in one pass
            elif isinstance(step, SaveStep):
                self._save(step, traj)
            else:
                raise InternalError(f"unknown plan step {step!r}")
            self.steps_done += 1
            self.steps_since_checkpoint += 1
            if self.steps_since_checkpoint >= self.checkpoint_every:
                self._checkpoint()

    def _stage(self, name: str) -> None:
        if self.rank == 0 and self.control.stage is not None:
            self.control.stage(name)

    # -- dynamic programs: shot branching --------------------------------------
    def _run_branching(self, steps: Sequence[Any], values: np.ndarray) -> None:
        """Run every shot of a dynamic program, shots sharing one state until a measurement splits them.

        Shot ``s`` draws its random numbers from its own stream (seeded by
        ``(seed, s)``), so its outcomes do not depend on which shots it
        travels with, on the number of ranks, or on memory: when no copy of
        the shard can be afforded at a split, one side restarts from the
        beginning later, and replays the same draws. Every decision here is
        the same on every rank (probabilities are agreed collectively).
        """
        copies = self.collective.allgather(self.copies_allowed)
        self.copies_left = min(copies)
        # batches bound the per-shot random streams held at once
        shots = np.arange(self.config.shots, dtype=np.int64)
        pending = [(shots[i : i + SHOT_BATCH], 0) for i in range(0, len(shots), SHOT_BATCH)]
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old_limit, 20 * MAX_LOOP_ITERATIONS + 10_000))
        try:
            while pending:
                shots, skip_saves = pending.pop(0)
                group = _ShotGroup(
                    shots,
                    [np.random.default_rng([self.config.seed, int(s)]) for s in shots],
                    np.zeros(max(self.program.num_clbits, 0), dtype=np.uint8),
                    skip_saves,
                )
                self._reset_state()

                def finish(group: "_ShotGroup") -> None:
                    values[group.shots] = group.value()

                self._run_group(tuple(steps), group, finish, pending)
        finally:
            sys.setrecursionlimit(old_limit)

    def _run_group(self, steps: Sequence[Any], group: "_ShotGroup", then: Any, pending: list) -> None:
        """Run ``steps`` for the shots of ``group`` (all in one classical state), then ``then(group)``."""
        for i, step in enumerate(steps):
            if isinstance(step, (MeasureStep, ResetStep)):
                rest = steps[i + 1 :]
                self._split(step, group, lambda g: self._run_group(rest, g, then, pending), pending)
                return
            if isinstance(step, IfElseStep):
                rest = steps[i + 1 :]
                branch = step.true_steps if ir.condition_holds(step.condition, group.clbits) else step.false_steps
                self._run_group(branch, group, lambda g: self._run_group(rest, g, then, pending), pending)
                return
            if isinstance(step, SwitchStep):
                rest = steps[i + 1 :]
                value = ir.evaluate(step.target, group.clbits)
                body: tuple = ()
                for values, case in step.cases:
                    if values is None or value in values:
                        body = case
                        break
                self._run_group(body, group, lambda g: self._run_group(rest, g, then, pending), pending)
                return
            if isinstance(step, WhileStep):
                rest = steps[i + 1 :]

                def loop(g: "_ShotGroup", passes: int = 0) -> None:
                    if not ir.condition_holds(step.condition, g.clbits):
                        self._run_group(rest, g, then, pending)
                        return
                    if passes >= MAX_LOOP_ITERATIONS:
                        raise InvalidInputError(
                            f"a while loop ran {MAX_LOOP_ITERATIONS} passes in one shot: "
                            f"make sure its condition can become false"
                        )
                    self._run_group(step.body, g, lambda g2: loop(g2, passes + 1), pending)

                loop(group)
                return
            if isinstance(step, SaveStep):
                group.saves_seen += 1
                if group.saves_seen > group.skip_saves:
                    self._save(step, group)
            else:
                self._execute((step,), None)
        then(group)

    def _split(self, step: Any, group: "_ShotGroup", rest: Any, pending: list) -> None:
        """Measure (or reset) for every shot of ``group``; each outcome's shots go on in their own state."""
        p_one, total = self._probability_of_one(step.position)
        draws = np.array([rng.random() for rng in group.rngs])
        ones = draws < p_one
        sides = [(outcome, group.take(mask)) for outcome, mask in ((0, ~ones), (1, ones)) if mask.any()]
        saved = None
        if len(sides) == 2:
            if self.copies_left > 0:
                self.copies_left -= 1
                saved = self.state.copy()
            else:
                # replayed from the start later; the saves met so far are recorded already
                pending.append((sides[1][1].shots, sides[1][1].saves_seen))
                sides = sides[:1]
        try:
            for k, (outcome, sub) in enumerate(sides):
                if k:
                    self.state[:] = saved
                    saved = None
                    self.copies_left += 1
                self._collapse(step.position, outcome, p_one, total)
                if isinstance(step, MeasureStep):
                    sub.clbits[step.clbit] = outcome
                elif outcome:
                    kernels.flip(self.state, step.position)
                rest(sub)
        finally:
            if saved is not None:
                self.copies_left += 1

    def _checkpoint(self) -> None:
        """Collective: rank 0 says whether to stop, and reports progress."""
        self.steps_since_checkpoint = 0
        cancel = False
        if self.rank == 0:
            cancel = bool(self.control.cancel_requested())
            if self.control.progress is not None:
                self.control.progress(self.steps_done, self.total_steps)
        if self.collective.allgather(cancel)[0]:
            raise JobCancelledError("the job was cancelled")

    def _bit_of_rank(self, position: int) -> int:
        return (self.rank >> (position - self.num_local)) & 1

    def _probability_of_one(self, position: int) -> tuple[float, float]:
        """Probability that the qubit at ``position`` reads 1, and the squared norm (collective)."""
        state = self.state
        if position < self.num_local:
            one = kernels.probability_of_one(state, position)
            norm = kernels.norm_squared(state)
        else:
            norm = kernels.norm_squared(state)
            one = norm if self._bit_of_rank(position) else 0.0
        parts = self.collective.allgather((one, norm))
        total_one = sum(p[0] for p in parts)
        total = sum(p[1] for p in parts)
        return min(1.0, max(0.0, total_one / total)), total

    def _collapse(self, position: int, outcome: int, p_one: float, total: float) -> None:
        state = self.state
        kept = p_one if outcome else 1.0 - p_one
        factor = 1.0 / math.sqrt(kept * total)
        if position < self.num_local:
            kernels.collapse(state, position, outcome, factor)
        elif self._bit_of_rank(position) == outcome:
            kernels.scale(state, factor)
        else:
            state[:] = 0

    # -- saves -------------------------------------------------------------
    def _save(self, step: SaveStep, traj: Any) -> None:
        """Compute a saved value (collective) and record it under its label."""
        kind = step.kind
        if kind == "statevector":
            value = self._gather_statevector(step.layout)
        elif kind == "statevector_dict":
            value = self._statevector_dict(step.layout)
        elif kind in ("probabilities", "probabilities_dict"):
            value = self._probabilities(step.qubits, step.layout)
        elif kind in ("amplitudes", "amplitudes_sq"):
            value = self._amplitudes(step.qubits, step.layout, step.params)
            if kind == "amplitudes_sq":
                value = value.real ** 2 + value.imag ** 2
        elif kind in ("expectation_value", "expectation_value_variance"):
            paulis = self._pauli_expectations(step.qubits, step.layout, [t[0] for t in step.params])
            mean = float(sum(t[1] * p for t, p in zip(step.params, paulis)))
            if kind == "expectation_value":
                value = mean
            else:
                square = float(sum(t[2] * p for t, p in zip(step.params, paulis)))
                value = np.array([mean, square - mean * mean])
        else:
            raise InternalError(f"save kind {kind!r} reached the engine unsupported")
        record = self.saves.get(step.label)
        if record is None:
            finish = _probabilities_dict if kind == "probabilities_dict" else None
            record = self.saves[step.label] = _SaveRecord(step.subtype, finish, kind)
        elif record.subtype != step.subtype or record.kind != kind:
            raise InvalidInputError(
                f"two saves share the label {step.label!r} with different kinds; give each save its own label"
            )
        shots = traj.shots if isinstance(traj, _ShotGroup) else np.zeros(1, dtype=np.int64)
        record.add(value, hex(traj.value()), shots)

    def _logical_indices(self, local_indices: np.ndarray, layout: Sequence[int]) -> np.ndarray:
        """Logical basis index of local entries of this shard in the given layout."""
        physical = np.asarray(local_indices, dtype=np.int64) | np.int64(self.rank << self.num_local)
        logical = np.zeros_like(physical)
        for q, p in enumerate(layout):
            logical |= ((physical >> p) & 1) << q
        return logical

    def _statevector_dict(self, layout: Sequence[int]) -> Optional[dict]:
        """Non-zero amplitudes, gathered sparsely to rank 0 (collective)."""
        self.collective.agree()
        local, values = kernels.nonzero_entries(self.state, CHOP_THRESHOLD)
        parts = self.collective.gather_to_root((self._logical_indices(local, layout), values))
        if parts is None:
            return None
        indices = np.concatenate([p[0] for p in parts])
        amplitudes = np.concatenate([p[1] for p in parts])
        order = np.argsort(indices, kind="stable")
        return {hex(int(indices[i])): complex(amplitudes[i]) for i in order}

    def _reduce(self, array: np.ndarray) -> Optional[np.ndarray]:
        """Sum of one array per rank, added in rank order; on rank 0 only when large."""
        if array.size <= SMALL_ARRAY:
            parts = self.collective.allgather(array)
        else:
            self.collective.agree()
            parts = self.collective.gather_to_root(array)
            if parts is None:
                return None
        total = np.zeros_like(parts[0])
        for part in parts:
            total += part
        return total

    def _probabilities(self, qubits: Sequence[int], layout: Sequence[int]) -> Optional[np.ndarray]:
        """Marginal probabilities of ``qubits`` (``qubits[0]`` lowest), reduced across ranks."""
        k = len(qubits)
        local_js = [j for j, q in enumerate(qubits) if layout[q] < self.num_local]
        fixed = 0
        for j, q in enumerate(qubits):
            if layout[q] >= self.num_local:
                fixed |= self._bit_of_rank(layout[q]) << j
        marginal = kernels.marginal_probabilities(self.state, [layout[qubits[j]] for j in local_js])
        t = np.arange(1 << len(local_js), dtype=np.int64)
        index = np.full_like(t, fixed)
        for i, j in enumerate(local_js):
            index |= ((t >> i) & 1) << j
        full = np.zeros(1 << k, dtype=np.float64)
        full[index] = marginal
        return self._reduce(full)

    def _amplitudes(self, qubits: Sequence[int], layout: Sequence[int], states: Sequence[int]) -> np.ndarray:
        """Amplitudes of basis states of ``qubits`` (the other qubits 0), on every rank."""
        states = np.asarray(states, dtype=np.int64)
        physical = np.zeros_like(states)
        for j, q in enumerate(qubits):
            physical |= ((states >> j) & 1) << layout[q]
        mine = (physical >> self.num_local) == self.rank
        values = np.zeros(len(states), dtype=np.complex128)
        local_mask = (1 << self.num_local) - 1
        values[mine] = self.state[physical[mine] & local_mask]
        parts = self.collective.allgather(values)
        total = np.zeros(len(states), dtype=np.complex128)
        for part in parts:
            total += part
        return total

    def _pauli_expectations(self, qubits: Sequence[int], layout: Sequence[int], labels: Sequence[str]) -> list[float]:
        """<P> for each Pauli label on ``qubits`` (label[-1 - j] acts on qubits[j]), never gathering the state.

        Terms sharing an X-mask share one product per amplitude; X-masks
        sharing their rank bits share one stream of the partner shard. Z-type
        terms read the shard alone, X/Y terms on rank bits pair this shard with
        the partner rank's, streamed block by block.
        """
        num_local = self.num_local
        local_mask = (1 << num_local) - 1
        groups: dict[int, list[int]] = {}
        masks = []
        for t, label in enumerate(labels):
            x = z = ny = 0
            for j, q in enumerate(qubits):
                c = label[len(label) - 1 - j]
                bit = 1 << layout[q]
                if c in "XY":
                    x |= bit
                if c in "ZY":
                    z |= bit
                ny += c == "Y"
            masks.append((x, z, ny))
            groups.setdefault(x, []).append(t)
        partial = np.zeros(len(labels), dtype=np.complex128)
        self.collective.agree()
        size = self.state.shape[0]
        itemsize = self.state.dtype.itemsize
        block = kernels.block_size(size, max(1, self.config.buffer_bytes // itemsize))
        # One stream of the partner's shard serves every X-mask with the same
        # rank bits and the same local bits above the block.
        streams: dict[tuple[int, int], dict[int, list[int]]] = {}
        for x, terms in groups.items():
            x_local, x_rank = x & local_mask, x >> num_local
            key = (x_rank, x_local & ~(block - 1))
            streams.setdefault(key, {})[x_local & (block - 1)] = terms
        for (x_rank, x_high), by_low in sorted(streams.items()):
            sums = {x_low: np.zeros(len(terms), dtype=np.complex128) for x_low, terms in by_low.items()}
            z_local = {x_low: [masks[t][1] & local_mask for t in terms] for x_low, terms in by_low.items()}
            for offset, other in stream_partner_blocks(
                self.collective.comm, self.state, self.rank ^ x_rank, block, x_high, self.exchange.stats
            ):
                mine = self.state[offset : offset + block]
                for x_low in by_low:
                    sums[x_low] += kernels.pauli_block_sums(mine, other, offset, x_low, z_local[x_low])
            for x_low, terms in by_low.items():
                for k, t in enumerate(terms):
                    _, z, ny = masks[t]
                    sign = -1 if bin(self.rank & (z >> num_local)).count("1") & 1 else 1
                    partial[t] = sums[x_low][k] * sign * (1j ** ny)
        parts = self.collective.allgather(partial)
        total = np.zeros(len(labels), dtype=np.complex128)
        for part in parts:
            total += part
        return [float(v.real) for v in total]

    def _gather_statevector(self, layout: Sequence[int]) -> Optional[np.ndarray]:
        """The full state in Qiskit's order, on rank 0 only (collective)."""
        self.collective.agree()
        n = self.program.num_qubits
        num_local = self.num_local
        size = self.collective.size
        if self.rank != 0:
            self.collective.comm.Send(self.state, dest=0, tag=77)
            return None
        out = np.empty(1 << n, dtype=self.dtype)
        logical_of = [0] * n
        for q, p in enumerate(layout):
            logical_of[p] = q
        tensor = out.reshape((2,) * n) if n else out
        # axis a of the physical view is position n-1-a, i.e. logical logical_of[n-1-a]
        physical = tensor.transpose([n - 1 - logical_of[n - 1 - a] for a in range(n)]) if n else tensor
        scratch = np.empty_like(self.state) if size > 1 else None
        for r in range(size):
            shard = self.state
            if r:
                self.collective.comm.Recv(scratch, source=r, tag=77)
                shard = scratch
            bits = tuple((r >> b) & 1 for b in reversed(range(n - num_local)))
            physical[bits + (Ellipsis,)] = shard.reshape((2,) * num_local)
        return out

    # -- logical order: sampling and output --------------------------------------
    def _make_top_global(self, layout: Sequence[int]) -> tuple[tuple[int, ...], int]:
        """Make the top logical qubits the global ones (collective, exchanges if needed).

        Returns the layout after and this rank's value of those qubits: the
        shards in order of that value, each read with ``logical_order_chunks``,
        are the state in Qiskit's order.
        """
        n = self.program.num_qubits
        g = n - self.num_local
        top = list(range(n - g, n))
        pairs, layout = swaps_to_make_global(layout, self.num_local, top)
        if pairs:
            self.collective.agree()
            before = self.exchange.stats.bytes_sent
            self.exchange.swap(self.state, pairs)
            # reported apart from the plan's exchanges: it is the price of reading in logical order
            self.sampling_bytes += self.exchange.stats.bytes_sent - before
        high = 0
        for k, q in enumerate(top):
            high |= self._bit_of_rank(layout[q]) << k
        return layout, high

    def _write_statevector(self, layout: Sequence[int], path: str) -> tuple[int, ...]:
        """Write the state as ``path`` (.npy, Qiskit's order) from every rank; never gathered."""
        self._stage("writing statevector")
        layout, high = self._make_top_global(layout)
        local_positions = [layout[q] for q in range(self.num_local)]
        write_npy_collective(
            self.collective,
            path,
            self.dtype,
            1 << self.program.num_qubits,
            high << self.num_local,
            kernels.logical_order_chunks(self.state, local_positions),
        )
        return layout

    def _sample(self, layout: Sequence[int], shots: int) -> np.ndarray:
        """Outcome (logical basis index) of each shot, on every rank (collective).

        Rank order and local order are made logical first (top logical qubits
        global), so that the same seed gives the same outcomes whatever the
        number of ranks.
        """
        n = self.program.num_qubits
        g = n - self.num_local
        layout, high = self._make_top_global(layout)
        mass = kernels.norm_squared(self.state)
        gathered = self.collective.allgather((high, mass))
        order = sorted(range(len(gathered)), key=lambda r: gathered[r][0])
        total = 0.0
        offset = 0.0
        for r in order:
            if r == self.rank:
                offset = total
            total += gathered[r][1]
        uniforms = self.rng.random(shots) * total
        last_rank = order[-1] == self.rank
        upper = math.inf if last_rank else offset + mass
        mine = np.nonzero((uniforms >= offset) & (uniforms < upper))[0]
        mine = mine[np.argsort(uniforms[mine], kind="stable")]
        targets = uniforms[mine] - offset
        local_positions = [layout[q] for q in range(n - g)]  # logical significance order
        found = np.empty(len(mine), dtype=np.int64)
        running = 0.0
        base = 0
        cursor = 0
        last_nonzero = -1
        for chunk in kernels.logical_order_chunks(self.state, local_positions):
            if cursor >= len(targets) and last_nonzero >= 0:
                break
            probs = chunk.real.astype(np.float64) ** 2 + chunk.imag.astype(np.float64) ** 2
            cumulative = np.cumsum(probs) + running
            nonzero = np.nonzero(probs)[0]
            if len(nonzero):
                last_nonzero = base + int(nonzero[-1])
            end = cursor + int(np.searchsorted(targets[cursor:], cumulative[-1], side="left"))
            if end > cursor:
                idx = np.searchsorted(cumulative, targets[cursor:end], side="right")
                found[cursor:end] = base + np.minimum(idx, len(chunk) - 1)
                cursor = end
            running = float(cumulative[-1])
            base += len(chunk)
        # rounding can leave a few targets past the end: they take the last non-zero entry
        if cursor < len(targets):
            found[cursor:] = max(last_nonzero, 0)
        found |= high << (n - g)
        parts = self.collective.allgather((mine, found))
        outcomes = np.zeros(shots, dtype=np.int64)
        for shot_ids, values in parts:
            outcomes[shot_ids] = values
        return outcomes


class _ShotGroup:
    """Shots that share one state and one classical memory (``clbits``)."""

    def __init__(self, shots: np.ndarray, rngs: list, clbits: np.ndarray, skip_saves: int = 0):
        self.shots = shots
        self.rngs = rngs
        self.clbits = clbits
        #: Saves met so far, and how many of the first ones were already recorded (a replay).
        self.saves_seen = 0
        self.skip_saves = skip_saves

    def take(self, mask: np.ndarray) -> "_ShotGroup":
        rngs = [rng for rng, keep in zip(self.rngs, mask) if keep]
        sub = _ShotGroup(self.shots[mask], rngs, self.clbits.copy(), self.skip_saves)
        sub.saves_seen = self.saves_seen
        return sub

    def value(self) -> int:
        return clbits_value(self.clbits)


class _SaveRecord:
    """Values saved under one label, combined as Aer's subtype says.

    ``single``: the last shot's value; ``list``: one per shot, in shot
    order; ``average``: the mean over the shots that reached the save (as
    Aer: a save in a branch averages over the shots that took it);
    ``accum``: the sum; ``c_*``: the same per classical memory value (hex)
    at the save.
    """

    def __init__(self, subtype: str, finish: Optional[Any] = None, kind: str = ""):
        self.subtype = subtype
        self.kind = kind
        self.conditional = subtype.startswith("c_")
        self.base = subtype[2:] if self.conditional else subtype
        self.finish = finish or (lambda value: value)
        self.values: dict[Optional[str], Any] = {}
        self.counts: dict[Optional[str], int] = {}

    def add(self, value: Any, memory: str, shots: np.ndarray) -> None:
        """Record the value that the ``shots`` saw (None: held by rank 0 only, so nothing here)."""
        if value is None:
            return
        key = memory if self.conditional else None
        self.counts[key] = self.counts.get(key, 0) + len(shots)
        if self.base == "single":  # the value of the last shot
            last = int(shots.max())
            if key not in self.values or self.values[key][0] < last:
                self.values[key] = (last, value)
        elif self.base == "list":
            self.values.setdefault(key, []).extend((int(s), value) for s in shots)
        else:
            weighted = value * len(shots) if len(shots) > 1 else value
            if key in self.values:
                self.values[key] = self.values[key] + weighted
            else:
                self.values[key] = weighted.copy() if isinstance(weighted, np.ndarray) else weighted

    def result(self) -> Any:
        if not self.values:
            return None
        out = {}
        for key, value in self.values.items():
            if self.base == "average":
                value = value / self.counts[key]
            if self.base == "single":
                value = value[1]
            if self.base == "list":
                out[key] = [self.finish(v) for _, v in sorted(value, key=lambda item: item[0])]
            else:
                out[key] = self.finish(value)
        return out if self.conditional else out[None]


def _probabilities_dict(probabilities: np.ndarray) -> dict[str, float]:
    return {hex(int(i)): float(probabilities[i]) for i in np.nonzero(probabilities > CHOP_THRESHOLD)[0]}


def _clbit_values(outcomes: np.ndarray, measures: Sequence[tuple[int, int]]) -> np.ndarray:
    values = np.zeros(len(outcomes), dtype=np.int64)
    for qubit, clbit in measures:
        bit = (outcomes >> qubit) & 1
        values = (values & ~np.int64(1 << clbit)) | (bit << clbit)
    return values


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {hex(int(k)): int(c) for k, c in zip(keys, counts)}


def _is_large(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.size > 4096
    if isinstance(value, (dict, list)):
        return len(value) > 4096 or any(_is_large(v) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _small_part(output: Optional[ExperimentOutput]) -> ExperimentOutput:
    """The output without large values (states, big arrays or dicts), to broadcast from rank 0."""
    if output is None:
        raise InternalError("rank 0 finished without an output")
    small = {k: v for k, v in output.data.items() if not _is_large(v)}
    return ExperimentOutput(output.counts, output.memory, small, dict(output.metadata))
