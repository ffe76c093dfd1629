"""``from qiskit_aer.jobs import AerJob`` under aer_mpi's name: aer_mpi's own AerJob."""

from aer_mpi.provider.job import AerJob

__all__ = ["AerJob"]
