"""Point-to-point transfers of whole shards.

Promise of this module: every rank's shard reaches the root one at a time
through one scratch buffer of a shard's size (never all at once), in rank
order. It moves arrays; what they mean (a layout, a qubit order) is the
caller's business.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from aer_mpi.comm.watchdog import bounded

#: Message tag of a shard sent to the root.
SHARD_TAG = 77


def gather_shards_to_root(
    comm: Any, shard: np.ndarray, place: Callable[[int, np.ndarray], None], root: int = 0
) -> bool:
    """Send every rank's ``shard`` to ``root`` (collective over ``comm``).

    On ``root``, ``place(rank, block)`` is called for each rank in rank
    order, its own shard included; ``block`` is valid only during the call
    (the next rank's shard is received into the same buffer). Every shard
    must have the same shape and dtype. Returns True on ``root``, False
    elsewhere.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    if not 0 <= root < size:
        raise ValueError("expecting root in range(comm.size)")
    if rank != root:
        with bounded(comm, f"sending the shard to rank {root}"):
            comm.Send(shard, dest=root, tag=SHARD_TAG)
        return False
    scratch = np.empty_like(shard) if size > 1 else None
    for r in range(size):
        if r == root:
            place(r, shard)
            continue
        with bounded(comm, f"receiving rank {r}'s shard"):
            comm.Recv(scratch, source=r, tag=SHARD_TAG)
        place(r, scratch)
    return True
