"""Data movement between ranks.

Promise of this layer: mpi4py only. It moves amplitude blocks between ranks
in bounded chunks (a global<->local bit swap, several at once as one
all-to-all; a partner's shard streamed in blocks), agrees on errors so that
no rank is left in a collective, gathers (whole shards to the root one at a
time: ``point_to_point``), writes one file from all ranks
at once (``parallel_io``), and carries idle ranks' stop requests to rank 0
(``stop_notices``). It knows nothing of gates or Qiskit.
"""

from aer_mpi.comm.exchange import BitSwapExchange, ExchangeStats
from aer_mpi.comm.collective import Collective, ranks_on_this_node
from aer_mpi.comm.parallel_io import read_npy_range, write_npy_collective
from aer_mpi.comm.partner import stream_partner_blocks
from aer_mpi.comm.point_to_point import gather_shards_to_root
from aer_mpi.comm.stop_notices import StopNotices

__all__ = [
    "BitSwapExchange",
    "Collective",
    "ExchangeStats",
    "StopNotices",
    "gather_shards_to_root",
    "ranks_on_this_node",
    "stream_partner_blocks",
    "read_npy_range",
    "write_npy_collective",
]
