"""What an AerJob runs: a Qobj on every rank of a communicator -> a Result.

The data path runs one way: rank 0's Qobj (validated at ``AerJob.submit()``)
becomes (program, config, header) per experiment once, on rank 0
(``plan_jobs.share_plan``), which every rank receives; so in SPMD mode every
rank runs the same job (the same seed included) even if its own copy
differed. The engine's outputs become the Result (``results``).
"""

from __future__ import annotations

import datetime
import time
from typing import Any, Callable, Optional

from aer_mpi._version import __version__
from aer_mpi.comm import Collective
from aer_mpi.engine import RunControl, run_experiment
from aer_mpi.engine.interrupts import stop_requested
from aer_mpi.qobj.model import Qobj
from aer_mpi.service.plan_jobs import share_plan
from aer_mpi.errors import JobCancelledError
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
    from qiskit.result import Result

    start = time.perf_counter()
    plan = share_plan(qobj, comm)
    planned = plan.experiments
    results = []
    failures: list[BaseException] = []
    cancelled: Optional[JobCancelledError] = None
    # Circuits too small to shard run whole, several ranks at a time (small_circuits.py).
    parallel = run_small_experiments(planned, comm, control, on_experiment)
    for outcome in parallel.values():
        if isinstance(outcome, ExperimentFailure) and outcome.cancelled:
            cancelled = JobCancelledError(outcome.message)
    for index, (program, config, header) in enumerate(planned):
        if index in parallel:
            output = parallel[index]
        elif cancelled is not None or _stop_agreed(comm, control):
            # a short circuit may have no checkpoint of its own: the ranks agree before each one
            cancelled = cancelled or JobCancelledError("the job was cancelled")
            output = ExperimentFailure.of(JobCancelledError("the job was cancelled before it ran"), 0)
        else:
            if on_experiment is not None:
                on_experiment(index, len(planned), program.name)
            started = time.time()
            try:
                output = run_experiment(program, config, comm, control)
            except JobCancelledError as exc:
                cancelled = exc
                if comm.Get_rank() == 0:
                    remove_unfinished_statevector(config.statevector_path, started)
                output = ExperimentFailure.of(exc, 0)
            except Exception as exc:
                # run_experiment raises the same error on every rank (agreed or broadcast)
                failures.append(exc)
                output = ExperimentFailure.of(exc, 0)
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
        metadata={"ranks": comm.Get_size(), "mpi": True},
    )
    if cancelled is not None:
        cancelled.result = result  # type: ignore[attr-defined]
        raise cancelled
    if failures and not any(r.success for r in results):
        raise failures[0]
    return result


def _stop_agreed(comm: Any, control: Optional[RunControl]) -> bool:
    """Collective: whether any rank's job was cancelled or got a stop signal."""
    stop = stop_requested() is not None or bool(control is not None and control.cancel_requested())
    return any(Collective(comm).allgather(stop))


def _rebuilt(failure: ExperimentFailure) -> Exception:
    """The error of a circuit run on another rank, with its type when it is one of aer_mpi's."""
    from aer_mpi.comm.collective import _same_error

    return _same_error(failure.rank, failure.kind, failure.message)
