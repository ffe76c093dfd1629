"""The AER_MPI_* tuning variables (aer_mpi/environment.py): a value that cannot be read is an error
naming the variable, from the backend and the command line alike, never a silent default."""

from __future__ import annotations

import os

import pytest
from qiskit import QuantumCircuit

from aer_mpi import environment
from aer_mpi.errors import InvalidInputError

SOLO = not any(os.environ.get(v) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in environment.VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_unset_or_empty_gives_the_table_default(monkeypatch):
    assert environment.seconds("AER_MPI_WAIT_TIMEOUT") == 600.0
    monkeypatch.setenv("AER_MPI_AGREE_TIMEOUT", "  ")
    assert environment.seconds("AER_MPI_AGREE_TIMEOUT") == 60.0
    assert environment.switch("AER_MPI_NATIVE") is True
    assert environment.choice("AER_MPI_KERNELS") == "auto"
    environment.check_environment()


@pytest.mark.parametrize("text, value", [("12.5", 12.5), (" 3 ", 3.0), ("1e3", 1000.0)])
def test_seconds_are_read(monkeypatch, text, value):
    monkeypatch.setenv("AER_MPI_HEARTBEAT_TIMEOUT", text)
    assert environment.seconds("AER_MPI_HEARTBEAT_TIMEOUT") == value


@pytest.mark.parametrize("text", ["10m", "soon", "0", "-5", "nan", "inf", "1,5"])
def test_bad_seconds_name_the_variable_and_the_fix(monkeypatch, text):
    monkeypatch.setenv("AER_MPI_WORKER_START_TIMEOUT", text)
    with pytest.raises(InvalidInputError) as caught:
        environment.check_environment()
    message = str(caught.value)
    assert message.startswith(f"AER_MPI_WORKER_START_TIMEOUT={text!r}: expecting a number of seconds > 0")
    assert "default 120" in message and "fix or unset it" in message


@pytest.mark.parametrize("text, value", [("0", False), ("OFF", False), ("no", False), ("1", True), ("True", True)])
def test_switches_are_read(monkeypatch, text, value):
    monkeypatch.setenv("AER_MPI_CACHE_BLOCKING", text)
    assert environment.switch("AER_MPI_CACHE_BLOCKING") is value


def test_bad_switch_and_choice_are_errors(monkeypatch):
    monkeypatch.setenv("AER_MPI_NATIVE", "perhaps")
    with pytest.raises(InvalidInputError, match=r"AER_MPI_NATIVE='perhaps': expecting 0 or 1"):
        environment.check_environment()
    monkeypatch.delenv("AER_MPI_NATIVE")
    monkeypatch.setenv("AER_MPI_KERNELS", "NumPy")
    assert environment.choice("AER_MPI_KERNELS") == "numpy"
    monkeypatch.setenv("AER_MPI_KERNELS", "cuda")
    with pytest.raises(InvalidInputError, match="AER_MPI_KERNELS='cuda': expecting one of auto, numba, numpy"):
        environment.check_environment()


@pytest.mark.skipif(not SOLO, reason="builds a backend in this process")
def test_the_backend_refuses_a_bad_variable_before_any_work(monkeypatch):
    from aer_mpi import AerMPISimulator

    monkeypatch.setenv("AER_MPI_AGREE_TIMEOUT", "1 minute")
    with pytest.raises(InvalidInputError, match="AER_MPI_AGREE_TIMEOUT='1 minute'"):
        AerMPISimulator()
    monkeypatch.setenv("AER_MPI_AGREE_TIMEOUT", "90")
    qc = QuantumCircuit(1, 1)
    qc.x(0)
    qc.measure(0, 0)
    assert AerMPISimulator().run(qc, shots=5).result().get_counts() == {"1": 5}


@pytest.mark.skipif(not SOLO, reason="runs the command line in this process")
def test_the_command_line_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from aer_mpi.cli.app import main

    (tmp_path / "x.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nx q[0];\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AER_MPI_WAIT_TIMEOUT", "10m")
    assert main(["run", "x.qasm", "--shots", "4", "-q", "-o", "r.json", "--checkpoint", "ck"]) == 2
    assert "AER_MPI_WAIT_TIMEOUT='10m': expecting a number of seconds > 0" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["x.qasm"]


@pytest.mark.parametrize("text, value", [("1", 1), (" 250000 ", 250000)])
def test_counts_are_read(monkeypatch, text, value):
    monkeypatch.setenv("AER_MPI_MAX_LOOP_PASSES", text)
    assert environment.count("AER_MPI_MAX_LOOP_PASSES") == value


@pytest.mark.parametrize("text", ["0", "-3", "1e5", "many", "2.5"])
def test_bad_counts_name_the_variable_and_the_fix(monkeypatch, text):
    monkeypatch.setenv("AER_MPI_MAX_LOOP_PASSES", text)
    with pytest.raises(InvalidInputError, match=rf"AER_MPI_MAX_LOOP_PASSES='{text}': expecting a whole number > 0 .*"
                                                r"default 100000\); fix or unset it"):
        environment.check_environment()
