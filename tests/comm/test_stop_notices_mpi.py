"""Idle ranks' stop requests to rank 0 (comm.StopNotices), alone, at 1, 2, 3 and 5 ranks.

The ranks beyond the largest power of two idle; here the last idle rank asks
to stop after a while, rank 0 "runs" (polls ``heard()`` as its checkpoints
do) until it hears it, then every rank finishes. Without an idle rank,
nothing is ever heard. Each round ends with every notice received: a second
round on the same ranks hears nothing left over from the first.
"""

import time

import pytest

from aer_mpi.comm import StopNotices
from conftest import MPI_TIMEOUT, RANKS_ODD, RANKS_WITH_IDLE, working_ranks


@pytest.mark.mpi(ranks=sorted(set(RANKS_WITH_IDLE + RANKS_ODD)), timeout=MPI_TIMEOUT)
def test_the_last_idle_rank_is_heard_by_rank_0_and_no_notice_is_left(comm):
    working = working_ranks(comm.size)
    idle = comm.size > working
    for asks in (True, False):
        notices = StopNotices(comm)
        if comm.rank < working:
            heard = False
            if comm.rank == 0:
                deadline = time.monotonic() + (30 if idle and asks else 0.5)
                while not heard and time.monotonic() < deadline:  # the working ranks' checkpoints
                    heard = notices.heard()
                    time.sleep(0.01)
            sent = notices.finish()
            if comm.rank == 0:
                assert heard == (idle and asks)
        else:
            start = time.monotonic()
            last = comm.rank == comm.size - 1
            sent = notices.finish(lambda: asks and last and time.monotonic() - start > 0.2)
        assert sent == (idle and asks)
        assert comm.allgather(sent) == [sent] * comm.size
