"""``aer-mpi run --noise-model FILE``: the file is NoiseModel.to_dict(serializable=True) as JSON."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import run_cli, tmp_path  # noqa: F401  (the private tmp_path fixture)

pytest.importorskip("qiskit_aer")

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'


def test_noise_model_file_same_counts_on_2_ranks_as_the_api(tmp_path):  # noqa: F811
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    from aer_mpi.provider.backend import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.2, 1), ["h"])
    model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]))
    (tmp_path / "noise.json").write_text(json.dumps(model.to_dict(serializable=True)))
    (tmp_path / "bell.qasm").write_text(BELL)
    done = run_cli(2, "run", "bell.qasm", "--shots", "500", "--seed", "7", "-q", "--noise-model", "noise.json",
                   "-o", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    counts = json.loads((tmp_path / "out.json").read_text())["results"][0]["counts"]
    circuit = QuantumCircuit.from_qasm_str(BELL)
    api = AerMPISimulator(comm=MPI.COMM_SELF).run(circuit, shots=500, seed_simulator=7, noise_model=model).result()
    assert counts == api.get_counts()
    assert set(counts) == {"00", "01", "10", "11"}


def test_bad_noise_model_file_is_one_error(tmp_path):  # noqa: F811
    (tmp_path / "bell.qasm").write_text(BELL)
    (tmp_path / "bad.json").write_text(json.dumps({"errors": [{"type": "qerror", "operations": ["h"],
        "probabilities": [1.0], "instructions": [[{"name": "kraus", "qubits": [0],
        "params": [[[[0.5, 0], [0, 0]], [[0, 0], [0.5, 0]]]]}]]}]}))
    done = run_cli(2, "run", "bell.qasm", "--noise-model", "bad.json", "-q", "-o", "out.json", cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.count("not CPTP") == 1, done.stderr
    assert not (tmp_path / "out.json").exists()


def test_noise_model_file_nested_too_deeply_is_named(tmp_path):  # noqa: F811
    """json's decoder recurses once per level: a hostile file gave a bare RecursionError."""
    (tmp_path / "bell.qasm").write_text(BELL)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    done = run_cli(2, "run", "bell.qasm", "--noise-model", "deep.json", "-q", "-o", "out.json", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("nested too deeply to be a noise model") == 1, done.stderr
    assert "RecursionError" not in done.stderr
    assert not (tmp_path / "out.json").exists()
