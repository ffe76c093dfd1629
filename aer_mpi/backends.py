"""``from qiskit_aer.backends import AerSimulator`` (and Aer's legacy backends) under aer_mpi's name:
aer_mpi's backends."""

from aer_mpi.provider.aer_provider import StatevectorSimulator, UnitarySimulator
from aer_mpi.provider.backend import AerMPISimulator

AerSimulator = QasmSimulator = AerMPISimulator

__all__ = ["AerMPISimulator", "AerSimulator", "QasmSimulator", "StatevectorSimulator", "UnitarySimulator"]
