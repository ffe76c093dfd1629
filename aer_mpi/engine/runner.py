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
import time
from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import ir, kernels
from aer_mpi.comm import BitSwapExchange, Collective, ranks_on_this_node
from aer_mpi.engine.config import PRECISIONS, ExperimentOutput, RunConfig, RunControl
from aer_mpi.errors import InsufficientMemoryError, InternalError, JobCancelledError
from aer_mpi.plan import (
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
    choose_rank_bits,
    plan_program,
    swaps_to_make_global,
)
from aer_mpi.plan.fusion import FusionOptions, fuse
from aer_mpi.plan.localiser import flipped_qubits, naive_exchange_count

#: Scratch a rank holds besides its shard and exchange buffer (kernel chunks, bookkeeping).
SCRATCH_BYTES = 8 << 20


def widest_local_need(ops: Sequence[ir.Op]) -> int:
    """Most qubits one op needs local at once (its flipped qubits)."""
    widest = 1
    for op in ops:
        if isinstance(op, ir.IfElse):
            widest = max(widest, widest_local_need(op.true_ops), widest_local_need(op.false_ops))
        elif isinstance(op, ir.Swap):
            widest = max(widest, 2)
        else:
            widest = max(widest, len(flipped_qubits(op)))
    return widest


def has_statevector_save(ops: Sequence[ir.Op]) -> bool:
    for op in ops:
        if isinstance(op, ir.Save) and op.kind in ("statevector", "statevector_dict"):
            return True
        if isinstance(op, ir.IfElse) and (
            has_statevector_save(op.true_ops) or has_statevector_save(op.false_ops)
        ):
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


class _Trajectory:
    """Classical state of one shot."""

    def __init__(self, num_clbits: int):
        self.clbits = np.zeros(max(num_clbits, 0), dtype=np.uint8)

    def value(self) -> int:
        out = 0
        for i, bit in enumerate(self.clbits):
            out |= int(bit) << i
        return out


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
        program, config = self.program, self.config
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
        if not dynamic:
            self.total_steps = max(1, len(plan.steps))
            self._reset_state()
            traj = _Trajectory(program.num_clbits)
            self._execute(plan.steps, traj, final_measures=True)
            measures = ir.final_measurements(program)
            if measures:
                outcomes = self._sample(plan.final_layout, config.shots)
                values = _clbit_values(outcomes, measures)
        else:
            self.total_steps = max(1, len(plan.steps) * config.shots)
            values = np.zeros(config.shots, dtype=np.int64)
            for shot in range(config.shots):
                self._reset_state()
                traj = _Trajectory(program.num_clbits)
                self._execute(plan.steps, traj, final_measures=False)
                values[shot] = traj.value()
        self.collective.agree()  # the last collective: a late local error meets it here
        elapsed = time.perf_counter() - compute_start

        stats = (self.exchange.stats.exchanges, self.exchange.stats.bytes_sent,
                 self.exchange.stats.seconds + self.collective.seconds, self.sampling_bytes)
        all_stats = self.collective.allgather(stats)
        comm_seconds = max(s[2] for s in all_stats)
        counts = memory = None
        if values is not None and program.num_clbits > 0 or values is not None:
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
        return ExperimentOutput(counts=counts, memory=memory, data=self.data, metadata=metadata)

    def _reset_state(self) -> None:
        self.state[:] = 0
        if self.rank == 0:
            self.state[0] = 1

    # -- steps -------------------------------------------------------------
    def _rank_value(self, rank_bits: Sequence[int]) -> int:
        return sum(((self.rank >> b) & 1) << i for i, b in enumerate(rank_bits))

    def _execute(self, steps, traj: _Trajectory, final_measures: bool) -> None:
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
                if not final_measures:
                    traj.clbits[step.clbit] = self._measure(step.position)
            elif isinstance(step, ResetStep):
                if self._measure(step.position):
                    kernels.flip(state, step.position)
            elif isinstance(step, SaveStep):
                self._save(step)
            elif isinstance(step, IfElseStep):
                bits = step.condition.clbits
                value = sum(int(traj.clbits[c]) << i for i, c in enumerate(bits))
                branch = step.true_steps if value == step.condition.value else step.false_steps
                self._execute(branch, traj, final_measures)
            else:
                raise InternalError(f"unknown plan step {step!r}")
            self.steps_done += 1
            self.steps_since_checkpoint += 1
            if self.steps_since_checkpoint >= self.config.checkpoint_every:
                self._checkpoint()

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

    def _measure(self, position: int) -> int:
        """Measure the qubit at ``position``, collapse, and return the outcome (collective)."""
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
        p_one = min(1.0, max(0.0, total_one / total))
        outcome = 1 if self.rng.random() < p_one else 0
        kept = p_one if outcome else 1.0 - p_one
        factor = 1.0 / math.sqrt(kept * total)
        if position < self.num_local:
            kernels.collapse(state, position, outcome, factor)
        elif self._bit_of_rank(position) == outcome:
            kernels.scale(state, factor)
        else:
            state[:] = 0
        return outcome

    # -- saves -------------------------------------------------------------
    def _save(self, step: SaveStep) -> None:
        if step.kind == "statevector":
            vector = self._gather_statevector(step.layout)
            if self.rank == 0:
                self.data[step.label] = vector
        else:
            raise InternalError(f"save kind {step.kind!r} reached the engine unsupported")

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

    # -- sampling -------------------------------------------------------------
    def _sample(self, layout: Sequence[int], shots: int) -> np.ndarray:
        """Outcome (logical basis index) of each shot, on every rank (collective).

        Rank order and local order are made logical first (top logical qubits
        global), so that the same seed gives the same outcomes whatever the
        number of ranks.
        """
        n = self.program.num_qubits
        g = n - self.num_local
        top = list(range(n - g, n))
        pairs, layout = swaps_to_make_global(layout, self.num_local, top)
        if pairs:
            self.collective.agree()
            before = self.exchange.stats.bytes_sent
            self.exchange.swap(self.state, pairs)
            self.sampling_bytes = self.exchange.stats.bytes_sent - before
        # this rank's value of the top logical qubits
        high = 0
        for k, q in enumerate(top):
            high |= self._bit_of_rank(layout[q]) << k
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


def _clbit_values(outcomes: np.ndarray, measures: Sequence[tuple[int, int]]) -> np.ndarray:
    values = np.zeros(len(outcomes), dtype=np.int64)
    for qubit, clbit in measures:
        bit = (outcomes >> qubit) & 1
        values = (values & ~np.int64(1 << clbit)) | (bit << clbit)
    return values


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {hex(int(k)): int(c) for k, c in zip(keys, counts)}


def _small_part(output: Optional[ExperimentOutput]) -> ExperimentOutput:
    """The output without large arrays, to broadcast from rank 0."""
    if output is None:
        raise InternalError("rank 0 finished without an output")
    small = {k: v for k, v in output.data.items() if not (isinstance(v, np.ndarray) and v.size > 4096)}
    return ExperimentOutput(output.counts, output.memory, small, dict(output.metadata))
