"""``aer_mpi.Aer``: Qiskit Aer's provider object, for code that writes ``Aer.get_backend(name)``.

Every name Aer's provider knows gives an ``AerMPISimulator`` with the options that name stands for
(``"aer_simulator_density_matrix"``: ``method="density_matrix"``; ``"qasm_simulator"``: the
default). The two legacy names save the final state of every circuit, as Aer's legacy backends do
(with one shot by default): ``"statevector_simulator"`` its statevector (``result.get_statevector()``)
and ``"unitary_simulator"`` its unitary (``result.get_unitary()``).
"""

from __future__ import annotations

from typing import Any, Optional

from qiskit.providers.exceptions import QiskitBackendNotFoundError

from aer_mpi.errors import InvalidInputError
from aer_mpi.provider.backend import AerMPISimulator

#: Aer's backend names -> the options of the simulator that stands for each.
BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    "aer_simulator": {},
    "aer_simulator_statevector": {"method": "statevector"},
    "aer_simulator_density_matrix": {"method": "density_matrix"},
    "aer_simulator_stabilizer": {"method": "stabilizer"},
    "aer_simulator_matrix_product_state": {"method": "matrix_product_state"},
    "aer_simulator_extended_stabilizer": {"method": "extended_stabilizer"},
    "aer_simulator_unitary": {"method": "unitary"},
    "aer_simulator_superop": {"method": "superop"},
    "qasm_simulator": {},
    "statevector_simulator": {"method": "statevector", "shots": 1},
    "unitary_simulator": {"method": "unitary", "shots": 1},
}


class FinalStateSimulator(AerMPISimulator):
    """An ``AerMPISimulator`` that saves each circuit's final state (Aer's legacy backends, which
    append it whatever the circuit holds; here not where a save already has its label)."""

    #: The ``QuantumCircuit`` method of the save appended.
    final_save = "save_statevector"
    #: Aer's name for this backend (``qiskit_aer.StatevectorSimulator().name``): a key of BACKEND_OPTIONS.
    aer_name = ""

    def __init__(self, comm: Any = None, processes: Optional[int] = None, **options: Any):
        # constructed directly (``from aer_mpi import StatevectorSimulator``) as through Aer.get_backend:
        # the method and one shot by default, as Aer's legacy classes
        super().__init__(comm, processes, **{**BACKEND_OPTIONS[self.aer_name], **options})
        self.name = self.aer_name

    def clear_options(self) -> None:
        """Back to this legacy backend's defaults (its method and one shot), as Aer's."""
        super().clear_options()
        self.set_options(**BACKEND_OPTIONS[self.aer_name])

    def _run(self, run_input: Any, options: dict, agree: Any) -> Any:
        from qiskit import QuantumCircuit

        import aer_mpi.library  # noqa: F401  (the save methods, when qiskit-aer did not add them)

        circuits = [run_input] if isinstance(run_input, QuantumCircuit) else run_input
        if isinstance(circuits, (list, tuple)) and all(isinstance(c, QuantumCircuit) for c in circuits):
            saved = []
            label = self.final_save[len("save_"):]
            for circuit in circuits:
                # the circuit's own save of this label, or its save_state (Aer's "_method_" label, which
                # these methods resolve to the same one), is the final state already
                if not any(getattr(i.operation, "label", None) in (label, "_method_")
                           and i.operation.name.startswith("save_") for i in circuit.data):
                    circuit = circuit.copy()
                    getattr(circuit, self.final_save)()
                saved.append(circuit)
            run_input = saved
        return super()._run(run_input, options, agree)


class StatevectorSimulator(FinalStateSimulator):
    """Aer's legacy ``statevector_simulator``: the final statevector of every circuit is saved."""

    final_save = "save_statevector"
    aer_name = "statevector_simulator"


class UnitarySimulator(FinalStateSimulator):
    """Aer's legacy ``unitary_simulator``: the unitary of every circuit is saved."""

    final_save = "save_unitary"
    aer_name = "unitary_simulator"


_FINAL_STATE_CLASSES = {"statevector_simulator": StatevectorSimulator, "unitary_simulator": UnitarySimulator}


class BackendNotFoundError(InvalidInputError, QiskitBackendNotFoundError):
    """``get_backend`` of a name Aer does not have: Qiskit's error for it, as Aer raises."""


class AerMPIProvider:
    """Backends by Aer's names (``backends()``, ``get_backend(name, **options)``); ``comm`` and
    ``processes`` go to every backend built, as to ``AerMPISimulator``."""

    def backends(self, name: Optional[str] = None, **options: Any) -> list[AerMPISimulator]:
        """The backend called ``name`` (as a list of one; none for an unknown name, as Aer), or one of each name."""
        names = [name] if name is not None else list(BACKEND_OPTIONS)
        return [self.get_backend(n, **options) for n in names if n in BACKEND_OPTIONS]

    def get_backend(self, name: str = "aer_simulator", **options: Any) -> AerMPISimulator:
        if name not in BACKEND_OPTIONS:
            raise BackendNotFoundError(f"no backend {name!r}: the names are {', '.join(map(repr, BACKEND_OPTIONS))}")
        merged = {**BACKEND_OPTIONS[name], **options}
        backend = _FINAL_STATE_CLASSES.get(name, AerMPISimulator)(**merged)
        backend.name = name  # Aer's name: what the code asked for
        return backend

    def __repr__(self) -> str:
        return "AerMPIProvider()"


#: The provider object, as ``qiskit_aer.Aer``.
Aer = AerMPIProvider()

__all__ = ["Aer", "AerMPIProvider", "BackendNotFoundError", "BACKEND_OPTIONS", "FinalStateSimulator", "StatevectorSimulator",
           "UnitarySimulator"]
