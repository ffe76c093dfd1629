"""Cache-blocked stages end to end at 1, 2 and 4 ranks: the same answer with them on and off."""

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit
from qiskit.circuit.library import quantum_volume
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector
from qiskit.synthesis import synth_qft_full

from aer_mpi import AerMPISimulator
from conftest import MPI_TIMEOUT, RANKS, save_statevector

# tiny chunks (2**3 amplitudes) so that even these small circuits run their stages over many chunks
BLOCKED = dict(fusion_enable=True, fusion_threshold=1, min_local_qubits=4, cache_qubits=3)
PLAIN = dict(BLOCKED, cache_blocking=False)


def _circuits():
    qft = QuantumCircuit(9, global_phase=0.4)
    qft.h(range(9))
    qft.compose(synth_qft_full(9), inplace=True)
    unfused = random_circuit(8, 6, max_operands=3, seed=31)
    return [qft, quantum_volume(8, 5, seed=3), random_circuit(10, 8, max_operands=3, seed=30), unfused]


def check_statevectors_match_qiskit_with_cache_blocking_on_and_off(comm):
    circuits = _circuits()
    saved = [save_statevector(c) for c in circuits]
    on = AerMPISimulator(comm=comm, **BLOCKED).run(saved, shots=1).result()
    off = AerMPISimulator(comm=comm, **PLAIN).run(saved, shots=1).result()
    for i, circuit in enumerate(circuits):
        blocked, plain = on.results[i].metadata, off.results[i].metadata
        assert blocked["cache_qubits"] == 3 and plain["cache_qubits"] is None
        assert plain["plan"]["stages"] == 0
        # the fusion differs (gates in stages cost their arithmetic, plan/fusion.py), so the passes
        # are compared with the blocked run's own program, one pass per op and per exchange
        unblocked = blocked["fusion"]["ops_out"] + blocked["plan"]["exchanges"]
        assert blocked["state_passes"] <= unblocked
        assert blocked["bytes_moved"] > 0 and "achieved_gbps" in blocked  # a rate: not asserted (no timing)
        # the arithmetic: at least one complex product per amplitude per gate of the run
        products = blocked["plan"]["complex_products_per_amplitude"]
        assert products >= blocked["plan"]["staged_steps"] and products > 0
        if i == 0:  # QFT: its diagonals stage at any position
            assert blocked["plan"]["stages"] > 0 and blocked["state_passes"] < unblocked
        if comm.rank == 0:
            expected = Statevector(circuit).data
            np.testing.assert_allclose(np.asarray(on.get_statevector(i)), expected, atol=1e-12)
            np.testing.assert_allclose(np.asarray(off.get_statevector(i)), expected, atol=1e-12)


def _dynamic():
    """Mid-circuit measurements and a conditional between gates above a 3-qubit cache."""
    qc = QuantumCircuit(9, 3)
    qc.h(range(9))
    for layer in range(4):  # gates on the top qubits, again and again: worth bringing them in
        qc.cx(6, 7)
        qc.ry(0.3 + layer, 8)
        qc.cx(8, 6)
        qc.rx(0.2 * layer, 7)
        qc.cz(7, 0)
    for q in range(8):
        qc.cx(q, q + 1)
        qc.ry(0.3 * q, 8 - q)
    qc.measure(7, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(8)
        qc.cx(8, 5)
    for q in range(4, 9):
        qc.cry(0.2, q, q - 4)
    qc.measure(8, 1)
    qc.measure(6, 2)
    return qc


def check_one_seed_gives_the_same_shots_blocked_or_not_at_any_rank_count(comm):
    circuits = _circuits()
    for c in circuits:
        c.measure_all()
    options = dict(shots=2000, seed_simulator=77, memory=True)
    here = AerMPISimulator(comm=comm, **BLOCKED).run(circuits, **options).result()
    alone = AerMPISimulator(comm=MPI.COMM_SELF, **PLAIN).run(circuits, **options).result()
    for i in range(len(circuits)):
        assert here.get_memory(i) == alone.get_memory(i), i

    # a dynamic circuit, unfused so that its top qubits are brought into the cache by bit swaps
    here = AerMPISimulator(comm=comm, **dict(BLOCKED, fusion_enable=False)).run(_dynamic(), **options).result()
    alone = AerMPISimulator(comm=MPI.COMM_SELF, **dict(PLAIN, fusion_enable=False)).run(_dynamic(), **options).result()
    assert here.results[0].metadata["plan"]["cache_swaps"] > 0
    assert "complex_products_per_amplitude" not in here.results[0].metadata["plan"]  # it depends on the branches
    assert here.get_memory() == alone.get_memory()


def check_saves_read_the_state_where_the_cache_tier_moved_it(comm):
    from qiskit.quantum_info import DensityMatrix, SparsePauliOp, partial_trace

    from aer_mpi.library import SaveDensityMatrix, SaveExpectationValue, SaveProbabilities

    qc = QuantumCircuit(9)
    qc.h(range(9))
    for layer in range(4):  # the top qubits again and again: brought into a 3-qubit cache by swaps
        qc.cx(6, 7)
        qc.ry(0.3 + layer, 8)
        qc.cx(8, 6)
        qc.rx(0.2 * layer, 7)
    middle = Statevector(qc)
    qc.append(SaveProbabilities(3, label="p"), [qc.qubits[q] for q in (8, 1, 6)])
    qc.append(SaveDensityMatrix(2, label="rho"), [qc.qubits[2], qc.qubits[7]])
    for q in range(8):
        qc.cx(q, q + 1)
    operator = SparsePauliOp.from_list([("ZIIIIIIXZ", 0.7), ("IXYIIIIII", 0.3)])
    qc.append(SaveExpectationValue(operator, label="e"), qc.qubits)
    bare = QuantumCircuit(9)
    for inst in qc.data:
        if not inst.operation.name.startswith("save"):
            bare.append(inst)
    end = Statevector(bare)
    for options in (dict(BLOCKED, fusion_enable=False), dict(PLAIN, fusion_enable=False)):
        result = AerMPISimulator(comm=comm, **options).run(qc, shots=1).result()
        data = result.data(0)
        if "cache_blocking" not in options:
            assert result.results[0].metadata["plan"]["cache_swaps"] > 0
        np.testing.assert_allclose(data["p"], middle.probabilities([8, 1, 6]), atol=1e-12)
        rho = partial_trace(DensityMatrix(middle), [q for q in range(9) if q not in (2, 7)])
        np.testing.assert_allclose(np.asarray(data["rho"]), rho.data, atol=1e-12)
        assert abs(data["e"] - end.expectation_value(operator).real) < 1e-12


def check_ranks_whose_caches_differ_agree_on_one_chunk(comm, monkeypatch):
    """Each rank sizes its chunk from its own L2 cache; a rank-dependent size must not make the
    ranks renumber positions differently (their exchanges would pair the wrong amplitudes)."""
    from aer_mpi.engine import resources

    monkeypatch.setattr(resources, "cache_qubits", lambda config: (3 + comm.rank % 3,) * 2)
    options = {k: v for k, v in BLOCKED.items() if k != "cache_qubits"}
    circuits = [save_statevector(c) for c in _circuits()]
    result = AerMPISimulator(comm=comm, **options).run(circuits, shots=1).result()
    for i, circuit in enumerate(circuits):
        meta = result.results[i].metadata
        if meta["working_ranks"] > 1:  # small circuits run whole on one rank, with its own chunk
            assert meta["cache_qubits"] == 3
        if comm.rank == 0:
            expected = Statevector(_circuits()[i]).data
            np.testing.assert_allclose(np.asarray(result.get_statevector(i)), expected, atol=1e-12)


@pytest.mark.mpi(ranks=RANKS, timeout=MPI_TIMEOUT)
def test_cache_blocking_at_every_rank_count(comm, monkeypatch):
    """The checks above in one job per rank count (a job's start-up (every rank imports Qiskit and pytest) cost more than most of them); the one that patches the cache size last."""
    check_statevectors_match_qiskit_with_cache_blocking_on_and_off(comm)
    check_one_seed_gives_the_same_shots_blocked_or_not_at_any_rank_count(comm)
    check_saves_read_the_state_where_the_cache_tier_moved_it(comm)
    check_ranks_whose_caches_differ_agree_on_one_chunk(comm, monkeypatch)
