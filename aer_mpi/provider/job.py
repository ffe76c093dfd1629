"""AerJob: the seed API (qiskit.providers.aer.AerJob), hosted on rank 0.

One class-wide executor with a single worker runs jobs in submission order,
so QUEUED means "waiting behind another job" and RUNNING is real. A running
job is cancelled cooperatively: ``cancel()`` raises a flag that the engine
reads at its next checkpoint, on every rank at once.
"""

from __future__ import annotations

import threading
import time
import warnings
from concurrent import futures
from typing import Any, Callable, Optional

from qiskit.providers import JobError, JobStatus, JobTimeoutError, JobV1
from qiskit.providers.jobstatus import JOB_FINAL_STATES

from aer_mpi.errors import InvalidInputError, JobCancelledError

#: How often a waiting ``result()`` wakes the main thread (so signal handlers run).
WAKE_SECONDS = 0.2


#: Seconds ``result()`` waits, after Ctrl-C cancelled the job, for it to stop.
INTERRUPT_WAIT = 10.0


class AerJob(JobV1):
    """AerJob class."""

    #: executor to handle asynchronous jobs
    _executor: futures.Executor = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="aer_mpi-job")

    def __init__(self, backend: Any, job_id: str, fn: Callable, qobj: Any, *args: Any):
        """Initializes the asynchronous job.

        Args:
            backend: the backend used to run the job.
            job_id: a unique id in the context of the backend used to run the job.
            fn: called as ``fn(qobj, job_id, *args)`` on the executor; returns the Result.
            qobj: the Qobj to run.
            args: further positional arguments for ``fn``.
        """
        super().__init__(backend, job_id)
        self._fn = fn
        self._qobj = qobj
        self._circuits: list = []  # set by AerMPISimulator.run
        self._args = args
        self._future: Optional[futures.Future] = None
        self._cancel_event = threading.Event()
        self._checkpoint_event = threading.Event()
        self._refusal: Optional[BaseException] = None
        #: ``notes(result)``: warnings for the user, issued once, by ``result()`` in the caller's thread
        #: (a warning raised in the job's thread would not reach the caller's filters).
        self.notes: Optional[Callable[[Any], list]] = None

    @classmethod
    def refused(cls, backend: Any, job_id: str, error: BaseException) -> "AerJob":
        """A job that ``run()`` refused before it started (Aer's ``run()`` raises nothing either):
        its status is ERROR and ``result()`` raises ``error``."""
        job = cls(backend, job_id, None, None)
        job._future = futures.Future()
        job._future.set_exception(error)
        job._refusal = error
        return job

    def refusal(self) -> Optional[BaseException]:
        """Why ``run()`` refused this job before it started (None: it was submitted)."""
        return self._refusal

    # The engine polls this (on rank 0) at its checkpoints.
    def cancel_requested(self) -> bool:
        return self._cancel_event.is_set()

    def submit(self) -> None:
        """Submit the job to the backend for execution.

        Raises:
            QobjValidationError: if the Qobj does not validate.
            JobError: if trying to re-submit the job.
        """
        if self._future is not None:
            raise JobError("We have already submitted the job!")
        self._qobj.validate()
        self._future = self._executor.submit(self._fn, self._qobj, self._job_id, *self._args)

    def result(self, timeout: Optional[float] = None) -> Any:
        """Get job result.

        Raises:
            concurrent.futures.TimeoutError: if timeout occurred.
            concurrent.futures.CancelledError: if job cancelled before completed.
        """
        self._require_submitted()
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or timeout != timeout):
            raise InvalidInputError(f"result(timeout={timeout!r}): expecting a number of seconds, or None to wait "
                                    f"until the job ends")
        try:
            result = self._wait(timeout)
        except JobCancelledError as exc:
            raise futures.CancelledError(str(exc)) from exc
        except KeyboardInterrupt:
            # Ctrl-C while waiting: cancel the job (on every rank: under mpiexec each
            # rank gets the SIGINT) rather than let it run on, then let Ctrl-C go on.
            self.cancel()
            futures.wait([self._future], timeout=INTERRUPT_WAIT)
            raise
        notes, self.notes = self.notes, None
        for message in notes(result) if notes is not None else ():
            warnings.warn(message, UserWarning, stacklevel=2)
        return result

    def _wait(self, timeout: Optional[float]) -> Any:
        """The future's result, waking every WAKE_SECONDS: a signal delivered to another thread
        (MPI's, the job's) only runs its Python handler when the main thread wakes, and a
        SIGTERM or SIGUSR1 must reach the job within seconds, not when it ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = WAKE_SECONDS if deadline is None else min(WAKE_SECONDS, max(0.0, deadline - time.monotonic()))
            try:
                return self._future.result(timeout=wait)
            except futures.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def cancel(self, checkpoint: bool = False) -> bool:
        """Attempt to cancel the job.

        A queued job is cancelled at once; a running one stops when its ranks
        next meet. ``checkpoint=True``: a job run with ``checkpoint_dir``
        writes a checkpoint first (docs/checkpoint.md), to be resumed by
        running it again with the same directory. Returns False when the job
        has already finished.
        """
        if self._future is None:
            return False
        if self._future.cancel():
            return True
        if self._future.done():
            return False
        if checkpoint:
            self._checkpoint_event.set()
        self._cancel_event.set()
        return True

    def checkpoint_requested(self) -> bool:
        return self._checkpoint_event.is_set()

    def status(self) -> JobStatus:
        """Gets the status of the job by querying the Python's future.

        Raises:
            JobError: If the future is in unexpected state
        """
        if self._future is None:
            return JobStatus.INITIALIZING
        if self._future.running():
            return JobStatus.RUNNING
        if self._future.cancelled():
            return JobStatus.CANCELLED
        if self._future.done():
            error = self._future.exception(timeout=0)
            if error is None:
                return JobStatus.DONE
            if isinstance(error, JobCancelledError):
                return JobStatus.CANCELLED
            return JobStatus.ERROR
        if not self._future.done():
            return JobStatus.QUEUED
        raise JobError(f"Unexpected behavior of {self.__class__.__name__}")

    def error_message(self) -> Optional[str]:
        """The error that ended the job, or None."""
        if self._future is None or not self._future.done() or self._future.cancelled():
            return None
        error = self._future.exception(timeout=0)
        return None if error is None else str(error)

    def backend(self) -> Any:
        """Return the instance of the backend used for this job."""
        return self._backend

    def circuits(self) -> list:
        """The circuits submitted for this job (as Aer's ``AerJob.circuits()``)."""
        return self._circuits

    def qobj(self) -> Any:
        """Return the Qobj submitted for this job."""
        return self._qobj

    def running(self) -> bool:
        """Return whether the job is actively running."""
        return self.status() == JobStatus.RUNNING

    def done(self) -> bool:
        """Return whether the job has successfully run."""
        return self.status() == JobStatus.DONE

    def cancelled(self) -> bool:
        """Return whether the job has been cancelled."""
        return self.status() == JobStatus.CANCELLED

    def in_final_state(self) -> bool:
        """Return whether the job is in a final job state such as ``DONE`` or ``ERROR``."""
        return self.status() in JOB_FINAL_STATES

    def wait_for_final_state(
        self, timeout: Optional[float] = None, wait: float = 5, callback: Optional[Callable] = None
    ) -> None:
        """Poll the job status until it progresses to a final state such as ``DONE`` or ``ERROR``.

        Args:
            timeout: Seconds to wait for the job. If ``None``, wait indefinitely.
            wait: Seconds between queries.
            callback: called after each query as ``callback(job_id, job_status, job)``.

        Raises:
            JobTimeoutError: If the job does not reach a final state before the specified timeout.
        """
        start = time.monotonic()
        status = self.status()
        while status not in JOB_FINAL_STATES:
            elapsed = time.monotonic() - start
            if timeout is not None and elapsed >= timeout:
                raise JobTimeoutError(f"Timeout while waiting for job {self.job_id()}.")
            if callback is not None:
                callback(self.job_id(), status, self)
            pause = wait if timeout is None else min(wait, max(0.0, timeout - elapsed))
            if self._future is not None:
                futures.wait([self._future], timeout=pause)
            else:
                time.sleep(pause)
            status = self.status()

    def _require_submitted(self) -> None:
        if self._future is None:
            raise JobError("Job not submitted yet!. You have to .submit() first!")
