"""Saved values: what each save kind reads from the sharded state, and how values add up.

Promise of this module: ``Saves.save(step, shots, memory)`` computes the
value of one save step (collectively, never gathering the state except for
a statevector, which reaches rank 0 only) and records it under its label;
``Saves.results()`` gives ``label -> value`` and ``label -> (kind,
subtype)`` for every save that produced a value on this rank. Each kind
reads the state in its current layout (``step.layout``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import kernels
from aer_mpi.comm import gather_shards_to_root, stream_partner_blocks
from aer_mpi.engine.shard import Shard
from aer_mpi.errors import InternalError, InvalidInputError
from aer_mpi.plan import SaveStep, swap_rounds_to_order

#: Entries of magnitude below this are left out of saved dicts (Aer's default chop threshold).
CHOP_THRESHOLD = 1e-10  # the default of Aer's zero_threshold (RunConfig.zero_threshold)
#: A reduced array larger than this is summed on rank 0 only (it stays there, like a statevector).
SMALL_ARRAY = 1 << 16


class SaveRecord:
    """Values saved under one label, combined as Aer's subtype says.

    ``single``: the last shot's value; ``list``: one per shot, in shot
    order; ``average``: the mean over the shots that reached the save (as
    Aer: a save in a branch averages over the shots that took it);
    ``accum``: the sum; ``c_*``: the same per classical memory value (hex)
    at the save.
    """

    def __init__(self, subtype: str, finish: Optional[Any] = None, kind: str = ""):
        self.subtype = subtype
        self.kind = kind
        self.conditional = subtype.startswith("c_")
        self.base = subtype[2:] if self.conditional else subtype
        self.finish = finish or (lambda value: value)
        self.values: dict[Optional[str], Any] = {}
        self.counts: dict[Optional[str], int] = {}

    def add(self, value: Any, memory: str, shots: np.ndarray) -> None:
        """Record the value that the ``shots`` saw (None: held by rank 0 only, so nothing here)."""
        if value is None:
            return
        key = memory if self.conditional else None
        self.counts[key] = self.counts.get(key, 0) + len(shots)
        if self.base == "single":  # the value of the last shot
            last = int(shots.max())
            if key not in self.values or self.values[key][0] < last:
                self.values[key] = (last, value)
        elif self.base == "list":
            self.values.setdefault(key, []).extend((int(s), value) for s in shots)
        else:
            weighted = value * len(shots) if len(shots) > 1 else value
            if key in self.values:
                self.values[key] = self.values[key] + weighted
            else:
                self.values[key] = weighted.copy() if isinstance(weighted, np.ndarray) else weighted

    def result(self) -> Any:
        if not self.values:
            return None
        out = {}
        for key, value in self.values.items():
            if self.base == "average":
                value = value / self.counts[key]
            if self.base == "single":
                value = value[1]
            if self.base == "list":
                out[key] = [self.finish(v) for _, v in sorted(value, key=lambda item: item[0])]
            else:
                out[key] = self.finish(value)
        return out if self.conditional else out[None]


#: The shots of a save that every shot sees alike (a circuit's static path): recorded once.
STATIC_SHOTS = np.zeros(1, dtype=np.int64)


def pauli_sum_value(kind: str, params: Sequence[Any], paulis: Sequence[float]) -> Any:
    """An ``expectation_value`` save's value (the terms' sum) or an ``expectation_value_variance``
    one's (``[mean, variance]``) from each term's ``<P>``; ``params`` are its
    ``(label, coefficient in O, coefficient in O @ O)`` terms."""
    mean = float(sum(term[1] * p for term, p in zip(params, paulis)))
    if kind == "expectation_value":
        return mean
    return np.array([mean, float(sum(term[2] * p for term, p in zip(params, paulis))) - mean * mean])


class Saves:
    """The save records of one run on one rank (``shard``: where ``save`` computes values; None
    for the tableau, the density matrix and the chain, which compute theirs and ``record`` them)."""

    def __init__(self, shard: Optional[Shard], zero_threshold: float = CHOP_THRESHOLD):
        self.shard = shard
        self.records: dict[str, SaveRecord] = {}
        #: Entries at or below it are left out of saved dicts (Aer's zero_threshold).
        self.zero_threshold = zero_threshold

    def _record(self, label: str, subtype: str, kind: str) -> SaveRecord:
        threshold = self.zero_threshold
        finish = (lambda p: probabilities_dict(p, threshold)) if kind == "probabilities_dict" else None
        record = self.records[label] = SaveRecord(subtype, finish, kind)
        return record

    def state(self) -> dict:
        """What has been recorded so far, as plain data (a checkpoint keeps it)."""
        return {label: (r.subtype, r.kind, r.values, r.counts) for label, r in self.records.items()}

    def restore(self, state: dict) -> None:
        """Go on from ``state()`` (a resumed checkpoint)."""
        for label, (subtype, kind, values, counts) in state.items():
            record = self._record(label, subtype, kind)
            record.values, record.counts = values, counts

    def save(self, step: SaveStep, shots: np.ndarray, memory: str) -> None:
        """Compute a saved value (collective) and record it for ``shots``, whose classical memory is ``memory``."""
        self.record(step.label, step.subtype, step.kind, save_value(self.shard, step, self.zero_threshold),
                    shots, memory)

    def record(self, label: str, subtype: str, kind: str, value: Any, shots: np.ndarray = STATIC_SHOTS,
               memory: str = hex(0)) -> None:
        """Record ``value`` of a save for ``shots`` (default: every shot alike), whose classical memory is ``memory``."""
        record = self.records.get(label)
        if record is None:
            record = self._record(label, subtype, kind)
        elif record.subtype != subtype or record.kind != kind:
            raise InvalidInputError(
                f"two saves share the label {label!r} with different kinds; give each save its own label"
            )
        record.add(value, memory, shots)

    def results(self) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
        """(label -> value, label -> (kind, subtype)) for the saves that produced a value here."""
        data: dict[str, Any] = {}
        kinds: dict[str, tuple[str, str]] = {}
        for label, record in self.records.items():
            value = record.result()
            if value is not None:
                data[label] = value
                kinds[label] = (record.kind, record.subtype)
        return data, kinds


def save_value(shard: Shard, step: SaveStep, zero_threshold: float = CHOP_THRESHOLD) -> Any:
    """The value one save step reads now (collective); None on ranks that do not hold it."""
    kind = step.kind
    if kind == "statevector":
        return gather_statevector(shard, step.layout)
    if kind == "statevector_dict":
        return statevector_dict(shard, step.layout, zero_threshold)
    if kind in ("probabilities", "probabilities_dict"):
        return probabilities(shard, step.qubits, step.layout)
    if kind in ("amplitudes", "amplitudes_sq"):
        value = amplitudes(shard, step.qubits, step.layout, step.params)
        if kind == "amplitudes_sq":
            value = value.real ** 2 + value.imag ** 2
        return value
    if kind in ("expectation_value", "expectation_value_variance"):
        paulis = pauli_expectations(shard, step.qubits, step.layout, [t[0] for t in step.params])
        mean = float(sum(t[1] * p for t, p in zip(step.params, paulis)))
        if kind == "expectation_value":
            return mean
        square = float(sum(t[2] * p for t, p in zip(step.params, paulis)))
        return np.array([mean, square - mean * mean])
    if kind == "density_matrix":
        return density_matrix(shard, step.qubits, step.layout)
    raise InternalError(f"save kind {kind!r} reached the engine unsupported")


def probabilities_dict(probabilities: np.ndarray, threshold: float = CHOP_THRESHOLD) -> dict[str, float]:
    return {hex(int(i)): float(probabilities[i]) for i in np.nonzero(probabilities > threshold)[0]}


def reduce(shard: Shard, array: np.ndarray) -> Optional[np.ndarray]:
    """Sum of one array per rank, added in rank order; on rank 0 only when large."""
    collective = shard.collective
    if array.size <= SMALL_ARRAY:
        parts = collective.allgather(array)
    else:
        collective.agree()
        parts = collective.gather_to_root(array)
        if parts is None:
            return None
    total = np.zeros_like(parts[0])
    for part in parts:
        total += part
    return total


def probabilities(shard: Shard, qubits: Sequence[int], layout: Sequence[int]) -> Optional[np.ndarray]:
    """Marginal probabilities of ``qubits`` (``qubits[0]`` lowest), reduced across ranks."""
    k = len(qubits)
    num_local = shard.num_local
    local_js = [j for j, q in enumerate(qubits) if layout[q] < num_local]
    fixed = 0
    for j, q in enumerate(qubits):
        if layout[q] >= num_local:
            fixed |= shard.bit_of_rank(layout[q]) << j
    marginal = kernels.marginal_probabilities(shard.array, [layout[qubits[j]] for j in local_js])
    t = np.arange(1 << len(local_js), dtype=np.int64)
    index = np.full_like(t, fixed)
    for i, j in enumerate(local_js):
        index |= ((t >> i) & 1) << j
    full = np.zeros(1 << k, dtype=np.float64)
    full[index] = marginal
    return reduce(shard, full)


def amplitudes(shard: Shard, qubits: Sequence[int], layout: Sequence[int], states: Sequence[int]) -> np.ndarray:
    """Amplitudes of basis states of ``qubits`` (the other qubits 0), on every rank."""
    states = np.asarray(states, dtype=np.int64)
    physical = np.zeros_like(states)
    for j, q in enumerate(qubits):
        physical |= ((states >> j) & 1) << layout[q]
    mine = (physical >> shard.num_local) == shard.rank
    values = np.zeros(len(states), dtype=np.complex128)
    local_mask = (1 << shard.num_local) - 1
    values[mine] = shard.array[physical[mine] & local_mask]
    parts = shard.collective.allgather(values)
    total = np.zeros(len(states), dtype=np.complex128)
    for part in parts:
        total += part
    return total


def pauli_masks(label: str, positions: Sequence[int]) -> tuple[int, int, int]:
    """(X mask, Z mask, number of Ys) of a Pauli label whose letter ``label[-1 - j]`` acts on bit
    ``positions[j]`` (Y counts in both masks)."""
    x = z = ny = 0
    for j, position in enumerate(positions):
        c = label[len(label) - 1 - j]
        if c in "XY":
            x |= 1 << position
        if c in "ZY":
            z |= 1 << position
        ny += c == "Y"
    return x, z, ny


def pauli_expectations(shard: Shard, qubits: Sequence[int], layout: Sequence[int], labels: Sequence[str]) -> list[float]:
    """<P> for each Pauli label on ``qubits`` (label[-1 - j] acts on qubits[j]), never gathering the state.

    Terms sharing an X-mask share one product per amplitude; X-masks
    sharing their rank bits share one stream of the partner shard. Z-type
    terms read the shard alone, X/Y terms on rank bits pair this shard with
    the partner rank's, streamed block by block.
    """
    num_local = shard.num_local
    state = shard.array
    local_mask = (1 << num_local) - 1
    groups: dict[int, list[int]] = {}
    masks = []
    positions = [layout[q] for q in qubits]
    for t, label in enumerate(labels):
        masks.append(pauli_masks(label, positions))
        groups.setdefault(masks[-1][0], []).append(t)
    partial = np.zeros(len(labels), dtype=np.complex128)
    shard.collective.agree()
    size = state.shape[0]
    block = kernels.block_size(size, max(1, shard.buffer_bytes // state.dtype.itemsize))
    # One stream of the partner's shard serves every X-mask with the same
    # rank bits and the same local bits above the block.
    streams: dict[tuple[int, int], dict[int, list[int]]] = {}
    for x, terms in groups.items():
        x_local, x_rank = x & local_mask, x >> num_local
        key = (x_rank, x_local & ~(block - 1))
        streams.setdefault(key, {})[x_local & (block - 1)] = terms
    for (x_rank, x_high), by_low in sorted(streams.items()):
        sums = {x_low: np.zeros(len(terms), dtype=np.complex128) for x_low, terms in by_low.items()}
        z_local = {x_low: [masks[t][1] & local_mask for t in terms] for x_low, terms in by_low.items()}
        for offset, other in stream_partner_blocks(
            shard.collective.comm, state, shard.rank ^ x_rank, block, x_high, shard.exchange.stats
        ):
            mine = state[offset : offset + block]
            for x_low in by_low:
                sums[x_low] += kernels.pauli_block_sums(mine, other, offset, x_low, z_local[x_low])
        for x_low, terms in by_low.items():
            for k, t in enumerate(terms):
                _, z, ny = masks[t]
                sign = -1 if bin(shard.rank & (z >> num_local)).count("1") & 1 else 1
                partial[t] = sums[x_low][k] * sign * (1j ** ny)
    parts = shard.collective.allgather(partial)
    total = np.zeros(len(labels), dtype=np.complex128)
    for part in parts:
        total += part
    return [float(v.real) for v in total]


def density_matrix(shard: Shard, qubits: Sequence[int], layout: Sequence[int]) -> Optional[np.ndarray]:
    """Reduced density matrix of ``qubits`` (``qubits[0]`` lowest), never gathering the state.

    The planner has made ``qubits`` local (``plan.localiser.LOCAL_SAVE_KINDS``), so each rank's
    part is ``M @ M^H`` with ``M`` its shard arranged as (value of ``qubits``, the rest); the parts
    are added in rank order (on rank 0 only when large).
    """
    num_local = shard.num_local
    positions = [layout[q] for q in qubits]
    if any(p >= num_local for p in positions):
        raise InternalError("a density-matrix save reached the engine with a qubit on a rank bit")
    k = len(qubits)
    tensor = shard.array.reshape((2,) * num_local) if num_local else shard.array.reshape(())
    # axis a of the tensor is position num_local-1-a; rows: qubits[k-1] (most significant) .. qubits[0]
    rows = [num_local - 1 - p for p in reversed(positions)]
    rest = [a for a in range(num_local) if a not in rows]
    matrix = tensor.transpose(rows + rest).reshape(1 << k, -1).astype(np.complex128, copy=False)
    return reduce(shard, matrix @ matrix.conj().T)


def gather_statevector(shard: Shard, layout: Sequence[int]) -> Optional[np.ndarray]:
    """The full state in Qiskit's order, on rank 0 only (collective)."""
    shard.collective.agree()
    n = shard.num_qubits
    num_local = shard.num_local
    if shard.rank != 0:
        gather_shards_to_root(shard.collective.comm, shard.array, _ignore)
        return None
    out = np.empty(1 << n, dtype=shard.dtype)
    blocks = out.reshape(1 << (n - num_local), 1 << num_local)

    def place(r: int, block: np.ndarray) -> None:
        blocks[r] = block

    gather_shards_to_root(shard.collective.comm, shard.array, place)
    # the shards side by side hold bit j of the index at position layout[j]: put the bits in
    # logical order in place, as sampling does (at most two swap passes)
    for pairs in swap_rounds_to_order(list(layout)):
        kernels.swap_bits(out, pairs)
    return out


def _ignore(rank: int, block: np.ndarray) -> None:  # pragma: no cover - called on the root only
    pass


def statevector_dict(shard: Shard, layout: Sequence[int], threshold: float = CHOP_THRESHOLD) -> Optional[dict]:
    """Amplitudes above ``threshold`` in magnitude, gathered sparsely to rank 0 (collective)."""
    shard.collective.agree()
    local, values = kernels.nonzero_entries(shard.array, threshold)
    parts = shard.collective.gather_to_root((shard.logical_indices(local, layout), values))
    if parts is None:
        return None
    indices = np.concatenate([p[0] for p in parts])
    amplitudes = np.concatenate([p[1] for p in parts])
    order = np.argsort(indices, kind="stable")
    return {hex(int(indices[i])): complex(amplitudes[i]) for i in order}
