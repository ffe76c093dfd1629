"""Gate matrices built without Qiskit's Gate objects: Qiskit's bits exactly."""

import numpy as np
import pytest
from qiskit.circuit.library import get_standard_gate_name_mapping

from aer_mpi.qobj.translate import _ROTATIONS, gate_matrix


@pytest.mark.parametrize("name", sorted(_ROTATIONS))
def test_rotations_are_qiskits_matrices_bit_for_bit(name, rng):
    gate_class = type(get_standard_gate_name_mapping()[name])
    count = _ROTATIONS[name].__code__.co_argcount
    angles = [0.0, -0.0, np.pi, -np.pi / 2, 2 * np.pi, 1e-300, 7.5e8] + list(rng.uniform(-10, 10, 20))
    for k in range(len(angles)):
        params = tuple(float(angles[(k + j) % len(angles)]) for j in range(count))
        ours = gate_matrix.__wrapped__(name, params)  # uncached: the cache takes -0.0 for 0.0
        theirs = np.asarray(gate_class(*params).to_matrix(), dtype=complex)
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes(), (name, params)
        assert not ours.flags.writeable


def test_other_gates_still_come_from_qiskit():
    np.testing.assert_array_equal(gate_matrix("rzz", (0.3,)),
                                  type(get_standard_gate_name_mapping()["rzz"])(0.3).to_matrix())


@pytest.mark.parametrize("qubits", [2, 6, 9])
def test_a_unitary_instruction_must_be_unitary_exact_or_probed(qubits):
    """Wide matrices are probed with random vectors (U^dagger U of a 10-qubit matrix took 0.8 s of every
    run): a unitary passes, rounding too; a matrix off by 1e-4 in one entry (typed with four decimals),
    singular or scaled is refused at any width."""
    from qiskit.quantum_info import random_unitary

    from aer_mpi.errors import InvalidInputError
    from aer_mpi.qobj.assemble import encode_matrix
    from aer_mpi.qobj.translate import _ops, is_unitary

    dim = 1 << qubits
    good = random_unitary(dim, seed=qubits).data
    rounded = good + 1e-12 * np.random.default_rng(1).standard_normal(good.shape)
    assert is_unitary(good) and is_unitary(rounded)
    off = good.copy()
    off[dim // 3, dim // 2] += 1e-4
    singular = good.copy()
    singular[:, 0] = singular[:, 1]
    assert not is_unitary(off) and not is_unitary(singular) and not is_unitary(2 * good)
    instruction = {"name": "unitary", "qubits": list(range(qubits)), "params": [encode_matrix(off)]}
    with pytest.raises(InvalidInputError, match="not unitary"):
        _ops([instruction], "circuit")
    instruction["params"] = [encode_matrix(good)]
    (op,) = _ops([instruction], "circuit")
    assert np.array_equal(op.matrix, good)


def test_the_qobj_carries_matrices_as_arrays_and_writes_them_as_json_lists():
    """encode_matrix is a float array (tolist of a 10-qubit matrix took 1.9 s of every run); to_dict
    and from_dict still round-trip through JSON."""
    import json

    from qiskit import QuantumCircuit
    from qiskit.circuit.library import UnitaryGate
    from qiskit.quantum_info import random_unitary

    from aer_mpi import Qobj
    from aer_mpi.qobj.assemble import assemble_circuits
    from aer_mpi.qobj.translate import to_program

    qc = QuantumCircuit(3)
    qc.append(UnitaryGate(random_unitary(8, seed=1)), [0, 1, 2])
    qc.initialize(np.ones(4) / 2, [0, 1])
    qobj = assemble_circuits([qc], {"shots": 1, "seed_simulator": 1})
    assert any(isinstance(inst["params"][0], np.ndarray) for inst in qobj.experiments[0].instructions
               if inst["name"] == "unitary")
    again = Qobj.from_dict(json.loads(json.dumps(qobj.to_dict())))
    again.validate()
    first, second = (to_program(q.experiments[0], q.config) for q in (qobj, again))
    assert [type(op) for op in first.ops] == [type(op) for op in second.ops]
    for a, b in zip(first.ops, second.ops):
        assert np.array_equal(getattr(a, "matrix", 0), getattr(b, "matrix", 0))


@pytest.mark.parametrize("name", sorted(_ROTATIONS))
def test_translated_rotations_are_qiskits_arrays_and_diagonal_where_the_matrix_is(name, rng):
    """Rotations are translated without the matrix caches (a sweep's angles are new every binding):
    the op holds Qiskit's matrix bit for bit, or its diagonal when every entry off it is zero
    (rx(0), u(0, a, b), rz(t)), read-only, as the cached path gave."""
    from aer_mpi import ir
    from aer_mpi.qobj.translate import _ops

    gate_class = type(get_standard_gate_name_mapping()[name])
    count = _ROTATIONS[name].__code__.co_argcount
    angles = [0.0, -0.0, np.pi, 2 * np.pi, 1e-300] + list(rng.uniform(-10, 10, 10))
    for k in range(len(angles)):
        params = [float(angles[(k + j) % len(angles)]) for j in range(count)]
        (op,) = _ops([{"name": name, "qubits": [3], "params": params}], "test")
        theirs = np.asarray(gate_class(*params).to_matrix(), dtype=complex)
        assert op.qubits == (3,) and op.name == name
        if theirs[0, 1] == 0 and theirs[1, 0] == 0:
            assert isinstance(op, ir.Diagonal) and op.diag.tobytes() == np.diag(theirs).tobytes(), params
            assert not op.diag.flags.writeable
        else:
            assert isinstance(op, ir.Gate) and op.matrix.tobytes() == theirs.tobytes(), params
            assert not op.matrix.flags.writeable
    with pytest.raises(Exception, match=rf"test\[0\] \({name}\): cannot build gate"):
        _ops([{"name": name, "qubits": [0], "params": [0.1] * (count + 1)}], "test")
    with pytest.raises(Exception, match=rf"test\[0\] \({name}\): {name} acts on 1 qubits, got 2"):
        _ops([{"name": name, "qubits": [0, 1], "params": [0.1] * count}], "test")
