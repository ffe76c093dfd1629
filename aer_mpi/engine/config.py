"""Plain inputs and outputs of the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from aer_mpi.comm.exchange import DEFAULT_BUFFER_BYTES

PRECISIONS = {"double": "complex128", "single": "complex64"}


@dataclass(frozen=True)
class RunConfig:
    shots: int = 1024
    seed: int = 0
    memory: bool = False
    precision: str = "double"
    #: Aer's simulation method: "stabilizer" runs Clifford circuits on a tableau (engine/stabilizer.py),
    #: "automatic" the noisy ones, any but "statevector" those whose state does not fit.
    method: str = "automatic"
    #: Send + receive buffer of an exchange, per rank.
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    #: Memory a rank may use; None means what the node has free, shared by its ranks.
    max_memory_bytes: Optional[int] = None
    #: Fewest local qubits a shard keeps; smaller circuits run on fewer ranks.
    min_local_qubits: int = 3
    #: Steps between two meetings of the ranks (cancel, progress, checkpoints are decided there).
    meeting_every: int = 32
    #: Where the job keeps its checkpoints (engine/checkpoint.py); None keeps none.
    checkpoint_dir: Optional[str] = None
    #: Seconds between two periodic checkpoints; None: only on a signal or cancel(checkpoint=True).
    checkpoint_every_seconds: Optional[float] = None
    #: Where to write the final state (before the final measurements) as .npy,
    #: in Qiskit's qubit order, by all ranks at once; None writes nothing.
    statevector_path: Optional[str] = None
    #: Gate fusion (plan/fusion.py), named as Aer names its options.
    fusion_enable: bool = True
    fusion_max_qubit: int = 5
    fusion_max_diagonal_qubit: int = 12
    #: Circuits with fewer qubits are not fused (Aer's default is 14 too).
    fusion_threshold: int = 14
    #: Gate kernels: "auto" (numba when it imports), "numba" or "numpy";
    #: None means $AER_MPI_KERNELS, else "auto".
    kernels: Optional[str] = None
    #: Kernel threads per rank; None means the node's cores shared by its ranks.
    threads_per_rank: Optional[int] = None
    #: Run a batch's circuits that are too small to shard whole, one per rank at a time.
    parallel_experiments: bool = True
    #: Aer's max_parallel_threads: kernel threads of a rank when threads_per_rank is None
    #: (None: the node's cores shared by its ranks).
    max_parallel_threads: Optional[int] = None
    #: Aer's statevector_parallel_threshold: a shard of this many qubits or fewer uses one thread.
    statevector_parallel_threshold: int = 16
    #: Cache-blocked stages (plan/stages.py); False, or $AER_MPI_CACHE_BLOCKING=0, turns them off.
    cache_blocking: bool = True
    #: A stage's chunk is 2**cache_qubits amplitudes; None: from the L2 cache size (engine/resources.py).
    cache_qubits: Optional[int] = None
    #: Aer's enable_truncation: leave out the qubits no instruction touches.
    enable_truncation: bool = True
    #: Aer's zero_threshold: entries at or below it are left out of saved dicts.
    zero_threshold: float = 1e-10
    #: Aer's matrix_product_state options (engine/mps.py): singular values whose squares sum to at
    #: most this are dropped; at most this many kept per bond (None: no limit).
    mps_truncation_threshold: float = 1e-16
    mps_max_bond_dimension: Optional[int] = None


@dataclass
class RunControl:
    """Hooks from the caller, used on the root rank only.

    ``cancel_requested`` is polled at the ranks' meetings and its answer
    broadcast; ``progress(done, total)`` is called at the same meetings;
    ``stage(name)`` when the run enters a stage ("simulating", "sampling",
    "writing statevector").
    """

    cancel_requested: Callable[[], bool] = lambda: False
    progress: Optional[Callable[[int, int], None]] = None
    stage: Optional[Callable[[str], None]] = None
    #: ``cancel(checkpoint=True)``: stop after a checkpoint (when the job keeps them).
    checkpoint_requested: Callable[[], bool] = lambda: False
    #: The job's checkpoints (engine/checkpoint.py ``JobCheckpoints``), on every rank; None: none kept.
    checkpoints: Optional[Any] = None


@dataclass
class ExperimentOutput:
    """What one experiment produced, on one rank.

    ``counts`` maps hex outcome keys (as Qiskit's ``Result`` expects) to
    counts; ``memory`` lists hex outcomes per shot when asked for; ``data``
    holds saved values keyed by label (a statevector only on rank 0);
    ``metadata`` says what the run did.
    """

    counts: Optional[dict[str, int]]
    memory: Optional[list[str]]
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: label -> (save kind as in ir.Save.kind, subtype), for every save that produced a value
    save_kinds: dict[str, tuple[str, str]] = field(default_factory=dict)
