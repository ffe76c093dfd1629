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
runs on ``backend`` as in ``qiskit_aer.primitives``: an ``AerMPISimulator``
as it is, Qiskit Aer's ``AerSimulator`` with its options, a device with its
target and noise (``AerMPISimulator.from_backend``).

Under ``mpiexec`` every rank builds the primitive and calls ``run()`` in the
same order: ``run()`` submits the backend jobs at once, in the caller's
thread, so the ranks meet in the same collective order; every rank gets
the same result.
"""

from __future__ import annotations

import functools
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import (BaseEstimatorV1, BaseEstimatorV2, BaseSamplerV1, BaseSamplerV2, PrimitiveJob,
                               PrimitiveResult)
from qiskit.primitives.containers import BitArray, DataBin, PubResult, SamplerPubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp

from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj.instructions import CONTROL_FLOW, SAVE_INSTRUCTIONS, SET_INSTRUCTIONS
from aer_mpi.qobj.options import IGNORED_RUN_KEYWORDS, OPTIONS, normalise_options


@dataclass
class SamplerOptions:
    """``backend_options``: AerMPISimulator(...) arguments; ``run_options``: run(...) options."""

    backend_options: dict = field(default_factory=dict)
    run_options: dict = field(default_factory=dict)


@dataclass
class Options(SamplerOptions):
    """The estimator's: the sampler's and ``default_precision`` (Aer's sampler refuses that one)."""

    default_precision: float = 0.0


def _make_backend(backend: Any, options: Options) -> Any:
    if backend is not None:
        return backend
    from aer_mpi.provider.backend import AerMPISimulator

    return AerMPISimulator(**options.backend_options)


def _simulator_of(backend: Any) -> Any:
    """What ``from_backend`` runs on, as in Aer: an AerMPISimulator as it is; Qiskit Aer's
    AerSimulator as an AerMPISimulator with the same options; any other BackendV2 (a device, a fake
    backend) as ``AerMPISimulator.from_backend(backend)``: its target and its noise."""
    from qiskit.providers import BackendV2

    from aer_mpi.provider.backend import AerMPISimulator

    if isinstance(backend, AerMPISimulator):
        return backend
    if type(backend).__name__ == "AerSimulator" and type(backend).__module__.startswith("qiskit_aer"):
        fields = {name: value for name, value in backend.options.__dict__.items() if value is not None}
        return AerMPISimulator(**fields)
    if isinstance(backend, BackendV2):
        return AerMPISimulator.from_backend(backend)
    raise InvalidInputError(
        f"from_backend() takes a BackendV2 (an AerMPISimulator, Qiskit Aer's AerSimulator or a device), "
        f"got {type(backend).__name__}"
    )


@functools.lru_cache(maxsize=256)
def _save_expval(terms: tuple, num_qubits: int, label: str, pershot: bool = False) -> tuple[Any, tuple]:
    """The save instruction of one observable and the qubits it goes on: only those where a term is
    not the identity, so that the qubits an ISA circuit leaves idle (most of a device's) are
    truncated away instead of simulated. Built once: a variational loop asks for the same ones."""
    from aer_mpi.library import SaveExpectationValue

    labels = [label_ for label_, _ in terms]
    support = tuple(q for q in range(num_qubits) if any(lab[num_qubits - 1 - q] != "I" for lab in labels)) or (0,)
    reduced = [("".join(lab[num_qubits - 1 - q] for q in reversed(support)), coeff) for lab, coeff in terms]
    operator = SparsePauliOp.from_list(reduced, num_qubits=len(support))
    return SaveExpectationValue(operator, label=label, pershot=pershot), support


_PAULI_LETTERS = frozenset("IXYZ")


def _pauli_terms(observable: dict) -> tuple:
    """An ``ObservablesArray`` entry as sorted (Pauli label, coefficient) terms: a term with
    projectors (``SparseObservable``'s 0 1 + - r l, which StatevectorEstimator evaluates) as the
    Pauli sum it stands for (``+`` is (I + X) / 2)."""
    if all(_PAULI_LETTERS.issuperset(label) for label in observable):
        return tuple(sorted(observable.items()))
    from qiskit.quantum_info import SparseObservable

    paulis = SparsePauliOp.from_sparse_observable(SparseObservable.from_list(list(observable.items()))).simplify()
    return tuple(sorted((label, float(np.real(coeff))) for label, coeff in zip(paulis.paulis.to_labels(), paulis.coeffs)))


def _without_final_measurements(circuit: QuantumCircuit) -> tuple[QuantumCircuit, frozenset]:
    """A copy of ``circuit`` without its final measurements, and the qubits those measured.

    A measurement is final when nothing after it acts on its qubit (barriers, delays and other
    measurements aside) and nothing after it reads its bit (a condition of control flow does).
    Qiskit's ``remove_final_measurements`` also takes a measurement whose bit a later ``if_test``
    reads, which would change what the circuit does."""
    if not any(inst.operation.name == "measure" for inst in circuit.data):
        return circuit.copy(), frozenset()
    later_qubits: set = set()
    later_bits: set = set()
    final: set = set()
    measured: set = set()
    for position in range(len(circuit.data) - 1, -1, -1):
        inst = circuit.data[position]
        name = inst.operation.name
        if name == "measure":
            if inst.qubits[0] not in later_qubits and inst.clbits[0] not in later_bits:
                final.add(position)
                measured.add(circuit.find_bit(inst.qubits[0]).index)
                continue
        if name in ("barrier", "delay"):
            continue
        later_qubits.update(inst.qubits)
        later_bits.update(inst.clbits)
        later_bits.update(_bits_read(inst.operation))
    if not final:
        return circuit.copy(), frozenset()
    out = circuit.copy_empty_like()
    for position, inst in enumerate(circuit.data):
        if position not in final:
            out.append(inst, copy=False)
    return out, frozenset(measured)


def _bits_read(op: Any) -> set:
    """The clbits an operation's classical expressions name, which its ``clbits`` need not list: a
    ``store``'s (``store(v, c[0])`` has no clbits), conditions and switch targets, and those of
    the instructions in a control-flow op's blocks."""
    from qiskit.circuit import Clbit, ClassicalRegister
    from qiskit.circuit.classical import expr

    bits: set = set()

    def name(value: Any) -> None:
        if isinstance(value, Clbit):
            bits.add(value)
        elif isinstance(value, ClassicalRegister):
            bits.update(value)
        elif isinstance(value, expr.Expr):
            for var in expr.iter_vars(value):
                name(var.var)
        elif isinstance(value, tuple):  # a condition (bit or register, value)
            for part in value:
                name(part)

    for attribute in ("lvalue", "rvalue", "condition", "target"):
        name(getattr(op, attribute, None))
    for block in getattr(op, "blocks", ()):
        for inst in block.data:
            bits.update(inst.clbits)
            bits.update(_bits_read(inst.operation))
    return bits


def _noise_model(backend: Any, run_options: dict) -> Any:
    """The noise model of runs with ``run_options`` on ``backend``, or None."""
    return run_options.get("noise_model", getattr(getattr(backend, "options", None), "noise_model", None))


def _noise_on(backend: Any, run_options: dict, instruction: str) -> bool:
    """Whether the noise model of runs with ``run_options`` on ``backend`` has errors on
    ``instruction`` ("reset", "measure"): then that instruction is no step to leave out."""
    noise = _noise_model(backend, run_options)
    if noise is None:
        return False
    names = getattr(noise, "noise_instructions", None)
    return True if names is None else instruction in names


def _estimated_circuit(circuit: QuantumCircuit, backend: Any, run_options: dict,
                       final_measurements: bool = True) -> tuple[QuantumCircuit, frozenset]:
    """The circuit an estimator runs for ``circuit``, and the qubits of the final measurements it
    left out: those (their effect is taken exactly by ``_after_measurement``) unless the noise model
    has errors on them, and resets of untouched qubits unless it has errors on resets. With
    ``final_measurements=False`` the final measurements go and are not accounted for (the V1
    estimator's default, as Aer's, which transpiles them away)."""
    if final_measurements and _noise_on(backend, run_options, "measure"):
        circuit, measured = circuit.copy(), frozenset()
    else:
        circuit, measured = _without_final_measurements(circuit)
        if not final_measurements:
            measured = frozenset()
    if not _noise_on(backend, run_options, "reset"):
        circuit = _without_initial_resets(circuit)
    return circuit, measured


def _after_measurement(terms: tuple, measured: frozenset, num_qubits: int) -> tuple:
    """An observable's terms on the state after final measurements of ``measured``: as Aer evaluates
    it there, the collapsed states' average, where a term with X or Y on a measured qubit averages to
    0 and one with only I or Z there keeps its value. So the terms left, evaluated before the
    measurements, give that average exactly (no sampling)."""
    if not measured:
        return terms
    kept = tuple((label, coeff) for label, coeff in terms
                 if all(label[num_qubits - 1 - q] in "IZ" for q in measured))
    return kept or (("I" * num_qubits, 0.0),)


#: Instructions that leave the state as it is, or set or save it without randomness.
_DETERMINISTIC = frozenset({"barrier", "delay", "id", "global_phase"}) | frozenset(SAVE_INSTRUCTIONS) | SET_INSTRUCTIONS


def _stochastic(circuit: QuantumCircuit) -> bool:
    """Whether ``circuit``'s final state is random (its expectation values are averages over
    trajectories): a measurement, a reset of a qubit already used, control flow, or a channel
    (``kraus``, ``superop``), anywhere, inside custom instructions' definitions too. Resets of
    qubits nothing has touched yet (an ``initialize``'s first step) do nothing."""
    from qiskit.circuit import ControlFlowOp, Gate

    touched: set = set()

    def walk(circ: QuantumCircuit, qubits: list) -> bool:
        for inst in circ.data:
            op = inst.operation
            where = [qubits[circ.find_bit(q).index] for q in inst.qubits]
            if op.name == "reset":
                if where[0] in touched:
                    return True
                continue
            if op.name == "measure" or op.name in CONTROL_FLOW or isinstance(op, ControlFlowOp):
                return True
            if not isinstance(op, Gate) and op.name not in _DETERMINISTIC:
                try:
                    definition = op.definition
                except Exception:  # a definition that cannot be built: the backend will say why
                    definition = None
                if definition is None or walk(definition, where):
                    return True
            touched.update(where)
        return False

    return walk(circuit, list(range(circuit.num_qubits)))


def _without_initial_resets(circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` without the resets that come before anything else on their qubit: on the initial
    |0> they do nothing (transpiled circuits often start with them)."""
    touched: set = set()
    keep = []
    for inst in circuit.data:
        if inst.operation.name == "reset" and inst.qubits[0] not in touched:
            continue
        if inst.operation.name != "barrier":
            touched.update(inst.qubits)
        keep.append(inst)
    if len(keep) == len(circuit.data):
        return circuit
    out = circuit.copy_empty_like()
    for inst in keep:
        out.append(inst, copy=False)
    return out


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


#: Trajectories (shots) an EstimatorV2 pub averages over when its state is random (a noise model,
#: mid-circuit measurements or resets), unless ``run_options["shots"]`` says: Aer's default shots.
NOISY_ESTIMATOR_TRAJECTORIES = 1024


def _noisy(backend: Any, run_options: dict) -> bool:
    """Whether runs with ``run_options`` on ``backend`` carry a noise model: then a saved value is
    one trajectory's, and exact values are averages over many shots."""
    return _noise_model(backend, run_options) is not None


def _trajectories(backend: Any, run_options: dict, stochastic: bool) -> int:
    """Shots of an EstimatorV2 pub: 1 (exact) when the state is not random; else, as Aer's
    estimator runs its backend's shots, ``run_options["shots"]`` or ``NOISY_ESTIMATOR_TRAJECTORIES``
    trajectories, whose mean is the value (exact under the density matrix, whose trajectories
    are all the same average)."""
    if not (stochastic or _noisy(backend, run_options)):
        return 1
    shots = run_options.get("shots")
    return int(shots) if shots else NOISY_ESTIMATOR_TRAJECTORIES


def _known_run_options(run_options: dict, where: str) -> dict:
    """``run_options`` without the keys that are no option of the backend, each named in a warning:
    Aer's primitives pass them to its backend, which ignores them."""
    unknown = sorted(set(run_options) - set(OPTIONS) - IGNORED_RUN_KEYWORDS)
    if unknown:
        warnings.warn(f"{where} run_options {', '.join(map(repr, unknown))} are no options of the simulator and are "
                      f"ignored (as Qiskit Aer ignores them); the options are listed in docs/migrating-from-aer.md",
                      UserWarning, stacklevel=3)
    return {name: value for name, value in run_options.items() if name not in unknown}


def _base_seed(explicit: Optional[int], run_options: dict, backend: Any) -> Optional[int]:
    """The primitive's seed, else run_options', else the backend's (as Aer's primitives take them);
    None leaves each run to draw its own (the backend draws one seed for all ranks)."""
    for seed in (explicit, run_options.get("seed_simulator"),
                 getattr(getattr(backend, "options", None), "seed_simulator", None)):
        if seed is not None:
            return _unsigned(seed)
    return None


def _unsigned(seed: Optional[int]) -> Optional[int]:
    """A seed as the backend runs it: a negative one as its 64-bit pattern (as Aer takes it)."""
    return None if seed is None else int(seed) % (1 << 64)


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
        self._options = SamplerOptions(**(options or {}))
        self._backend = _make_backend(backend, self._options)

    @classmethod
    def from_backend(cls, backend: Any, **options: Any) -> "SamplerV2":
        """A sampler on ``backend`` (see ``_simulator_of``), as ``qiskit_aer.primitives.SamplerV2.from_backend``."""
        return cls(backend=_simulator_of(backend), **options)

    @property
    def default_shots(self) -> int:
        return self._default_shots

    @property
    def seed(self) -> Optional[int]:
        return self._seed

    @property
    def options(self) -> SamplerOptions:
        return self._options

    @property
    def backend(self) -> Any:
        return self._backend

    def run(self, pubs: Iterable[Any], *, shots: Optional[int] = None) -> PrimitiveJob:
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        run_options = _known_run_options(self._options.run_options, "SamplerV2")
        for key in ("shots", "memory", "parameter_binds"):
            run_options.pop(key, None)
        seed = _base_seed(self._seed, run_options, self._backend)
        run_options.pop("seed_simulator", None)
        submitted = []
        experiments = 0  # before this pub: binding k of pub i is seeded seed + experiments + k, all distinct
        for i, pub in enumerate(coerced):
            binds, shape = _parameter_binds(pub.circuit, pub.parameter_values)
            count = int(np.prod(shape))
            if pub.circuit.num_clbits == 0:
                warnings.warn(f"pub {i}: the circuit has no classical bits, so there is nothing to sample; "
                              "add measurements (measure_all())", UserWarning, stacklevel=2)
            elif not pub.circuit.cregs:  # results are per register, as Aer's: bits in none give none
                warnings.warn(f"pub {i}: the circuit's classical bits are in no classical register, so the result "
                              "has no data; measure into a ClassicalRegister (measure_all() adds one)",
                              UserWarning, stacklevel=2)
            if pub.circuit.num_clbits == 0 or count == 0:
                submitted.append((pub, shape, None))
                continue
            seeded = {} if seed is None else {"seed_simulator": (seed + experiments) % (1 << 64)}
            job = self._backend.run(
                pub.circuit, shots=pub.shots, memory=True, parameter_binds=binds, **seeded, **run_options,
            )
            experiments += count
            submitted.append((pub, shape, job))
        job = PrimitiveJob(self._collect, submitted)
        job._submit()
        return job

    def _collect(self, submitted: list) -> PrimitiveResult:
        results = []
        for pub, shape, job in submitted:
            results.append(_sampler_pub_result(pub, shape, None if job is None else job.result()))
        return PrimitiveResult(results, metadata={"version": 2})


def _sampler_pub_result(pub: SamplerPub, shape: tuple, result: Any) -> SamplerPubResult:
    circuit = pub.circuit
    count = int(np.prod(shape))
    # every shot's classical bits, clbit i in column i; a circuit with classical bits but no
    # measurement has no memory: every shot reads 0, as in Aer
    bits = np.zeros((count, pub.shots, circuit.num_clbits), dtype=bool)
    width = (circuit.num_clbits + 7) // 8
    for k in range(count if result is not None else 0):
        memory = getattr(result.results[k].data, "memory", None)
        if memory:
            raw = b"".join(int(h, 16).to_bytes(width, "little") for h in memory)
            unpacked = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(len(memory), width), axis=1,
                                     bitorder="little")
            bits[k] = unpacked[:, :circuit.num_clbits]
    arrays = {}
    for creg in circuit.cregs:
        indices = [circuit.find_bit(b).index for b in creg]
        arrays[creg.name] = BitArray.from_bool_array(bits[:, :, indices].reshape(shape + (pub.shots, len(indices))),
                                                     order="little")
    return SamplerPubResult(
        DataBin(**arrays, shape=shape),
        metadata={"shots": pub.shots, "circuit_metadata": circuit.metadata,
                  "simulator_metadata": _simulator_metadata(result)},
    )


def _simulator_metadata(result: Any) -> dict:
    """What Aer's primitives report as ``simulator_metadata``: the backend result's metadata."""
    return dict(getattr(result, "metadata", None) or {}) if result is not None else {}


def _raise(error: BaseException) -> None:
    raise error


class EstimatorV2(BaseEstimatorV2):
    """Estimator on AerMPISimulator, as Qiskit Aer's EstimatorV2.

    Expectation values are exact (the sharded state is reduced across ranks,
    never gathered or sampled); with ``precision > 0`` each gets Gaussian
    noise of that standard deviation, drawn from ``seed`` (or
    ``run_options["seed_simulator"]``; without either, fresh noise on every
    call), and ``stds`` reports the precision.

    As Aer's, a circuit's measurements count: observables are evaluated on
    the state after them. After final measurements that is exact (terms
    with X or Y on a measured qubit average to 0, the others keep their
    value). When the state is random (a noise model, or measurements,
    resets or control flow before the end, custom instructions' included)
    the value is the mean over ``run_options["shots"]`` (else 1024)
    trajectories, and ``stds`` its standard error, or the precision if
    larger (the density matrix, the automatic method's choice for small
    noisy circuits, gives the exact average).

    Args:
        options: ``{"default_precision": 0.0, "backend_options": {...}, "run_options": {...}}``.
        seed: seed of the noise; ``None`` uses ``run_options["seed_simulator"]``.
        backend: an AerMPISimulator to run on.
    """

    def __init__(self, *, options: Optional[dict] = None, seed: Optional[int] = None, backend: Any = None):
        self._options = Options(**(options or {}))
        self._seed = seed
        self._backend = _make_backend(backend, self._options)
        self._calls = 0  # run() calls: without a seed, each gets fresh noise (and every rank the same)

    @classmethod
    def from_backend(cls, backend: Any, **options: Any) -> "EstimatorV2":
        """An estimator on ``backend`` (see ``_simulator_of``), as ``qiskit_aer.primitives.EstimatorV2.from_backend``."""
        return cls(backend=_simulator_of(backend), **options)

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
        run_options = _known_run_options(self._options.run_options, "EstimatorV2")
        shots = run_options.pop("shots", None)
        run_options.pop("parameter_binds", None)
        if shots is not None:
            # checked here: a circuit whose state is not random never passes them to the backend
            try:
                shots = normalise_options({"shots": shots})["shots"]
            except InvalidInputError as error:
                job = PrimitiveJob(_raise, error)  # as Aer's: the job fails, result() raises
                job._submit()
                return job
        seed = _unsigned(self._seed if self._seed is not None else run_options.get("seed_simulator"))
        self._calls += 1
        submitted = []
        for i, pub in enumerate(coerced):
            if pub.precision < 0:
                raise InvalidInputError(f"pub {i}: precision {pub.precision} is negative; use 0 for exact values")
            circuit, measured = _estimated_circuit(pub.circuit, self._backend, run_options)
            # the state is random when the circuit measures or resets before its end: its values are
            # averages over trajectories, as Aer's (which averages its shots)
            trajectories = _trajectories(self._backend, {**run_options, "shots": shots}, _stochastic(circuit))
            observables = pub.observables
            labels: dict[tuple, str] = {}
            saved_as = []  # the save's label of each observable, in the observables' C order
            for index in np.ndindex(*observables.shape):
                terms = _pauli_terms(observables[index])
                if terms not in labels:
                    labels[terms] = f"observable_{len(labels)}"
                    # several trajectories: one value each, whose spread gives the standard error
                    save, support = _save_expval(_after_measurement(terms, measured, circuit.num_qubits),
                                                 circuit.num_qubits, labels[terms], trajectories > 1)
                    circuit.append(save, [circuit.qubits[q] for q in support], copy=False)
                saved_as.append(labels[terms])
            binds, shape = _parameter_binds(circuit, pub.parameter_values)
            job = None if int(np.prod(shape)) == 0 else self._backend.run(
                circuit, shots=trajectories, parameter_binds=binds,
                **run_options,
            )
            submitted.append((pub, shape, saved_as, job, None if seed is None else int(seed) + i, (self._calls, i)))
        job = PrimitiveJob(self._collect, submitted)
        job._submit()
        return job

    def _collect(self, submitted: list) -> PrimitiveResult:
        results = []
        for pub, shape, saved_as, job, seed, call in submitted:
            result = None if job is None else job.result()
            param_index = np.arange(int(np.prod(shape))).reshape(shape)
            obs_index = np.arange(int(np.prod(pub.observables.shape))).reshape(pub.observables.shape)
            flat, obs_index = np.broadcast_arrays(param_index, obs_index)
            evs = np.zeros(flat.shape, dtype=np.float64)
            stds = np.full(evs.shape, pub.precision)
            errors = np.zeros(evs.shape)  # the trajectories' standard errors
            for index in np.ndindex(*flat.shape):
                value = result.data(int(flat[index]))[saved_as[int(obs_index[index])]]
                if np.ndim(value):  # one per trajectory: their mean, and its standard error
                    values = np.asarray(value, dtype=np.float64)
                    evs[index] = float(np.mean(values))
                    errors[index] = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
                else:
                    evs[index] = float(value)
            stds = np.asarray(np.maximum(errors, pub.precision))  # (a 0-d array, not a scalar, as Aer's)
            if pub.precision > 0 and evs.size:
                # Aer's: Gaussian noise of the precision on the value, seeded by the estimator's seed
                # (or run_options' seed_simulator); without either, fresh on every call, the same on every
                # rank (from rank 0's seed of the job). A trajectories' mean already has its own error:
                # the noise makes up the rest.
                rng = np.random.default_rng(
                    seed if seed is not None else [result.results[0].seed_simulator % (1 << 64), *call]
                )
                evs = rng.normal(evs, np.sqrt(np.maximum(pub.precision**2 - errors**2, 0.0)), evs.shape)
            results.append(
                PubResult(
                    DataBin(evs=evs, stds=stds, shape=evs.shape),
                    metadata={
                        "target_precision": pub.precision,
                        "circuit_metadata": pub.circuit.metadata,
                        "simulator_metadata": _simulator_metadata(result),
                    },
                )
            )
        return PrimitiveResult(results, metadata={"version": 2})


# -- V1 primitives ----------------------------------------------------------------
# Qiskit Aer still exports its V1 ``Sampler`` and ``Estimator`` (deprecated since Aer 0.15) and
# older notebooks and libraries call them; these take the same arguments and return the same
# results, on AerMPISimulator. Circuits run as given (the backend takes any Qiskit circuit), so
# ``transpile_options`` change nothing; ``skip_transpilation`` says, as in Aer's estimator, whether
# the final measurements stay (without it Aer's transpilation removes them).


def _v1_backend(backend_options: Optional[dict]) -> Any:
    from aer_mpi.provider.backend import AerMPISimulator

    return AerMPISimulator(**(backend_options or {}))


def _v1_seed(run_options: dict) -> Optional[int]:
    """Aer's V1 precedence: ``seed_simulator`` of the call, then ``seed`` (which also seeds the
    estimator's normal approximation)."""
    seed = run_options.pop("seed", None)
    if seed is not None:
        run_options.setdefault("seed_simulator", seed)
    return seed


def _bound(circuit: QuantumCircuit, values: tuple) -> QuantumCircuit:
    if len(values) != circuit.num_parameters:
        raise ValueError(f"The number of values ({len(values)}) does not match "
                         f"the number of parameters ({circuit.num_parameters}).")
    return circuit.assign_parameters(values) if values else circuit


def _final_measurements(circuit: QuantumCircuit) -> dict[int, int]:
    """{qubit: clbit} of the measurements nothing follows (as Aer's ``final_measurement_mapping``),
    in clbit order."""
    qubits, clbits, mapping = set(range(circuit.num_qubits)), set(range(circuit.num_clbits)), {}
    for inst in reversed(circuit.data):
        if inst.operation.name == "measure":
            q, c = circuit.find_bit(inst.qubits[0]).index, circuit.find_bit(inst.clbits[0]).index
            if q in qubits and c in clbits:
                mapping[q] = c
                qubits.discard(q)
                clbits.discard(c)
        elif inst.operation.name not in ("barrier", "delay"):
            qubits.difference_update(circuit.find_bit(b).index for b in inst.qubits)
        if not qubits or not clbits:
            break
    return dict(sorted(mapping.items(), key=lambda item: item[1]))


class Sampler(BaseSamplerV1):
    """Qiskit Aer's V1 ``Sampler`` on AerMPISimulator: quasi-distributions of the measured bits.

    Run options: ``shots`` (``None``: exact probabilities of the final measurements), ``seed``,
    and any ``run()`` option of AerMPISimulator. Deprecated in Aer as in Qiskit: use SamplerV2.
    """

    def __init__(self, *, backend_options: Optional[dict] = None, transpile_options: Optional[dict] = None,
                 run_options: Optional[dict] = None, skip_transpilation: bool = False):
        warnings.warn("Sampler (V1) is deprecated, as Qiskit Aer's is since 0.15: use SamplerV2",
                      DeprecationWarning, stacklevel=2)
        super().__init__(options=run_options)
        self._backend = _v1_backend(backend_options)

    def _run(self, circuits: tuple, parameter_values: tuple, **run_options: Any) -> PrimitiveJob:
        from qiskit.result import QuasiDistribution

        _v1_seed(run_options)
        exact = "shots" in run_options and run_options["shots"] is None
        experiments = []
        widths = []  # clbits of each circuit: the exact distributions' keys are that wide, as Aer's
        stochastic = False
        for circuit, values in zip(circuits, parameter_values):
            circuit = _bound(circuit, tuple(values))
            widths.append(circuit.num_clbits)
            if exact:
                mapping = _final_measurements(circuit)
                if set(mapping.values()) != set(range(circuit.num_clbits)):
                    raise InvalidInputError("some classical bits are not set by final measurements: with "
                                            "shots=None the sampler needs every bit measured at the end")
                circuit, _ = _without_final_measurements(circuit)
                stochastic = stochastic or _stochastic(circuit)
                circuit.save_probabilities_dict(list(mapping), label="probabilities")
            experiments.append(circuit)
        # exact: one shot is the state's probabilities; under noise, or with measurements or resets
        # before the end, their average over trajectories
        random_state = stochastic or _noisy(self._backend, run_options)
        trajectories = NOISY_ESTIMATOR_TRAJECTORIES if random_state else 1
        options = {**run_options, "shots": trajectories} if exact else run_options
        job = self._backend.run(experiments, **options)  # now, in the caller's thread: the ranks' order

        def collect() -> Any:
            from qiskit.primitives import SamplerResult

            result = job.result()
            quasis, metadata = [], []
            for i in range(len(experiments)):
                if exact:
                    probabilities = result.data(i)["probabilities"]
                    quasis.append(QuasiDistribution({
                        format(int(k, 16) if isinstance(k, str) else int(k), f"0{widths[i]}b"): float(v)
                        for k, v in probabilities.items()}))
                    metadata.append({"shots": None, "simulator_metadata": result.results[i].metadata})
                else:
                    counts = result.get_counts(i)
                    shots = sum(counts.values())
                    quasis.append(QuasiDistribution({k.replace(" ", ""): v / shots for k, v in counts.items()},
                                                    shots=shots))
                    metadata.append({"shots": shots, "simulator_metadata": result.results[i].metadata})
            return SamplerResult(quasis, metadata)

        primitive_job = PrimitiveJob(collect)
        primitive_job._submit()
        return primitive_job


class Estimator(BaseEstimatorV1):
    """Qiskit Aer's V1 ``Estimator`` on AerMPISimulator: expectation values of observables.

    ``shots=None`` (with ``approximation=True``) gives exact values; an integer ``shots`` gives
    the exact value plus normal noise of the sampled variance (``sum c_k**2 (1 - <P_k>**2) / shots``,
    Aer's normal approximation, seeded by ``seed``), with ``variance`` and ``shots`` in the
    metadata. ``approximation=False`` (deprecated in Aer) is taken as Aer's default shot count
    under the same approximation. Deprecated in Aer as in Qiskit: use EstimatorV2.
    """

    def __init__(self, *, backend_options: Optional[dict] = None, transpile_options: Optional[dict] = None,
                 run_options: Optional[dict] = None, approximation: bool = False, skip_transpilation: bool = False,
                 abelian_grouping: bool = True):
        warnings.warn("Estimator (V1) is deprecated, as Qiskit Aer's is since 0.15: use EstimatorV2",
                      DeprecationWarning, stacklevel=2)
        super().__init__(options=run_options)
        self._backend = _v1_backend(backend_options)
        self.approximation = approximation
        self._skip_transpilation = skip_transpilation

    def _run(self, circuits: tuple, observables: tuple, parameter_values: tuple, **run_options: Any) -> PrimitiveJob:
        seed = _v1_seed(run_options)
        shots = run_options.pop("shots", None)
        if shots is None and not self.approximation:
            shots = self._backend.options.shots  # as Aer: approximation=False always samples
        experiments, operators = [], []
        stochastic = False
        for circuit, observable, values in zip(circuits, observables, parameter_values):
            # as Aer's: by default its transpilation removes the final measurements (the values are
            # the state's before them); skip_transpilation=True keeps them (the values after them)
            circuit, measured = _estimated_circuit(_bound(circuit, tuple(values)), self._backend,
                                                   run_options,
                                                   final_measurements=self._skip_transpilation)
            stochastic = stochastic or _stochastic(circuit)
            operator = SparsePauliOp(observable)
            if operator.num_qubits != circuit.num_qubits:
                raise ValueError(f"the observable has {operator.num_qubits} qubits, the circuit {circuit.num_qubits}")
            if measured:  # the value after the final measurements, as Aer's (see _after_measurement)
                terms = tuple(zip(operator.paulis.to_labels(), operator.coeffs))
                operator = SparsePauliOp.from_list(_after_measurement(terms, measured, circuit.num_qubits))
            if shots is None:
                circuit.save_expectation_value(operator, list(range(circuit.num_qubits)), label="value")
            else:  # each term alone: its variance is 1 - <P>**2
                for k, pauli in enumerate(operator.paulis):
                    circuit.save_expectation_value(pauli, list(range(circuit.num_qubits)), label=str(k))
            experiments.append(circuit)
            operators.append(operator)
        # under noise, or with measurements or resets before the end, the saved values are averages
        # over trajectories (one per shot): as many as the shots asked for, whose normal noise is then
        # added as without noise
        random_state = stochastic or _noisy(self._backend, run_options)
        trajectories = (shots or NOISY_ESTIMATOR_TRAJECTORIES) if random_state else 1
        job = self._backend.run(experiments, shots=trajectories, **run_options)

        def collect() -> Any:
            from qiskit.primitives import EstimatorResult

            result = job.result()
            values, metadata = [], []
            rng = np.random.default_rng(_unsigned(seed))
            for i, operator in enumerate(operators):
                data = result.data(i)
                if shots is None:
                    values.append(float(np.real(data["value"])))
                    metadata.append({"simulator_metadata": result.results[i].metadata})
                    continue
                coeffs = np.real_if_close(operator.coeffs)
                terms = np.array([float(np.real(data[str(k)])) for k in range(len(coeffs))])
                mean = float(np.real(np.dot(coeffs, terms)))
                variance = float(np.real(np.dot(np.abs(coeffs) ** 2, 1 - terms**2)))
                values.append(rng.normal(mean, np.sqrt(max(variance, 0.0) / shots)))
                # Aer's sampling estimator (approximation=False) lists one metadata per measured basis
                simulator = result.results[i].metadata
                metadata.append({"variance": variance, "shots": shots,
                                 "simulator_metadata": simulator if self.approximation else [simulator]})
            return EstimatorResult(np.real_if_close(np.array(values)), metadata)

        primitive_job = PrimitiveJob(collect)
        primitive_job._submit()
        return primitive_job


__all__ = ["Estimator", "EstimatorV2", "Options", "Sampler", "SamplerOptions", "SamplerV2"]

# Aer's module paths of the same classes (`from qiskit_aer.primitives.estimator_v2 import EstimatorV2`):
# one module here, registered under each name
for _module_name in ("sampler_v2", "estimator_v2", "sampler", "estimator"):
    sys.modules.setdefault(f"{__name__}.{_module_name}", sys.modules[__name__])
