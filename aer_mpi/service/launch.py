"""How the worker processes of ``AerMPISimulator(processes=P)`` are launched, and how long anyone waits.

The settings of ``pool.WorkerPool``: which mpiexec starts the workers, the
environment they get, the start-up, heartbeat and close timeouts (each
settable by an environment variable, documented in docs/reliability.md),
and the checks of ``processes=`` and ``heartbeat_timeout=``.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
from pathlib import Path
from typing import Any

from aer_mpi import environment
from aer_mpi.errors import InvalidInputError, WorkerStartError

#: Environment variables that tell a worker where to connect and the key to prove itself.
ENV_ADDRESS = "AER_MPI_WORKER_ADDRESS"
ENV_AUTHKEY = "AER_MPI_WORKER_AUTHKEY"
#: Override for the mpiexec to launch (default: the one beside this Python, then PATH).
ENV_MPIEXEC = "AER_MPI_MPIEXEC"

#: Seconds between the pool's checks of its workers while a job runs.
POLL_SECONDS = 0.05
#: Seconds the workers may take to start (import numpy/qiskit, connect).
START_TIMEOUT = float(environment.VARIABLES["AER_MPI_WORKER_START_TIMEOUT"].default)
#: Seconds close() waits for the workers to leave before killing them.
CLOSE_TIMEOUT = 10.0
#: Environment variable with the default ``heartbeat_timeout`` (seconds).
ENV_HEARTBEAT_TIMEOUT = "AER_MPI_HEARTBEAT_TIMEOUT"
#: Environment variable that tells the workers how often to beat (seconds); set by the pool.
ENV_HEARTBEAT_INTERVAL = "AER_MPI_HEARTBEAT_INTERVAL"
#: Default seconds a worker rank may stay silent during a job before it is declared lost.
HEARTBEAT_TIMEOUT = float(environment.VARIABLES[ENV_HEARTBEAT_TIMEOUT].default)

#: Per-process variables of an enclosing MPI job (a singleton, ``mpiexec -n 1``); they
#: must not leak into the workers' mpiexec. Users' tuning variables (MPIR_CVAR_*,
#: HYDRA_*, OMPI_MCA_*) are kept.
MPI_ENV_PREFIXES = ("PMI_", "PMIX_", "OMPI_COMM_WORLD_", "OMPI_UNIVERSE_", "MPI_LOCALNRANKS", "MPI_LOCALRANKID")


def find_mpiexec() -> str:
    """The launcher of the MPI that mpi4py uses: $AER_MPI_MPIEXEC, beside Python, or on PATH.

    Where MPICH's ``mpiexec.gforker`` lies beside the mpiexec found (the PyPI
    ``mpich`` wheel ships it), it is chosen: it starts the ranks on this
    machine with ``fork`` and talks PMI to them over inherited socket pairs,
    so it listens on no network port (hydra's control port binds 0.0.0.0 for
    the pool's life, see docs/reliability.md). ``$AER_MPI_MPIEXEC`` is taken
    as it is.
    """
    chosen = os.environ.get(ENV_MPIEXEC)
    if chosen:
        return chosen
    found = None
    for name in ("mpiexec", "mpirun"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            found = str(beside)
            break
    if found is None:
        for name in ("mpiexec", "mpirun"):
            found = shutil.which(name)
            if found:
                break
    if found:
        gforker = Path(found).with_name("mpiexec.gforker")
        return str(gforker) if os.access(gforker, os.X_OK) else found
    raise WorkerStartError(
        "no mpiexec found to start the workers: pip install 'aer-mpi[mpich]' (MPI from PyPI), "
        f"or set {ENV_MPIEXEC} to the mpiexec of the MPI that mpi4py was built with"
    )


def enclosing_mpi_size() -> int:
    """Ranks of the MPI job this process was started in (1 when none), read from the environment."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"):
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    return 1


def check_processes(processes: Any) -> int:
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        raise InvalidInputError(f"processes={processes!r}: expecting an integer >= 1 (the number of MPI workers)")
    size = enclosing_mpi_size()
    if size > 1:
        raise InvalidInputError(
            f"processes={processes} starts its own MPI workers, but this process is already one of "
            f"{size} MPI ranks: under mpiexec/srun build AerMPISimulator() without processes="
        )
    return processes


def default_heartbeat_timeout() -> float:
    """``$AER_MPI_HEARTBEAT_TIMEOUT`` if set (seconds), else ``HEARTBEAT_TIMEOUT``; a bad value is an error."""
    return environment.seconds(ENV_HEARTBEAT_TIMEOUT)


def start_timeout() -> float:
    """``$AER_MPI_WORKER_START_TIMEOUT`` if set (seconds), else ``START_TIMEOUT``; a bad value is an error."""
    return environment.seconds("AER_MPI_WORKER_START_TIMEOUT")


def check_heartbeat_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
        raise InvalidInputError(
            f"heartbeat_timeout={value!r}: expecting a number of seconds > 0 "
            "(how long a worker may stay silent during a job before it is declared lost)"
        )
    return float(value)


def heartbeat_interval(timeout: float) -> float:
    """How often the workers beat: several beats per timeout, at most every 5 s."""
    return max(0.02, min(5.0, timeout / 6.0))


def set_socket_timeouts(sock: socket.socket, seconds: float) -> None:
    """Bound every blocking read and write on ``sock`` (kept by the fd, so by a Connection too)."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def is_gforker(mpiexec: str) -> bool:
    """MPICH's fork launcher (no network port; reports each rank's exit, ``[0]1:Return code = ...``)."""
    return "gforker" in Path(mpiexec).name


def is_hydra(mpiexec: str) -> bool:
    """MPICH's hydra launcher (takes ``-iface``): its proxy lies beside it."""
    return not is_gforker(mpiexec) and Path(mpiexec).with_name("hydra_pmi_proxy").exists()


def process_alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:  # gone, or psutil cannot see it
        return False
