"""``parameter_binds`` assemble a circuit once and fill in numbers per binding (qobj/assemble.py).

The oracle is the slow path it replaces: each binding's experiment must equal
the one assembled from ``circuit.assign_parameters(values)``, field for field,
whether the template path or the copy-by-copy fallback (parameters inside
control flow) is taken. Every binding's result carries the circuit's own name,
as in Aer; bad values are refused naming the parameter.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2

from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj.assemble import assemble_circuits


def assert_same_as_bound_copies(circuit, binds):
    """The experiments of ``parameter_binds`` equal those of the bound copies (names aside)."""
    count = len(next(iter(binds.values())))
    copies = [circuit.assign_parameters({p: values[i] for p, values in binds.items()}) for i in range(count)]
    got = [e.to_dict() for e in assemble_circuits([circuit], {}, [binds]).experiments]
    want = [e.to_dict() for e in assemble_circuits(copies, {}).experiments]
    assert [e["header"].pop("name") for e in got] == [circuit.name] * count
    for e in want:
        e["header"].pop("name")
    assert got == want


def test_template_gives_the_experiments_of_bound_copies():
    circuit = efficient_su2(6, reps=2)
    circuit.measure_all()
    values = np.random.default_rng(0).uniform(0, 2 * np.pi, (5, circuit.num_parameters))
    assert_same_as_bound_copies(circuit, {p: values[:, i] for i, p in enumerate(circuit.parameters)})


def test_expressions_global_phase_and_a_phase_that_becomes_zero():
    t, u = Parameter("t"), Parameter("u")
    circuit = QuantumCircuit(2, 2)
    circuit.rx(2 * t + 1, 0)
    circuit.u(t, 0.3, u * t, 1)
    circuit.cp(u, 0, 1)
    circuit.global_phase = t - u
    circuit.measure([0, 1], [0, 1])
    assert_same_as_bound_copies(circuit, {t: [0.1, 0.2, 1.0], u: [1.0, -2.0, 1.0]})


def test_parameters_inside_control_flow_are_bound_copy_by_copy():
    t = Parameter("t")
    circuit = QuantumCircuit(2, 1)
    circuit.rx(t, 0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.ry(t, 1)
    assert_same_as_bound_copies(circuit, {t: [0.4, 2.0]})


def test_a_missing_parameter_or_a_bad_value_is_refused_naming_it():
    t, u = Parameter("t"), Parameter("u")
    circuit = QuantumCircuit(1)
    circuit.rx(t, 0)
    circuit.rz(u, 0)
    with pytest.raises(InvalidInputError, match="unbound parameter u"):
        assemble_circuits([circuit], {}, [{t: [0.1]}])
    with pytest.raises(InvalidInputError, match="non-finite value inf for t"):
        assemble_circuits([circuit], {}, [{t: [np.inf], u: [0.0]}])
    with pytest.raises(InvalidInputError, match="same number of values"):
        assemble_circuits([circuit], {}, [{t: [0.1, 0.2], u: [0.0]}])
    with pytest.raises(InvalidInputError, match="one dict per circuit"):
        assemble_circuits([circuit], {}, [{t: [0.1]}, {t: [0.2]}])


def test_a_run_with_bindings_matches_aer_and_names_each_result_as_the_circuit():
    aer = pytest.importorskip("qiskit_aer")
    from aer_mpi import AerMPISimulator

    t = Parameter("t")
    circuit = QuantumCircuit(2, name="sweep")
    circuit.ry(t, 0)
    circuit.cx(0, 1)
    circuit.measure_all()
    binds = [{t: [0.0, np.pi / 2, np.pi]}]
    ours = AerMPISimulator().run(circuit, parameter_binds=binds, shots=2000, seed_simulator=3).result()
    theirs = aer.AerSimulator().run(circuit, parameter_binds=binds, shots=2000, seed_simulator=3).result()
    assert [r.header["name"] if isinstance(r.header, dict) else r.header.name for r in ours.results] == ["sweep"] * 3
    for i, expected in enumerate([{"00": 1.0}, {"00": 0.5, "11": 0.5}, {"11": 1.0}]):
        counts = ours.get_counts(i)
        assert set(counts) == set(theirs.get_counts(i)) == set(expected)
        for key, p in expected.items():
            assert abs(counts[key] / 2000 - p) < 0.05


def test_shared_instructions_are_translated_once_and_give_the_same_programs():
    """plan_jobs translates the experiments of one Qobj with one memo: the bindings' shared
    (unparameterised) instructions become one op each, and every program is what translating
    the experiment alone gives."""
    from aer_mpi import ir
    from aer_mpi.qobj.translate import to_program

    circuit = efficient_su2(5, reps=1)
    circuit.h(0)
    circuit.measure_all()
    values = np.random.default_rng(1).uniform(0, 2 * np.pi, (3, circuit.num_parameters))
    qobj = assemble_circuits([circuit], {}, [{p: values[:, i] for i, p in enumerate(circuit.parameters)}])
    memo: dict = {}
    shared = [to_program(e, i, memo) for i, e in enumerate(qobj.experiments)]
    alone = [to_program(e, i) for i, e in enumerate(qobj.experiments)]
    gates = [[op for op in p.ops if isinstance(op, (ir.Gate, ir.Diagonal))] for p in shared]
    assert any(a is b for a, b in zip(gates[0], gates[1]))  # the cx and h: one op for every binding
    assert not all(a is b for a, b in zip(gates[0], gates[1]))  # the rotations: their own
    for s, a in zip(shared, alone):
        assert len(s.ops) == len(a.ops)
        for x, y in zip(s.ops, a.ops):
            assert type(x) is type(y) and getattr(x, "qubits", None) == getattr(y, "qubits", None)
            for name in ("matrix", "diag"):
                if hasattr(x, name):
                    assert np.array_equal(getattr(x, name), getattr(y, name))
