"""The run options: ONE table, and everything derived from it.

Promise: every option ``AerMPISimulator.run()`` accepts is one ``RunOption``
row of ``OPTIONS``: its default, its check, the text naming its allowed
values, its unit, whether it travels in the Qobj config, and which
``RunConfig`` field it sets (with the conversion, e.g. MiB -> bytes) or
None when it is consumed above the engine. From the table come the
backend's ``_default_options``, the ``run()`` / ``set_options`` checks
(``check_options``), the Qobj config validation (``validate_config``), the
engine settings (``run_config``) and the CLI's defaults and choices.

To add an option: add a row here (and, when the engine uses it, the
``RunConfig`` field in ``engine/config.py`` with the same default);
``tests/qobj/test_options_table.py`` checks that they agree.

A ``None`` value is accepted for every option whose default is ``None``
(it means "the default behaviour": a random seed, what the node has free,
...). Messages are templates: ``option shots=0: expecting an integer >= 1``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from aer_mpi.engine.config import PRECISIONS as _ENGINE_PRECISIONS
from aer_mpi.engine.config import RunConfig
from aer_mpi.errors import InvalidInputError, QobjValidationError

#: Statevector precisions the engine has a dtype for (the first is the default).
PRECISIONS = tuple(_ENGINE_PRECISIONS)
#: Gate kernels the engine can use (None: $AER_MPI_KERNELS, else "auto").
KERNELS = ("auto", "numba", "numpy")
#: Progress styles besides True/False and a ProgressListener.
PROGRESS_STYLES = ("bar", "log")

MIB = 1 << 20


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(minimum: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= minimum


def _int_between(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and low <= v <= high


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    """A finite real > 0; booleans, inf and nan are refused."""
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _directory(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and bool(os.fspath(value))


def _progress(value: Any) -> bool:
    if isinstance(value, bool) or value in PROGRESS_STYLES:
        return True
    # a listener: duck-typed, so this layer needs no import of the provider's progress module
    return all(callable(getattr(value, name, None)) for name in ("steps", "stage", "experiment", "close"))


def _is_noise_model(value: Any) -> bool:
    from aer_mpi.qobj.noise import is_noise_model

    return is_noise_model(value)


def _mib_to_bytes(value: Any) -> int:
    return max(1, int(float(value) * MIB))


@dataclass(frozen=True)
class RunOption:
    """One row of the table."""

    name: str
    default: Any
    #: True when a (non-None) value is allowed.
    check: Callable[[Any], bool]
    #: The allowed values, as the error messages say them ("an integer >= 1").
    allowed: str
    #: What the value counts, if anything ("MiB").
    unit: Optional[str] = None
    #: The ``RunConfig`` field it sets, or None (consumed above the engine).
    engine: Optional[str] = None
    #: Qobj value -> ``RunConfig`` value.
    to_engine: Callable[[Any], Any] = lambda v: v
    #: Carried in the Qobj config (False: used by ``run()`` itself).
    qobj: bool = True
    #: Must be in every Qobj config (``run()`` always fills it in).
    required: bool = False
    #: run() value -> Qobj value (JSON-compatible).
    to_qobj: Callable[[Any], Any] = lambda v: v
    #: One line for help texts.
    help: str = ""

    @property
    def nullable(self) -> bool:
        return self.default is None

    @property
    def expecting(self) -> str:
        """The allowed values, None included where it is allowed."""
        return f"None or {self.allowed}" if self.nullable else self.allowed

    def accepts(self, value: Any) -> bool:
        return (value is None and self.nullable) or (value is not None and self.check(value))


_ROWS = (
    RunOption("shots", 1024, _int_at_least(1), "an integer >= 1", "shots", "shots", required=True,
              help="shots per circuit"),
    RunOption("seed_simulator", None, _int_at_least(0), "an integer >= 0", None, "seed", required=True,
              help="seed of the sampler (None: a random one, recorded in the result)"),
    RunOption("memory", False, _is_bool, "True or False", None, "memory",
              help="also record every shot's outcome"),
    RunOption("precision", PRECISIONS[0], lambda v: v in PRECISIONS, " or ".join(map(repr, PRECISIONS)),
              None, "precision", help="complex128 (double) or complex64 (single: half the memory)"),
    RunOption("parameter_binds", None, lambda v: isinstance(v, (list, tuple)), "a list of dicts", qobj=False,
              help="one dict per circuit: parameter -> list of values"),
    RunOption("max_memory_mb", None, _positive_number, "a number of MiB > 0", "MiB", "max_memory_bytes",
              _mib_to_bytes, help="memory each rank may use (None: what its node has free, shared by its ranks)"),
    RunOption("buffer_mb", 16, _positive_number, "a number of MiB > 0", "MiB", "buffer_bytes", _mib_to_bytes,
              help="send + receive buffer of an exchange, per rank"),
    RunOption("min_local_qubits", 3, _int_at_least(1), "an integer >= 1", "qubits", "min_local_qubits",
              help="fewest local qubits a shard keeps; smaller circuits run on fewer ranks"),
    RunOption("progress", False, _progress,
              "True (a bar on a terminal, else log lines), False, 'bar', 'log' or a ProgressListener",
              qobj=False, help="progress on stderr from rank 0"),
    RunOption("statevector_dir", None, _directory,
              "a directory (each circuit's final state is written there as <name>.npy)",
              to_qobj=os.fspath, help="set per experiment as RunConfig.statevector_path by service/plan_jobs.py"),
    # performance (docs/performance.md); names as in Qiskit Aer where Aer has them
    RunOption("fusion_enable", True, _is_bool, "True or False", None, "fusion_enable", help="gate fusion"),
    RunOption("fusion_max_qubit", 5, _int_between(1, 10), "an integer from 1 to 10", "qubits", "fusion_max_qubit",
              help="widest fused dense gate"),
    RunOption("fusion_max_diagonal_qubit", 12, _int_between(1, 20), "an integer from 1 to 20", "qubits",
              "fusion_max_diagonal_qubit", help="widest fused diagonal (at least fusion_max_qubit is used)"),
    RunOption("fusion_threshold", 14, _int_at_least(1), "an integer >= 1", "qubits", "fusion_threshold",
              help="circuits with fewer qubits are not fused (Aer's default is 14 too)"),
    RunOption("kernels", None, lambda v: v in KERNELS, "one of " + ", ".join(map(repr, KERNELS)), None, "kernels",
              help="gate kernels (None: $AER_MPI_KERNELS, else 'auto')"),
    RunOption("threads_per_rank", None, _int_at_least(1), "an integer >= 1", "threads", "threads_per_rank",
              help="kernel threads per rank (None: the node's cores shared by its ranks)"),
    # noise (qobj/noise.py): applied at assembly, as noise instructions in the Qobj
    RunOption("noise_model", None, lambda v: _is_noise_model(v), "a qiskit_aer.noise.NoiseModel or its to_dict() form",
              qobj=False, help="Aer noise model, simulated by trajectories (one per shot)"),
    RunOption("parallel_experiments", True, _is_bool, "True or False", None, "parallel_experiments",
              help="run circuits too small to shard whole, one per rank at a time"),
)

#: name -> row, in the table's order.
OPTIONS: Mapping[str, RunOption] = {row.name: row for row in _ROWS}


def defaults() -> dict[str, Any]:
    """Every option's default (the backend's ``_default_options``)."""
    return {name: row.default for name, row in OPTIONS.items()}


def check_options(options: Mapping[str, Any]) -> None:
    """Raise ``InvalidInputError`` for an unknown option or a value its row refuses."""
    for name, value in options.items():
        row = OPTIONS.get(name)
        if row is None:
            raise InvalidInputError(f"unknown option {name!r}: the options are {', '.join(sorted(OPTIONS))}")
        if not row.accepts(value):
            raise InvalidInputError(f"option {name}={value!r}: expecting {row.expecting}")


def qobj_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """The Qobj config of checked, complete run options (None values left out).

    ``seed_simulator`` must already be a number: ``run()`` draws one when it is None.
    """
    config = {}
    for name, row in OPTIONS.items():
        value = options.get(name)
        if row.qobj and value is not None:
            config[name] = row.to_qobj(value)
    return config


def validate_config(config: Any, where: str, required: bool = True) -> None:
    """Raise ``QobjValidationError`` naming the first bad key of a Qobj config.

    ``required=False`` for an experiment's own config (it overrides the job's).
    """
    if not isinstance(config, dict):
        raise QobjValidationError(f"{where}: expecting a dict")
    for name in config:
        row = OPTIONS.get(name)
        if row is None or not row.qobj:
            known = ", ".join(sorted(n for n, r in OPTIONS.items() if r.qobj))
            raise QobjValidationError(f"{where}.{name}: unknown key; the config keys are {known}")
    for name, row in OPTIONS.items():
        if not row.qobj:
            continue
        value = config.get(name)
        if value is None and not (required and row.required):
            continue
        if value is None or not row.check(value):
            raise QobjValidationError(f"{where}.{name}: expecting {row.allowed}, got {value!r}")


def run_config(config: Mapping[str, Any]) -> RunConfig:
    """Engine settings from a (validated) Qobj config; absent or None keys keep RunConfig's defaults."""
    kwargs = {}
    for name, row in OPTIONS.items():
        value = config.get(name)
        if row.engine is not None and value is not None:
            kwargs[row.engine] = row.to_engine(value)
    return RunConfig(**kwargs)


__all__ = [
    "KERNELS", "OPTIONS", "PRECISIONS", "RunOption", "check_options", "defaults", "qobj_config",
    "run_config", "validate_config",
]
