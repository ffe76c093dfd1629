"""Small collectives that keep every rank in step, errors included.

Every collective the engine makes on small data goes through ``Collective``:
each rank contributes either a value or the exception it hit, and if any
rank failed, every rank raises the same ``RankFailedError`` (the lowest
failing rank's). So an error on one rank never leaves another waiting; a
rank that stops altogether is caught by ``comm.watchdog`` (every call here
is bounded).
"""

from __future__ import annotations

import time
from typing import Any, Optional

from aer_mpi.comm.watchdog import bounded
from aer_mpi.errors import AerMPIError, JobCancelledError, RankFailedError


def _describe(error: BaseException) -> tuple[str, str]:
    if isinstance(error, RankFailedError):
        return error.kind, error.message
    return type(error).__name__, str(error)


class Collective:
    """Error-agreeing collectives over one communicator."""

    def __init__(self, comm: Any):
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        #: Seconds spent inside these collectives (waiting included).
        self.seconds = 0.0

    def allgather(self, value: Any, error: Optional[BaseException] = None) -> list[Any]:
        """Gather ``value`` from every rank to every rank, or raise everywhere.

        A rank that hit an exception passes it as ``error``; then every rank
        raises ``RankFailedError`` naming the first such rank. Cancellation
        is re-raised as ``JobCancelledError`` so that it is not reported as
        a failure.
        """
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt and the like: do not swallow
        if error is None and self.size == 1:
            return [value]  # nothing to wait for (a noisy run on one rank meets here per Kraus error)
        packet = (None if error is None else _describe(error), None if error is not None else value)
        start = time.perf_counter()
        with bounded(self.comm, "allgather"):
            packets = self.comm.allgather(packet)
        self.seconds += time.perf_counter() - start
        for rank, (failure, _) in enumerate(packets):
            if failure is not None:
                kind, message = failure
                if kind == JobCancelledError.__name__:
                    raise _agreed(JobCancelledError(message))
                if rank == self.rank and isinstance(error, AerMPIError) and not isinstance(
                    error, RankFailedError
                ):
                    # Keep the original type on the rank that raised it, and
                    # give the others the same type when it is a user error.
                    raise _agreed(error)
                raise _agreed(_same_error(rank, kind, message))
        return [value for _, value in packets]

    def agree(self, error: Optional[BaseException] = None) -> None:
        """A barrier that raises everywhere if any rank brings an error."""
        self.allgather(None, error)

    def bcast(self, value: Any, root: int = 0) -> Any:
        if self.size == 1:
            return value  # (mpi4py would pickle it all the same: an experiment's outcome, every run)
        with bounded(self.comm, f"bcast from rank {root}"):
            return self.comm.bcast(value, root=root)

    def sum_in_rank_order(self, value: float, error: Optional[BaseException] = None) -> float:
        """Sum of one float per rank, added in rank order on every rank.

        Every rank computes the identical sum (bitwise), unlike a plain
        Allreduce whose order may differ per rank.
        """
        total = 0.0
        for part in self.allgather(value, error):
            total += part
        return total

    def gather_to_root(self, value: Any, root: int = 0) -> Optional[list[Any]]:
        if self.size == 1:
            return [value]
        with bounded(self.comm, f"gather to rank {root}"):
            return self.comm.gather(value, root=root)


def _agreed(error: Exception) -> Exception:
    """Mark an error every rank is raising, so no rank reports it again."""
    error._agreed = True  # type: ignore[attr-defined]
    return error


def _same_error(rank: int, kind: str, message: str) -> Exception:
    """Rebuild a user error with its own type so every rank raises alike."""
    from aer_mpi import errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, AerMPIError) and cls not in (
        RankFailedError,
        errors.InternalError,
    ):
        try:
            return cls(message)
        except TypeError:
            pass
    return RankFailedError(rank, kind, message)



def ranks_on_this_node(comm: Any) -> int:
    """How many ranks of ``comm`` share this node's memory."""
    from mpi4py import MPI

    with bounded(comm, "the ranks on this node"):
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()
