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
from typing import Any, Callable, Optional, Sequence

from aer_mpi.comm import Collective, ranks_on_this_node
from aer_mpi.engine import ExperimentOutput, RunControl, run_experiment
from aer_mpi.engine.output import small_part as _small_part
from aer_mpi.engine.resources import cores_available
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


def run_small_experiments(
    planned: Sequence[PlannedExperiment],
    comm: Any,
    control: Optional[RunControl] = None,
    on_experiment: Optional[Callable[[int, int, str], None]] = None,
) -> dict[int, ExperimentOutput]:
    """Run the small experiments of ``planned`` whole, in parallel (collective).

    Returns index -> output on every rank (large arrays on rank 0 only).
    """
    from mpi4py import MPI

    size, rank = comm.Get_size(), comm.Get_rank()
    indices = small_experiments(planned, size)
    if not indices:
        return {}
    collective = Collective(comm)
    node_ranks = ranks_on_this_node(comm)
    threads = max(1, cores_available() // node_ranks)
    owner = assign({i: float(1 << planned[i].program.num_qubits) for i in indices}, size)
    mine: dict[int, ExperimentOutput] = {}
    error: Optional[BaseException] = None
    try:
        for index in indices:
            if owner[index] != rank:
                continue
            program, config, _ = planned[index]
            config = dataclasses.replace(config, threads_per_rank=config.threads_per_rank or threads)
            if config.max_memory_bytes is None:
                import psutil

                config = dataclasses.replace(
                    config, max_memory_bytes=int(psutil.virtual_memory().available // node_ranks)
                )
            if on_experiment is not None and rank == 0:
                on_experiment(index, len(planned), program.name)
            output = run_experiment(program, config, MPI.COMM_SELF, control if rank == 0 else None)
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
    collective.agree(error)
    gathered = comm.gather(mine, root=0)
    small: Optional[dict[int, ExperimentOutput]] = None
    if rank == 0:
        full: dict[int, ExperimentOutput] = {}
        for part in gathered:
            full.update(part)
        small = {i: _small_part(out) for i, out in full.items()}
    small = comm.bcast(small, root=0)
    if rank == 0:
        return full
    return small
