"""aer_mpi's own instructions, so that circuits need no qiskit-aer.

They carry the same names as Aer's, so the engine treats both alike, and a
circuit built for Aer runs unchanged.
"""

from __future__ import annotations

from qiskit.circuit import Instruction, QuantumCircuit


class SaveStatevector(Instruction):
    """Save the statevector at this point, under ``label`` (gathered to rank 0)."""

    _directive = True

    def __init__(self, num_qubits: int, label: str = "statevector", pershot: bool = False):
        super().__init__("save_statevector", num_qubits, 0, [], label=label)
        self._label = label
        self._subtype = "list" if pershot else "single"


def save_statevector(circuit: QuantumCircuit, label: str = "statevector", pershot: bool = False) -> QuantumCircuit:
    """Append a SaveStatevector over all of ``circuit``'s qubits, and return the circuit."""
    circuit.append(SaveStatevector(circuit.num_qubits, label=label, pershot=pershot), circuit.qubits)
    return circuit


__all__ = ["SaveStatevector", "save_statevector"]
