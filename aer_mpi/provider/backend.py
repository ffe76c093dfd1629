"""AerMPISimulator: the Qiskit BackendV2.

It holds no simulation state: ``run()`` checks the options, assembles a
Qobj and hands it to an AerJob whose function runs it on the MPI ranks.
Under ``mpiexec`` every rank builds the backend and calls ``run()`` in the
same order (SPMD); rank 0's job result is complete. In a plain Python
process, ``AerMPISimulator(processes=P)`` starts P MPI worker processes of
its own (``aer_mpi.service.pool``) and runs every job there.
"""

from __future__ import annotations

import random
import uuid
import weakref
from typing import Any, Optional

from qiskit.circuit import Instruction, QuantumCircuit
from qiskit.circuit.library import UnitaryGate, get_standard_gate_name_mapping
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target

from aer_mpi._version import __version__
from aer_mpi.qobj.assemble import assemble_circuits, bind_parameters
from aer_mpi.engine import RunControl
from aer_mpi.errors import InvalidInputError
from aer_mpi.service.execution import BACKEND_NAME, execute_qobj
from aer_mpi.provider.job import AerJob
from aer_mpi.provider.progress import ProgressListener, make_listener
from aer_mpi.qobj.instructions import CONTROL_FLOW, SAVE_INSTRUCTIONS
from aer_mpi.qobj.noise import add_noise
from aer_mpi.qobj.options import check_options, defaults, qobj_config


def build_target() -> Target:
    """Every instruction the engine runs, on any qubits (no coupling map)."""
    from qiskit.circuit import get_control_flow_name_mapping

    target = Target(description="aer_mpi distributed statevector", num_qubits=None)
    for name, op in get_standard_gate_name_mapping().items():
        target.add_instruction(op, properties=None, name=name)
    target.add_instruction(UnitaryGate, name="unitary")
    control_flow = get_control_flow_name_mapping()
    for name in sorted(CONTROL_FLOW):
        target.add_instruction(control_flow[name], name=name)
    for name in sorted(SAVE_INSTRUCTIONS):
        target.add_instruction(Instruction(name, 0, 0, []), properties=None, name=name)
    return target


def _device_target(backend: Any) -> Target:
    """``backend``'s target (a copy), with the save instructions added (from_backend)."""
    import copy

    target = copy.deepcopy(backend.target)
    for name in sorted(SAVE_INSTRUCTIONS):
        if name not in target.operation_names:
            target.add_instruction(Instruction(name, 0, 0, []), properties=None, name=name)
    return target


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
            ``precision``, ...), overridable per ``run()``.
    """

    def __init__(
        self, comm: Any = None, processes: Optional[int] = None, *, heartbeat_timeout: Optional[float] = None, **options: Any
    ):
        super().__init__(
            name=BACKEND_NAME,
            description="Statevector simulator sharded across MPI ranks",
            backend_version=__version__,
        )
        self._target = build_target()
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
            # a backend dropped without close() stops its workers when collected (or at exit)
            weakref.finalize(self, self._workers.close)
        elif comm is None:
            from mpi4py import MPI

            comm = MPI.COMM_WORLD
            abort_on_uncaught_exception(comm)
        self._comm = comm

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
        sim = cls(comm=comm, processes=processes, **options)
        sim._target = _device_target(backend)
        sim.name = f"{BACKEND_NAME}_from({backend.name})"
        return sim

    @classmethod
    def _default_options(cls) -> Options:
        return Options(**defaults())

    def set_options(self, **fields: Any) -> None:
        """Change default run options; each is checked against ``aer_mpi.qobj.options.OPTIONS``."""
        check_options(fields)
        super().set_options(**fields)

    @property
    def target(self) -> Target:
        return self._target

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

    def close(self) -> None:
        """Stop the worker processes (``processes=P`` only; nothing to do in SPMD use)."""
        if self._workers is not None:
            self._workers.close()

    def __enter__(self) -> "AerMPISimulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(self, run_input: Any, **options: Any) -> AerJob:
        """Run circuits; returns an AerJob already submitted.

        Raises:
            InvalidInputError: a bad option, or a circuit that cannot run
                (unknown instruction, unbound parameter, non-finite angle).
            QobjValidationError: from ``AerJob.submit()``.
        """
        if self._workers is not None and self._workers.closed:
            raise InvalidInputError("this backend was closed: build a new AerMPISimulator(processes=...)")
        circuits = [run_input] if isinstance(run_input, QuantumCircuit) else list(run_input)
        if not circuits or not all(isinstance(c, QuantumCircuit) for c in circuits):
            raise InvalidInputError("run() expects a QuantumCircuit or a non-empty list of them")
        check_options(options)
        merged = {**self.options.__dict__, **options}
        circuits = bind_parameters(circuits, merged.pop("parameter_binds", None))
        if merged.get("seed_simulator") is None:
            merged["seed_simulator"] = random.SystemRandom().randrange(1 << 62)
        config = qobj_config(merged)
        qobj = assemble_circuits(circuits, config)
        if merged.get("noise_model") is not None:  # noise (qobj/noise.py)
            add_noise(qobj, merged["noise_model"])
        # progress is shown by rank 0 only
        on_root = self._comm is None or self._comm.Get_rank() == 0
        listener = make_listener(merged.get("progress")) if on_root else None
        control = RunControl(
            progress=listener.steps if listener else None, stage=listener.stage if listener else None
        )
        job = AerJob(self, str(uuid.uuid4()), self._run_job, qobj, control, listener)
        control.cancel_requested = job.cancel_requested
        job.submit()
        return job

    def _run_job(
        self, qobj: Any, job_id: str, control: RunControl, listener: Optional[ProgressListener] = None
    ) -> Any:
        try:
            if self._workers is not None:
                result = self._workers.run(qobj, job_id, control)
            else:
                result = execute_qobj(
                    qobj, job_id, self._comm, control, on_experiment=listener.experiment if listener else None
                )
        except BaseException:
            if listener is not None:
                listener.close(failed=True)
            raise
        if listener is not None:
            listener.close()
        return result


_ABORT_HOOK_INSTALLED = False


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
        finally:
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook
    _ABORT_HOOK_INSTALLED = True
