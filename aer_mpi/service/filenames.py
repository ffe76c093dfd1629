"""File names derived from circuit names (no Qiskit, no MPI).

A circuit's name becomes the stem of the files written for it (its
statevector ``.npy``): reduced to characters that are safe in a file name on
any file system, and made unique within one run.
"""

from __future__ import annotations

import re
from typing import Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_stem(name: str, fallback: str = "circuit") -> str:
    """``name`` with runs of unsafe characters replaced by ``_`` (never empty or hidden)."""
    stem = _UNSAFE.sub("_", str(name)).strip("._") or fallback
    return stem[:200]


def unique_stems(names: Iterable[str]) -> list[str]:
    """Safe stems for ``names``, in order; repeats get ``-2``, ``-3``, ... appended."""
    out: list[str] = []
    taken: set[str] = set()
    for i, name in enumerate(names):
        base = safe_stem(name, fallback=f"circuit-{i}")
        stem, k = base, 1
        while stem.lower() in taken:  # case-insensitive file systems too
            k += 1
            stem = f"{base}-{k}"
        taken.add(stem.lower())
        out.append(stem)
    return out
