"""``python -m aer_mpi``: the same as the ``aer-mpi`` command."""

import sys

from aer_mpi.cli import command_line

sys.exit(command_line())
