"""Cache-blocked stages (plan/stages.py): which steps are grouped, without MPI or kernels."""

import numpy as np

from aer_mpi.plan import (
    ExchangeStep,
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    MeasureStep,
    PhaseStep,
    RankDiagonal,
    RankGate,
    SaveStep,
    StageStep,
    WhileStep,
    stage_steps,
)
from aer_mpi.ir import Condition

H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
CX = np.eye(4)[[0, 1, 3, 2]]


def gate(*positions):
    return LocalGate(tuple(positions), H if len(positions) == 1 else CX)


def diag(*positions):
    return LocalDiagonal(tuple(positions), np.ones(1 << len(positions)))


def test_runs_of_in_cache_gates_become_one_stage_each():
    steps = [gate(0), gate(1, 2), diag(9), PhaseStep(0.3), gate(5),  # 5 is out of a 4-qubit cache
             gate(3), diag(0, 7), ExchangeStep(((0, 1),)), gate(2)]
    out = stage_steps(steps, 4)
    assert isinstance(out[0], StageStep) and out[0].steps == tuple(steps[:4]) and out[0].cache_qubits == 4
    assert out[1] is steps[4]  # a dense gate above the cache runs alone
    assert isinstance(out[2], StageStep) and out[2].steps == tuple(steps[5:7])  # diagonals: any position
    assert out[3] is steps[7] and out[4] is steps[8]  # an exchange ends a stage; one gate is no stage
    assert len(out) == 5


def test_rank_conditioned_steps_join_stages_and_barriers_end_them():
    rank_gate = RankGate((0,), (1,), (None, H))
    rank_diag = RankDiagonal((0,), (6,), (np.ones(2), -np.ones(2)))
    save = SaveStep("statevector", "sv", "single", (0, 1), (0, 1))
    steps = [rank_gate, rank_diag, save, gate(0), MeasureStep(0, 0), gate(1), gate(2)]
    out = stage_steps(steps, 3)
    assert isinstance(out[0], StageStep) and out[0].steps == (rank_gate, rank_diag)
    assert out[1] is save and out[2] is steps[3] and out[3] is steps[4]
    assert isinstance(out[4], StageStep) and out[4].steps == (steps[5], steps[6])


def test_control_flow_bodies_are_staged_and_the_step_itself_ends_a_stage():
    condition = Condition((0,), 1)
    branch = IfElseStep(condition, (gate(0), gate(1)), (gate(0),))
    loop = WhileStep(condition, (diag(0), gate(1), gate(8)))
    out = stage_steps([gate(0), gate(1), branch, loop], 4)
    assert isinstance(out[0], StageStep)
    assert isinstance(out[1], IfElseStep) and isinstance(out[1].true_steps[0], StageStep)
    assert out[1].false_steps == branch.false_steps
    assert isinstance(out[2], WhileStep)
    assert isinstance(out[2].body[0], StageStep) and out[2].body[1] is loop.body[2]


def test_a_cache_as_large_as_the_shard_stages_every_gate_run():
    steps = [gate(q) for q in range(6)] + [gate(0, 5)]
    out = stage_steps(steps, 6)
    assert len(out) == 1 and out[0].steps == tuple(steps)
