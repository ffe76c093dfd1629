"""Noisy circuits as a density matrix: Aer's ``density_matrix`` method on the sharded statevector.

The density matrix ``rho`` of ``n`` qubits is a vector of ``4**n`` amplitudes (entry ``a + 2**n * b``
holds ``rho[a, b]``), run by the statevector engine as a program on ``2n`` qubits, sharded, fused
and cache-blocked like any other: a gate ``U`` on qubits ``Q`` is ``U`` on ``Q`` and ``conj(U)`` on
``Q + n``; a quantum error (Kraus operators ``K_i``, or a mixture of unitaries, resets and Kraus
channels) is one dense gate, its superoperator ``sum_i conj(K_i) (x) K_i`` on ``Q`` and ``Q + n``; a
reset is the channel ``{|0><0|, |0><1|}``. The final measurements are sampled from the diagonal
``rho[a, a]``, so the circuit runs once for all shots where trajectories run once a shot (or a
branch). Aer's automatic method takes it for a noisy circuit whose measurements are all final
when the shots outnumber the basis states (``2**n``); ``method="density_matrix"`` always, where it
applies (``density_program`` says).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import ir
from aer_mpi.engine.saves import pauli_masks, pauli_sum_value
from aer_mpi.kernels.pauli import parities

#: Widest quantum error taken (its superoperator is a dense gate on twice its qubits: 8 at most, of
#: the kernels' 10; Aer's device models have 1- and 2-qubit errors, users' models 3-qubit ones on ccx).
MAX_ERROR_QUBITS = 4
#: The automatic method's widest circuit: 4**14 amplitudes are 4 GiB in double precision.
MAX_AUTOMATIC_QUBITS = 14

_RESET_KRAUS = (np.array([[1, 0], [0, 0]], dtype=complex), np.array([[0, 1], [0, 0]], dtype=complex))


class _NotTaken(Exception):
    """The circuit holds what the density matrix does not run here."""


def has_quantum_errors(program: ir.Program) -> bool:
    return any(isinstance(op, ir.Noise) for op in program.ops)


@dataclass(frozen=True)
class DensitySave:
    """A save of the circuit, read from the density matrix by the ``amplitudes`` save ``read`` of
    the entries ``indices`` of its vector (``save_value`` turns them into the save's value)."""

    save: ir.Save
    read: str
    indices: np.ndarray


#: The saves the density matrix answers exactly (before any measurement).
DENSITY_SAVES = ("density_matrix", "probabilities", "probabilities_dict", "amplitudes_sq", "expectation_value",
                 "expectation_value_variance")
#: Most entries of the density matrix one save reads (a reduced density matrix of many qubits).
MAX_SAVE_ENTRIES = 1 << 20


def density_program(program: ir.Program) -> Optional[tuple[ir.Program, list[tuple[int, int]], list[DensitySave]]]:
    """The ``2n``-qubit program of ``program``'s density matrix, its final (qubit, clbit)
    measurements and its saves; None when ``program`` has ops it cannot take: control flow,
    classical stores, set states, a readout error or op after a measurement of its qubit, a save
    after a measurement or of another kind than ``DENSITY_SAVES``, errors wider than
    ``MAX_ERROR_QUBITS``. Readout errors are left to the caller (``noise.defer_readout``)."""
    n = program.num_qubits
    ops: list[Any] = []
    measures: list[tuple[int, int]] = []
    measured: set[int] = set()
    saves: list[DensitySave] = []
    try:
        for op in program.ops:
            if isinstance(op, ir.Measure):
                measures.append((op.qubit, op.clbit))
                measured.add(op.qubit)
                continue
            if isinstance(op, ir.GlobalPhase):
                continue  # rho does not see it
            if isinstance(op, ir.Save):
                if op.of_method and op.kind == "statevector":
                    # save_state: the method's state, the density matrix (Aer's label "density_matrix")
                    label = "density_matrix" if op.label == "statevector" else op.label
                    op = ir.Save("density_matrix", tuple(range(n)), label, op.subtype)
                if measured or op.kind not in DENSITY_SAVES:
                    raise _NotTaken
                read = f"_aer_mpi_density_save_{len(saves)}"
                indices = _save_indices(op, n)
                saves.append(DensitySave(op, read, indices))
                ops.append(ir.Save("amplitudes", tuple(range(2 * n)), read, params=tuple(indices.ravel().tolist())))
                continue
            if isinstance(op, ir.SetState) and op.kind == "density_matrix" and not measured:
                # set_density_matrix: the vector is rho column by column (entry a + 2**n b is rho[a, b])
                ops.append(ir.SetState(tuple(range(2 * n)), np.asarray(op.state).ravel(order="F")))
                continue
            if (isinstance(op, ir.SetState) and op.kind == "statevector" and not measured
                    and tuple(op.qubits) == tuple(range(n))):
                # set_statevector (an initialize of every qubit): rho = |psi><psi|, column by column
                psi = np.asarray(op.state)
                ops.append(ir.SetState(tuple(range(2 * n)), np.outer(psi, psi.conj()).ravel(order="F")))
                continue
            if measured.intersection(_qubits(op)):
                raise _NotTaken  # a mid-circuit measurement
            ops += _doubled(op, n)
    except _NotTaken:
        return None
    return ir.Program(2 * n, 0, tuple(ops), program.name, dict(program.metadata)), measures, saves


def _doubled(op: Any, n: int) -> list[Any]:
    """``op`` on the density matrix's vector: a gate ``U`` on ``Q`` is ``U`` on ``Q`` and ``conj(U)``
    on ``Q + n``; a reset or an error its superoperator, one dense gate on ``Q`` and ``Q + n``."""
    if isinstance(op, ir.Gate):
        return [op, ir.Gate(tuple(q + n for q in op.qubits), np.conj(op.matrix), op.name)]
    if isinstance(op, ir.Diagonal):
        return [op, ir.Diagonal(tuple(q + n for q in op.qubits), np.conj(op.diag), op.name)]
    if isinstance(op, ir.Swap):
        return [op, ir.Swap(op.qubit0 + n, op.qubit1 + n)]
    if isinstance(op, (ir.Reset, ir.Noise)):
        qubits = _qubits(op)
        return [ir.Gate(qubits + tuple(q + n for q in qubits), _superop(op, qubits), "superop")]
    if isinstance(op, ir.GlobalPhase):
        return []  # rho does not see it
    raise _NotTaken


def doubled_ops(op: Any, n: int) -> Optional[list[Any]]:
    """``op`` (a gate, a swap, a global phase, a reset or a quantum error on at most
    ``MAX_ERROR_QUBITS``) as ops on the ``2n`` qubits of the density matrix's vector; None for any
    other op."""
    try:
        return _doubled(op, n)
    except _NotTaken:
        return None


def _bits_at(values: np.ndarray, positions: Sequence[int]) -> np.ndarray:
    """``values``' bits 0, 1, ... placed at ``positions``."""
    out = np.zeros_like(values)
    for t, q in enumerate(positions):
        out |= ((values >> t) & 1) << q
    return out


def _save_indices(save: ir.Save, n: int) -> np.ndarray:
    """The entries of the density matrix's vector (``a + 2**n b`` for ``rho[a, b]``) ``save`` reads."""
    everything = np.arange(1 << n, dtype=np.int64)
    if save.kind in ("probabilities", "probabilities_dict"):
        return diagonal_indices(n)
    if save.kind == "amplitudes_sq":  # rho[a, a] of each basis state of the qubits (the others 0)
        a = _bits_at(np.asarray(save.params, dtype=np.int64), save.qubits)
        return a + (a << n)
    if save.kind == "density_matrix":
        kept = list(save.qubits)
        rest = [q for q in range(n) if q not in kept]
        k = len(kept)
        if (1 << (2 * k)) << len(rest) > MAX_SAVE_ENTRIES:
            raise _NotTaken
        inside = _bits_at(np.arange(1 << k, dtype=np.int64), kept)
        outside = _bits_at(np.arange(1 << len(rest), dtype=np.int64), rest)
        rows = inside[:, None, None] | outside[None, None, :]
        columns = inside[None, :, None] | outside[None, None, :]
        return rows + (columns << n)  # [i, j, r]: rho[i r, j r]
    # expectation values: for each Pauli term, rho[a, a ^ x] for every a
    if len(save.params) << n > MAX_SAVE_ENTRIES:
        raise _NotTaken
    flips = np.array([pauli_masks(label, save.qubits)[0] for label, *_ in save.params], dtype=np.int64)
    return everything[None, :] + ((everything[None, :] ^ flips[:, None]) << n)


def save_value(save: DensitySave, entries: np.ndarray, n: int) -> Any:
    """The value of ``save`` from the entries of the density matrix it read, as the statevector's
    saves give it (``engine/saves.py``: a probabilities_dict is made from its array by the record)."""
    op = save.save
    if op.kind in ("probabilities", "probabilities_dict"):
        a = np.arange(1 << n, dtype=np.int64)
        marginal = np.zeros(1 << len(op.qubits))
        index = np.zeros_like(a)
        for t, q in enumerate(op.qubits):
            index |= ((a >> q) & 1) << t
        np.add.at(marginal, index, np.clip(np.real(entries), 0.0, None))
        return marginal
    if op.kind == "amplitudes_sq":
        return np.clip(np.real(np.asarray(entries)), 0.0, None)
    if op.kind == "density_matrix":
        return np.asarray(entries).reshape(save.indices.shape).sum(axis=2)
    a = np.arange(1 << n, dtype=np.int64)
    values = np.asarray(entries).reshape(len(op.params), 1 << n)
    paulis = []
    for (label, *_), row in zip(op.params, values):
        _, z, ys = pauli_masks(label, op.qubits)
        signs = 1 - 2 * parities(a, [z])[0].astype(np.int64)
        paulis.append(float(np.real((1j ** ys) * np.sum(signs * row))))
    return pauli_sum_value(op.kind, op.params, paulis)


def _qubits(op: Any) -> tuple[int, ...]:
    if isinstance(op, ir.Reset):
        return (op.qubit,)
    if isinstance(op, ir.Swap):
        return (op.qubit0, op.qubit1)
    if isinstance(op, (ir.Gate, ir.Diagonal, ir.Noise)):
        return tuple(op.qubits)
    raise _NotTaken


#: Superoperators by the content of their op: a device's noise model gives the same error to every
#: use of a gate on the same qubits (each a noise op of its own), often mixtures of dozens of branches.
_SUPEROPS: dict[tuple, np.ndarray] = {}
_MAX_CACHED = 4096


def _superop(op: Any, qubits: tuple[int, ...]) -> np.ndarray:
    """The superoperator of ``op`` on ``qubits`` (ket bits low, bra bits high)."""
    if len(qubits) > MAX_ERROR_QUBITS:
        raise _NotTaken
    key = (qubits, _content(op))
    found = _SUPEROPS.get(key)
    if found is None:
        if len(_SUPEROPS) >= _MAX_CACHED:
            _SUPEROPS.clear()
        found = _SUPEROPS[key] = _superop_of_kraus(np.array(_kraus(op, qubits)))
        found.setflags(write=False)  # shared by every use of the error
    return found


def _content(op: Any) -> tuple:
    """What defines ``op``'s action, hashable."""
    if isinstance(op, ir.Noise):
        return ("noise", tuple(op.qubits), tuple(op.probabilities),
                tuple(tuple(_content(inner) for inner in branch) for branch in op.branches),
                tuple(np.asarray(K, dtype=complex).tobytes() for K in op.kraus))
    if isinstance(op, ir.Gate):
        return ("gate", tuple(op.qubits), np.asarray(op.matrix, dtype=complex).tobytes())
    if isinstance(op, ir.Diagonal):
        return ("diagonal", tuple(op.qubits), np.asarray(op.diag, dtype=complex).tobytes())
    if isinstance(op, ir.Reset):
        return ("reset", op.qubit)
    if isinstance(op, ir.Swap):
        return ("swap", op.qubit0, op.qubit1)
    if isinstance(op, ir.GlobalPhase):
        return ("phase",)
    raise _NotTaken


def _superop_of_kraus(kraus: np.ndarray) -> np.ndarray:
    d = kraus.shape[1]
    # (K rho K^dagger)[r, c] = sum K[r, r'] rho[r', c'] conj(K[c, c']): the bra index is the high one
    return np.einsum("mcC,mrR->crCR", np.conj(kraus), kraus).reshape(d * d, d * d)


def _kraus(op: Any, qubits: tuple[int, ...]) -> list[np.ndarray]:
    """Kraus operators of ``op`` as matrices on ``qubits`` (a mixture's weighted by sqrt(p))."""
    if isinstance(op, ir.GlobalPhase):
        return [np.eye(1 << len(qubits), dtype=complex)]  # rho does not see it
    if not set(_qubits(op)) <= set(qubits):
        raise _NotTaken
    if isinstance(op, ir.Reset):
        return [_embed(K, (op.qubit,), qubits) for K in _RESET_KRAUS]
    if isinstance(op, (ir.Gate, ir.Diagonal, ir.Swap)):
        return [_embed(_matrix(op), _qubits(op), qubits)]
    if isinstance(op, ir.Noise):
        if op.kraus:
            return [_embed(np.asarray(K, dtype=complex), tuple(op.qubits), qubits) for K in op.kraus]
        out = []
        for p, branch in zip(op.probabilities, op.branches):
            ks = [np.eye(1 << len(qubits), dtype=complex)]
            for inner in branch:  # the first applied first
                ks = [K2 @ K1 for K1 in ks for K2 in _kraus(inner, qubits)]
            out += [np.sqrt(p) * K for K in ks]
        return out
    raise _NotTaken


def _matrix(op: Any) -> np.ndarray:
    if isinstance(op, ir.Gate):
        return np.asarray(op.matrix, dtype=complex)
    if isinstance(op, ir.Diagonal):
        return np.diag(np.asarray(op.diag, dtype=complex))
    return np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=complex)  # Swap


def _embed(matrix: np.ndarray, on: tuple[int, ...], qubits: tuple[int, ...]) -> np.ndarray:
    """``matrix`` on the qubits ``on`` (first lowest), as a matrix on ``qubits`` (first lowest)."""
    if tuple(on) == tuple(qubits):
        return matrix
    inside, same_rest = _embedding(tuple(qubits.index(q) for q in on), len(qubits))
    return matrix[np.ix_(inside, inside)] * same_rest


_EMBEDDINGS: dict[tuple[tuple[int, ...], int], tuple[np.ndarray, np.ndarray]] = {}


def _embedding(where: tuple[int, ...], k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each basis state of ``k`` qubits: its bits at ``where`` (as an index), and which pairs of
    states agree on the other bits."""
    found = _EMBEDDINGS.get((where, k))
    if found is None:
        i = np.arange(1 << k)
        inside = sum(((i >> w) & 1) << t for t, w in enumerate(where))
        rest_mask = ((1 << k) - 1) & ~sum(1 << w for w in where)
        rest = i & rest_mask
        found = _EMBEDDINGS[(where, k)] = (inside, rest[:, None] == rest[None, :])
    return found


def diagonal_indices(num_qubits: int) -> np.ndarray:
    """The indices of ``rho[a, a]`` in the vector of ``num_qubits`` qubits' density matrix."""
    return np.arange(1 << num_qubits, dtype=np.int64) * ((1 << num_qubits) + 1)


def sample_diagonal(diagonal: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """``shots`` basis states drawn from the probabilities ``diagonal`` (rounding's negatives cut)."""
    p = np.clip(np.real(diagonal), 0.0, None)
    cumulative = np.cumsum(p)
    draws = np.random.default_rng(seed).random(shots) * cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, draws, side="right"), len(p) - 1).astype(np.int64)
