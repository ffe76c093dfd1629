"""What an AerJob runs: a Qobj on every rank of a communicator -> a Result.

Rank 0's Qobj is broadcast, so in SPMD mode every rank runs the same job
(the same seed included) even if its own copy differed.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from typing import Any, Callable, Optional


from aer_mpi._version import __version__
from aer_mpi.service.small_circuits import run_small_experiments
from aer_mpi.engine import ExperimentOutput, RunConfig, RunControl, run_experiment
from aer_mpi.service.filenames import unique_stems
from aer_mpi.qobj.model import Qobj
from aer_mpi.qobj.translate import to_program

BACKEND_NAME = "aer_mpi_simulator"


#: Performance settings passed from the Qobj config to the engine as they are.
_PERFORMANCE_KEYS = {
    "fusion_enable": bool,
    "fusion_max_qubit": int,
    "fusion_max_diagonal_qubit": int,
    "fusion_threshold": int,
    "kernels": str,
    "threads_per_rank": int,
    "parallel_experiments": bool,
}


def run_config(config: dict) -> RunConfig:
    """Engine settings from a Qobj config."""
    kwargs: dict[str, Any] = {
        "shots": int(config["shots"]),
        "seed": int(config["seed_simulator"]),
        "memory": bool(config.get("memory", False)),
        "precision": config.get("precision", "double"),
    }
    if config.get("max_memory_mb") is not None:
        kwargs["max_memory_bytes"] = int(config["max_memory_mb"]) << 20
    if config.get("buffer_mb") is not None:
        kwargs["buffer_bytes"] = max(1, int(float(config["buffer_mb"]) * (1 << 20)))
    if config.get("min_local_qubits") is not None:
        kwargs["min_local_qubits"] = int(config["min_local_qubits"])
    for key, kind in _PERFORMANCE_KEYS.items():
        if config.get(key) is not None:
            kwargs[key] = kind(config[key])
    return RunConfig(**kwargs)


def save_types(instructions: list[dict], out: Optional[dict] = None) -> dict[str, tuple[str, str]]:
    """label -> (save instruction name, subtype), for every save in ``instructions`` (nested too)."""
    out = {} if out is None else out
    for inst in instructions:
        name = inst.get("name", "")
        if name.startswith("save_"):
            out[inst.get("label", name[5:])] = (name, inst.get("subtype", "single"))
        for body in ("true_body", "false_body", "body"):
            save_types(inst.get(body, []), out)
        for case in inst.get("cases", []):
            save_types(case.get("body", []), out)
    return out


def format_save(value: Any, name: str, subtype: str) -> Any:
    """A saved value as Aer gives it: Statevector for a state, ProbDistribution for a probability dict."""
    from qiskit.quantum_info import Statevector
    from qiskit.result import ProbDistribution

    if name == "save_statevector":
        make: Callable[[Any], Any] = Statevector
    elif name == "save_probabilities_dict":
        make = ProbDistribution
    else:
        return value
    func = (lambda items: [make(v) for v in items]) if subtype in ("list", "c_list") else make
    if subtype.startswith("c_"):
        return {key: func(v) for key, v in value.items()}
    return func(value)


def experiment_result(
    output: ExperimentOutput, header: dict, config: RunConfig, saves: Optional[dict] = None
) -> Any:
    from qiskit.result.models import ExperimentResult, ExperimentResultData

    data: dict[str, Any] = {}
    if output.counts is not None:
        data["counts"] = output.counts
    if output.memory is not None:
        data["memory"] = output.memory
    saves = saves or {}
    for key, value in output.data.items():
        name, subtype = saves.get(key, ("", "single"))
        data[key] = format_save(value, name, subtype)
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


def execute_qobj(
    qobj: Qobj,
    job_id: str,
    comm: Any,
    control: Optional[RunControl] = None,
    on_experiment: Optional[Callable[[int, int, str], None]] = None,
) -> Any:
    """Run every experiment of ``qobj`` on ``comm`` (collective) and build the Result."""
    from qiskit.result import Result

    start = time.perf_counter()
    qobj = Qobj.from_dict(comm.bcast(qobj.to_dict() if comm.Get_rank() == 0 else None, root=0))
    qobj.validate()
    results = []
    # Circuits too small to shard run whole, several ranks at a time (batch.py).
    parallel = run_small_experiments(qobj, comm, control, on_experiment)
    for index, experiment in enumerate(qobj.experiments):
        config = experiment_config(qobj, index)
        if index in parallel:
            results.append(
                experiment_result(parallel[index], experiment.header, config, save_types(experiment.instructions))
            )
            continue
        program = to_program(experiment, index)
        if on_experiment is not None:
            on_experiment(index, len(qobj.experiments), program.name)
        output = run_experiment(program, config, comm, control)
        results.append(experiment_result(output, experiment.header, config, save_types(experiment.instructions)))
    return Result(
        backend_name=BACKEND_NAME,
        backend_version=__version__,
        qobj_id=qobj.qobj_id,
        job_id=job_id,
        success=True,
        results=results,
        date=datetime.datetime.now().isoformat(),
        status="COMPLETED",
        header=dict(qobj.header),
        time_taken=time.perf_counter() - start,
        metadata={"ranks": comm.Get_size(), "mpi": True},
    )


def experiment_config(qobj: Qobj, index: int) -> RunConfig:
    """The engine settings of experiment ``index``: the job's config, the
    experiment's own, its seed stream and where its state is written."""
    experiment = qobj.experiments[index]
    config = run_config({**qobj.config, **experiment.config})
    statevector_files = _statevector_files(qobj)
    if statevector_files is not None:
        config = dataclasses.replace(config, statevector_path=statevector_files[index])
    if "seed_simulator" not in experiment.config:
        # each experiment of a job gets its own stream (as in Aer): seed_simulator + index
        config = dataclasses.replace(config, seed=config.seed + index)
    return config


def _statevector_files(qobj: Qobj) -> Optional[list[str]]:
    """``<statevector_dir>/<name>.npy`` per experiment (names made safe and unique), or None."""
    directory = qobj.config.get("statevector_dir")
    if directory is None:
        return None
    names = [str(e.header.get("name") or f"circuit-{i}") for i, e in enumerate(qobj.experiments)]
    return [os.path.join(directory, stem + ".npy") for stem in unique_stems(names)]
