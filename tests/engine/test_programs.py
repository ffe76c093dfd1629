"""The engine alone, on hand-built ``ir.Program``s (no Qiskit), at 1, 2 and 4 ranks.

Each program has 5 qubits, so at 4 ranks qubits 3 and 4 are global: gates,
measurements, resets and conditions on them cross ranks. The reference is
``engine_reference`` (a full numpy state per shot with the engine's
documented random streams), so counts and memory must match exactly.
"""

import numpy as np
import pytest

from aer_mpi import ir
from aer_mpi.engine import RunConfig, run_experiment
from aer_mpi.engine.resources import memory_needed
from aer_mpi.plan import choose_rank_bits
from conftest import MPI_TIMEOUT
from engine_reference import counts, run_dynamic, run_static

N = 5
H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
CX = np.eye(4, dtype=complex)[[0, 3, 2, 1]]


def ry(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta / 2), -np.sin(theta / 2)], [np.sin(theta / 2), np.cos(theta / 2)]], dtype=complex)


def random_unitary(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(1 << k, 1 << k)) + 1j * rng.normal(size=(1 << k, 1 << k)))
    return q


def straight_line() -> ir.Program:
    ops = [ir.Gate((q,), ry(0.3 + 0.4 * q), "ry") for q in range(N)]
    ops += [
        ir.Gate((0, 4), CX, "cx"),
        ir.Gate((4, 3), random_unitary(2, 1), "u"),
        ir.Diagonal((3, 1), np.exp(1j * np.array([0.1, 0.2, 0.3, 0.4])), "d"),
        ir.Swap(0, 4),
        ir.GlobalPhase(0.25),
        ir.Gate((2, 3, 4), random_unitary(3, 2), "u3"),
        ir.Save("probabilities", (4, 0, 2), "probs"),
        ir.Gate((1,), H, "h"),
        ir.Save("statevector", tuple(range(N)), "sv"),
    ]
    ops += [ir.Measure(q, q) for q in range(N)]
    return ir.Program(N, N, tuple(ops), "straight")


def dynamic() -> ir.Program:
    ops = [
        ir.Gate((4,), H, "h"),
        ir.Gate((3,), ry(1.0), "ry"),
        ir.Measure(4, 0),  # a global qubit at 2 and 4 ranks
        ir.IfElse(ir.Condition((0,), 1), (ir.Gate((0,), X, "x"),), (ir.Gate((1,), H, "h"),)),
        ir.Reset(4),
        ir.Gate((4,), ry(0.8), "ry"),
        ir.Measure(3, 1),
        # a loop on a global qubit: rotate and measure until it reads 1
        ir.WhileLoop(ir.Condition((1,), 0), (ir.Gate((3,), ry(0.9), "ry"), ir.Measure(3, 1))),
        ir.Save("probabilities", (0, 4), "in_branch", "average"),
        ir.Switch(
            ("bits", (0, 1)),
            (
                (frozenset({1}), (ir.Gate((2,), H, "h"),)),
                (frozenset({2, 3}), (ir.Gate((4, 2), CX, "cx"),)),
                (None, (ir.Gate((2,), X, "x"),)),
            ),
        ),
        ir.IfElse(ir.ExprCondition(("bit_xor", ("bits", (0,)), ("bits", (1,)))), (ir.Reset(3),), ()),
    ]
    ops += [ir.Measure(q, q) for q in range(N)]
    return ir.Program(N, N, tuple(ops), "dynamic")


def check_straight_line_matches_numpy(comm):
    program = straight_line()
    config = RunConfig(shots=400, seed=5, memory=True)
    out = run_experiment(program, config, comm)
    state, values, saves = run_static(program, config.shots, config.seed)
    assert out.counts == counts(values)
    assert out.memory == [hex(v) for v in values]
    np.testing.assert_allclose(out.data["probs"], saves["probs"], atol=1e-12)
    if comm.rank == 0:
        np.testing.assert_allclose(out.data["sv"], saves["sv"], atol=1e-12)
        np.testing.assert_allclose(out.data["sv"], state, atol=1e-12)
    assert out.save_kinds["probs"] == ("probabilities", "single")
    assert ("sv" in out.save_kinds) == ("sv" in out.data)
    assert out.metadata["working_ranks"] == comm.size and not out.metadata["dynamic"]
    # one name, one meaning: the naive count is reported once, at the top level
    assert "naive_exchanges" in out.metadata and "naive_exchanges" not in out.metadata["plan"]


def check_dynamic_matches_numpy_per_shot(comm, copies):
    program = dynamic()
    config = RunConfig(shots=200, seed=9, memory=True)
    if copies == "none":
        # just enough memory for the run and no shard copy: every split replays from the start
        num_local = N - choose_rank_bits(N, comm.size, config.min_local_qubits)
        need = memory_needed(program, config, num_local, 0, True) + 64 * config.shots
        config = RunConfig(shots=200, seed=9, memory=True, max_memory_bytes=need)
    out = run_experiment(program, config, comm)
    values, saves = run_dynamic(program, config.shots, config.seed)
    assert out.memory == [hex(v) for v in values]
    assert out.counts == counts(values)
    expected = np.mean([s["in_branch"] for s in saves], axis=0)
    np.testing.assert_allclose(out.data["in_branch"], expected, atol=1e-12)
    assert out.save_kinds == {"in_branch": ("probabilities", "average")}
    assert out.metadata["dynamic"]


@pytest.mark.mpi(ranks=[1, 2, 4], timeout=MPI_TIMEOUT)
def test_programs_at_every_rank_count(comm):
    """The checks above in one job per rank count (a job's start-up (every rank imports Qiskit and pytest) cost more than most of them)."""
    check_straight_line_matches_numpy(comm)
    for copies in ("free", "none"):
        check_dynamic_matches_numpy_per_shot(comm, copies)
