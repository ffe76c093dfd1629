"""Noise models -> Qobj noise instructions -> ir (no MPI): placement, conversions, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")

from qiskit import QuantumCircuit  # noqa: E402
from qiskit.quantum_info import Kraus, Pauli, SuperOp  # noqa: E402
from qiskit_aer.noise import (  # noqa: E402
    NoiseModel,
    QuantumError,
    ReadoutError,
    amplitude_damping_error,
    depolarizing_error,
    pauli_error,
    thermal_relaxation_error,
)

from aer_mpi import ir  # noqa: E402
from aer_mpi.errors import InvalidInputError  # noqa: E402
from aer_mpi.qobj.assemble import assemble_circuits  # noqa: E402
from aer_mpi.qobj.model import Qobj  # noqa: E402
from aer_mpi.qobj.noise import add_noise, superop_to_kraus  # noqa: E402
from aer_mpi.qobj.options import check_options  # noqa: E402
from aer_mpi.qobj.translate import to_program  # noqa: E402
from aer_mpi.engine.noise import apply_readout, defer_readout, reduced_density  # noqa: E402

CONFIG = {"shots": 10, "seed_simulator": 1}


def _noisy_names(circuit, model):
    qobj = add_noise(assemble_circuits([circuit], dict(CONFIG)), model)
    return [(i["name"], i.get("qubits")) for i in qobj.experiments[0].instructions], qobj


def test_placement_as_aer():
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["x"])
    model.add_quantum_error(pauli_error([("Z", 0.2), ("I", 0.8)]), ["x"], [1])  # replaces the all-qubit one on 1
    model.add_quantum_error(amplitude_damping_error(0.3), ["measure"], [0])
    model.add_quantum_error(depolarizing_error(0.2, 1), ["reset"], [1])
    model.add_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]), [0])
    qc = QuantumCircuit(2, 2)
    qc.x(0)
    qc.x(1)
    qc.h(1)  # no error on h
    qc.reset(1)
    qc.measure(0, 0)
    qc.measure(1, 1)
    names, qobj = _noisy_names(qc, model)
    assert names == [
        ("x", [0]), ("quantum_error", [0]),
        ("x", [1]), ("quantum_error", [1]),
        ("h", [1]),
        ("reset", [1]), ("quantum_error", [1]),
        ("quantum_error", [0]), ("measure", [0]), ("roerror", [0]),  # measure error before, readout after
        ("measure", [1]),
    ]
    inst = qobj.experiments[0].instructions
    assert inst[3]["probabilities"] == pytest.approx([0.2, 0.8]) or inst[3]["probabilities"] == pytest.approx([0.8, 0.2])
    # the Qobj stays JSON and validates
    again = Qobj.from_dict(json.loads(json.dumps(qobj.to_dict())))
    again.validate()
    program = to_program(again.experiments[0])
    kinds = [type(op).__name__ for op in program.ops]
    assert kinds.count("Noise") == 4 and kinds.count("Readout") == 1


def test_an_error_narrower_than_its_instruction_acts_on_its_first_qubits():
    """As Aer samples it: a 1-qubit error on every 'unitary' hits a 2-qubit unitary's first qubit
    (it was dropped), and the run's counts follow (an X with probability 1 flips qubit 2)."""
    from qiskit_aer import AerSimulator

    from aer_mpi import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_quantum_error(pauli_error([("X", 1.0)]), ["unitary"])
    qc = QuantumCircuit(3)
    qc.unitary(np.eye(4), [2, 1])
    qc.measure_all()
    names, _ = _noisy_names(qc, model)
    assert names[:2] == [("unitary", [2, 1]), ("quantum_error", [2])]
    for method in ("statevector", "density_matrix"):
        ours = AerMPISimulator(method=method, noise_model=model).run(qc, shots=50, seed_simulator=3).result()
        aers = AerSimulator(method=method, noise_model=model).run(qc, shots=50, seed_simulator=3).result()
        assert ours.get_counts() == aers.get_counts() == {"100": 50}


def test_an_error_wider_than_its_instruction_fails_the_job():
    from aer_mpi import AerMPISimulator

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 2), ["unitary"])
    qc = QuantumCircuit(2)
    qc.unitary(np.eye(2), [1])
    qc.measure_all()
    with pytest.raises(InvalidInputError, match="error on 2 qubits is attached to 'unitary'.* 1 qubit"):
        _noisy_names(qc, model)
    job = AerMPISimulator(noise_model=model).run(qc, shots=10)
    with pytest.raises(Exception, match="not be wider than its instruction"):
        job.result()
    assert job.status().name == "ERROR"


def test_a_measure_or_reset_of_several_qubits_takes_each_qubits_error():
    """Aer's rule for a measure (or reset) instruction on several qubits with no error of its own:
    each qubit's error (its local one, else the all-qubit one), on that qubit."""
    from aer_mpi.qobj.noise import noise_table

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["measure"])
    model.add_quantum_error(pauli_error([("X", 0.3), ("I", 0.7)]), ["measure"], [1])
    model.add_quantum_error(depolarizing_error(0.2, 2), ["reset"], [0, 2])
    table = noise_table(model)
    errors = table.quantum_errors("measure", [0, 1, 2])
    assert [e["qubits"] for e in errors] == [[0], [1], [2]]
    assert len(errors[1]["probabilities"]) == 2  # qubit 1's own Pauli error
    assert [e["qubits"] for e in table.quantum_errors("reset", [0, 2])] == [[0, 2]]  # its own 2-qubit error
    assert table.quantum_errors("reset", [0, 1]) == []


def test_no_error_on_the_circuit_leaves_the_qobj_unchanged():
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["sx"])
    qc = QuantumCircuit(1, 1)
    qc.h(0)
    qc.measure(0, 0)
    plain = assemble_circuits([qc], dict(CONFIG)).experiments[0].instructions
    names, qobj = _noisy_names(qc, model)
    assert qobj.experiments[0].instructions == plain
    assert not ir.is_dynamic(to_program(qobj.experiments[0]))


def test_dict_and_json_file_forms(tmp_path):
    model = NoiseModel()
    model.add_all_qubit_quantum_error(amplitude_damping_error(0.3), ["x"])
    model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]))
    qc = QuantumCircuit(1, 1)
    qc.x(0)
    qc.measure(0, 0)
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(model.to_dict(serializable=True)))
    a = _noisy_names(qc, model)[1].to_dict()
    b = _noisy_names(qc, json.loads(path.read_text()))[1].to_dict()
    c = _noisy_names(qc, str(path))[1].to_dict()
    for d in (a, b, c):
        d.pop("qobj_id", None)
    assert a == b == c
    (kraus,) = [op for op in to_program(_noisy_names(qc, model)[1].experiments[0]).ops if isinstance(op, ir.Noise)]
    expected = Kraus(amplitude_damping_error(0.3)).data
    assert len(kraus.kraus) == len(expected)


def test_superop_to_kraus_reproduces_the_channel():
    channel = SuperOp(thermal_relaxation_error(40, 30, 20))
    kraus = superop_to_kraus(channel.data, 1, "test")
    assert np.allclose(SuperOp(Kraus(kraus)).data, channel.data, atol=1e-10)
    two = SuperOp(depolarizing_error(0.3, 2))
    assert np.allclose(SuperOp(Kraus(superop_to_kraus(two.data, 2, "test"))).data, two.data, atol=1e-10)


def test_channels_placed_in_the_circuit():
    qc = QuantumCircuit(2, 2)
    qc.append(Kraus(amplitude_damping_error(0.4)), [0])
    qc.append(depolarizing_error(0.2, 2), [0, 1])  # an Aer QuantumError
    qc.append(QuantumError([(Pauli("X"), 1.0)]), [1])  # certain: just an X
    qobj = assemble_circuits([qc], dict(CONFIG))
    names = [i["name"] for i in qobj.experiments[0].instructions]
    assert names == ["kraus", "quantum_error", "quantum_error"]
    program = to_program(Qobj.from_dict(json.loads(json.dumps(qobj.to_dict()))).experiments[0])
    assert isinstance(program.ops[0], ir.Noise) and len(program.ops[0].kraus) == 2
    assert isinstance(program.ops[1], ir.Noise) and len(program.ops[1].branches) == 16
    assert program.ops[1].branches[0] == ()  # the identity first: it costs nothing
    assert isinstance(program.ops[2], ir.Gate) and program.ops[2].name == "x"


def test_non_cptp_channels_are_refused():
    qc = QuantumCircuit(1)
    bad = [np.sqrt(0.5) * np.eye(2), np.sqrt(0.6) * np.eye(2)]
    from qiskit.circuit import Instruction

    qc.append(Instruction("kraus", 1, 0, bad), [0])
    with pytest.raises(InvalidInputError, match="not CPTP"):
        assemble_circuits([qc], dict(CONFIG))
    model = {"errors": [{"type": "qerror", "operations": ["x"], "probabilities": [1.0],
                         "instructions": [[{"name": "kraus", "qubits": [0],
                                            "params": [m.tolist() for m in bad]}]]}]}
    qc2 = QuantumCircuit(1)
    qc2.x(0)
    with pytest.raises(InvalidInputError, match="not CPTP"):
        add_noise(assemble_circuits([qc2], dict(CONFIG)), model)
    with pytest.raises(InvalidInputError, match="adding up to 1"):
        add_noise(assemble_circuits([qc2], dict(CONFIG)),
                  {"errors": [{"type": "roerror", "operations": ["measure"], "probabilities": [[0.9, 0.3], [0, 1]]}]})
    with pytest.raises(InvalidInputError, match="noise_model"):
        check_options({"noise_model": 42})
    check_options({"noise_model": NoiseModel()})


def test_reduced_density_matches_partial_trace():
    from qiskit.quantum_info import DensityMatrix, Statevector, partial_trace, random_statevector

    sv = random_statevector(16, seed=3)
    rho = reduced_density(np.asarray(sv.data), (2, 0))
    expected = partial_trace(DensityMatrix(sv), [1, 3]).data  # qubits (0, 2) left; ours is ordered (2, 0)
    swap = np.eye(4)[[0, 2, 1, 3]]
    assert np.allclose(rho, swap @ expected @ swap, atol=1e-12)
    assert isinstance(sv, Statevector)


def test_reduced_density_reads_the_shard_piece_by_piece():
    """A Kraus error's probabilities copied the whole shard twice (a 30-qubit noisy run was killed
    for memory after its check had passed): now a piece at a time, the same matrix."""
    import tracemalloc

    n = 20
    rng = np.random.default_rng(5)
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    tensor = state.reshape((2,) * n)
    for positions in [(19, 2), (0,), (7, 12, 3)]:
        k = len(positions)
        m = np.moveaxis(tensor, [n - 1 - p for p in reversed(positions)], list(range(n - k, n))).reshape(-1, 1 << k)
        tracemalloc.start()
        got = reduced_density(state, positions)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        np.testing.assert_allclose(got, m.T @ m.conj(), rtol=1e-12, atol=1e-9)
        assert peak < state.nbytes / 4, peak / state.nbytes  # (it was twice the shard)


def test_readout_deferral_and_per_shot_application():
    assignment = np.array([[0.7, 0.3], [0.1, 0.9]])
    program = ir.Program(1, 1, (ir.Measure(0, 0), ir.Readout((0,), assignment)))
    body, readouts = defer_readout(program)
    assert len(readouts) == 1 and not ir.is_dynamic(body)
    values = np.zeros(20000, dtype=np.int64)
    flipped = apply_readout(values, readouts, seed=4)
    assert abs(flipped.mean() - 0.3) < 0.02
    assert np.array_equal(flipped, apply_readout(values, readouts, seed=4))
    # re-measured afterwards, or read by a condition: not deferred
    again = ir.Program(1, 1, program.ops + (ir.Measure(0, 0),))
    assert defer_readout(again)[1] == []


def _instructions(circuit, table_or_model):
    qobj = add_noise(assemble_circuits([circuit], dict(CONFIG)), table_or_model)
    return json.dumps([i for i in qobj.experiments[0].instructions], default=str, sort_keys=True)


def test_a_model_is_read_once_until_it_changes():
    from aer_mpi.qobj.noise import noise_dict, noise_table

    qc = QuantumCircuit(2, 2)
    qc.x(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["x"])
    first = noise_table(model)
    assert noise_table(model) is first  # the same errors: kept

    def fresh():  # what an uncached run inserts
        return _instructions(qc, noise_dict(model))

    changes = [
        lambda: model.add_all_qubit_quantum_error(depolarizing_error(0.2, 1), ["x"]),  # composed: a new object
        lambda: model.add_quantum_error(depolarizing_error(0.05, 2), ["cx"], [0, 1]),
        lambda: model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.1, 0.9]])),
        lambda: model.add_readout_error(ReadoutError([[0.8, 0.2], [0.3, 0.7]]), [1]),
        lambda: model.add_quantum_error(amplitude_damping_error(0.3), ["x"], [0]),
    ]
    seen = [first]
    for change in changes:
        change()
        table = noise_table(model)
        assert all(table is not old for old in seen)
        assert _instructions(qc, model) == fresh()
        assert noise_table(model) is table
        seen.append(table)
    # another model with equal errors has a table of its own
    other = NoiseModel()
    other.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["x"])
    assert noise_table(other) is not noise_table(model)


def test_a_duck_typed_model_is_read_on_every_run():
    from aer_mpi.qobj.noise import noise_table

    calls = []

    class Model:  # a to_dict() and nothing of Aer's layout
        def to_dict(self, serializable=False):
            calls.append(serializable)
            model = NoiseModel()
            model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["x"])
            return model.to_dict(serializable=serializable)

    model = Model()
    noise_table(model)
    noise_table(model)
    assert calls == [True, True]


def test_a_subclass_of_noisemodel_is_read_on_every_run():
    from aer_mpi.qobj.noise import noise_table

    class Drifting(NoiseModel):  # serialises itself otherwise: never cached
        def to_dict(self, serializable=False):
            self.calls = getattr(self, "calls", 0) + 1
            return super().to_dict(serializable=serializable)

    model = Drifting()
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), ["x"])
    noise_table(model)
    noise_table(model)
    assert model.calls == 2
