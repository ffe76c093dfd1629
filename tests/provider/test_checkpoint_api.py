"""Checkpoint and restart from the Python API (issue 11), in this process (one rank).

``cancel(checkpoint=True)`` stops a run after a checkpoint; running the same
circuits with the same ``checkpoint_dir`` resumes it, bit for bit (saved
statevector, counts, memory); the directory is emptied once the job is
done. A checkpoint of another job, or a damaged one, is refused with one
clear error and the directory is left exactly as it was. The multi-rank
cases (SIGTERM, SIGKILL, other rank counts) are in tests/cli/test_cli_checkpoint.py.
"""

from __future__ import annotations

import json
import os
import time
from concurrent import futures

import numpy as np
import pytest
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator
from aer_mpi.engine.checkpoint import MANIFEST, CheckpointError
from conftest import long_circuit, save_statevector


def dynamic_circuit(n=12, layers=40):
    qc = QuantumCircuit(n, n + 1)
    for layer in range(layers):
        qc.h(range(n))
        qc.cx(range(layer % 2, n - 1, 2), range(layer % 2 + 1, n, 2))
        if layer % 10 == 5:
            qc.measure(layer % n, layer % n)
            with qc.if_test((qc.clbits[layer % n], 1)):
                qc.rx(0.3, (layer + 1) % n)
            qc.reset((layer + 2) % n)
    qc.measure(range(n), range(n))
    return qc


def wait_for_checkpoint(directory, job, limit=60):
    """Wait until a periodic checkpoint of the engine is on disk (the run is mid-way)."""
    path = os.path.join(directory, MANIFEST)
    deadline = time.monotonic() + limit
    while True:
        if os.path.exists(path):
            try:
                with open(path) as handle:
                    if json.load(handle).get("point"):
                        return
            except ValueError:
                pass
        assert not job.done(), "the run ended before its first checkpoint: make it longer"
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)


def snapshot_of(directory):
    """Every file's name, size and content hash: to show nothing changed."""
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as handle:
            out[name] = hash(handle.read())
    return out


def stopped_run(backend, circuits, directory, **options):
    job = backend.run(circuits, checkpoint_dir=str(directory), checkpoint_every_seconds=0.05, **options)
    wait_for_checkpoint(str(directory), job)
    assert job.cancel(checkpoint=True)
    with pytest.raises(futures.CancelledError, match="checkpoint"):
        job.result(timeout=120)
    assert os.path.exists(os.path.join(directory, MANIFEST))


def long_static_circuit(kernels):
    """A static circuit long enough to be stopped after its first checkpoint: on an idle core (14, 150)
    took 0.16 s with numba and wrote its first checkpoint at 0.13 s, too late for the cancel (CI dry
    run); (16, 600) takes 1.2-1.5 s with numba, and the numpy kernels (about 12x slower on its fused
    3-qubit gates) need a quarter of the amplitudes and half the layers for about 2 s."""
    return long_circuit(16, 600) if kernels == "numba" else long_circuit(14, 300)


def noise_model():
    noise = pytest.importorskip("qiskit_aer.noise")
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.02, 1), ["h", "rx"])
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.03, 2), ["cx"])
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.05), ["reset"])
    model.add_all_qubit_readout_error(noise.ReadoutError([[0.97, 0.03], [0.05, 0.95]]))
    return model


@pytest.mark.parametrize("kind", ["static", "dynamic", "noisy"])
def test_cancel_with_checkpoint_then_resume_is_bit_identical(tmp_path, kernels, kind):
    backend = AerMPISimulator(noise_model=noise_model()) if kind == "noisy" else AerMPISimulator()
    if kind == "static":
        circuit = save_statevector(long_static_circuit(kernels))
    elif kind == "noisy":  # trajectories: the work stack holds copies shared by a noise event's sides
        circuit = dynamic_circuit(10, 30 if kernels == "numba" else 12)  # each run about 2 s
    else:
        # (12, 600) with numba: its first checkpoint 0.2 s into 0.4 s, idle; numpy takes 2-3x as long
        circuit = dynamic_circuit(12, 2000 if kernels == "numba" else 800)
    options = dict(shots=200, seed_simulator=17, memory=True)
    reference = backend.run(circuit, **options).result()
    stopped_run(backend, circuit, tmp_path / "ck", **options)
    resumed = backend.run(circuit, checkpoint_dir=str(tmp_path / "ck"), **options).result()
    assert resumed.get_memory() == reference.get_memory()
    assert resumed.get_counts() == reference.get_counts()
    if kind == "static":
        assert np.array_equal(np.asarray(resumed.get_statevector()), np.asarray(reference.get_statevector()))
    meta = resumed.results[0].metadata["checkpoint"]
    assert meta["resumed_from"]["experiment"] == 0
    assert os.listdir(tmp_path / "ck") == []  # done: nothing left to resume


# The tests below are about the checkpoint files, not the kernels: they run the numba kernels that users
# get (with the numpy ones each would take 15-25 s).
def test_resume_without_a_seed_takes_the_checkpoints_seed(tmp_path):
    backend = AerMPISimulator(kernels="numba")
    circuit = long_static_circuit("numba")
    stopped_run(backend, circuit, tmp_path / "ck", shots=100)
    seed = json.loads((tmp_path / "ck" / MANIFEST).read_text())["seed"]
    resumed = backend.run(circuit, checkpoint_dir=str(tmp_path / "ck"), shots=100).result()
    assert resumed.results[0].metadata["seed_simulator"] == seed
    assert resumed.get_counts() == backend.run(circuit, shots=100, seed_simulator=seed).result().get_counts()


def test_another_job_or_a_damaged_checkpoint_is_refused_and_left_as_it_was(tmp_path):
    backend = AerMPISimulator(kernels="numba")
    circuit = long_static_circuit("numba")
    directory = tmp_path / "ck"
    stopped_run(backend, circuit, directory, shots=100, seed_simulator=5)
    before = snapshot_of(directory)

    other = long_circuit(16, 601)
    with pytest.raises(CheckpointError, match="another job"):
        backend.run(other, checkpoint_dir=str(directory), shots=100, seed_simulator=5).result()
    with pytest.raises(CheckpointError, match="another job"):
        backend.run(circuit, checkpoint_dir=str(directory), shots=101, seed_simulator=5).result()
    with pytest.raises(CheckpointError, match="seed_simulator=5"):
        backend.run(circuit, checkpoint_dir=str(directory), shots=100, seed_simulator=6).result()
    assert snapshot_of(directory) == before

    # a flipped byte in the state file
    state = next(p for p in directory.iterdir() if p.name.startswith("state-"))
    data = bytearray(state.read_bytes())
    data[-5] ^= 0xFF
    state.write_bytes(bytes(data))
    damaged = snapshot_of(directory)
    with pytest.raises(CheckpointError, match="damaged"):
        backend.run(circuit, checkpoint_dir=str(directory), shots=100, seed_simulator=5).result()
    assert snapshot_of(directory) == damaged

    # a manifest that is not JSON
    (directory / MANIFEST).write_text("{not json")
    damaged = snapshot_of(directory)
    with pytest.raises(CheckpointError, match="damaged"):
        backend.run(circuit, checkpoint_dir=str(directory), shots=100, seed_simulator=5).result()
    assert snapshot_of(directory) == damaged


def test_a_hand_edited_manifest_is_a_clear_refusal_and_the_files_stay_private(tmp_path):
    import json

    backend = AerMPISimulator(kernels="numba")
    circuit = long_static_circuit("numba")
    directory = tmp_path / "ck"
    stopped_run(backend, circuit, directory, shots=100, seed_simulator=5)
    for entry in directory.iterdir():  # a checkpoint's files are the user's alone, state files included
        assert entry.stat().st_mode & 0o077 == 0, entry.name
    manifest = json.loads((directory / MANIFEST).read_text())
    state = directory / manifest["states"][0]

    def refused_with(edit, match):
        (directory / MANIFEST).write_text(json.dumps(edit(dict(manifest))))
        before = snapshot_of(directory)
        with pytest.raises(CheckpointError, match=match):
            backend.run(circuit, checkpoint_dir=str(directory), shots=100, seed_simulator=5).result()
        assert snapshot_of(directory) == before

    refused_with(lambda m: {k: v for k, v in m.items() if k != "generation"}, "generation None")
    refused_with(lambda m: dict(m, generation="x"), "generation 'x'")
    refused_with(lambda m: dict(m, generation=True), "generation True")
    refused_with(lambda m: dict(m, states=None), "states None")
    refused_with(lambda m: dict(m, states=["../" + state.name]), "not a file of the checkpoint directory")
    state.rename(directory / "elsewhere.npy")
    state.symlink_to(directory / "elsewhere.npy")
    refused_with(lambda m: m, "is a symbolic link")
    state.unlink()
    refused_with(lambda m: m, "is missing")


def test_checkpoint_options_are_checked():
    backend = AerMPISimulator()
    qc = QuantumCircuit(1)
    for bad in (0, -1, "soon", float("inf"), True):
        with pytest.raises(Exception, match="checkpoint_every_seconds"):
            backend.run(qc, checkpoint_every_seconds=bad).result()
    backend.set_options(checkpoint_every_seconds="10m")
    assert backend.options.checkpoint_every_seconds == 600.0


def test_worker_pool_checkpoints_in_the_callers_directory_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative checkpoint_dir is the caller's, not the workers'
    circuit = long_circuit(16, 300)
    options = dict(shots=100, seed_simulator=3, memory=True)
    with AerMPISimulator(processes=2, kernels="numba") as backend:
        reference = backend.run(circuit, **options).result()
        job = backend.run(circuit, checkpoint_dir="ck", checkpoint_every_seconds=0.05, **options)
        wait_for_checkpoint("ck", job)
        assert job.cancel(checkpoint=True)
        with pytest.raises(futures.CancelledError, match="checkpoint"):
            job.result(timeout=120)
        assert (tmp_path / "ck" / MANIFEST).exists()
        resumed = backend.run(circuit, checkpoint_dir="ck", **options).result()
    assert resumed.get_memory() == reference.get_memory()
    assert resumed.results[0].metadata["checkpoint"]["resumed_from"]["ranks"] == 2


def test_a_resumed_job_keeps_its_checkpoint_until_its_state_is_loaded(tmp_path):
    """A resumed job met its first meeting before loading the saved state; with the period already due
    there (a short period, or a slow start-up) it wrote a checkpoint without state, which removed the
    one it resumed from: the run then failed with "damaged", and the progress was lost."""
    backend = AerMPISimulator(kernels="numba")
    circuit = save_statevector(long_static_circuit("numba"))
    options = dict(shots=100, seed_simulator=5)
    reference = backend.run(circuit, **options).result()
    stopped_run(backend, circuit, tmp_path / "ck", **options)
    resumed = backend.run(circuit, checkpoint_dir=str(tmp_path / "ck"), checkpoint_every_seconds=1e-6,
                          **options).result()
    assert resumed.results[0].metadata["checkpoint"]["resumed_from"]["experiment"] == 0
    assert resumed.get_counts() == reference.get_counts()
    assert np.array_equal(np.asarray(resumed.get_statevector()), np.asarray(reference.get_statevector()))


def test_one_job_at_a_time_holds_a_checkpoint_directory(tmp_path):
    """Two jobs on one directory deleted each other's checkpoints; rank 0 now holds a lock from open to
    release, and a second job is refused naming the holder (the directory left as it was)."""
    import os

    from aer_mpi.engine import checkpoint

    directory = str(tmp_path / "ck")
    first = checkpoint._load(directory, "job-a", 1)
    assert first["created"] and first["lock_fd"] is not None
    with pytest.raises(CheckpointError, match=rf"in use by another running job \(process {os.getpid()} on "):
        checkpoint._load(directory, "job-b", 2)
    assert os.listdir(directory) == [checkpoint.LOCK]
    checkpoint._unlock(directory, first["lock_fd"])
    assert os.listdir(directory) == []
    second = checkpoint._load(directory, "job-b", 2)  # free again
    checkpoint._unlock(directory, second["lock_fd"])
    # a whole run leaves no lock behind, and a run that created the directory takes it away
    backend = AerMPISimulator()
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure([0, 1], [0, 1])
    backend.run(qc, shots=10, checkpoint_dir=str(tmp_path / "fresh")).result()
    assert not (tmp_path / "fresh").exists()
    backend.run(qc, shots=10, checkpoint_dir=directory).result()
    assert os.listdir(directory) == []
