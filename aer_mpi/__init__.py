"""aer_mpi: a Qiskit statevector simulator sharded across MPI ranks.

Importing this package does not start MPI; the backend does when it needs to.
"""

from aer_mpi._version import __version__
from aer_mpi.errors import (
    AerMPIError,
    InsufficientMemoryError,
    InvalidInputError,
    JobCancelledError,
    QobjValidationError,
    RankFailedError,
    WorkerLostError,
    WorkerStartError,
)
from aer_mpi.qobj.model import Qobj

__all__ = [
    "AerJob",
    "AerMPIError",
    "AerMPISimulator",
    "InsufficientMemoryError",
    "InvalidInputError",
    "JobCancelledError",
    "Qobj",
    "QobjValidationError",
    "RankFailedError",
    "WorkerLostError",
    "WorkerStartError",
    "__version__",
]


def __getattr__(name: str):
    # Qiskit-dependent classes load on first use, keeping `import aer_mpi` light.
    if name == "AerMPISimulator":
        from aer_mpi.provider.backend import AerMPISimulator

        return AerMPISimulator
    if name == "AerJob":
        from aer_mpi.provider.job import AerJob

        return AerJob
    raise AttributeError(f"module 'aer_mpi' has no attribute {name!r}")
