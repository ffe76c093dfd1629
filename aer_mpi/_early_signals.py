"""Stop signals that reach ``python -m aer_mpi`` while it is still starting.

Importing Qiskit, numpy and MPI takes seconds (far more on a loaded node), and
until ``aer-mpi run`` installs its handlers a SIGTERM or SIGUSR1 (Slurm's
time-limit warning) would kill the rank with no checkpoint. ``__main__`` calls
``hold()`` before any of those imports (and so does the ``aer-mpi`` command's entry point,
``aer_mpi.cli.command_line``); the run calls ``release()`` just
before installing its own handlers and then honours what came in between.
This module imports nothing but ``signal``.
"""

from __future__ import annotations

import signal

#: The batch system's stop signals, and SIGHUP (the terminal or ssh session closed); SIGINT keeps
#: Python's KeyboardInterrupt while starting.
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP)

_received: list[int] = []
_previous: dict[int, object] = {}


def _remember(signum: int, frame: object) -> None:
    _received.append(signum)


def hold() -> None:
    """Remember the stop signals from now on instead of dying of them (main thread only; a second
    call while they are held changes nothing)."""
    if _previous:
        return
    for signum in SIGNALS:
        _previous[signum] = signal.signal(signum, _remember)


def hand_over() -> tuple[list[int], dict[int, object]]:
    """For a caller that has just installed its own handlers for these signals: the signals received
    meanwhile, in order, and the handlers ``hold()`` found (to put back later). Nothing is put back
    now, so no signal meets its default action between the two handlers."""
    found = dict(_previous)
    _previous.clear()
    received = list(_received)
    _received.clear()
    return received, found


def release() -> list[int]:
    """Put back the handlers ``hold()`` found; the signals received meanwhile, in order."""
    for signum, handler in _previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    _previous.clear()
    received = list(_received)
    _received.clear()
    return received
