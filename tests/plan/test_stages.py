"""Cache-blocked stages (plan/stages.py): which steps are grouped, without MPI or kernels."""

import numpy as np
import pytest

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


# -- the cache tier: local bit swaps, checked by running the plan on one array --------------
from qiskit.circuit.library import quantum_volume  # noqa: E402
from qiskit.circuit.random import random_circuit  # noqa: E402
from qiskit.quantum_info import Statevector  # noqa: E402
from qiskit.synthesis import synth_qft_full  # noqa: E402
from qiskit import QuantumCircuit  # noqa: E402

from aer_mpi import kernels  # noqa: E402
from aer_mpi.plan import LocalSwapStep, place_in_cache, plan_program  # noqa: E402
from aer_mpi.plan.fusion import FusionOptions, fuse  # noqa: E402
from aer_mpi.qobj.assemble import assemble_circuits  # noqa: E402
from aer_mpi.qobj.translate import to_program  # noqa: E402


def run_one_shard(steps, n):
    state = np.zeros(1 << n, dtype=complex)
    state[0] = 1
    for step in steps:
        if isinstance(step, StageStep):
            gates = []
            for s in step.steps:
                if isinstance(s, LocalGate):
                    gates.append((s.positions, s.matrix, None))
                elif isinstance(s, LocalDiagonal):
                    gates.append((s.positions, None, s.diag))
                else:
                    gates.append(((), None, np.array([np.exp(1j * s.phase)])))
            kernels.apply_stage(state, gates, step.cache_qubits)
        elif isinstance(step, LocalSwapStep):
            kernels.swap_bits(state, step.pairs)
        elif isinstance(step, LocalGate):
            kernels.apply_matrix(state, step.matrix, step.positions)
        elif isinstance(step, LocalDiagonal):
            kernels.apply_diagonal(state, step.diag, step.positions)
        elif isinstance(step, PhaseStep):
            kernels.scale(state, np.exp(1j * step.phase))
        else:
            raise AssertionError(f"unexpected step {step!r}")
    return state


def logical(state, layout):
    """The state with logical qubit q at bit q."""
    n = len(layout)
    index = np.arange(1 << n)
    physical = np.zeros_like(index)
    for q, p in enumerate(layout):
        physical |= ((index >> q) & 1) << p
    return state[physical]


def _qft(n):
    qc = QuantumCircuit(n, global_phase=0.2)
    qc.h(range(n))
    qc.compose(synth_qft_full(n), inplace=True)
    return qc


@pytest.mark.parametrize("circuit", [_qft(9), quantum_volume(9, 6, seed=4), random_circuit(10, 10, max_operands=2, seed=5)],
                         ids=["qft", "qv", "random"])
@pytest.mark.parametrize("cache_qubits", [4, 6])
def test_swaps_and_stages_keep_the_state(circuit, cache_qubits):
    qobj = assemble_circuits([circuit], {"shots": 1, "seed_simulator": 0})
    program, _ = fuse(to_program(qobj.experiments[0]), FusionOptions(threshold=1, max_qubits=3))
    n = program.num_qubits
    plan = plan_program(program, n)
    steps, final_layout = place_in_cache(plan.steps, n, cache_qubits, plan.final_layout)
    staged = stage_steps(steps, cache_qubits)
    for step in staged:  # every dense gate that is not in a stage is one the cache could not take
        if isinstance(step, StageStep):
            assert all(max(s.positions, default=0) < cache_qubits for s in step.steps if isinstance(s, LocalGate))
    got = logical(run_one_shard(staged, n), final_layout)
    np.testing.assert_allclose(got, Statevector(circuit).data, atol=1e-12)
    plain = logical(run_one_shard(plan.steps, n), plan.final_layout)
    np.testing.assert_allclose(got, plain, atol=1e-12)
    passes = lambda ss: sum(1 for s in ss if not isinstance(s, MeasureStep))  # noqa: E731
    assert passes(staged) <= passes(plan.steps)


def test_gates_above_the_cache_bring_their_positions_in_once_and_everything_after_is_renumbered():
    # a 4-qubit cache on 8 local positions: gates on 6 and 7 again and again
    steps = [gate(6), gate(7), gate(6, 7), gate(0), diag(6), gate(7), MeasureStep(6, 0),
             SaveStep("probabilities", "p", "single", (0, 1), tuple(range(8))), ExchangeStep(((0, 7),))]
    out, final = place_in_cache(steps, 8, 4, tuple(range(9)))
    swap = out[0]
    assert isinstance(swap, LocalSwapStep) and len(swap.pairs) == 2  # both brought in by one pass
    where = {high: low for low, high in swap.pairs}
    assert sum(isinstance(s, LocalSwapStep) for s in out) == 1
    assert out[1].positions == (where[6],) and out[3].positions == (where[6], where[7])
    assert out[5].positions == (where[6],)  # a diagonal is renumbered too
    assert out[7].position == where[6] and out[8].layout[6] == where[6] and out[8].layout[7] == where[7]
    assert out[9].pairs == ((0, where[7]),)
    assert final[6] == where[6] and final[7] == where[7] and final[8] == 8  # a global position stays
    staged = stage_steps(out, 4)
    assert isinstance(staged[1], StageStep) and len(staged[1].steps) == 6


def test_a_lone_gate_above_the_cache_is_not_worth_a_swap():
    steps = (gate(0), gate(6), gate(1))
    assert place_in_cache(steps, 8, 4, tuple(range(8))) == (steps, tuple(range(8)))


def test_a_large_cache_never_evicts_its_lowest_positions():
    """Swapping one of the lowest positions moves scattered runs of 1-4 amplitudes (2-4x the time):
    with room to spare, the cache tier rotates the others only, even when Belady would pick them."""
    from aer_mpi.plan.stages import LOW_POSITIONS

    rng = np.random.default_rng(3)
    # gates on every position of 20, the lowest ones used least: Belady's first victims
    steps = [gate(*map(int, rng.choice(np.arange(LOW_POSITIONS, 20), 2, replace=False))) for _ in range(60)]
    steps += [gate(0), gate(1), gate(2)]
    out, _ = place_in_cache(steps, 20, 12, tuple(range(20)))
    swaps = [s for s in out if isinstance(s, LocalSwapStep)]
    assert swaps and all(low >= LOW_POSITIONS for s in swaps for low, _ in s.pairs)
    assert [s.positions for s in out[-3:]] == [(0,), (1,), (2,)]  # still where they were


def test_nothing_changes_when_the_shard_fits_the_cache():
    steps = (gate(0), gate(5))
    assert place_in_cache(steps, 6, 6, tuple(range(6))) == (steps, tuple(range(6)))


def test_a_long_run_is_cut_into_stages_of_at_most_max_steps():
    steps = [gate(q % 4) for q in range(10)]
    out = stage_steps(steps, 4, max_steps=4)
    assert [len(s.steps) for s in out[:2]] == [4, 4] and len(out[2].steps) == 2
    assert sum(len(s.steps) for s in out) == 10


def test_the_arithmetic_of_a_plan_counts_every_column_staged_or_not():
    """A k-qubit dense gate is 2**k complex products per amplitude, a diagonal or a phase one,
    whether a stage holds it or not, and grouping into stages changes nothing."""
    from aer_mpi.plan import complex_products_per_amplitude

    rank_gate = RankGate((0,), (1,), (None, CX[:2, :2]))
    rank_diag = RankDiagonal((0,), (3,), (np.ones(2), np.ones(2)))
    steps = [gate(0), gate(1, 2), diag(9), PhaseStep(0.3), gate(5), gate(3), diag(0, 7),
             ExchangeStep(((0, 1),)), gate(2), rank_gate, rank_diag, MeasureStep(0, 0)]
    expected = 2 + 4 + 1 + 1 + 2 + 2 + 1 + 0 + 2 + 2 + 1 + 0
    assert complex_products_per_amplitude(steps) == expected
    assert complex_products_per_amplitude(stage_steps(steps, 4)) == expected
    assert complex_products_per_amplitude([]) == 0
