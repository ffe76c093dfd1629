"""Single-process layers of the semantics work: Pauli kernels, classical expressions, save Qobj validation."""

import numpy as np
import pytest
from qiskit.quantum_info import Pauli, Statevector, random_statevector

from aer_mpi import ir, kernels
from aer_mpi.errors import QobjValidationError
from aer_mpi.qobj import Qobj, QobjExperiment


def _masks(label: str) -> tuple[int, int, int]:
    x = z = ny = 0
    for j, c in enumerate(reversed(label)):
        x |= (c in "XY") << j
        z |= (c in "ZY") << j
        ny += c == "Y"
    return x, z, ny


@pytest.mark.parametrize("n", [1, 3, 7, 18])
def test_pauli_sums_match_quantum_info(n, rng):
    state = random_statevector(2**n, seed=n).data
    labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(12)]
    for label in labels:
        x, z, ny = _masks(label)
        (value,) = kernels.pauli_sums(state, x, [z])
        expected = Statevector(state).expectation_value(Pauli(label))
        assert abs(value * 1j**ny - expected) < 1e-12, label
    # several Z-masks sharing an X-mask in one pass
    x = _masks(labels[0])[0]
    zs = [int(v) for v in rng.integers(0, 2**n, 5)]
    together = kernels.pauli_sums(state, x, zs)
    alone = [kernels.pauli_sums(state, x, [z])[0] for z in zs]
    assert np.allclose(together, alone, atol=1e-13)


def test_pauli_block_sums_pair_blocks_as_documented():
    state = random_statevector(2**6, seed=1).data
    x, z = 0b101101, 0b110011
    block = 8
    total = 0
    for offset in range(0, 64, block):
        partner = state[(offset ^ (x & ~(block - 1))):][:block]
        total += kernels.pauli_block_sums(state[offset : offset + block], partner, offset, x & (block - 1), [z])[0]
    assert abs(total - kernels.pauli_sums(state, x, [z])[0]) < 1e-13


def test_marginal_probabilities_and_nonzero_entries():
    state = random_statevector(2**9, seed=4).data
    for positions in ([0], [8, 2], [3, 0, 5], list(range(9))):
        expected = Statevector(state).probabilities(positions)
        assert np.allclose(kernels.marginal_probabilities(state, positions), expected, atol=1e-14)
    sparse = np.zeros(2**12, dtype=complex)
    sparse[[3, 700, 4000]] = [0.6, 0.8j, 1e-12]
    indices, values = kernels.nonzero_entries(sparse, 1e-10)
    assert list(indices) == [3, 700] and np.allclose(values, [0.6, 0.8j])


def test_classical_expressions():
    clbits = [1, 0, 1, 1]  # register (0,1,2) reads 0b101 = 5
    reg = ("bits", (0, 1, 2))
    assert ir.evaluate(reg, clbits) == 5
    assert ir.evaluate(("equal", reg, ("const", 5)), clbits) == 1
    assert ir.evaluate(("logic_and", ("bits", (3,)), ("logic_not", ("bits", (1,)))), clbits) == 1
    assert ir.evaluate(("bit_not", reg, 3), clbits) == 2
    assert ir.evaluate(("less", reg, ("const", 5)), clbits) == 0
    assert ir.evaluate(("shift_left", reg, ("const", 1), 3), clbits) == 2
    assert ir.condition_holds(ir.Condition((0, 1), 1), clbits)
    assert not ir.condition_holds(ir.ExprCondition(("bit_xor", reg, ("const", 5))), clbits)


def _qobj(instructions, n=2, slots=2):
    header = {"n_qubits": n, "memory_slots": slots, "name": "c"}
    return Qobj.new({"shots": 1, "seed_simulator": 1}, [QobjExperiment(header, instructions)])


@pytest.mark.parametrize(
    "inst, field",
    [
        ({"name": "save_amplitudes", "qubits": [0, 1], "label": "a", "params": [4]}, "params"),
        ({"name": "save_expval", "qubits": [0, 1], "label": "e", "params": [["XQ", [1.0, 0.0]]]}, "params[0]"),
        ({"name": "save_expval", "qubits": [0, 1], "label": "e", "params": [["XZ", [1.0]]]}, "params[0]"),
        ({"name": "save_statevector", "qubits": [0, 1], "label": "s", "subtype": "average"}, "subtype"),
        ({"name": "save_probabilities", "qubits": [0], "label": ""}, "label"),
        ({"name": "save_tensor_network", "qubits": [0], "label": "d"}, "name"),
        ({"name": "while_loop", "condition": {"expr": ["equal", ["bits", [5]], ["const", 1]]}, "body": []}, "condition"),
        ({"name": "switch_case", "target": ["bits", [0]], "cases": [{"values": ["a"], "body": []}]}, "cases[0].values"),
    ],
)
def test_qobj_validation_names_the_bad_save_or_control_flow_field(inst, field):
    with pytest.raises(QobjValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        _qobj([inst]).validate()


def test_saves_sharing_a_label_must_agree():
    from qiskit import QuantumCircuit

    from aer_mpi import AerMPISimulator, InvalidInputError
    from aer_mpi import library as lib

    qc = QuantumCircuit(2)
    lib.save_statevector(qc)
    lib.save_statevector_dict(qc)  # Aer's default label is "statevector" too
    with pytest.raises(InvalidInputError, match="share the label 'statevector'"):
        AerMPISimulator().run(qc).result()


def test_a_label_saved_twice_in_one_shot_is_refused_but_exclusive_branches_may_share_it():
    from qiskit import ClassicalRegister, QuantumCircuit

    from aer_mpi import AerMPISimulator, InvalidInputError

    straight = QuantumCircuit(1)
    straight.save_probabilities()
    straight.x(0)
    straight.save_probabilities()  # as Aer: refused, not averaged with the first
    creg = ClassicalRegister(1)
    branches = QuantumCircuit(1)
    branches.add_register(creg)
    branches.h(0)
    branches.measure(0, 0)
    with branches.if_test((creg, 1)) as else_:
        branches.save_probabilities(label="p")
    with else_:
        branches.save_probabilities(label="p")
    then_again = branches.copy()
    then_again.save_probabilities(label="p")  # after a branch that saved it
    for circuit in (straight, then_again):
        with pytest.raises(InvalidInputError, match="saved twice in one run"):
            AerMPISimulator().run(circuit).result()
    data = AerMPISimulator().run(branches, shots=200, seed_simulator=1).result().data(0)
    assert np.allclose(data["p"], [0.5, 0.5], atol=0.1)


def test_transpile_keeps_saves_and_control_flow():
    from qiskit import QuantumCircuit, transpile
    from qiskit.quantum_info import SparsePauliOp

    from aer_mpi import AerMPISimulator
    from aer_mpi import library as lib

    backend = AerMPISimulator()
    qc = QuantumCircuit(3, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    with qc.while_loop((qc.clbits[0], 1)):
        qc.reset(0)
        qc.measure(0, 0)
    lib.save_expectation_value(qc, SparsePauliOp(["IIZ"]), label="e")  # qubit 0 ends in |0>
    lib.save_amplitudes(qc, [0, 1], label="a")
    out = transpile(qc, backend, optimization_level=1)
    names = {inst.operation.name for inst in out.data}
    assert {"if_else", "while_loop", "save_expval", "save_amplitudes"} <= names
    data = backend.run(out, shots=20, seed_simulator=2).result().data(0)
    assert abs(data["e"] - 1.0) < 1e-12


def test_pauli_block_sums_on_a_block_wider_than_a_chunk():
    n = 18  # one block of 2**18 amplitudes: the kernel walks it in chunks
    state = random_statevector(2**n, seed=9).data
    x, z = (1 << 17) | (1 << 3) | 1, (1 << 16) | 0b110
    (whole,) = kernels.pauli_block_sums(state, state, 0, x, [z])
    label = "".join("Y" if (x >> j) & (z >> j) & 1 else "X" if (x >> j) & 1 else "Z" if (z >> j) & 1 else "I"
                    for j in reversed(range(n)))
    ny = label.count("Y")
    assert abs(whole * 1j**ny - Statevector(state).expectation_value(Pauli(label))) < 1e-12


def test_sampler_warns_without_clbits():
    from qiskit import QuantumCircuit

    from aer_mpi.primitives import SamplerV2

    with pytest.warns(UserWarning, match="no classical bits"):  # as Aer's: a warning, an empty DataBin
        data = SamplerV2().run([QuantumCircuit(2)]).result()[0].data
    assert list(data.keys()) == []
    from qiskit.circuit import Clbit

    loose = QuantumCircuit(2)
    loose.add_bits([Clbit(), Clbit()])
    loose.measure([0, 1], [0, 1])
    with pytest.warns(UserWarning, match="in no classical register"):
        data = SamplerV2().run([loose]).result()[0].data
    assert list(data.keys()) == []


def test_average_saves_in_a_branch_average_over_the_shots_that_took_it():
    from qiskit import QuantumCircuit

    from aer_mpi import AerMPISimulator
    from aer_mpi import library as lib

    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        lib.save_probabilities(qc, [0], label="p")  # as Aer: [0, 1], not scaled by the shots skipping it
    lib.save_probabilities(qc, [0], label="all")
    result = AerMPISimulator().run(qc, shots=100, seed_simulator=1).result()
    ones = result.get_counts().get("1", 0)
    assert np.allclose(result.data(0)["p"], [0, 1])
    assert np.allclose(result.data(0)["all"], [1 - ones / 100, ones / 100])
