"""A worker process of ``AerMPISimulator(processes=P)``.

Started as ``mpiexec -n P python -m aer_mpi.service.worker`` by ``aer_mpi.service.pool``
(never by hand). Every rank connects to the user's process (the address and
key are in the environment) and says hello; rank 0 then takes commands on
its connection and passes them to the other ranks:

    ("run", job_id, qobj_dict) -> ("done", job_id, Result) | ("error", job_id, exc, mpi_failed)
                                  | ("cancelled", job_id, why)
    ("cancel", job_id)         -> the running job stops at its next checkpoint
    ("shutdown",)              -> every rank leaves

The job itself is ``execution.execute_qobj`` on the workers' COMM_WORLD, the
same code as an SPMD run. Idle ranks wait in a non-blocking barrier that
they test a few hundred times a second, so they sleep instead of spinning.
If the user's process goes away (its connection closes), rank 0 cancels the
running job and every rank leaves: no orphans.

While a job runs, a thread of every rank sends ``("beat",)`` on its
connection every ``$AER_MPI_HEARTBEAT_INTERVAL`` seconds, so the pool can
tell a stopped or wedged rank from a slow job (rank 0's sends share a lock
with the replies). The start-up handshake is bounded by
``$AER_MPI_WORKER_START_TIMEOUT``.

When one rank dies, the launcher stops the others (MPICH's gforker sends
SIGINT, then SIGQUIT a second later). A rank so stopped first says
``("leaving", "launcher", signo, sender_pid)`` on its connection
(``_LastWords``), so the pool tells the rank that died on its own (it said
nothing) from the ranks the launcher stopped, whatever order their
connections close in.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from typing import Any, Optional

from aer_mpi import environment

#: Seconds between an idle rank's tests of the command barrier.
IDLE_POLL_SECONDS = 0.005


class _Link:
    """The connection to the user's process, with the sends of two threads kept apart."""

    def __init__(self, connection: Any, interval: Optional[float]):
        self.connection = connection
        self.lock = threading.Lock()
        self.interval = interval
        self.active = threading.Event()  # set while a job runs: beat
        self.stopped = threading.Event()
        if interval:
            threading.Thread(target=self._beat, name="aer_mpi-heartbeat", daemon=True).start()

    def send(self, message: Any) -> None:
        with self.lock:
            self.connection.send(message)

    def recv(self) -> Any:
        return self.connection.recv()

    def poll(self, timeout: float = 0.0) -> bool:
        return self.connection.poll(timeout)

    def say(self, message: Any, timeout: float) -> None:
        """Send ``message`` if the link is free within ``timeout`` s (best effort, for last words)."""
        if self.lock.acquire(timeout=timeout):
            try:
                self.connection.send(message)
            except (OSError, ValueError):
                pass
            finally:
                self.lock.release()

    def close(self) -> None:
        self.stopped.set()
        with self.lock:
            self.connection.close()

    def _beat(self) -> None:
        while not self.stopped.wait(self.interval):
            if self.active.is_set():
                try:
                    self.send(("beat",))
                except (OSError, ValueError):  # the user's process is gone, or the link closed
                    return


class _LastWords:
    """SIGINT or SIGQUIT: tell the pool why this rank leaves, then leave at once.

    When one rank dies, gforker stops the others with SIGINT (SIGQUIT a
    second later). Both are blocked in every thread and taken by a watcher
    thread (``sigwaitinfo``, so it works while the main thread waits inside
    MPI), which says ``("leaving", reason, signo, sender_pid)`` on the link:
    reason ``"launcher"`` when the signal came from the launcher (this
    process's parent), ``"signal"`` otherwise. A rank the launcher stopped
    then tells it "finalize" on its PMI socket before it exits: gforker takes
    that exit as a normal one, so it reports the rank that died (and how)
    about a second later instead of sleeping a second more for each rank it
    stopped. Built in the main thread before any other thread exists, so
    that every thread (MPI's, numba's, the heartbeat) inherits the mask.
    """

    SIGNALS = {signal.SIGINT, signal.SIGQUIT}
    #: Seconds to wait for the launcher's answer to "finalize".
    FINALIZE_WAIT = 5.0

    def __init__(self) -> None:
        self.link: Optional[_Link] = None
        if hasattr(signal, "sigwaitinfo"):  # not on macOS: the launcher's signals act as they would
            signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
            threading.Thread(target=self._watch, name="aer_mpi-last-words", daemon=True).start()

    def _watch(self) -> None:
        info = signal.sigwaitinfo(self.SIGNALS)
        reason = "launcher" if info.si_pid == os.getppid() else "signal"
        if self.link is not None:
            self.link.say(("leaving", reason, info.si_signo, info.si_pid), timeout=1.0)
        if reason == "launcher":
            self._pmi_finalize()
        os._exit(128 + info.si_signo)

    def _pmi_finalize(self) -> None:
        """PMI-1 ``finalize`` on the launcher's socket (``$PMI_FD``), waiting a bounded time for its ack."""
        fd = os.environ.get("PMI_FD", "")
        if not fd.isdigit():
            return
        try:
            os.write(int(fd), b"cmd=finalize\n")
            select.select([int(fd)], [], [], self.FINALIZE_WAIT)
        except OSError:
            pass


def _connect(address: str, authkey: bytes, timeout: float) -> Connection:
    """``multiprocessing.connection.Client``, with the handshake bounded by ``timeout``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address)
    sock.setblocking(True)
    whole = int(timeout)
    timeval = struct.pack("ll", whole, int((timeout - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    connection = Connection(sock.detach())
    answer_challenge(connection, authkey)
    deliver_challenge(connection, authkey)
    # from now on rank 0 waits for commands as long as the user's process lives
    probe = socket.socket(fileno=os.dup(connection.fileno()))
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
    probe.close()
    return connection


class _CancelWatch:
    """``RunControl.cancel_requested`` on rank 0: reads the connection without blocking."""

    def __init__(self, link: Any, job_id: str):
        self.link = link
        self.job_id = job_id
        self.cancel = False
        #: ``cancel(checkpoint=True)``: stop after a checkpoint (when the job keeps them).
        self.checkpoint = False
        self.leave = False
        self.hangup = False

    def __call__(self) -> bool:
        if self.cancel:
            return True
        try:
            while self.link.poll(0):
                message = self.link.recv()
                if message[0] == "cancel" and message[1] == self.job_id:
                    self.cancel = True
                    self.checkpoint = len(message) > 2 and bool(message[2])
                elif message[0] == "shutdown":
                    self.cancel = self.leave = True
        except (EOFError, OSError):  # the user's process is gone
            self.cancel = self.leave = self.hangup = True
        return self.cancel


def _send_command(comm: Any, command: tuple) -> None:
    if comm.Get_size() > 1:
        comm.Ibarrier().Wait()
        comm.bcast(command, root=0)


def _wait_command(comm: Any) -> tuple:
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(IDLE_POLL_SECONDS)
    return comm.bcast(None, root=0)


def _reply_for(error: BaseException, job_id: str) -> tuple:
    from mpi4py import MPI

    from aer_mpi.errors import AerMPIError, JobCancelledError
    from aer_mpi.service.pool import portable_error

    if isinstance(error, JobCancelledError):
        return ("cancelled", job_id, str(error))
    if not isinstance(error, AerMPIError):
        traceback.print_exc()  # a bug or an MPI failure: keep the details in the workers' log
    mpi_failure = isinstance(error, MPI.Exception)  # a peer is probably gone: the caller looks
    return ("error", job_id, portable_error(error), mpi_failure)


def _serve_rank0(comm: Any, link: Any) -> bool:
    """Serve jobs until told to stop; True when the user's process went away."""
    from aer_mpi.engine import RunControl
    from aer_mpi.service.execution import execute_qobj
    from aer_mpi.qobj.model import Qobj

    hangup = False
    while True:
        try:
            message = link.recv()
        except (EOFError, OSError):
            message, hangup = ("shutdown",), True
        if message[0] == "shutdown":
            break
        if message[0] != "run":
            continue  # a cancel that came after its job ended
        _, job_id, qobj_dict = message
        try:
            qobj = Qobj.from_dict(qobj_dict)
        except Exception as exc:  # before the others were told: nothing to undo
            reply = _reply_for(exc, job_id)
        else:
            link.active.set()
            _send_command(comm, ("run", job_id))
            watch = _CancelWatch(link, job_id)
            try:
                reply = ("done", job_id, execute_qobj(qobj, job_id, comm, RunControl(
                    cancel_requested=watch, checkpoint_requested=lambda: watch.checkpoint)))
            except Exception as exc:
                reply = _reply_for(exc, job_id)
            finally:
                link.active.clear()
            if watch.leave:
                hangup = watch.hangup
                break
        try:
            link.send(reply)
        except (OSError, EOFError):
            hangup = True
            break
        except Exception as exc:  # the result would not pickle
            link.send(_reply_for(exc, job_id))
    _send_command(comm, ("shutdown",))
    return hangup


def _serve_other(comm: Any, link: Any) -> None:
    from aer_mpi.engine import RunControl
    from aer_mpi.service.execution import execute_qobj

    while True:
        command = _wait_command(comm)
        if command[0] == "shutdown":
            return
        link.active.set()
        try:
            execute_qobj(None, command[1], comm, RunControl())
        except Exception:
            pass  # every rank raised the same error; rank 0 reports it
        finally:
            link.active.clear()


def main() -> int:
    address = os.environ.get("AER_MPI_WORKER_ADDRESS")
    authkey = os.environ.get("AER_MPI_WORKER_AUTHKEY")
    if not address or not authkey:
        print("aer_mpi.service.worker is started by AerMPISimulator(processes=P), not by hand", file=sys.stderr)
        return 2
    last_words = _LastWords()  # before MPI, numba or the heartbeat start threads
    from mpi4py import MPI

    import aer_mpi.service.execution  # noqa: F401  (import everything before saying ready)

    comm = MPI.COMM_WORLD
    try:
        start_timeout = environment.seconds("AER_MPI_WORKER_START_TIMEOUT")
        interval = float(os.environ.get("AER_MPI_HEARTBEAT_INTERVAL", "0") or 0)
        link = _Link(_connect(address, bytes.fromhex(authkey), start_timeout), interval)
        last_words.link = link
        link.send(("hello", comm.Get_rank(), comm.Get_size(), os.getpid()))
        comm.Barrier()
        if comm.Get_rank() == 0:
            link.send(("ready", {"ranks": comm.Get_size(), "mpi": MPI.Get_library_version().splitlines()[0]}))
            if _serve_rank0(comm, link):
                # nobody will read the log or remove the pool's directory now
                directory = os.path.dirname(address)
                if os.path.basename(directory).startswith("aer_mpi-workers-"):
                    shutil.rmtree(directory, ignore_errors=True)
        else:
            _serve_other(comm, link)
        link.close()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        from aer_mpi.comm.watchdog import abort_job

        abort_job(comm, 1)  # never leave the other ranks waiting
    return 0


if __name__ == "__main__":
    sys.exit(main())
