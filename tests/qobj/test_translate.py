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
