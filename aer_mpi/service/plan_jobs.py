"""A Qobj -> the (program, config, header) of each experiment, once.

Promise: ``experiments(qobj)`` translates every experiment of a validated
Qobj into an ``ir.Program`` and its ``RunConfig`` (the job's config, the
experiment's own over it, the experiment's seed stream and where its final
state is written), with its header for the Result. ``share_plan`` does it
on rank 0 only and broadcasts the outcome, pickled once, to the other
ranks (or the error, which every rank then raises): with one rank nothing
is serialised. The other ranks neither validate nor translate: rank 0's
job is what every rank runs (its Qobj was validated at ``AerJob.submit()``;
validating again would repeat the same pure checks on the same data).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from aer_mpi.comm.watchdog import bounded
from aer_mpi import ir
from aer_mpi.engine import RunConfig
from aer_mpi.engine.operators import OPERATOR_KINDS, operator_program, operator_saves_of
from aer_mpi.engine.density import density_program
from aer_mpi.engine.noise import defer_readout
from aer_mpi.engine.mps import is_mps_circuit
from aer_mpi.engine.stabilizer import is_stabilizer_circuit
from aer_mpi.engine.tableau import TABLEAU_SAVES, TABLEAU_STATE_SAVES, is_tableau_save
from aer_mpi.errors import InternalError, InvalidInputError
from aer_mpi.plan.truncate import truncate
from aer_mpi.qobj.instructions import SAVE_KINDS
from aer_mpi.qobj.model import Qobj
from aer_mpi.qobj.options import run_config
from aer_mpi.qobj.translate import to_program
from aer_mpi.service.filenames import unique_stems


class PlannedExperiment(NamedTuple):
    """One experiment, ready for the engine."""

    program: ir.Program
    config: RunConfig
    header: dict


@dataclass
class JobPlan:
    """What every rank needs to run a job and build its Result."""

    qobj_id: str
    header: dict
    experiments: list[PlannedExperiment]


def experiments(qobj: Qobj) -> list[PlannedExperiment]:
    """Every experiment of ``qobj`` (validated) as (program, config, header)."""
    files = _statevector_files(qobj)
    planned = []
    memo: dict = {}  # standard gates the experiments share (bindings of one circuit), translated once
    for index, experiment in enumerate(qobj.experiments):
        config = run_config({**qobj.config, **experiment.config})
        if files is not None:
            config = dataclasses.replace(config, statevector_path=files[index])
        if "seed_simulator" not in experiment.config:
            # each experiment of a job gets its own stream (as in Aer): seed_simulator + index
            config = dataclasses.replace(config, seed=config.seed + index)
        program = to_program(experiment, index, memo)
        config = _automatic_method(program, config)
        _check_method(program, config)
        if config.enable_truncation and config.statevector_path is None and config.method not in OPERATOR_KINDS:
            # (a final state written to a file keeps every qubit of the circuit; an operator too, as Aer's)
            program = truncate(program)
        # Aer's metadata["measure_sampling"], decided as Aer decides it (read by code written for Aer)
        program = dataclasses.replace(program, metadata=dict(program.metadata,
                                                             aer_measure_sampling=ir.aer_measure_sampling(program)))
        planned.append(PlannedExperiment(program, config, dict(experiment.header)))
    return planned


#: The methods whose state a circuit may set or save, which Aer's automatic method then takes (first
#: found; ``stabilizer`` is taken by the engine where the circuit is Clifford: engine/runner.py).
_METHODS_OF_STATES = ("superop", "unitary", "density_matrix", "matrix_product_state")


def _automatic_method(program: ir.Program, config: RunConfig) -> RunConfig:
    """Under ``method="automatic"``, the method whose state ``program`` sets or saves (Aer's
    automatic method does the same: ``set_unitary`` or ``save_unitary`` runs the unitary method)."""
    if config.method != "automatic":
        return config
    kinds = ir.set_state_kinds(program.ops) | ir.saved_kinds(program.ops)
    for method in _METHODS_OF_STATES:
        if method in kinds and (method != "density_matrix" or method in ir.set_state_kinds(program.ops)):
            return dataclasses.replace(config, method=method)
    return config


def _check_method(program: ir.Program, config: RunConfig) -> None:
    """What only one method takes: ``save_unitary`` and ``save_superop`` need the method of their
    name, which takes no measurement (checked here, on rank 0, so that every rank gets the error
    before any starts)."""
    method = config.method
    if method in OPERATOR_KINDS:
        if config.statevector_path is not None:
            raise InvalidInputError(
                f"statevector_dir writes each circuit's final statevector, and method={method!r} has none: leave "
                f"statevector_dir out (save_{method}() puts the {method} in the result)")
        operator_program(program, method, config.seed)
    others = sorted(operator_saves_of(program.ops) - {method})
    if others:
        kind = others[0]
        raise InvalidInputError(
            f"circuit {program.name!r}: save_{kind} saves a {kind}, which only method={kind!r} simulates "
            f"(AerMPISimulator(method={kind!r})); under method={method!r} save the state instead "
            f"(save_statevector)")
    for kind in sorted(ir.set_state_kinds(program.ops) - {"statevector"}):
        if method != kind and not (kind == "stabilizer" and method == "automatic"):
            raise InvalidInputError(
                f"circuit {program.name!r}: set_{kind} sets the state of method={kind!r} "
                f"(AerMPISimulator(method={kind!r})); under method={method!r} set the state with set_statevector")
        if kind == "stabilizer" and not is_stabilizer_circuit(program):
            raise InvalidInputError(
                f"circuit {program.name!r}: set_stabilizer needs a Clifford circuit (gates that map Paulis to "
                f"Paulis: h, s, cx, ...) without noise or mid-circuit measurements, as the tableau runs it here")
        if kind == "density_matrix" and density_program(defer_readout(program)[0]) is None:
            raise InvalidInputError(
                f"circuit {program.name!r}: set_density_matrix: the density matrix here runs circuits whose "
                f"measurements are all final, without control flow or readout errors before other operations; "
                f"set the state before the gates, and measure at the end")
    if "matrix_product_state" in ir.saved_kinds(program.ops):
        if method != "matrix_product_state":
            raise InvalidInputError(
                f"circuit {program.name!r}: save_matrix_product_state saves the matrix product state, which "
                f"only method='matrix_product_state' (or 'automatic') simulates: "
                f"AerMPISimulator(method='matrix_product_state'); under method={method!r} save the state "
                f"instead (save_statevector)")
        if not is_mps_circuit(program):
            raise InvalidInputError(
                f"circuit {program.name!r}: save_matrix_product_state: the matrix product state here runs "
                f"gates, final measurements and saves of expectation values, probabilities, amplitudes and "
                f"reduced density matrices, without noise, resets, mid-circuit measurements or control flow; "
                f"for this circuit use qiskit_aer.AerSimulator(method='matrix_product_state')")
    tableau_saves = sorted(ir.saved_kinds(program.ops) & set(TABLEAU_STATE_SAVES))
    if tableau_saves:
        kind = tableau_saves[0]
        if method not in ("stabilizer", "automatic"):
            raise InvalidInputError(
                f"circuit {program.name!r}: save_{kind} saves the stabilizer tableau, which only "
                f"method='stabilizer' (or 'automatic') simulates: AerMPISimulator(method='stabilizer'); "
                f"under method={method!r} save the state instead (save_statevector)")
        others = sorted(SAVE_KINDS[save.kind].aer_type for save in program.ops if isinstance(save, ir.Save)
                        and save.kind not in TABLEAU_SAVES and not is_tableau_save(save))
        if others:
            raise InvalidInputError(
                f"circuit {program.name!r}: save_{kind} runs the circuit on the stabilizer tableau, which does "
                f"not compute {others[0]} (it computes {', '.join(SAVE_KINDS[k].aer_type for k in TABLEAU_SAVES)}); "
                f"save {others[0]} in another circuit, without save_{kind}")
        if not is_stabilizer_circuit(program):
            unsaved = dataclasses.replace(program, ops=tuple(op for op in program.ops if not isinstance(op, ir.Save)))
            if ir.is_dynamic(program) and is_stabilizer_circuit(unsaved):
                # a Clifford circuit, but each shot ends in its own state (Aer saves one shot's)
                raise InvalidInputError(
                    f"circuit {program.name!r}: save_{kind} in a circuit with noise, resets, mid-circuit "
                    f"measurements or control flow: each shot ends in its own stabilizer state, and the "
                    f"tableau here saves one only of a circuit without them; save it in the circuit "
                    f"without the noise (or before the first measurement, in a copy that ends there), "
                    f"or save_statevector under method='statevector'")
            raise InvalidInputError(
                f"circuit {program.name!r}: save_{kind} needs a Clifford circuit (gates that map Paulis to "
                f"Paulis: h, s, cx, ...), as Aer's stabilizer method; for this one save the state "
                f"(save_statevector) under method='statevector'")


def plan_job(qobj: Qobj) -> JobPlan:
    return JobPlan(qobj.qobj_id, dict(qobj.header), experiments(qobj))


def share_plan(qobj: Optional[Qobj], comm: Any) -> JobPlan:
    """Rank 0's ``plan_job(qobj)`` on every rank of ``comm`` (collective); other ranks may pass None."""
    if comm.Get_size() == 1:
        return plan_job(qobj)
    packet: Optional[bytes] = None
    if comm.Get_rank() == 0:
        try:
            outcome: tuple = ("ok", plan_job(qobj))
        except Exception as exc:  # every rank raises it below
            outcome = ("error", exc)
        try:
            packet = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            packet = pickle.dumps(("error", InternalError(f"cannot send the job to the other ranks: {exc}")))
    with bounded(comm, "the job from rank 0"):
        kind, value = pickle.loads(comm.bcast(packet, root=0))
    if kind == "error":
        raise value
    return value


def _statevector_files(qobj: Qobj) -> Optional[list[str]]:
    """``<statevector_dir>/<name>.npy`` per experiment (names made safe and unique), or None."""
    directory = qobj.config.get("statevector_dir")
    if directory is None:
        return None
    names = [str(e.header.get("name") or f"circuit-{i}") for i, e in enumerate(qobj.experiments)]
    return [os.path.join(directory, stem + ".npy") for stem in unique_stems(names)]
