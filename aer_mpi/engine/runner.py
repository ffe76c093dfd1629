"""Run one program on every rank of a communicator: orchestration only.

The world communicator may have any size. The first ``2**g`` ranks work
(each holds one shard); the rest idle and receive the results at the end.
An idle rank's stop request (its job's cancel, a signal) still stops the
run: it sends rank 0 a notice (``comm.StopNotices``), which rank 0's
``cancel_requested`` hears at its next meeting.
Every collective here goes through ``Collective`` (errors agreed on), and a
rank that raises locally joins the next collective with its error, so every
rank leaves with the same exception and none is left waiting.

The stages, each in its own module: resources (memory check, kernels,
branch copies), the plan, the ``Shard``, then either the interpreter
(straight-line programs, final measurements sampled once) or shot
branching (dynamic programs), the saves, the metadata, and rank 0's
outcome broadcast to every rank.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import ir, kernels
from aer_mpi.comm import BitSwapExchange, Collective, StopNotices
from aer_mpi.comm.watchdog import bounded
from aer_mpi.engine.branching import Branching
from aer_mpi.engine.checkpoint import CheckpointError, PlanIndex, load_state
from aer_mpi.engine.density import (MAX_AUTOMATIC_QUBITS, density_program, diagonal_indices, has_quantum_errors,
                                    sample_diagonal)
from aer_mpi.engine.density import save_value as density_save_value
from aer_mpi.engine.config import PRECISIONS, ExperimentOutput, RunConfig, RunControl
from aer_mpi.engine.interpreter import Interpreter, meeting_interval
from aer_mpi.engine.interrupts import request_stop, stop_requested
from aer_mpi.engine.noise import aer_noise_label, apply_readout, defer_readout, has_noise
from aer_mpi.engine.operators import OPERATOR_KINDS, operator_of, operator_program, register_qubits
from aer_mpi.engine.output import counts_of, memory_of, small_part
from aer_mpi.engine import resources
from aer_mpi.engine.resources import check_memory, configure_kernels, memory_available, memory_needed
from aer_mpi.engine.sampling import clbit_values, sample_outcomes, write_statevector
from aer_mpi.engine.saves import STATIC_SHOTS, Saves, pauli_sum_value
from aer_mpi.engine.shard import Shard
from aer_mpi.engine.stabilizer import is_stabilizer_circuit, measures_anything, saved_values, shot_blocks
from aer_mpi.engine.tableau import is_tableau_save, register_values
from aer_mpi.engine.mps import MAX_DENSITY_QUBITS, MAX_SAVE_QUBITS, MatrixProductState, is_mps_circuit
from aer_mpi.errors import InsufficientMemoryError, InternalError, InvalidInputError, JobCancelledError
from aer_mpi.plan import (LocalSwapStep, StageStep, choose_rank_bits, complex_products_per_amplitude, place_in_cache,
                          plan_program, stage_steps)
from aer_mpi.plan.fusion import MAX_DIAGONAL_QUBITS as FUSION_MAX_DIAGONAL_QUBITS
from aer_mpi.plan.fusion import MAX_QUBITS as FUSION_MAX_QUBITS
from aer_mpi.plan.fusion import TYPICAL_CHUNK_QUBITS, FusionOptions, fuse
from aer_mpi.plan.localiser import flipped_qubits, naive_exchange_count

#: Shots a static program's saves are recorded for (one state, no classical memory yet).


def _has_save(ops) -> bool:
    """Whether any op (in control flow too) saves data: the same answer on every rank."""
    return any(isinstance(op, ir.Save) or (isinstance(op, ir.CONTROL_FLOW) and any(_has_save(b) for b in ir.blocks(op)))
               for op in ops)


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


def fusion_options(config: RunConfig, num_qubits: int) -> FusionOptions:
    """Fusion for a program of ``num_qubits``, by the options alone: the same at any rank count,
    on any machine, with or without checkpoints (a resumed job must fuse as its first part did).
    Its costs follow the cache_blocking option: gates in stages cost their arithmetic, and a
    program wider than the stage chunk (``cache_qubits``, else a typical one) pays per op for
    the cache tier."""
    chunk = config.cache_qubits if config.cache_qubits is not None else TYPICAL_CHUNK_QUBITS
    # any width is accepted (as Aer); the fused gates stay within what the kernels take
    widest = min(max(config.fusion_max_qubit, 1), FUSION_MAX_QUBITS)
    return FusionOptions(
        enabled=config.fusion_enable,
        max_qubits=widest,
        max_diagonal_qubits=min(max(widest, config.fusion_max_diagonal_qubit), FUSION_MAX_DIAGONAL_QUBITS),
        threshold=config.fusion_threshold,
        staged=config.cache_blocking,
        wider_than_cache=config.cache_blocking and num_qubits > chunk,
    )


def agreed_cache_qubits(world: Collective, config: RunConfig) -> Optional[tuple[int, int]]:
    """Qubits of a stage's chunk, ``(smallest, largest)``, the same on every rank: the least of
    each that any rank chose (their caches may differ), or None (no cache tier) when any rank has
    it off. The cache plan renumbers positions, so ranks that chose differently would exchange
    the wrong amplitudes; ``resources.stage_chunk_qubits`` then picks one by the shard's size."""
    chosen = world.allgather(resources.cache_qubits(config))
    if any(c is None for c in chosen):
        return None
    return min(c[0] for c in chosen), min(c[1] for c in chosen)


def run_experiment(
    program: ir.Program,
    config: RunConfig,
    comm: Any,
    control: Optional[RunControl] = None,
) -> ExperimentOutput:
    """Run ``program`` collectively on ``comm``; every rank must call it."""
    control = control or RunControl()
    start = time.perf_counter()
    world = Collective(comm)
    rank = world.rank

    # the operator methods (unitary, superop), the tableau and the density matrix run their own
    # programs: chosen before any work for this one
    if config.method in OPERATOR_KINDS:
        return _run_operator(comm, program, config, control, start)
    if config.method == "stabilizer" and is_stabilizer_circuit(program):
        return _run_clifford(world, program, config, control, start, "method='stabilizer'")
    if (config.method == "automatic" and config.statevector_path is None
            and any(is_tableau_save(op) or (isinstance(op, ir.SetState) and op.kind == "stabilizer")
                    for op in program.ops) and is_stabilizer_circuit(program)):
        # as Aer's automatic method, which takes the stabilizer method for a Clifford circuit: its
        # save_state (save_stabilizer, save_clifford) is a stabilizer state
        return _run_clifford(world, program, config, control, start, "automatic method: a Clifford circuit "
                             "that saves its stabilizer state")
    if (config.method == "automatic" and has_noise(program) and config.statevector_path is None
            and control.checkpoints is None and is_stabilizer_circuit(program)):
        # as Aer's automatic method: Pauli frames sample a noisy Clifford circuit in a fraction of the
        # time of one trajectory per shot (a noiseless dynamic one shares its states across shots on
        # the statevector; a checkpointed job keeps the statevector: the frames keep no checkpoint)
        return _run_clifford(world, program, config, control, start,
                             "automatic method: a Clifford circuit with Pauli noise")
    if config.statevector_path is None and control.checkpoints is None and (
            config.method == "density_matrix" or (
                config.method == "automatic" and has_quantum_errors(program)
                and program.num_qubits <= MAX_AUTOMATIC_QUBITS and config.shots > 1 << program.num_qubits)):
        output = _run_density(world, comm, program, config, control, start)
        if output is not None:
            return output
    other_states = sorted(ir.set_state_kinds(program.ops) - {"statevector"})
    if other_states:  # (each rank alike: a set state whose method did not take the circuit)
        raise InvalidInputError(
            f"circuit {program.name!r}: set_{other_states[0]} sets a state the statevector cannot hold; its "
            f"method (method={other_states[0]!r}) did not take this circuit: it needs the state in memory, "
            f"every measurement final, and no checkpoints or statevector_dir")
    # Fused on the logical program, so independent of the rank count.
    fusion_start = time.perf_counter()
    fused, fusion_stats = fuse(program, fusion_options(config, program.num_qubits))
    chunk_choice = agreed_cache_qubits(world, config)
    # "enabled" is the option, as Aer reports it; "applied" says whether the circuit was fused
    fusion = dict(fusion_stats.as_dict(), seconds=time.perf_counter() - fusion_start, enabled=config.fusion_enable,
                  applied=config.fusion_enable and fused.num_qubits >= config.fusion_threshold)
    n = fused.num_qubits
    # one rank holds every qubit: no need to look at the ops (a fixed cost on small circuits)
    min_local = config.min_local_qubits if world.size == 1 else max(config.min_local_qubits,
                                                                     widest_local_need(fused.ops))
    g = choose_rank_bits(n, world.size, min_local)
    working = 1 << g
    chunk_qubits = resources.stage_chunk_qubits(chunk_choice, n - g)
    is_working = rank < working

    error: Optional[BaseException] = None
    copies = have = 0
    backend = ("", 0)
    node_ranks = resources.node_ranks(comm)
    too_wide_clifford = too_wide_chain = False
    try:
        backend = configure_kernels(config, node_ranks, n - g)
        have = memory_available(comm, config, node_ranks)
        copies = check_memory(fused, config, n - g, rank, working, have)
    except InsufficientMemoryError as exc:
        # as Aer's automatic method: a Clifford circuit needs no state vector
        too_wide_clifford = (getattr(exc, "state_does_not_fit", False) and config.method != "statevector"
                             and config.statevector_path is None and is_stabilizer_circuit(program))
        # as Aer's matrix_product_state method, for a circuit it takes here (engine/mps.py); Aer's
        # extended_stabilizer method (Clifford circuits with a few T gates) too: the chain is exact
        # where Aer's stabilizer sum is approximate, and such circuits keep its bonds small
        too_wide_chain = (not too_wide_clifford and getattr(exc, "state_does_not_fit", False)
                          and config.method in CHAIN_METHODS and config.statevector_path is None
                          and is_mps_circuit(program))
        if not (too_wide_clifford or too_wide_chain):
            error = exc
        else:
            try:  # the shots' outcomes must still fit
                resources.check_shots_memory(program, config, rank, have)
            except InsufficientMemoryError as shots_error:
                too_wide_clifford = too_wide_chain = False
                error = shots_error
    except Exception as exc:  # reported to every rank just below
        error = exc
    votes = world.allgather((too_wide_clifford, too_wide_chain), error)
    if any(clifford for clifford, _ in votes):
        return _run_clifford(world, program, config, control, start,
                             f"the state of {n} qubits does not fit in the ranks' memory and the circuit is Clifford")
    if any(chain for _, chain in votes):
        if not all(chain for _, chain in votes):  # (the memory check is agreed: never seen)
            raise InternalError("the ranks disagree on whether the state fits their memory")
        return _run_chain(world, program, config, control, start, have)
    if chain_asked(config, program) and config.statevector_path is None and is_mps_circuit(program):
        # the user asked for Aer's approximation (a bond limit or a truncation threshold) or for the
        # chain itself (save_matrix_product_state, save_state): the chain gives it, though the exact
        # statevector would fit (the same on every rank: config and program)
        return _run_chain(world, program, config, control, start, have)

    with bounded(comm, "the working ranks' communicator"):
        sub = comm.Split(color=0 if is_working else 1, key=rank)
    # idle ranks' stop requests reach rank 0's meetings (comm/stop_notices.py)
    notices = StopNotices(comm) if world.size != working else None
    output: Optional[ExperimentOutput] = None
    failure: Optional[BaseException] = None
    try:
        if is_working:
            output = _run_working(sub, fused, config, _hearing(control, notices, rank), g, copies, backend,
                                  chunk_qubits)
            output.metadata.update(
                # One meaning, one name: the exchanges of the naive scheme on the
                # program as written (unfused), fixed layout, one exchange per gate
                # on a global qubit (plan/localiser.py). The planner's own count (of
                # the fused program) is left out of metadata["plan"].
                naive_exchanges=naive_exchange_count(program, n - g),
                fusion=fusion,
                kernels=backend[0],
                native_kernels=kernels.native_status().startswith("on"),
                threads_per_rank=backend[1],
                # Aer's names: the memory rank 0's run needs and may use (MiB)
                required_memory_mb=-(-memory_needed(fused, config, n - g, rank, True) // (1 << 20)),
                max_memory_mb=have >> 20,
            )
    except Exception as exc:
        failure = exc
    finally:
        sub.Free()
    if notices is not None:  # every rank; an idle rank waits here, sending its stop request if any
        notices.finish(None if is_working else lambda: _stop_asked(control))

    # Rank 0 always works; it tells every rank the outcome.
    packet = (("error", failure) if failure is not None else ("ok", small_part(output))) if rank == 0 else None
    try:
        packet = world.bcast(packet)
    except Exception as exc:  # an unpicklable error: send its text instead
        raise InternalError(f"could not share the outcome of the run: {exc}") from exc
    if packet[0] == "error":
        if failure is not None:
            raise failure
        raise packet[1]
    if output is None or rank != 0:
        mine = output
        output = packet[1]
        if mine is not None:
            # keep what this rank has that rank 0 did not send (nothing large)
            for key, value in mine.data.items():
                output.data.setdefault(key, value)
            for key, kind in mine.save_kinds.items():
                output.save_kinds.setdefault(key, kind)
        output.save_kinds = {k: v for k, v in output.save_kinds.items() if k in output.data}
    output.metadata["ranks"] = world.size
    output.metadata["idle_ranks"] = world.size - working
    if world.size != working:
        # the working ranks are the largest power of two in the world, unless the local-qubit
        # minimum leaves fewer global qubits
        powered = g == world.size.bit_length() - 1
        why = "a power of two" if powered else f"{n} qubits keep at least {min(min_local, n)} local"
        output.metadata["note"] = f"{world.size} ranks: {working} work ({why}), {world.size - working} idle"
    output.metadata["time_taken"] = time.perf_counter() - start
    return output


def _run_clifford(world: Collective, program: ir.Program, config: RunConfig, control: RunControl, start: float,
                  why: str) -> ExperimentOutput:
    """A Clifford circuit (mid-circuit measurements, Pauli noise and Pauli feed-forward included), on a
    stabilizer tableau (engine/stabilizer.py): every rank computes the same shots alone, so the counts
    do not depend on the number of ranks. The ranks meet after each block of shots: a cancel or a
    signal on any rank stops every rank there, an error on one is raised by all."""
    sample_start = time.perf_counter()
    data: dict[str, Any] = {}
    kinds: dict[str, tuple[str, str]] = {}
    final = None  # the tableau the saves leave, which the final measurements sample
    if _has_save(program.ops):
        error = None
        try:
            data, kinds, final = saved_values(program)
        except Exception as exc:  # (two saves sharing a label) every rank raises it
            error = exc
        world.agree(error)
    parts = []
    if measures_anything(program) and config.shots > 0:
        blocks = shot_blocks(program, config.shots, config.seed, final)
        while True:
            error = block = None
            try:
                block = next(blocks, None)
            except Exception as exc:  # (memory for the shots, say) every rank raises it, none waits
                error = exc
            stop = stop_requested() is not None or (world.rank == 0 and bool(control.cancel_requested()))
            if world.rank == 0 and control.progress is not None and block is not None:
                control.progress(block[0], config.shots)
            if any(world.allgather(stop, error)):
                raise JobCancelledError("the job was cancelled")
            if block is None:
                break
            parts.append(block[1])
    values = np.concatenate(parts) if parts else None
    if values is None and program.num_clbits and config.shots and _has_save(program.ops):
        values = np.zeros(config.shots, dtype=np.int64)  # as the statevector's path (and Aer): shots read 0
    metadata = {
        "method": "stabilizer",
        "num_qubits": program.num_qubits,
        "shots": config.shots,
        "seed_simulator": config.seed,
        "dynamic": ir.is_dynamic(program),
        "ranks": world.size,
        "idle_ranks": 0,
        "sample_measure_time": time.perf_counter() - sample_start,
        "note": f"{why}: sampled from a stabilizer tableau (as Aer's 'stabilizer' method), "
                "the same shots computed alike on every rank",
    }
    output = ExperimentOutput(counts=counts_of(values) if values is not None else None,
                              memory=memory_of(values) if values is not None and config.memory else None,
                              data=data, metadata=metadata, save_kinds=kinds)
    output.metadata["time_taken"] = time.perf_counter() - start
    return output


#: Methods under which a circuit too wide for a statevector runs as a matrix product state.
CHAIN_METHODS = ("matrix_product_state", "extended_stabilizer")


def truncation_asked(config: RunConfig) -> bool:
    """Whether ``method="matrix_product_state"`` comes with a bond limit or a truncation threshold above
    Aer's default (1e-16): the run is to be approximate, as Aer's."""
    return config.method == "matrix_product_state" and (
        config.mps_max_bond_dimension is not None or config.mps_truncation_threshold > 1e-16)


def chain_asked(config: RunConfig, program: ir.Program) -> bool:
    """Whether the run asks for the chain under ``method="matrix_product_state"``: an approximation
    (``truncation_asked``), or the chain as a value (``save_matrix_product_state``, ``save_state``)."""
    if config.method != "matrix_product_state":
        return False
    return truncation_asked(config) or any(
        isinstance(op, ir.Save) and (op.kind == "matrix_product_state" or op.of_method) for op in program.ops)


def _run_chain(world: Collective, program: ir.Program, config: RunConfig, control: RunControl, start: float,
               memory_bytes: int) -> ExperimentOutput:
    """A circuit as a matrix product state (engine/mps.py): one too wide for a statevector under
    ``method="matrix_product_state"`` or ``"extended_stabilizer"``, or one whose run asks for the chain
    (``chain_asked``). Every rank computes the same chain and shots (so they do not
    depend on the number of ranks) and the ranks meet every ``meeting_every`` ops, where a cancel,
    a signal or an error on any rank (the chain outgrowing the memory, say) stops every rank."""
    # a quarter of the rank's memory: a split's SVD holds a few copies of its block besides the chain
    chain = MatrixProductState(program.num_qubits, config.mps_truncation_threshold, config.mps_max_bond_dimension,
                               memory_bytes // 4 or None)
    saves = Saves(None, config.zero_threshold)
    measures: list[tuple[int, int]] = []
    ops = program.ops
    every = max(1, config.meeting_every)
    for first in range(0, len(ops) + 1, every):
        error = None
        try:
            for op in ops[first:first + every]:
                if isinstance(op, ir.Measure):
                    measures.append((op.qubit, op.clbit))
                elif isinstance(op, ir.Save):
                    if op.of_method:  # save_state: the chain, under Aer's label "matrix_product_state"
                        op = ir.Save("matrix_product_state", op.qubits,
                                     "matrix_product_state" if op.label == "statevector" else op.label, op.subtype)
                    saves.record(op.label, op.subtype, op.kind, _chain_save_value(chain, op))
                else:
                    chain.apply(op)
        except Exception as exc:  # every rank raises it below, none waits
            error = exc
        stop = stop_requested() is not None or (world.rank == 0 and bool(control.cancel_requested()))
        if world.rank == 0 and control.progress is not None:
            control.progress(min(first + every, len(ops)), len(ops))
        if any(world.allgather(stop, error)):  # (raises any rank's error on every rank)
            raise JobCancelledError("the job was cancelled")
    sample_start = time.perf_counter()
    values = None
    if measures and config.shots > 0:
        bits = chain.sample(config.shots, np.random.default_rng(config.seed))
        final_qubit = dict((clbit, qubit) for qubit, clbit in measures)  # later measurements win
        width = max(final_qubit) + 1
        clbits = np.zeros((width, config.shots), dtype=np.uint8)
        for clbit, qubit in final_qubit.items():
            clbits[clbit] = bits[qubit]
        values = register_values(clbits, width)
    metadata = {
        "method": "matrix_product_state",
        "num_qubits": program.num_qubits,
        "shots": config.shots,
        "seed_simulator": config.seed,
        "dynamic": False,
        "ranks": world.size,
        "idle_ranks": 0,
        "max_bond_dimension": chain.widest_bond,
        "matrix_product_state_truncated_weight": chain.discarded,
        "sample_measure_time": time.perf_counter() - sample_start,
        "note": ("a bond limit or truncation threshold was asked for: a matrix product state "
                 if truncation_asked(config) else
                 "the matrix product state was saved: a matrix product state "
                 if chain_asked(config, program) else
                 f"the state of {program.num_qubits} qubits does not fit in the ranks' memory: a matrix product state ")
                + "(as Aer's 'matrix_product_state' method), the same chain and shots computed on every rank",
    }
    data, kinds = saves.results()
    output = ExperimentOutput(counts=counts_of(values) if values is not None else None,
                              memory=memory_of(values) if values is not None and config.memory else None,
                              data=data, metadata=metadata, save_kinds=kinds)
    output.metadata["time_taken"] = time.perf_counter() - start
    return output


def _chain_save_value(chain: MatrixProductState, op: ir.Save) -> Any:
    """The value of a save (``mps.MPS_SAVES``) of the chain, as the statevector's saves give it."""
    if op.kind in ("expectation_value", "expectation_value_variance"):
        return pauli_sum_value(op.kind, op.params, [chain.pauli_expectation(label, op.qubits)
                                                    for label, _, _ in op.params])
    if op.kind in ("probabilities", "probabilities_dict", "density_matrix"):
        widest = MAX_DENSITY_QUBITS if op.kind == "density_matrix" else MAX_SAVE_QUBITS
        if len(op.qubits) > widest:
            raise InvalidInputError(f"save {op.label!r}: the matrix product state gives {op.kind} of at most "
                                    f"{widest} qubits; save fewer qubits")
        return chain.reduced(op.qubits, diagonal=op.kind != "density_matrix")
    if op.kind == "matrix_product_state":
        if tuple(op.qubits) != tuple(range(len(chain.sites))):
            raise InvalidInputError(f"save {op.label!r}: the matrix product state is saved on every qubit of the "
                                    f"circuit, in order")
        return chain.vidal()
    if op.kind == "statevector":  # (is_mps_circuit: a chain of at most MAX_SAVE_QUBITS)
        return chain.statevector()
    amplitudes = chain.amplitudes(op.params)  # amplitudes, amplitudes_sq
    return amplitudes if op.kind == "amplitudes" else np.abs(amplitudes) ** 2


def _run_density(world: Collective, comm: Any, program: ir.Program, config: RunConfig, control: RunControl,
                 start: float) -> Optional[ExperimentOutput]:
    """A noisy circuit whose measurements are all final, as its density matrix (engine/density.py):
    one run of the ``2n``-qubit program on the working ranks, the shots sampled from its diagonal.
    None (on every rank alike) when the circuit does not fit the method, or, under the automatic
    method, when the density matrix does not fit the ranks' memory: the trajectories run it."""
    plain, readouts = defer_readout(program)
    made = None if any(isinstance(op, ir.Readout) for op in plain.ops) else density_program(plain)
    if made is None:
        return None
    doubled, measures, density_saves = made
    n = program.num_qubits
    label = "_aer_mpi_density_diagonal"
    doubled = dataclasses.replace(doubled, ops=doubled.ops + (
        ir.Save("amplitudes", tuple(range(2 * n)), label, params=tuple(diagonal_indices(n).tolist())),))
    inner_config = dataclasses.replace(config, method="statevector", shots=0, memory=False)
    try:
        inner = run_experiment(doubled, inner_config, comm, control)
    except InsufficientMemoryError:
        if config.method == "density_matrix":
            raise
        return None  # every rank raised it (agreed): every rank runs the trajectories
    read = [label] + [save.read for save in density_saves]
    entries = world.bcast({key: inner.data.get(key) for key in read} if world.rank == 0 else None)
    diagonal = entries[label]
    # the saves, as the statevector's static path records them: every shot saw the same state
    saves = Saves(None, config.zero_threshold)
    for save in density_saves:
        op = save.save
        saves.record(op.label, op.subtype, op.kind, density_save_value(save, entries[save.read], n))
    data, kinds = saves.results()
    values = None
    if measures and config.shots:
        sample_start = time.perf_counter()
        values = clbit_values(sample_diagonal(diagonal, config.shots, config.seed), measures)
        if readouts:
            values = apply_readout(values, readouts, config.seed)
        inner.metadata["sample_measure_time"] = time.perf_counter() - sample_start
    if values is None and program.num_clbits and config.shots and _has_save(program.ops) and not has_noise(program):
        # as Aer's density matrix: an ideal circuit reports its shots as 0 (as the statevector's path
        # does), a noisy one no counts (Aer decides by the noise model; here, by the errors it put in)
        values = np.zeros(config.shots, dtype=np.int64)
    metadata = dict(inner.metadata)
    ranks_note = inner.metadata.get("note")  # idle ranks, when the world is not a power of two
    metadata.update(
        # as the trajectories' stats: what the noise became
        noise="superop",  # Aer's word for its density matrix's noise
        noise_stats={"superoperators": sum(1 for op in doubled.ops if getattr(op, "name", "") == "superop"),
                     "readout_errors_on_final_values": len(readouts)},
        method="density_matrix", num_qubits=n, density_matrix_qubits=2 * n, shots=config.shots,
        seed_simulator=config.seed, dynamic=False,
        note=("method='density_matrix'" if config.method == "density_matrix" else
              f"automatic method: noise, every measurement final, {config.shots} shots > 2**{n} basis states")
        + f": the density matrix as a {2 * n}-qubit vector, run once; the shots sampled from its diagonal"
        + (f"; {ranks_note}" if ranks_note else ""))
    output = ExperimentOutput(counts=counts_of(values) if values is not None else None,
                              memory=memory_of(values) if values is not None and config.memory else None,
                              data=data, metadata=metadata, save_kinds=kinds)
    output.metadata["time_taken"] = time.perf_counter() - start
    return output


def _run_operator(comm: Any, program: ir.Program, config: RunConfig, control: RunControl,
                  start: float) -> ExperimentOutput:
    """``method="unitary"`` or ``"superop"``: the circuit's operator from one run of the program of
    ``engine/operators.py`` on the working ranks. Saved operators are where the statevector's saves
    are (rank 0; on every rank when small); as Aer, a circuit with classical bits counts all its
    shots as zeros (nothing is measured)."""
    n = program.num_qubits
    method = config.method
    m = register_qubits(method, n)
    doubled, saves, drawn = operator_program(program, method, config.seed)
    inner_config = dataclasses.replace(config, method="statevector", shots=0, memory=False)
    try:
        inner = run_experiment(doubled, inner_config, comm, control)
    except InsufficientMemoryError as exc:  # (raised on every rank alike: so is this one)
        said = InsufficientMemoryError(f"method={method!r}: the {method} of {n} qubits is held as the state of "
                                       f"{2 * m} qubits (4**{m} amplitudes); {exc}")
        said.__dict__.update(exc.__dict__)
        raise said from exc
    data: dict[str, Any] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for save in saves:
        amplitudes = inner.data.get(save.read)
        if amplitudes is None:
            continue  # kept by rank 0 only (a large one)
        matrix = operator_of(amplitudes, m)
        data[save.label] = [matrix] if save.subtype == "list" else matrix
        kinds[save.label] = (method, save.subtype)
    values = np.zeros(config.shots, dtype=np.int64) if program.num_clbits and config.shots else None
    metadata = dict(inner.metadata)
    if drawn:
        metadata["noise"] = "circuit"  # as Aer's: one branch of each error drawn, for the whole run
        metadata["noise_stats"] = {"errors_drawn": drawn}
    metadata.update(method=method, num_qubits=n, operator_qubits=2 * m, shots=config.shots,
                    seed_simulator=config.seed, dynamic=False,
                    note=f"method={method!r}: the {method} of {n} qubits as a {2 * m}-qubit vector, run once"
                    + (f"; {inner.metadata['note']}" if inner.metadata.get("note") else ""))
    output = ExperimentOutput(counts=counts_of(values) if values is not None else None,
                              memory=memory_of(values) if values is not None and config.memory else None,
                              data=data, metadata=metadata, save_kinds=kinds)
    output.metadata["time_taken"] = time.perf_counter() - start
    return output


def _stop_asked(control: RunControl) -> Any:
    """Why this rank's job should stop: the signal that asked (its number), True when it was cancelled,
    else False."""
    signum = stop_requested()
    return signum if signum is not None else bool(control.cancel_requested())


def _hearing(control: RunControl, notices: Optional[StopNotices], rank: int) -> RunControl:
    """Rank 0's control, whose ``cancel_requested`` also hears the idle ranks' notices."""
    if notices is None or rank != 0:
        return control
    def heard() -> bool:
        why = notices.heard()
        if type(why) is int:  # a signal reached the idle rank: rank 0 stops as if it had come here
            request_stop(why)  # (so SIGTERM/SIGUSR1 still write their checkpoint)
        return bool(why)

    return dataclasses.replace(control, cancel_requested=lambda: heard() or bool(control.cancel_requested()))


def _run_working(
    sub: Any,
    program: ir.Program,
    config: RunConfig,
    control: RunControl,
    g: int,
    copies: int,
    backend: tuple[str, int],
    chunk_qubits: Optional[int],
) -> ExperimentOutput:
    """The working ranks: one shard each, on the communicator ``sub``."""
    collective = Collective(sub)
    exchange = BitSwapExchange(sub, config.buffer_bytes)
    try:
        return _simulate(collective, exchange, program, config, control, g, copies, backend, chunk_qubits)
    except Exception as exc:
        if getattr(exc, "_agreed", False) or isinstance(exc, JobCancelledError):
            raise
        # A local failure: meet the others at their next collective with it.
        collective.agree(exc)
        raise InternalError(f"rank {collective.rank} failed but no rank reported it") from exc
    finally:
        exchange.close()


def _simulate(
    collective: Collective,
    exchange: BitSwapExchange,
    program: ir.Program,
    config: RunConfig,
    control: RunControl,
    g: int,
    copies: int,
    backend: tuple[str, int],
    chunk_qubits: Optional[int],
) -> ExperimentOutput:
    """``chunk_qubits``: a cache-blocked stage's chunk (the same on every rank), None for none."""
    # noise: readout errors nothing reads later are applied to the final values (engine/noise.py)
    program, readouts = defer_readout(program)
    n = program.num_qubits
    num_local = n - g
    plan_start = time.perf_counter()
    plan = plan_program(program, num_local)
    # A checkpoint names its point by the plan's blocks and ops, and its layouts by the rank tier
    # (engine/checkpoint.py): a job that keeps checkpoints runs the plan without the cache tier.
    if chunk_qubits is not None and control.checkpoints is None:
        # the cache tier and cache-blocked stages (plan/stages.py)
        steps, final_layout = place_in_cache(plan.steps, num_local, chunk_qubits, plan.final_layout)
        # a stage holds at most meeting_every gates, so that cancels still land between stages
        plan = dataclasses.replace(plan, steps=stage_steps(steps, chunk_qubits, config.meeting_every),
                                   final_layout=final_layout)
    plan_seconds = time.perf_counter() - plan_start
    shard = Shard(collective, exchange, n, num_local, np.dtype(PRECISIONS[config.precision]),
                  config.buffer_bytes, backend)
    interpreter = Interpreter(shard, control, meeting_interval(config.meeting_every, num_local),
                              total_steps=len(plan.steps))
    saves = Saves(shard, config.zero_threshold)
    dynamic = ir.is_dynamic(program)

    compute_start = time.perf_counter()
    noise_stats = None
    values: Optional[np.ndarray] = None
    sample_seconds = 0.0
    statevector_file: Optional[str] = None
    interpreter.stage("simulating")
    checkpoints = control.checkpoints
    index = PlanIndex(plan) if checkpoints is not None else None
    resume = checkpoints.take_resume() if checkpoints is not None else None
    if resume is not None and resume.get("kind") != ("dynamic" if dynamic else "static"):
        raise CheckpointError("the checkpoint does not fit this circuit: use another checkpoint directory")
    if not dynamic:
        start = 0
        if resume is None:
            shard.reset()
        else:  # a checkpoint: its state, moved to this plan's layout at its point
            block, ops_done = resume["point"]
            load_state(checkpoints, shard, resume["states"][0], plan.blocks[block].layout_at(ops_done))
            if collective.rank == 0:
                saves.restore(resume["saves"])
            interpreter.steps_done = resume["steps_done"]
            start = index.index_after(block, ops_done)

        def at_boundary(i: int) -> None:
            ops_done = index.ops_done(index.top, i)
            where = f"op {ops_done} of {len(plan.blocks[index.top].ends)}"
            failure = checkpoints.write(
                collective,
                {"kind": "static", "point": (index.top, ops_done), "steps_done": interpreter.steps_done,
                 "where": where},
                [(shard.array, plan.blocks[index.top].layout_at(ops_done))],
                {"saves": saves.state()} if collective.rank == 0 else None,
            )
            interpreter.checkpoint_written(where, failure)

        interpreter.run(plan.steps, lambda step: saves.save(step, STATIC_SHOTS, hex(0)), start,
                        index.boundaries(index.top) if index is not None else frozenset(), at_boundary)
        layout = plan.final_layout
        if config.statevector_path is not None:
            interpreter.stage("writing statevector")
            layout = write_statevector(shard, layout, config.statevector_path)
            statevector_file = config.statevector_path
        measures = ir.final_measurements(program)
        if measures:
            interpreter.stage("sampling")
            sample_start = time.perf_counter()
            outcomes = sample_outcomes(
                shard, layout, config.shots, np.random.default_rng(config.seed), interpreter.meet
            )
            values = clbit_values(outcomes, measures)
            sample_seconds = time.perf_counter() - sample_start
    else:
        agreed_copies = min(collective.allgather(copies))
        branching = Branching(shard, interpreter, saves, config.seed, program.num_clbits, agreed_copies,
                              program.num_var_bits)
        # final measurements sampled at once, gates fused between splits (engine/noise.py)
        branching.sample_final = True
        branching.fuse_ahead = True
        branching.noise_fusion = fusion_options(config, n)
        branching.cache_qubits = chunk_qubits  # the gates fused between splits run as cache-blocked stages
        if checkpoints is not None:
            branching.keep_checkpoints(checkpoints, index)
        values = branching.run(plan.steps, config.shots, resume)
        noise_stats = getattr(branching, "noise_stats", None)
    if readouts and values is not None:
        # one stream for every shot's draws, row s for shot s: ``values`` holds every shot in order
        # on every rank, so a shot's readout does not depend on the ranks either (a stream per shot
        # cost 15 us a shot: 0.3 s for 20,000 shots of a 3-qubit circuit)
        values = apply_readout(values, readouts, config.seed)
    data, save_kinds = saves.results()
    if values is None and program.num_clbits and _has_save(program.ops):
        # as Aer: a circuit with classical bits and a save but no measurement still reports its
        # shots, every one reading 0 (without a save, neither reports counts)
        values = np.zeros(config.shots, dtype=np.int64)
    collective.agree()  # the last collective: a late local error meets it here
    elapsed = time.perf_counter() - compute_start

    stats = (exchange.stats.exchanges, exchange.stats.bytes_sent,
             exchange.stats.seconds + collective.seconds, shard.reading_bytes, shard.passes,
             exchange.stats.seconds, exchange.stats.wait_seconds)
    all_stats = collective.allgather(stats)
    comm_seconds = max(s[2] for s in all_stats)
    compute_seconds = max(0.0, elapsed - comm_seconds)
    # every pass reads and writes the shard once; summed over the working ranks
    bytes_moved = 2 * shard.array.nbytes * sum(s[4] for s in all_stats)
    counts = memory = None
    if values is not None and config.shots:  # shots=0 runs the saves only: no counts, as in Aer
        counts = counts_of(values)
        if config.memory:
            memory = memory_of(values)
    metadata = {
        "method": "statevector",
        "precision": config.precision,
        "num_qubits": n,
        "working_ranks": 1 << g,
        "global_qubits": g,
        "qubits_per_shard": num_local,
        "shots": config.shots,
        "seed_simulator": config.seed,
        "dynamic": dynamic,
        "exchanges": all_stats[0][0],
        "bytes_exchanged": int(sum(s[1] for s in all_stats)),
        # the exchange that puts the top logical qubits global before sampling
        "sampling_bytes_exchanged": int(sum(s[3] for s in all_stats)),
        "time_communication": comm_seconds,
        # the amplitude exchanges (slowest rank): packing, unpacking and the transfers, and of that the
        # waits for chunks still on their way (comm/exchange.py: the next chunk is packed meanwhile)
        "time_exchange": max(s[5] for s in all_stats),
        "time_exchange_waiting": max(s[6] for s in all_stats),
        "time_compute": compute_seconds,
        "time_planning": plan_seconds,
        "plan": dict({k: v for k, v in plan.stats.items() if k != "naive_exchanges"}, steps=len(plan.steps),
                     stages=sum(1 for s in plan.steps if isinstance(s, StageStep)),
                     staged_steps=sum(len(s.steps) for s in plan.steps if isinstance(s, StageStep)),
                     cache_swaps=sum(1 for s in plan.steps if isinstance(s, LocalSwapStep)),
                     # the arithmetic, for a circuit without branches (a dynamic one's depends on them)
                     **({} if dynamic else {"complex_products_per_amplitude": complex_products_per_amplitude(plan.steps)})),
        # passes over the state (a cache-blocked stage is one), the bytes they read and wrote
        # (all ranks) and the rate they ran at: docs/performance.md compares it with a plain
        # numpy pass (the memory-bandwidth floor)
        "cache_qubits": chunk_qubits,
        "state_passes": all_stats[0][4],
        "bytes_moved": int(bytes_moved),
        "achieved_gbps": bytes_moved / compute_seconds / 1e9 if compute_seconds > 0 else None,
        "sample_measure_time": sample_seconds,  # Aer's name: the time final sampling took
    }
    if dynamic and noise_stats is not None and not readouts and not has_noise(program):
        # an ideal dynamic circuit: what shot branching did (metadata["noise"] stays Aer's "ideal")
        metadata["branching"] = dict(noise_stats)
    elif noise_stats is not None or readouts:  # noise (engine/noise.py)
        label = aer_noise_label(program)
        metadata["noise"] = "circuit" if label == "ideal" else label  # (readouts deferred: still Aer's "circuit")
        metadata["noise_stats"] = dict(noise_stats or {}, readout_errors_on_final_values=len(readouts))
    if checkpoints is not None:
        metadata["checkpoint"] = checkpoints.metadata()
    if config.statevector_path is not None:
        metadata["statevector_file"] = statevector_file
        if statevector_file is None:
            metadata["statevector_note"] = (
                "not written: the circuit has mid-circuit measurements, resets or "
                "conditionals, so its final state differs from shot to shot"
            )
    return ExperimentOutput(counts=counts, memory=memory, data=data, metadata=metadata, save_kinds=save_kinds)
