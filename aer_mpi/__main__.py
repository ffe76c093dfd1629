"""``python -m aer_mpi``: the same as the ``aer-mpi`` command."""

import sys

from aer_mpi import _early_signals

_early_signals.hold()  # before the imports below, which take seconds

from aer_mpi.cli import command_line  # noqa: E402

sys.exit(command_line())
