"""SPMD agreement before every ``run()``: the same circuits and options on every rank, or one clear error.

Under ``mpiexec`` every rank calls ``run()``. Before the job is submitted,
each rank sends rank 0 a fingerprint of its Qobj (a hash of its config and
experiments; a seed drawn because it was left None, the Qobj id and the
circuit names are left out) or the error its ``run()`` raised; rank 0 sends
every rank the verdict. So every rank raises the same error when one rank's
``run()`` failed before any collective (a bad option on rank 1 only), or
when the ranks submitted different circuits or options.

Nothing here blocks without a deadline: the messages are polled
(``Iprobe``) until ``AER_MPI_AGREE_TIMEOUT`` seconds (default 60) have
passed. A rank that never comes (it skipped the call, or its script ended)
makes the others raise ``RankMissingError`` naming it: at once when it ended
(its ``atexit`` sends a notice), else after the timeout (rank 0), or twice
the timeout (the other ranks, which wait for rank 0's verdict).
The messages travel on a duplicate of the backend's communicator, so they
never meet a running job's messages; the jobs run on another duplicate
(``job_comm``), so they never meet the script's own messages either.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import time
from typing import Any, Optional

from aer_mpi import environment
from aer_mpi.errors import InvalidInputError, RankMissingError
from aer_mpi.comm.watchdog import bounded

#: Seconds rank 0 waits for every rank to come to ``run()`` (``AER_MPI_AGREE_TIMEOUT``).
DEFAULT_AGREE_TIMEOUT = float(environment.VARIABLES["AER_MPI_AGREE_TIMEOUT"].default)
#: Seconds between two polls.
POLL_SECONDS = 0.001
_TAG_BASE = 1000
_TAG_SPAN = 10000


def agree_timeout() -> float:
    """``AER_MPI_AGREE_TIMEOUT`` in seconds, else ``DEFAULT_AGREE_TIMEOUT``; a bad value is an InvalidInputError."""
    return environment.seconds("AER_MPI_AGREE_TIMEOUT")


def fingerprint(qobj: Any, seed_drawn: bool) -> str:
    """A hash of what a rank submitted; a seed drawn at random, ids and circuit names left out."""
    config = dict(qobj.config)
    if seed_drawn:
        config.pop("seed_simulator", None)
    experiments = []
    for experiment in qobj.experiments:
        header = {k: v for k, v in experiment.header.items() if k != "name"}
        experiments.append({"header": header, "config": experiment.config, "instructions": experiment.instructions})
    text = json.dumps({"config": config, "experiments": experiments}, sort_keys=True, default=_encode)
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return ["ndarray", str(value.dtype), list(value.shape), hashlib.sha256(value.tobytes()).hexdigest()]
    if isinstance(value, (complex, np.complexfloating)):
        return ["complex", float(value.real), float(value.imag)]
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


_SHARED: dict = {}


def agreement_for(comm: Any) -> "RunAgreement":
    """The agreement of ``comm``'s ranks, shared by every backend on it (one duplicate communicator,
    however many backends a script builds; the rounds stay in step because every rank calls
    ``run()`` in the same order). Collective the first time."""
    from mpi4py import MPI

    group, world = comm.Get_group(), MPI.COMM_WORLD.Get_group()
    try:
        members = tuple(MPI.Group.Translate_ranks(group, list(range(group.Get_size())), world))
    finally:
        group.Free()
        world.Free()
    key = (comm.py2f(), members)  # a handle reused by another communicator of other ranks is another key
    agreement = _SHARED.get(key)
    if agreement is None:
        agreement = _SHARED[key] = RunAgreement(comm)
    return agreement


class RunAgreement:
    """The agreement of one communicator's ranks, one round per ``run()``."""

    def __init__(self, comm: Any):
        # collective: a rank that ended or stopped before building its backend is waited for at most
        # AER_MPI_WAIT_TIMEOUT (comm/watchdog.py), as every other wait
        with bounded(comm, "every rank building its AerMPISimulator (a rank ended or stopped before it)"):
            self.comm = comm.Dup()
        #: What the jobs of this communicator's backends run on: a job runs in a thread, and the
        #: script's own collectives on ``comm`` meanwhile (an ``allgather`` while it waits for the
        #: job) must never be matched with the job's (MPICH aborted with "Message truncated").
        with bounded(comm, "every rank building its AerMPISimulator"):
            self.job_comm = comm.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.calls = 0
        self._sends: list = []
        self._left = False
        atexit.register(self._leave)

    def _tags(self) -> tuple[int, int]:
        submit = _TAG_BASE + 2 * (self.calls % _TAG_SPAN)
        return submit, submit + 1

    def agree(self, fingerprint_: Optional[str], error: Optional[BaseException] = None) -> None:
        """Collective with a deadline: raise the same error on every rank, or return on every rank."""
        submit, verdict_tag = self._tags()
        self.calls += 1
        mine = ("error", type(error).__name__, str(error)) if error is not None else ("ok", fingerprint_)
        timeout = agree_timeout()
        if self.rank == 0:
            verdict = self._collect(mine, submit, timeout)
            for rank in range(1, self.size):
                self._send(verdict, rank, verdict_tag)
        else:
            self._send(mine, 0, submit)
            verdict = self._wait(0, verdict_tag, 2 * timeout)
            if verdict is None:
                verdict = ("missing", 0, f"rank 0 gave no answer within {2 * timeout:g} s: it (or a rank it "
                           "waits for) did not call run(); every rank must call run() in the same order "
                           "(AER_MPI_AGREE_TIMEOUT)")
        self._prune()
        self._raise(verdict, error)

    def _collect(self, mine: tuple, tag: int, timeout: float) -> tuple:
        packets: dict[int, tuple] = {0: mine}
        deadline = time.monotonic() + timeout
        while len(packets) < self.size:
            for rank in range(1, self.size):
                if rank not in packets and self.comm.Iprobe(source=rank, tag=tag):
                    packets[rank] = self.comm.recv(source=rank, tag=tag)
            if len(packets) < self.size:
                if time.monotonic() > deadline:
                    break
                time.sleep(POLL_SECONDS)
        for rank in range(self.size):
            packet = packets.get(rank)
            if packet is None:
                return ("missing", rank, f"rank {rank} did not call run() within {timeout:g} s "
                        "(AER_MPI_AGREE_TIMEOUT): every rank must call run() in the same order")
            if packet[0] == "left":
                return ("missing", rank, f"rank {rank} has ended ({packet[1]}) and cannot run this job: "
                        "every rank must call run() in the same order")
        for rank in range(self.size):
            if packets[rank][0] == "error":
                return ("error", rank, packets[rank][1], packets[rank][2])
        differ = [rank for rank in range(1, self.size) if packets[rank][1] != mine[1]]
        if differ:
            return ("differ", differ[0], f"the ranks submitted different circuits or options to run(): "
                    f"{'ranks' if len(differ) > 1 else 'rank'} {', '.join(map(str, differ))} "
                    f"{'differ' if len(differ) > 1 else 'differs'} from rank 0; "
                    "every rank must call run() with the same circuits and options (only a seed left None may "
                    "differ); transpile() may pick different but equivalent gates on each process: transpile on "
                    "rank 0 and share the result (circuits = comm.bcast(transpile(...) if comm.rank == 0 else None))")
        return ("ok",)

    def _wait(self, source: int, tag: int, timeout: float) -> Optional[tuple]:
        deadline = time.monotonic() + timeout
        while not self.comm.Iprobe(source=source, tag=tag):
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_SECONDS)
        packet = self.comm.recv(source=source, tag=tag)
        if packet[0] == "left":
            return ("missing", source, f"rank {source} has ended ({packet[1]}) and cannot run this job")
        return packet

    def _raise(self, verdict: tuple, error: Optional[BaseException]) -> None:
        from aer_mpi.comm.collective import _same_error

        if verdict[0] == "ok":
            return
        if verdict[0] == "missing":
            raise RankMissingError(verdict[1], verdict[2])
        if verdict[0] == "differ":
            raise InvalidInputError(verdict[2])
        _, rank, kind, message = verdict
        if rank == self.rank and error is not None:
            raise error
        raise _same_error(rank, kind, message)

    def _send(self, packet: tuple, dest: int, tag: int) -> None:
        self._sends.append(self.comm.isend(packet, dest=dest, tag=tag))

    def _prune(self) -> None:
        self._sends = [request for request in self._sends if not request.Test()]

    def _leave(self) -> None:
        """At exit: tell the others this rank is gone, so a ``run()`` they are in fails at once."""
        if self._left:
            return
        self._left = True
        try:
            from mpi4py import MPI

            if MPI.Is_finalized():
                return
            submit, verdict_tag = self._tags()
            note = ("left", "its script ended or called sys.exit()")
            if self.rank == 0:
                for rank in range(1, self.size):
                    self._send(note, rank, verdict_tag)
            else:
                self._send(note, 0, submit)
            deadline = time.monotonic() + 0.5
            while self._sends and time.monotonic() < deadline:
                self._prune()
                time.sleep(POLL_SECONDS)
        except Exception:
            pass
