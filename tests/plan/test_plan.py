"""The localiser without MPI: a plan executed on P emulated shards in one process.

The emulator keeps P shards as rows of one array and applies each step with
the same kernels the engine uses, moving data between rows for exchanges by
plain numpy bit permutation (not the comm layer). The answer must equal
Qiskit's Statevector, whatever the number of shards.
"""

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector

from aer_mpi import ir, kernels
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.plan import (
    ExchangeStep,
    LocalDiagonal,
    LocalGate,
    PhaseStep,
    RankDiagonal,
    RankGate,
    choose_rank_bits,
    plan_program,
    swap_rounds_to_order,
)
from aer_mpi.qobj.translate import to_program
from conftest import fidelity


def program_of(circuit: QuantumCircuit) -> ir.Program:
    qobj = assemble_circuits([circuit], {"shots": 1, "seed_simulator": 0})
    return to_program(qobj.experiments[0])


def swap_bits(full: np.ndarray, n: int, a: int, b: int) -> np.ndarray:
    """Exchange bit positions a and b of the index of ``full``."""
    axes = list(range(n))
    ia, ib = n - 1 - a, n - 1 - b
    axes[ia], axes[ib] = axes[ib], axes[ia]
    return full.reshape((2,) * n).transpose(axes).reshape(-1).copy()


def emulate(plan, n: int) -> np.ndarray:
    """Run ``plan`` on 2**g emulated shards; return the state in logical order."""
    local, g = plan.num_local, plan.num_global
    shards = np.zeros((1 << g, 1 << local), dtype=complex)
    shards[0, 0] = 1
    for step in plan.steps:
        if isinstance(step, ExchangeStep):
            full = shards.reshape(-1)
            for b, l in step.pairs:
                full = swap_bits(full, n, local + b, l)
            shards = full.reshape(1 << g, 1 << local)
            continue
        for r in range(1 << g):
            value = lambda bits: sum(((r >> b) & 1) << i for i, b in enumerate(bits))
            if isinstance(step, LocalGate):
                kernels.apply_matrix(shards[r], step.matrix, step.positions)
            elif isinstance(step, LocalDiagonal):
                kernels.apply_diagonal(shards[r], step.diag, step.positions)
            elif isinstance(step, RankGate):
                matrix = step.matrices[value(step.rank_bits)]
                if matrix is not None:
                    kernels.apply_matrix(shards[r], matrix, step.positions)
            elif isinstance(step, RankDiagonal):
                kernels.apply_diagonal(shards[r], step.diags[value(step.rank_bits)], step.positions)
            elif isinstance(step, PhaseStep):
                shards[r] *= np.exp(1j * step.phase)
            else:
                raise AssertionError(f"unexpected step {step}")
    # physical order -> logical order through the final layout
    tensor = shards.reshape((2,) * n)
    # output axis j is logical qubit n-1-j, which sits at axis n-1-layout[n-1-j]
    order = [n - 1 - plan.final_layout[n - 1 - j] for j in range(n)]
    return tensor.transpose(order).reshape(-1)


@pytest.mark.parametrize("shards", [1, 2, 4, 8])
@pytest.mark.parametrize("seed", range(12))
def test_plan_on_emulated_shards_matches_statevector(shards, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 10))
    circuit = random_circuit(n, int(rng.integers(3, 12)), max_operands=3, seed=seed)
    program = program_of(circuit)
    g = choose_rank_bits(n, shards, min_local=3)
    plan = plan_program(program, n - g)
    assert sorted(plan.final_layout) == list(range(n))
    for step in plan.steps:
        if isinstance(step, (LocalGate, LocalDiagonal)):
            assert all(p < plan.num_local for p in step.positions)
    got = emulate(plan, n)
    assert fidelity(Statevector(circuit).data, got) > 1 - 1e-10


def test_diagonals_controls_and_swaps_never_exchange():
    circuit = QuantumCircuit(6)
    circuit.h(range(3))  # local qubits only
    circuit.cz(0, 5)
    circuit.rzz(0.3, 4, 5)
    circuit.cp(0.2, 5, 1)
    circuit.cx(5, 0)  # a global control is a rank condition
    circuit.swap(0, 5)  # a relabelling
    circuit.ccx(4, 5, 2)
    plan = plan_program(program_of(circuit), num_local=3)
    assert plan.stats["exchanges"] == 0
    assert plan.stats["relabelled_swaps"] == 1
    assert fidelity(Statevector(circuit).data, emulate(plan, 6)) > 1 - 1e-12


def test_lookahead_brings_several_qubits_in_one_exchange():
    circuit = QuantumCircuit(8)
    circuit.h(range(8))  # qubits 5..7 are global with 5 local
    plan = plan_program(program_of(circuit), num_local=5)
    exchanges = [s for s in plan.steps if isinstance(s, ExchangeStep)]
    assert len(exchanges) == 1 and len(exchanges[0].pairs) == 3
    assert plan.stats["naive_exchanges"] == 3
    assert fidelity(Statevector(circuit).data, emulate(plan, 8)) > 1 - 1e-12


def test_choose_rank_bits():
    assert choose_rank_bits(20, 4, 3) == 2
    assert choose_rank_bits(20, 6, 3) == 2  # not a power of two: 4 work
    assert choose_rank_bits(4, 8, 3) == 1  # too small to use 8
    assert choose_rank_bits(2, 8, 3) == 0
    with pytest.raises(ValueError, match="world_size >= 1"):
        choose_rank_bits(5, 0, 3)


@pytest.mark.parametrize("width", range(0, 9))
def test_swap_rounds_put_every_layout_in_logical_order(width):
    """At most two rounds of disjoint swaps read the shard as the strided copy in logical order does."""
    rng = np.random.default_rng(width)
    for _ in range(20):
        positions = [int(p) for p in rng.permutation(width)]
        state = rng.normal(size=1 << width) + 1j * rng.normal(size=1 << width)
        expected = np.concatenate(list(kernels.logical_order_chunks(state, positions)))
        rounds = swap_rounds_to_order(positions)
        assert len(rounds) <= 2
        for pairs in rounds:
            flat = [p for pair in pairs for p in pair]
            assert len(set(flat)) == len(flat)
            kernels.swap_bits(state, pairs)
        assert np.array_equal(state, expected), positions
    assert swap_rounds_to_order(list(range(width))) == []
    with pytest.raises(ValueError, match="not a permutation"):
        swap_rounds_to_order([0, 0])
