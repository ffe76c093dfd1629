"""A process-wide stop request (a signal, Ctrl-C), read at every engine checkpoint.

Promise of this module: ``request_stop(reason)`` may be called from a signal
handler or any thread of any rank; every checkpoint of the running job, on
every rank, reads ``stop_requested()`` and the ranks agree (any rank's
request stops them all at the same checkpoint). The CLI installs the
SIGINT/SIGTERM handlers (``install_signal_handlers``); in a Python script
Ctrl-C in ``AerJob.result()`` cancels the job instead.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Callable, Optional

from aer_mpi.comm.watchdog import remove_unfinished_files

_stop: Optional[int] = None
_stop_at = 0.0  # time.monotonic() of the stop request
_stop_delivered = False  # the stop came from a delivery of a handled signal (not a held one, not a call)
#: Signals whose second delivery ends the process at once.
ESCALATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Seconds after a stop request within which the same signal again is the same request: GNU
#: ``timeout`` signals its child and then its process group, and a batch system and the MPI
#: launcher may both forward one, so one stop often arrives twice, microseconds apart.
REPEAT_SECONDS = 0.1
#: Seconds the main thread has to act on a second stop signal before the listener thread ends the
#: process itself (the main thread is then inside MPI or a C call that does not return to Python).
MAIN_THREAD_GRACE = 1.0

_escalated = False  # a thread has begun ending the process (``_escalate_once``)
_escalation = threading.Lock()
_listener: Optional["_DeliveryListener"] = None


def request_stop(signum: int = signal.SIGINT, delivered: bool = False) -> None:
    """Ask every running and later job of this process to stop (``signum``: why; ``delivered``: by
    the signal handler, for a delivery the listener also reads)."""
    global _stop, _stop_at, _stop_delivered
    if _stop is None:
        _stop = int(signum)
        _stop_at = time.monotonic()
        _stop_delivered = delivered


def stop_requested() -> Optional[int]:
    """The signal number that asked for a stop, or None."""
    return _stop


def clear_stop() -> None:
    global _stop
    _stop = None
    if _listener is not None:
        _listener.first = None
        _listener.escalating = None


def _escalate_once() -> bool:
    """True for the one caller (the handler or the listener) that goes on to end the process."""
    global _escalated
    if not _escalation.acquire(blocking=False):
        return False
    _escalated = True
    return True


def _end_process(signum: int) -> None:
    """What a second stop does when no ``end_now`` was given: the temporary files go, the process ends
    with the status a death by ``signum`` gives in a shell."""
    remove_unfinished_files()
    os._exit(128 + signum)


class _DeliveryListener:
    """Every delivery of the handled signals, as it happens, from the wakeup fd.

    Two deliveries pending at once reach the Python handler as one call, and none reaches it while
    the main thread is in C; the wakeup fd gets one byte each, at once. So the deliveries are read
    from it, in order, by the listener thread as they come or by the handler (``catch_up``) if it
    runs first, and one rule decides which is a second stop: an escalating signal after a first stop,
    unless the first's signal again within ``REPEAT_SECONDS`` of it. The previous wakeup fd (an
    asyncio loop's) still gets every byte.
    """

    def __init__(self, signals: tuple, end_now: Callable[[int], None]) -> None:
        self.signals = {int(signum) for signum in signals}
        self.end_now = end_now
        self.first: Optional[tuple[int, float]] = None  # the first stop's signal and time
        self.escalating: Optional[int] = None  # the signal of a second stop, once read
        self.reading = threading.Lock()  # (bytes are taken and judged by one thread at a time)
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)  # (Python's handler never blocks on it)
        os.set_blocking(self.read_fd, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self._listen, name="aer_mpi-signal-listener", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Give the wakeup fd back (main thread only); the thread sees the pipe's end and leaves."""
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_fd)

    def catch_up(self, timeout: float = 0.25) -> Optional[int]:
        """Judge the deliveries not yet read (from the handler); the second stop's signal, or None."""
        deadline = time.monotonic() + timeout
        while not self.reading.acquire(blocking=False):
            if time.monotonic() > deadline:  # (a handler interrupted inside this one)
                return self.escalating
            time.sleep(0.005)
        try:
            self._take()
        finally:
            self.reading.release()
        return self.escalating

    def _take(self) -> bool:
        """Read and judge what the pipe holds; False at its end."""
        try:
            data = os.read(self.read_fd, 256)
        except BlockingIOError:
            return True  # (the other reader took it)
        if not data:
            return False
        now = time.monotonic()
        if self.previous_fd >= 0:
            try:
                os.write(self.previous_fd, data)
            except OSError:
                pass
        for signum in data:
            if signum in self.signals:
                self._judge(signum, now)
        return True

    def _judge(self, signum: int, now: float) -> None:
        if self.first is None:
            if _stop is None or _stop_delivered:
                self.first = (signum, now)
                return
            self.first = (_stop, _stop_at)  # a stop asked otherwise (a signal held while starting)
        if signum not in ESCALATING or self.escalating is not None:
            return
        first_signum, first_at = self.first
        if signum == first_signum and now - first_at < REPEAT_SECONDS:
            return  # the same stop, delivered twice
        self.escalating = signum

    def _listen(self) -> None:
        import select

        waiting = select.poll()  # (not select.select: it refuses a descriptor above 1023)
        waiting.register(self.read_fd, select.POLLIN)
        try:
            while True:
                waiting.poll()
                with self.reading:
                    if not self._take():
                        break
                if self.escalating is not None and not _escalated:
                    self._end_unless_the_main_thread_does(self.escalating)
        except (OSError, ValueError):  # (the pipe closed under it)
            pass
        finally:
            os.close(self.read_fd)

    def _end_unless_the_main_thread_does(self, signum: int) -> None:
        deadline = time.monotonic() + MAIN_THREAD_GRACE
        while time.monotonic() < deadline:
            if _escalated:
                return  # the main thread's handler is ending the process
            time.sleep(0.02)
        if _escalate_once():
            self.end_now(signum)


def install_signal_handlers(signals: tuple = (signal.SIGINT, signal.SIGTERM),
                            end_now: Optional[Callable[[int], None]] = None) -> dict:
    """SIGINT/SIGTERM request a stop (the job is cancelled at its next checkpoint).

    A second SIGINT, SIGTERM or SIGHUP, unless it is the first's signal within ``REPEAT_SECONDS``
    (the same stop, delivered twice), calls ``end_now(signum)``, which must not return; without
    one it gets its previous handler (Ctrl-C twice: KeyboardInterrupt; SIGTERM: its default action).
    SIGUSR1 (a batch system's "checkpoint and stop", which a requeue script repeats until the ranks
    have stopped) never escalates. Should the main thread not run its handler within
    ``MAIN_THREAD_GRACE`` seconds (it waits inside MPI), the listener thread calls ``end_now``
    (given none: remove the temporary files and ``os._exit(128 + signum)``).
    Main thread only. Returns the previous handlers; ``uninstall_signal_handlers`` puts them back.
    """
    global _listener, _escalated, _escalation
    previous: dict[int, Any] = {}
    _escalated = False
    _escalation = threading.Lock()

    def handler(signum: int, frame: Any) -> None:
        if _stop is not None and signum in ESCALATING:
            if _listener is not None:  # (it has the time of each delivery; this call may stand for two)
                if _listener.catch_up() is None:
                    return  # the same stop, delivered twice
            elif signum == _stop and time.monotonic() - _stop_at < REPEAT_SECONDS:
                return
            if not _escalate_once():
                return  # (the listener is ending the process)
            if end_now is not None:  # (a KeyboardInterrupt may be caught on its way: AerJob.result()
                end_now(signum)      # cancels the job and waits for it)
                return
            old = previous.get(signum)
            if not callable(old):  # (a Python handler, KeyboardInterrupt, unwinds: its finally clauses clean up)
                remove_unfinished_files()
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
            if callable(old):
                old(signum, frame)
            elif old in (signal.SIG_DFL, None):
                signal.raise_signal(signum)
            return
        request_stop(signum, delivered=True)

    for signum in signals:
        previous[signum] = signal.signal(signum, handler)
    if _listener is not None:
        _listener.close()
    _listener = _DeliveryListener(signals, end_now or _end_process)
    return previous


def uninstall_signal_handlers(previous: dict) -> None:
    """Put back the handlers ``install_signal_handlers`` returned, and the wakeup fd (main thread only)."""
    global _listener
    for signum, old in previous.items():
        signal.signal(signum, old if old is not None else signal.SIG_DFL)
    if _listener is not None:
        _listener.close()
        _listener = None


def _forget_listener_after_fork() -> None:
    """A forked child has no listener thread: its handler decides by its own clock again."""
    global _listener
    if _listener is not None:
        _listener = None
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # (forked from a thread other than the main one)
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_listener_after_fork)
