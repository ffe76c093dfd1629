"""Aer's statevector instructions and idle-qubit truncation at 1, 2 and 4 ranks, against Aer or quantum_info.

``min_local_qubits`` 1 or 2 shards even small circuits, so the instructions meet qubits on rank bits.
"""

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit.classical import expr, types
from qiskit.circuit.library import HamiltonianGate, StatePreparation
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.quantum_info import DensityMatrix, SparsePauliOp, Statevector, random_statevector

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS, assert_kernels, fidelity, working_ranks


@pytest.fixture
def kernels(monkeypatch):
    """These feature tests run with the kernels users get (numba) only: the numpy kernels are
    checked by the core correctness tests (gates, random circuits, dynamic circuits, saves), and
    running both here would double the suite's longest file."""
    monkeypatch.setenv("AER_MPI_KERNELS", "numba")
    return "numba"


def _tvd(counts, reference):
    shots, ref_shots = sum(counts.values()), sum(reference.values())
    keys = set(counts) | set(reference)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - reference.get(k, 0) / ref_shots) for k in keys)


def _aer_counts(comm, circuits, shots=20000):
    """Aer's counts, computed on rank 0 and shared."""
    counts = None
    if comm.rank == 0:
        from qiskit_aer import AerSimulator

        result = AerSimulator(method="statevector").run(circuits, shots=shots, seed_simulator=3).result()
        counts = [(result.get_counts(i), result.results[i].metadata) for i in range(len(circuits))]
    return comm.bcast(counts, root=0)


def _ghz_on_device(num_device_qubits: int, layout):
    qc = QuantumCircuit(3, 3, name=f"ghz-on-{num_device_qubits}")
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.ry(0.4, 2)
    qc.measure(range(3), range(3))
    device = GenericBackendV2(num_device_qubits, seed=11)
    return transpile(qc, device, initial_layout=layout, seed_transpiler=5, optimization_level=1)


def check_truncation_runs_device_transpiled_circuits_at_their_width(comm, kernels):
    # transpiled on rank 0 and shared, as the README says to (and the other ranks skip building a
    # 127-qubit device, seconds each on an oversubscribed machine)
    circuits = comm.bcast([_ghz_on_device(27, [5, 13, 26]), _ghz_on_device(127, [3, 64, 120])]
                          if comm.rank == 0 else None, root=0)
    backend = AerMPISimulator(comm=comm, min_local_qubits=1, parallel_experiments=False)
    result = backend.run(circuits, shots=2000, seed_simulator=7, memory=True).result()
    assert_kernels(result, kernels)
    references = _aer_counts(comm, circuits)
    for i, circuit in enumerate(circuits):
        meta = result.results[i].metadata
        aer_counts, aer_meta = references[i]
        active = sorted({circuit.find_bit(q).index for inst in circuit.data for q in inst.qubits})
        assert meta["active_input_qubits"] == aer_meta["active_input_qubits"] == active
        # only the used qubits are simulated and sharded (a 127-qubit state would not fit anywhere)
        assert meta["num_qubits"] == len(active) < circuit.num_qubits
        assert meta["working_ranks"] == min(working_ranks(comm.size), 1 << (len(active) - 1))
        counts = result.get_counts(i)
        assert all(len(k) == 3 for k in counts) and sum(counts.values()) == 2000
        assert all(len(m) == 3 for m in result.get_memory(i))
        assert _tvd(counts, aer_counts) < 0.05, (counts, aer_counts)


def check_truncation_keeps_the_layout_of_clbits_and_saves(comm):
    qc = QuantumCircuit(7, 4)
    qc.h(5)
    qc.cx(5, 1)
    qc.rx(0.3, 3)
    qc.save_probabilities([3, 5], label="p")
    qc.save_expectation_value(SparsePauliOp(["ZX"]), [1, 3], label="ev")
    qc.measure([1, 3, 5], [3, 0, 2])
    backend = AerMPISimulator(comm=comm, min_local_qubits=1, parallel_experiments=False)
    on = backend.run(qc, shots=3000, seed_simulator=2).result()
    off = backend.run(qc, shots=3000, seed_simulator=2, enable_truncation=False).result()
    assert on.results[0].metadata["num_qubits"] == 3 and off.results[0].metadata["num_qubits"] == 7
    assert on.results[0].metadata["active_input_qubits"] == [1, 3, 5]
    assert on.get_counts() == off.get_counts()
    assert set(on.get_counts()) <= {"0000", "0001", "1100", "1101"}
    bare = QuantumCircuit(7)
    bare.h(5)
    bare.cx(5, 1)
    bare.rx(0.3, 3)
    state = Statevector(bare)
    np.testing.assert_allclose(on.data()["p"], state.probabilities([3, 5]), atol=1e-12)
    assert np.isclose(on.data()["ev"], state.expectation_value(SparsePauliOp(["ZX"]), [1, 3]))


def check_initialize_state_preparation_and_array_parameter_gates(comm, kernels):
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    # the notebook snippet: initialize on fresh qubits (no resets: the circuit stays non-dynamic)
    bell = QuantumCircuit(2, 2)
    bell.initialize([1 / np.sqrt(2), 0, 0, 1 / np.sqrt(2)], [0, 1])
    bell.measure([0, 1], [0, 1])
    v = random_statevector(8, seed=4).data
    prep = QuantumCircuit(4)
    prep.initialize(v, [3, 0, 2])
    prep.h(1)
    prep.append(HamiltonianGate(SparsePauliOp(["XZ", "YY"]).to_matrix(), 0.3), [1, 3])
    prep.append(StatePreparation("01"), [0, 2])  # a gate: a unitary, from |00> onto |01>
    prep.save_statevector()
    # initialize on qubits already used: reset, then prepare (a dynamic circuit), vs Aer
    again = QuantumCircuit(4, 4)
    again.h([0, 3])
    again.cx(3, 1)
    again.initialize([0.6, 0.8j], [3])
    again.initialize("+-", [0, 2])
    again.h([0, 2])
    again.measure(range(4), range(4))
    result = backend.run([bell, prep, again], shots=4000, seed_simulator=9).result()
    assert_kernels(result, kernels)
    references = _aer_counts(comm, [bell, again])
    assert not result.results[0].metadata["dynamic"]
    assert _tvd(result.get_counts(0), references[0][0]) < 0.04
    assert result.results[2].metadata["dynamic"]
    assert _tvd(result.get_counts(2), references[1][0]) < 0.04
    if comm.rank == 0:
        ref = QuantumCircuit(4)
        ref.append(StatePreparation(v), [3, 0, 2])
        ref.h(1)
        ref.append(HamiltonianGate(SparsePauliOp(["XZ", "YY"]).to_matrix(), 0.3), [1, 3])
        ref.append(StatePreparation("01"), [0, 2])
        expected = Statevector(ref).data
        assert fidelity(expected, result.get_statevector(1)) > 1 - 1e-9
        assert np.allclose(np.asarray(result.get_statevector(1)), expected, atol=1e-9)  # phase too


def check_set_statevector_scatters_the_state(comm):
    v = random_statevector(32, seed=8).data
    qc = QuantumCircuit(5)
    qc.h(4)
    qc.cx(4, 0)  # moves qubit 4 local at 2 and 4 ranks: the state is set in the layout of the moment
    qc.set_statevector(v)
    qc.cx(3, 1)
    qc.ry(0.3, 4)
    qc.save_statevector()
    result = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False).run(qc, shots=1).result()
    assert result.results[0].metadata["working_ranks"] == working_ranks(comm.size)
    if comm.rank == 0:
        after = QuantumCircuit(5)
        after.cx(3, 1)
        after.ry(0.3, 4)
        np.testing.assert_allclose(result.get_statevector(), Statevector(v).evolve(after).data, atol=1e-12)


def check_save_state_and_density_matrix_match_aer(comm, kernels):
    base = QuantumCircuit(5, 2)
    base.h([0, 4])
    base.cx(4, 2)
    base.ry(0.7, 3)
    base.cx(3, 1)
    base.rx(0.4, 0)
    static = base.copy()
    static.save_state()
    static.save_density_matrix([4, 0, 2], label="rho")  # qubit 4 (and 3) are on rank bits at 4 ranks
    static.save_density_matrix([3], label="r3", pershot=True)
    dynamic = base.copy()
    dynamic.measure(4, 0)  # a global qubit
    dynamic.save_density_matrix([2, 3], label="avg")
    dynamic.save_density_matrix([1], label="cond", conditional=True)
    dynamic.measure(3, 1)
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    result = backend.run([static, dynamic], shots=400, seed_simulator=5).result()
    assert_kernels(result, kernels)
    assert result.results[0].metadata["working_ranks"] == working_ranks(comm.size)
    data = result.data(0)
    assert isinstance(data["rho"], DensityMatrix)
    aer = None
    if comm.rank == 0:
        from qiskit_aer import AerSimulator

        aer = AerSimulator(method="statevector").run([static, dynamic], shots=400, seed_simulator=5).result()
        np.testing.assert_allclose(data["statevector"].data, aer.data(0)["statevector"].data, atol=1e-12)
    aer_data = comm.bcast(None if aer is None else [aer.data(0), aer.data(1)], root=0)
    np.testing.assert_allclose(data["rho"].data, aer_data[0]["rho"].data, atol=1e-12)
    # a circuit without mid-circuit measurements runs its saves once: one value, as in Aer
    assert len(data["r3"]) == len(aer_data[0]["r3"]) and all(isinstance(d, DensityMatrix) for d in data["r3"])
    np.testing.assert_allclose(data["r3"][0].data, aer_data[0]["r3"][0].data, atol=1e-12)
    # averaged over the shots that measured qubit 4 either way: the ensemble's reduced state
    np.testing.assert_allclose(result.data(1)["avg"].data, aer_data[1]["avg"].data, atol=0.08)
    assert set(result.data(1)["cond"]) == set(aer_data[1]["cond"]) == {"0x0", "0x1"}
    for key, value in result.data(1)["cond"].items():
        np.testing.assert_allclose(value.data, aer_data[1]["cond"][key].data, atol=1e-9)


def _jumping_loops():
    q, c = QuantumRegister(4), ClassicalRegister(3)
    qc = QuantumCircuit(q, c, name="jumps")
    qc.h(3)
    with qc.for_loop(range(4)):
        qc.rx(0.7, 3)  # qubit 3 is on a rank bit: its exchange is undone before each jump
        qc.cx(3, 0)
        qc.measure(0, 0)
        with qc.if_test((c[0], 1)):
            qc.x(2)
            qc.break_loop()
        qc.h(1)
        qc.measure(1, 1)
        with qc.if_test((c[1], 1)):
            qc.continue_loop()
        qc.x(2)
    with qc.while_loop((c[2], 0)):
        qc.h(3)
        qc.measure(3, 2)
        with qc.if_test((c[1], 1)):
            qc.break_loop()
    qc.measure(2, 1)
    return qc


def check_break_and_continue_match_aer(comm, kernels):
    qc = _jumping_loops()
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    result = backend.run(transpile(qc, backend), shots=3000, seed_simulator=5).result()
    assert_kernels(result, kernels)
    (reference, _), = _aer_counts(comm, [qc], shots=12000)  # (expected distance to 3000 shots: 0.02)
    assert _tvd(result.get_counts(), reference) < 0.05, (result.get_counts(), reference)


def check_classical_variables_and_store(comm):
    qc = QuantumCircuit(3, 3)
    n = qc.add_var("n", expr.lift(0, types.Uint(4)))
    flag = qc.add_var("flag", False)
    qc.h([0, 2])
    qc.measure(0, 0)
    qc.measure(2, 1)
    with qc.if_test(expr.lift(qc.clbits[0])):
        qc.store(n, expr.lift(1, types.Uint(4)))
    with qc.if_test(expr.lift(qc.clbits[1])):
        qc.store(flag, True)
    with qc.if_test(flag):
        qc.store(n, expr.add(expr.bit_xor(n, 6), 9))  # (1 ^ 6) + 9 = 16 = 0 (mod 16); 6 + 9 = 15
    with qc.if_test(expr.equal(n, 15)):
        qc.x(1)
    qc.measure(1, 2)
    backend = AerMPISimulator(comm=comm, min_local_qubits=1, parallel_experiments=False)
    result = backend.run(qc, shots=2000, seed_simulator=3, memory=True).result()
    counts = result.get_counts()
    # c2 = (not c0) and c1; the variables' bits are not in the counts
    assert set(counts) == {"000", "001", "110", "011"}, counts
    assert all(len(m) == 3 for m in result.get_memory())
    assert all(abs(v - 500) < 120 for v in counts.values())


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_aer_instructions_at_every_rank_count(comm, kernels, monkeypatch):
    """The checks above in one job per rank count (a job's start-up, every rank importing Qiskit and
    pytest, cost more than most of them): those that take ``kernels`` with numba, the others with the
    numpy kernels, as each ran in a job of its own before."""
    check_truncation_runs_device_transpiled_circuits_at_their_width(comm, kernels)
    check_initialize_state_preparation_and_array_parameter_gates(comm, kernels)
    check_save_state_and_density_matrix_match_aer(comm, kernels)
    check_break_and_continue_match_aer(comm, kernels)
    monkeypatch.setenv("AER_MPI_KERNELS", "numpy")
    check_truncation_keeps_the_layout_of_clbits_and_saves(comm)
    check_set_statevector_scatters_the_state(comm)
    check_classical_variables_and_store(comm)
