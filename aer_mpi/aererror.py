"""``from qiskit_aer.aererror import AerError`` under aer_mpi's name."""

from aer_mpi.errors import AerError

__all__ = ["AerError"]
