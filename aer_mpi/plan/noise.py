"""Planning noise: the steps of ``ir.Noise`` and ``ir.Readout``.

Promise: a mixture becomes a ``NoiseStep`` whose branches are planned like
conditional branches (each starts and ends in the layout it was reached
with, so shots that took different branches agree on the layout after);
a Kraus channel becomes a ``KrausStep`` on local positions (its qubits are
brought local first, as for a gate that flips them); a readout error
becomes a ``ReadoutStep`` (classical only). Pure: no MPI, no Qiskit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aer_mpi import ir


@dataclass(frozen=True, eq=False)
class NoiseStep:
    """Branch ``i`` (steps) with probability ``probabilities[i]``; ``()`` is the identity."""

    probabilities: tuple[float, ...]
    branches: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, eq=False)
class KrausStep:
    """Kraus matrices on local ``positions`` (matrix bit ``j`` is ``positions[j]``)."""

    positions: tuple[int, ...]
    matrices: tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class ReadoutStep:
    clbits: tuple[int, ...]
    assignment: np.ndarray


NOISE_STEPS = (NoiseStep, KrausStep, ReadoutStep)


def plan_noise(localiser: Any, i: int, op: Any, ops: Any, needs: Any, steps: list) -> None:
    """Append the steps of noise ``op`` (the ``i``-th of ``ops``) for ``localiser`` (plan/localiser.py)."""
    if isinstance(op, ir.Readout):
        steps.append(ReadoutStep(op.clbits, op.assignment))
    elif op.kraus:
        if any(localiser.is_global(q) for q in op.qubits):
            localiser._bring_local(i, op.qubits, ops, needs, steps)
        steps.append(KrausStep(tuple(localiser.layout[q] for q in op.qubits), op.kraus))
    else:
        steps.append(NoiseStep(op.probabilities, tuple(localiser._branch(b) for b in op.branches)))


def kraus_qubits(op: Any) -> tuple[int, ...]:
    """Qubits a noise op needs local (a Kraus channel's); none for the others."""
    if isinstance(op, ir.Noise) and op.kraus:
        return op.qubits
    return ()
