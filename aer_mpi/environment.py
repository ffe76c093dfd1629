"""The environment variables that tune aer_mpi: one table, every read checked.

A value that cannot be read is an ``InvalidInputError`` naming the variable and what it takes, never
a silent fall-back to the default: ``AER_MPI_WAIT_TIMEOUT=10m`` that quietly meant 600 s would
leave a user believing a stalled rank is caught in ten minutes. ``check_environment()`` reads them
all; the backend and the command line call it first, so a typo fails at once, the same on every
rank (they share the launcher's environment), before any collective. docs/reliability.md lists them.

This module is at the bottom with ``errors``: any layer may read its variables here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

from aer_mpi.errors import InvalidInputError


@dataclass(frozen=True)
class Variable:
    kind: str  # "seconds", "count", "switch" or "choice"
    default: object
    meaning: str
    choices: tuple[str, ...] = ()

    @property
    def default_text(self) -> str:
        """The default as one would write it in the environment."""
        if self.kind == "switch":
            return "1" if self.default else "0"
        if self.kind == "seconds":
            return f"{float(self.default):g}"
        return str(self.default)


_ON = ("1", "on", "true", "yes")
_OFF = ("0", "off", "false", "no")

#: Every tuning variable, its kind, default and what it does.
VARIABLES: dict[str, Variable] = {
    "AER_MPI_WAIT_TIMEOUT": Variable(
        "seconds", 600.0, "how long a rank waits for the others in a job before the job is aborted"),
    "AER_MPI_AGREE_TIMEOUT": Variable(
        "seconds", 60.0, "how long rank 0 waits for every rank to call run() before the job fails"),
    "AER_MPI_WORKER_START_TIMEOUT": Variable(
        "seconds", 120.0, "how long AerMPISimulator(processes=P) waits for its worker ranks to start"),
    "AER_MPI_HEARTBEAT_TIMEOUT": Variable(
        "seconds", 30.0, "how long a worker may stay silent during a job before it is declared lost"),
    "AER_MPI_KERNELS": Variable("choice", "auto", "the gate kernels", ("auto", "numba", "numpy")),
    "AER_MPI_NATIVE": Variable("switch", True, "the native SIMD stage kernels (0 turns them off)"),
    "AER_MPI_CACHE_BLOCKING": Variable("switch", True, "cache-blocked stages (0: one pass per gate)"),
    "AER_MPI_MAX_LOOP_PASSES": Variable(
        "count", 100_000, "the passes a while loop may make in one shot before the run stops with an error"),
}


def _raw(name: str) -> Optional[str]:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    return text.strip()


def _bad(name: str, text: str, expecting: str) -> InvalidInputError:
    variable = VARIABLES[name]
    return InvalidInputError(
        f"{name}={text!r}: expecting {expecting} ({variable.meaning}; default {variable.default_text}); "
        f"fix or unset it"
    )


def seconds(name: str) -> float:
    """A duration in seconds: a finite number > 0; the default when unset or empty."""
    variable = VARIABLES[name]
    text = _raw(name)
    if text is None:
        return float(variable.default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):
        raise _bad(name, text, "a number of seconds > 0")
    return value


def count(name: str) -> int:
    """A whole number > 0; the default when unset or empty."""
    variable = VARIABLES[name]
    text = _raw(name)
    if text is None:
        return int(variable.default)
    if not text.isdigit() or int(text) == 0:
        raise _bad(name, text, "a whole number > 0")
    return int(text)


def switch(name: str) -> bool:
    """On or off: 1/on/true/yes or 0/off/false/no (any case); the default when unset or empty."""
    text = _raw(name)
    if text is None:
        return bool(VARIABLES[name].default)
    if text.lower() in _ON:
        return True
    if text.lower() in _OFF:
        return False
    raise _bad(name, text, "0 or 1 (or off/on, false/true, no/yes)")


def choice(name: str) -> str:
    """One of the variable's choices (any case); the default when unset or empty."""
    variable = VARIABLES[name]
    text = _raw(name)
    if text is None:
        return str(variable.default)
    if text.lower() not in variable.choices:
        raise _bad(name, text, "one of " + ", ".join(variable.choices))
    return text.lower()


_READERS = {"seconds": seconds, "count": count, "switch": switch, "choice": choice}


def check_environment() -> None:
    """Read every variable of the table: an ``InvalidInputError`` for the first that cannot be read."""
    for name, variable in VARIABLES.items():
        _READERS[variable.kind](name)
