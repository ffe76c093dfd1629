"""A rank that freezes mid-run (SIGSTOP) becomes a clear error within AER_MPI_WAIT_TIMEOUT and the
job ends, every process included (comm/watchdog.py)."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from aer_mpi import environment
from aer_mpi.comm import watchdog
from aer_mpi.errors import InvalidInputError
from conftest import mpiexec_or_skip

REPO = Path(__file__).resolve().parents[2]

STALL = """
import os, signal
from mpi4py import MPI
from qiskit import QuantumCircuit
from aer_mpi import AerMPISimulator
import {module} as where

if MPI.COMM_WORLD.rank == {stopped}:
    calls = [0]
    original = where.{function}

    def frozen_at_the_second_call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            os.kill(os.getpid(), signal.SIGSTOP)  # frozen in the middle of the run
        return original(*args, **kwargs)

    where.{function} = frozen_at_the_second_call
qc = QuantumCircuit(12)
for layer in range(6):
    qc.h(range(12))
    for q in range(11):
        qc.cx(q, q + 1)
qc.measure_all()
AerMPISimulator(min_local_qubits=2, cache_qubits=4, parallel_experiments=False).run(qc, shots=10).result()
print("finished")
"""


# frozen in a kernel (the others wait in the next collective) or between the agreement before an
# amplitude exchange and the exchange itself (the others wait in the exchange's own transfers)
FROZEN_IN = {"stage": ("aer_mpi.kernels", "apply_stage"),
             "exchange": ("aer_mpi.comm.exchange", "BitSwapExchange._buffer_rows")}


@pytest.mark.parametrize("ranks,stopped,frozen_in", [(2, 1, "stage"), (4, 0, "stage"), (2, 0, "exchange"),
                                                     (4, 3, "exchange")])
def test_a_frozen_rank_aborts_the_job_within_the_wait_timeout(tmp_path, ranks, stopped, frozen_in):
    module, function = FROZEN_IN[frozen_in]
    script = tmp_path / "stall.py"
    script.write_text(textwrap.dedent(STALL.format(stopped=stopped, module=module, function=function)))
    marker = f"stall-{uuid.uuid4().hex}"
    env = dict(os.environ, AER_MPI_WAIT_TIMEOUT="3", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    segments = set(glob.glob(watchdog.MPICH_SHARED_MEMORY + "*"))
    start = time.monotonic()
    done = subprocess.run([mpiexec_or_skip(), "-n", str(ranks), sys.executable, str(script), marker], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    # the abort skips MPI_Finalize, which unlinks MPICH's segment: the aborting rank unlinks it first
    # (a new one that a live process maps is another job's, running beside this test)
    new = set(glob.glob(watchdog.MPICH_SHARED_MEMORY + "*")) - segments
    live = set(watchdog.shared_memory_files([int(p) for p in os.listdir("/proc") if p.isdigit()],
                                            watchdog.MPICH_SHARED_MEMORY))
    assert not new - live, "MPICH's shared memory left in /dev/shm"
    assert time.monotonic() - start < 60
    # the abort's code, or the SIGKILL mpiexec sent the frozen rank, depending on which it reports
    assert done.returncode in (watchdog.WAIT_TIMEOUT_EXIT, 9, 128 + 9), done.stdout + done.stderr
    assert "waited" in done.stderr and "AER_MPI_WAIT_TIMEOUT=3" in done.stderr and "finished" not in done.stdout
    if shutil.which("pgrep"):
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        assert left.stdout.strip() == "", "processes left behind"


def test_the_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AER_MPI_WAIT_TIMEOUT", "12.5")
    assert watchdog.wait_timeout() == 12.5
    monkeypatch.setenv("AER_MPI_WAIT_TIMEOUT", "")
    assert watchdog.wait_timeout() == watchdog.DEFAULT_WAIT_TIMEOUT
    for bad in ("soon", "-1", "0", "nan", "inf"):
        monkeypatch.setenv("AER_MPI_WAIT_TIMEOUT", bad)
        # the entry points refuse it (tests/test_environment.py); the watch itself never stops watching
        with pytest.raises(InvalidInputError, match="AER_MPI_WAIT_TIMEOUT"):
            environment.check_environment()
        assert watchdog.wait_timeout() == watchdog.DEFAULT_WAIT_TIMEOUT


FROZEN_READING = """
import os, signal, sys
from mpi4py import MPI
import aer_mpi.cli.app as app

if MPI.COMM_WORLD.rank == 0:
    original = app.read_sources

    def frozen(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGSTOP)  # frozen while reading the circuits
        return original(*args, **kwargs)

    app.read_sources = frozen
sys.exit(app.main(["run", "bell.qasm", "--shots", "10", "--output", "out.json"]))
"""


def test_rank_0_frozen_reading_the_circuits_aborts_the_job_within_its_longer_bound(tmp_path):
    """The command line's other ranks wait for rank 0's file work FILE_WORK_TIMES the timeout."""
    (tmp_path / "bell.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
                                        "h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n")
    script = tmp_path / "frozen_reading.py"
    script.write_text(FROZEN_READING)
    marker = f"frozen-reading-{uuid.uuid4().hex}"
    env = dict(os.environ, AER_MPI_WAIT_TIMEOUT="0.5", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.monotonic()
    done = subprocess.run([mpiexec_or_skip(), "-n", "2", sys.executable, str(script), marker], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 60
    assert done.returncode in (watchdog.WAIT_TIMEOUT_EXIT, 9, 128 + 9), done.stdout + done.stderr
    assert "(rank 0 reading the circuits)" in done.stderr, done.stderr
    assert f"AER_MPI_WAIT_TIMEOUT=0.5, {watchdog.FILE_WORK_TIMES:g} times for this wait" in done.stderr
    assert not (tmp_path / "out.json").exists()
    if shutil.which("pgrep"):
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        assert left.stdout.strip() == "", "processes left behind"


HANGING_ABORT = """
import ctypes, time
from aer_mpi.comm import watchdog

watchdog.ABORT_GRACE_SECONDS = 1.0


class HangingAbort:  # a launcher that never answers MPI_Abort
    def Get_size(self):
        return 2

    def Get_rank(self):
        return 0

    def Abort(self, code):
        # mpi4py's Abort holds the GIL: so does a C call through PyDLL, so no Python thread runs
        ctypes.PyDLL(None).sleep(3600)


with watchdog.bounded(HangingAbort(), "a wait that never ends"):
    time.sleep(3600)
"""


def test_the_rank_leaves_by_itself_when_mpi_abort_hangs(tmp_path):
    script = tmp_path / "hanging_abort.py"
    script.write_text(HANGING_ABORT)
    env = dict(os.environ, AER_MPI_WAIT_TIMEOUT="0.5")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # faulthandler's exit
    assert "a wait that never ends" in done.stderr and "Timeout" in done.stderr
    assert time.monotonic() - start < 30
