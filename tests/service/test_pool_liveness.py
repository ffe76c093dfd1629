"""Liveness of AerMPISimulator(processes=P): a worker that stops answering, fork safety,
loopback-only sockets and a working directory the workers never import from.

Each test starts its own small pool (2 workers) with a short heartbeat timeout.
"""

import ipaddress
import os
import shutil
import signal
import sys
import time

import psutil
import pytest
from qiskit import QuantumCircuit
from qiskit.providers import JobStatus

from aer_mpi import AerMPISimulator, InvalidInputError, WorkerLostError
from aer_mpi.comm.watchdog import shared_memory_files
from aer_mpi.service.pool import WorkerPool
from conftest import gone, long_circuit, wait_running

pytestmark = [
    pytest.mark.skipif(
        any(os.environ.get(v) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")),
        reason="starts its own workers: run in a plain process, not under mpiexec",
    ),
    pytest.mark.timeout(120),
]

HEARTBEAT = 2.0


def small_job_ok(backend):
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    counts = backend.run(qc, shots=100, seed_simulator=3).result().get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 100


def family_of(pool):
    """Every process of the pool: mpiexec, its proxies, the worker ranks."""
    root = psutil.Process(pool.mpiexec_pid)
    members = {root.pid} | {c.pid for c in root.children(recursive=True)} | set(pool.pids.values())
    return members


def socket_inodes(pids):
    """{inode: pid} of every socket the processes ``pids`` hold open."""
    inodes = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[int(target[len("socket:["):-1])] = pid
    return inodes


def proc_net_address(text):
    """'0100007F:1F90' (/proc/net/tcp) or its 32-digit IPv6 form -> (ip_address, port)."""
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is host order
    return ipaddress.ip_address(raw), int(port, 16)


def listening_sockets(pids):
    """(pid, table, address, port) of every socket of ``pids`` that can be reached.

    Read from /proc/net/{tcp,tcp6} (state 0A: listening) and /proc/net/{udp,udp6}
    (any bound datagram socket), matched to the processes by socket inode.
    """
    inodes = socket_inodes(pids)
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/net/{table}") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        for row in rows:
            pid = inodes.get(int(row[9]))
            if pid is None or (table.startswith("tcp") and row[3] != "0A"):
                continue
            ip, port = proc_net_address(row[1])
            found.append((pid, table, ip, port))
    return found


def exposed_sockets(pids):
    """The sockets of ``listening_sockets(pids)`` bound to anything but loopback."""
    def loopback(ip):
        mapped = getattr(ip, "ipv4_mapped", None)
        return ip.is_loopback or (mapped is not None and mapped.is_loopback)

    return [(pid, table, str(ip), port) for pid, table, ip, port in listening_sockets(pids) if not loopback(ip)]


def test_nothing_of_the_pool_listens_beyond_loopback():
    """The launcher and every worker, for the pool's life: at start, during a job, after it."""
    backend = AerMPISimulator(processes=2, heartbeat_timeout=10)
    pool = backend.workers
    try:
        family = family_of(pool)
        assert pool.mpiexec_pid in family and set(pool.pids.values()) <= family
        assert exposed_sockets(family) == []
        job = backend.run(long_circuit(18, 400), shots=1)
        wait_running(job)
        time.sleep(0.3)  # the ranks exchange amplitudes: every MPI connection is up
        family = family_of(pool)
        # the ranks' own MPI listeners are seen (so the check reads the tables right), on loopback
        assert {pid for pid, *_ in listening_sockets(family)} & set(pool.pids.values())
        assert exposed_sockets(family) == []
        job.cancel()
        job.wait_for_final_state(timeout=60, wait=0.05)
        small_job_ok(backend)
        assert exposed_sockets(family_of(pool)) == []
    finally:
        backend.close()


def test_stopped_worker_is_lost_within_the_heartbeat_timeout_then_cancel_ends_such_a_job():
    backend = AerMPISimulator(processes=2, heartbeat_timeout=HEARTBEAT)
    pool = backend.workers
    assert pool.heartbeat_timeout == HEARTBEAT
    try:
        job = backend.run(long_circuit(20, 1000), shots=10, seed_simulator=1)
        wait_running(job)
        time.sleep(0.3)
        family = family_of(pool)
        # MPICH's shared-memory file: removed at MPI_Finalize, which killed ranks never reach
        segments = shared_memory_files(pool.pids.values())
        assert segments or not sys.platform.startswith("linux")
        victim = pool.pids[1]
        os.kill(victim, signal.SIGSTOP)
        stopped_at = time.monotonic()
        with pytest.raises(WorkerLostError, match=r"worker rank 1 of 2 .*stopped answering") as info:
            job.result(timeout=HEARTBEAT + 30)
        took = time.monotonic() - stopped_at
        assert info.value.rank == 1
        assert job.status() == JobStatus.ERROR
        assert took < HEARTBEAT + 10, took
        assert gone(family, 10) == [], "the pool left processes behind"
        assert [f for f in segments if os.path.exists(f)] == [], "the pool left its shared memory behind"

        # the same backend starts new workers; cancel() of a job whose worker stopped ends it
        small_job_ok(backend)
        job = backend.run(long_circuit(20, 1000), shots=10, seed_simulator=1)
        wait_running(job)
        time.sleep(0.3)
        family = family_of(pool)
        os.kill(pool.pids[0], signal.SIGSTOP)
        assert job.cancel()
        deadline = time.monotonic() + HEARTBEAT + 30
        while job.status() not in (JobStatus.CANCELLED, JobStatus.ERROR):
            assert time.monotonic() < deadline, job.status()
            time.sleep(0.05)
        assert job.status() == JobStatus.CANCELLED, job.error_message()
        assert gone(family, 10) == []
        small_job_ok(backend)  # and the next job runs, on new workers
    finally:
        backend.close()


def test_heartbeat_timeout_is_validated(monkeypatch):
    for bad in (0, -1, float("nan"), float("inf"), "3", True):
        with pytest.raises(InvalidInputError, match="heartbeat_timeout"):
            WorkerPool(2, heartbeat_timeout=bad)
    monkeypatch.setenv("AER_MPI_HEARTBEAT_TIMEOUT", "soon")
    with pytest.raises(InvalidInputError, match="AER_MPI_HEARTBEAT_TIMEOUT='soon'"):
        WorkerPool(2)


def test_fork_child_exit_leaves_parent_pool_alone_loopback_only_and_private_cwd(tmp_path, monkeypatch):
    # a planted module in the caller's directory that would leave a marker if imported
    marker = tmp_path / "imported.marker"
    for name in ("mpi4py", "numpy"):
        (tmp_path / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write('{name}\\n')\nraise ImportError('planted')\n"
        )
    monkeypatch.chdir(tmp_path)
    backend = AerMPISimulator(processes=2, heartbeat_timeout=10)
    pool = backend.workers
    try:
        small_job_ok(backend)
        assert not marker.exists(), marker.read_text()
        for pid in pool.pids.values():
            assert psutil.Process(pid).cwd() != str(tmp_path)

        assert exposed_sockets(family_of(pool)) == []

        # a forked child that exits (running close(), as its atexit handlers would) leaves the pool alone
        directory = os.path.dirname(pool.log_path)
        pid = os.fork()
        if pid == 0:  # the child
            try:
                backend.close()
                pool.close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert os.path.isdir(directory)
        assert pool.alive() and not pool.closed
        small_job_ok(backend)
    finally:
        backend.close()


def test_a_worker_silent_in_the_start_up_handshake_is_a_clear_start_error(tmp_path, monkeypatch):
    """A "worker" that connects and then never answers: WorkerStartError within the start timeout."""
    from aer_mpi import WorkerStartError

    fake = tmp_path / "mpiexec"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import os, socket, time\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(os.environ['AER_MPI_WORKER_ADDRESS'])\n"
        "time.sleep(60)\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("AER_MPI_MPIEXEC", str(fake))
    started = time.monotonic()
    with pytest.raises(WorkerStartError, match=r"did not complete the start-up handshake|were not ready after 2 s"):
        WorkerPool(2, start_timeout=2, heartbeat_timeout=30)
    assert time.monotonic() - started < 15


def test_the_rank_that_died_is_named_even_when_the_pool_looks_late(monkeypatch):
    """The launcher stops the other ranks within milliseconds of one's death; a pool thread
    that looks only later (a loaded machine) sees every rank gone. Rank 2 of 3 is killed while
    the pool's thread stalls after each poll: the error still names rank 2 (before, the lowest
    rank gone, rank 0 or 1, could be named)."""
    from aer_mpi.service import pool as pool_module

    stall = {"seconds": 0.0}
    real_wait = pool_module.wait

    def late_wait(*args, **kwargs):
        ready = real_wait(*args, **kwargs)
        time.sleep(stall["seconds"])
        return ready

    monkeypatch.setattr(pool_module, "wait", late_wait)
    backend = AerMPISimulator(processes=3, heartbeat_timeout=10)
    pool = backend.workers
    try:
        job = backend.run(long_circuit(20, 1000), shots=10, seed_simulator=1)
        wait_running(job)
        time.sleep(0.3)
        family = family_of(pool)
        stall["seconds"] = 1.5
        time.sleep(0.1)  # the pool's thread is inside a stall now, or soon
        os.kill(pool.pids[2], signal.SIGKILL)
        with pytest.raises(WorkerLostError, match=r"worker rank 2 of 3 \(pid \d+\) died .*\(Killed \(signal 9\)\)") as info:
            job.result(timeout=60)
        assert info.value.rank == 2
        assert gone(family, 10) == []
        shutil.rmtree(os.path.dirname(pool.log_path), ignore_errors=True)  # kept for the user: ours to remove
    finally:
        stall["seconds"] = 0.0
        backend.close()
