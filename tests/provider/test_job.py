"""AerJob against the seed API, with a fake job function (no MPI, no engine)."""

import threading
import time
from concurrent import futures

import pytest
from qiskit.providers import JobError, JobStatus, JobTimeoutError

from aer_mpi.errors import InvalidInputError, JobCancelledError
from aer_mpi.provider.job import AerJob
from aer_mpi.errors import QobjValidationError
from aer_mpi.qobj import Qobj, QobjExperiment

WAIT = 30  # seconds: generous bound for anything that should happen at once


def make_qobj(shots=10):
    experiment = QobjExperiment(
        header={"n_qubits": 1, "memory_slots": 1, "name": "x"},
        instructions=[{"name": "x", "qubits": [0]}, {"name": "measure", "qubits": [0], "memory": [0]}],
    )
    return Qobj.new(config={"shots": shots, "seed_simulator": 1}, experiments=[experiment])


class Gate:
    """A fake job function that blocks until released, and can honour a cancel."""

    def __init__(self, result="result", error=None):
        self.started = threading.Event()
        self.release = threading.Event()
        self.result = result
        self.error = error
        self.calls = []

    def __call__(self, qobj, job_id, *args):
        self.calls.append((qobj, job_id, args))
        self.started.set()
        job = args[0] if args else None
        while not self.release.wait(0.01):
            if job is not None and job.cancel_requested():
                raise JobCancelledError("the job was cancelled")
        if self.error is not None:
            raise self.error
        return self.result


def submitted(fn, qobj=None, job_id="job", with_self=False):
    job = AerJob("backend", job_id, fn, qobj or make_qobj())
    if with_self:  # the fake polls the job's cancel flag, as the engine does through RunControl
        job._args = (job,)
    job.submit()
    return job


def test_constructor_accessors_and_executor():
    qobj = make_qobj()
    job = AerJob("the-backend", "id-1", lambda q, j: "r", qobj)
    assert isinstance(AerJob._executor, futures.Executor)
    assert job.backend() == "the-backend"
    assert job.job_id() == "id-1"
    assert job.qobj() is qobj
    assert job.status() == JobStatus.INITIALIZING
    with pytest.raises(JobError):
        job.result()
    job.submit()
    assert job.result(timeout=WAIT) == "r"
    assert job.status() == JobStatus.DONE and job.done() and job.in_final_state()
    assert not job.running() and not job.cancelled()


def test_fn_gets_qobj_job_id_and_args():
    seen = []
    job = AerJob("b", "id-2", lambda q, j, a, b: seen.append((q, j, a, b)) or "ok", make_qobj(), 1, "two")
    job.submit()
    assert job.result(timeout=WAIT) == "ok"
    assert seen == [(job.qobj(), "id-2", 1, "two")]


def test_running_queued_then_timeout_does_not_harm_the_job():
    first = Gate(result="first")
    second = Gate(result="second")
    job1 = submitted(first, job_id="1")
    assert first.started.wait(WAIT)
    job2 = submitted(second, job_id="2")
    assert job1.status() == JobStatus.RUNNING and job1.running()
    assert job2.status() == JobStatus.QUEUED  # waiting behind job1 on the one executor thread
    with pytest.raises(futures.TimeoutError):
        job1.result(timeout=0.05)
    assert job1.status() == JobStatus.RUNNING  # the timed-out wait left it alone
    first.release.set()
    second.release.set()
    assert job1.result(timeout=WAIT) == "first"  # awaited again after a timeout
    assert job2.result(timeout=WAIT) == "second"


def test_cancel_queued_job_raises_cancelled_error():
    blocker = Gate()
    job1 = submitted(blocker, job_id="1")
    assert blocker.started.wait(WAIT)
    never = Gate()
    job2 = submitted(never, job_id="2")
    assert job2.cancel() is True
    assert job2.status() == JobStatus.CANCELLED and job2.cancelled() and job2.in_final_state()
    with pytest.raises(futures.CancelledError):
        job2.result(timeout=WAIT)
    blocker.release.set()
    assert job1.result(timeout=WAIT) == "result"
    assert never.calls == []  # a cancelled queued job never runs
    assert job1.cancel() is False  # finished jobs cannot be cancelled


def test_cancel_running_job_is_cooperative():
    gate = Gate()
    job = submitted(gate, with_self=True)
    assert gate.started.wait(WAIT)
    assert job.cancel() is True
    job.wait_for_final_state(timeout=WAIT, wait=0.01)
    assert job.status() == JobStatus.CANCELLED
    with pytest.raises(futures.CancelledError):
        job.result()
    # the executor goes on with the next job
    assert submitted(lambda q, j: "next").result(timeout=WAIT) == "next"


def test_second_submit_raises_job_error():
    job = submitted(lambda q, j: 1)
    with pytest.raises(JobError, match="already submitted"):
        job.submit()
    assert job.result(timeout=WAIT) == 1


def test_error_status_when_fn_raises():
    job = submitted(Gate(error=InvalidInputError("bad thing: do this instead")))
    job._fn.release.set()
    job.wait_for_final_state(timeout=WAIT, wait=0.01)
    assert job.status() == JobStatus.ERROR and job.in_final_state() and not job.done()
    assert "bad thing" in job.error_message()
    with pytest.raises(InvalidInputError, match="bad thing"):
        job.result()


def test_qobj_validation_error_at_submit():
    job = AerJob("b", "id", lambda q, j: 1, make_qobj(shots=-1))
    with pytest.raises(QobjValidationError, match="shots"):
        job.submit()
    assert job.status() == JobStatus.INITIALIZING  # nothing was queued


def test_wait_for_final_state_timeout_and_callback():
    gate = Gate()
    job = submitted(gate)
    assert gate.started.wait(WAIT)
    calls = []
    with pytest.raises(JobTimeoutError):
        job.wait_for_final_state(timeout=0.2, wait=0.05, callback=lambda *a: calls.append(a))
    assert calls and all(c[0] == job.job_id() and c[1] == JobStatus.RUNNING and c[2] is job for c in calls)
    gate.release.set()
    start = time.monotonic()
    job.wait_for_final_state(timeout=WAIT, wait=0.05)
    assert job.status() == JobStatus.DONE and time.monotonic() - start < WAIT


def test_result_timeout_must_be_a_number():
    """result(timeout="5") raised a bare TypeError from inside the wait, and timeout=True waited 1 s."""
    import numpy as np
    from mpi4py import MPI
    from qiskit import QuantumCircuit

    from aer_mpi import AerMPISimulator, InvalidInputError

    qc = QuantumCircuit(1)
    qc.h(0)
    qc.measure_all()
    job = AerMPISimulator(comm=MPI.COMM_SELF).run(qc, shots=5)
    for bad in ("5", True, float("nan")):
        with pytest.raises(InvalidInputError, match="expecting a number of seconds"):
            job.result(timeout=bad)
    assert sum(job.result(timeout=np.float64(60)).get_counts().values()) == 5
