"""Error types shared by every layer.

This module imports nothing from aer_mpi (only Qiskit's base error), so any layer may raise these.
User-facing errors (bad circuits, bad options, not enough memory) derive from
``AerMPIError``; ``InternalError`` marks a broken invariant inside aer_mpi.
"""

from __future__ import annotations

from qiskit.exceptions import QiskitError


class AerMPIError(QiskitError):
    """Base class of every error aer_mpi raises on purpose.

    A ``QiskitError``, as Aer's ``AerError`` is, so ``except QiskitError:`` in code written for Aer
    catches it; its text is the message itself (QiskitError's ``str`` quotes it)."""

    def __init__(self, *message: object):
        super().__init__(*(str(part) for part in message))

    def __str__(self) -> str:
        return Exception.__str__(self)


#: Aer's name for its errors' base class, for ``except AerError:`` in code written for Aer.
AerError = AerMPIError


class InvalidInputError(AerMPIError, ValueError):
    """A circuit, option or file that aer_mpi cannot run; the message says what to change."""


class CheckpointError(InvalidInputError):
    """A checkpoint directory that cannot be resumed from (another job, damaged, unsafe): docs/checkpoint.md."""


class QobjValidationError(AerMPIError, ValueError):
    """The Qobj does not validate; the message names the field and what is wrong."""


class InsufficientMemoryError(AerMPIError, MemoryError):
    """The run would not fit in the memory available to each rank."""


class RankFailedError(AerMPIError):
    """An exception raised on one rank, re-raised identically on every rank.

    ``rank`` is the rank that failed first and ``message`` its error text, so
    that a job in ERROR names the rank and the cause.
    """

    def __init__(self, rank: int, kind: str, message: str):
        super().__init__(f"rank {rank}: {kind}: {message}")
        self.rank = rank
        self.kind = kind
        self.message = message  # (after QiskitError's, which is the whole text)

    def __reduce__(self):
        return (RankFailedError, (self.rank, self.kind, self.message))


class JobCancelledError(AerMPIError):
    """A running job was cancelled; every rank stopped at the same stage."""


class InternalError(AerMPIError, RuntimeError):
    """An invariant inside aer_mpi was broken; please report it."""


class WorkerStartError(AerMPIError, RuntimeError):
    """The worker processes of ``AerMPISimulator(processes=P)`` could not be started."""


class WorkerLostError(AerMPIError, RuntimeError):
    """A worker process died during a job (killed, crashed, out of memory).

    ``rank`` is the worker rank that was lost (None when it cannot be told);
    the job ends in ERROR and the user's process carries on.
    """

    def __init__(self, rank, message: str):
        self.rank = rank
        super().__init__(message)

    def __reduce__(self):
        return (WorkerLostError, (self.rank, str(self)))


class RankMissingError(AerMPIError, RuntimeError):
    """Under mpiexec (SPMD), a rank did not come to ``run()``: it ended, or skipped the call.

    ``rank`` is the missing rank (the lowest one when several are).
    """

    def __init__(self, rank, message: str):
        self.rank = rank
        super().__init__(message)
