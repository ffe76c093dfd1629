"""Single-array numerics.

Promise of this layer: functions on ONE local statevector array (a shard),
in place where they change it, with temporaries bounded by a chunk size and
never the size of the array. Qubits are given as *positions* (bit indices of
the local array). This layer knows nothing of MPI, ranks or Qiskit; where a
result depends on where the shard sits in the global state, the caller passes
the offsets in.
"""

from aer_mpi.kernels.dense import (
    apply_diagonal,
    apply_matrix,
    chunk_views,
    collapse,
    flip,
    logical_order_chunks,
    norm_squared,
    probability_of_one,
    scale,
)
from aer_mpi.kernels.pauli import (
    block_size,
    marginal_probabilities,
    nonzero_entries,
    pauli_block_sums,
    pauli_sums,
)

__all__ = [
    "block_size",
    "marginal_probabilities",
    "nonzero_entries",
    "pauli_block_sums",
    "pauli_sums",
    "apply_diagonal",
    "apply_matrix",
    "chunk_views",
    "collapse",
    "flip",
    "logical_order_chunks",
    "norm_squared",
    "probability_of_one",
    "scale",
]
