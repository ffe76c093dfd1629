"""Shot branching runs on an explicit work stack: long loops and many measurements in bounded memory.

Each run happens under a recursion limit only a little above the caller's
depth (a recursive interpreter would need frames per loop pass or per
measurement), with ``sys.setrecursionlimit`` forbidden, and with the
memory traced: what the run holds at its peak stays a small, fixed budget,
whatever the number of passes or measurements.
"""

import sys
import tracemalloc
from contextlib import contextmanager

import numpy as np
import pytest

from aer_mpi import ir
from aer_mpi.engine import RunConfig, run_experiment
from aer_mpi.errors import InvalidInputError
from conftest import MPI_TIMEOUT
from engine_reference import run_dynamic

N = 4  # at 2 ranks qubit 3 is global
H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
#: Frames the run may use above the test's own (mpi4py, pickling, numpy, the engine's calls).
HEADROOM = 120
#: Traced bytes the run may hold at its peak beyond what it held at the start.
BUDGET = 8 << 20


def ry(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta / 2), -np.sin(theta / 2)], [np.sin(theta / 2), np.cos(theta / 2)]], dtype=complex)


def depth() -> int:
    frame, count = sys._getframe(), 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


@contextmanager
def bounded(monkeypatch):
    """No deep recursion, no change of the recursion limit, memory traced; yields the peak growth."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth() + HEADROOM)

    def refuse(limit):
        raise AssertionError(f"the engine changed the recursion limit to {limit}")

    monkeypatch.setattr(sys, "setrecursionlimit", refuse)
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    peak = [0]
    try:
        yield peak
    finally:
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        monkeypatch.undo()
        sys.setrecursionlimit(old)
        peak[0] = top - start


def many_measurements(count: int) -> ir.Program:
    ops = []
    for k in range(count):
        ops += [ir.Gate((k % 3,), H, "h"), ir.Measure(k % 3, k % 4)]
        if k % 50 == 0:
            ops += [ir.Gate((3,), ry(0.5), "ry"), ir.Measure(3, 4), ir.Reset(3)]
    return ir.Program(N, 5, tuple(ops), "many")


def loop_passes(seed: int, p_one: float) -> int:
    """Passes the loop of ``long_loop`` makes in shot 0 (the engine's per-shot stream)."""
    rng = np.random.default_rng([seed, 0])
    rng.random()  # the measurement before the loop
    passes = 1
    while not rng.random() < p_one:
        passes += 1
    return passes


#: The loop bound these tests set (AER_MPI_MAX_LOOP_PASSES; the default is 100,000).
LOOP_PASSES = 10_000


def long_loop(theta: float) -> ir.Program:
    """Rotate qubit 3 a little and measure it, until it reads 1; count the passes in an accumulated save."""
    body = (
        ir.Save("probabilities", (0,), "passes", "accum"),
        ir.Gate((3,), ry(theta), "ry"),
        ir.Measure(3, 0),
    )
    ops = (ir.Gate((1,), H, "h"), ir.Measure(3, 0), ir.WhileLoop(ir.Condition((0,), 0), body))
    return ir.Program(N, 1, ops, "long_loop")


@pytest.mark.mpi(ranks=[1, 2], timeout=MPI_TIMEOUT)
def test_a_loop_of_thousands_of_passes_runs_in_bounded_memory(comm, monkeypatch):
    monkeypatch.setenv("AER_MPI_MAX_LOOP_PASSES", str(LOOP_PASSES))
    theta = 2 * np.arcsin(np.sqrt(1 / 2000))  # each pass reads 1 with probability 1/2000
    seed = next(s for s in range(1000) if 2000 <= loop_passes(s, np.sin(theta / 2) ** 2) < LOOP_PASSES)
    passes = loop_passes(seed, np.sin(theta / 2) ** 2)
    program = long_loop(theta)
    run_experiment(many_measurements(10), RunConfig(shots=2, seed=1), comm)  # warm-up
    with bounded(monkeypatch) as peak:
        out = run_experiment(program, RunConfig(shots=1, seed=seed, memory=True), comm)
    assert out.memory == ["0x1"]
    np.testing.assert_allclose(out.data["passes"], [passes, 0])
    assert peak[0] < BUDGET, peak[0]


@pytest.mark.mpi(ranks=[1, 2], timeout=MPI_TIMEOUT)
def test_a_loop_stops_after_exactly_the_limit_of_passes(comm, monkeypatch):
    # 10,000 passes of a body that never changes the condition (and meets the
    # other ranks only at checkpoints), then the error that names the limit and how to raise it
    monkeypatch.setenv("AER_MPI_MAX_LOOP_PASSES", str(LOOP_PASSES))
    body = (ir.Gate((0,), X, "x"),)
    ops = (ir.Gate((3,), X, "x"), ir.Measure(3, 0), ir.WhileLoop(ir.Condition((0,), 1), body))
    program = ir.Program(N, 1, ops, "forever")
    with bounded(monkeypatch) as peak:
        with pytest.raises(InvalidInputError, match=rf"a while loop ran {LOOP_PASSES} passes in one shot: make sure its "
                                                    rf"condition can become false, or allow more passes "
                                                    rf"\(AER_MPI_MAX_LOOP_PASSES={LOOP_PASSES}\)"):
            run_experiment(program, RunConfig(shots=1, seed=1), comm)
    assert peak[0] < BUDGET, peak[0]


@pytest.mark.mpi(ranks=[1, 2], timeout=MPI_TIMEOUT)
def test_two_thousand_mid_circuit_measurements_run_in_bounded_memory(comm, monkeypatch):
    program = many_measurements(2000)
    config = RunConfig(shots=4, seed=3, memory=True)
    run_experiment(many_measurements(10), config, comm)  # warm-up
    with bounded(monkeypatch) as peak:
        out = run_experiment(program, config, comm)
    values, _ = run_dynamic(program, config.shots, config.seed)
    assert out.memory == [hex(v) for v in values]
    assert peak[0] < BUDGET, peak[0]
