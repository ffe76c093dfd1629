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
from typing import Any, Optional

_stop: Optional[int] = None
#: Signals whose second delivery ends the process at once.
ESCALATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def request_stop(signum: int = signal.SIGINT) -> None:
    """Ask every running and later job of this process to stop (``signum``: why)."""
    global _stop
    if _stop is None:
        _stop = int(signum)


def stop_requested() -> Optional[int]:
    """The signal number that asked for a stop, or None."""
    return _stop


def clear_stop() -> None:
    global _stop
    _stop = None


def install_signal_handlers(signals: tuple = (signal.SIGINT, signal.SIGTERM)) -> dict:
    """SIGINT/SIGTERM request a stop (the job is cancelled at its next checkpoint).

    A second SIGINT or SIGTERM gets its previous handler (Ctrl-C twice:
    KeyboardInterrupt). SIGUSR1 (a batch system's "checkpoint and stop", which
    a requeue script repeats until the ranks have stopped) never escalates.
    Main thread only. Returns the previous handlers.
    """
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if _stop is not None and signum in ESCALATING:
            old = previous.get(signum)
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
