"""The steps of a plan: what one rank does, in physical positions.

Positions ``0..num_local-1`` are bits of the local shard; position
``num_local + b`` is bit ``b`` of the rank number. A ``layout`` maps each
logical qubit to its position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from aer_mpi.ir import Condition, ExprCondition


@dataclass(frozen=True)
class ExchangeStep:
    """Swap rank bit ``b`` with local position ``l`` for each ``(b, l)``, as one all-to-all."""

    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class LocalGate:
    positions: tuple[int, ...]
    matrix: np.ndarray


@dataclass(frozen=True, eq=False)
class RankGate:
    """A gate that never flips the rank bits it touches.

    Each rank applies ``matrices[v]`` to the local ``positions``, where ``v``
    is the value of its ``rank_bits`` (``rank_bits[0]`` lowest); ``None``
    means identity.
    """

    rank_bits: tuple[int, ...]
    positions: tuple[int, ...]
    matrices: tuple[Any, ...]


@dataclass(frozen=True, eq=False)
class LocalDiagonal:
    positions: tuple[int, ...]
    diag: np.ndarray


@dataclass(frozen=True, eq=False)
class RankDiagonal:
    """A diagonal touching rank bits: rank with bits ``v`` applies ``diags[v]`` locally."""

    rank_bits: tuple[int, ...]
    positions: tuple[int, ...]
    diags: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class PhaseStep:
    phase: float


@dataclass(frozen=True)
class LocalSwapStep:
    """Swap local bits ``a`` and ``b`` of the shard's index for each ``(a, b)``, in one pass
    (the cache tier of ``plan/stages.py``: brings a position below the cache size)."""

    pairs: tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class StageStep:
    """Steps applied chunk by chunk (``plan/stages.py``): each chunk of ``2**cache_qubits``
    amplitudes gets every step in order while it is in cache. ``steps`` are ``LocalGate`` /
    ``RankGate`` on positions below ``cache_qubits``, ``LocalDiagonal`` / ``RankDiagonal`` on any
    local positions, and ``PhaseStep``."""

    steps: tuple[Any, ...]
    cache_qubits: int


def complex_products_per_amplitude(steps) -> int:
    """The arithmetic of straight-line ``steps``: complex products per amplitude of the shard.

    A dense gate on k positions takes ``2**k`` per amplitude (one per column), a diagonal or a
    phase one; stages count their gates. With the state's size it gives the work no memory
    layout can save (docs/performance.md compares it with the kernels' measured rate).
    """
    total = 0
    for step in steps:
        if isinstance(step, StageStep):
            total += complex_products_per_amplitude(step.steps)
        elif isinstance(step, (LocalGate, RankGate)):
            total += 1 << len(step.positions)
        elif isinstance(step, (LocalDiagonal, RankDiagonal, PhaseStep)):
            total += 1
    return total


@dataclass(frozen=True, eq=False)
class SetStateStep:
    """Replace the state: each rank takes its slice of ``state``, whose index bit ``j`` is at ``positions[j]``."""

    positions: tuple[int, ...]
    state: np.ndarray


@dataclass(frozen=True)
class MeasureStep:
    position: int
    clbit: int


@dataclass(frozen=True)
class ResetStep:
    position: int  # always local: the planner makes it so


@dataclass(frozen=True)
class SaveStep:
    kind: str
    label: str
    subtype: str
    qubits: tuple[int, ...]  # logical
    layout: tuple[int, ...]  # logical -> position at this point
    params: Any = None


@dataclass(frozen=True)
class IfElseStep:
    """Both branches start and end in the layout the step was reached with."""

    condition: Union[Condition, ExprCondition]
    true_steps: tuple["Step", ...]
    false_steps: tuple["Step", ...]


@dataclass(frozen=True)
class WhileStep:
    """The body starts and ends in the layout the step was reached with."""

    condition: Union[Condition, ExprCondition]
    body: tuple["Step", ...]


@dataclass(frozen=True)
class ForStep:
    """A for loop that breaks or continues: ``bodies[i]`` is pass ``i``; each starts and ends in the
    layout the step was reached with."""

    bodies: tuple[tuple["Step", ...], ...]


@dataclass(frozen=True)
class StoreStep:
    """Write the value of ``expr`` into ``clbits`` (classical memory only)."""

    clbits: tuple[int, ...]
    expr: tuple


@dataclass(frozen=True)
class BreakStep:
    """Leave the innermost loop (the exchanges before it have put the loop's layout back)."""


@dataclass(frozen=True)
class ContinueStep:
    """Go on with the innermost loop's next pass (the layout is the loop's again)."""


@dataclass(frozen=True)
class SwitchStep:
    """Each case body starts and ends in the layout the step was reached with.

    ``cases`` holds ``(values, steps)``; ``values`` ``None`` is the default.
    """

    target: tuple
    cases: tuple[tuple[Any, tuple["Step", ...]], ...]

    def body_for(self, value: int) -> tuple:
        """The steps of the first case holding ``value`` (or the default); none when no case does."""
        for case_values, body in self.cases:
            if case_values is None or value in case_values:
                return body
        return ()


Step = Union[
    ExchangeStep,
    LocalGate,
    RankGate,
    LocalDiagonal,
    RankDiagonal,
    PhaseStep,
    StageStep,
    LocalSwapStep,
    SetStateStep,
    MeasureStep,
    ResetStep,
    SaveStep,
    IfElseStep,
    WhileStep,
    SwitchStep,
    ForStep,
    BreakStep,
    ContinueStep,
    StoreStep,
]


@dataclass(frozen=True, eq=False)
class Block:
    """One block of steps (the top level, a branch, a loop body, a case, a noise branch) and where
    each of its ops ends: what a checkpoint needs to name a point of the run in terms that do not
    depend on the number of ranks (engine/checkpoint.py).

    ``ends[k]`` is the number of steps once op ``k`` of the block is done, ``layouts[k]`` the
    layout there; ``entry`` is the layout before op 0. A block's trailing steps after its last op
    (the exchanges that put its entry layout back) belong to no op.
    """

    steps: tuple[Step, ...]
    ends: tuple[int, ...]
    layouts: tuple[tuple[int, ...], ...]
    entry: tuple[int, ...]

    def layout_at(self, ops_done: int) -> tuple[int, ...]:
        """The layout once ``ops_done`` ops of the block are done."""
        return self.entry if ops_done == 0 else self.layouts[ops_done - 1]


@dataclass
class Plan:
    num_qubits: int
    num_local: int
    num_global: int
    steps: tuple[Step, ...]
    initial_layout: tuple[int, ...]
    final_layout: tuple[int, ...]
    stats: dict = field(default_factory=dict)
    #: Every block, in the order the planner met them (nested blocks before the block holding
    #: them; ``steps``' own block last): the same order for any number of ranks.
    blocks: tuple[Block, ...] = ()
