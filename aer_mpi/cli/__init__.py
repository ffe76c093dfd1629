"""The ``aer-mpi`` command: ``aer-mpi run`` batch jobs and ``aer-mpi info``."""

from aer_mpi.cli.app import main

__all__ = ["main"]
