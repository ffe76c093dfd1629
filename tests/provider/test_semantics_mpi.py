"""Circuit semantics at 1, 2, 4 (and 8) ranks: dynamic circuits, saves, primitives, determinism.

``min_local_qubits=2`` shards even small circuits, so measurements, resets
and conditionals land on global (rank-selecting) qubits as well as local ones.
"""

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.circuit.classical import expr
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Pauli, SparsePauliOp, Statevector

from aer_mpi import AerMPISimulator
from aer_mpi import library as lib
from conftest import MPI_TIMEOUT, RANKS, RANKS_SMALL, assert_kernels, working_ranks


def _tvd(counts, probs, shots):
    keys = set(counts) | set(probs)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - probs.get(k, 0.0)) for k in keys)


def dynamic_circuits():
    """Measure, reset, if/else, while, for, switch; qubits 3 and 4 are global at 4 ranks."""
    q = QuantumRegister(5)
    c, d = ClassicalRegister(3, "c"), ClassicalRegister(2, "d")
    a = QuantumCircuit(q, c, d, name="branches")
    a.h(4)
    a.ry(1.1, 3)
    a.cx(4, 0)
    a.measure(4, 0)  # a global qubit
    with a.if_test((c[0], 1)) as else_:
        a.x(3)
        a.h(4)
    with else_:
        a.ry(0.4, 4)
    a.reset(3)  # a global qubit
    a.h(3)
    a.measure(3, 1)
    with a.if_test(expr.logic_and(expr.equal(c, 3), expr.logic_not(d[0]))):
        a.x(2)
    with a.while_loop((d[1], 0)):
        a.h(1)
        a.measure(1, d[1])
    with a.for_loop(range(2)) as i:
        a.rx(i * 0.7, 0)
    with a.switch(c) as case:
        with case(0, 1):
            a.x(4)
        with case(case.DEFAULT):
            a.h(4)
    a.measure(0, 2)
    a.measure(4, d[0])
    # Aer 0.18 fails to load this circuit ("unordered_map::at") unless it ends with an
    # expectation-value save; the saves do not change the counts.
    a.save_probabilities([0, 4], label="p")
    a.save_expectation_value(SparsePauliOp(["ZIIIX", "XIIIZ"]), list(range(5)), label="ev")

    b = QuantumCircuit(5, 4, name="local-and-register")
    b.h([0, 1, 4])
    b.cx(0, 3)
    b.measure(0, 0)  # local
    b.measure(3, 1)  # global, correlated with the local one
    b.reset(0)
    # a classical expression (Aer 0.18 fails to load one after an if/else, hence here)
    with b.if_test(expr.logic_and(expr.equal(b.cregs[0], 3), expr.logic_not(b.clbits[2]))):
        b.rx(0.9, 4)
        b.cx(4, 2)
    b.rz(0.3, 3)
    b.reset(4)
    b.h(4)
    b.measure([2, 4], [2, 3])
    return [a, b]


def check_dynamic_circuits_match_aer(comm, kernels):
    """Against Aer at one rank; at more, the same counts as one rank with the same seed (Aer's
    30000 shots, on rank 0 while the others waited, were most of each multi-rank job)."""
    from mpi4py import MPI

    circuits = dynamic_circuits()
    shots = 1500
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    result = backend.run(circuits, shots=shots, seed_simulator=17).result()
    assert_kernels(result, kernels)
    for i in range(len(circuits)):
        meta = result.results[i].metadata
        assert meta["dynamic"] and meta["working_ranks"] == working_ranks(comm.size)
        assert sum(result.get_counts(i).values()) == shots
    if comm.size > 1:
        if comm.rank == 0:
            alone = AerMPISimulator(comm=MPI.COMM_SELF, parallel_experiments=False).run(
                circuits, shots=shots, seed_simulator=17).result()
            assert [result.get_counts(i) for i in range(len(circuits))] == alone.get_counts()
        return
    from qiskit_aer import AerSimulator

    aer = AerSimulator(method="statevector")
    for i, circuit in enumerate(circuits):
        reference = aer.run(circuit, shots=30000, seed_simulator=3).result().get_counts()
        probs = {k: v / 30000 for k, v in reference.items()}
        counts = result.get_counts(i)
        assert _tvd(counts, probs, shots) < 0.07, (circuit.name, counts, probs)


def _all_saves(circuit, aer: bool):
    """``circuit`` with every save kind, through Aer's methods or aer_mpi's functions."""
    out = circuit.copy()
    n = out.num_qubits
    op = SparsePauliOp.from_list(
        [("X" * n, 0.3), ("Z" * (n - 1) + "Y", -1.2), ("I" * (n - 2) + "XY", 0.7), ("Y" + "I" * (n - 1), 0.1)]
    )
    subset = [n - 1, 0, 2]
    sub_op = SparsePauliOp.from_list([("XZY", 1.0), ("ZZI", 0.5)])
    if aer:
        out.save_statevector()
        out.save_statevector_dict(label="statevector_dict")  # Aer's method defaults to "statevector"
        out.save_probabilities(subset, label="p")
        out.save_probabilities_dict([1, n - 2], label="pd")
        out.save_amplitudes([0, 5, 2**n - 1], label="a")
        out.save_amplitudes_squared([0, 5, 2**n - 1], label="a2")
        out.save_expectation_value(op, out.qubits, label="ev")
        out.save_expectation_value_variance(sub_op, subset, label="evv")
    else:
        lib.save_statevector(out)
        lib.save_statevector_dict(out, label="statevector_dict")
        lib.save_probabilities(out, subset, label="p")
        lib.save_probabilities_dict(out, [1, n - 2], label="pd")
        lib.save_amplitudes(out, [0, 5, 2**n - 1], label="a")
        lib.save_amplitudes_squared(out, [0, 5, 2**n - 1], label="a2")
        lib.save_expectation_value(out, op, label="ev")
        lib.save_expectation_value_variance(out, sub_op, subset, label="evv")
    return out, op, subset, sub_op


def check_every_save_matches_statevector(comm, kernels):
    import qiskit_aer  # noqa: F401  (Aer's QuantumCircuit.save_* methods)

    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    circuits = [random_circuit(n, 5, max_operands=3, seed=40 + n) for n in (5, 7, 9)]
    built = [_all_saves(c, aer=i % 2 == 0) for i, c in enumerate(circuits)]
    result = backend.run([b[0] for b in built], shots=3, seed_simulator=1).result()
    assert_kernels(result, kernels)
    for i, (circuit, (_, op, subset, sub_op)) in enumerate(zip(circuits, built)):
        n = circuit.num_qubits
        sv = Statevector(circuit)
        data = result.data(i)
        # small values are on every rank; the statevector only on rank 0
        assert abs(data["ev"] - sv.expectation_value(op).real) < 1e-10
        assert isinstance(data["ev"], float)
        mean = sv.expectation_value(sub_op, subset).real
        var = sv.expectation_value(sub_op @ sub_op, subset).real - mean**2
        assert np.allclose(data["evv"], [mean, var], atol=1e-10, rtol=0)
        assert np.allclose(data["p"], sv.probabilities(subset), atol=1e-10, rtol=0)
        marginal = sv.probabilities([1, n - 2])
        assert all(abs(data["pd"].get(k, 0.0) - marginal[k]) < 1e-10 for k in range(4))
        basis = [0, 5, 2**n - 1]
        assert np.allclose(data["a"], sv.data[basis], atol=1e-10, rtol=0)
        assert np.allclose(data["a2"], np.abs(sv.data[basis]) ** 2, atol=1e-10, rtol=0)
        as_dict = data["statevector_dict"]
        assert all(k.startswith("0x") for k in as_dict)
        assert np.allclose([as_dict.get(hex(k), 0) for k in range(2**n)], sv.data, atol=1e-10, rtol=0)
        if comm.rank == 0:
            assert np.allclose(result.get_statevector(i).data, sv.data, atol=1e-10, rtol=0)

    # pershot and conditional saves after a measurement on a global qubit, as Aer gives them
    qc = QuantumCircuit(4, 1)
    qc.h(3)
    qc.cx(3, 0)
    qc.measure(3, 0)
    lib.save_probabilities(qc, [0, 3], label="p", pershot=True)
    lib.save_expectation_value(qc, Pauli("ZZ"), [0, 3], label="e", conditional=True)
    lib.save_amplitudes(qc, [0, 9], label="amp", pershot=True)
    lib.save_probabilities(qc, [0], label="acc", unnormalized=True)
    out = backend.run(qc, shots=40, seed_simulator=9, memory=True).result()
    assert_kernels(out, kernels)
    memory = out.get_memory()
    expected_p = [np.eye(4)[3 if m == "1" else 0] for m in memory]
    assert np.allclose(out.data(0)["p"], expected_p)
    assert out.data(0)["e"] == {key: 1.0 for key in {hex(int(m, 2)) for m in memory}}
    assert np.allclose(out.data(0)["amp"], [[1, 0] if m == "0" else [0, 1] for m in memory])
    assert np.allclose(out.data(0)["acc"], [memory.count("0"), memory.count("1")])

    # parameter_binds as Aer takes them: one dict per circuit, a list of values per parameter
    theta, phi = Parameter("theta"), Parameter("phi")
    pc = QuantumCircuit(5)
    pc.ry(theta, range(5))
    pc.cx(0, 4)
    pc.rz(phi, 4)
    pc.rx(phi, 3)
    lib.save_expectation_value(pc, SparsePauliOp(["XIIIZ", "YXIII"]), label="ev")
    binds = {theta: [0.1, 0.7, 2.0], phi: [1.0, -0.3, 0.5]}
    bound = backend.run(pc, parameter_binds=[binds], shots=1).result()
    assert len(bound.results) == 3
    assert_kernels(bound, kernels)
    for k in range(3):
        ref = pc.remove_final_measurements(inplace=False)
        ref.data = [d for d in ref.data if not d.operation.name.startswith("save")]
        sv = Statevector(ref.assign_parameters({theta: binds[theta][k], phi: binds[phi][k]}))
        assert abs(bound.data(k)["ev"] - sv.expectation_value(SparsePauliOp(["XIIIZ", "YXIII"])).real) < 1e-10


def _random_pauli_sum(n, terms, rng):
    labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(terms)]
    return SparsePauliOp(labels, rng.normal(size=terms))


def check_estimator_matches_statevector_estimator(comm):
    from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator

    from aer_mpi.primitives import EstimatorV2

    rng = np.random.default_rng(5)
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    estimator = EstimatorV2(backend=backend)
    pubs = []
    for n in (6, 9, 12, 16):
        circuit = random_circuit(n, 4, max_operands=2, seed=n)
        observables = [[_random_pauli_sum(n, 12, rng)], [_random_pauli_sum(n, 3, rng)]]
        pubs.append((circuit, observables))
    # a parameter sweep broadcast against observables
    x = Parameter("x")
    swept = QuantumCircuit(7)
    swept.h(range(7))
    swept.rx(x, [0, 6])
    swept.cx(6, 1)
    swept.ry(2 * x, 5)
    pubs.append((swept, [_random_pauli_sum(7, 6, rng), _random_pauli_sum(7, 6, rng)], [[0.3], [1.2]]))
    got = estimator.run(pubs).result()
    want = comm.bcast(StatevectorEstimator().run(pubs).result() if comm.rank == 0 else None, root=0)
    for g, w in zip(got, want):
        assert g.data.evs.shape == w.data.evs.shape
        assert np.max(np.abs(g.data.evs - w.data.evs)) < 1e-9
        assert np.all(g.data.stds == 0)
    # precision > 0: Gaussian noise of that std, repeatable with a seed
    noisy = [EstimatorV2(backend=backend, seed=2).run(pubs[-1:], precision=0.02).result()[0] for _ in range(2)]
    assert np.array_equal(noisy[0].data.evs, noisy[1].data.evs)
    assert np.all(noisy[0].data.stds == 0.02)
    assert 0 < np.max(np.abs(noisy[0].data.evs - want[-1].data.evs)) < 0.2
    # Qiskit's BackendEstimatorV2 on this backend (it samples: within its precision)
    small = pubs[0]
    through = BackendEstimatorV2(backend=backend, options={"seed_simulator": 3}).run([small], precision=0.02).result()[0]
    assert np.max(np.abs(through.data.evs - want[0].data.evs)) < 0.15


def _sampler_circuit():
    q = QuantumRegister(6, "q")
    alpha, beta = ClassicalRegister(2, "alpha"), ClassicalRegister(4, "beta")
    qc = QuantumCircuit(q, alpha, beta)
    theta = Parameter("theta")
    qc.ry(theta, 0)
    qc.h([1, 5])
    qc.cx(5, 2)
    qc.cry(0.8, 1, 4)
    qc.measure([0, 5], alpha)
    qc.measure([1, 2, 3, 4], beta)
    return qc, theta


def check_samplers_give_correct_distributions(comm):
    from qiskit.primitives import BackendSamplerV2

    from aer_mpi.primitives import SamplerV2

    qc, theta = _sampler_circuit()
    values = [0.4, 2.1]
    backend = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False)
    shots = 4000
    ours = SamplerV2(backend=backend, seed=11).run([(qc, [[v] for v in values])], shots=shots).result()[0]
    theirs = BackendSamplerV2(backend=backend, options={"seed_simulator": 4}).run(
        [(qc, [[v] for v in values])], shots=shots
    ).result()[0]
    for result in (ours, theirs):
        assert result.data.alpha.shape == (2,) and result.data.beta.shape == (2,)
        assert result.data.alpha.num_shots == shots and result.data.beta.num_bits == 4
        for k, v in enumerate(values):
            bound = qc.assign_parameters({theta: v}).remove_final_measurements(inplace=False)
            sv = Statevector(bound)
            alpha = {format(i, "02b"): p for i, p in enumerate(sv.probabilities([0, 5]))}
            beta = {format(i, "04b"): p for i, p in enumerate(sv.probabilities([1, 2, 3, 4]))}
            assert _tvd(result.data.alpha.get_counts(k), alpha, shots) < 0.05
            assert _tvd(result.data.beta.get_counts(k), beta, shots) < 0.06


def check_same_seed_same_results_at_any_rank_count(comm, kernels):
    from aer_mpi.primitives import SamplerV2

    dynamic = dynamic_circuits()
    static = random_circuit(6, 5, max_operands=2, seed=3)
    static.measure_all()
    circuits = dynamic + [static]
    options = dict(shots=200, seed_simulator=123, memory=True)
    here = AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False).run(circuits, **options).result()
    alone = AerMPISimulator(comm=MPI.COMM_SELF, min_local_qubits=2).run(circuits, **options).result()
    assert_kernels(here, kernels)
    assert_kernels(alone, kernels)
    for i in range(len(circuits)):
        assert here.get_memory(i) == alone.get_memory(i)
        assert here.get_counts(i) == alone.get_counts(i)
    qc, theta = _sampler_circuit()
    pub = [(qc, [[0.3], [1.9]])]
    a = SamplerV2(backend=AerMPISimulator(comm=comm, min_local_qubits=2, parallel_experiments=False), seed=8).run(pub, shots=200).result()[0]
    b = SamplerV2(backend=AerMPISimulator(comm=MPI.COMM_SELF), seed=8).run(pub, shots=200).result()[0]
    assert np.array_equal(a.data.alpha.array, b.data.alpha.array)
    assert np.array_equal(a.data.beta.array, b.data.beta.array)


@pytest.mark.mpi(ranks=RANKS_SMALL, timeout=MPI_TIMEOUT)
def test_semantics_at_every_rank_count(comm, kernels):
    """The checks above in one job per rank count and kernels (a job's start-up, every rank importing
    Qiskit and pytest, cost more than most of them); 8 ranks take the determinism check only."""
    if comm.size in RANKS:
        check_dynamic_circuits_match_aer(comm, kernels)
        check_every_save_matches_statevector(comm, kernels)
        if kernels == "numpy":  # these two take no kernels: in jobs of their own they ran numpy's
            check_estimator_matches_statevector_estimator(comm)
            check_samplers_give_correct_distributions(comm)
    check_same_seed_same_results_at_any_rank_count(comm, kernels)
