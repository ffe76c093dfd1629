"""Clifford circuits on a stabilizer tableau: Aer's ``stabilizer`` method, for states no memory holds.

Promise of this module: ``is_clifford(program)`` says whether a program is
straight-line Clifford gates with final measurements (and expectation-value
saves) only (no noise, resets or conditionals); ``run_clifford(program,
shots, seed)`` then gives each shot's classical register, sampled exactly, in
time and memory polynomial in the qubits: a 1000-qubit GHZ state samples in
well under a second. ``Tableau`` (with destabilizers, it also measures one
qubit and gives Pauli expectation values) is the one tableau of the engine:
engine/stabilizer.py runs its reference runs and saves on it.

How: the state is kept as its n stabilizer generators, each a signed
Pauli string (``x``/``z`` bits per qubit, a sign bit; ``x = z = 1`` is Y,
so every string is Hermitian). A gate on k <= ``MAX_GATE_QUBITS`` qubits
is Clifford when it maps every k-qubit Pauli to a signed Pauli; its table
(Pauli index -> image index and sign, computed once per distinct matrix from
the matrix itself, so any Clifford unitary qualifies, not only named gates)
updates every generator at once. Measuring every qubit of a stabilizer
state gives outcomes uniformly spread over an affine subspace of GF(2)^n:
Gaussian elimination on the generators' X parts leaves the subgroup of
Z-only stabilizers, whose signs are the parity constraints of the outcomes;
a particular solution plus uniform random combinations of the null space's
basis are the shots. The same seed gives the same shots on any number of
ranks: every rank computes them alone, with no communication.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import InvalidInputError
from aer_mpi.engine.sampling import INT64_CLBITS

#: Widest gate recognised as Clifford (a table of 4**k entries is computed per distinct matrix).
MAX_GATE_QUBITS = 4
#: Shots sampled at once (a shots x qubits bit matrix).
SHOT_BLOCK = 1 << 14
_TOLERANCE = 1e-8

_SINGLE = (
    np.eye(2, dtype=complex),
    np.array([[0, 1], [1, 0]], dtype=complex),  # x
    np.array([[1, 0], [0, -1]], dtype=complex),  # z
    np.array([[0, -1j], [1j, 0]], dtype=complex),  # x and z: Y
)


@functools.lru_cache(maxsize=None)
def _paulis(k: int) -> np.ndarray:
    """All 4**k Pauli matrices; index bits ``2j`` and ``2j + 1`` are qubit j's x and z (matrix bit j)."""
    out = np.empty((4**k, 2**k, 2**k), dtype=complex)
    for index in range(4**k):
        matrix = np.ones((1, 1), dtype=complex)
        for j in reversed(range(k)):  # qubit k-1 is the leftmost factor: matrix bit j is qubit j
            matrix = np.kron(matrix, _SINGLE[(index >> (2 * j)) & 3])
        out[index] = matrix
    return out


def _x_mask(index: int, k: int) -> int:
    return sum(((index >> (2 * j)) & 1) << j for j in range(k))


@functools.lru_cache(maxsize=None)
def _indices_by_x_mask(k: int) -> dict[int, np.ndarray]:
    """Pauli indices grouped by the basis-state flip (x mask) of their matrices."""
    groups: dict[int, list[int]] = {}
    for index in range(4**k):
        groups.setdefault(_x_mask(index, k), []).append(index)
    return {mask: np.array(v) for mask, v in groups.items()}


def _as_signed_pauli(matrix: np.ndarray, k: int, any_phase: bool = False) -> Optional[tuple[int, int]]:
    """``(index, sign bit)`` with ``matrix == (-1)**sign * Pauli(index)``, or None when it is not one
    (with ``any_phase``: ``matrix == phase * Pauli(index)``, sign bit 0)."""
    column = int(np.argmax(np.abs(matrix[0])))  # a Pauli flips basis state 0 to its x mask
    candidates = _indices_by_x_mask(k)[column]
    overlaps = np.einsum("pij,ji->p", _paulis(k)[candidates], matrix) / (1 << k)  # tr(P M) / 2**k
    best = int(np.argmax(np.abs(overlaps)))
    value = overlaps[best]
    if abs(abs(value) - 1) > _TOLERANCE or (not any_phase and abs(value.imag) > _TOLERANCE):
        return None
    return int(candidates[best]), 0 if any_phase else int(value.real < 0)


def pauli_of(op) -> Optional[tuple[tuple[int, ...], tuple[int, ...]]]:
    """A gate that is a Pauli up to a phase (x, y, z, a Pauli noise branch): its x and z bits on
    ``op.qubits``; None for any other op."""
    if not isinstance(op, (ir.Gate, ir.Diagonal)) or len(op.qubits) > MAX_GATE_QUBITS:
        return None
    if isinstance(op, ir.Gate):
        matrix = np.asarray(op.matrix, dtype=complex)
        return _pauli_bits(matrix.shape[0], matrix.tobytes(), False)
    diag = np.asarray(op.diag, dtype=complex)
    return _pauli_bits(len(diag), diag.tobytes(), True)


@functools.lru_cache(maxsize=4096)
def _pauli_bits(dim: int, data: bytes, diagonal: bool) -> Optional[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(a noise model repeats a few matrices in thousands of ops: each is tested once)"""
    k = dim.bit_length() - 1
    values = np.frombuffer(data, dtype=complex)
    matrix = np.diag(values) if diagonal else values.reshape(dim, dim)
    found = _as_signed_pauli(matrix, k, any_phase=True)
    if found is None:
        return None
    index = found[0]
    return (tuple((index >> (2 * j)) & 1 for j in range(k)), tuple((index >> (2 * j + 1)) & 1 for j in range(k)))


def pauli_table(matrix: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """For a Clifford unitary on k qubits: image index and sign bit of every k-qubit Pauli under
    ``P -> U P U^dagger``; None when ``matrix`` is not Clifford (or wider than ``MAX_GATE_QUBITS``)."""
    matrix = np.asarray(matrix, dtype=complex)
    return _pauli_table(matrix.shape[0], matrix.tobytes())


@functools.lru_cache(maxsize=4096)
def _pauli_table(dim: int, data: bytes) -> Optional[tuple[np.ndarray, np.ndarray]]:
    k = dim.bit_length() - 1
    if k > MAX_GATE_QUBITS or dim != 1 << k:
        return None
    unitary = np.frombuffer(data, dtype=complex).reshape(dim, dim)
    paulis = _paulis(k)
    # the generators first: a non-Clifford gate (a T, a small rotation) is turned down after 2k products
    order = [1 << (2 * j) for j in range(k)] + [2 << (2 * j) for j in range(k)]
    order += [i for i in range(4**k) if i not in set(order)]
    images = np.zeros(4**k, dtype=np.int64)
    signs = np.zeros(4**k, dtype=np.uint8)
    for index in order:
        found = _as_signed_pauli(unitary @ paulis[index] @ unitary.conj().T, k)
        if found is None:
            return None
        images[index], signs[index] = found
    return images, signs


def op_table(op) -> Optional[tuple[np.ndarray, np.ndarray]]:
    if len(op.qubits) > MAX_GATE_QUBITS:
        return None
    matrix = op.matrix if isinstance(op, ir.Gate) else np.diag(np.asarray(op.diag, dtype=complex))
    return pauli_table(matrix)


#: Saves of the tableau itself, which only it answers (Aer's ``save_stabilizer``, ``save_clifford``).
TABLEAU_STATE_SAVES = ("stabilizer", "clifford")
#: Saves the tableau computes (Aer's stabilizer method has these; EstimatorV2 uses the first two).
#: Saves of the measurement distribution, from the outcomes' affine space (``Tableau.outcome_space``).
TABLEAU_PROBABILITY_SAVES = ("probabilities", "probabilities_dict", "amplitudes_sq")
TABLEAU_SAVES = ("expectation_value", "expectation_value_variance") + TABLEAU_STATE_SAVES + TABLEAU_PROBABILITY_SAVES
#: Widest set of qubits whose probabilities (2**k of them) the tableau writes out.
MAX_PROBABILITY_QUBITS = 24


def is_tableau_save(op) -> bool:
    """A save of the tableau itself: ``save_stabilizer``, ``save_clifford``, or ``save_state`` (the
    method's state, which the tableau holds as a stabilizer state)."""
    return isinstance(op, ir.Save) and (op.kind in TABLEAU_STATE_SAVES or (op.of_method and op.kind == "statevector"))


def is_clifford(program: ir.Program) -> bool:
    """Straight-line Clifford gates (any matrix that maps Paulis to Paulis, up to 4 qubits), final
    measurements and expectation-value saves only: what ``run_clifford`` simulates."""
    if ir.is_dynamic(program):
        return False
    for op in program.ops:
        if isinstance(op, (ir.Gate, ir.Diagonal)):
            if op_table(op) is None:
                return False
        elif isinstance(op, ir.Save):
            if op.kind not in TABLEAU_SAVES and not is_tableau_save(op):
                return False
        elif isinstance(op, ir.SetState):
            if op.kind != "stabilizer":
                return False
        elif not isinstance(op, (ir.Swap, ir.GlobalPhase, ir.Measure)):
            return False
    return True


class Tableau:
    """The stabilizer generators of an n-qubit state from |0...0>, rows packed 64 qubits to a word.

    With ``destabilizers`` (Aaronson and Gottesman), rows 0..n-1 are the destabilizers and n..2n-1
    the stabilizers, which ``measure`` and ``expectation`` need; without, the n rows are the
    stabilizers, all that sampling final measurements (``z_constraints``) needs.
    """

    def __init__(self, num_qubits: int, destabilizers: bool = False):
        n = num_qubits
        self.n = n
        self.first = n if destabilizers else 0  # the first stabilizer row
        rows = self.first + n
        words = max(1, -(-n // 64))
        self.x = np.zeros((rows, words), dtype=np.uint64)
        self.z = np.zeros((rows, words), dtype=np.uint64)
        self.sign = np.zeros(rows, dtype=np.int64)
        for q in range(n):
            word, bit = divmod(q, 64)
            if destabilizers:
                self.x[q, word] = np.uint64(1) << np.uint64(bit)
            self.z[self.first + q, word] = np.uint64(1) << np.uint64(bit)

    @staticmethod
    def column(bits: np.ndarray, q: int) -> np.ndarray:
        word, bit = divmod(q, 64)
        return ((bits[:, word] >> np.uint64(bit)) & np.uint64(1)).astype(np.int64)

    @staticmethod
    def set_column(bits: np.ndarray, q: int, values: np.ndarray) -> None:
        word, bit = divmod(q, 64)
        shift = np.uint64(bit)
        bits[:, word] = (bits[:, word] & ~(np.uint64(1) << shift)) | (values.astype(np.uint64) << shift)

    def apply(self, qubits: tuple[int, ...], table: tuple[np.ndarray, np.ndarray]) -> None:
        images, signs = table
        index = np.zeros(len(self.sign), dtype=np.int64)
        for j, q in enumerate(qubits):
            index |= (self.column(self.x, q) << (2 * j)) | (self.column(self.z, q) << (2 * j + 1))
        image = images[index]
        self.sign ^= signs[index]
        for j, q in enumerate(qubits):
            self.set_column(self.x, q, (image >> (2 * j)) & 1)
            self.set_column(self.z, q, (image >> (2 * j + 1)) & 1)

    def apply_pauli(self, pauli: dict[int, tuple[int, int]]) -> None:
        """Multiply the state by a Pauli (qubit -> (x, z)): the rows it anticommutes with change sign."""
        anti = np.zeros(len(self.sign), dtype=np.int64)
        for q, (px, pz) in pauli.items():
            anti ^= (self.column(self.x, q) & pz) ^ (self.column(self.z, q) & px)
        self.sign ^= anti

    def swap(self, a: int, b: int) -> None:
        for bits in (self.x, self.z):
            column_a, column_b = self.column(bits, a), self.column(bits, b)
            self.set_column(bits, a, column_b)
            self.set_column(bits, b, column_a)

    @classmethod
    def from_symplectic(cls, table: np.ndarray, destabilizers: bool = False) -> "Tableau":
        """The state of Qiskit's Clifford tableau ``table`` (``symplectic``'s layout; Aer's
        ``set_stabilizer``): its stabilizer rows, and with ``destabilizers`` its destabilizer rows."""
        n = (table.shape[1] - 1) // 2
        state = cls(n, destabilizers)
        rows = table if destabilizers else table[n:]
        words = state.x.shape[1]

        def packed(bits: np.ndarray) -> np.ndarray:
            padded = np.zeros((len(bits), 64 * words), dtype=np.uint8)
            padded[:, :n] = bits
            return np.packbits(padded, axis=1, bitorder="little").view(np.uint64).copy()

        state.x = packed(rows[:, :n])
        state.z = packed(rows[:, n:2 * n])
        state.sign = rows[:, 2 * n].astype(np.int64)
        return state

    def symplectic(self) -> np.ndarray:
        """Qiskit's Clifford tableau of the state (needs the destabilizers): ``(2n, 2n + 1)`` bools,
        rows the destabilizers then the stabilizers, columns the x bits, the z bits and the sign
        (``qiskit.quantum_info.Clifford(table)``; x = z = 1 is a Y, as here)."""
        n = self.n

        def unpacked(bits: np.ndarray) -> np.ndarray:
            return np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)

        return np.hstack([unpacked(self.x), unpacked(self.z), (self.sign & 1).astype(bool)[:, None]])

    def measure(self, q: int) -> int:
        """Measure Z on qubit q (needs the destabilizers); a random outcome is taken to be 0."""
        n = self.n
        xq = self.column(self.x, q)
        random_rows = np.nonzero(xq[n:])[0]
        if len(random_rows):
            pivot = n + int(random_rows[0])
            others = np.nonzero(xq)[0]
            others = others[others != pivot]
            if len(others):
                # destabilizer rows may pick up an imaginary phase here: their signs are never read
                self.sign[others] = product_signs(self.x[others], self.z[others], self.sign[others],
                                                  self.x[pivot], self.z[pivot], self.sign[pivot])
                self.x[others] ^= self.x[pivot]
                self.z[others] ^= self.z[pivot]
            destabilizer = pivot - n
            self.x[destabilizer], self.z[destabilizer] = self.x[pivot], self.z[pivot]
            self.sign[destabilizer] = self.sign[pivot]
            self.x[pivot] = 0
            self.z[pivot] = 0
            word, bit = divmod(q, 64)
            self.z[pivot, word] = np.uint64(1) << np.uint64(bit)
            self.sign[pivot] = 0
            return 0
        # deterministic: +-Z_q is the product of the stabilizers whose destabilizers anticommute with it
        rows = n + np.nonzero(xq[:n])[0]
        return _product_sign(self.x[rows], self.z[rows], self.sign[rows])

    def expectation(self, label: str, qubits: tuple[int, ...]) -> int:
        """<P> (needs the destabilizers) for a Pauli label on ``qubits`` (``label[-1 - j]`` acts on
        ``qubits[j]``): +1, -1 or 0."""
        px = np.zeros(self.x.shape[1], dtype=np.uint64)
        pz = np.zeros_like(px)
        for j, q in enumerate(qubits):
            c = label[len(label) - 1 - j]
            word, bit = divmod(q, 64)
            if c in "XY":
                px[word] |= np.uint64(1) << np.uint64(bit)
            if c in "ZY":
                pz[word] |= np.uint64(1) << np.uint64(bit)
        anti = (popcounts(self.x & pz) + popcounts(self.z & px)) & 1
        n = self.n
        if anti[n:].any():  # it anticommutes with a stabilizer
            return 0
        # +-P is the product of the stabilizers whose destabilizers anticommute with it
        rows = n + np.nonzero(anti[:n])[0]
        return -1 if _product_sign(self.x[rows], self.z[rows], self.sign[rows]) else 1

    def z_constraints(self) -> tuple[np.ndarray, np.ndarray]:
        """The Z-only stabilizers ``(z bits, sign bits)``: each says ``z . outcome = sign`` (mod 2).

        Gaussian elimination on the X parts, the rows packed 64 qubits to a word: 0.15 s for a
        1000-qubit tableau with no structure (12 random layers of H or S and CX), 8 s unpacked."""
        n = self.n
        x, z = self.x[self.first:].copy(), self.z[self.first:].copy()
        sign = self.sign[self.first:].copy()
        free = np.ones(len(sign), dtype=bool)  # rows not yet a pivot
        for column in range(n):
            word, bit = divmod(column, 64)
            rows = np.nonzero(free & (((x[:, word] >> np.uint64(bit)) & np.uint64(1)) == 1))[0]
            if not len(rows):
                continue
            pivot = rows[0]
            free[pivot] = False
            others = rows[1:]
            if len(others):
                sign[others] = product_signs(x[others], z[others], sign[others], x[pivot], z[pivot], sign[pivot])
                x[others] ^= x[pivot]
                z[others] ^= z[pivot]
        bits = np.unpackbits(z[free].view(np.uint8), axis=1, bitorder="little")[:, :n]
        return bits, sign[free].astype(np.uint8)


def _product_sign(x: np.ndarray, z: np.ndarray, sign: np.ndarray) -> int:
    """Sign bit of the product of commuting rows, paired up level by level (log2 of the rows' count)."""
    while len(sign) > 1:
        half = len(sign) // 2
        a, b = slice(0, 2 * half, 2), slice(1, 2 * half, 2)
        paired = product_signs(x[a], z[a], sign[a], x[b], z[b], sign[b])
        rest = slice(2 * half, len(sign))
        x = np.concatenate([x[a] ^ x[b], x[rest]])
        z = np.concatenate([z[a] ^ z[b], z[rest]])
        sign = np.concatenate([paired, sign[rest]])
    return int(sign[0]) if len(sign) else 0


def popcounts(words: np.ndarray) -> np.ndarray:
    """Set bits per row of a 2-d uint64 array."""
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    return _popcounts_unpacked(words)


def _popcounts_unpacked(words: np.ndarray) -> np.ndarray:
    """``popcounts`` for numpy 1 (no ``bitwise_count``)."""
    return np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=1).sum(axis=1, dtype=np.int64)


def product_signs(x1, z1, s1, x2, z2, s2) -> np.ndarray:
    """Sign bits of the rows ``(x1, z1, s1)`` times the row ``(x2, z2, s2)`` (packed; x = z = 1 is Y).
    Per qubit the product of two Paulis adds a power of i (Aaronson and Gottesman's g): +1 for
    X.Y, Y.Z, Z.X and -1 for X.Z, Y.X, Z.Y; commuting rows leave a real sign."""
    xo, yo, zo = x1 & ~z1, x1 & z1, ~x1 & z1
    xp, yp, zp = x2 & ~z2, x2 & z2, ~x2 & z2
    plus = (xo & yp) | (yo & zp) | (zo & xp)
    minus = (xo & zp) | (yo & xp) | (zo & yp)
    power = (2 * s1 + 2 * s2 + popcounts(plus) - popcounts(minus)) % 4
    return power // 2


def outcome_space(state: "Tableau", qubits: tuple[int, ...]) -> tuple[int, list[int]]:
    """The outcomes of measuring ``qubits`` (bit j of an outcome: ``qubits[j]``): uniformly distributed
    over ``{offset ^ (any XOR of masks)}``, ``2**len(masks)`` outcomes (a stabilizer state's outcomes
    are uniform over an affine space, and so is their image on some of the qubits)."""
    constraints, rhs = state.z_constraints()
    particular, basis = _affine_solutions(constraints, rhs, state.n)
    weights = [1 << j for j in range(len(qubits))]
    offset = sum(w for w, q in zip(weights, qubits) if particular[q])
    pivots: dict[int, int] = {}  # a GF(2) basis of the image, each mask reduced by the earlier pivots
    for row in basis:
        mask = sum(w for w, q in zip(weights, qubits) if row[q])
        for bit, pivot_mask in pivots.items():
            if mask & bit:
                mask ^= pivot_mask
        if mask:
            low = mask & -mask
            for bit in list(pivots):
                if pivots[bit] & low:
                    pivots[bit] ^= mask
            pivots[low] = mask
    return offset, list(pivots.values())


def outcome_probabilities(state: "Tableau", qubits: tuple[int, ...]) -> np.ndarray:
    """The probabilities of measuring ``qubits`` (Qiskit's order: bit j of the index is ``qubits[j]``)."""
    if len(qubits) > MAX_PROBABILITY_QUBITS:
        raise InvalidInputError(f"the stabilizer method writes out the probabilities of at most "
                                f"{MAX_PROBABILITY_QUBITS} qubits ({len(qubits)} asked): save fewer qubits")
    offset, masks = outcome_space(state, qubits)
    outcomes = np.array([offset], dtype=np.int64)
    for mask in masks:
        outcomes = np.concatenate([outcomes, outcomes ^ mask])
    probabilities = np.zeros(1 << len(qubits))
    probabilities[outcomes] = 1.0 / len(outcomes)
    return probabilities


def outcome_probability(state: "Tableau", qubits: tuple[int, ...], outcomes: Sequence[int]) -> np.ndarray:
    """The probability of each outcome of ``qubits`` in ``outcomes`` (any number of qubits)."""
    offset, masks = outcome_space(state, qubits)
    pivots = [mask & -mask for mask in masks]

    def reachable(outcome: int) -> bool:
        rest = int(outcome) ^ offset
        for pivot, mask in zip(pivots, masks):
            if rest & pivot:
                rest ^= mask
        return rest == 0

    return np.array([2.0 ** -len(masks) if reachable(o) else 0.0 for o in outcomes])


def _affine_solutions(constraints: np.ndarray, rhs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A solution of ``constraints . v = rhs`` over GF(2) and a basis of the null space (rows)."""
    a = constraints.astype(bool).copy()
    b = rhs.astype(bool).copy()
    pivots = []
    row = 0
    for column in range(n):
        if row == len(a):
            break
        hits = np.nonzero(a[row:, column])[0]
        if not len(hits):
            continue
        chosen = row + hits[0]
        if chosen != row:
            a[[row, chosen]] = a[[chosen, row]]
            b[[row, chosen]] = b[[chosen, row]]
        clear = np.nonzero(a[:, column])[0]
        clear = clear[clear != row]
        a[clear] ^= a[row]
        b[clear] ^= b[row]
        pivots.append(column)
        row += 1
    particular = np.zeros(n, dtype=np.uint8)
    particular[pivots] = b[: len(pivots)]
    free_columns = [c for c in range(n) if c not in set(pivots)]
    basis = np.zeros((len(free_columns), n), dtype=np.uint8)
    for i, column in enumerate(free_columns):
        basis[i, column] = 1
        basis[i, pivots] = a[: len(pivots), column]
    return particular, basis


def register_values(clbits: np.ndarray, width: int) -> np.ndarray:
    """Each shot's classical register (clbit 0 lowest) from a clbits x shots bit matrix: int64, or
    Python ints past 63 clbits."""
    count = clbits.shape[1]
    if width <= INT64_CLBITS:
        values = np.zeros(count, dtype=np.int64)
        for c in range(width):
            values |= clbits[c].astype(np.int64) << c
        return values
    packed = np.packbits(clbits[width - 1::-1].T, axis=1)  # most significant clbit first
    pad = (-width) % 8
    values = np.empty(count, dtype=object)
    values[:] = [int.from_bytes(row.tobytes(), "big") >> pad for row in packed]
    return values


def run_clifford(program: ir.Program, shots: int, seed: int, final: Optional[Tableau] = None) -> np.ndarray:
    """Each shot's classical register (``program`` passed ``is_clifford``): int64, or Python ints past
    63 clbits. ``final``: the program's final tableau when the caller has it already."""
    n = program.num_qubits
    tableau = final
    if tableau is None:
        tableau = Tableau(n)
        for op in program.ops:
            if isinstance(op, ir.SetState):  # set_stabilizer (is_clifford: no other kind)
                tableau = Tableau.from_symplectic(op.state)
            elif isinstance(op, (ir.Gate, ir.Diagonal)):
                tableau.apply(op.qubits, op_table(op))
            elif isinstance(op, ir.Swap):
                tableau.swap(op.qubit0, op.qubit1)
    final_qubit = {op.clbit: op.qubit for op in program.ops if isinstance(op, ir.Measure)}  # later ones win
    width = max(final_qubit, default=0) + 1
    particular, basis = _affine_solutions(*tableau.z_constraints(), n)
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, shots, SHOT_BLOCK):
        count = min(SHOT_BLOCK, shots - start)
        choice = rng.integers(0, 2, size=(count, len(basis)), dtype=np.uint8)
        # exact in float32: each sum is at most the null space's dimension
        bits = ((choice.astype(np.float32) @ basis.astype(np.float32)).astype(np.int64) & 1).astype(np.uint8)
        bits ^= particular
        clbits = np.zeros((width, count), dtype=np.uint8)
        for clbit, qubit in final_qubit.items():
            clbits[clbit] = bits[:, qubit]
        parts.append(register_values(clbits, width))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
