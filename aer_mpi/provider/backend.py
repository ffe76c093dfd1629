"""AerMPISimulator: the Qiskit BackendV2.

It holds no simulation state: ``run()`` checks the options, assembles a
Qobj and hands it to an AerJob whose function runs it on the MPI ranks.
Under ``mpiexec`` every rank builds the backend and calls ``run()`` in the
same order (SPMD); rank 0's job result is complete. In a plain Python
process, ``AerMPISimulator(processes=P)`` starts P MPI worker processes of
its own (``aer_mpi.service.pool``) and runs every job there.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import random
import time
import types
import uuid
import warnings
import weakref
from typing import Any, Optional

import numpy as np
from qiskit.circuit import Instruction, QuantumCircuit
from qiskit.circuit.library import UnitaryGate, get_standard_gate_name_mapping
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target

import aer_mpi.library  # noqa: F401  (QuantumCircuit.save_statevector() & co., as importing qiskit_aer gives)
from aer_mpi import environment
from aer_mpi._version import __version__
from aer_mpi.qobj.assemble import assemble_circuits
from aer_mpi.engine import RunControl
from aer_mpi.engine.checkpoint import stored_seed
from aer_mpi.errors import AerMPIError, InsufficientMemoryError, InvalidInputError
from aer_mpi.service.execution import BACKEND_NAME, execute_qobj
from aer_mpi.provider.job import AerJob
from aer_mpi.provider.progress import ProgressListener, make_listener
from aer_mpi.qobj.instructions import CONTROL_FLOW, SAVE_INSTRUCTIONS, SET_INSTRUCTIONS, SET_MATRIX_PRODUCT_STATE
from aer_mpi.qobj.noise import add_noise, noise_model_kind, noise_passes, noise_table
from aer_mpi.qobj.options import (
    DEVICES, EXACT_NOISE_METHODS, IGNORED_OPTIONS, IGNORED_RUN_KEYWORDS, METHODS, OPTIONS, defaults,
    normalise_options, qobj_config,
)

#: Seeds and job ids need no cryptographic strength: one generator seeded by the OS once per process
#: (a system call per run costs more than a small circuit's simulation).
_RANDOM = random.Random()
if hasattr(os, "register_at_fork"):  # a forked child must not repeat its parent's seeds
    os.register_at_fork(after_in_child=_RANDOM.seed)

#: What ``AerMPISimulator()`` says when mpi4py finds no MPI library.
NO_MPI_MESSAGE = (
    "aer_mpi needs an MPI library and mpi4py could not load one ({error}). On a machine without MPI, "
    "install MPI from PyPI: pip install mpich (what aer_mpi's extra installs: pip install \".[mpich]\" in its "
    "checkout); "
    "on a cluster, load the site's MPI (e.g. module load openmpi) and build mpi4py against it: "
    "pip install --no-binary=mpi4py mpi4py (docs/install.md)"
)


def load_mpi(stop_signals: tuple = ()) -> Any:
    """``mpi4py.MPI``, or one ``AerMPIError`` saying how to get an MPI library (``stop_signals``: as
    ``start_mpi``'s)."""
    from aer_mpi.comm.watchdog import start_mpi

    try:
        MPI = start_mpi(stop_signals)  # bounded: a rank frozen at the start ends the job (comm/watchdog.py)
    except (ImportError, RuntimeError) as exc:  # mpi4py 4: RuntimeError("cannot load MPI library")
        raise AerMPIError(NO_MPI_MESSAGE.format(error=str(exc).strip() or type(exc).__name__)) from None
    return MPI


def _local_ranks(ranks: int) -> int:
    """Ranks on this node, from the launcher's environment (no collective); else all of them."""
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "PMI_LOCAL_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return min(ranks, int(value))
    return ranks


#: ``target.num_qubits`` is at least this: wider than any device, so ``transpile`` never refuses a
#: device-transpiled circuit, whose idle qubits the engine leaves out (``enable_truncation``). Whether
#: the active qubits fit is checked by the engine before it allocates anything (one clear error).
TARGET_MIN_QUBITS = 1024


def largest_circuit_qubits(ranks: int, max_memory_mb: Optional[float] = None) -> int:
    """Qubits of the largest circuit ``ranks`` ranks could hold (single precision), as ``aer-mpi info`` counts.

    Per rank: ``max_memory_mb`` or this node's available memory shared by its ranks.
    ``AerMPISimulator.max_state_qubits``; ``target.num_qubits`` is at least
    ``TARGET_MIN_QUBITS`` besides (a wider circuit may run: truncation).
    """
    import psutil

    from aer_mpi.engine.config import RunConfig
    from aer_mpi.engine.resources import largest_local_qubits

    ranks = max(1, int(ranks))
    if max_memory_mb:
        per_rank = int(float(max_memory_mb) * (1 << 20))
    else:
        per_rank = int(psutil.virtual_memory().available // _local_ranks(ranks))
    working = 1 << (ranks.bit_length() - 1)
    return max(1, largest_local_qubits(per_rank, RunConfig(precision="single")) + working.bit_length() - 1)


@functools.lru_cache(maxsize=8)
def build_target(num_qubits: Optional[int] = None) -> Target:
    """Every instruction the engine runs, on any qubits (no coupling map); built once per width."""
    from qiskit.circuit import BreakLoopOp, ContinueLoopOp, Store, get_control_flow_name_mapping
    from qiskit.circuit.library import Initialize

    target = Target(description="aer_mpi distributed statevector", num_qubits=num_qubits)
    for name, op in get_standard_gate_name_mapping().items():
        target.add_instruction(op, properties=None, name=name)
    target.add_instruction(UnitaryGate, name="unitary")
    # gates of any width run whole (by their matrix, or their definition when wider than the
    # kernels take), as Aer lists them: transpile keeps them instead of writing out their
    # decompositions (an 8-control mcx stays one gate, not 200)
    for name, cls in _variadic_gates().items():
        target.add_instruction(cls, name=name)
    # noise written into the circuit (qobj/noise.py): transpile leaves it where it is
    for name, cls in _channels().items():
        target.add_instruction(cls, name=name)
    control_flow = dict(get_control_flow_name_mapping(), break_loop=BreakLoopOp, continue_loop=ContinueLoopOp)
    for name in sorted(CONTROL_FLOW):
        target.add_instruction(control_flow[name], name=name)
    # run as they are: initialize (by its definition, its resets on fresh qubits left out), set_statevector
    target.add_instruction(Initialize, name="initialize")
    target.add_instruction(Store, name="store")  # classical variables (Aer lists it too)
    # of any width, as Aer lists them (a class, not a 0-qubit instance: transpile(..., coupling_map=)
    # builds a target from the names and refuses fixed-width operations on 0 qubits)
    for name in sorted(set(SAVE_INSTRUCTIONS) | SET_INSTRUCTIONS | {SET_MATRIX_PRODUCT_STATE}):
        target.add_instruction(Instruction, name=name)
    return target


def _variadic_gates() -> dict:
    """Qiskit's gates of any width that the engine runs: target name -> class."""
    from qiskit.circuit.library import DiagonalGate, MCPhaseGate, MCU1Gate, MCXGate, PauliGate, UCGate

    return {"mcx": MCXGate, "mcphase": MCPhaseGate, "mcu1": MCU1Gate, "pauli": PauliGate,
            "diagonal": DiagonalGate, "multiplexer": UCGate}


def _channels() -> dict:
    """Quantum channels appended to a circuit (``qc.append(Kraus(...), qubits)``): name -> class."""
    from qiskit.quantum_info import Kraus, SuperOp
    from qiskit.quantum_info.operators.channel.quantum_channel import QuantumChannel

    return {"kraus": Kraus, "superop": SuperOp, "quantum_channel": QuantumChannel}


#: Target instructions that are not gates: a basis_gates option or a noise model never removes them.
_NOT_GATES = frozenset({"measure", "reset", "delay", "initialize"})

#: Instructions a coupling map leaves on any qubits: they are no two-qubit interaction (saves and
#: set instructions cover the whole circuit; control flow is routed through its blocks).
_NOT_GATES_ANY_WIDTH = frozenset(set(SAVE_INSTRUCTIONS) | SET_INSTRUCTIONS | CONTROL_FLOW
                                 | {"global_phase", SET_MATRIX_PRODUCT_STATE})

#: Instructions that are no gates, listed as ``configuration().custom_instructions`` (as Aer lists them).
_CUSTOM_INSTRUCTIONS = frozenset(set(SAVE_INSTRUCTIONS) | SET_INSTRUCTIONS | CONTROL_FLOW | set(_channels())
                                 | {"initialize", "reset", "delay", "store", SET_MATRIX_PRODUCT_STATE})

#: Fields of Aer's backend configuration that its constructor and ``set_options`` take as well
#: (Aer's ``set_option`` puts them on the configuration, not among the run options). ``basis_gates``
#: and ``memory``, which are also run options, stay run options here.
CONFIGURATION_FIELDS = frozenset({
    "backend_name", "backend_version", "n_qubits", "gates", "local", "simulator", "conditional",
    "max_shots", "max_experiments", "coupling_map", "dynamic_reprate_enabled", "description", "url",
    "custom_instructions", "open_pulse",
})


@functools.lru_cache(maxsize=16)
def restricted_target(num_qubits: int, basis: Optional[frozenset], edges: Optional[tuple] = None) -> Target:
    """``build_target(num_qubits)`` with only the gates in ``basis`` (None: all of them; every non-gate
    instruction stays: measure, reset, control flow, saves, ...), and with ``edges`` (a coupling map,
    pairs) two-qubit gates on those pairs only and no wider gate, so that ``transpile``
    routes onto the map (Aer's ``AerSimulator(coupling_map=...)``)."""
    full = build_target(TARGET_MIN_QUBITS)
    gates = set(get_standard_gate_name_mapping()) | {"unitary"} | set(_variadic_gates())
    description = full.description
    if basis is not None:
        description += f" (basis {', '.join(sorted(basis))})"
    if edges is not None:
        description += f" (coupling map of {len(edges)} pairs)"
    target = Target(description=description, num_qubits=num_qubits)
    for name in full.operation_names:
        if basis is not None and name not in basis and name in gates and name not in _NOT_GATES:
            continue
        op = full.operation_from_name(name)
        width = getattr(op, "num_qubits", 0) if not isinstance(op, type) else None
        if edges is None or name in _NOT_GATES_ANY_WIDTH or width == 1:
            target.add_instruction(op, properties=None, name=name)
        elif width == 2:
            # both directions: a simulator's gates have none, and transpile could not turn every
            # two-qubit gate (csx, cu, ...) around
            both = dict.fromkeys(edges) | dict.fromkeys((b, a) for a, b in edges)
            target.add_instruction(op, properties=both, name=name)
        # wider gates and gates of any width (mcx, unitary, initialize, ...) are left to transpile's
        # decompositions: routing takes two-qubit gates only
    return target


def _density_matrix_notes(result: Any) -> list[str]:
    """``method="density_matrix"``: the circuits that ran as statevector trajectories instead (their
    ``metadata["method"]``), and what that changes; none when every circuit ran as its density matrix."""
    def name(index: int, experiment: Any) -> str:
        header = getattr(experiment, "header", None)
        found = header.get("name") if isinstance(header, dict) else getattr(header, "name", None)
        return found or f"#{index}"

    names = [name(i, r) for i, r in enumerate(getattr(result, "results", []) or [])
             if getattr(r, "success", False) and (getattr(r, "metadata", None) or {}).get("method") == "statevector"]
    if not names:
        return []
    return [f"method='density_matrix' ran circuit(s) {', '.join(map(repr, names))} as the distributed statevector, "
            f"one trajectory per shot (a circuit runs as its density matrix when its measurements are all final, "
            f"without control flow, classical stores or readout errors before the end): counts follow the same "
            f"distribution; saved density matrices and expectation values are averages over the shots, not exact"]


def _parameterized_copies(circuits: list, parameterizations: Any) -> list:
    """Aer's legacy ``parameterizations``: per circuit, ``[[instruction, parameter], values]`` entries,
    every ``values`` of one circuit as long; the circuit runs once per value, the values put in place
    (an empty list: the circuit once, as it is)."""
    if not isinstance(parameterizations, (list, tuple)) or len(parameterizations) != len(circuits):
        raise InvalidInputError(f"parameterizations: expecting one list per circuit ({len(circuits)}), "
                                f"got {parameterizations!r:.200}")
    out = []
    for index, (circuit, entries) in enumerate(zip(circuits, parameterizations)):
        try:
            places = [(int(place[0]), int(place[1]), list(values)) for place, values in entries]
        except (TypeError, ValueError, IndexError):
            raise InvalidInputError(f"parameterizations[{index}]: expecting [[instruction, parameter], "
                                    f"[values...]] entries, got {entries!r:.200}") from None
        counts = {len(values) for _, _, values in places}
        if len(counts) > 1:
            raise InvalidInputError(f"parameterizations[{index}]: every entry needs as many values, got {sorted(counts)}")
        if not places:
            out.append(circuit)
            continue
        for j in range(counts.pop()):
            bound = circuit.copy()
            for instruction, parameter, values in places:
                if not (0 <= instruction < len(bound.data)
                        and 0 <= parameter < len(bound.data[instruction].operation.params)):
                    raise InvalidInputError(f"parameterizations[{index}]: circuit {circuit.name!r} has no parameter "
                                            f"{parameter} on instruction {instruction}")
                operation = bound.data[instruction].operation.to_mutable()
                try:
                    operation.params[parameter] = float(values[j])
                except (TypeError, ValueError):
                    raise InvalidInputError(f"parameterizations[{index}]: {values[j]!r} is not a number") from None
                bound.data[instruction] = bound.data[instruction].replace(operation=operation)
            out.append(bound)
    return out


def noise_basis_gates(noise_model: Any) -> Optional[list]:
    """A NoiseModel's ``basis_gates`` (its dict form has none: None)."""
    basis = getattr(noise_model, "basis_gates", None)
    return list(basis) if basis else None


def _device_target(backend: Any) -> Target:
    """``backend``'s target (or ``backend``, a Target) as a copy, with the save instructions added
    (from_backend, target=)."""
    import copy

    target = copy.deepcopy(backend if isinstance(backend, Target) else backend.target)
    for name in sorted(SAVE_INSTRUCTIONS):
        if name not in target.operation_names:
            target.add_instruction(Instruction(name, 0, 0, []), properties=None, name=name)
    return target


def _coupling_edges(coupling_map: Any) -> tuple:
    """A coupling map (pairs, or a ``CouplingMap``) as a tuple of directed pairs of qubit indices."""
    pairs = coupling_map.get_edges() if hasattr(coupling_map, "get_edges") else coupling_map
    try:
        edges = tuple((int(a), int(b)) for a, b in pairs)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"coupling_map must be a list of qubit pairs such as [[0, 1], [1, 2]], not {coupling_map!r}"
        ) from exc
    if any(a < 0 or b < 0 or a == b for a, b in edges):
        raise InvalidInputError(f"coupling_map pairs must be two different non-negative qubits: {coupling_map!r}")
    return edges


def _device_properties(backend: Any) -> Any:
    """Aer's ``properties()`` of a simulator built from ``backend``: the target's error rates and
    durations as a BackendV1 properties object, by Aer's own converter when qiskit-aer is installed
    (it is for device noise); else None, as a plain simulator answers."""
    try:
        from qiskit_aer.backends.backendproperties import target_to_backend_properties
    except ImportError:
        return None
    try:
        return target_to_backend_properties(backend.target)
    except Exception:  # a target the converter cannot read: no properties, as a plain simulator
        return None


class BackendConfiguration(types.SimpleNamespace):
    """Aer's ``configuration()`` fields as attributes, and ``to_dict()`` as Aer's configuration has."""

    def to_dict(self) -> dict:
        return dict(vars(self))


def _release_workers(workers: Any, users: list) -> None:
    """One backend sharing ``workers`` is gone: the last one stops them."""
    users[0] -= 1
    if users[0] <= 0:
        workers.close()


class AerMPISimulator(BackendV2):
    """Distributed statevector simulator over MPI ranks.

    Args:
        comm: the MPI communicator to run on (default ``MPI.COMM_WORLD``).
        processes: start this many MPI worker processes and run every job on
            them (for a notebook or a plain ``python``; not under mpiexec).
            The workers are reused across jobs and stopped by ``close()``,
            at the end of a ``with`` block, or at exit.
        heartbeat_timeout: with ``processes=``, seconds a worker may stay silent
            during a job before the job ends in ERROR (``WorkerLostError``) and
            the workers are killed (default ``$AER_MPI_HEARTBEAT_TIMEOUT`` or 30).
        options: default run options (``shots``, ``seed_simulator``, ``memory``,
            ``precision``, ...), overridable per ``run()``: every option of
            Qiskit Aer's ``AerSimulator`` is accepted (``aer_mpi.qobj.options``
            says what each does here; docs/migrating-from-aer.md).
    """

    def __init__(
        self, comm: Any = None, processes: Optional[int] = None, *, heartbeat_timeout: Optional[float] = None,
        configuration: Any = None, properties: Any = None, provider: Any = None, target: Optional[Target] = None,
        **options: Any
    ):
        environment.check_environment()  # a mistyped AER_MPI_* variable fails here, on every rank
        super().__init__(
            provider=provider,
            name=BACKEND_NAME,
            description="Statevector simulator sharded across MPI ranks",
            backend_version=__version__,
        )
        self._properties = properties
        #: Aer options without meaning here that were set on this backend (named in results).
        self._ignored_set: set[str] = set()
        #: Aer's configuration fields set on this backend (``CONFIGURATION_FIELDS``): shown by
        #: ``configuration()``; ``n_qubits`` and ``coupling_map`` shape the target, as in Aer.
        self._configuration_fields: dict[str, Any] = {}
        if options:
            self.set_options(**options)
        self._workers = None
        if processes is not None:
            if comm is not None:
                raise InvalidInputError(
                    "give comm= (SPMD, every rank runs the script) or processes= (workers of "
                    "this process), not both"
                )
            from aer_mpi.service.pool import WorkerPool

            self._workers = WorkerPool(processes, heartbeat_timeout=heartbeat_timeout)
            # a backend dropped without close() stops its workers when collected (or at exit), once
            # its deep copies are gone too (they share the workers: __deepcopy__)
            self._workers_users = [1]
            weakref.finalize(self, _release_workers, self._workers, self._workers_users)
        elif comm is None:
            comm = load_mpi().COMM_WORLD
            abort_on_uncaught_exception(comm)
        self._comm = comm
        self._max_state_qubits = largest_circuit_qubits(
            processes if processes is not None else comm.Get_size(), self.options.max_memory_mb
        )
        self._target = build_target(max(self._max_state_qubits, TARGET_MIN_QUBITS))
        self._from_device = False
        if target is not None:  # Aer's target= argument: transpile for it, as from_backend's
            self._target = _device_target(target)
            self._from_device = True
        if configuration is not None:  # Aer's configuration= argument: its fields that mean something here
            fields = configuration.to_dict() if hasattr(configuration, "to_dict") else dict(vars(configuration))
            for name in CONFIGURATION_FIELDS.intersection(fields) - {"backend_name", "backend_version"}:
                self._set_configuration_field(name, fields[name])
        self._agreement = None
        if comm is not None and comm.Get_size() > 1:
            # built here, collectively (every rank builds its backend), never inside a run()
            from aer_mpi.service.agreement import agreement_for

            self._agreement = agreement_for(comm)
        #: The jobs' communicator: a duplicate, shared by the backends of ``comm`` (jobs run one at a
        #: time), so a job's collectives never meet the ones the script makes while the job runs.
        self._job_comm = self._agreement.job_comm if self._agreement is not None else comm

    @classmethod
    def from_backend(cls, backend: Any, comm: Any = None, processes: Optional[int] = None, **options: Any) -> "AerMPISimulator":
        """A simulator of ``backend`` (a BackendV2), as Aer's ``AerSimulator.from_backend``: its target
        (basis gates, qubit count, coupling map) and, unless ``noise_model=`` is given,
        ``NoiseModel.from_backend(backend)`` (qiskit-aer needed; see docs/noise.md)."""
        from aer_mpi.qobj.noise import backend_noise_model

        if "noise_model" not in options:
            model = backend_noise_model(backend)
            if model is not None:
                options["noise_model"] = model
        sim = cls(comm=comm, processes=processes, properties=_device_properties(backend), **options)
        sim._target = _device_target(backend)
        sim._from_device = True
        sim.name = f"{BACKEND_NAME}_from({backend.name})"
        # as Aer's configuration of a device (BackendV1-style code, mthree and qiskit-experiments read it)
        coupling = getattr(backend, "coupling_map", None)
        if coupling is not None:
            sim._set_configuration_field("coupling_map", coupling)
        sim._set_configuration_field("max_experiments", getattr(backend, "max_circuits", None))
        return sim

    def properties(self) -> Any:
        """None, as Aer's simulators answer (older tutorials and tools call it), or the ``properties=``
        given to the constructor, as Aer keeps it."""
        return self._properties

    def __repr__(self) -> str:
        """As Aer's backends print: ``AerMPISimulator('aer_mpi_simulator')``."""
        return f"{type(self).__name__}({self.name!r})"

    @classmethod
    def _default_options(cls) -> Options:
        return Options(**defaults())

    def set_options(self, **fields: Any) -> None:
        """Change default run options; each is checked against ``aer_mpi.qobj.options.OPTIONS``.

        As in Aer: numpy scalars are accepted, and None restores an option's
        default (``shots``, ``method``, ``fusion_enable``, ...).
        """
        for name in CONFIGURATION_FIELDS.intersection(fields):
            self._set_configuration_field(name, fields.pop(name))
        fields = normalise_options(fields)
        for name, value in fields.items():
            if value is None:
                fields[name] = OPTIONS[name].default
        self._ignored_set.update(IGNORED_OPTIONS.intersection(fields))
        super().set_options(**fields)

    def _set_configuration_field(self, name: str, value: Any) -> None:
        """One of Aer's configuration fields (None removes it, as Aer's ``set_option``)."""
        self._coupling_map = None  # BackendV2 caches the target's map
        if value is None:
            self._configuration_fields.pop(name, None)
            return
        if name == "n_qubits":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidInputError(f"n_qubits must be a positive integer, not {value!r}")
            value = int(value)
        elif name == "coupling_map":
            value = _coupling_edges(value)
        self._configuration_fields[name] = value

    @property
    def target(self) -> Target:
        """Every instruction the engine runs; restricted, as Aer's, to the ``basis_gates`` option, or
        when a noise model is set, to its basis gates (so that ``transpile(qc, backend)`` writes a
        circuit in the gates the model's errors are on), and to the ``n_qubits`` and ``coupling_map``
        given to the constructor or ``set_options``. A device's target (``from_backend``) as it is."""
        if self._from_device:
            return self._target
        basis = self.options.basis_gates
        if basis is None and self.options.noise_model is not None:
            basis = noise_basis_gates(self.options.noise_model)
        edges = self._configuration_fields.get("coupling_map")
        num_qubits = self._configuration_fields.get("n_qubits")
        if num_qubits is None and edges is not None:
            num_qubits = max(max(edge) for edge in edges) + 1 if edges else 1
        if basis is None and edges is None and num_qubits is None:
            return self._target
        return restricted_target(
            num_qubits or self._target.num_qubits, None if basis is None else frozenset(basis), edges
        )

    @property
    def max_state_qubits(self) -> int:
        """Active qubits of the largest state these ranks could hold (single precision), as ``aer-mpi info``.

        Estimated when the backend is built, from ``max_memory_mb`` or this
        node's available memory shared by the ranks on it. ``target.num_qubits``
        is larger (``TARGET_MIN_QUBITS``): idle qubits of a device-transpiled
        circuit cost nothing.
        """
        return self._max_state_qubits

    # -- what Qiskit Aer users still call ------------------------------------
    def available_methods(self) -> tuple[str, ...]:
        """Simulation methods aer_mpi runs (all of them as the distributed statevector)."""
        return METHODS

    def available_devices(self) -> tuple[str, ...]:
        """Devices aer_mpi runs on."""
        return DEVICES

    def clear_options(self) -> None:
        """Every option back to its default (Aer's ``clear_options``; configuration fields stay, as Aer's)."""
        self._options = self._default_options()
        self._ignored_set.clear()

    def configuration(self) -> "BackendConfiguration":
        """A BackendV1-style configuration, as Aer's, for code that still reads one."""
        target = self.target
        basis = sorted(name for name in target.operation_names)
        edges = self._configuration_fields.get("coupling_map")  # (from_backend: the device's)
        fields = dict(
            backend_name=self.name,
            backend_version=self.backend_version,
            n_qubits=target.num_qubits,
            num_qubits=target.num_qubits,
            basis_gates=basis,
            gates=[],
            coupling_map=None if edges is None else [list(edge) for edge in edges],
            simulator=True,
            local=True,
            conditional=True,
            memory=True,
            open_pulse=False,
            max_shots=int(1e6),
            description=self.description,
            # Aer's: the names of the instructions that are not gates (code for Aer iterates over it)
            custom_instructions=[name for name in basis if name in _CUSTOM_INSTRUCTIONS],
            dynamic_reprate_enabled=False,
        )
        fields.update((name, value) for name, value in self._configuration_fields.items() if name != "coupling_map")
        fields["num_qubits"] = fields["n_qubits"]
        return BackendConfiguration(**fields)

    @property
    def max_circuits(self) -> Optional[int]:
        return None

    @property
    def comm(self) -> Any:
        """The communicator jobs run on; None when the jobs run on worker processes."""
        return self._comm

    @property
    def workers(self) -> Any:
        """The ``WorkerPool`` of ``processes=P``, or None in SPMD use."""
        return self._workers

    def __deepcopy__(self, memo: dict) -> "AerMPISimulator":
        """A copy with copies of the options, target and configuration, sharing what is not state:
        the communicator and the worker processes (their locks and pipes cannot be copied; Qiskit
        IBM Runtime's primitives deep-copy their options, which hold the backend)."""
        cls = type(self)
        twin = cls.__new__(cls)
        memo[id(self)] = twin
        for key, value in self.__dict__.items():
            shared = key in ("_comm", "_workers", "_workers_users")
            setattr(twin, key, value if shared else copy.deepcopy(value, memo))
        if self._workers is not None:
            self._workers_users[0] += 1
            weakref.finalize(twin, _release_workers, self._workers, self._workers_users)
        return twin

    def close(self) -> None:
        """Stop the worker processes (``processes=P`` only; nothing to do in SPMD use; a deep copy
        shares them)."""
        if self._workers is not None:
            self._workers.close()

    def __enter__(self) -> "AerMPISimulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(self, run_input: Any, **options: Any) -> AerJob:
        """Run circuits; returns an AerJob already submitted.

        Under mpiexec (SPMD, several ranks) every rank's ``run()`` first agrees
        with the others (``aer_mpi.service.agreement``): an error raised on one
        rank before the job starts is raised on every rank, different circuits
        or options on different ranks are an ``InvalidInputError``, and a rank
        that does not come (it ended, or skipped the call) is a
        ``RankMissingError`` naming it, after at most ``AER_MPI_AGREE_TIMEOUT``
        seconds (60).

        As in Aer, ``run()`` itself does not raise for what it refuses: the
        job it returns is in ERROR and its ``result()`` raises the error
        (``InvalidInputError`` for a bad option or a circuit that cannot run:
        unknown instruction, unbound parameter, non-finite angle;
        ``QobjValidationError``; ``RankMissingError``), on every rank alike.
        """
        try:
            job = self._agreed_run(run_input, options)
        except AerMPIError as exc:
            job = AerJob.refused(self, _new_job_id(), exc)
        # the circuits as given (noise passes and the legacy backends' final saves work on copies)
        job._circuits = [run_input] if isinstance(run_input, QuantumCircuit) else (
            list(run_input) if isinstance(run_input, (list, tuple)) else [])
        return job

    def _agreed_run(self, run_input: Any, options: dict) -> AerJob:
        agreement = self._run_agreement()
        if agreement is None:
            return self._checked_run(run_input, options, None)
        agreed = []

        def agree(qobj: Any, seed_drawn: bool) -> None:
            from aer_mpi.service.agreement import fingerprint

            qobj.validate()  # a QobjValidationError on one rank is raised on all
            agreed.append(True)
            agreement.agree(fingerprint(qobj, seed_drawn))

        try:
            return self._checked_run(run_input, options, agree)
        except Exception as exc:
            if agreed:
                raise
            agreement.agree(None, exc)  # raises it (or its copy) on every rank
            raise

    def _checked_run(self, run_input: Any, options: dict, agree: Any) -> AerJob:
        """``_run``, where an error that is not aer_mpi's (an object Qiskit built oddly: a loader's
        instruction without its definition, ...) becomes an ``InvalidInputError`` naming it, so that
        run() refuses the job, the same on every rank, instead of raising on one rank only."""
        try:
            return self._run(run_input, options, agree)
        except AerMPIError:
            raise
        except MemoryError as exc:
            raise InsufficientMemoryError(f"run() ran out of memory preparing these circuits ({str(exc) or 'MemoryError'}): "
                                          f"run fewer or smaller circuits at once") from exc
        except Exception as exc:
            raise InvalidInputError(f"run() cannot read these circuits or options: {type(exc).__name__}: {exc}") from exc

    def _run_agreement(self) -> Any:
        """The SPMD agreement of this backend's ranks (None with one rank or with workers)."""
        return self._agreement

    def _run(self, run_input: Any, options: dict, agree: Any) -> AerJob:
        if self._workers is not None and self._workers.closed:
            raise InvalidInputError("this backend was closed: build a new AerMPISimulator(processes=...)")
        circuits = [run_input] if isinstance(run_input, QuantumCircuit) else list(run_input)
        if not circuits or not all(isinstance(c, QuantumCircuit) for c in circuits):
            raise InvalidInputError("run() expects a QuantumCircuit or a non-empty list of them")
        options = dict(options)
        parameterizations = options.pop("parameterizations", None)
        if parameterizations is not None:
            circuits = _parameterized_copies(circuits, parameterizations)
        run_only = IGNORED_RUN_KEYWORDS.intersection(options)
        unknown = sorted(set(options) - set(OPTIONS) - run_only)
        if unknown:
            # Aer's run() lets any keyword through; here it is named, so a typo of shots does not pass unseen
            hints = [f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                     for name in unknown for close in [difflib.get_close_matches(name, OPTIONS, n=1)]]
            warnings.warn(f"run() ignores {', '.join(hints)}: not an option of this simulator (as Aer's run(), "
                          f"which lets any keyword through); backend.options lists them", UserWarning, stacklevel=4)
            run_only = run_only | set(unknown)
        options = normalise_options({k: v for k, v in options.items() if k not in run_only})
        # a run option of None leaves the backend's value, as in Aer: Qiskit's BackendSamplerV2 passes
        # seed_simulator=None on every call, which must not replace the backend's seed
        options = {k: v for k, v in options.items() if v is not None}
        ignored = sorted(self._ignored_set.union(IGNORED_OPTIONS.intersection(options), run_only))
        merged = {**self.options.__dict__, **options}
        if self._workers is not None:  # the workers run in a directory of their own: paths are the caller's
            for key in ("statevector_dir", "checkpoint_dir"):
                if merged.get(key):
                    merged[key] = os.path.abspath(os.fspath(merged[key]))
        parameter_binds = merged.pop("parameter_binds", None)
        seed_drawn = merged.get("seed_simulator") is None
        if seed_drawn:
            # a job resumed from a checkpoint goes on with the seed it was started with
            stored = stored_seed(merged.get("checkpoint_dir"))
            merged["seed_simulator"] = _RANDOM.randrange(1 << 62) if stored is None else stored
        config = qobj_config(merged)
        if merged.get("noise_model") is not None:
            circuits = noise_passes(circuits, merged["noise_model"])
        assembly_start = time.perf_counter()
        qobj = assemble_circuits(circuits, config, parameter_binds)
        # Aer's time_taken_parameter_binding: here binding is part of the assembly
        binding_seconds = time.perf_counter() - assembly_start
        model_kind = "ideal"
        if merged.get("noise_model") is not None:  # noise (qobj/noise.py); its table built once
            table = noise_table(merged["noise_model"])
            add_noise(qobj, table)
            model_kind = noise_model_kind(table)
        if agree is not None:  # SPMD: every rank checks with the others before the job starts
            agree(qobj, seed_drawn)
        # progress is shown by rank 0 only
        on_root = self._comm is None or self._comm.Get_rank() == 0
        listener = make_listener(merged.get("progress")) if on_root else None
        control = RunControl(
            progress=listener.steps if listener else None, stage=listener.stage if listener else None
        )
        job = AerJob(self, _new_job_id(), self._run_job, qobj, control, listener, ignored, binding_seconds, model_kind)
        if merged.get("method") == "density_matrix":
            job.notes = _density_matrix_notes
        control.cancel_requested = job.cancel_requested
        control.checkpoint_requested = job.checkpoint_requested
        job.submit()
        return job

    def _run_job(
        self,
        qobj: Any,
        job_id: str,
        control: RunControl,
        listener: Optional[ProgressListener] = None,
        ignored: Optional[list] = None,
        binding_seconds: float = 0.0,
        model_kind: str = "ideal",
    ) -> Any:
        try:
            if self._workers is not None:
                result = self._workers.run(qobj, job_id, control)
            else:
                result = execute_qobj(
                    qobj, job_id, self._job_comm, control, on_experiment=listener.experiment if listener else None
                )
        except BaseException:
            if listener is not None:
                listener.close(failed=True)
            raise
        if listener is not None:
            listener.close()
        if result is not None and hasattr(result, "backend_name"):
            result.backend_name = self.name  # as Aer's: "aer_mpi_simulator_from(fake_manila)" after from_backend
        self._aer_metadata(result, ignored or [], binding_seconds, model_kind)
        return result

    def _aer_metadata(self, result: Any, ignored: list, binding_seconds: float = 0.0, model_kind: str = "ideal") -> None:
        """Qiskit Aer's keys in the result's metadata, where they mean the same thing here."""
        ranks = self._workers.processes if self._workers is not None else self._comm.Get_size()
        rank = 0 if self._comm is None else self._comm.Get_rank()
        meta = result.metadata if isinstance(getattr(result, "metadata", None), dict) else None
        if meta is not None:
            meta.setdefault("mpi_rank", rank)
            meta.setdefault("num_mpi_processes", ranks)
            meta.setdefault("omp_enabled", True)
            meta.setdefault("max_gpu_memory_mb", 0)
            meta.setdefault("time_taken_parameter_binding", binding_seconds)
            meta["ignored_options"] = list(ignored)
        for experiment in getattr(result, "results", []) or []:
            emeta = getattr(experiment, "metadata", None)
            if isinstance(emeta, dict):
                emeta.setdefault("mpi_rank", rank)
                emeta.setdefault("num_mpi_processes", ranks)
                emeta["ignored_options"] = list(ignored)
                _model_noise_words(emeta, model_kind)


def _model_noise_words(emeta: dict, model_kind: str) -> None:
    """Aer's ``noise`` and ``measure_sampling`` where they depend on the noise model as a whole, not on
    the errors that reached the circuit: Aer samples a model with quantum errors shot by shot even on a
    circuit they miss ("circuit", no measure sampling) but under the density methods; a model of readout
    errors only is "readout"."""
    if model_kind == "readout":
        if "noise" in emeta:
            emeta["noise"] = "readout"
    elif model_kind == "circuit" and emeta.get("method") not in EXACT_NOISE_METHODS:
        if emeta.get("noise") == "ideal":
            emeta["noise"] = "circuit"
        if "measure_sampling" in emeta:
            emeta["measure_sampling"] = False


def _new_job_id() -> str:
    return str(uuid.UUID(int=_RANDOM.getrandbits(128), version=4))


_ABORT_HOOK_INSTALLED = False
#: Seconds an aborting rank waits, after printing its traceback, before MPI_Abort.
ABORT_GRACE_SECONDS = 0.5


def abort_on_uncaught_exception(comm: Any) -> None:
    """Under mpiexec with several ranks, an uncaught exception aborts the whole job.

    Without it, a rank that dies of an exception outside aer_mpi's own
    collectives (in the user's script) leaves the other ranks waiting
    forever in their next collective; MPI_Abort ends them all with a
    non-zero exit, as ``python -m mpi4py`` does. The traceback is printed
    first. Installed once; chains to the previous hook.
    """
    global _ABORT_HOOK_INSTALLED
    if _ABORT_HOOK_INSTALLED or comm.Get_size() == 1:
        return
    import sys

    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        try:
            sys.stderr.flush()
            sys.stdout.flush()
            # the launcher forwards a rank's output asynchronously and drops what it has not
            # forwarded when the abort kills the job: give it a moment to pass the traceback on
            time.sleep(ABORT_GRACE_SECONDS)
        finally:
            from mpi4py import MPI

            from aer_mpi.comm.watchdog import abort_job

            abort_job(MPI.COMM_WORLD, 1)

    sys.excepthook = hook
    _ABORT_HOOK_INSTALLED = True
