"""SIGINT / SIGTERM to ``mpiexec -n P aer-mpi run ...`` (hardening, issue 13), at 1, 2 and 3 ranks.

hydra forwards the signal to every rank; each rank's handler asks the engine
to stop, every rank stops at the same checkpoint (any rank's stop stops all),
and rank 0 writes the circuits that finished with the others marked
cancelled, atomically; no ``.npy`` of an unfinished circuit is left; the exit
status is 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import RANKS_WITH_IDLE, mpiexec_or_skip

#: The run must end this long after the signal.
EXIT_WITHIN = 10.0
#: Ceiling of one whole run (start-up under load included).
RUN_TIMEOUT = 150.0


def long_qasm(qubits: int = 20, layers: int = 400) -> str:
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];"]
    for layer in range(layers):
        for q in range(qubits):
            lines.append(f"rx({0.1 + 0.01 * ((layer + q) % 7)}) q[{q}];")
        for q in range(layer % 2, qubits - 1, 2):
            lines.append(f"cx q[{q}],q[{q + 1}];")
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"


def small_qasm(k: int) -> str:
    return (
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n'
        f"rx({0.1 * (k + 1)}) q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
    )


def interrupt_run(tmp: Path, ranks: int, files: list[str], signum: int, ready) -> tuple[int, float, str]:
    """Start the run, wait until ``ready()``, send ``signum`` to mpiexec; (exit status, seconds after the signal, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy")
    command = [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-m", "aer_mpi", "run", *files,
               "--shots", "64", "--seed", "3", "-o", "out.json", "--save-statevector", "sv", "--progress", "log"]
    proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got ready"
            time.sleep(0.05)
        time.sleep(1.0)  # a second into the long circuit
        assert proc.poll() is None, "the long circuit finished before the signal: make it longer"
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=EXIT_WITHIN + 20)
        return proc.returncode, time.monotonic() - sent, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("ranks", RANKS_WITH_IDLE)
def test_sigint_keeps_the_finished_circuit_and_exits_130(tmp_path, ranks):
    (tmp_path / "first.qasm").write_text(small_qasm(0))
    (tmp_path / "long.qasm").write_text(long_qasm())
    (tmp_path / "out.json").write_text('{"previous": true}\n')
    status, seconds, err = interrupt_run(
        tmp_path, ranks, ["first.qasm", "long.qasm"], signal.SIGINT,
        ready=lambda: (tmp_path / "sv" / "first.npy").exists(),
    )
    assert status == 130, err
    assert seconds < EXIT_WITHIN, (seconds, err)
    assert not (tmp_path / "sv" / "long.npy").exists()
    assert not [p for p in (tmp_path / "sv").iterdir() if p.name.startswith(".")]  # no temporary file left
    document = json.loads((tmp_path / "out.json").read_text())
    first, long = document["results"]
    assert first["status"] == "done" and sum(first["counts"].values()) == 64
    assert long["status"] == "cancelled" and long["counts"] is None
    assert document["success"] is False and "interrupted: 1 of 2 circuits finished" in err


@pytest.mark.parametrize("ranks", RANKS_WITH_IDLE)
def test_sigterm_saves_the_54_finished_files_of_55_and_exits_143(tmp_path, ranks):
    names = []
    for k in range(54):
        (tmp_path / f"s{k:02d}.qasm").write_text(small_qasm(k))
        names.append(f"s{k:02d}.qasm")
    (tmp_path / "zlong.qasm").write_text(long_qasm())
    names.append("zlong.qasm")
    sv = tmp_path / "sv"
    status, seconds, err = interrupt_run(
        tmp_path, ranks, names, signal.SIGTERM,
        ready=lambda: sv.is_dir() and sum(1 for p in sv.iterdir() if p.name.endswith(".npy")) >= 54,
    )
    assert status == 143, err
    assert seconds < EXIT_WITHIN, (seconds, err)
    assert not (sv / "zlong.npy").exists()
    document = json.loads((tmp_path / "out.json").read_text())
    statuses = [entry["status"] for entry in document["results"]]
    assert statuses == ["done"] * 54 + ["cancelled"], statuses
    assert all(sum(entry["counts"].values()) == 64 for entry in document["results"][:54])


#: Each rank of the command, then Slurm's time-limit warning and a first SIGTERM just after the
#: work, in the window where MPI finalises and the process exits (what ``aer-mpi`` itself runs).
AFTER_THE_WORK = """
import os, signal, sys
from aer_mpi.cli import main
status = main(sys.argv[1:], exiting=True)
os.kill(os.getpid(), signal.SIGUSR1)
os.kill(os.getpid(), signal.SIGTERM)
print("went on after the signals", flush=True)
sys.exit(status)
"""


@pytest.mark.parametrize("ranks", RANKS_WITH_IDLE)
def test_a_stop_signal_after_the_work_leaves_the_finished_run_exit_0(tmp_path, ranks):
    (tmp_path / "a.qasm").write_text(small_qasm(0))
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy")
    command = [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-c", AFTER_THE_WORK,
               "run", "a.qasm", "--shots", "64", "--seed", "3", "-o", "out.json", "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("went on after the signals") == ranks
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["success"] is True and sum(document["results"][0]["counts"].values()) == 64


#: The signals come while rank 0 writes the results, after every circuit has finished.
WHILE_WRITING = """
import os, signal, sys
import aer_mpi.cli.app as app
original = app.write_json_atomically

def write_after_the_signals(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGUSR1)
    return original(*args, **kwargs)

app.write_json_atomically = write_after_the_signals
sys.exit(app.main(sys.argv[1:], exiting=True))
"""


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_stop_signal_while_the_results_are_written_leaves_the_finished_run_exit_0(tmp_path, ranks):
    """Probe P: it gave 138 (143 for SIGTERM) and 'no checkpoint was written ...; a run again starts over'
    for a run that had finished and written every result (a requeue script then marked the job FAILED)."""
    (tmp_path / "a.qasm").write_text(small_qasm(0))
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy")
    command = [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-c", WHILE_WRITING,
               "run", "a.qasm", "--shots", "64", "--seed", "3", "-o", "out.json", "--checkpoint", "ck", "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "interrupted" not in done.stderr and "starts over" not in done.stderr, done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["success"] is True and sum(document["results"][0]["counts"].values()) == 64


def test_main_in_a_process_that_goes_on_gets_its_handlers_back(tmp_path, monkeypatch):
    """``main()`` without ``exiting`` (a test, a wrapper) puts back the handlers it found."""
    from aer_mpi.cli import main
    from aer_mpi.engine import interrupts

    (tmp_path / "a.qasm").write_text(small_qasm(1))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AER_MPI_KERNELS", "numpy")
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    try:
        assert main(["run", "a.qasm", "--shots", "8", "--seed", "1", "-o", "out.json", "--quiet"]) == 0
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        interrupts.clear_stop()


#: ``python -m aer_mpi``'s start, with Slurm's time-limit warning arriving before the run has
#: installed its handlers (while Qiskit and MPI are still being imported).
WHILE_STARTING = """
import os, signal, sys
from aer_mpi import _early_signals
_early_signals.hold()
os.kill(os.getpid(), signal.SIGUSR1)
from aer_mpi.cli import main
sys.exit(main(sys.argv[1:], exiting=True))
"""


def test_a_stop_signal_while_starting_stops_the_run_at_its_first_checkpoint(tmp_path):
    """Not a death by SIGUSR1 (no checkpoint, a requeue script left with nothing to resume): the run
    starts, checkpoints at its first meeting, stops and exits 138."""
    (tmp_path / "long.qasm").write_text(long_qasm(12, 60))
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy")
    command = [sys.executable, "-c", WHILE_STARTING, "run", "long.qasm", "--shots", "16", "--seed", "1",
               "-o", "out.json", "--checkpoint", "ck", "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 128 + signal.SIGUSR1, done.stderr
    assert (tmp_path / "ck" / "manifest.json").is_file(), done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["results"][0]["status"] == "cancelled"
    assert "checkpoint in ck" in done.stderr


#: The same, the signal arriving while the command line is parsed and the run's modules imported:
#: between the release of the held signals and the run's own handlers, it met its default action.
WHILE_PARSING = """
import os, signal, sys
from aer_mpi import _early_signals
_early_signals.hold()
import aer_mpi.cli.app as app
build_parser = app.build_parser

def parser_then_signal():
    os.kill(os.getpid(), signal.SIGUSR1)
    return build_parser()

app.build_parser = parser_then_signal
sys.exit(app.main(sys.argv[1:], exiting=True))
"""


def test_a_stop_signal_while_the_command_line_is_parsed_is_held_for_the_run(tmp_path):
    """The held signals were put back to their default action before the arguments were parsed and
    the run's handlers installed: a SIGUSR1 then killed the rank, nothing written (probe X: 4 of 27)."""
    (tmp_path / "long.qasm").write_text(long_qasm(12, 60))
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy")
    command = [sys.executable, "-c", WHILE_PARSING, "run", "long.qasm", "--shots", "16", "--seed", "1",
               "-o", "out.json", "--checkpoint", "ck", "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 128 + signal.SIGUSR1, (done.returncode, done.stderr)
    assert (tmp_path / "ck" / "manifest.json").is_file(), done.stderr


def test_a_repeated_sigusr1_never_kills_but_a_second_sigterm_does():
    """A requeue script repeats SIGUSR1 every 10 s until the ranks stop (slurm/aer-mpi-requeue.sbatch): a
    rank still starting or working toward its next checkpoint must not die of the repeat."""
    script = """
import os, signal, sys, time
from aer_mpi.engine.interrupts import install_signal_handlers, stop_requested
install_signal_handlers((signal.SIGINT, signal.SIGTERM, signal.SIGUSR1))
for _ in range(3):
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(0.05)
print("alive", stop_requested() == signal.SIGUSR1, flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # after a stop request (of another signal): the default action
time.sleep(2)
print("not reached", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["alive", "True"], (done.stdout, done.stderr)
    assert done.returncode == -signal.SIGTERM


def test_a_signal_held_while_starting_still_ends_a_command_that_runs_nothing():
    """``aer-mpi info`` has no run to stop: the SIGTERM held during the imports does what it would have."""
    script = WHILE_STARTING.replace("signal.SIGUSR1", "signal.SIGTERM")
    done = subprocess.run([sys.executable, "-c", script, "info"], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout[-300:], done.stderr[-300:])


RANK_WRAPPER = """
import os, signal, sys
rank = os.environ.get("PMI_RANK", "0")
with open(f"pid-{rank}", "w") as f:
    f.write(str(os.getpid()))
if os.environ.get("FREEZE_RANK") == rank:
    os.kill(os.getpid(), signal.SIGSTOP)  # frozen before MPI starts, as on a wedged node
if os.environ.get("STOP_TWICE_IN_FINALIZE") == rank:  # two SIGTERMs while MPI_Finalize waits at the exit
    import time
    from mpi4py import MPI
    finalize = MPI.Finalize

    def stopped_twice_then_finalize():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        finalize()

    MPI.Finalize = stopped_twice_then_finalize
if os.environ.get("PROGRESS_EVERY"):  # a progress line this often (seconds): the test sees the steps start
    from aer_mpi.provider.progress import ProgressLog
    ProgressLog.__init__.__defaults__ = (None, float(os.environ["PROGRESS_EVERY"]), "aer-mpi")
from aer_mpi.cli import command_line
sys.argv = ["aer-mpi", *sys.argv[1:]]
sys.exit(command_line())
"""


def _start_wrapped(tmp: Path, ranks: int, env_extra: dict, quiet: bool = True) -> subprocess.Popen:
    (tmp / "wrapper.py").write_text(RANK_WRAPPER)
    (tmp / "long.qasm").write_text(long_qasm(layers=2000))
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy", **env_extra)
    return subprocess.Popen([mpiexec_or_skip(), "-n", str(ranks), sys.executable, "wrapper.py", "run", "long.qasm",
                             "--shots", "8", "-o", "out.json", *(["-q"] if quiet else [])], cwd=tmp, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _read_stderr_until_stepping(proc: subprocess.Popen, lines: list, deadline: float) -> threading.Thread:
    """Collect ``proc``'s stderr lines into ``lines`` (in a thread, until the process ends); returns
    once rank 0 has printed a progress line of the circuit's steps (or at ``deadline``), so that a
    signal sent next lands in the simulation, not in the start-up or planning, which a stop ends at
    once or as soon as they end."""
    stepping = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if ": step " in line:
                stepping.set()
        stepping.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stepping.wait(max(0.0, deadline - time.monotonic()))
    return reader


@pytest.mark.parametrize("rank, stop", [(0, signal.SIGINT), (1, signal.SIGINT), (1, signal.SIGTERM)])
def test_a_second_ctrl_c_on_one_rank_ends_every_rank_at_once(tmp_path, rank, stop):
    """Ctrl-C twice to one rank (kill -INT twice): its KeyboardInterrupt ended that rank alone, and the
    other waited in a collective until the wait bound (600 s; an hour when it was rank 0). The other
    rank is frozen meanwhile, so the first stop cannot end the run before the second Ctrl-C (it did
    within 1 s in CI), and the signalled rank waits inside MPI, where no Python handler runs: the
    signal listener ends every rank. It took 10 s (AerJob.result() caught the KeyboardInterrupt and
    waited for the job) and a second SIGTERM ended that rank alone, by its default action, leaving
    its MPI shared memory (probe X): both now call the same end."""
    proc = _start_wrapped(tmp_path, 2, {"PROGRESS_EVERY": "0.5"}, quiet=False)
    lines: list = []
    other = None
    try:
        # into the simulation: under load 4 s after the ranks' start was still the start-up or planning
        reader = _read_stderr_until_stepping(proc, lines, time.monotonic() + RUN_TIMEOUT)
        assert proc.poll() is None, "".join(lines)
        other = int((tmp_path / f"pid-{1 - rank}").read_text())
        os.kill(other, signal.SIGSTOP)  # a stalled peer: the user's reason to press Ctrl-C twice
        pid = int((tmp_path / f"pid-{rank}").read_text())
        os.kill(pid, stop)
        # beyond interrupts.REPEAT_SECONDS: a second Ctrl-C, not the first delivered twice
        time.sleep(1.0)
        os.kill(pid, stop)
        sent = time.monotonic()
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if other is not None:
            try:
                os.kill(other, signal.SIGKILL)
            except ProcessLookupError:
                pass
    err = "".join(lines)
    # a hang bound, not a speed figure: MAIN_THREAD_GRACE (1 s), the abort's settle (0.5 s), the launcher
    assert time.monotonic() - sent < 6, err
    assert proc.returncode == 128 + stop, (proc.returncode, err)
    assert f"rank {rank}: interrupted again: ending every rank now" in err


def test_a_second_stop_while_mpi_finalizes_at_the_exit_still_ends_the_rank_through_the_handlers(tmp_path):
    """mpi4py finalizes MPI after Python has put every signal back to its default action: a second
    SIGTERM while MPI_Finalize waited for the other ranks killed the rank (hydra's BAD TERMINATION,
    exit 15) and left its MPICH shared memory (probe X). The run now finalizes while its handlers stand."""
    (tmp_path / "wrapper.py").write_text(RANK_WRAPPER)
    (tmp_path / "small.qasm").write_text(long_qasm(6, 5))
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy", STOP_TWICE_IN_FINALIZE="0")
    done = subprocess.run([mpiexec_or_skip(), "-n", "2", sys.executable, "wrapper.py", "run", "small.qasm",
                           "--shots", "8", "-o", "out.json", "-q"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 128 + signal.SIGTERM, (done.returncode, done.stderr)
    assert "aer-mpi: interrupted again: ending now" in done.stderr, done.stderr
    document = json.loads((tmp_path / "out.json").read_text())  # written before the exit: complete
    assert [r["status"] for r in document["results"]] == ["done"]


IN_A_LONG_C_CALL = """
import hashlib, os, signal, sys, threading, time
from aer_mpi.engine import interrupts

def ended(signum):
    print("ended now", signum, interrupts.stop_requested(), flush=True)
    os._exit(3)

interrupts.install_signal_handlers((signal.SIGINT, signal.SIGTERM), end_now=ended)
gaps = [float(gap) for gap in sys.argv[1:]]

def send():
    for gap in gaps:
        time.sleep(gap)
        os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=send, daemon=True).start()
start = time.monotonic()
while time.monotonic() - start < 6:  # C calls that return to Python only every few seconds
    hashlib.pbkdf2_hmac("sha256", b"p", b"s", 6_000_000)
print("returned", interrupts.stop_requested(), flush=True)
"""


@pytest.mark.parametrize("gaps, ends", [((0.5, 0.6), True), ((0.5, 0.3), True), ((0.5,), False),
                                        ((0.5, 0.0001), False)])
def test_a_second_ctrl_c_ends_the_process_while_the_main_thread_is_in_c(gaps, ends):
    """No Python handler runs while the main thread is in C (an MPI wait, a kernel), and two SIGINTs
    pending at once reach it as one: the second Ctrl-C was lost. The listener reads every delivery
    from the wakeup fd; two at once (GNU timeout's child and group) are still one stop."""
    done = subprocess.run([sys.executable, "-c", IN_A_LONG_C_CALL, *map(str, gaps)], capture_output=True,
                          text=True, timeout=120)
    if ends:
        # (the stop is requested only if the main thread was back in Python between the two)
        assert done.returncode == 3 and done.stdout.split()[:3] == ["ended", "now", "2"], (done.stdout, done.stderr)
    else:
        assert done.returncode == 0 and done.stdout.split() == ["returned", "2"], (done.stdout, done.stderr)


def test_a_rank_frozen_while_mpi_starts_ends_the_job_within_the_wait_bound(tmp_path):
    """A rank stopped before MPI_Init returns left the others spinning in MPI_Init forever, deaf to
    SIGTERM; now faulthandler's watchdog (a C thread) ends them after AER_MPI_WAIT_TIMEOUT."""
    proc = _start_wrapped(tmp_path, 2, {"FREEZE_RANK": "1", "AER_MPI_WAIT_TIMEOUT": "3"})
    start = time.monotonic()
    try:
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        frozen = tmp_path / "pid-1"
        if frozen.exists():
            try:
                os.kill(int(frozen.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode != 0 and time.monotonic() - start < 60, (proc.returncode, err)
    assert "Timeout (0:00:03)" in err and "start_mpi" in err, err
    assert not (tmp_path / "out.json").exists()


def test_one_stop_delivered_twice_at_once_stops_cleanly_but_a_later_one_ends_the_process():
    """GNU timeout signals its child and then its process group (probe P: the run died of the second
    SIGTERM, with no results, no checkpoint and its lock left); a repeat after REPEAT_SECONDS is a second stop."""
    script = """
import os, signal, time
from aer_mpi.engine import interrupts
interrupts.install_signal_handlers((signal.SIGINT, signal.SIGTERM))
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.05)
os.kill(os.getpid(), signal.SIGTERM)  # the handler ran in between: still the same stop
print("alive", interrupts.stop_requested() == signal.SIGTERM, flush=True)
time.sleep(interrupts.REPEAT_SECONDS + 0.2)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(2)
print("not reached", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["alive", "True"], (done.stdout, done.stderr)
    assert done.returncode == -signal.SIGTERM


def test_a_second_sigterm_while_the_results_are_written_leaves_no_temporary_file(tmp_path):
    """The second SIGTERM's default action skips every ``finally``: the results' hidden temporary file
    (``.out.json.*.tmp``) was left beside the output (probe P). Now it is removed before the process ends."""
    script = """
import os, signal, sys, time
from aer_mpi.engine import interrupts
from aer_mpi.cli.outputs import write_json_atomically
interrupts.install_signal_handlers((signal.SIGINT, signal.SIGTERM))

class StoppedTwiceWhileWritten:
    def __str__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(interrupts.REPEAT_SECONDS + 0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)
        return "not reached"

write_json_atomically(sys.argv[1], {"results": [StoppedTwiceWhileWritten()]})
print("not reached", flush=True)
"""
    target = tmp_path / "out.json"
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout, done.stderr)
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)


def test_an_abort_removes_the_file_being_written(tmp_path):
    """``abort_job`` (a peer failed, a wait ran out) ends the process without its ``finally`` clauses:
    a file registered as unfinished is removed first, others are kept."""
    from aer_mpi.comm import watchdog

    script = """
import sys
from aer_mpi.comm import watchdog

class NoWorld:
    def Abort(self, status):
        raise SystemExit(status)

with open(sys.argv[1], "w") as f:
    f.write("partial")
with watchdog.unfinished_file(sys.argv[1]):
    watchdog.abort_job(NoWorld(), 75)
"""
    partial, kept = tmp_path / ".out.json.x.tmp", tmp_path / "kept.json"
    kept.write_text("{}")
    done = subprocess.run([sys.executable, "-c", script, str(partial)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 75, (done.returncode, done.stderr)
    assert sorted(os.listdir(tmp_path)) == ["kept.json"]
    assert not watchdog._unfinished_files
