"""Plain outputs: counts, per-shot memory, and the small part of an output that is broadcast."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from aer_mpi.engine.config import ExperimentOutput
from aer_mpi.errors import InternalError

#: A value with more entries than this is large: it stays on the ranks that computed it.
LARGE_ENTRIES = 4096


def counts_of(values: np.ndarray) -> dict[str, int]:
    """Hex outcome -> shots, from each shot's classical register value."""
    keys, counts = np.unique(values, return_counts=True)
    # tolist(): Python ints at once, not a numpy scalar converted per key
    return {hex(k): c for k, c in zip(keys.tolist(), counts.tolist())}


def memory_of(values: np.ndarray) -> list[str]:
    """Each shot's classical register as hex, in shot order."""
    return [hex(v) for v in np.asarray(values).tolist()]


def is_large(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.size > LARGE_ENTRIES
    if isinstance(value, (dict, list)):
        return len(value) > LARGE_ENTRIES or any(is_large(v) for v in (value.values() if isinstance(value, dict) else value))
    return False


def small_part(output: Optional[ExperimentOutput]) -> ExperimentOutput:
    """The output without large values (states, big arrays or dicts), to broadcast from rank 0."""
    if output is None:
        raise InternalError("rank 0 finished without an output")
    small = {k: v for k, v in output.data.items() if not is_large(v)}
    kinds = {k: v for k, v in output.save_kinds.items() if k in small}
    return ExperimentOutput(output.counts, output.memory, small, dict(output.metadata), kinds)
