"""The ``aer-mpi`` command: ``aer-mpi run`` batch jobs and ``aer-mpi info``."""

from aer_mpi.cli.app import command_line, main

__all__ = ["command_line", "main"]
