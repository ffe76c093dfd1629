"""aer_mpi: a Qiskit statevector simulator sharded across MPI ranks.

Importing this package does not start MPI; the backend does when it needs to.
"""

from aer_mpi._version import __version__

#: The error types, loaded on first use: they are QiskitErrors (as Aer's), and importing Qiskit is slow.
_ERRORS = ("AerError", "AerMPIError", "InsufficientMemoryError", "InvalidInputError", "JobCancelledError",
           "QobjValidationError", "RankFailedError", "WorkerLostError", "WorkerStartError")

__all__ = [
    "Aer",
    "AerError",
    "AerJob",
    "AerMPIError",
    "AerMPISimulator",
    "AerProvider",
    "AerSimulator",
    "InsufficientMemoryError",
    "InvalidInputError",
    "JobCancelledError",
    "QasmSimulator",
    "Qobj",
    "QobjValidationError",
    "RankFailedError",
    "StatevectorSimulator",
    "UnitarySimulator",
    "WorkerLostError",
    "WorkerStartError",
    "__version__",
]


def _install_save_methods() -> None:
    """``QuantumCircuit.save_*`` (Aer's names) from ``aer_mpi.library``; qiskit-aer's, when present, stay."""
    try:
        from aer_mpi.library import install_circuit_methods

        install_circuit_methods()
    except Exception:  # pragma: no cover - never break the user's import of qiskit
        pass


class _LoaderThenInstall:
    """Wraps qiskit's loader: once ``qiskit`` has run, the save methods are added."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _install_save_methods()


class _QiskitImportHook:
    """One-shot finder: `import aer_mpi` stays free of Qiskit (it is slow to import); the
    ``QuantumCircuit.save_*`` methods appear when the user's program imports qiskit."""

    def find_spec(self, name, path=None, target=None):
        if name != "qiskit":
            return None
        import importlib.util

        _remove_hook()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _LoaderThenInstall(spec.loader)
        return spec


def _remove_hook() -> None:
    import sys

    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QiskitImportHook)]


def _register_save_methods() -> None:
    import sys

    if "qiskit" in sys.modules:
        _install_save_methods()  # qiskit is loaded already: adding the methods costs little
    elif not any(isinstance(f, _QiskitImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _QiskitImportHook())


_register_save_methods()


def __getattr__(name: str):
    # Qiskit-dependent classes load on first use, keeping `import aer_mpi` light.
    if name in _ERRORS:
        from aer_mpi import errors

        return getattr(errors, name)
    if name in ("AerMPISimulator", "AerSimulator", "QasmSimulator"):  # Aer's names, for a changed import only
        from aer_mpi.provider.backend import AerMPISimulator

        return AerMPISimulator
    if name in ("Aer", "AerProvider"):  # Aer's provider object (Aer.get_backend("aer_simulator")) and its class
        from aer_mpi.provider import aer_provider

        return aer_provider.Aer if name == "Aer" else aer_provider.AerMPIProvider
    if name in ("StatevectorSimulator", "UnitarySimulator"):  # Aer's legacy backends: the final state saved
        from aer_mpi.provider import aer_provider

        return getattr(aer_provider, name)
    if name == "AerJob":
        from aer_mpi.provider.job import AerJob

        return AerJob
    if name == "Qobj":  # (numpy and the options table: `python -m aer_mpi` installs its signal handlers first)
        from aer_mpi.qobj.model import Qobj

        return Qobj
    if name in ("noise", "library", "primitives", "utils", "jobs", "backends", "aererror"):
        # `import qiskit_aer` gives qiskit_aer.noise & co.
        import importlib

        return importlib.import_module(f"aer_mpi.{name}")
    raise AttributeError(f"module 'aer_mpi' has no attribute {name!r}")
