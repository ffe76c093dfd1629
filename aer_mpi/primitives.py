"""Qiskit's V2 primitives on AerMPISimulator: ``SamplerV2`` and ``EstimatorV2``.

Both follow Qiskit Aer's (``qiskit_aer.primitives``): pubs are coerced as
Qiskit defines them (``SamplerPub`` / ``EstimatorPub``), parameter sweeps
broadcast as ``BindingsArray`` and ``ObservablesArray`` say, the sampler
returns one ``BitArray`` per classical register, and the estimator returns
exact expectation values (computed on the sharded state, never sampled)
with Gaussian noise of standard deviation ``precision`` added when
``precision > 0``.

Options are given as Aer's primitives take them:
``SamplerV2(options={"backend_options": {...}, "run_options": {...}})``,
``EstimatorV2(options={"default_precision": ..., "backend_options": ...,
"run_options": ...})``; every option of Aer's ``AerSimulator`` is accepted
in both dicts (``aer_mpi.qobj.options``). ``from_backend(backend, **kwargs)``
wraps an existing ``AerMPISimulator`` as in ``qiskit_aer.primitives``.

Under ``mpiexec`` every rank builds the primitive and calls ``run()`` in the
same order: ``run()`` submits the backend jobs at once, in the caller's
thread, so the ranks meet in the same collective order; every rank gets
the same result.
"""

from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2, PrimitiveJob, PrimitiveResult
from qiskit.primitives.containers import BitArray, DataBin, PubResult, SamplerPubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp

from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj.instructions import CONTROL_FLOW


@dataclass
class Options:
    """``backend_options``: AerMPISimulator(...) arguments; ``run_options``: run(...) options."""

    backend_options: dict = field(default_factory=dict)
    run_options: dict = field(default_factory=dict)
    default_precision: float = 0.0


def _make_backend(backend: Any, options: Options) -> Any:
    if backend is not None:
        return backend
    from aer_mpi.provider.backend import AerMPISimulator

    return AerMPISimulator(**options.backend_options)


def _check_from_backend(backend: Any) -> None:
    from aer_mpi.provider.backend import AerMPISimulator

    if not isinstance(backend, AerMPISimulator):
        raise InvalidInputError(
            f"from_backend() takes an AerMPISimulator, got {type(backend).__name__}: aer_mpi simulates "
            "ideal circuits; to run on a device's target, transpile for it and run here"
        )


#: Seeds and ids need no cryptographic strength: one generator seeded from the OS, not a system call each.
_RANDOM = random.Random()
if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's seeds
    os.register_at_fork(after_in_child=_RANDOM.seed)


@functools.lru_cache(maxsize=256)
def _save_expval(terms: tuple, num_qubits: int, label: str) -> Any:
    """The save instruction of one observable (built once: a variational loop asks for the same ones)."""
    from aer_mpi.library import SaveExpectationValue

    operator = SparsePauliOp.from_list(list(terms), num_qubits=num_qubits)
    return SaveExpectationValue(operator, label=label)


def _without_final_measurements(circuit: QuantumCircuit) -> QuantumCircuit:
    """A copy of ``circuit`` without its final measurements (a plain copy when it has none: cheaper)."""
    if any(inst.operation.name in ("measure", "barrier") for inst in circuit.data):
        return circuit.remove_final_measurements(inplace=False)
    return circuit.copy()


def _parameter_binds(circuit: QuantumCircuit, parameter_values: Any) -> tuple[list[dict], tuple]:
    """Aer's ``parameter_binds`` for one circuit, flattening the sweep in C order."""
    shape = parameter_values.shape
    if not circuit.parameters:
        if int(np.prod(shape)) != 1:
            raise InvalidInputError(
                f"the pub's parameter values have shape {shape} but the circuit has no parameters"
            )
        return [{}], shape
    array = parameter_values.as_array(circuit.parameters)
    binds = {p: array[..., i].ravel() for i, p in enumerate(circuit.parameters)}
    return [binds], shape


#: Trajectories an EstimatorV2 pub averages over under a noise model when its precision is 0.
NOISY_ESTIMATOR_TRAJECTORIES = 1024


def _trajectories(backend: Any, run_options: dict, precision: float) -> int:
    """Shots of an EstimatorV2 pub: 1 (exact) without noise; with a noise model, the expectation
    value is averaged over trajectories, one per shot (docs/noise.md): 1/precision**2 of them, or
    ``NOISY_ESTIMATOR_TRAJECTORIES`` for precision 0."""
    noise = run_options.get("noise_model", getattr(getattr(backend, "options", None), "noise_model", None))
    if noise is None:
        return 1
    if precision > 0:
        return max(1, int(np.ceil(1.0 / precision**2)))
    return NOISY_ESTIMATOR_TRAJECTORIES


def _pub_seed(seed: Optional[int], index: int) -> int:
    return _RANDOM.randrange(1 << 62) if seed is None else int(seed) + index


class SamplerV2(BaseSamplerV2):
    """Sampler on AerMPISimulator, as Qiskit Aer's SamplerV2.

    Args:
        default_shots: shots of a pub that does not say.
        seed: seed of the simulator's sampling (pub ``i`` uses ``seed + i``);
            ``None`` draws one per run. The same seed gives the same bits at
            any number of ranks.
        options: ``{"backend_options": {...}, "run_options": {...}}``.
        backend: an AerMPISimulator to run on (default: a new one from
            ``backend_options``).
    """

    def __init__(
        self,
        *,
        default_shots: int = 1024,
        seed: Optional[int] = None,
        options: Optional[dict] = None,
        backend: Any = None,
    ):
        self._default_shots = default_shots
        self._seed = seed
        self._options = Options(**(options or {}))
        self._backend = _make_backend(backend, self._options)

    @classmethod
    def from_backend(cls, backend: Any, **options: Any) -> "SamplerV2":
        """A sampler on ``backend`` (an AerMPISimulator), as ``qiskit_aer.primitives.SamplerV2.from_backend``."""
        _check_from_backend(backend)
        return cls(backend=backend, **options)

    @property
    def default_shots(self) -> int:
        return self._default_shots

    @property
    def seed(self) -> Optional[int]:
        return self._seed

    @property
    def options(self) -> Options:
        return self._options

    @property
    def backend(self) -> Any:
        return self._backend

    def run(self, pubs: Iterable[Any], *, shots: Optional[int] = None) -> PrimitiveJob:
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        run_options = dict(self._options.run_options)
        for key in ("shots", "memory", "parameter_binds"):
            run_options.pop(key, None)
        seed = self._seed if self._seed is not None else run_options.pop("seed_simulator", None)
        run_options.pop("seed_simulator", None)
        submitted = []
        for i, pub in enumerate(coerced):
            if pub.circuit.num_clbits == 0:
                raise InvalidInputError(
                    f"pub {i}: the circuit has no classical bits to sample; add measurements (measure_all())"
                )
            binds, shape = _parameter_binds(pub.circuit, pub.parameter_values)
            job = self._backend.run(
                pub.circuit, shots=pub.shots, memory=True, parameter_binds=binds,
                seed_simulator=_pub_seed(seed, i), **run_options,
            )
            submitted.append((pub, shape, job))
        job = PrimitiveJob(self._collect, submitted)
        job._submit()
        return job

    def _collect(self, submitted: list) -> PrimitiveResult:
        results = []
        for pub, shape, job in submitted:
            result = job.result()
            results.append(_sampler_pub_result(pub, shape, result))
        return PrimitiveResult(results, metadata={"version": 2})


def _sampler_pub_result(pub: SamplerPub, shape: tuple, result: Any) -> SamplerPubResult:
    circuit = pub.circuit
    count = int(np.prod(shape))
    memories = [[int(h, 16) for h in result.results[k].data.memory] for k in range(count)]
    arrays = {}
    for creg in circuit.cregs:
        indices = [circuit.find_bit(b).index for b in creg]
        num_bytes = (len(indices) + 7) // 8
        packed = np.zeros((count, pub.shots, num_bytes), dtype=np.uint8)
        for k, memory in enumerate(memories):
            for s, value in enumerate(memory):
                reg = 0
                for j, idx in enumerate(indices):
                    reg |= ((value >> idx) & 1) << j
                packed[k, s] = np.frombuffer(reg.to_bytes(num_bytes, "big"), dtype=np.uint8)
        arrays[creg.name] = BitArray(packed.reshape(shape + (pub.shots, num_bytes)), len(indices))
    return SamplerPubResult(
        DataBin(**arrays, shape=shape),
        metadata={"shots": pub.shots, "circuit_metadata": circuit.metadata},
    )


class EstimatorV2(BaseEstimatorV2):
    """Estimator on AerMPISimulator, as Qiskit Aer's EstimatorV2.

    Expectation values are exact (the sharded state is reduced across ranks,
    never gathered or sampled); with ``precision > 0`` each gets Gaussian
    noise of that standard deviation, drawn from ``seed`` (or
    ``run_options["seed_simulator"]``), and ``stds`` reports the precision.

    Args:
        options: ``{"default_precision": 0.0, "backend_options": {...}, "run_options": {...}}``.
        seed: seed of the noise; ``None`` uses ``run_options["seed_simulator"]``.
        backend: an AerMPISimulator to run on.
    """

    def __init__(self, *, options: Optional[dict] = None, seed: Optional[int] = None, backend: Any = None):
        self._options = Options(**(options or {}))
        self._seed = seed
        self._backend = _make_backend(backend, self._options)

    @classmethod
    def from_backend(cls, backend: Any, **options: Any) -> "EstimatorV2":
        """An estimator on ``backend`` (an AerMPISimulator), as ``qiskit_aer.primitives.EstimatorV2.from_backend``."""
        _check_from_backend(backend)
        return cls(backend=backend, **options)

    @property
    def options(self) -> Options:
        return self._options

    @property
    def backend(self) -> Any:
        return self._backend

    def run(self, pubs: Iterable[Any], *, precision: Optional[float] = None) -> PrimitiveJob:
        if precision is None:
            precision = self._options.default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        run_options = dict(self._options.run_options)
        for key in ("shots", "parameter_binds"):
            run_options.pop(key, None)
        seed = self._seed if self._seed is not None else run_options.get("seed_simulator")
        submitted = []
        for i, pub in enumerate(coerced):
            if pub.precision < 0:
                raise InvalidInputError(f"pub {i}: precision {pub.precision} is negative; use 0 for exact values")
            circuit = _without_final_measurements(pub.circuit)
            dynamic = sorted(
                {inst.operation.name for inst in circuit.data}
                & ({"measure", "reset"} | CONTROL_FLOW)
            )
            if dynamic:
                raise InvalidInputError(
                    f"pub {i}: EstimatorV2 computes exact expectation values of circuits without "
                    f"mid-circuit {', '.join(dynamic)}; remove them, or sample the circuit with "
                    f"SamplerV2 (or save_expectation_value under run(..., shots=N), which averages shots)"
                )
            observables = pub.observables
            labels: dict[tuple, str] = {}
            for index in np.ndindex(*observables.shape):
                terms = tuple(sorted(observables[index].items()))
                if terms not in labels:
                    labels[terms] = f"observable_{len(labels)}"
                    circuit.append(_save_expval(terms, circuit.num_qubits, labels[terms]), circuit.qubits, copy=False)
            binds, shape = _parameter_binds(circuit, pub.parameter_values)
            job = self._backend.run(
                circuit, shots=_trajectories(self._backend, run_options, pub.precision), parameter_binds=binds,
                **run_options,
            )
            submitted.append((pub, shape, labels, job, None if seed is None else int(seed) + i))
        job = PrimitiveJob(self._collect, submitted)
        job._submit()
        return job

    def _collect(self, submitted: list) -> PrimitiveResult:
        results = []
        for pub, shape, labels, job, seed in submitted:
            result = job.result()
            param_index = np.arange(int(np.prod(shape))).reshape(shape)
            obs_index = np.arange(int(np.prod(pub.observables.shape))).reshape(pub.observables.shape)
            flat, obs_index = np.broadcast_arrays(param_index, obs_index)
            evs = np.zeros(flat.shape, dtype=np.float64)
            observables_flat = [pub.observables[i] for i in np.ndindex(*pub.observables.shape)]
            for index in np.ndindex(*flat.shape):
                terms = tuple(sorted(observables_flat[int(obs_index[index])].items()))
                evs[index] = float(result.data(int(flat[index]))[labels[terms]])
            if pub.precision > 0:
                # without a seed, the job's (rank 0's, so the same on every rank)
                rng = np.random.default_rng(seed if seed is not None else result.results[0].seed_simulator)
                evs = rng.normal(evs, pub.precision, evs.shape)
            stds = np.full(evs.shape, pub.precision)
            results.append(
                PubResult(
                    DataBin(evs=evs, stds=stds, shape=evs.shape),
                    metadata={
                        "target_precision": pub.precision,
                        "circuit_metadata": pub.circuit.metadata,
                        "simulator_metadata": result.results[0].metadata if result.results else {},
                    },
                )
            )
        return PrimitiveResult(results, metadata={"version": 2})


__all__ = ["EstimatorV2", "Options", "SamplerV2"]
