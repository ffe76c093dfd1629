"""What every ``aer-mpi`` command shares: exit statuses, the one-line error, the rank before MPI starts.

Exit status: 0 success; 2 bad usage or input (a missing or malformed file, an
output that cannot be written); 1 the run failed (not enough memory, an
error on a rank); 130 interrupted. Errors are one line on stderr, from rank 0.
"""

from __future__ import annotations

import os
import re
import sys

PROG = "aer-mpi"
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130



class CliError(Exception):
    """A one-line error for the user; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.status = status


# -- which rank am I, before MPI starts ----------------------------------------
def rank_hint() -> int:
    """This process's rank from the launcher's environment (0 when unknown).

    Used only to print usage errors and help once, without starting MPI.
    """
    for name in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "MPI_LOCALRANKID"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


#: Fixes that the engine's messages name in the Python API's words, as the command line spells them.
_COMMAND_LINE_SPELLINGS = (
    (re.compile(r"\bprecision='single'"), "--precision single"),
    (re.compile(r"\bseed_simulator=(\S+?),"), r"--seed \1,"),
    (re.compile(r"\bleave memory=False"), "leave out --memory"),
    (re.compile(r"transpile\(circuit, backend\) or circuit\.decompose\(\) first"),
     "give it a gate body in the file, or transpile the circuit to standard gates first"),
)


def command_line_spelling(message: str) -> str:
    """``message`` with the fixes it names spelt as options of ``aer-mpi run`` (``--precision single``,
    not ``precision='single'``): the engine's messages are written for the Python API."""
    for pattern, replacement in _COMMAND_LINE_SPELLINGS:
        message = pattern.sub(replacement, message)
    return message


def report_error(message: str) -> None:
    print(f"{PROG}: error: {command_line_spelling(message)}", file=sys.stderr, flush=True)


def one_line(text: str) -> str:
    return " ".join(text.split())
