"""The aer-mpi command line, run for real under ``mpiexec -n P`` at each of conftest.RANKS.

Each multi-rank run is a subprocess with a timeout, so a hang fails the test
instead of eating CI's time. Runs are grouped (one ``mpiexec`` per rank count
does several checks) because every start costs seconds on a small machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm2, qasm3
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector

from aer_mpi.cli import errors as cli_errors
from aer_mpi.cli import inputs, outputs
from aer_mpi.service.filenames import safe_stem, unique_stems
from aer_mpi.provider.progress import ProgressBar, ProgressListener, ProgressLog, make_listener
from conftest import RANKS, fidelity, mpiexec_or_skip, working_ranks

REPO = Path(__file__).resolve().parents[2]
#: Seconds one aer-mpi run may take, MPI start-up included; a hang fails here.
RUN_TIMEOUT = 120
SHOTS = 20000


@pytest.fixture
def tmp_path():
    """A private temporary directory.

    Not pytest's own tmp_path: pytest keeps only its three latest base
    directories, and the pytest sessions that pytest-isolate-mpi (or anyone
    else on the machine) starts meanwhile may delete ours while it is in use.
    """
    folder = tempfile.mkdtemp(prefix="aer-mpi-test-")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def run_cli(ranks: int, *args: str, cwd: Path, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-m", "aer_mpi", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# -- the circuits -----------------------------------------------------------------------
def _circuit_a() -> QuantumCircuit:
    """9 qubits, gates on every qubit: at 4 ranks the layout changes and exchanges happen."""
    circuit = random_circuit(9, 8, max_operands=3, seed=21)
    circuit.measure_all()
    return circuit


def _circuit_b() -> QuantumCircuit:
    """7 qubits, registers measured in part and out of order (OpenQASM 3)."""
    circuit = random_circuit(7, 6, max_operands=2, seed=4)
    circuit.h(6)
    circuit.cx(6, 0)
    from qiskit import ClassicalRegister

    low, high = ClassicalRegister(2, "low"), ClassicalRegister(3, "high")
    circuit.add_register(low)
    circuit.add_register(high)
    circuit.measure([1, 0], low)
    circuit.measure([6, 4, 5], high)
    return circuit


def _circuit_dynamic() -> str:
    """A mid-circuit measurement and a reset: its final state differs per shot."""
    return (
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[4];\ncreg c[2];\n'
        "h q[0];\nmeasure q[0] -> c[0];\nreset q[0];\ncx q[1],q[2];\nx q[3];\nmeasure q[3] -> c[1];\n"
    )


def _write_inputs(folder: Path) -> dict[str, QuantumCircuit]:
    a, b = _circuit_a(), _circuit_b()
    (folder / "a.qasm").write_text(qasm2.dumps(a))
    (folder / "b.qasm3").write_text(qasm3.dumps(b))
    return {"a": a, "b": b}


@pytest.fixture(scope="module")
def runs() -> dict:
    """One run per rank count, shared by the checks below."""
    folder = Path(tempfile.mkdtemp(prefix="aer-mpi-test-cli-"))
    circuits = _write_inputs(folder)
    out = {}
    for ranks in RANKS:
        proc = run_cli(
            # shard even these small circuits over every rank: the sharded writes are under test
            ranks, "run", "a.qasm", "b.qasm3", "--shots", str(SHOTS), "--seed", "5", "--no-parallel-experiments",
            "--memory", "--output", f"out{ranks}.json", "--save-statevector", f"sv{ranks}", "--quiet",
            cwd=folder,
        )
        document = json.loads((folder / f"out{ranks}.json").read_text()) if proc.returncode == 0 else None
        out[ranks] = {"proc": proc, "doc": document}
    yield {"folder": folder, "circuits": circuits, "runs": out}
    shutil.rmtree(folder, ignore_errors=True)


def _ok(runs: dict, ranks: int) -> dict:
    run = runs["runs"][ranks]
    proc = run["proc"]
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return run["doc"]


def _expected_counts_probabilities(circuit: QuantumCircuit) -> dict[str, float]:
    """Exact probabilities of each count key (clbits in Qiskit's key format, registers split)."""
    state = Statevector(circuit.remove_final_measurements(inplace=False))
    probs = state.probabilities()
    measured = {}
    for item in circuit.data:
        if item.operation.name == "measure":
            measured[circuit.find_bit(item.clbits[0]).index] = circuit.find_bit(item.qubits[0]).index
    out: dict[str, float] = {}
    for index, p in enumerate(probs):
        if p < 1e-15:
            continue
        bits = ["0"] * circuit.num_clbits
        for clbit, qubit in measured.items():
            bits[clbit] = str((index >> qubit) & 1)
        parts, start = [], 0
        for register in circuit.cregs:
            parts.append("".join(reversed(bits[start : start + register.size])))
            start += register.size
        key = " ".join(reversed(parts))
        out[key] = out.get(key, 0.0) + p
    return out


@pytest.mark.parametrize("ranks", RANKS)
def test_counts_match_exact_probabilities(runs, ranks):
    doc = _ok(runs, ranks)
    assert doc["ranks"] == ranks and doc["seed"] == 5 and doc["backend"] == "aer_mpi_simulator"
    assert doc["job_id"] and doc["time_taken"] > 0
    results = {r["name"]: r for r in doc["results"]}
    assert list(results) == ["a", "b"]
    for index, (name, circuit) in enumerate(runs["circuits"].items()):
        r = results[name]
        # each circuit of a run has its own stream: seed + its index
        assert r["shots"] == SHOTS and r["seed"] == 5 + index and sum(r["counts"].values()) == SHOTS
        expected = _expected_counts_probabilities(circuit)
        assert set(r["counts"]) <= set(expected), name
        tvd = 0.5 * sum(abs(r["counts"].get(k, 0) / SHOTS - p) for k, p in expected.items())
        assert tvd < 0.05, (name, tvd)
        assert len(r["memory"]) == SHOTS and set(r["memory"]) == set(r["counts"])
    # --no-parallel-experiments: the circuits were sharded over every (working) rank
    assert results["a"]["metadata"]["working_ranks"] == working_ranks(ranks)
    if ranks >= 4:  # and the layout changed on the way
        assert results["a"]["metadata"]["exchanges"] > 0


@pytest.mark.parametrize("ranks", RANKS)
def test_statevector_files_match_statevector(runs, ranks):
    doc = _ok(runs, ranks)
    folder = runs["folder"]
    results = {r["name"]: r for r in doc["results"]}
    for name, circuit in runs["circuits"].items():
        path = folder / f"sv{ranks}" / f"{name}.npy"
        assert results[name]["statevector"] == f"sv{ranks}/{name}.npy"
        state = np.load(path, mmap_mode="r")
        assert state.dtype == np.complex128 and state.shape == (1 << circuit.num_qubits,)
        expected = Statevector(circuit.remove_final_measurements(inplace=False)).data
        assert fidelity(expected, state) > 1 - 1e-9, name
        assert abs(np.linalg.norm(state) - 1) < 1e-9
    assert not list((folder / f"sv{ranks}").glob("*.partial"))


def test_same_seed_same_counts_at_every_rank_count(runs):
    docs = {ranks: _ok(runs, ranks) for ranks in RANKS}
    for i in range(2):
        reference = docs[RANKS[0]]["results"][i]
        for ranks in RANKS[1:]:
            other = docs[ranks]["results"][i]
            assert other["counts"] == reference["counts"], (reference["name"], ranks)
            assert other["memory"] == reference["memory"], (reference["name"], ranks)


def test_quiet_run_prints_nothing(runs):
    proc = runs["runs"][2]["proc"]
    assert proc.stdout == "" and proc.stderr == ""


def test_dynamic_circuit_progress_lines_and_statevector_warning(tmp_path):
    """Progress goes to stderr as lines when it is not a terminal; a state that differs per shot is not saved."""
    (tmp_path / "mid.qasm").write_text(_circuit_dynamic())
    (tmp_path / "b.qasm3").write_text(qasm3.dumps(_circuit_b()))
    proc = run_cli(2, "run", "mid.qasm", "b.qasm3", "--shots", "200", "--seed", "1", "--output", "out.json",
                   "--no-parallel-experiments",
                   "--save-statevector", "sv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert any("circuit 1 of 2 (mid): started" in line for line in lines), proc.stderr
    assert any("circuit 2 of 2 (b): started" in line for line in lines), proc.stderr
    assert "aer-mpi: warning: mid.qasm: statevector not written" in proc.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    mid, b = doc["results"]
    assert mid["statevector"] is None and not (tmp_path / "sv" / "mid.npy").exists()
    assert set(mid["counts"]) == {"10", "11"} and sum(mid["counts"].values()) == 200  # c[1] is always 1
    assert b["statevector"] == "sv/b.npy" and (tmp_path / "sv" / "b.npy").exists()


def test_the_progress_log_names_the_small_circuits_other_ranks_run(tmp_path):
    """Small circuits shared among the ranks: rank 0's log named only its own (probe V: circuit 3,
    run on rank 1, never appeared); now every circuit has its line, the others' with their rank."""
    for name in ("x", "y", "z"):
        (tmp_path / f"{name}.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
                                               'h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n')
    proc = run_cli(2, "run", "x.qasm", "y.qasm", "z.qasm", "--shots", "10", "-o", "out.json", "--progress", "log",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    started = [line.split("] ", 1)[1] for line in proc.stderr.splitlines() if line.endswith(": started")]
    assert len(started) == 3 and sum(", on rank 1)" in line for line in started) >= 1, proc.stderr
    assert {line.split(" (")[0] for line in started} == {"circuit 1 of 3", "circuit 2 of 3", "circuit 3 of 3"}


# -- errors at 2 ranks: one line naming the file, non-zero, nobody hangs -----------------------
def test_bad_inputs_fail_fast_naming_the_file_at_2_ranks(tmp_path):
    (tmp_path / "good.qasm").write_text(qasm2.dumps(_circuit_a()))
    (tmp_path / "broken.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0]\ncx q[0],q[1];\n')
    (tmp_path / "broken.qasm3").write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\ncx q[0] q[1];\n')
    (tmp_path / "output-is-a-dir.json").mkdir()
    cases = [
        (["good.qasm", "broken.qasm"], "out.json", "broken.qasm:5:"),
        (["broken.qasm3"], "out.json", "broken.qasm3:5:"),
        (["good.qasm", "missing.qasm"], "out.json", "missing.qasm: no such file"),
        (["good.qasm"], "no-such-dir/out.json", "--output no-such-dir/out.json: directory"),
        (["good.qasm"], "output-is-a-dir.json", "--output output-is-a-dir.json: is a directory"),
    ]
    for files, output, message in cases:
        # a hang would hit the (short) timeout and fail the test
        proc = run_cli(2, "run", *files, "--output", output, cwd=tmp_path, timeout=60)
        assert proc.returncode == cli_errors.EXIT_BAD_INPUT, (files, proc.returncode, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.startswith("aer-mpi:")]
        assert len(lines) == 1, proc.stderr  # once, from rank 0
        assert message in lines[0], (message, proc.stderr)
        assert not (tmp_path / "out.json").exists()


def test_run_failure_exits_non_zero_on_every_rank(tmp_path):
    """An error inside the run (too little memory) ends the job on all ranks, naming the file."""
    circuit = QuantumCircuit(24, 1)
    circuit.h(range(24))
    for q in range(23):  # every qubit joined to the measured one: truncation leaves it at 24
        circuit.cx(q, q + 1)
    circuit.t(0)  # not Clifford: a Clifford circuit this wide would run on a stabilizer tableau
    circuit.measure(0, 0)
    (tmp_path / "big.qasm").write_text(qasm2.dumps(circuit))
    proc = run_cli(2, "run", "big.qasm", "--max-memory-mb", "8", "--output", "out.json", "--quiet", cwd=tmp_path)
    assert proc.returncode == cli_errors.EXIT_RUN_FAILED, proc.stderr
    assert "big.qasm (circuit 1 of 1 (big)): 24 qubits need" in proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_info_reports_versions_ranks_threads_and_memory(tmp_path):
    proc = run_cli(2, "info", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)  # printed once, by rank 0
    import aer_mpi
    import mpi4py
    import numpy
    import qiskit

    assert info["aer_mpi"] == aer_mpi.__version__ and info["qiskit"] == qiskit.__version__
    assert info["numpy"] == numpy.__version__ and info["mpi4py"] == mpi4py.__version__
    assert info["ranks"] == 2 and sum(info["nodes"].values()) == 2
    assert info["threads_per_rank"] >= 1 and info["memory_per_rank_bytes"] > 0
    assert info["mpi_library"]


# -- single-process checks of the pieces ------------------------------------------------------------
def test_read_circuit_errors_name_file_line_and_fix(tmp_path):
    cases = {
        "a.qasm": ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nfoo q[0];\n', "a.qasm:4:0: 'foo' is not defined"),
        "b.qasm3": ("OPENQASM 3.0;\nqubit[2 q;\n", "b.qasm3:2:8: missing ']'"),
        "c.qasm3": ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit q;\nnope q;\n', "c.qasm3:4:0:"),
        "d.txt": ("OPENQASM 2.0;\n", "d.txt: unknown kind of file '.txt'"),
        "e.qasm": ('OPENQASM 2.0;\ninclude "qelib1.inc";\ncreg c[1];\n', "e.qasm: the circuit has no qubits"),
        # probe P: a stray quote ended the message; valid OpenQASM 3 the importer lacks was "not valid"
        "g.qasm": ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nrx(1/0) q[0];\n', "g.qasm:4:4: cannot divide by zero"),
        "h.qasm3": ('OPENQASM 3.0;\ninclude "stdgates.inc";\ndef f(qubit a) { h a; }\nqubit[1] q;\nf(q[0]);\n',
                    "h.qasm3:3:0: SubroutineDefinition is valid OpenQASM 3 that the qiskit.qasm3 importer does not support"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(cli_errors.CliError) as info:
            inputs.read_circuit(str(tmp_path / name))
        assert str(info.value).startswith(str(tmp_path / name)) and message in str(info.value), str(info.value)
        assert str(info.value).count("'") % 2 == 0, str(info.value)  # no quote left unpaired
    (tmp_path / "f.qasm").write_bytes(b"OPENQASM 2.0;\n\xff\xfe")
    with pytest.raises(cli_errors.CliError, match=r"f\.qasm:2: not UTF-8"):
        inputs.read_circuit(str(tmp_path / "f.qasm"))
    with pytest.raises(cli_errors.CliError, match="is a directory"):
        inputs.read_circuit(str(tmp_path))


def test_openqasm3_in_a_dot_qasm_file_and_names_from_files(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    text3 = '// a comment\nOPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\ncx q[0], q[1];\n'
    (tmp_path / "x" / "my circuit.qasm").write_text(text3)
    (tmp_path / "y" / "my circuit.qasm").write_text(qasm2.dumps(_circuit_a()))
    sources = inputs.read_sources([str(tmp_path / "x" / "my circuit.qasm"), str(tmp_path / "y" / "my circuit.qasm")])
    assert [s.circuit.name for s in sources] == ["my_circuit", "my_circuit-2"]
    assert sources[0].circuit.num_qubits == 2 and sources[1].circuit.num_qubits == 9


def test_file_stems_are_safe_and_unique():
    assert safe_stem("../../etc/passwd") == "etc_passwd"
    assert safe_stem("...") == "circuit"
    assert unique_stems(["a", "A", "a", "b/c", "b c", ""]) == ["a", "A-2", "a-3", "b_c", "b_c-2", "circuit-5"]


def test_output_checks_and_atomic_json(tmp_path, monkeypatch):
    with pytest.raises(cli_errors.CliError, match="does not exist: create it first"):
        outputs.check_output(str(tmp_path / "nope" / "out.json"))
    with pytest.raises(cli_errors.CliError, match="is a directory"):
        outputs.check_output(str(tmp_path))
    with pytest.raises(cli_errors.CliError, match="exists and is not a directory"):
        (tmp_path / "file").write_text("x")
        outputs.check_statevector_dir(str(tmp_path / "file"))
    outputs.check_output(str(tmp_path / "out.json"))
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the probe left nothing behind

    target = tmp_path / "out.json"
    outputs.write_json_atomically(str(target), {"a": np.int64(3), "b": np.float32(0.5)})
    assert json.loads(target.read_text()) == {"a": 3, "b": 0.5}

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        outputs.write_json_atomically(str(target), {"a": 4})
    assert json.loads(target.read_text()) == {"a": 3, "b": 0.5}  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out.json"]  # no temporary left


def test_progress_listeners(tmp_path):
    import io

    stream = io.StringIO()
    log = ProgressLog(stream, interval=0.0)
    log.experiment(0, 2, "a")
    log.stage("simulating")
    log.steps(32, 64)
    log.experiment(1, 2, "b")
    assert log.where() == "circuit 2 of 2 (b)"
    log.close()
    lines = stream.getvalue().splitlines()
    assert "circuit 1 of 2 (a): started" in lines[0]
    assert "circuit 1 of 2 (a) simulating: step 32 of 64" in lines[1]
    assert "done: 2 circuits" in lines[-1]
    log.close(failed=True)
    assert "stopped in circuit 2 of 2 (b)" in stream.getvalue().splitlines()[-1]

    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.experiment(0, 1, "a")
    bar.stage("sampling")
    bar.steps(5, 10)
    bar.close()
    assert "circuit 1/1 a" in stream.getvalue() and "10/10" in stream.getvalue()

    assert isinstance(make_listener(True, io.StringIO()), ProgressLog)  # not a terminal: lines
    assert type(make_listener(False)) is ProgressListener
    with pytest.raises(ValueError):
        make_listener("loud")


@pytest.mark.parametrize("ranks", [2, 4])
def test_a_rank_that_stalls_before_the_run_ends_every_rank(tmp_path, ranks):  # noqa: F811
    """The last rank stops between reading the circuits and run() (a frozen node, SIGSTOP while it
    converts a large circuit): the others' agreement gives up after AER_MPI_AGREE_TIMEOUT, and every rank
    must end, the stalled one too. Before, rank 0 printed the error and then waited in MPI_Finalize for the
    stalled rank forever."""
    (tmp_path / "bell.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
                                        'h q[0];\ncx q[0],q[1];\nmeasure q -> c;\n')
    (tmp_path / "stall.py").write_text(
        "import sys, time\n"
        "from mpi4py import MPI\n"
        "from aer_mpi.provider.backend import AerMPISimulator\n"
        "from aer_mpi.cli.app import command_line\n"
        "if MPI.COMM_WORLD.Get_rank() == MPI.COMM_WORLD.Get_size() - 1:\n"
        "    AerMPISimulator._agreed_run = lambda self, *a: time.sleep(3600)\n"
        "sys.exit(command_line())\n")
    env = dict(os.environ, AER_MPI_AGREE_TIMEOUT="2", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    done = subprocess.run([mpiexec_or_skip(), "-n", str(ranks), sys.executable, "stall.py", "run", "bell.qasm",
                           "-q", "-o", "out.json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert done.returncode == cli_errors.EXIT_RUN_FAILED, done.stderr
    assert f"rank 0: rank {ranks - 1} did not call run() within 2 s" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_number_option_beyond_its_limit_says_the_limit_and_why(capsys):
    """Probe P: --shots 2**50 said only 'expecting an integer >= 0'."""
    from aer_mpi.cli.app import main

    with pytest.raises(SystemExit) as stopped:
        main(["run", "a.qasm", "-o", "out.json", "--shots", str(1 << 50)])
    assert stopped.value.code == 2
    assert "at most 2**40 (each shot's outcome takes 8 bytes), got '1125899906842624'" in capsys.readouterr().err
