"""Aer's ``matrix_product_state`` method: for circuits whose statevector does not fit in memory
(under that method or ``extended_stabilizer``), and for runs that ask for the chain itself (a bond
limit or truncation threshold, ``save_matrix_product_state``; engine/runner.py's ``chain_asked``).

A state of ``n`` qubits is a chain of ``n`` tensors ``A[site]`` of shape ``(left bond, 2, right
bond)``; site ``i`` holds qubit ``qubit_at[i]``. A 1-qubit gate changes one tensor; a gate on ``k``
qubits moves them next to the leftmost of them by swaps of neighbours and leaves them there (as
Aer's chain keeps its own qubit order), applies the gate to the contracted block and splits it
again. Each split is by singular value
decompositions, dropping the smallest singular values whose squares sum to at most the
truncation threshold (Aer's ``matrix_product_state_truncation_threshold``, 1e-16) and keeping at
most ``max_bond`` of them (Aer's ``matrix_product_state_max_bond_dimension``). A circuit of little
entanglement (a GHZ state, a shallow circuit, a QFT of a product state) keeps small bonds at
hundreds of qubits; a highly entangled one grows its bonds until the memory check refuses it.

Every rank computes the same state (no communication but the runner's meetings), so the shots do
not depend on the number of ranks. Runs ``is_mps_circuit`` programs: gates, final measurements,
and the saves of ``MPS_SAVES`` before them (no noise, resets or control flow: those circuits get
the statevector's memory error, which names Aer's method).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import InsufficientMemoryError, InvalidInputError

#: Saves the chain answers (the others hold or read the whole state).
MPS_SAVES = ("expectation_value", "expectation_value_variance", "probabilities", "probabilities_dict",
             "amplitudes", "amplitudes_sq", "density_matrix", "matrix_product_state")
#: Widest reduced state a save reads (its probabilities, 2**k of them; a density matrix 4**k).
MAX_SAVE_QUBITS = 20
MAX_DENSITY_QUBITS = 10
_PAULI = {"I": np.eye(2, dtype=complex), "X": np.array([[0, 1], [1, 0]], dtype=complex),
          "Y": np.array([[0, -1j], [1j, 0]], dtype=complex), "Z": np.diag([1.0, -1.0]).astype(complex)}


def is_mps_circuit(program: ir.Program) -> bool:
    """Whether the chain runs ``program``: gates, final measurements, saves of ``MPS_SAVES`` before them."""
    if ir.is_dynamic(program):
        return False
    for op in program.ops:
        if isinstance(op, ir.Save):
            # the whole state of a chain narrow enough to be written out (a truncated one's, say)
            whole = op.kind == "statevector" and program.num_qubits <= MAX_SAVE_QUBITS
            if op.kind not in MPS_SAVES and not whole and not op.of_method:  # save_state: the chain
                return False
        elif not isinstance(op, (ir.Gate, ir.Diagonal, ir.Swap, ir.GlobalPhase, ir.Measure)):
            return False
    return True


def _svd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        return np.linalg.svd(matrix, full_matrices=False)
    except np.linalg.LinAlgError:  # LAPACK's divide and conquer may not converge; the QR driver does
        import scipy.linalg

        return scipy.linalg.svd(matrix, full_matrices=False, lapack_driver="gesvd")


class MatrixProductState:
    """The chain (see the module's docstring); ``limit_bytes`` bounds its tensors' memory."""

    def __init__(self, num_qubits: int, threshold: float = 1e-16, max_bond: Optional[int] = None,
                 limit_bytes: Optional[int] = None):
        zero = np.zeros((1, 2, 1), dtype=complex)
        zero[0, 0, 0] = 1
        self.sites = [zero.copy() for _ in range(num_qubits)]
        self.qubit_at = list(range(num_qubits))
        self.site_of = list(range(num_qubits))
        self.threshold = threshold
        self.max_bond = max_bond
        self.limit_bytes = limit_bytes
        self.widest_bond = 1
        self.discarded = 0.0  # the squared singular values dropped, summed
        # The orthogonality centre: sites left of it are left-canonical, right of it right-canonical.
        # A block split where it lies has orthonormal environments, so its singular values are the
        # Schmidt values and dropping the smallest is the best cut (as Aer's); split elsewhere, a bond
        # limit dropped the wrong ones (fidelity 0.54 against Aer's 0.83 at bond 4, probe R5).
        self.center = 0

    # -- gates ------------------------------------------------------------------------------------
    def apply(self, op: Any) -> None:
        if isinstance(op, ir.Swap):  # the two qubits trade sites: nothing moves
            a, b = self.site_of[op.qubit0], self.site_of[op.qubit1]
            self.qubit_at[a], self.qubit_at[b] = op.qubit1, op.qubit0
            self.site_of[op.qubit0], self.site_of[op.qubit1] = b, a
        elif isinstance(op, ir.GlobalPhase):
            self.sites[0] = self.sites[0] * np.exp(1j * op.phase)
        elif isinstance(op, ir.Diagonal):
            self._apply(op.qubits, np.asarray(op.diag, dtype=complex), diagonal=True)
        elif isinstance(op, ir.Gate):
            self._apply(op.qubits, np.asarray(op.matrix, dtype=complex), diagonal=False)
        else:  # pragma: no cover - is_mps_circuit keeps everything else out
            raise InvalidInputError(f"the matrix product state cannot apply {type(op).__name__}")

    def _apply(self, qubits: Sequence[int], matrix: np.ndarray, diagonal: bool) -> None:
        k = len(qubits)
        if k == 1 and not diagonal:
            site = self.site_of[qubits[0]]
            self.sites[site] = np.einsum("ab,lbr->lar", matrix, self.sites[site])
            return
        start = self._gather(qubits)
        self._move_center(start, start + k - 1)
        block = self.sites[start]
        for site in range(start + 1, start + k):
            block = np.tensordot(block, self.sites[site], axes=(block.ndim - 1, 0))
        # the gate's index bit j is qubits[j]; the block's physical axis p is the qubit at site start + p
        bits = [list(qubits).index(self.qubit_at[start + p]) for p in range(k)]
        if diagonal:
            table = matrix.reshape([2] * k)  # axis a is bit k - 1 - a
            table = np.transpose(table, [k - 1 - j for j in bits])
            block = block * table[np.newaxis, ..., np.newaxis]
        else:
            gate = matrix.reshape([2] * (2 * k))  # output axes (bit k - 1 .. 0), then input axes
            moved = np.tensordot(gate, block, axes=([2 * k - 1 - j for j in bits], list(range(1, k + 1))))
            # moved: gate output axes (a <-> bit k - 1 - a), then the left and right bonds
            block = np.transpose(moved, [k] + [k - 1 - j for j in bits] + [k + 1])
        self._split(block, start)
    def _gather(self, qubits: Sequence[int]) -> int:
        """Bring ``qubits`` to the sites after the leftmost of them (swapping neighbours); its site."""
        moving = sorted(qubits, key=lambda q: self.site_of[q])
        start = self.site_of[moving[0]]
        for index, qubit in enumerate(moving[1:], start=1):  # nearest first: the placed ones stay put
            site = self.site_of[qubit]
            while site > start + index:
                self._swap(site - 1)
                site -= 1
        return start

    def _swap(self, site: int) -> None:
        """Exchange the qubits at ``site`` and ``site + 1``."""
        self._move_center(site, site + 1)
        block = np.einsum("lar,rbs->lbas", self.sites[site], self.sites[site + 1])
        self._split(block, site)
        a, b = self.qubit_at[site], self.qubit_at[site + 1]
        self.qubit_at[site], self.qubit_at[site + 1] = b, a
        self.site_of[a], self.site_of[b] = site + 1, site

    def _split(self, block: np.ndarray, start: int) -> None:
        """A block ``(left, 2, ..., 2, right)`` back into its sites, truncated."""
        k = block.ndim - 2
        if self.limit_bytes is not None and 4 * block.nbytes > self.limit_bytes:  # the SVD's copies too
            self._too_large(4 * block.nbytes)
        for offset in range(k - 1):
            left = block.shape[0]
            rest = block.shape[2:]
            u, s, vh = _svd(block.reshape(left * 2, -1))
            keep = self._kept(s)
            self.sites[start + offset] = u[:, :keep].reshape(left, 2, keep)
            block = (s[:keep, np.newaxis] * vh[:keep]).reshape((keep,) + rest)
            self.widest_bond = max(self.widest_bond, keep)
        self.sites[start + k - 1] = block
        self.center = start + k - 1
        self._check_memory()

    def _move_center(self, lo: int, hi: int) -> None:
        """Move the orthogonality centre into sites ``lo..hi``, by a QR decomposition per site it passes."""
        while self.center < lo:
            c = self.center
            left = self.sites[c].shape[0]
            q, r = np.linalg.qr(self.sites[c].reshape(left * 2, -1))
            self.sites[c] = q.reshape(left, 2, -1)
            self.sites[c + 1] = np.tensordot(r, self.sites[c + 1], axes=(1, 0))
            self.center = c + 1
        while self.center > hi:
            c = self.center
            _, _, right = self.sites[c].shape
            q, r = np.linalg.qr(self.sites[c].reshape(self.sites[c].shape[0], 2 * right).conj().T)
            self.sites[c] = q.conj().T.reshape(-1, 2, right)
            self.sites[c - 1] = np.einsum("lar,rs->las", self.sites[c - 1], r.conj().T)
            self.center = c - 1

    def _kept(self, s: np.ndarray) -> int:
        """How many singular values stay (the rest renormalised into them)."""
        weights = s * s
        total = float(weights.sum())
        if total == 0.0:
            return 1
        # the tail whose squares sum to at most the threshold goes (relative: the state has norm 1)
        tail = np.cumsum(weights[::-1])[::-1] / total  # tail[i]: weight of values i..end
        keep = int(np.count_nonzero(tail > self.threshold))
        keep = max(1, min(keep, self.max_bond or keep))
        dropped = float(weights[keep:].sum())
        if dropped > 0.0:
            self.discarded += dropped / total
            s[:keep] *= np.sqrt(total / (total - dropped))
        return keep

    def _check_memory(self) -> None:
        if self.limit_bytes is not None:
            used = sum(t.nbytes for t in self.sites)
            if used > self.limit_bytes:
                self._too_large(used)

    def _too_large(self, used: int) -> None:
        error = InsufficientMemoryError(
            f"method='matrix_product_state': the chain needs {used >> 20} MiB (bonds up to {self.widest_bond}), "
            f"over the {self.limit_bytes >> 20} MiB it may use (a quarter of what the rank may use): the circuit "
            f"is too entangled for a matrix product state; set matrix_product_state_max_bond_dimension (an "
            f"approximation) or run fewer qubits")
        error.from_chain = True  # (service/execution.py adds no hint about running as the statevector)
        raise error

    # -- reading the state ------------------------------------------------------------------------
    def _environment(self, site_ops: Callable[[int], Optional[np.ndarray]]) -> complex:
        """<psi| (x) op_i |psi> with ``site_ops(site)`` (None: identity) on each site."""
        env = np.ones((1, 1), dtype=complex)
        for site, tensor in enumerate(self.sites):
            op = site_ops(site)
            ket = tensor if op is None else np.einsum("ab,lbr->lar", op, tensor)
            env = np.einsum("xy,xsc,ysd->cd", env, tensor.conj(), ket)
        return complex(env[0, 0])

    def norm_squared(self) -> float:
        return self._environment(lambda site: None).real

    def pauli_expectation(self, label: str, qubits: Sequence[int]) -> float:
        """<P> for a Pauli label on ``qubits`` (``label[-1 - j]`` acts on ``qubits[j]``)."""
        on = {q: _PAULI[label[len(label) - 1 - j]] for j, q in enumerate(qubits) if label[len(label) - 1 - j] != "I"}
        value = self._environment(lambda site: on.get(self.qubit_at[site]))
        return value.real / self.norm_squared()

    def reduced(self, qubits: Sequence[int], diagonal: bool) -> np.ndarray:
        """The probabilities (``diagonal``) or the density matrix of ``qubits`` (index bit j is qubits[j])."""
        kept = {q: j for j, q in enumerate(qubits)}
        env = np.ones((1, 1, 1), dtype=complex)  # (bra bond, ket bond, the kept qubits' values so far)
        order: list[int] = []  # the kept qubits in site order
        for site, tensor in enumerate(self.sites):
            if self.qubit_at[site] in kept:
                order.append(self.qubit_at[site])
                if diagonal:
                    env = np.einsum("xyv,xsc,ysd->cdvs", env, tensor.conj(), tensor)
                else:
                    env = np.einsum("xyv,xtc,ysd->cdvst", env, tensor.conj(), tensor)
                env = env.reshape(env.shape[0], env.shape[1], -1)
            else:
                env = np.einsum("xyv,xsc,ysd->cdv", env, tensor.conj(), tensor)
        values = env[0, 0] / self.norm_squared()
        k = len(order)
        if diagonal:
            # axis a of the values is order[a]'s bit (the first the most significant): to bit j = qubits[j]
            table = values.reshape([2] * k) if k else values.reshape(())
            axes = [order.index(q) for q in reversed(qubits)]
            return np.transpose(table, axes).reshape(-1).real if k else np.ones(1)
        table = values.reshape([2] * (2 * k))  # (ket bit, bra bit) per kept qubit, in site order
        rows = [2 * order.index(q) for q in reversed(qubits)]
        columns = [2 * order.index(q) + 1 for q in reversed(qubits)]
        return np.transpose(table, rows + columns).reshape(1 << k, 1 << k)

    def statevector(self) -> np.ndarray:
        """The whole state (bit q of an index is qubit q): small chains only (tests, checks)."""
        n = len(self.sites)
        psi = np.ones((1, 1), dtype=complex)  # (values of the sites so far, bond); site 0 most significant
        for tensor in self.sites:
            psi = np.einsum("cl,lsr->csr", psi, tensor).reshape(-1, tensor.shape[2])
        table = psi[:, 0].reshape([2] * n)  # axis a is site a
        vector = np.transpose(table, [self.site_of[q] for q in reversed(range(n))]).reshape(-1)
        return vector / np.sqrt(self.norm_squared())

    def vidal(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
        """Aer's ``save_matrix_product_state`` value: ``([(G_q^0, G_q^1) for q in 0..n-1], [lambda_q for q in
        0..n-2])``, Vidal's canonical form with qubit 0 first: an amplitude is
        ``G_0^(b_0) diag(lambda_0) G_1^(b_1) ... G_(n-1)^(b_(n-1))`` for bit b_q of its index. Computed on a
        copy (the chain's own qubit order and gauge stay as they are)."""
        import copy

        chain = copy.deepcopy(self)
        n = len(chain.sites)
        for qubit in range(n):  # the copy's sites into qubit order
            site = chain.site_of[qubit]
            while site > qubit:
                chain._swap(site - 1)
                site -= 1
        tensors = [t.copy() for t in chain.sites]
        tensors[0] = tensors[0] / np.sqrt(chain.norm_squared())
        for k in range(n - 1):  # left-canonical
            left = tensors[k].shape[0]
            q, r = np.linalg.qr(tensors[k].reshape(left * 2, -1))
            tensors[k] = q.reshape(left, 2, -1)
            tensors[k + 1] = np.tensordot(r, tensors[k + 1], axes=(1, 0))
        lambdas: list[np.ndarray] = [np.ones(1)] * (n - 1)
        for k in range(n - 1, 0, -1):  # right-canonical, each bond's Schmidt values on the way
            left, _, right = tensors[k].shape
            u, s, vh = _svd(tensors[k].reshape(left, 2 * right))
            keep = max(1, int(np.count_nonzero(s > 1e-14 * s[0])))
            tensors[k] = vh[:keep].reshape(keep, 2, right)
            tensors[k - 1] = np.tensordot(tensors[k - 1], u[:, :keep] * s[:keep], axes=(2, 0))
            lambdas[k - 1] = s[:keep]
        # B_k = G_k diag(lambda_k) (the last: G), and the first site holds G_0 diag(lambda_0)
        gammas = [t / lambdas[k][np.newaxis, np.newaxis, :] if k < n - 1 else t for k, t in enumerate(tensors)]
        return [(g[:, 0, :], g[:, 1, :]) for g in gammas], [np.asarray(v, dtype=float) for v in lambdas]

    def amplitudes(self, states: Sequence[int]) -> np.ndarray:
        """The amplitudes of the basis states ``states`` (bit q of a state is qubit q)."""
        states = np.asarray(states, dtype=object)
        vectors = np.ones((len(states), 1), dtype=complex)
        for site, tensor in enumerate(self.sites):
            q = self.qubit_at[site]
            bits = np.array([(int(s) >> q) & 1 for s in states], dtype=np.int64)
            vectors = np.einsum("ml,mlr->mr", vectors, tensor[:, bits, :].transpose(1, 0, 2))
        return vectors[:, 0] / np.sqrt(self.norm_squared())

    def sample(self, shots: int, rng: np.random.Generator) -> np.ndarray:
        """Each shot's bit of each qubit: ``(num_qubits, shots)`` uint8, drawn site by site from the
        right-canonical chain (the probability of a prefix is the norm of its row vector)."""
        sites = [t.copy() for t in self.sites]
        for site in range(len(sites) - 1, 0, -1):  # right-canonical form, by QR from the right
            left, _, right = sites[site].shape
            q, r = np.linalg.qr(sites[site].reshape(left, 2 * right).conj().T)
            sites[site] = q.conj().T.reshape(-1, 2, right)
            sites[site - 1] = np.einsum("lar,rs->las", sites[site - 1], r.conj().T)
        bits = np.zeros((len(sites), shots), dtype=np.uint8)
        rows = np.ones((shots, 1), dtype=complex)
        for site, tensor in enumerate(sites):
            branches = np.einsum("ml,lsr->msr", rows, tensor)  # (shots, 2, right)
            weights = np.einsum("msr,msr->ms", branches.conj(), branches).real
            one = rng.random(shots) * weights.sum(axis=1) < weights[:, 1]
            chosen = branches[np.arange(shots), one.astype(np.int64)]
            rows = chosen / np.sqrt(np.maximum(weights[np.arange(shots), one.astype(np.int64)], 1e-300))[:, None]
            bits[self.qubit_at[site]] = one
        return bits
