"""The SPMD program every rank runs.

Promise of this layer: given an ``ir.Program``, a ``RunConfig`` and a
communicator, every rank allocates its shard, executes the plan, and returns
plain results (counts, memory, saved data, metadata). It is the only place
that combines kernels with communication. It knows nothing of Qiskit.

Modules, by job: ``resources`` (the one policy for memory, cores, threads,
kernels), ``shard`` (the local array and its rank bits), ``interpreter``
(straight-line steps, checkpoints), ``branching`` (dynamic programs on an
explicit work stack), ``saves``, ``sampling`` (final measurements, the
statevector file), ``output`` and ``runner`` (orchestration only).
"""

from aer_mpi.engine.config import ExperimentOutput, RunConfig, RunControl
from aer_mpi.engine.runner import run_experiment

__all__ = ["ExperimentOutput", "RunConfig", "RunControl", "run_experiment"]
