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
from aer_mpi.engine import RunControl, run_experiment
from aer_mpi.qobj.model import Qobj
from aer_mpi.service.plan_jobs import share_plan
from aer_mpi.service.results import experiment_result
from aer_mpi.service.small_circuits import run_small_experiments

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
    """
    from qiskit.result import Result

    start = time.perf_counter()
    plan = share_plan(qobj, comm)
    planned = plan.experiments
    results = []
    # Circuits too small to shard run whole, several ranks at a time (small_circuits.py).
    parallel = run_small_experiments(planned, comm, control, on_experiment)
    for index, (program, config, header) in enumerate(planned):
        if index in parallel:
            output = parallel[index]
        else:
            if on_experiment is not None:
                on_experiment(index, len(planned), program.name)
            output = run_experiment(program, config, comm, control)
        results.append(experiment_result(output, header, config, program.metadata))
    return Result(
        backend_name=BACKEND_NAME,
        backend_version=__version__,
        qobj_id=plan.qobj_id,
        job_id=job_id,
        success=True,
        results=results,
        date=datetime.datetime.now().isoformat(),
        status="COMPLETED",
        header=dict(plan.header),
        time_taken=time.perf_counter() - start,
        metadata={"ranks": comm.Get_size(), "mpi": True},
    )
