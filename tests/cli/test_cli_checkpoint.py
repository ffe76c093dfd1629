"""Checkpoint and restart under ``mpiexec`` (issue 11): a run stopped by SIGTERM, or SIGKILLed
after a periodic checkpoint, resumes to bit-identical results, also at another rank count.

Each case writes its checkpoint at one of 1, 2, 4 ranks and resumes at
another (or the same): a static circuit (its final state written with
``--save-statevector`` must match bit for bit), a dynamic one (mid-circuit
measurement, conditional, reset: every shot's memory must match), and a
batch stopped in its last circuit (the finished ones are kept in the
checkpoint). The reference is one uninterrupted run at one rank. Every run
is under a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import mpiexec_or_skip
from test_cli_signals import long_qasm, small_qasm

#: Ceiling of one whole run (start-up under load included).
RUN_TIMEOUT = 240.0


def dynamic_qasm(qubits: int = 12, layers: int = 60) -> str:
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{qubits}];", f"creg c[{qubits}];", "creg m[1];"]
    for layer in range(layers):
        for q in range(qubits):
            lines.append(f"rx({0.1 + 0.01 * ((layer + q) % 7)}) q[{q}];")
        for q in range(layer % 2, qubits - 1, 2):
            lines.append(f"cx q[{q}],q[{q + 1}];")
        if layer % 6 == 3:
            lines.append(f"measure q[{layer % qubits}] -> m[0];")
            lines.append(f"if(m==1) x q[{(layer + 1) % qubits}];")
            lines.append(f"reset q[{(layer + 2) % qubits}];")
    lines.append("measure q -> c;")
    return "\n".join(lines) + "\n"


CIRCUITS = {
    # long enough (a few seconds at one rank, without the cache tier that a run keeping
    # checkpoints leaves out) to be stopped after its second checkpoint, 0.4 s into the run
    "static": {"static.qasm": lambda: long_qasm(18, 150)},
    "dynamic": {"dyn.qasm": lambda: dynamic_qasm(12, 80)},
    "batch": {"small.qasm": lambda: small_qasm(1), "dyn.qasm": lambda: dynamic_qasm(10, 30),
              "static.qasm": lambda: long_qasm(18, 150)},
}


def write_circuits(directory: Path, kind: str) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in CIRCUITS[kind].items():
        (directory / name).write_text(text())
    return list(CIRCUITS[kind])


def command(ranks: int, files: list[str], *extra: str) -> list[str]:
    return [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-m", "aer_mpi", "run", *files, "--shots", "64",
            "--seed", "5", "--memory", "-o", "out.json", "--save-statevector", "sv", "-q", *extra]


def environment(kernels: str) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS=kernels)


def run_to_end(cwd: Path, ranks: int, files: list[str], kernels: str, *extra: str) -> dict:
    done = subprocess.run(command(ranks, files, *extra), cwd=cwd, env=environment(kernels), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    return json.loads((cwd / "out.json").read_text())


_REFERENCES: dict = {}


def reference(tmp_path_factory, kind: str, kernels: str) -> tuple[dict, Path]:
    """One uninterrupted run at one rank (once per kind and kernels: the two back ends may differ
    in the last bit; each is the same at any number of ranks)."""
    if (kind, kernels) not in _REFERENCES:
        cwd = tmp_path_factory.mktemp(f"reference-{kind}-{kernels}")
        files = write_circuits(cwd, kind)
        _REFERENCES[kind, kernels] = (run_to_end(cwd, 1, files, kernels), cwd)
    return _REFERENCES[kind, kernels]


def manifest(directory: Path):
    try:
        return json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def stopped_mid_run(cwd: Path, ranks: int, files: list[str], kernels: str, kind: str, how: str) -> None:
    """Start a run keeping checkpoints every 0.2 s; once one is on disk mid-run, stop it ``how``."""
    proc = subprocess.Popen(command(ranks, files, "--checkpoint", "ck", "--checkpoint-every", "0.2s"), cwd=cwd,
                            env=environment(kernels), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wanted_finished = len(files) - 1 if kind == "batch" else 0
    # SIGKILL: after a second periodic checkpoint, so the kill may land while a third is written
    wanted_generation = 2 if how == "SIGKILL" else 1
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            found = manifest(cwd / "ck")
            if (found and found.get("point") and found["generation"] >= wanted_generation
                    and len(found["finished_experiments"]) >= wanted_finished):
                break
            assert proc.poll() is None, f"the run ended before it could be stopped: make it longer\n{proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint was written mid-run"
            time.sleep(0.02)
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=RUN_TIMEOUT)
            assert proc.returncode == 143, err
            assert "checkpoint in ck" in err, err
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)  # ranks of a killed job are gone before the next job reads the directory
    assert manifest(cwd / "ck") is not None


def same_results(resumed: dict, expected: dict) -> None:
    assert resumed["success"] and expected["success"]
    for got, want in zip(resumed["results"], expected["results"]):
        assert got["counts"] == want["counts"]
        assert got["memory"] == want["memory"]


# (kind, how it is stopped, ranks that write the checkpoint, ranks that resume, kernels):
# each of 1, 2, 4 ranks writes and resumes, each kind is SIGTERMed and SIGKILLed. The users'
# numba kernels here; both back ends in tests/provider/test_checkpoint_api.py and
# tests/engine/test_relayout_mpi.py.
CASES = [
    ("static", "SIGTERM", 2, 4, "numba"),
    ("static", "SIGKILL", 4, 1, "numba"),
    ("dynamic", "SIGTERM", 1, 2, "numba"),
    ("dynamic", "SIGKILL", 2, 4, "numba"),
    ("batch", "SIGTERM", 4, 2, "numba"),
    ("batch", "SIGKILL", 1, 1, "numba"),
]


@pytest.mark.parametrize("kind, how, before, after, kernels", CASES)
def test_stopped_run_resumes_bit_identical(tmp_path, tmp_path_factory, kind, how, before, after, kernels):
    expected, expected_dir = reference(tmp_path_factory, kind, kernels)
    files = write_circuits(tmp_path, kind)
    stopped_mid_run(tmp_path, before, files, kernels, kind, how)
    resumed = run_to_end(tmp_path, after, files, kernels, "--resume", "ck")
    same_results(resumed, expected)
    if kind != "dynamic":  # the static circuit's final state, bit for bit
        assert np.array_equal(np.load(tmp_path / "sv" / "static.npy"), np.load(expected_dir / "sv" / "static.npy"))
    assert manifest(tmp_path / "ck") is None  # the job is done: its checkpoint is gone


def test_resume_of_a_directory_without_a_checkpoint_is_refused(tmp_path):
    files = write_circuits(tmp_path, "dynamic")
    (tmp_path / "empty").mkdir()
    done = subprocess.run(command(1, files, "--resume", "empty"), cwd=tmp_path, env=environment("numba"),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 2 and "no checkpoint there" in done.stderr
    assert not (tmp_path / "out.json").exists() and os.listdir(tmp_path / "empty") == []


def test_a_damaged_checkpoint_is_bad_input_exit_2_and_left_as_it_was(tmp_path):
    """Probe P: refused as the job starts, it went to the run's failures (exit 1); the table says 2."""
    files = write_circuits(tmp_path, "dynamic")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "manifest.json").write_text("{ not json")
    done = subprocess.run(command(1, files, "--checkpoint", "ck"), cwd=tmp_path, env=environment("numba"),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 2 and "damaged" in done.stderr, (done.returncode, done.stderr)
    assert not (tmp_path / "out.json").exists() and sorted(os.listdir(tmp_path / "ck")) == ["manifest.json"]


def test_one_directory_for_checkpoints_and_saved_states_is_refused(tmp_path):
    """The checkpoint's state files are removed when the job ends; saved states in the same directory whose
    names matched theirs (state-1-0.npy) were deleted with them, silently."""
    files = write_circuits(tmp_path, "dynamic")
    done = subprocess.run(command(1, files, "--checkpoint", "d", "--save-statevector", "./d"), cwd=tmp_path,
                          env=environment("numba"), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 2 and "is also the --save-statevector directory" in done.stderr
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_a_checkpoint_directory_the_run_created_goes_when_it_ends_empty(tmp_path, ranks):
    """A run refused by its circuit (too wide for memory) or one that finished left an empty folder it had
    made for --checkpoint; a folder the user made, or one holding anything, stays."""
    (tmp_path / "wide.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[44];\ncreg c[44];\n'
                                        'h q;\nt q;\nmeasure q -> c;\n')
    files = write_circuits(tmp_path, "batch")[:1]
    refused = subprocess.run(command(ranks, ["wide.qasm"], "--checkpoint", "ck"), cwd=tmp_path,
                             env=environment("numpy"), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert refused.returncode == 1 and "44 qubits need" in refused.stderr, refused.stderr
    assert not (tmp_path / "ck").exists()
    finished = subprocess.run(command(ranks, files, "--checkpoint", "ck2"), cwd=tmp_path,
                              env=environment("numpy"), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert finished.returncode == 0, finished.stderr
    assert not (tmp_path / "ck2").exists()
    (tmp_path / "mine").mkdir()
    kept = subprocess.run(command(ranks, files, "--checkpoint", "mine"), cwd=tmp_path,
                          env=environment("numpy"), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert kept.returncode == 0, kept.stderr
    assert (tmp_path / "mine").is_dir() and os.listdir(tmp_path / "mine") == []
