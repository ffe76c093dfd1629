"""Planning: from an ``ir.Program`` to the steps every rank executes.

Promise of this layer: pure functions of the program and the shape of the
distribution (local and global qubit counts). It decides where each logical
qubit lives (the layout), when global<->local swaps happen and which qubits
they move, and how a gate on a global qubit that never flips it becomes a
rank-dependent local gate. It knows nothing of MPI or Qiskit.
"""

from aer_mpi.plan.steps import (
    BreakStep,
    ContinueStep,
    ForStep,
    ExchangeStep,
    IfElseStep,
    LocalDiagonal,
    LocalGate,
    LocalSwapStep,
    MeasureStep,
    Plan,
    PhaseStep,
    RankDiagonal,
    RankGate,
    ResetStep,
    SaveStep,
    SetStateStep,
    StageStep,
    Step,
    StoreStep,
    SwitchStep,
    WhileStep,
    complex_products_per_amplitude,
)
from aer_mpi.plan.localiser import choose_rank_bits, plan_program, swap_rounds_to_order, swaps_to_make_global
from aer_mpi.plan.stages import place_in_cache, stage_steps

__all__ = [
    "complex_products_per_amplitude",
    "BreakStep",
    "ContinueStep",
    "ForStep",
    "ExchangeStep",
    "IfElseStep",
    "LocalDiagonal",
    "LocalGate",
    "LocalSwapStep",
    "MeasureStep",
    "PhaseStep",
    "Plan",
    "RankDiagonal",
    "RankGate",
    "ResetStep",
    "SaveStep",
    "SetStateStep",
    "StageStep",
    "StoreStep",
    "Step",
    "SwitchStep",
    "WhileStep",
    "choose_rank_bits",
    "plan_program",
    "place_in_cache",
    "stage_steps",
    "swap_rounds_to_order",
    "swaps_to_make_global",
]
