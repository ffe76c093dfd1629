"""The run options: ONE table, and everything derived from it.

Promise: every option ``AerMPISimulator.run()`` accepts is one ``RunOption``
row of ``OPTIONS``: its default, its check, the text naming its allowed
values, its unit, whether it travels in the Qobj config, and which
``RunConfig`` field it sets (with the conversion, e.g. MiB -> bytes) or
None when it is consumed above the engine. From the table come the
backend's ``_default_options``, the ``run()`` / ``set_options`` checks
(``check_options``), the Qobj config validation (``validate_config``), the
engine settings (``run_config``) and the CLI's defaults and choices.

Every option Qiskit Aer's ``AerSimulator`` accepts has a row, in one of
three categories (``RunOption.category``): ``honoured`` (it does here what
it does in Aer; a value aer_mpi cannot honour, e.g. ``method="stabilizer"``
or ``device="GPU"``, is refused by the row's check with one error naming
what aer_mpi can do), ``ignored`` (accepted, any value, no effect here; a
run names the ones it was given in ``metadata["ignored_options"]``) and
``aer_mpi`` (aer_mpi's own options). numpy scalars are accepted as the
Python numbers they hold (``normalise_options``), as Aer does.

To add an option: add a row here (and, when the engine uses it, the
``RunConfig`` field in ``engine/config.py`` with the same default);
``tests/qobj/test_options_table.py`` checks that they agree.

A ``None`` value is accepted for every option whose default is ``None``
(it means "the default behaviour": a random seed, what the node has free,
...). Messages are templates: ``option shots=-1: expecting an integer >= 0``.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

from aer_mpi.engine.config import PRECISIONS as _ENGINE_PRECISIONS
from aer_mpi.engine.config import RunConfig
from aer_mpi.errors import InvalidInputError, QobjValidationError

#: Statevector precisions the engine has a dtype for (the first is the default).
PRECISIONS = tuple(_ENGINE_PRECISIONS)
#: Gate kernels the engine can use (None: $AER_MPI_KERNELS, else "auto").
KERNELS = ("auto", "numba", "numpy")
#: Progress styles besides True/False and a ProgressListener.
PROGRESS_STYLES = ("bar", "log")
#: Simulation methods (Aer's ``method``) aer_mpi runs: all of them are the distributed statevector.
NATIVE_METHODS = ("automatic", "statevector")
#: Aer's other methods that simulate the same states: run as the statevector (with a warning), so a
#: notebook asking for one runs; its counts have the same distribution (noise by trajectories).
STATEVECTOR_RUN_METHODS = ("density_matrix", "matrix_product_state", "stabilizer", "extended_stabilizer",
                           "tensor_network")
#: Aer's methods that simulate the circuit's operator (engine/operators.py: a state of twice the register's
#: qubits on the same engine).
OPERATOR_METHODS = ("unitary", "superop")
METHODS = NATIVE_METHODS + STATEVECTOR_RUN_METHODS + OPERATOR_METHODS
#: The methods that carry every error and reset exactly (no trajectories): Aer samples their shots
#: from one final state even under noise (its metadata words "measure_sampling" and "noise").
EXACT_NOISE_METHODS = ("density_matrix",) + OPERATOR_METHODS
#: Of those run as the statevector, Aer's that simulate a circuit wider than a statevector holds: a
#: memory error under one of them names Aer's method (service/execution.py).
WIDE_CIRCUIT_METHODS = ("matrix_product_state", "extended_stabilizer", "tensor_network")
#: Devices (Aer's ``device``) aer_mpi runs on.
DEVICES = ("CPU",)

#: Categories of a row (see the module's docstring).
HONOURED = "honoured"
IGNORED = "ignored"
OWN = "aer_mpi"
CATEGORIES = (HONOURED, IGNORED, OWN)

MIB = 1 << 20
#: Most shots one circuit may have: each shot's outcome takes 8 bytes (2**40 shots: 8 TiB).
MAX_SHOTS = 1 << 40
#: Seeds are unsigned 64-bit integers, as in Aer.
MAX_SEED = (1 << 64) - 1
#: Integer options with an upper bound: name -> (bound, why), for the message.
_LIMITS = {
    "shots": (MAX_SHOTS, "at most 2**40 (each shot's outcome takes 8 bytes)"),
    "seed_simulator": (MAX_SEED, "below 2**64 (seeds are 64-bit, as in Aer)"),
}
#: Aer takes a negative seed as its unsigned 64-bit pattern (-1 runs as 2**64 - 1, and the result
#: reports that): options whose negative values down to the bound wrap modulo 2**64.
_WRAPPED_BELOW = {"seed_simulator": -(1 << 63)}


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


def parse_period(value: Any) -> float:
    """Seconds in ``90``, ``"90s"``, ``"10m"``, ``"2h"``; raises ``InvalidInputError`` otherwise."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInputError(f"checkpoint period {value!r}: expecting seconds, or a number with s, m or h (90s, 10m, 2h)")
    text = str(value).strip().lower()
    scale = 1.0
    if text and text[-1] in units:
        scale, text = units[text[-1]], text[:-1]
    try:
        seconds = float(text) * scale
    except ValueError:
        raise InvalidInputError(
            f"checkpoint period {value!r}: expecting seconds, or a number with s, m or h (90s, 10m, 2h)"
        ) from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"checkpoint period {value!r}: expecting a duration > 0 (90s, 10m, 2h)")
    return seconds


def _period(value: Any) -> bool:
    try:
        parse_period(value)
    except InvalidInputError:
        return False
    return True


def _progress(value: Any) -> bool:
    if isinstance(value, bool) or value in PROGRESS_STYLES:
        return True
    # a listener: duck-typed, so this layer needs no import of the provider's progress module
    return all(callable(getattr(value, name, None)) for name in ("steps", "stage", "experiment", "close"))


def _anything(value: Any) -> bool:
    return True


def _non_negative_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def _zero_is_none(value: Any) -> Any:
    """Aer's 0 meaning "automatic" (``max_parallel_threads``, ``max_memory_mb``, ...) -> None."""
    return None if value == 0 and not isinstance(value, bool) else value


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``np.int64(5)`` -> 5); anything else unchanged."""
    if isinstance(value, np.generic):
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.str_):
            return str(value)
    return value


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
    #: One line for help texts (for an Aer option: what aer_mpi does with it).
    help: str = ""
    #: ``honoured``, ``ignored`` or ``aer_mpi`` (see the module's docstring).
    category: str = OWN
    #: An accepted value -> the value kept (e.g. Aer's 0 meaning "automatic" -> None).
    normalise: Callable[[Any], Any] = lambda v: v

    @property
    def aer(self) -> bool:
        """Whether Qiskit Aer's ``AerSimulator`` has this option."""
        return self.category != OWN

    @property
    def expecting(self) -> str:
        """The allowed values, None included where it is one (not where it only means the default)."""
        return f"None or {self.allowed}" if self.default is None else self.allowed

    def accepts(self, value: Any) -> bool:
        # None is accepted for every option, as in Aer (``AerSimulator(method=None)``, a notebook's
        # parameter left at None): it means the default (``set_options``), or the backend's value (``run``)
        return value is None or self.check(value)


def _ignored(name: str, default: Any, why: str) -> RunOption:
    """A row of an Aer option with no meaning in aer_mpi: any value accepted, none used."""
    return RunOption(name, default, _anything, "any value (ignored by aer_mpi)", qobj=False, help=why,
                     category=IGNORED)


_ROWS = (
    RunOption("shots", 1024, _int_between(0, MAX_SHOTS), "an integer >= 0", "shots", "shots", required=True,
              help="shots per circuit (None: the default, as in Aer; 0 runs the saves only, without counts)",
              category=HONOURED),
    RunOption("seed_simulator", None, _int_between(0, MAX_SEED), "an integer >= 0", None, "seed", required=True,
              help="seed of the sampler (None: a random one, recorded in the result; a negative one down to "
                   "-2**63 is taken modulo 2**64, as in Aer); the same counts "
                   "at any number of ranks", category=HONOURED),
    RunOption("memory", False, _is_bool, "True or False", None, "memory",
              help="also record every shot's outcome (hex, as Aer)", category=HONOURED),
    RunOption("precision", PRECISIONS[0], lambda v: v in PRECISIONS, " or ".join(map(repr, PRECISIONS)),
              None, "precision", help="complex128 (double) or complex64 (single: half the memory)",
              category=HONOURED),
    RunOption("method", METHODS[0], lambda v: v in METHODS,
              ", ".join(map(repr, METHODS)), engine="method",
              help="every state method runs the sharded statevector ('density_matrix', "
                   "'matrix_product_state', 'stabilizer', ... with a warning: same count distributions, noise "
                   "by trajectories), except that a noisy circuit whose measurements are all final runs as its "
                   "density matrix under 'density_matrix', and under 'automatic' when shots > 2**n (n <= 14), as "
                   "Aer; and a Clifford circuit (measurements, resets, Pauli noise and "
                   "Pauli feed-forward included) runs on a stabilizer tableau under 'stabilizer', under "
                   "'automatic' when it is noisy, and under any method but 'statevector' when its "
                   "state does not fit in memory; 'unitary' and 'superop' give the circuit's unitary and "
                   "superoperator (save_unitary, save_superop; as Aer: no measurements; a state of 2n and 4n "
                   "qubits on the same engine)",
              category=HONOURED),
    RunOption("device", DEVICES[0], lambda v: v in DEVICES,
              "'CPU' (aer_mpi runs on the CPUs of its MPI ranks; for device='GPU' use qiskit_aer.AerSimulator)",
              qobj=False, help="'CPU' only; 'GPU' is refused", category=HONOURED),
    RunOption("parameter_binds", None, lambda v: isinstance(v, (list, tuple)), "a list of dicts", qobj=False,
              help="one dict per circuit: parameter -> list of values (as Aer's run(parameter_binds=))"),
    RunOption("max_memory_mb", None, _positive_number, "a number of MiB > 0", "MiB", "max_memory_bytes",
              _mib_to_bytes, help="memory each rank may use (None or 0: what its node has free, shared by "
                                  "its ranks); a run that needs more is refused before allocating",
              category=HONOURED, normalise=_zero_is_none),
    RunOption("enable_truncation", True, _is_bool, "True or False", None, "enable_truncation",
              help="leave out qubits no gate touches (a device-transpiled circuit runs on its active qubits), "
                   "and those only noise acts on",
              category=HONOURED),
    RunOption("max_parallel_threads", None, _int_at_least(1), "an integer >= 0 (0: all)", "threads",
              "max_parallel_threads", help="kernel threads of each rank (None or 0: the node's cores shared "
                                           "by its ranks)", category=HONOURED, normalise=_zero_is_none),
    RunOption("max_parallel_experiments", None, _int_at_least(1), "an integer >= 0 (0: all)", "experiments",
              "parallel_experiments", lambda v: v != 1,
              help="1: run a batch's circuits one after the other on all ranks; other values: small circuits "
                   "run whole, one per rank at a time", category=HONOURED, normalise=_zero_is_none),
    RunOption("statevector_parallel_threshold", 16, _int_at_least(1), "an integer >= 1", "qubits",
              "statevector_parallel_threshold",
              help="a shard of this many qubits or fewer is updated by one thread (as Aer, whose default is "
                   "14: starting kernel threads costs more than they save on 2^16 amplitudes)", category=HONOURED),
    RunOption("fusion_verbose", False, _is_bool, "True or False", qobj=False,
              help="metadata['fusion'] is always given", category=HONOURED),
    RunOption("buffer_mb", 16, _positive_number, "a number of MiB > 0", "MiB", "buffer_bytes", _mib_to_bytes,
              help="send + receive buffer of an exchange, per rank"),
    RunOption("cache_blocking", True, _is_bool, "True or False", None, "cache_blocking",
              help="apply runs of in-cache gates chunk by chunk, one pass over the shard per stage "
                   "(False, or $AER_MPI_CACHE_BLOCKING=0: one pass per gate)"),
    RunOption("cache_qubits", None, _int_between(1, 40), "an integer from 1 to 40", "qubits", "cache_qubits",
              help="chunk of a cache-blocked stage, 2**cache_qubits amplitudes (None: by the L2 and L3 caches and the shard)"),
    RunOption("min_local_qubits", 3, _int_at_least(1), "an integer >= 1", "qubits", "min_local_qubits",
              help="fewest local qubits a shard keeps; smaller circuits run on fewer ranks"),
    RunOption("progress", False, _progress,
              "True (a bar on a terminal, else log lines), False, 'bar', 'log' or a ProgressListener",
              qobj=False, help="progress on stderr from rank 0"),
    RunOption("statevector_dir", None, _directory,
              "a directory (each circuit's final state is written there as <name>.npy)",
              to_qobj=os.fspath, help="set per experiment as RunConfig.statevector_path by service/plan_jobs.py"),
    # checkpoint and restart (docs/checkpoint.md)
    RunOption("checkpoint_dir", None, _directory,
              "a directory (the job's checkpoints are kept there; a checkpoint found there is resumed)",
              None, "checkpoint_dir", to_qobj=os.fspath,
              help="keep checkpoints here; a job run again with the same directory resumes from its last one"),
    RunOption("checkpoint_every_seconds", None, _period, "a duration > 0: seconds, or '90s', '10m', '2h'",
              "seconds", "checkpoint_every_seconds", parse_period, to_qobj=parse_period,
              normalise=lambda v: parse_period(v) if _period(v) else v,
              help="period of the checkpoints (None: only on SIGTERM/SIGUSR1 or cancel(checkpoint=True))"),
    # performance (docs/performance.md); names as in Qiskit Aer where Aer has them
    RunOption("fusion_enable", True, _is_bool, "True or False", None, "fusion_enable", help="gate fusion",
              category=HONOURED),
    RunOption("fusion_max_qubit", 5, _int_at_least(0), "an integer >= 0", "qubits", "fusion_max_qubit",
              help="widest fused dense gate (None: 5, as Aer; any integer is taken, as in Aer: 0 fuses as 1, "
                   "above 10 as 10, the widest kernel)", category=HONOURED),
    RunOption("fusion_max_diagonal_qubit", 12, _int_at_least(0), "an integer >= 0", "qubits",
              "fusion_max_diagonal_qubit", help="widest fused diagonal (taken between fusion_max_qubit and 20)"),
    RunOption("fusion_threshold", 14, _int_at_least(1), "an integer >= 1", "qubits", "fusion_threshold",
              help="circuits with fewer qubits are not fused (None: 14, as Aer)", category=HONOURED),
    RunOption("kernels", None, lambda v: v in KERNELS, "one of " + ", ".join(map(repr, KERNELS)), None, "kernels",
              help="gate kernels (None: $AER_MPI_KERNELS, else 'auto')"),
    RunOption("threads_per_rank", None, _int_at_least(1), "an integer >= 1", "threads", "threads_per_rank",
              help="kernel threads per rank (None: the node's cores shared by its ranks)"),
    # noise (qobj/noise.py): applied at assembly, as noise instructions in the Qobj
    RunOption("noise_model", None, lambda v: _is_noise_model(v), "a qiskit_aer.noise.NoiseModel or its to_dict() form",
              qobj=False, help="Aer noise model, simulated by trajectories (one per shot)", category=HONOURED),
    RunOption("basis_gates", None, lambda v: isinstance(v, (list, tuple, set, frozenset)) and all(isinstance(g, str) for g in v),
              "a list of gate names", qobj=False, category=HONOURED,
              help="the gates the target offers transpile (None: all, or with a noise model its basis gates, as Aer)"),
    RunOption("parallel_experiments", True, _is_bool, "True or False", None, "parallel_experiments",
              help="run circuits too small to shard whole, one per rank at a time"),
    _ignored("meas_level", 2, "results are classified bits whatever it is, as Aer's (qiskit-ibm-runtime's local "
                              "mode passes 2)"),
    # Aer's options that mean nothing to a distributed CPU statevector: accepted, no effect
    RunOption("zero_threshold", 1e-10, _non_negative_number, "a number >= 0", None, "zero_threshold",
              help="amplitudes and probabilities at or below it are left out of save_statevector_dict and "
                   "save_probabilities_dict (as Aer)", category=HONOURED),
    _ignored("executor", None, "aer_mpi runs its jobs on its MPI ranks"),
    _ignored("max_job_size", None, "a job is never split"),
    _ignored("max_shot_size", None, "shots are never split"),
    _ignored("validation_threshold", None, "aer_mpi checks its own inputs"),
    _ignored("max_parallel_shots", None, "shots are sampled from one state (branching at measurements)"),
    _ignored("accept_distributed_results", None, "rank 0's result is always complete"),
    _ignored("cuStateVec_enable", False, "GPU only"),
    _ignored("blocking_qubits", None, "aer_mpi plans its own cache and rank tiers (buffer_mb, min_local_qubits)"),
    _ignored("blocking_enable", False, "aer_mpi plans its own cache and rank tiers"),
    _ignored("chunk_swap_buffer_qubits", None, "the exchange buffer is buffer_mb"),
    _ignored("batched_shots_gpu", False, "GPU only"),
    _ignored("batched_shots_gpu_max_qubits", 16, "GPU only"),
    _ignored("num_threads_per_device", 1, "GPU only"),
    _ignored("shot_branching_enable", False, "shots always branch at mid-circuit measurements"),
    _ignored("shot_branching_sampling_enable", False, "shots always branch at mid-circuit measurements"),
    _ignored("statevector_sample_measure_opt", 10, "sampling is always the distributed one"),
    _ignored("stabilizer_max_snapshot_probabilities", 32, "stabilizer method only"),
    _ignored("extended_stabilizer_sampling_method", "resampled_metropolis", "extended_stabilizer method only"),
    _ignored("extended_stabilizer_metropolis_mixing_time", 5000, "extended_stabilizer method only"),
    _ignored("extended_stabilizer_approximation_error", 0.05, "extended_stabilizer method only"),
    _ignored("extended_stabilizer_norm_estimation_samples", 100, "extended_stabilizer method only"),
    _ignored("extended_stabilizer_norm_estimation_repetitions", 3, "extended_stabilizer method only"),
    _ignored("extended_stabilizer_parallel_threshold", 100, "extended_stabilizer method only"),
    _ignored("extended_stabilizer_probabilities_snapshot_samples", 3000, "extended_stabilizer method only"),
    RunOption("matrix_product_state_truncation_threshold", 1e-16, _non_negative_number, "a number >= 0", None,
              "mps_truncation_threshold", help="method='matrix_product_state' (as a matrix product state when "
              "the circuit is too wide for a statevector, or when this is above 1e-16 or a bond limit is set): "
              "singular values whose squares sum to at most this are dropped (as Aer)",
              category=HONOURED),
    RunOption("matrix_product_state_max_bond_dimension", None, _int_at_least(1), "an integer >= 1", None,
              "mps_max_bond_dimension", help="method='matrix_product_state' (as a matrix product state when "
              "set, or when the circuit is too wide for a statevector): at most this many singular values "
              "kept per bond (None: no limit; as Aer)",
              category=HONOURED),
    _ignored("mps_sample_measure_algorithm", "mps_heuristic", "matrix_product_state method only"),
    _ignored("mps_log_data", False, "matrix_product_state method only"),
    _ignored("mps_swap_direction", "mps_swap_left", "matrix_product_state method only"),
    _ignored("chop_threshold", 1e-8, "matrix_product_state method only"),
    _ignored("mps_parallel_threshold", 14, "matrix_product_state method only"),
    _ignored("mps_omp_threads", 1, "matrix_product_state method only"),
    _ignored("mps_lapack", False, "matrix_product_state method only"),
    _ignored("tensor_network_num_sampling_qubits", 10, "tensor_network method (GPU) only"),
    _ignored("use_cuTensorNet_autotuning", False, "tensor_network method (GPU) only"),
    _ignored("runtime_parameter_bind_enable", False, "aer_mpi binds parameters before planning"),
)

#: name -> row, in the table's order.
OPTIONS: Mapping[str, RunOption] = {row.name: row for row in _ROWS}


def defaults() -> dict[str, Any]:
    """Every option's default (the backend's ``_default_options``)."""
    return {name: row.default for name, row in OPTIONS.items()}


#: Names of the Aer options aer_mpi accepts and ignores.
IGNORED_OPTIONS = frozenset(name for name, row in OPTIONS.items() if row.category == IGNORED)

#: Keywords of ``run()`` that are no option of Aer's simulator but that its ``run()`` lets through
#: without a word, as code written for devices or for Qiskit's old ``execute()`` passes them
#: (transpiler settings, device run settings, Aer's older names of the extended-stabilizer options):
#: accepted by ``run()`` only (not ``set_options``, which Aer refuses too), named in the result's
#: ``ignored_options``. Any other unknown name stays an error (a typo of ``shots`` must not pass).
IGNORED_RUN_KEYWORDS = frozenset({
    "optimization_level", "seed_transpiler", "skip_transpilation", "initial_layout", "layout_method",
    "routing_method", "translation_method", "scheduling_method",
    "init_qubits", "meas_return", "rep_delay", "rep_time", "max_credits", "job_name", "job_tags",
    "qubit_lo_freq", "meas_lo_freq", "schedule_los", "use_measure_esp", "dynamic", "memory_slots",
    "extended_stabilizer_mixing_time", "extended_stabilizer_measure_sampling",
    "extended_stabilizer_norm_estimation_default_samples", "extended_stabilizer_disable_measurement_opt",
})


def check_options(options: Mapping[str, Any]) -> None:
    """Raise ``InvalidInputError`` for an unknown option or a value its row refuses."""
    normalise_options(options)


def normalise_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Checked options as the backend keeps them: numpy scalars as Python ones, Aer's 0 for "automatic" as None.

    Raises ``InvalidInputError`` for an unknown option or a value its row refuses.
    """
    out = {}
    options = _legacy_method(options)
    for name, value in options.items():
        row = OPTIONS.get(name)
        if row is None:
            raise InvalidInputError(f"unknown option {name!r}: the options are {', '.join(sorted(OPTIONS))}")
        value = _wrapped(name, _integral(name, plain(value), row))
        if row.check is _is_bool and type(value) is int and value in (0, 1):
            value = bool(value)  # memory=1, fusion_enable=0: Aer takes them as the truth values
        limit = _LIMITS.get(name)
        if limit is not None and _is_int(value) and value > limit[0]:
            raise InvalidInputError(f"option {name}={value!r}: expecting {row.expecting}, {limit[1]}")
        if not (row.accepts(value) or row.normalise(value) is None):
            wraps = (" (or a negative one down to -2**63, taken modulo 2**64 as in Aer)"
                     if name in _WRAPPED_BELOW and _is_int(value) else "")
            raise InvalidInputError(f"option {name}={value!r}: expecting {row.expecting}{wraps}")
        out[name] = None if value is None else row.normalise(value)
    return out


#: Aer's legacy ``method="<method>_<device>"`` suffixes, and the device each names.
_LEGACY_DEVICES = {"_cpu": "CPU", "_gpu": "GPU", "_thrust": "Thrust"}


def _legacy_method(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``method="statevector_cpu"`` as ``method="statevector", device="CPU"``, with Aer's
    DeprecationWarning (its legacy QasmSimulator took these names)."""
    method = options.get("method")
    if not isinstance(method, str) or method in METHODS:
        return options
    for suffix, device in _LEGACY_DEVICES.items():
        base = method[: -len(suffix)]
        if method.endswith(suffix) and base in METHODS:
            warnings.warn(f"method={method!r} is Aer's legacy name: pass method={base!r}, device={device!r}",
                          DeprecationWarning, stacklevel=_caller_level())
            return {**options, "method": base, "device": options.get("device", device)}
    return options


def _wrapped(name: str, value: Any) -> Any:
    """A negative seed as Aer runs it (``-1`` is ``2**64 - 1``); one below ``-2**63`` stays, and is refused."""
    low = _WRAPPED_BELOW.get(name)
    if low is not None and _is_int(value) and low <= value < 0:
        return value % (1 << 64)
    return value


def _integral(name: str, value: Any, row: RunOption) -> Any:
    """``shots=1e4`` (or ``shots="300"``) as 10000 where only an integer is accepted, with Aer's
    DeprecationWarning (Aer casts it too); a float with a fraction (10.5) stays, and is refused,
    where Aer would truncate it."""
    given = value
    if isinstance(value, str) and name == "shots":  # shots="300": Aer casts it too (test_floating_shots)
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer() and not row.accepts(value) and row.accepts(int(value)):
        warnings.warn(f"option {name}={given!r}: an integer is expected; it is taken as {int(value)} (as Aer "
                      f"does, which deprecated it): pass {name}={int(value)}", DeprecationWarning,
                      stacklevel=_caller_level())
        return int(value)
    return value


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside aer_mpi: a warning names the user's line."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


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
    "CATEGORIES", "DEVICES", "EXACT_NOISE_METHODS", "HONOURED", "IGNORED", "IGNORED_OPTIONS", "IGNORED_RUN_KEYWORDS", "KERNELS", "METHODS", "NATIVE_METHODS", "OPERATOR_METHODS", "WIDE_CIRCUIT_METHODS",
    "OPTIONS", "OWN", "STATEVECTOR_RUN_METHODS",
    "PRECISIONS", "RunOption", "check_options", "defaults", "normalise_options", "parse_period", "plain", "qobj_config",
    "run_config", "validate_config",
]
