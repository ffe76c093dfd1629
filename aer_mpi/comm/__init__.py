"""Data movement between ranks.

Promise of this layer: mpi4py only. It moves amplitude blocks between ranks
in bounded chunks (a global<->local bit swap, several at once as one
all-to-all), agrees on errors so that no rank is left in a collective,
gathers, and writes one file from all ranks at once (``parallel_io``). It
knows nothing of gates or Qiskit.
"""

from aer_mpi.comm.exchange import BitSwapExchange, ExchangeStats
from aer_mpi.comm.collective import Collective, ranks_on_this_node
from aer_mpi.comm.parallel_io import write_npy_collective

__all__ = ["BitSwapExchange", "Collective", "ExchangeStats", "ranks_on_this_node", "write_npy_collective"]
