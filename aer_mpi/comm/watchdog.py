"""A bound on every wait for another rank during a job.

The engine's collectives and exchanges are blocking MPI calls: a rank that
stops (SIGSTOP, a node that freezes, a debugger) would leave the others
inside one forever. Every such call is made inside ``bounded(comm, what)``;
a watchdog thread (one per process, started on first use) checks the open
waits, and one that has lasted ``AER_MPI_WAIT_TIMEOUT`` seconds (default
600: far above any step of a run, whose passes over a shard take seconds)
prints which wait it was and aborts the MPI job (``MPI_Abort``, exit status
``WAIT_TIMEOUT_EXIT``), which ends every rank, the stopped one included, so
no process is left behind. A wait for rank 0's file work (the command
line's reading of the circuits and writing of the results) has
``FILE_WORK_TIMES`` the bound. A single-process communicator never waits.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, Iterator

from aer_mpi import environment
from aer_mpi.errors import InvalidInputError

#: Seconds a rank may wait for the others in one call before the job is aborted.
DEFAULT_WAIT_TIMEOUT = float(environment.VARIABLES["AER_MPI_WAIT_TIMEOUT"].default)
#: The bound, in multiples of the timeout, on a wait for rank 0's file work (reading the circuits,
#: writing the results): an hour by default.
FILE_WORK_TIMES = 6.0
#: Seconds MPI_Abort may take before the process leaves by itself (faulthandler's exit, status 1).
ABORT_GRACE_SECONDS = 10.0
#: MPI_Abort's error code when a wait ran out (mpiexec exits with it).
WAIT_TIMEOUT_EXIT = 75

_lock = threading.Lock()
_waits: dict[int, tuple[float, str, Any, float]] = {}  # thread id -> (start, what, comm, times the timeout)
_thread: threading.Thread | None = None


def wait_timeout() -> float:
    """``AER_MPI_WAIT_TIMEOUT`` in seconds, else ``DEFAULT_WAIT_TIMEOUT``.

    A bad value is an ``InvalidInputError`` from the entry points (``environment.check_environment``);
    should it be changed to one during a run, the watch keeps the default rather than stop watching."""
    try:
        return environment.seconds("AER_MPI_WAIT_TIMEOUT")
    except InvalidInputError:
        return DEFAULT_WAIT_TIMEOUT


def _watch() -> None:
    while True:
        timeout = wait_timeout()
        time.sleep(min(1.0, timeout / 4))
        now = time.monotonic()
        with _lock:
            late = [(start, what, comm, times) for start, what, comm, times in _waits.values()
                    if now - start > timeout * times]
        if late:
            start, what, comm, times = late[0]
            rank = comm.Get_rank()
            print(f"aer-mpi: rank {rank} waited {now - start:.0f} s for the other ranks ({what}): one of them "
                  f"has stopped or hangs; aborting the job (AER_MPI_WAIT_TIMEOUT={timeout:g}"
                  + (f", {times:g} times for this wait)" if times != 1 else ")"),
                  file=sys.stderr, flush=True)
            abort_job(comm, WAIT_TIMEOUT_EXIT, settle=0.5)  # let the launcher forward the line first


def start_mpi(stop_signals: tuple = ()) -> Any:
    """``mpi4py.MPI``, started (``MPI_Init``) under the wait bound: a rank frozen while the job starts
    (SIGSTOP, a wedged node) left the others spinning in ``MPI_Init`` forever, where no Python code
    runs. faulthandler's watchdog is a C thread: after ``wait_timeout()`` seconds it prints where the
    process waits ("Timeout", ``start_mpi``) and ends it (status 1), and the launcher ends the rest.
    ``stop_signals`` get their default action meanwhile, so that SIGTERM (Slurm, ``timeout``) ends a
    start that hangs; their handlers are put back after. Already started: returned as it is."""
    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI

        return MPI
    import faulthandler
    import signal

    previous = {signum: signal.signal(signum, signal.SIG_DFL) for signum in stop_signals}
    faulthandler.dump_traceback_later(wait_timeout(), exit=True, file=_fault_stream())
    try:
        from mpi4py import MPI
    finally:
        faulthandler.cancel_dump_traceback_later()
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return MPI


#: MPICH's shared-memory segment of a node's ranks: linked until MPI_Finalize, so an abort, which
#: skips it, or a killed rank left it in /dev/shm (in memory, 2-4 MiB) until reboot.
MPICH_SHARED_MEMORY = "/dev/shm/mpich_shm_"


def shared_memory_files(pids: Any, prefix: str = "/dev/shm/") -> list[str]:
    """The files under ``prefix`` that the processes ``pids`` map and that are still linked (Linux;
    none elsewhere). A pool whose ranks were killed left MPICH's segment behind each time (537 of
    them, 1.3 GiB, on the test machine after a day of tests)."""
    files: set[str] = set()
    for pid in pids:
        try:
            with open(f"/proc/{int(pid)}/maps") as maps:
                for line in maps:
                    fields = line.split(maxsplit=5)
                    path = fields[5].strip() if len(fields) == 6 else ""
                    if path.startswith(prefix) and not path.endswith("(deleted)"):
                        files.add(path)
        except (OSError, ValueError):
            pass
    return sorted(files)


def remove_files(paths: Any) -> None:
    """Unlink ``paths`` that are still there and ours (lstat and unlink follow no symlink)."""
    for path in paths:
        try:
            if os.lstat(path).st_uid == os.getuid():
                os.unlink(path)
        except OSError:  # gone already (another rank of the node unlinked it first)
            pass


#: Temporary files being written (a results file, a ``.npy`` before its rename): removed when the
#: process is ended before it could finish them (an abort, a second stop signal), as an error does.
_unfinished_files: set[str] = set()


@contextlib.contextmanager
def unfinished_file(path: str) -> Iterator[None]:
    """While the block runs, ``path`` (a temporary file this process created) is removed if the
    process is ended at once (``abort_job``, ``remove_unfinished_files``)."""
    _unfinished_files.add(path)
    try:
        yield
    finally:
        _unfinished_files.discard(path)


def remove_unfinished_files() -> None:
    """Unlink the temporary files still being written: for a process about to be ended without its
    ``finally`` clauses (a second SIGTERM's default action, ``MPI_Abort``)."""
    remove_files(list(_unfinished_files))
    _unfinished_files.clear()


def release_shared_memory() -> None:
    """Unlink the MPICH segments this process maps (its job's: each job has its own), before an abort.
    Every rank keeps its mapping until it exits, and nothing opens the segment by name after MPI_Init."""
    remove_files(shared_memory_files([os.getpid()], MPICH_SHARED_MEMORY))


def abort_job(comm: Any, status: int, settle: float = 0.0) -> None:
    """End every rank of the job now (``MPI_Abort``) with exit ``status``: for a rank that cannot
    finish in step with the others (one stopped, or an error on this rank only), where leaving
    normally would wait in ``MPI_Finalize`` for the others forever. ``settle`` seconds first let the
    launcher forward what this rank printed (it drops the rest when the abort kills the job)."""
    sys.stderr.flush()
    sys.stdout.flush()
    if settle:
        time.sleep(settle)
    # MPI_Abort asks the launcher to end every rank; should that request itself hang (seen in CI
    # runs: the abort printed, mpiexec never returned), this process leaves anyway, and the launcher
    # ends the job when a rank exits without finalising. The bound is faulthandler's C thread: mpi4py
    # holds the GIL inside MPI_Abort, so a Python timer thread could never run.
    import faulthandler

    faulthandler.dump_traceback_later(ABORT_GRACE_SECONDS, exit=True, file=_fault_stream())
    release_shared_memory()
    remove_unfinished_files()
    _job_world(comm).Abort(status)
    os._exit(status)  # if Abort returned (it should not)


def _job_world(comm: Any) -> Any:
    """The communicator to abort: MPI_COMM_WORLD for any MPI communicator. MPICH aborts any other one
    by sending each of its ranks a message and waiting for it to be delivered, which never happens
    when a rank is frozen (SIGSTOP) with its queue full; on the world it asks the launcher (PMI), which
    kills every process. The launcher ends the whole job either way once one rank leaves unfinalised."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and isinstance(comm, mpi.Comm):
        return mpi.COMM_WORLD
    return comm


def _fault_stream() -> Any:
    """A stream faulthandler can write to (it needs a file descriptor): stderr where it has one."""
    for candidate in (sys.stderr, sys.__stderr__):
        try:
            candidate.fileno()
        except (AttributeError, OSError, ValueError):  # (io.UnsupportedOperation: a captured stream)
            continue
        return candidate
    return open(os.devnull, "w")


@contextlib.contextmanager
def bounded(comm: Any, what: str, times: float = 1.0) -> Iterator[None]:
    """Run the MPI call in the ``with`` block under the watchdog's bound (see the module).

    ``times`` scales the bound for a wait on one rank's file work (rank 0 reading the circuits or
    writing the results), which may take minutes where a step of a run takes seconds.
    """
    global _thread
    if comm.Get_size() == 1:
        yield
        return
    key = threading.get_ident()
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_watch, name="aer_mpi-wait-watchdog", daemon=True)
            _thread.start()
        outer = _waits.get(key)
        if outer is None:  # a nested wait keeps the outer one's start
            _waits[key] = (time.monotonic(), what, comm, times)
    try:
        yield
    finally:
        if outer is None:
            with _lock:
                _waits.pop(key, None)


def _reset_after_fork() -> None:
    global _thread, _lock
    _thread = None
    _lock = threading.Lock()
    _waits.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
