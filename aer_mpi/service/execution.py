"""What an AerJob runs: a Qobj on every rank of a communicator -> a Result.

The data path runs one way: rank 0's Qobj (validated at ``AerJob.submit()``)
becomes (program, config, header) per experiment once, on rank 0
(``plan_jobs.share_plan``), which every rank receives; so in SPMD mode every
rank runs the same job (the same seed included) even if its own copy
differed. The engine's outputs become the Result (``results``).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from typing import Any, Callable, Optional

from aer_mpi._version import __version__
from aer_mpi.comm import Collective
from aer_mpi.engine import RunControl, run_experiment
from aer_mpi.engine.checkpoint import JobCheckpoints
from aer_mpi.engine.interrupts import stop_requested
from aer_mpi.qobj.model import Qobj
from aer_mpi.service.plan_jobs import share_plan
from aer_mpi.errors import InsufficientMemoryError, JobCancelledError
from aer_mpi.qobj.options import WIDE_CIRCUIT_METHODS
from aer_mpi.service.results import experiment_result, failed_result
from aer_mpi.service.small_circuits import (
    ExperimentFailure,
    remove_unfinished_statevector,
    run_small_experiments,
)

BACKEND_NAME = "aer_mpi_simulator"


def execute_qobj(
    qobj: Optional[Qobj],
    job_id: str,
    comm: Any,
    control: Optional[RunControl] = None,
    on_experiment: Optional[Callable[[int, int, str], None]] = None,
) -> Any:
    """Run every experiment of rank 0's ``qobj`` on ``comm`` (collective) and build the Result.

    ``qobj`` must have been validated (``AerJob.submit()`` does it); ranks
    other than 0 may pass None.

    A batch keeps what finished (as Aer does): an experiment that fails (the
    same error on every rank, e.g. not enough memory) gets ``success=False``
    and its error as ``status``, the others run, and ``Result.success`` is
    False. When no experiment succeeded, the first error is raised instead
    (job ERROR). A cancel (``cancel()``, a signal on any rank) stops at the
    next checkpoint and raises ``JobCancelledError`` whose ``result``
    attribute is that Result: the finished experiments, the others with
    status ``CANCELLED``; an unfinished experiment's statevector file is removed.
    """
    start = time.perf_counter()
    control = control or RunControl()
    # Checkpoints (engine/checkpoint.py): opened before planning, so a refused one changes nothing.
    store = _open_checkpoints(qobj, comm)
    if store is None:
        return _execute(qobj, job_id, comm, control, on_experiment, store, start)
    try:
        return _execute(qobj, job_id, comm, dataclasses.replace(control, checkpoints=store), on_experiment,
                        store, start)
    finally:
        store.release(comm)


def _execute(qobj: Optional[Qobj], job_id: str, comm: Any, control: RunControl,
             on_experiment: Optional[Callable[[int, int, str], None]], store: Optional[JobCheckpoints],
             start: float) -> Any:
    from qiskit.result import Result

    plan = share_plan(qobj, comm)
    planned = plan.experiments
    finished = dict(store.finished) if store is not None else {}
    results = []
    failures: list[BaseException] = []
    cancelled: Optional[JobCancelledError] = None
    # Circuits too small to shard run whole, several ranks at a time (small_circuits.py).
    parallel = run_small_experiments(planned, comm, control, on_experiment, skip=set(finished))
    for index, outcome in parallel.items():
        if isinstance(outcome, ExperimentFailure) and outcome.cancelled:
            cancelled = JobCancelledError(outcome.message)
        elif store is not None:
            store.finished[index] = outcome
    if cancelled is not None and store is not None:
        _stop_with_checkpoint(comm, control, store, planned, finished)
    for index, (program, config, header) in enumerate(planned):
        if index in finished:  # finished before the checkpoint this job resumed from
            output = finished[index]
        elif index in parallel:
            output = parallel[index]
        elif cancelled is not None or (stop := _stop_agreed(comm, control, store, index)):
            # a short circuit may have no meeting of its own: the ranks agree before each one
            cancelled = cancelled or JobCancelledError(stop)
            output = ExperimentFailure.of(JobCancelledError("the job was cancelled before it ran"), 0)
        else:
            if on_experiment is not None:
                on_experiment(index, len(planned), program.name)
            started = time.time()
            if store is not None:
                store.experiment = index
            try:
                output = run_experiment(program, config, comm, control)
            except JobCancelledError as exc:
                cancelled = exc
                if comm.Get_rank() == 0:
                    remove_unfinished_statevector(config.statevector_path, started)
                output = ExperimentFailure.of(exc, 0)
            except Exception as exc:
                # run_experiment raises the same error on every rank (agreed or broadcast)
                exc = _with_method_hint(exc, config.method)
                failures.append(exc)
                output = ExperimentFailure.of(exc, 0)
            if store is not None and not (isinstance(output, ExperimentFailure) and output.cancelled):
                store.finished[index] = output
        if isinstance(output, ExperimentFailure):
            if not output.cancelled and index in parallel:
                failures.append(_rebuilt(output))
            results.append(failed_result(output, header, config))
        else:
            results.append(experiment_result(output, header, config, program.metadata))
    success = all(r.success for r in results)
    result = Result(
        backend_name=BACKEND_NAME,
        backend_version=__version__,
        qobj_id=plan.qobj_id,
        job_id=job_id,
        success=success,
        results=results,
        date=datetime.datetime.now().isoformat(),
        status="COMPLETED" if success else ("CANCELLED" if cancelled is not None else "PARTIAL COMPLETED"),
        header=dict(plan.header),
        time_taken=time.perf_counter() - start,
        metadata=_job_metadata(comm, results, parallel, time.perf_counter() - start),
    )
    if store is not None:  # (also when no circuit finished: why a checkpoint could not be written)
        result.metadata["checkpoint"] = store.metadata()
    if cancelled is not None:
        cancelled.result = result  # type: ignore[attr-defined]
        raise cancelled
    if store is not None and success:
        store.remove(comm)  # the job is done: its checkpoint would only repeat it
    if failures and not any(r.success for r in results):
        raise failures[0]
    return result


def _job_metadata(comm: Any, results: list, parallel: dict, seconds: float) -> dict:
    """``Result.metadata``: Aer's keys (as its ``AerSimulator`` gives them, for code that reads them)
    and the ranks. ``parallel_experiments``: how many circuits ran at once (small ones run whole, one
    per rank; otherwise 1)."""
    memories = [r.metadata.get("max_memory_mb") for r in results if r.success and r.metadata]
    return {
        "time_taken_execute": seconds,
        "max_memory_mb": max((m for m in memories if m is not None), default=None),
        "max_gpu_memory_mb": 0,
        "omp_enabled": True,  # the kernels' threads (numba's or the native ones)
        "parallel_experiments": max(1, min(comm.Get_size(), len(parallel))),
        "ranks": comm.Get_size(),
        "mpi": True,
    }


def _with_method_hint(exc: Exception, method: str) -> Exception:
    """A state too large for memory under one of Aer's wide-circuit methods: the error says that
    here the method is the statevector, and where that method is simulated."""
    if (not isinstance(exc, InsufficientMemoryError) or method not in WIDE_CIRCUIT_METHODS
            or getattr(exc, "from_chain", False)):
        return exc
    if method in ("matrix_product_state", "extended_stabilizer"):
        hint = (f"method={method!r} runs a circuit this wide here as a matrix product state only without "
                f"noise, resets, mid-circuit measurements, control flow or saves of the whole state; for "
                f"this one use qiskit_aer.AerSimulator(method={method!r})")
    else:
        hint = (f"method={method!r} runs here as the statevector (aer_mpi has no {method} simulator): for a "
                f"circuit this wide use qiskit_aer.AerSimulator(method={method!r})")
    hinted = InsufficientMemoryError(f"{exc}; {hint}")
    hinted.__dict__.update(exc.__dict__)
    return hinted


def _stop_agreed(comm: Any, control: RunControl, store: Optional[JobCheckpoints], index: int) -> Optional[str]:
    """Collective, before experiment ``index``: None to go on, or why the job stops (any rank's job was
    cancelled or got a stop signal). With checkpoints, one is written here first when a signal or
    ``cancel(checkpoint=True)`` asked for it, or when the period has passed; the reason then says so,
    as a stop at a meeting inside a circuit does (engine/interpreter.py)."""
    cancel = bool(control.cancel_requested())  # (first: it may hear an idle rank's signal, engine/runner.py)
    signal = stop_requested() is not None
    keep = store is not None and (signal or bool(control.checkpoint_requested()))
    due = store is not None and comm.Get_rank() == 0 and store.due()
    votes = Collective(comm).allgather((signal or cancel, keep, due))
    if store is not None and any(v[1] or v[2] for v in votes):
        store.experiment = index
        store.write(Collective(comm))
    if any(v[1] for v in votes):
        return (f"the job was stopped after a checkpoint (before circuit {index}): run it again with the same "
                f"checkpoint directory to resume")
    return "the job was cancelled" if any(v[0] for v in votes) else None


def _stop_with_checkpoint(comm: Any, control: RunControl, store: JobCheckpoints, planned: list,
                          finished: dict) -> None:
    """Small circuits were stopped: keep those that finished in a checkpoint, when a signal or
    ``cancel(checkpoint=True)`` asked for one (collective)."""
    keep = stop_requested() is not None or bool(control.checkpoint_requested())
    if any(Collective(comm).allgather(keep)):
        store.experiment = next((i for i in range(len(planned)) if i not in store.finished), len(planned))
        store.write(Collective(comm))


def _open_checkpoints(qobj: Optional[Qobj], comm: Any) -> Optional[JobCheckpoints]:
    """Collective: the job's checkpoints when its config names a directory (rank 0's Qobj decides)."""
    settings = None
    if comm.Get_rank() == 0 and qobj is not None and qobj.config.get("checkpoint_dir"):
        config = qobj.config
        settings = (os.fspath(config["checkpoint_dir"]), job_fingerprint(qobj), int(config["seed_simulator"]),
                    config.get("checkpoint_every_seconds"))
    settings = Collective(comm).bcast(settings)
    if settings is None:
        return None
    return JobCheckpoints.open(comm, *settings)


#: Options that change how a job runs but not its results: a checkpoint resumes under other values.
RESUMABLE_OPTIONS = frozenset({
    "checkpoint_dir", "checkpoint_every_seconds", "seed_simulator", "max_memory_mb", "buffer_mb",
    "max_parallel_threads", "threads_per_rank", "statevector_parallel_threshold", "parallel_experiments",
    "max_parallel_experiments",
})


def job_fingerprint(qobj: Qobj) -> str:
    """A hash of the circuits and of the options that decide the results (not the seed: checked apart)."""
    from types import SimpleNamespace

    from aer_mpi.service.agreement import fingerprint

    config = {k: v for k, v in qobj.config.items() if k not in RESUMABLE_OPTIONS}
    return fingerprint(SimpleNamespace(config=config, experiments=qobj.experiments), seed_drawn=True)


def _rebuilt(failure: ExperimentFailure) -> Exception:
    """The error of a circuit run on another rank, with its type when it is one of aer_mpi's."""
    from aer_mpi.comm.collective import _same_error

    return _same_error(failure.rank, failure.kind, failure.message)
