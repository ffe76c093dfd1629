"""Qiskit Aer notebook snippets with only the import changed give Aer's results, at 1 and 2 ranks.

Each snippet is Aer code as its users write it (``from qiskit_aer import
AerSimulator``, ``from qiskit_aer.primitives import EstimatorV2``), leaving
its answer in ``answer``. It runs twice on every rank: as written (Qiskit
Aer), and with only the import lines changed to aer_mpi's (whose
``AerMPISimulator()`` then runs on COMM_WORLD). Counts agree within
sampling noise; exact expectation values to 1e-8.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from conftest import MPI_TIMEOUT, RANKS

pytest.importorskip("qiskit_aer")

#: "at 1 and 2 ranks": the first two of the suite's rank counts.
SNIPPET_RANKS = RANKS[:2]

IMPORTS = {
    "from qiskit_aer import AerSimulator": "from aer_mpi import AerMPISimulator as AerSimulator",
    "from qiskit_aer.primitives import EstimatorV2, SamplerV2": "from aer_mpi.primitives import EstimatorV2, SamplerV2",
}

SNIPPETS = {
    "bell": """
        from qiskit import QuantumCircuit, transpile
        from qiskit_aer import AerSimulator

        simulator = AerSimulator()
        circ = QuantumCircuit(2)
        circ.h(0)
        circ.cx(0, 1)
        circ.measure_all()
        circ = transpile(circ, simulator)
        answer = simulator.run(circ, shots=4000, seed_simulator=5).result().get_counts(circ)
    """,
    "ghz_statevector": """
        import numpy as np
        from qiskit import QuantumCircuit, transpile
        from qiskit_aer import AerSimulator

        simulator = AerSimulator(method="statevector")
        circ = QuantumCircuit(6)
        circ.h(0)
        for i in range(5):
            circ.cx(i, i + 1)
        circ.save_statevector()
        result = simulator.run(transpile(circ, simulator)).result()
        answer = np.asarray(result.get_statevector(circ)) if result.results[0].data.to_dict() else None
    """,
    "ghz_counts": """
        from qiskit import QuantumCircuit, transpile
        from qiskit_aer import AerSimulator

        simulator = AerSimulator(method="automatic", precision="single", max_parallel_threads=1)
        circ = QuantumCircuit(12)
        circ.h(0)
        for i in range(11):
            circ.cx(i, i + 1)
        circ.measure_all()
        answer = simulator.run(transpile(circ, simulator), shots=3000).result().get_counts()
    """,
    "grover": """
        from qiskit import QuantumCircuit, transpile
        from qiskit.circuit.library import grover_operator
        from qiskit_aer import AerSimulator

        oracle = QuantumCircuit(3)
        oracle.x(1)
        oracle.h(2)
        oracle.ccx(0, 1, 2)
        oracle.h(2)
        oracle.x(1)
        grover = QuantumCircuit(3)
        grover.h(range(3))
        grover.compose(grover_operator(oracle).power(2), inplace=True)
        grover.measure_all()
        simulator = AerSimulator()
        answer = simulator.run(transpile(grover, simulator), shots=2000, seed_simulator=1).result().get_counts()
    """,
    "vqe_estimator": """
        import numpy as np
        from qiskit.circuit.library import efficient_su2
        from qiskit.quantum_info import SparsePauliOp
        from qiskit_aer.primitives import EstimatorV2, SamplerV2

        hamiltonian = SparsePauliOp.from_list([("ZZII", 1.0), ("IZZI", 1.0), ("IIZZ", 1.0), ("XIII", 0.5),
                                               ("IXII", 0.5), ("IIXI", 0.5), ("IIIX", 0.5)])
        ansatz = efficient_su2(4, reps=2)
        params = np.random.default_rng(3).uniform(-np.pi, np.pi, (5, ansatz.num_parameters))
        estimator = EstimatorV2()
        answer = estimator.run([(ansatz, hamiltonian, params)]).result()[0].data.evs
    """,
    "qaoa_sweep": """
        import numpy as np
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.quantum_info import SparsePauliOp
        from qiskit_aer.primitives import EstimatorV2, SamplerV2

        gamma, beta = Parameter("gamma"), Parameter("beta")
        edges = [(0, 1), (1, 2), (2, 3), (3, 0)]
        qc = QuantumCircuit(4)
        qc.h(range(4))
        for a, b in edges:
            qc.rzz(2 * gamma, a, b)
        qc.rx(2 * beta, range(4))
        cost = SparsePauliOp.from_sparse_list([("ZZ", [a, b], 0.5) for a, b in edges], 4)
        grid = np.array([[g, b] for g in np.linspace(0, np.pi, 4) for b in np.linspace(0, np.pi / 2, 3)])
        estimator = EstimatorV2(options={"backend_options": {"method": "statevector"},
                                         "run_options": {"seed_simulator": 7}})
        answer = estimator.run([(qc, cost, grid)]).result()[0].data.evs
    """,
    "sampler_sweep": """
        import numpy as np
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit_aer.primitives import EstimatorV2, SamplerV2

        theta = Parameter("theta")
        qc = QuantumCircuit(2)
        qc.ry(theta, 0)
        qc.cx(0, 1)
        qc.measure_all()
        sampler = SamplerV2(seed=17, options={"backend_options": {"max_parallel_threads": 1}})
        values = np.linspace(0, np.pi, 4).reshape(4, 1)
        data = sampler.run([(qc, values)], shots=4000).result()[0].data.meas
        answer = [data[i].get_counts() for i in range(4)]
    """,
    "parameter_binds": """
        import numpy as np
        from qiskit import QuantumCircuit, transpile
        from qiskit.circuit import Parameter
        from qiskit_aer import AerSimulator

        theta = Parameter("θ")
        qc = QuantumCircuit(3)
        qc.h(0)
        qc.ry(theta, 1)  # (not crx: Aer 0.18 gives one result for a crx swept by parameter_binds)
        qc.cx(1, 2)
        qc.measure_all()
        simulator = AerSimulator()
        circ = transpile(qc, simulator)
        job = simulator.run(circ, shots=3000, parameter_binds=[{theta: [0.3, 1.2, 2.5]}], seed_simulator=np.int64(4))
        answer = [job.result().get_counts(i) for i in range(3)]
    """,
}

EXACT = {"vqe_estimator", "qaoa_sweep"}


def run_snippet(source: str, aer_mpi: bool):
    code = textwrap.dedent(source)
    if aer_mpi:
        for theirs, ours in IMPORTS.items():
            code = code.replace(theirs, ours)
        assert "qiskit_aer" not in code
    scope: dict = {}
    exec(compile(code, "<snippet>", "exec"), scope)
    return scope["answer"]


def tvd(a: dict, b: dict) -> float:
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in set(a) | set(b))


def assert_same(name: str, theirs, ours) -> None:
    if name in EXACT:
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-8, rtol=0)
    elif name == "ghz_statevector":
        if ours is not None:  # the statevector is on rank 0 only
            np.testing.assert_allclose(ours, theirs, atol=1e-10)
    else:
        pairs = zip(theirs, ours) if isinstance(theirs, list) else [(theirs, ours)]
        for t, o in pairs:
            assert sum(o.values()) == sum(t.values())
            # a few thousand shots over at most 8 outcomes: within sampling noise
            assert tvd(t, o) < 0.06, (t, o)


@pytest.mark.mpi(ranks=SNIPPET_RANKS, timeout=MPI_TIMEOUT)
def test_aer_snippets_with_only_the_import_changed(comm):
    """Every snippet in one job per rank count: a job's start-up (each rank imports Qiskit, Aer and
    pytest) costs more than most snippets, so a job per snippet cost 14 start-ups of the suite's time."""
    for name in sorted(SNIPPETS):
        theirs = run_snippet(SNIPPETS[name], aer_mpi=False)
        ours = run_snippet(SNIPPETS[name], aer_mpi=True)
        try:
            assert_same(name, theirs, ours)
        except AssertionError as exc:
            raise AssertionError(f"snippet {name!r}: {exc}") from exc
