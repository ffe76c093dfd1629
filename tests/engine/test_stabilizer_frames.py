"""Dynamic and noisy Clifford circuits on the tableau and Pauli frames (engine/stabilizer.py): exact
distributions of random feed-forward circuits (enumerated with qiskit.quantum_info), Pauli noise and
readout errors against Qiskit Aer, circuits wider than memory, and the same shots at 1, 2 and 4 ranks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.quantum_info import Statevector

from aer_mpi import AerMPISimulator
from aer_mpi.errors import InsufficientMemoryError
from conftest import MPI_TIMEOUT, RANKS


def run(backend, circuits, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the method warning
        return backend.run(circuits, **options).result()


def stabilizer_backend(**options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return AerMPISimulator(method="stabilizer", **options)


def exact_distribution(qc: QuantumCircuit) -> dict[str, float]:
    """Every branch of a dynamic circuit (measure, reset, if_else), enumerated on qiskit's Statevector."""
    branches = [(1.0, Statevector.from_label("0" * qc.num_qubits), [0] * qc.num_clbits)]

    def qubit(q):
        return qc.find_bit(q).index

    def clbit(c):
        return qc.find_bit(c).index

    def walk(data, branches):
        for instruction in data:
            op, qargs = instruction.operation, [qubit(q) for q in instruction.qubits]
            after = []
            for p, state, bits in branches:
                if op.name == "barrier":
                    after.append((p, state, bits))
                elif op.name in ("measure", "reset"):
                    probabilities = state.probabilities([qargs[0]])
                    for outcome in (0, 1):
                        if probabilities[outcome] < 1e-12:
                            continue
                        projector = np.diag([1.0 - outcome, float(outcome)])
                        collapsed = state.evolve(projector, [qargs[0]])
                        collapsed = collapsed / np.sqrt(probabilities[outcome])
                        new_bits = list(bits)
                        if op.name == "measure":
                            new_bits[clbit(instruction.clbits[0])] = outcome
                        elif outcome:
                            collapsed = collapsed.evolve(np.array([[0, 1], [1, 0]]), [qargs[0]])
                        after.append((p * probabilities[outcome], collapsed, new_bits))
                elif op.name == "if_else":
                    target, value = op.condition
                    if isinstance(target, ClassicalRegister):
                        read = sum(bits[clbit(c)] << j for j, c in enumerate(target))
                    else:
                        read = bits[clbit(target)]
                    body = op.blocks[0] if read == value else (op.blocks[1] if len(op.blocks) > 1 else None)
                    if body is None:
                        after.append((p, state, bits))
                    else:
                        after.extend(walk(body.data, [(p, state, bits)]))
                else:
                    after.append((p, state.evolve(op, qargs), bits))
            branches = after
        return branches

    distribution: dict[str, float] = {}
    for p, _, bits in walk(qc.data, branches):
        key = "".join(str(b) for b in reversed(bits))
        distribution[key] = distribution.get(key, 0.0) + p
    return distribution


def random_feed_forward_circuit(rng: np.random.Generator, n: int, width: int) -> QuantumCircuit:
    """Clifford gates, mid-circuit measurements, resets and Pauli corrections on one bit or a register."""
    qr, cr = QuantumRegister(n, "q"), ClassicalRegister(width, "c")
    qc = QuantumCircuit(qr, cr)
    one = [qc.h, qc.s, qc.sdg, qc.sx, qc.x, qc.y, qc.z]
    for _ in range(20):
        kind = int(rng.integers(8))
        a, b = (int(v) for v in rng.choice(n, size=2, replace=False))
        if kind <= 2:
            one[int(rng.integers(len(one)))](a)
        elif kind == 3:
            [qc.cx, qc.cz, qc.swap][int(rng.integers(3))](a, b)
        elif kind == 4:
            qc.measure(a, int(rng.integers(width)))
        elif kind == 5:
            qc.reset(a)
        elif kind == 6:
            with qc.if_test((cr[int(rng.integers(width))], int(rng.integers(2)))) as orelse:
                [qc.x, qc.z, qc.y][int(rng.integers(3))](a)
            with orelse:
                qc.z(b)
        else:
            with qc.if_test((cr, int(rng.integers(1 << width)))):
                qc.x(a)
                qc.y(b)
    for q in range(min(n, width)):
        qc.measure(q, q)
    return qc


def sampled(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {key.replace(" ", ""): value / total for key, value in counts.items()}


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def test_random_feed_forward_circuits_sample_their_exact_distribution():
    """Support exactly that of the enumerated branches; a small distance from their probabilities."""
    rng = np.random.default_rng(11)
    backend = stabilizer_backend()
    shots = 20_000
    for trial in range(8):
        qc = random_feed_forward_circuit(rng, n=4, width=4)
        exact = exact_distribution(qc)
        result = run(backend, qc, shots=shots, seed_simulator=trial)
        assert result.results[0].metadata["method"] == "stabilizer", trial
        counts = sampled(result.get_counts())
        assert set(counts) <= {k for k, v in exact.items() if v > 1e-9}, trial
        assert distance(counts, exact) < 0.03, trial


def test_a_measured_qubit_turned_by_h_is_random_again():
    """After a measurement the frame's Z part must be random again, or the second outcome would copy
    a fixed bit."""
    qc = QuantumCircuit(2, 4)
    qc.h(0)
    qc.measure(0, 0)
    qc.h(0)
    qc.measure(0, 1)
    qc.reset(1)
    qc.h(1)
    qc.measure(1, 2)
    qc.cx(1, 0)
    qc.h(1)
    qc.measure(1, 3)
    counts = run(stabilizer_backend(), qc, shots=16_000, seed_simulator=3).get_counts()
    assert len(counts) == 16 and all(800 < v < 1200 for v in counts.values()), counts


def teleport(prepare: str) -> QuantumCircuit:
    qr, c0, c1, out = QuantumRegister(3), ClassicalRegister(1), ClassicalRegister(1), ClassicalRegister(1)
    qc = QuantumCircuit(qr, c0, c1, out)
    getattr(qc, prepare)(0)
    qc.h(1)
    qc.cx(1, 2)
    qc.cx(0, 1)
    qc.h(0)
    qc.measure(0, c0[0])
    qc.measure(1, c1[0])
    with qc.if_test((c1, 1)):
        qc.x(2)
    with qc.if_test((c0, 1)):
        qc.z(2)
    getattr(qc, prepare)(2)  # each preparation here is its own inverse: qubit 2 ends in |0>
    qc.measure(2, out[0])
    return qc


@pytest.mark.parametrize("prepare", ["x", "h", "y"])
def test_teleportation_with_feed_forward_always_undoes_the_preparation(prepare):
    counts = run(stabilizer_backend(), teleport(prepare), shots=2000, seed_simulator=1).get_counts()
    assert all(key.startswith("0 ") for key in counts), counts
    assert len(counts) == 4  # the two measured bits are random


def test_switch_on_a_register_and_a_repeated_measurement():
    qc = QuantumCircuit(3)
    cr, out = ClassicalRegister(2, "c"), ClassicalRegister(2, "o")
    qc.add_register(cr)
    qc.add_register(out)
    qc.h(0)
    qc.h(1)
    qc.measure([0, 1], cr)
    with qc.switch(cr) as case:
        with case(0):
            pass
        with case(1, 2):
            qc.x(2)
        with case(case.DEFAULT):
            qc.y(2)
    qc.measure(2, out[0])
    qc.measure(2, out[1])  # measured again: the same bit
    counts = run(stabilizer_backend(), qc, shots=4000, seed_simulator=2).get_counts()
    assert set(counts) == {"00 00", "11 01", "11 10", "11 11"}
    assert all(800 < v < 1200 for v in counts.values())


def repetition_code(d: int, rounds: int) -> QuantumCircuit:
    """Syndrome rounds (measure, reset) with corrections fed forward, then the data measured."""
    data, ancilla = QuantumRegister(d, "d"), QuantumRegister(d - 1, "a")
    syndromes = [ClassicalRegister(d - 1, f"s{r}") for r in range(rounds)]
    final = ClassicalRegister(d, "f")
    qc = QuantumCircuit(data, ancilla, *syndromes, final)
    qc.x(data[0])
    qc.h(data[1])
    for syndrome in syndromes:
        for i in range(d - 1):
            qc.cx(data[i], ancilla[i])
            qc.cx(data[i + 1], ancilla[i])
        qc.measure(ancilla, syndrome)
        qc.reset(ancilla)
        with qc.if_test((syndrome[0], 1)):
            qc.x(data[0])
        with qc.if_test((syndrome, 3)):
            qc.z(data[min(2, d - 1)])
    qc.h(data[1])
    qc.measure(data, final)
    return qc


def pauli_noise_model():
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, pauli_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.05, 1), ["x", "h", "z"])
    model.add_all_qubit_quantum_error(depolarizing_error(0.05, 2), ["cx"])
    model.add_all_qubit_quantum_error(pauli_error([("X", 0.03), ("I", 0.97)]), ["measure"])
    model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]))
    return model


def test_pauli_noise_and_readout_errors_match_aer():
    """A noisy repetition code (depolarizing gates, X errors before measurements, readout errors, noise
    inside the fed-forward corrections): the distribution Aer's stabilizer method gives."""
    from qiskit_aer import AerSimulator

    model = pauli_noise_model()
    qc = repetition_code(3, 2)
    shots = 40_000
    ours = run(stabilizer_backend(noise_model=model), qc, shots=shots, seed_simulator=5)
    assert ours.results[0].metadata["method"] == "stabilizer" and ours.results[0].metadata["dynamic"]
    theirs = AerSimulator(method="stabilizer", noise_model=model).run(qc, shots=shots, seed_simulator=5).result()
    # about 0.025 between two samples of this size (0.023 between Aer's statevector and stabilizer)
    assert distance(sampled(ours.get_counts()), sampled(theirs.get_counts())) < 0.045


def test_non_pauli_noise_or_feed_forward_runs_as_the_statevector():
    from qiskit_aer.noise import NoiseModel, amplitude_damping_error

    damped = NoiseModel()
    damped.add_all_qubit_quantum_error(amplitude_damping_error(0.1), ["h"])
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    qc.measure(1, 1)
    result = run(stabilizer_backend(noise_model=damped), qc, shots=100, seed_simulator=1)
    assert result.results[0].metadata["method"] == "statevector"
    fed = QuantumCircuit(2, 2)
    fed.h(0)
    fed.measure(0, 0)
    with fed.if_test((fed.clbits[0], 1)):
        fed.h(1)  # not a Pauli: the shots' frames would need different tableaux
    fed.measure(1, 1)
    result = run(stabilizer_backend(), fed, shots=100, seed_simulator=1)
    assert result.results[0].metadata["method"] == "statevector"


def test_a_noisy_repetition_code_wider_than_memory_matches_aers_marginals():
    """41 qubits (no state vector holds them): the automatic method takes the tableau, as Aer's does,
    and every clbit's rate is Aer's."""
    from qiskit_aer import AerSimulator

    model = pauli_noise_model()
    qc = repetition_code(21, 2)
    shots = 4000
    ours = run(AerMPISimulator(noise_model=model), qc, shots=shots, seed_simulator=6)
    assert ours.results[0].metadata["method"] == "stabilizer"
    assert "automatic method" in ours.results[0].metadata["note"]
    theirs = AerSimulator(noise_model=model).run(qc, shots=shots, seed_simulator=6).result()
    assert theirs.results[0].metadata["method"] == "stabilizer"

    def rates(counts):
        ones = np.zeros(qc.num_clbits)
        for key, value in counts.items():
            ones += value * (np.array(list(key.replace(" ", "")[::-1])) == "1")
        return ones / shots

    # a rate's standard error is at most 0.008 per sample here: 0.06 is over 5 of the difference's
    assert np.abs(rates(ours.get_counts()) - rates(theirs.get_counts())).max() < 0.06


def test_which_method_takes_the_tableau(tmp_path):
    """automatic: a noisy Clifford circuit (as Aer; a noiseless dynamic one shares its states across shots
    on the statevector); another state method: only one that does not fit; "statevector": never; a job
    that keeps checkpoints runs on the statevector when it fits."""
    model = pauli_noise_model()
    small, wide = repetition_code(3, 1), repetition_code(31, 1)

    def method(backend, qc, **options):
        return run(backend, qc, shots=50, seed_simulator=1, **options).results[0].metadata

    assert method(AerMPISimulator(noise_model=model), small)["method"] == "stabilizer"
    assert method(AerMPISimulator(), small)["method"] == "statevector"
    assert method(AerMPISimulator(noise_model=model, method="density_matrix"), small)["method"] == "statevector"
    kept = method(AerMPISimulator(noise_model=model), small, checkpoint_dir=str(tmp_path / "ck"))
    assert kept["method"] == "statevector"
    note = method(AerMPISimulator(noise_model=model, method="density_matrix"), wide)["note"]
    assert "does not fit" in note
    with pytest.raises(InsufficientMemoryError, match="61 qubits need"):
        run(AerMPISimulator(noise_model=model, method="statevector"), wide, shots=10)


def test_a_seed_repeats_and_memory_matches_counts():
    backend = stabilizer_backend(noise_model=pauli_noise_model())
    first = run(backend, repetition_code(5, 2), shots=300, seed_simulator=9, memory=True)
    second = run(backend, repetition_code(5, 2), shots=300, seed_simulator=9, memory=True)
    assert first.get_memory() == second.get_memory()
    memory = first.get_memory()
    assert {k: memory.count(k) for k in set(memory)} == first.get_counts()


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_the_same_noisy_dynamic_shots_at_every_rank_count(comm):
    """A 41-qubit noisy repetition code with feed-forward: every rank count gives one rank's shots."""
    from mpi4py import MPI

    model = pauli_noise_model()
    qc = repetition_code(21, 2)
    spread = run(AerMPISimulator(comm=comm, noise_model=model), qc, shots=200, seed_simulator=4, memory=True)
    alone = run(AerMPISimulator(comm=MPI.COMM_SELF, noise_model=model), qc, shots=200, seed_simulator=4,
                memory=True)
    assert spread.get_memory() == alone.get_memory()
    assert spread.results[0].metadata["method"] == "stabilizer"
    assert spread.results[0].metadata["ranks"] == comm.Get_size()


def test_a_long_frames_run_is_cancelled_between_blocks_of_shots():
    """The ranks meet after each block of shots: a cancel lands within a block, not after every shot."""
    import time
    from concurrent import futures

    from qiskit.providers import JobStatus

    qc = repetition_code(101, 10)  # 201 qubits: about 2 ms per shot here, so 10**6 shots take minutes
    job = AerMPISimulator(noise_model=pauli_noise_model()).run(qc, shots=10**6, seed_simulator=1)
    deadline = time.monotonic() + 60
    while job.status() != JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    asked = time.monotonic()
    assert job.cancel() is True
    job.wait_for_final_state(timeout=30, wait=0.05)
    assert job.status() == JobStatus.CANCELLED
    assert time.monotonic() - asked < 15  # a block is 2**25 bytes of frames: a few seconds at most
    with pytest.raises(futures.CancelledError):
        job.result()
