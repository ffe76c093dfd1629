"""Engine outputs -> Qiskit's ``ExperimentResult``.

Saved values are given back as Aer gives them: the instruction table
(``aer_mpi.qobj.instructions.SAVE_KINDS``) says, per save kind, whether a
value becomes a ``Statevector``, a ``ProbDistribution`` or stays as the
engine returned it; the engine says which kind and subtype each label is
(``ExperimentOutput.save_kinds``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from aer_mpi.engine import ExperimentOutput, RunConfig
from aer_mpi.qobj.options import EXACT_NOISE_METHODS
from aer_mpi.qobj.instructions import (
    RESULT_DENSITY_MATRIX,
    RESULT_OPERATOR,
    RESULT_SUPEROP,
    RESULT_STABILIZER,
    RESULT_CLIFFORD,
    RESULT_PROB_DISTRIBUTION,
    RESULT_STATEVECTOR,
    SAVE_KINDS,
)


def format_save(value: Any, kind: str, subtype: str) -> Any:
    """A saved value of ``ir.Save`` kind ``kind`` as Aer gives it."""
    result = SAVE_KINDS[kind].result if kind in SAVE_KINDS else None
    if result == RESULT_STATEVECTOR:
        from aer_mpi.service.saved_types import Statevector

        make: Callable[[Any], Any] = Statevector
    elif result == RESULT_DENSITY_MATRIX:
        from aer_mpi.service.saved_types import DensityMatrix

        make = DensityMatrix
    elif result == RESULT_OPERATOR:
        from aer_mpi.service.saved_types import Operator

        make = Operator
    elif result == RESULT_SUPEROP:
        from aer_mpi.service.saved_types import SuperOp

        make = SuperOp
    elif result == RESULT_CLIFFORD:
        from qiskit.quantum_info import Clifford

        make = Clifford
    elif result == RESULT_STABILIZER:
        from qiskit.quantum_info import Clifford

        from aer_mpi.service.saved_types import StabilizerState

        def make(table: Any) -> Any:
            return StabilizerState(Clifford(table))
    elif result == RESULT_PROB_DISTRIBUTION:
        from qiskit.result import ProbDistribution

        make = ProbDistribution
    elif kind == "expectation_value" and subtype in ("list", "c_list"):
        # as Aer: one expectation value per shot is a numpy array (``.mean()`` works)
        return {k: np.asarray(v) for k, v in value.items()} if subtype == "c_list" else np.asarray(value)
    else:
        return value
    func = (lambda items: [make(v) for v in items]) if subtype in ("list", "c_list") else make
    if subtype.startswith("c_"):
        return {key: func(v) for key, v in value.items()}
    return func(value)


def aer_metadata(metadata: dict, config: RunConfig) -> None:
    """Qiskit Aer's metadata keys that mean the same thing here, beside aer_mpi's own (in place)."""
    metadata.setdefault("method", "statevector")
    metadata.setdefault("device", "CPU")
    if "threads_per_rank" in metadata:
        # Aer: threads that updated the state (1: serial)
        metadata.setdefault("parallel_state_update", metadata["threads_per_rank"])
    metadata.setdefault("parallel_shots", 1)
    # Aer's optimisations that do not exist here (bindings are separate experiments, as Aer's
    # results report them without runtime binding)
    metadata.setdefault("num_bind_params", 1)
    metadata.setdefault("runtime_parameter_bind", False)
    metadata.setdefault("batched_shots_optimization", False)
    metadata.setdefault("remapped_qubits", False)
    metadata.setdefault("noise", "ideal")
    if metadata["method"] == "matrix_product_state":
        # the options the chain ran with, as Aer reports them (no bond limit: Aer's 2**64 - 1)
        limit = config.mps_max_bond_dimension
        metadata.setdefault("matrix_product_state_max_bond_dimension", (1 << 64) - 1 if limit is None else limit)
        metadata.setdefault("matrix_product_state_truncation_threshold", config.mps_truncation_threshold)
    fusion = metadata.get("fusion")
    if isinstance(fusion, dict):
        fusion = metadata["fusion"] = dict(fusion)
        fusion.setdefault("applied", bool(fusion.get("enabled")))
        fusion.setdefault("max_fused_qubits", config.fusion_max_qubit)
        fusion.setdefault("threshold", config.fusion_threshold)


def experiment_result(
    output: ExperimentOutput, header: dict, config: RunConfig, extra_metadata: Optional[dict] = None
) -> Any:
    from qiskit.result.models import ExperimentResult, ExperimentResultData

    data: dict[str, Any] = {}
    if output.counts is not None:
        data["counts"] = output.counts
    if output.memory is not None:
        data["memory"] = output.memory
    result_types, result_subtypes = {}, {}
    for key, value in output.data.items():
        kind, subtype = output.save_kinds.get(key, ("", "single"))
        data[key] = format_save(value, kind, subtype)
        result_types[key] = SAVE_KINDS[kind].aer_type if kind in SAVE_KINDS else kind
        result_subtypes[key] = subtype
    metadata = dict(output.metadata)
    if result_types:  # as Aer: each saved label's instruction and subtype
        metadata.setdefault("result_types", result_types)
        metadata.setdefault("result_subtypes", result_subtypes)
    aer_metadata(metadata, config)
    metadata.setdefault("num_clbits", int(header.get("memory_slots", 0)))
    sampling = (extra_metadata or {}).get("aer_measure_sampling")
    if sampling is not None:  # Aer's word: whether Aer would sample the shots from one final state
        metadata["measure_sampling"] = sampling[metadata.get("method") in EXACT_NOISE_METHODS]
    elif "dynamic" in metadata:
        metadata.setdefault("measure_sampling", not metadata["dynamic"])
    if extra_metadata:
        # idle-qubit truncation (plan/truncate.py): which of the circuit's qubits were simulated, as Aer says it
        for key in ("active_input_qubits", "input_qubit_map", "remapped_qubits"):
            if key in extra_metadata:
                metadata[key] = extra_metadata[key]
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
