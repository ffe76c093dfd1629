"""A process-wide stop request (a signal, Ctrl-C), read at every engine checkpoint.

Promise of this module: ``request_stop(reason)`` may be called from a signal
handler or any thread of any rank; every checkpoint of the running job, on
every rank, reads ``stop_requested()`` and the ranks agree (any rank's
request stops them all at the same checkpoint). The CLI installs the
SIGINT/SIGTERM handlers (``install_signal_handlers``); in a Python script
Ctrl-C in ``AerJob.result()`` cancels the job instead.
"""

from __future__ import annotations

import signal
import time
from typing import Any, Optional

from aer_mpi.comm.watchdog import remove_unfinished_files

_stop: Optional[int] = None
_stop_at = 0.0  # time.monotonic() of the stop request
#: Signals whose second delivery ends the process at once.
ESCALATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds after a stop request within which the same signal again is the same request: GNU
#: ``timeout`` signals its child and then its process group, and a batch system and the MPI
#: launcher may both forward one, so one stop often arrives twice, microseconds apart.
REPEAT_SECONDS = 0.1


def request_stop(signum: int = signal.SIGINT) -> None:
    """Ask every running and later job of this process to stop (``signum``: why)."""
    global _stop, _stop_at
    if _stop is None:
        _stop = int(signum)
        _stop_at = time.monotonic()


def stop_requested() -> Optional[int]:
    """The signal number that asked for a stop, or None."""
    return _stop


def clear_stop() -> None:
    global _stop
    _stop = None


def install_signal_handlers(signals: tuple = (signal.SIGINT, signal.SIGTERM)) -> dict:
    """SIGINT/SIGTERM request a stop (the job is cancelled at its next checkpoint).

    A second SIGINT or SIGTERM gets its previous handler (Ctrl-C twice:
    KeyboardInterrupt), unless it is the first's signal within ``REPEAT_SECONDS``
    (the same stop, delivered twice). SIGUSR1 (a batch system's "checkpoint and stop", which
    a requeue script repeats until the ranks have stopped) never escalates.
    Main thread only. Returns the previous handlers.
    """
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if _stop is not None and signum in ESCALATING:
            if signum == _stop and time.monotonic() - _stop_at < REPEAT_SECONDS:
                return  # the same stop, delivered twice
            old = previous.get(signum)
            if not callable(old):  # (a Python handler, KeyboardInterrupt, unwinds: its finally clauses clean up)
                remove_unfinished_files()
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
            if callable(old):
                old(signum, frame)
            elif old in (signal.SIG_DFL, None):
                signal.raise_signal(signum)
            return
        request_stop(signum)

    for signum in signals:
        previous[signum] = signal.signal(signum, handler)
    return previous
