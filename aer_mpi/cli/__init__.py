"""The ``aer-mpi`` command: ``aer-mpi run`` batch jobs and ``aer-mpi info``.

Importing this package is light: ``command_line`` (the ``aer-mpi`` entry point) first holds the
stop signals that may come while Qiskit, numpy and MPI are imported (``aer_mpi._early_signals``),
as ``python -m aer_mpi`` does; a SIGUSR1 then killed a starting rank with no checkpoint.
"""

from __future__ import annotations

from typing import Any


def command_line() -> int:
    """The ``aer-mpi`` command: ``main`` in a process that ends when it returns."""
    from aer_mpi import _early_signals

    _early_signals.hold()  # before the imports below, which take seconds
    from aer_mpi.cli.app import command_line as run

    return run()


def __getattr__(name: str) -> Any:
    if name == "main":
        from aer_mpi.cli.app import main

        return main
    raise AttributeError(f"module 'aer_mpi.cli' has no attribute {name!r}")


__all__ = ["command_line", "main"]
