"""Engine outputs -> Qiskit's ``ExperimentResult``.

Saved values are given back as Aer gives them: the instruction table
(``aer_mpi.qobj.instructions.SAVE_KINDS``) says, per save kind, whether a
value becomes a ``Statevector``, a ``ProbDistribution`` or stays as the
engine returned it; the engine says which kind and subtype each label is
(``ExperimentOutput.save_kinds``).
"""

from __future__ import annotations

from typing import Any, Callable

from aer_mpi import ir
from aer_mpi.engine import ExperimentOutput, RunConfig
from aer_mpi.qobj.instructions import RESULT_PROB_DISTRIBUTION, RESULT_STATEVECTOR, SAVE_KINDS


def format_save(value: Any, kind: str, subtype: str) -> Any:
    """A saved value of ``ir.Save`` kind ``kind`` as Aer gives it."""
    result = SAVE_KINDS[kind].result if kind in SAVE_KINDS else None
    if result == RESULT_STATEVECTOR:
        from qiskit.quantum_info import Statevector

        make: Callable[[Any], Any] = Statevector
    elif result == RESULT_PROB_DISTRIBUTION:
        from qiskit.result import ProbDistribution

        make = ProbDistribution
    else:
        return value
    func = (lambda items: [make(v) for v in items]) if subtype in ("list", "c_list") else make
    if subtype.startswith("c_"):
        return {key: func(v) for key, v in value.items()}
    return func(value)


def program_save_kinds(program: ir.Program) -> dict[str, tuple[str, str]]:
    """label -> (kind, subtype) of every ``ir.Save`` in ``program``, nested bodies included.

    TEMPORARY fallback (remove once the engine fills ``ExperimentOutput.save_kinds``).
    """
    out: dict[str, tuple[str, str]] = {}

    def walk(ops: Any) -> None:
        for op in ops:
            if isinstance(op, ir.Save):
                out.setdefault(op.label, (op.kind, op.subtype))
            elif isinstance(op, ir.IfElse):
                walk(op.true_ops)
                walk(op.false_ops)
            elif isinstance(op, ir.WhileLoop):
                walk(op.body)
            elif isinstance(op, ir.Switch):
                for _, body in op.cases:
                    walk(body)

    walk(program.ops)
    return out


def experiment_result(output: ExperimentOutput, header: dict, config: RunConfig, program: ir.Program) -> Any:
    from qiskit.result.models import ExperimentResult, ExperimentResultData

    data: dict[str, Any] = {}
    if output.counts is not None:
        data["counts"] = output.counts
    if output.memory is not None:
        data["memory"] = output.memory
    # TEMPORARY fallback: until the engine fills save_kinds, read them off the program's saves
    save_kinds = output.save_kinds or program_save_kinds(program)
    for key, value in output.data.items():
        kind, subtype = save_kinds.get(key, ("", "single"))
        data[key] = format_save(value, kind, subtype)
    metadata = dict(output.metadata)
    return ExperimentResult(
        shots=config.shots,
        success=True,
        data=ExperimentResultData(**data),
        status="DONE",
        seed_simulator=config.seed,
        header=dict(header),
        metadata=metadata,
        time_taken=metadata.get("time_taken", 0.0),
    )


def failed_result(failure: Any, header: dict, config: RunConfig) -> Any:
    """An experiment that did not finish, as Aer reports one: ``success=False``, the error as ``status``."""
    from qiskit.result.models import ExperimentResult, ExperimentResultData

    if failure.cancelled:
        status = f"CANCELLED: {failure.message}"
    else:
        status = f"ERROR: {failure.kind}: {failure.message}"
    return ExperimentResult(
        shots=config.shots,
        success=False,
        data=ExperimentResultData(),
        status=status,
        seed_simulator=config.seed,
        header=dict(header),
        metadata={"error": failure.kind, "cancelled": failure.cancelled},
    )
