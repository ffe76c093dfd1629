"""Many small circuits: whole circuits in parallel across ranks.

A circuit of a few qubits gains nothing from sharding (its ranks would
spend their time in collectives), so when a batch holds several such
circuits and there are several ranks, each rank runs whole circuits on its
own (``MPI.COMM_SELF``) and the outputs are gathered. A circuit run alone
on one rank is exactly what a 1-rank run computes, so the same seed gives
bit-identical counts and memory.

``execution.execute_qobj`` calls it first with the job's planned
experiments (``plan_jobs``) and runs the rest sharded; it uses the engine,
no Qobj and no kernel internals.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Optional, Sequence

from aer_mpi.comm.watchdog import bounded
from aer_mpi.comm import Collective, ranks_on_this_node
from aer_mpi.engine import RunControl, run_experiment
from aer_mpi.engine.output import small_part as _small_part
from aer_mpi.engine.interrupts import stop_requested
from aer_mpi.engine.resources import cores_available
from aer_mpi.errors import JobCancelledError
from aer_mpi.service.plan_jobs import PlannedExperiment

#: A circuit whose shards would have fewer qubits than this (or than
#: ``min_local_qubits``) is small: its kernels would be all overhead.
SMALL_SHARD_QUBITS = 8


def is_small(num_qubits: int, size: int, min_local_qubits: int) -> bool:
    """Whether sharding over ``size`` ranks would leave shards too small to be worth it."""
    g = size.bit_length() - 1
    return num_qubits - g < max(min_local_qubits, SMALL_SHARD_QUBITS)


def small_experiments(planned: Sequence[PlannedExperiment], size: int) -> list[int]:
    """Indices of the experiments to run whole, one rank each (empty: shard them all)."""
    if size < 2:
        return []
    small = [
        index
        for index, (program, config, _) in enumerate(planned)
        if config.parallel_experiments and is_small(program.num_qubits, size, config.min_local_qubits)
    ]
    return small if len(small) >= 2 else []


def assign(costs: dict[int, float], size: int) -> dict[int, int]:
    """Experiment -> rank: largest first, each to the least loaded rank (ties: lowest)."""
    loads = [0.0] * size
    owner = {}
    for index in sorted(costs, key=lambda i: (-costs[i], i)):
        rank = min(range(size), key=lambda r: (loads[r], r))
        owner[index] = rank
        loads[rank] += costs[index]
    return owner


@dataclasses.dataclass
class ExperimentFailure:
    """An experiment that did not finish: its error (``kind``, ``message``) or a cancel."""

    kind: str
    message: str
    rank: int = 0

    @property
    def cancelled(self) -> bool:
        return self.kind == JobCancelledError.__name__

    @classmethod
    def of(cls, error: BaseException, rank: int) -> "ExperimentFailure":
        return cls(type(error).__name__, str(error), rank)


def remove_unfinished_statevector(path: Optional[str], since: float) -> None:
    """Remove the statevector file of a circuit that did not finish, when this run wrote it."""
    if not path:
        return
    try:
        if os.lstat(path).st_mtime >= since - 1.0:
            os.unlink(path)
    except Exception:  # never let clean-up break the ranks' agreement
        pass


#: Tag of the cancel notices among the ranks of a small-circuit batch (on its own communicator).
_CANCEL_TAG = 7


class SharedCancel:
    """A cancel every rank of a small-circuit batch sees within one checkpoint.

    Each rank runs its own circuits (no collectives), so a rank that sees a
    stop (its job's cancel, rank 0's ``cancel_requested``, a signal) sends a
    notice to every other rank once; ``poll()`` on each rank also probes for
    such a notice. ``finish()`` (collective) waits for every rank with the
    poll running, then receives exactly the notices that were sent.
    """

    def __init__(self, comm: Any, cancel_requested: Callable[[], bool]):
        from mpi4py import MPI

        self.any_source = MPI.ANY_SOURCE
        with bounded(comm, "the small circuits' notices"):
            self.comm = comm.Dup()  # its own matching space: no notice meets another message
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.cancel_requested = cancel_requested
        self.stopped = False
        self.sent: list = []

    def poll(self) -> bool:
        if self.stopped:
            return True
        if stop_requested() is not None or self.cancel_requested():
            self.stopped = True
            self.sent = [self.comm.isend(True, dest=r, tag=_CANCEL_TAG) for r in range(self.size) if r != self.rank]
        elif self.comm.Iprobe(source=self.any_source, tag=_CANCEL_TAG):
            self.stopped = True
        return self.stopped

    def finish(self) -> bool:
        """Collective: wait for every rank (polling), drain the notices; True when any rank stopped."""
        from mpi4py import MPI

        barrier = self.comm.Ibarrier()
        while not barrier.Test():
            self.poll()
            time.sleep(POLL_SECONDS)
        with bounded(self.comm, "the small circuits' results"):
            senders = self.comm.allgather(bool(self.sent))
        for rank, sent in enumerate(senders):
            if sent and rank != self.rank:
                self.comm.recv(source=rank, tag=_CANCEL_TAG)
        MPI.Request.Waitall(self.sent)
        self.comm.Free()
        return any(senders) or self.stopped


#: Seconds between two polls of a rank that finished its circuits and waits for the others.
POLL_SECONDS = 0.002


def run_small_experiments(
    planned: Sequence[PlannedExperiment],
    comm: Any,
    control: Optional[RunControl] = None,
    on_experiment: Optional[Callable[[int, int, str], None]] = None,
    skip: frozenset = frozenset(),
) -> dict[int, Any]:
    """Run the small experiments of ``planned`` whole, in parallel (collective); not those in ``skip``.

    Returns index -> output on every rank (large arrays on rank 0 only), or
    index -> ``ExperimentFailure`` for a circuit that failed or was cancelled
    (a cancel on any rank stops every rank's circuits at their next
    checkpoint; the circuits finished before it are kept).
    """
    from mpi4py import MPI

    control = control or RunControl()
    size, rank = comm.Get_size(), comm.Get_rank()
    indices = [i for i in small_experiments(planned, size) if i not in skip]
    if not indices:
        return {}
    collective = Collective(comm)
    node_ranks = ranks_on_this_node(comm)
    threads = max(1, cores_available() // node_ranks)
    owner = assign({i: float(1 << planned[i].program.num_qubits) for i in indices}, size)
    shared = SharedCancel(comm, control.cancel_requested)
    mine: dict[int, Any] = {}
    error: Optional[BaseException] = None
    try:
        for index in indices:
            if owner[index] != rank:
                if on_experiment is not None and rank == 0:  # (rank 0 speaks for the job: every circuit is named)
                    on_experiment(index, len(planned), f"{planned[index].program.name}, on rank {owner[index]}")
                continue
            program, config, _ = planned[index]
            if shared.poll():
                mine[index] = ExperimentFailure.of(JobCancelledError("the job was cancelled"), rank)
                continue
            config = dataclasses.replace(config, threads_per_rank=config.threads_per_rank or threads)
            if config.max_memory_bytes is None:
                import psutil

                config = dataclasses.replace(
                    config, max_memory_bytes=int(psutil.virtual_memory().available // node_ranks)
                )
            if on_experiment is not None and rank == 0:
                on_experiment(index, len(planned), program.name)
            own = RunControl(
                cancel_requested=shared.poll,
                progress=control.progress if rank == 0 else None,
                stage=control.stage if rank == 0 else None,
            )
            started = time.time()
            try:
                output = run_experiment(program, config, MPI.COMM_SELF, own)
            except Exception as exc:  # this circuit only: the others' results are kept
                if isinstance(exc, JobCancelledError):
                    remove_unfinished_statevector(config.statevector_path, started)
                mine[index] = ExperimentFailure.of(exc, rank)
                continue
            output.metadata["parallel_experiments"] = size
            output.metadata["experiment_rank"] = rank
            output.metadata["ranks"] = size
            output.metadata["note"] = (
                f"run whole on rank {rank}: {len(indices)} circuits too small to shard "
                f"shared among {size} ranks"
            )
            mine[index] = output
    except Exception as exc:  # every rank raises it below
        error = exc
    shared.finish()
    collective.agree(error)
    with bounded(comm, "the small circuits' plan"):
        gathered = comm.gather(mine, root=0)
    small: Optional[dict[int, Any]] = None
    if rank == 0:
        full: dict[int, Any] = {}
        for part in gathered:
            full.update(part)
        small = {i: out if isinstance(out, ExperimentFailure) else _small_part(out) for i, out in full.items()}
    with bounded(comm, "the small circuits' plan"):
        small = comm.bcast(small, root=0)
    if rank == 0:
        return full
    return small
