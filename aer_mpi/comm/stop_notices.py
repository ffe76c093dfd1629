"""Stop requests from the ranks that idle during a run, heard by rank 0 at its checkpoints.

Promise of this module: mpi4py only. On P ranks that are not a power of
two, the ranks beyond the largest power of two idle while the others run
one experiment; they take no part in the working ranks' checkpoints. With
``StopNotices`` an idle rank still stops the run: it waits for the working
ranks without blocking (a non-blocking barrier it tests every few
milliseconds), and when its ``stop_requested()`` says so (its job was
cancelled, a signal reached it) it sends rank 0 a notice once. Rank 0's
``heard()``, called at each of its meetings, probes for such a notice;
the meeting then agrees on the stop among the working ranks as for any
other cancel. ``finish()`` receives exactly the notices that were sent, so
no message outlives the run.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from aer_mpi.comm.watchdog import bounded

#: Tag of the notices (on the notices' own duplicate communicator).
STOP_TAG = 13
#: Seconds between an idle rank's tests of the barrier and of its stop request.
POLL_SECONDS = 0.005


class StopNotices:
    """Idle ranks' stop requests to rank 0, over a duplicate of ``comm`` (collective to build)."""

    def __init__(self, comm: Any):
        from mpi4py import MPI

        self.any_source = MPI.ANY_SOURCE
        with bounded(comm, "the idle ranks' stop notices"):
            self.comm = comm.Dup()  # its own matching space: a notice meets no other message
        self.rank = self.comm.Get_rank()
        self._heard: Any = False
        self._received: set[int] = set()
        self._sent: Optional[Any] = None

    def heard(self) -> Any:
        """Rank 0: the first notice an idle rank sent (what its ``stop_requested`` returned: why it asks
        to stop), or False; a non-blocking probe, and the notice stays heard."""
        from mpi4py import MPI

        if not self._heard:
            status = MPI.Status()
            if self.comm.Iprobe(source=self.any_source, tag=STOP_TAG, status=status):
                source = status.Get_source()
                self._heard = self.comm.recv(source=source, tag=STOP_TAG)
                self._received.add(source)
        return self._heard

    def finish(self, stop_requested: Optional[Callable[[], Any]] = None) -> bool:
        """Collective: wait for every rank, then drain the notices; True when one was sent.

        An idle rank calls it at once with its ``stop_requested`` and, while
        the working ranks run, sends rank 0 a notice (the value, which says
        why) the first time that returns a true value. A working rank calls
        it when its run has ended.
        """
        barrier = self.comm.Ibarrier()
        if stop_requested is None:
            barrier.Wait()
        else:
            while not barrier.Test():
                if self._sent is None and self.rank != 0:
                    why = stop_requested()
                    if why:
                        self._sent = self.comm.isend(why, dest=0, tag=STOP_TAG)
                time.sleep(POLL_SECONDS)
        with bounded(self.comm, "the stop notices"):
            senders = self.comm.allgather(self._sent is not None)
        if self.rank == 0:
            for rank, sent in enumerate(senders):
                if sent and rank not in self._received:
                    self.comm.recv(source=rank, tag=STOP_TAG)
        if self._sent is not None:
            self._sent.wait()
        self.comm.Free()
        return any(senders)
