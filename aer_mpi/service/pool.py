"""The single-process API's MPI workers, seen from the user's process.

``AerMPISimulator(processes=P)`` owns one ``WorkerPool``: it launches
``mpiexec -n P python -m aer_mpi.service.worker`` as a subprocess (the user's
process never joins MPI), and every worker rank connects back to it over a
private Unix socket (``multiprocessing.connection``, authenticated with a
random key). Rank 0's connection carries the jobs, the cancel requests and
the results; the other ranks' connections carry nothing after their hello
and serve as life lines: a worker that dies closes its socket at once, so
the pool knows which rank was lost before mpiexec tears the others down.

Why a subprocess mpiexec and not ``MPI.Comm.Spawn``: with Spawn the user's
process is part of the MPI job, and when one spawned worker is killed the
process manager kills the whole job, the user's process included (tried
with the PyPI mpich: the parent died with SIGKILL). See docs/architecture.md.

Jobs run one at a time (``AerJob``'s single-thread executor calls
``WorkerPool.run``); the workers are reused across jobs, restarted on the
next job after they were lost, and shut down by ``close()``, at exit, or
when the user's process dies (rank 0 sees its connection close).

Every wait is bounded. While a job runs, every rank sends a heartbeat on its
connection several times per ``heartbeat_timeout`` (default 30 s, or
``$AER_MPI_HEARTBEAT_TIMEOUT``); a rank that is silent for longer (stopped
with SIGSTOP, wedged, on a frozen node) ends the job in ERROR with a
``WorkerLostError`` naming it, and the whole pool is killed. After
``cancel()``, the workers have the same time to stop before they are killed.
The start-up handshake, every receive and every send on the connections
carry timeouts too, so a worker that stops half-way through a message cannot
hang the user's process. Only the process that built the pool (not a forked
child) may stop it.

The workers run in a private directory with ``python -P`` (3.11+), so a
module planted in the user's working directory is never imported by them,
and their MPI traffic uses loopback only. With the PyPI mpich they are
started by its ``mpiexec.gforker``, which listens on no port (hydra's control
port binds 0.0.0.0); another mpiexec is used as it is.

Which rank died: when one rank dies, the launcher stops the others, so
several connections close within milliseconds and the order the pool sees
them in is not the order they died in. A rank that the launcher stops says
so on its connection first (``("leaving", "launcher", ...)``, see
``worker._LastWords``); the rank named is one that died without a word.
gforker's report of each rank's exit (``[0]1:Return code = 0, signaled with
Killed``) breaks the remaining ties and gives the reason.
"""

from __future__ import annotations

import atexit
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge, wait
from pathlib import Path
from typing import Any, Optional

from aer_mpi.comm.watchdog import remove_files, shared_memory_files
from aer_mpi.engine.resources import cores_available
from aer_mpi.errors import JobCancelledError, WorkerLostError, WorkerStartError
from aer_mpi.service.launch import (
    CLOSE_TIMEOUT,
    ENV_ADDRESS,
    ENV_AUTHKEY,
    ENV_HEARTBEAT_INTERVAL,
    ENV_HEARTBEAT_TIMEOUT,
    ENV_MPIEXEC,
    POLL_SECONDS,
    MPI_ENV_PREFIXES,
    check_heartbeat_timeout,
    check_processes,
    default_heartbeat_timeout,
    find_mpiexec,
    heartbeat_interval,
    is_gforker,
    is_hydra,
    process_alive,
    set_socket_timeouts,
    start_timeout as default_start_timeout,
)

class WorkerPool:
    """P MPI worker processes started with mpiexec, and the links to them."""

    def __init__(self, processes: int, start_timeout: Optional[float] = None, heartbeat_timeout: Optional[float] = None):
        self.processes = check_processes(processes)
        self.start_timeout = default_start_timeout() if start_timeout is None else start_timeout
        self.heartbeat_timeout = (
            default_heartbeat_timeout() if heartbeat_timeout is None else check_heartbeat_timeout(heartbeat_timeout)
        )
        self._owner_pid = os.getpid()  # a forked child must not stop the parent's workers
        self._last_seen: dict[int, float] = {}
        self._words: dict[int, tuple] = {}  # last words of ranks the launcher stopped
        self.mpiexec = find_mpiexec()
        self._lock = threading.Lock()  # held while a job or a start runs
        self._proc: Optional[subprocess.Popen] = None
        self._links: dict[int, Connection] = {}
        self._pids: dict[int, int] = {}
        #: The shared-memory files the workers map (MPICH's segment), removed if they are killed.
        self._segments: list[str] = []
        self._tmpdir: Optional[str] = None
        self._log_path: Optional[str] = None
        self._closed = False
        self.info: dict[str, Any] = {}
        self.starts = 0
        atexit.register(self.close)
        with self._lock:
            self._start()

    # -- public ----------------------------------------------------------
    @property
    def pids(self) -> dict[int, int]:
        """Process id of each worker rank (of the current start)."""
        return dict(self._pids)

    @property
    def mpiexec_pid(self) -> Optional[int]:
        return None if self._proc is None else self._proc.pid

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def log_path(self) -> Optional[str]:
        """File with the workers' stdout and stderr (and mpiexec's)."""
        return self._log_path

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and not self._lost_ranks()

    def run(self, qobj: Any, job_id: str, control: Any) -> Any:
        """Run ``qobj`` on the workers and return its Result (blocking).

        Raises what the job raised on the workers (the same error type),
        ``JobCancelledError`` when cancelled, ``WorkerLostError`` naming the
        rank when a worker died.
        """
        with self._lock:
            if self._closed:
                raise WorkerLostError(
                    None, "close() stopped the workers before the job ran: build a new AerMPISimulator(processes=...)"
                )
            if not self.alive():
                self._stop(kill=True)
                self._start()
            command, proc = self._links[0], self._proc  # close() may clear the attributes meanwhile
            rank_of = {link: rank for rank, link in self._links.items()}
            now = time.monotonic()
            self._last_seen = {rank: now for rank in self._links}
            try:
                command.send(("run", job_id, qobj.to_dict()))
            except OSError as exc:
                raise self._send_failed(job_id, exc, control.cancel_requested()) from None
            cancel_sent: Optional[float] = None
            links = list(self._links.values())
            while True:
                try:
                    ready = wait(links, timeout=POLL_SECONDS)
                except (OSError, ValueError):  # close() closed the links under us
                    raise self._lost(job_id) from None
                now = time.monotonic()
                closed = []
                for link in sorted(ready, key=lambda item: rank_of[item]):  # rank 0 (the replies) first
                    rank = rank_of[link]
                    try:
                        message = link.recv()
                    except (EOFError, OSError):
                        closed.append(rank)
                        continue
                    self._last_seen[rank] = now
                    if message[0] == "leaving":
                        self._words[rank] = message
                    elif rank == 0 and message[0] != "beat":
                        return self._finish(message, job_id)
                if closed:
                    raise self._lost(job_id, [r for r in closed if r != 0] + [r for r in closed if r == 0])
                if proc.poll() is not None:
                    raise self._lost(job_id)
                silent = [r for r, seen in self._last_seen.items() if now - seen > self.heartbeat_timeout]
                if silent:
                    raise self._unresponsive(job_id, silent, cancelled=cancel_sent is not None)
                if cancel_sent is None and control.cancel_requested():
                    try:
                        command.send(("cancel", job_id, bool(control.checkpoint_requested())))
                    except OSError as exc:
                        raise self._send_failed(job_id, exc, True) from None
                    cancel_sent = now
                elif cancel_sent is not None and now - cancel_sent > self.heartbeat_timeout:
                    self._stop(kill=True)
                    raise JobCancelledError(
                        f"job {job_id} was cancelled: the workers did not stop within {self.heartbeat_timeout:g} s "
                        "(heartbeat_timeout), so they were killed; the next job starts new workers"
                    )

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop the workers: ask them to leave, kill those that do not. Idempotent.

        Does nothing in a forked child of the process that built the pool
        (its atexit handlers and finalizers run this too): the workers and
        their directory belong to the parent.
        """
        if self._closed or os.getpid() != self._owner_pid:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._lock.acquire(timeout=0.5):
            try:
                self._stop(kill=False, timeout=timeout)
            finally:
                self._lock.release()
        else:  # a job is running: end it now, it reports the lost workers
            self._stop(kill=True)

    # -- start / stop -----------------------------------------------------
    def _start(self) -> None:
        self.starts += 1
        self._tmpdir = tempfile.mkdtemp(prefix="aer_mpi-workers-")  # mode 0700, a random name
        address = os.path.join(self._tmpdir, "link")
        self._log_path = os.path.join(self._tmpdir, "workers.log")
        authkey = os.urandom(32)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(self.processes)
        listener.settimeout(POLL_SECONDS)
        env = {k: v for k, v in os.environ.items() if not k.startswith(MPI_ENV_PREFIXES)}
        env[ENV_ADDRESS] = address
        env[ENV_AUTHKEY] = authkey.hex()
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env[ENV_HEARTBEAT_INTERVAL] = repr(heartbeat_interval(self.heartbeat_timeout))
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")  # P workers share the cores already
        # (OMP_NUM_THREADS caps the workers' kernel threads: left as the user set it, else each worker's share)
        env.setdefault("OMP_NUM_THREADS", str(max(1, cores_available() // self.processes)))
        # The workers are on this machine: their MPI traffic stays on loopback (users' settings kept).
        env.setdefault("FI_TCP_IFACE", "lo")
        env.setdefault("UCX_NET_DEVICES", "lo")
        env.pop("MPIEXEC_USE_PORT", None)  # gforker: PMI over socket pairs, never a TCP port
        self._words = {}
        command = [self.mpiexec]
        if is_hydra(self.mpiexec):
            command += ["-iface", "lo"]  # hydra tells the ranks to reach it on 127.0.0.1
        # -P: the workers' sys.path gets no current directory (PYTHONPATH still counts)
        python = [sys.executable, "-P"] if sys.version_info >= (3, 11) else [sys.executable]
        command += ["-n", str(self.processes), *python, "-m", "aer_mpi.service.worker"]
        try:
            with open(self._log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,  # Ctrl-C in the user's terminal does not reach them
                    cwd=self._tmpdir,  # not the user's directory: nothing of theirs is imported
                )
        except OSError as exc:
            listener.close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise WorkerStartError(
                f"could not run {self.mpiexec!r} to start the workers ({exc}): set {ENV_MPIEXEC} "
                "to the mpiexec of the MPI that mpi4py was built with"
            ) from exc
        self._links, self._pids = {}, {}
        self._segments = []
        deadline = time.monotonic() + self.start_timeout
        try:
            while len(self._links) < self.processes:
                try:
                    sock, _ = listener.accept()
                except socket.timeout:
                    self._check_starting(deadline)
                    continue
                sock.setblocking(True)
                # every read and write on the link is bounded, the handshake's included
                set_socket_timeouts(sock, min(self.heartbeat_timeout, self.start_timeout))
                link = Connection(sock.detach())
                try:
                    deliver_challenge(link, authkey)
                    answer_challenge(link, authkey)
                    if not link.poll(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError("no hello")
                    _, rank, size, pid = link.recv()
                except (OSError, EOFError, ValueError, TypeError, AuthenticationError) as exc:
                    link.close()
                    self._check_starting(deadline)
                    raise WorkerStartError(
                        f"a worker did not complete the start-up handshake ({type(exc).__name__}: {exc}); "
                        f"their output:\n{self._log_tail()}"
                    ) from None
                self._links[rank] = link
                self._pids[rank] = pid
            while not self._links[0].poll(POLL_SECONDS):
                self._check_starting(deadline)
            message = self._links[0].recv()
            if message[0] != "ready":
                raise WorkerStartError(f"the workers answered {message!r} instead of 'ready'")
            self.info = message[1]
            self._segments = shared_memory_files(self._pids.values())
        except BaseException:
            self._stop(kill=True)
            shutil.rmtree(self._tmpdir, ignore_errors=True)  # the error carries the output
            raise
        finally:
            listener.close()
            try:
                os.unlink(address)
            except OSError:
                pass

    def _check_starting(self, deadline: float) -> None:
        code = self._proc.poll()
        if code is not None:
            raise WorkerStartError(
                f"the {self.processes} workers exited (mpiexec exit code {code}) before they were ready; "
                f"their output:\n{self._log_tail()}"
            )
        if time.monotonic() > deadline:
            raise WorkerStartError(
                f"the {self.processes} workers were not ready after {self.start_timeout:.0f} s "
                f"(set AER_MPI_WORKER_START_TIMEOUT to wait longer); their output:\n{self._log_tail()}"
            )

    def _stop(self, kill: bool, timeout: float = CLOSE_TIMEOUT) -> None:
        proc = self._proc
        if proc is None:
            return
        if not kill and proc.poll() is None and 0 in self._links:
            try:
                self._links[0].send(("shutdown",))
                proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for link in self._links.values():
            link.close()
        clean = proc.poll() == 0
        if proc.poll() is None:
            self._kill_all(proc)
        if not clean:
            remove_files(self._segments)  # MPICH removes its segment at MPI_Finalize, which a killed rank never reaches
        self._segments = []
        self._links = {}
        self._proc = None
        if clean and self._tmpdir:  # a failure keeps its log, which its error message names
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _kill_all(self, proc: subprocess.Popen) -> None:
        """SIGKILL the workers (each in its own session), then mpiexec and its proxies.

        SIGKILL ends stopped (SIGSTOP) processes too; then wait until none of them runs.
        """
        try:
            import psutil

            family = [psutil.Process(proc.pid)]
            family += family[0].children(recursive=True)
        except Exception:
            family = []
        for member in reversed(family):  # ranks first, then the proxies, then mpiexec
            try:
                member.send_signal(signal.SIGKILL)
            except Exception:
                pass
        for pid in self._pids.values():  # ranks that left the family tree already
            if process_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # mpiexec's own session: whatever else it started
        except OSError:
            pass
        try:
            proc.kill()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(process_alive(m.pid) for m in family):
            time.sleep(0.01)

    # -- outcomes -----------------------------------------------------------
    def _finish(self, reply: tuple, job_id: str) -> Any:
        kind = reply[0]
        if kind == "done":
            result = reply[2]
            result.metadata = dict(result.metadata or {}, workers=self.processes)
            return result
        if kind == "cancelled":
            why = reply[2] if len(reply) > 2 else "the job was cancelled"
            raise JobCancelledError(f"job {job_id} was cancelled on the workers: {why}")
        if kind == "error":
            error, mpi_failure = reply[2], reply[3]
            if mpi_failure:  # an MPI call failed: a rank is probably gone
                time.sleep(POLL_SECONDS)
                if self._lost_ranks() or self._proc is None or self._proc.poll() is not None:
                    raise self._lost(job_id, replied=True)
            raise error
        raise WorkerLostError(None, f"rank 0 answered {reply!r} to job {job_id}: the workers are confused")

    def _drain(self) -> list[int]:
        """Read what the links hold (heartbeats, last words); the ranks whose link has closed."""
        closed = []
        for rank, link in sorted(self._links.items()):
            try:
                while link.poll(0):
                    message = link.recv()
                    if message[0] == "leaving":
                        self._words[rank] = message
            except (EOFError, OSError, ValueError):
                closed.append(rank)
        return closed

    def _lost_ranks(self) -> list[int]:
        """The ranks that are gone: their link closed or their process ended."""
        lost = self._drain()
        lost += [r for r, pid in self._pids.items() if r not in lost and not process_alive(pid)]
        return sorted(lost)

    def _rank_exits(self) -> dict[int, str]:
        """How each rank ended, as the launcher reported it (after it has cleaned up).

        gforker: ``[0]1:Return code = 0, signaled with Killed`` for a rank that
        did not exit cleanly; hydra reports one ``EXIT STRING`` for the job
        (given as rank -1: it does not say which rank).
        """
        text = self._log_tail()
        exits: dict[int, str] = {}
        names = {signal.strsignal(s): int(s) for s in signal.valid_signals() if signal.strsignal(s)}
        for rank, code, signame in re.findall(r"\[0\](\d+):Return code = (-?\d+)(?:, signaled with ([^\n]+))?", text):
            signame = signame.strip()
            if signame:
                number = names.get(signame)
                exits[int(rank)] = f"{signame} (signal {number})" if number else signame
            else:
                exits[int(rank)] = f"exit code {code}"
        match = re.search(r"EXIT STRING: (.+)", text)
        if match:
            exits[-1] = match.group(1).strip()
        return exits

    def _lost(self, job_id: str, seen: Optional[list[int]] = None, replied: bool = False) -> WorkerLostError:
        """After a worker died: name it, stop the rest, and return the error to raise.

        ``seen``: the ranks whose link closed in the poll that noticed it;
        ``replied``: rank 0 answered (so it was alive after the failure began).
        The rank named is one that died without last words (the launcher had
        not stopped it), in the order seen, rank 0 after the others; the
        launcher's report breaks ties (a rank it stopped with SIGINT or
        SIGQUIT is not the one lost) and says how the rank ended.
        """
        closed = self._drain()
        dead = list(dict.fromkeys([*(seen or []), *[r for r in closed if r != 0], *[r for r in closed if r == 0]]))
        dead += [r for r, pid in sorted(self._pids.items()) if r not in dead and not process_alive(pid)]
        proc = self._proc
        if proc is not None:
            try:  # the launcher reports how the ranks ended, once it has cleaned up
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        self._drain()  # last words that came meanwhile
        exits = self._rank_exits()
        # gforker stops the other ranks with SIGINT, then SIGQUIT; ours leave with 128 + that signal
        stopped_by_launcher = (
            {"Interrupt (signal 2)", "Quit (signal 3)", "exit code 130", "exit code 131"}
            if is_gforker(self.mpiexec) else set()
        )
        lost = [r for r in dead if self._words.get(r, ("leaving", "none"))[1] != "launcher"]
        if replied and len(lost) > 1:
            lost = [r for r in lost if r != 0]
        if len(lost) > 1:
            lost = [r for r in lost if exits.get(r) not in stopped_by_launcher] or lost
        self._stop(kill=True)
        if self._closed:
            if self._tmpdir:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            return WorkerLostError(None, f"job {job_id} was ended by close(): the workers were shut down")
        if lost:
            first = lost[0]
            who = f"worker rank {first} of {self.processes} (pid {self._pids.get(first)})"
            words = self._words.get(first)
            if words and words[1] == "signal":
                how = f"{signal.strsignal(words[2])} (signal {words[2]}) from pid {words[3]}"
            else:
                how = exits.get(first) or exits.get(-1, "")
        else:
            first = None
            who = f"the workers (mpiexec pid {proc.pid if proc else '?'})"
            how = exits.get(-1, "")
        exit_string = f" ({how})" if how else ""
        return WorkerLostError(
            first,
            f"{who} died while job {job_id} ran{exit_string}; the other workers were stopped. "
            f"The next job starts new workers. {self._output_note()}",
        )

    def _send_failed(self, job_id: str, exc: OSError, cancelled: bool) -> BaseException:
        """A send to rank 0 failed: it timed out (rank 0 does not read) or the link is gone."""
        if isinstance(exc, (BlockingIOError, TimeoutError)):
            return self._unresponsive(job_id, [0], cancelled)
        return self._lost(job_id)

    def _unresponsive(self, job_id: str, silent: list[int], cancelled: bool = False) -> BaseException:
        """Ranks silent past the heartbeat timeout: kill the whole pool and name the culprit.

        A rank waiting for a silent peer inside an MPI call that holds the GIL
        (mpi4py's pickle-based collectives) cannot beat either, so the rank
        named is one whose process is stopped, else the one silent longest.
        """
        stopped = set()
        try:
            import psutil

            for r in silent:
                pid = self._pids.get(r)
                try:
                    if pid is not None and psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                        stopped.add(r)
                except psutil.Error:
                    pass
        except ImportError:
            pass
        rank = min(silent, key=lambda r: (r not in stopped, self._last_seen.get(r, 0.0), r))
        pid = self._pids.get(rank)
        state = ", its process is stopped (SIGSTOP?)" if rank in stopped else ""
        self._stop(kill=True)
        who = f"worker rank {rank} of {self.processes} (pid {pid})"
        text = (
            f"{who} stopped answering: no heartbeat for {self.heartbeat_timeout:g} s while job {job_id} ran{state}; "
            f"every worker was killed. The next job starts new workers (heartbeat_timeout= or "
            f"{ENV_HEARTBEAT_TIMEOUT} sets the wait). {self._output_note()}"
        )
        if cancelled:
            return JobCancelledError(f"job {job_id} was cancelled: {text}")
        return WorkerLostError(rank, text)

    def _output_note(self) -> str:
        """After the workers failed: where their output is kept, or, when they wrote none, that they
        did not (and their directory is removed: an empty log kept in /tmp helps no one)."""
        try:
            empty = os.path.getsize(self._log_path) == 0 if self._log_path else True
        except OSError:
            empty = True
        if not empty:
            return f"Worker output: {self._log_path}"
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        return "The workers wrote no output."

    def _log_tail(self, size: int = 4000) -> str:
        if not self._log_path:
            return ""
        try:
            with open(self._log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def portable_error(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RankFailedError with its type and text."""
    from aer_mpi.errors import RankFailedError

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RankFailedError(0, type(error).__name__, str(error))
