"""Qobj experiment -> ``ir.Program``.

Gate matrices come from Qiskit's standard gate classes, so every standard
gate is exactly what Qiskit means by it. Diagonal matrices become
``ir.Diagonal`` (they never move data) and swaps become ``ir.Swap`` (a
relabelling).
"""

from __future__ import annotations

import cmath
import math
from functools import lru_cache
from typing import Any, Optional

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj.instructions import (
    IGNORED,
    NOT_PLAIN_GATES,
    PARAMS_BASIS_STATES,
    PARAMS_PAULI_TERMS,
    SAVE_INSTRUCTIONS,
    SAVE_KINDS,
    SAVE_PREFIX,
    SET_STATE_KINDS,
    SET_STATEVECTOR,
    STATE_PREPARATION,
    STORE,
)
from aer_mpi.qobj.model import QobjExperiment
from aer_mpi.qobj.noise import NOISE_INSTRUCTIONS, noise_ops

def _save_params(kind: str, params: list) -> Any:
    """Engine form of a save's params: basis states, or (pauli, coeff, coeff_of_square) terms."""
    shape = SAVE_KINDS[kind].params
    if shape == PARAMS_BASIS_STATES:
        return tuple(int(p) for p in params)
    if shape == PARAMS_PAULI_TERMS:
        return tuple((str(label), float(c[0]), float(c[1])) for label, c in params)
    return None


def condition(data: dict) -> Any:
    """``ir.Condition`` or ``ir.ExprCondition`` from a Qobj condition dict."""
    if "expr" in data:
        return ir.ExprCondition(expression(data["expr"]))
    return ir.Condition(tuple(data["clbits"]), int(data["value"]))


def expression(data: Any) -> tuple:
    """``ir`` expression tuple from its Qobj (JSON list) form."""
    kind = data[0]
    if kind == "bits":
        return ("bits", tuple(int(c) for c in data[1]))
    if kind == "const":
        return ("const", int(data[1]))
    return (kind,) + tuple(expression(a) if isinstance(a, list) else a for a in data[1:])


@lru_cache(maxsize=None)
def _gate_class(name: str) -> Any:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    return type(get_standard_gate_name_mapping()[name])


def _rx(theta: float) -> np.ndarray:
    cos, sin = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[cos, -1j * sin], [-1j * sin, cos]], dtype=complex)


def _ry(theta: float) -> np.ndarray:
    cos, sin = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[cos, -sin], [sin, cos]], dtype=complex)


def _rz(lam: float) -> np.ndarray:
    ilam2 = 0.5j * lam
    return np.array([[cmath.exp(-ilam2), 0], [0, cmath.exp(ilam2)]], dtype=complex)


def _phase(lam: float) -> np.ndarray:
    return np.array([[1, 0], [0, cmath.exp(1j * lam)]], dtype=complex)


def _u(theta: float, phi: float, lam: float) -> np.ndarray:
    cos, sin = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[cos, -cmath.exp(1j * lam) * sin],
                     [cmath.exp(1j * phi) * sin, cmath.exp(1j * (phi + lam)) * cos]], dtype=complex)


#: The rotations of parameterised circuits, built as Qiskit's gate classes build their arrays (the
#: same formulas, the same bits: tests/qobj/test_translate.py) without making a Gate object, which
#: took most of a parameter sweep's translation (every binding's angles are new to the cache).
_ROTATIONS = {"rx": _rx, "ry": _ry, "rz": _rz, "p": _phase, "u1": _phase, "u": _u, "u3": _u}


@lru_cache(maxsize=4096)
def gate_matrix(name: str, params: tuple[float, ...]) -> np.ndarray:
    """Matrix of standard gate ``name`` with ``params`` (cached: circuits repeat gates)."""
    rotation = _ROTATIONS.get(name)
    if rotation is not None and len(params) == rotation.__code__.co_argcount:
        matrix = rotation(*params)
    else:
        matrix = np.asarray(_gate_class(name)(*params).to_matrix(), dtype=complex)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=4096)
def _standard_diagonal(name: str, params: tuple[float, ...]) -> Optional[np.ndarray]:
    """The diagonal of standard gate ``name`` when its matrix is diagonal, else None (cached)."""
    matrix = gate_matrix(name, params)
    if not ir.is_diagonal(matrix):
        return None
    diag = np.diag(matrix).copy()
    diag.setflags(write=False)
    return diag


#: How far a state given to a set instruction may be from what it must be (Aer's tolerance).
_SET_TOLERANCE = 1e-8


def _set_state(kind: str, qubits: tuple[int, ...], params: list, at: str) -> ir.SetState:
    """``set_density_matrix``, ``set_unitary``, ``set_superop`` or ``set_stabilizer`` on ``qubits``
    (index bit ``j`` is ``qubits[j]``) as an ``ir.SetState`` on ``0..n-1`` in order, checked."""
    n = len(qubits)
    if kind == "stabilizer":
        table = _clifford_table(params[0], n, at)
        order = np.argsort(qubits)  # the instruction's qubit j is qubit qubits[j]
        rows = np.concatenate([order, n + order])
        columns = np.concatenate([order, n + order, [2 * n]])
        return ir.SetState(tuple(range(n)), table[np.ix_(rows, columns)], kind)
    copies = 2 if kind == "superop" else 1  # a superoperator acts on the 2n bits of the density matrix's vector
    dim = 1 << (copies * n)
    matrix = decode_matrix(params[0]) if params[0] is not None else np.zeros(0)
    if matrix.shape != (dim, dim):
        raise InvalidInputError(f"{at}: expecting a {dim}x{dim} matrix for {n} qubits, got shape {matrix.shape}")
    if kind == "density_matrix":
        if (not np.allclose(matrix, matrix.conj().T, atol=_SET_TOLERANCE)
                or abs(np.trace(matrix) - 1) > _SET_TOLERANCE
                or np.linalg.eigvalsh((matrix + matrix.conj().T) / 2).min() < -_SET_TOLERANCE):
            raise InvalidInputError(f"{at}: not a density matrix (Hermitian, trace 1, no negative eigenvalue)")
    elif kind == "unitary" and not np.allclose(matrix @ matrix.conj().T, np.eye(dim), atol=_SET_TOLERANCE):
        raise InvalidInputError(f"{at}: the matrix is not unitary")
    # the matrix's index bit j (and j + n for a superoperator) is qubit qubits[j] (qubits[j] + n)
    bits = list(qubits) + [q + n for q in qubits] if copies == 2 else list(qubits)
    index = np.arange(dim)
    canonical = np.zeros(dim, dtype=np.int64)
    for j, bit in enumerate(bits):
        canonical |= ((index >> j) & 1) << bit
    ordered = np.empty_like(matrix)
    ordered[np.ix_(canonical, canonical)] = matrix
    return ir.SetState(tuple(range(n)), ordered, kind)


def _clifford_table(data: Any, n: int, at: str) -> np.ndarray:
    """Qiskit's Clifford tableau from ``Clifford.to_dict()``'s labels (``"-XZI"``: qubit 0 rightmost)."""
    labels = data.get("destabilizer", []) + data.get("stabilizer", []) if isinstance(data, dict) else []
    if len(labels) != 2 * n:
        raise InvalidInputError(f"{at}: expecting a Clifford of {n} qubits as "
                                f"{{'destabilizer': [{n} labels], 'stabilizer': [{n} labels]}}")
    table = np.zeros((2 * n, 2 * n + 1), dtype=bool)
    for row, label in enumerate(labels):
        if not isinstance(label, str) or len(label) != n + 1 or label[0] not in "+-" or set(label[1:]) - set("IXYZ"):
            raise InvalidInputError(f"{at}: {label!r} is not a signed Pauli label on {n} qubits ('+XZ', '-IY')")
        table[row, 2 * n] = label[0] == "-"
        for q, c in enumerate(reversed(label[1:])):
            table[row, q] = c in "XY"
            table[row, n + q] = c in "ZY"
    x, z = table[:, :n].astype(np.int64), table[:, n:2 * n].astype(np.int64)
    # symplectic: the destabilizer and stabilizer of one qubit anticommute, every other pair commutes
    products = (x @ z.T + z @ x.T) % 2
    expected = np.zeros((2 * n, 2 * n), dtype=np.int64)
    expected[np.arange(n), n + np.arange(n)] = expected[n + np.arange(n), np.arange(n)] = 1
    if not np.array_equal(products, expected):
        raise InvalidInputError(f"{at}: the stabilizer and destabilizer labels are not a Clifford tableau")
    return table


def decode_matrix(data: Any) -> np.ndarray:
    array = np.asarray(data, dtype=float)
    return array[..., 0] + 1j * array[..., 1]


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


#: The base X's eigenvectors, exactly: mcx is H, a diagonal, H.
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)


#: Diagonal tables of controlled gates, shared by the gates that are alike: a 20-qubit mcx's table
#: is 16 MiB, and a Grover circuit repeats the same two hundreds of times.
_CONTROLLED_TABLES: dict[tuple, np.ndarray] = {}
CONTROLLED_TABLES_KEPT = 16


def controlled_ops(qubits: tuple[int, ...], base: np.ndarray, num_controls: int, ctrl_state: int,
                   name: str) -> list[ir.Op]:
    """``base`` on ``qubits[num_controls:]`` where the first ``num_controls`` qubits read ``ctrl_state``,
    as, in time order, ``V^dagger``, a diagonal on every qubit, ``V``: ``base = V D V^dagger`` (its
    Schur form; a unitary is normal, so ``D`` is diagonal), and the controlled ``D`` is a diagonal.
    One pass of a few products per amplitude, where the dense matrix made ``2**n``; the diagonal
    never moves data between ranks, and ``V`` acts on the base's qubits alone."""
    targets = qubits[num_controls:]
    if ir.is_diagonal(base):
        eigenvalues, basis = np.diag(base).copy(), None
    elif np.array_equal(base, _X):
        eigenvalues, basis = np.array([1, -1], dtype=complex), _H
    else:
        import scipy.linalg

        schur, basis = scipy.linalg.schur(base, output="complex")
        eigenvalues = np.diag(schur).copy()
    key = (len(qubits), num_controls, ctrl_state, eigenvalues.tobytes())
    table = _CONTROLLED_TABLES.get(key)
    if table is None:
        table = np.ones(1 << len(qubits), dtype=complex)
        rows = ctrl_state + (np.arange(len(eigenvalues)) << num_controls)  # the controls' bits are the low ones
        table[rows] = eigenvalues
        table.setflags(write=False)
        _CONTROLLED_TABLES[key] = table
        while len(_CONTROLLED_TABLES) > CONTROLLED_TABLES_KEPT:
            _CONTROLLED_TABLES.pop(next(iter(_CONTROLLED_TABLES)), None)
    diagonal = ir.Diagonal(qubits, table, name)
    if basis is None:
        return [diagonal]
    return [_gate_op(targets, basis.conj().T, name), diagonal, _gate_op(targets, basis, name)]


def preparing_unitary(vector: np.ndarray) -> np.ndarray:
    """A unitary whose first column is ``vector``: ``e^{ia} (I - 2 w w^dagger / |w|^2)`` with
    ``w = e_0 - e^{-ia} vector`` and ``a`` the phase of ``vector[0]`` (a Householder reflection
    takes ``e_0`` to any unit vector whose first entry is real and >= 0)."""
    phase = np.exp(1j * np.angle(vector[0])) if abs(vector[0]) > 0 else 1.0
    w = -vector / phase
    w[0] += 1.0
    norm = np.vdot(w, w).real
    unitary = np.eye(len(vector), dtype=complex)
    if norm > 1e-30:
        unitary -= np.outer(w, w.conj()) * (2.0 / norm)
    return unitary * phase


#: Widest matrix whose unitarity is checked exactly (U^dagger U, O(dim**3)); wider ones by probes.
EXACT_UNITARY_CHECK_DIM = 64
#: Random vectors a wide matrix's unitarity is probed with.
UNITARY_PROBES = 4


def is_unitary(matrix: np.ndarray, atol: float = 1e-8) -> bool:
    """Whether ``matrix`` is unitary within ``atol``. Up to ``EXACT_UNITARY_CHECK_DIM`` rows by
    ``U^dagger U = I``; wider by ``UNITARY_PROBES`` random vectors, whose inner products it must keep
    (a matrix that is not unitary changes those of almost every set of vectors): ``U^dagger U`` of a
    10-qubit matrix took 0.8 s of every run (probe S). The vectors are drawn from a fixed seed, so
    every rank decides alike."""
    dim = matrix.shape[0]
    if dim <= EXACT_UNITARY_CHECK_DIM:
        return bool(np.allclose(matrix.conj().T @ matrix, np.eye(dim), atol=atol))
    probes, grams = _unitary_probes(dim)
    images = matrix @ probes
    # (entries of about 1: an entry off by d moves an inner product by about d, where U^dagger U moves
    # by d / sqrt(dim): the same threshold, sqrt(dim) * atol; rounding moves them by about 1e-13)
    return bool(np.allclose(images.conj().T @ images, grams, rtol=0.0, atol=atol * np.sqrt(dim)))


@lru_cache(maxsize=16)
def _unitary_probes(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``is_unitary``'s probe vectors for ``dim`` rows (complex Gaussian entries), and their inner products."""
    rng = np.random.default_rng(dim)
    probes = (rng.standard_normal((dim, UNITARY_PROBES)) + 1j * rng.standard_normal((dim, UNITARY_PROBES))) / np.sqrt(2)
    return probes, probes.conj().T @ probes


def _gate_op(qubits: tuple[int, ...], matrix: np.ndarray, name: str) -> ir.Op:
    if ir.is_diagonal(matrix):
        return ir.Diagonal(qubits, np.diag(matrix).copy(), name)
    if name == "swap":
        return ir.Swap(qubits[0], qubits[1])
    return ir.Gate(qubits, matrix, name)


def _ops(instructions: list[dict], where: str, loop: bool = False, memo: Optional[dict] = None) -> list[ir.Op]:
    """The ops of ``instructions``; ``loop``: they are inside a loop's body (a break or continue may jump).

    ``memo``: the op of each standard gate's instruction dict already translated, by identity (the
    bindings of one circuit share their unparameterised instructions: qobj/assemble.py)."""
    ops: list[ir.Op] = []
    plain = _plain_gate_names()
    for i, inst in enumerate(instructions):
        if memo is not None:
            known = memo.get(id(inst))
            if known is not None and known[0] is inst:
                ops.append(known[1])
                continue
        name = inst["name"]
        qubits = tuple(inst.get("qubits", []))
        if name in plain:  # most instructions: first, and without the text of where it stands
            build = _rotation if name in _ROTATIONS else _standard_gate
            ops.append(build(inst, name, qubits, lambda i=i, name=name: f"{where}[{i}] ({name})", memo))
            continue
        at = f"{where}[{i}] ({name})"
        if name in IGNORED:
            continue
        if name == "measure":
            ops.extend(ir.Measure(q, c) for q, c in zip(qubits, inst["memory"]))
        elif name == "reset":
            ops.extend(ir.Reset(q) for q in qubits)
        elif name == "global_phase":
            ops.append(ir.GlobalPhase(float(inst["params"][0])))
        elif name == "unitary":
            matrix = decode_matrix(inst["params"][0])
            controls = inst.get("controls")
            if controls is not None and not (
                    isinstance(controls, list) and len(controls) == 2 and all(_is_index(c) for c in controls)
                    and 1 <= controls[0] < len(qubits) and controls[1] < 1 << controls[0]):
                raise InvalidInputError(f"{at}.controls: expecting [number of controls (the first qubits), "
                                        f"ctrl_state], got {controls!r}")
            dim = 1 << (len(qubits) - (controls[0] if controls else 0))
            if matrix.shape != (dim, dim):
                raise InvalidInputError(f"{at}: expecting a {dim}x{dim} matrix, got {matrix.shape}")
            if not is_unitary(matrix):
                raise InvalidInputError(f"{at}: the matrix is not unitary")
            if controls:
                ops.extend(controlled_ops(qubits, matrix, controls[0], controls[1], inst.get("label", "unitary")))
            else:
                ops.append(_gate_op(qubits, matrix, inst.get("label", "unitary")))
        elif name == STATE_PREPARATION:
            vector = decode_matrix(inst.get("params"))
            if vector.shape != (1 << len(qubits),) or not np.isclose(np.vdot(vector, vector).real, 1.0, atol=1e-8):
                raise InvalidInputError(f"{at}: expecting a unit vector of {1 << len(qubits)} amplitudes")
            ops.append(ir.Gate(qubits, preparing_unitary(vector), name))
        elif name == "diagonal":
            diag = decode_matrix(inst["params"])
            if diag.shape != (1 << len(qubits),) or not np.allclose(np.abs(diag), 1, atol=1e-8):
                raise InvalidInputError(f"{at}: expecting {1 << len(qubits)} entries of modulus 1")
            ops.append(ir.Diagonal(qubits, diag, "diagonal"))
        elif name == SET_STATEVECTOR:
            state = decode_matrix(inst["params"][0]) if inst.get("params") else np.zeros(0)
            if state.shape != (1 << len(qubits),):
                raise InvalidInputError(f"{at}: expecting a state of {1 << len(qubits)} amplitudes, got {state.shape}")
            if not np.isclose(np.vdot(state, state).real, 1.0, atol=1e-8):
                raise InvalidInputError(f"{at}: the state is not normalised")
            ops.append(ir.SetState(qubits, state))
        elif name in SET_STATE_KINDS:  # the other methods' states (Aer's set_density_matrix, ...)
            ops.append(_set_state(SET_STATE_KINDS[name], qubits, inst.get("params") or [None], at))
        elif name in NOISE_INSTRUCTIONS:  # noise (qobj/noise.py)
            # a device model's error on a gate and its qubits is one dict, shared by every use of them
            # (qobj/noise.py NoiseTable.quantum_errors): its Kraus matrices are read and checked once
            known = memo.get(("noise", id(inst))) if memo is not None else None
            if known is not None and known[0] is inst:
                ops.extend(known[1])
                continue
            noisy = noise_ops(inst, at, _ops)
            ops.extend(noisy)
            if memo is not None:
                memo[("noise", id(inst))] = (inst, tuple(noisy))
        elif name.startswith(SAVE_PREFIX):
            save = SAVE_INSTRUCTIONS.get(name)
            if save is None:
                raise InvalidInputError(
                    f"{at}: {name} is not supported; the save instructions are {', '.join(sorted(SAVE_INSTRUCTIONS))}"
                )
            kind = save.kind.kind
            ops.append(
                ir.Save(
                    kind,
                    qubits,
                    inst.get("label", save.label),
                    inst.get("subtype", "single"),
                    _save_params(kind, inst.get("params", [])),
                    save.of_method,
                )
            )
        elif name == "if_else":
            ops.append(
                ir.IfElse(
                    condition(inst["condition"]),
                    tuple(_ops(inst.get("true_body", []), f"{at}.true_body", loop)),
                    tuple(_ops(inst.get("false_body", []), f"{at}.false_body", loop)),
                )
            )
        elif name == "while_loop":
            ops.append(ir.WhileLoop(condition(inst["condition"]), tuple(_ops(inst.get("body", []), f"{at}.body", True))))
        elif name == STORE:
            ops.append(ir.Store(tuple(int(c) for c in inst["clbits"]), expression(inst["expr"])))
        elif name == "for_loop":
            ops.append(ir.ForLoop(tuple(
                tuple(_ops(body, f"{at}.bodies[{k}]", True)) for k, body in enumerate(inst.get("bodies", []))
            )))
        elif name in ("break_loop", "continue_loop") and not loop:
            raise InvalidInputError(f"{at}: {name} outside a loop")
        elif name == "break_loop":
            ops.append(ir.Break())
        elif name == "continue_loop":
            ops.append(ir.Continue())
        elif name == "switch_case":
            cases = []
            for k, case in enumerate(inst["cases"]):
                values = case.get("values")
                cases.append(
                    (
                        None if values is None else tuple(int(v) for v in values),
                        tuple(_ops(case.get("body", []), f"{at}.cases[{k}].body", loop)),
                    )
                )
            ops.append(ir.Switch(expression(inst["target"]), tuple(cases)))
        else:
            ops.append(_standard_gate(inst, name, qubits, at, memo))
    return ops


def _standard_gate(inst: dict, name: str, qubits: tuple, at: Any, memo: Optional[dict]) -> ir.Op:
    """The op of standard gate instruction ``inst`` (``at``: where it stands, or a callable giving it)."""
    params = _parameters(inst, name, at)
    try:
        matrix = gate_matrix(name, params)
    except (KeyError, TypeError, ValueError) as exc:
        raise _cannot_build(at, name, exc) from exc
    _check_width(at, name, matrix.shape[0].bit_length() - 1, qubits)
    if name == "global_phase":
        op: ir.Op = ir.GlobalPhase(params[0])
    elif name == "swap":
        op = ir.Swap(qubits[0], qubits[1])
    else:
        diag = _standard_diagonal(name, params)
        op = ir.Gate(qubits, matrix, name) if diag is None else ir.Diagonal(qubits, diag, name)
    return _remembered(memo, inst, op)


def _rotation(inst: dict, name: str, qubits: tuple, at: Any, memo: Optional[dict]) -> ir.Op:
    """``_standard_gate`` for a rotation (``_ROTATIONS``) on one qubit, without the caches: a parameter
    sweep's angles are new at every binding, so a cache only paid its look-ups and evictions (two per
    gate, about half of a binding's translation). The same arrays, the same bits."""
    params = _parameters(inst, name, at)
    rotation = _ROTATIONS[name]
    if len(params) != rotation.__code__.co_argcount:
        raise _cannot_build(at, name, f"expecting {rotation.__code__.co_argcount} parameters, got {len(params)}")
    _check_width(at, name, 1, qubits)
    matrix = rotation(*params)
    matrix.setflags(write=False)  # (as gate_matrix's: ops share their arrays)
    if ir.is_diagonal(matrix):
        diag = np.diag(matrix).copy()
        diag.setflags(write=False)
        op: ir.Op = ir.Diagonal(qubits, diag, name)
    else:
        op = ir.Gate(qubits, matrix, name)
    return _remembered(memo, inst, op)


def _parameters(inst: dict, name: str, at: Any) -> tuple:
    try:
        return tuple(float(p) for p in inst.get("params", []))
    except (TypeError, ValueError) as exc:
        raise _cannot_build(at, name, exc) from exc


def _cannot_build(at: Any, name: str, why: Any) -> InvalidInputError:
    return InvalidInputError(f"{_text(at)}: cannot build gate {name!r}: {why}")


def _check_width(at: Any, name: str, width: int, qubits: tuple) -> None:
    if width != len(qubits):
        raise InvalidInputError(f"{_text(at)}: {name} acts on {width} qubits, got {len(qubits)}")


def _remembered(memo: Optional[dict], inst: dict, op: ir.Op) -> ir.Op:
    if memo is not None:
        memo[id(inst)] = (inst, op)  # the dict is kept alive with its op: its id stays its own
    return op


def _text(at: Any) -> str:
    return at() if callable(at) else at


@lru_cache(maxsize=1)
def _plain_gate_names() -> frozenset:
    """The gates ``_ops`` builds from their name and parameters alone (``_standard_gate``)."""
    from aer_mpi.qobj.model import gate_names

    return frozenset(n for n in gate_names() - NOT_PLAIN_GATES if not n.startswith(SAVE_PREFIX))


def to_program(experiment: QobjExperiment, index: int = 0, memo: Optional[dict] = None) -> ir.Program:
    """``experiment`` as a program; ``memo`` (a dict, empty at first) is shared by the experiments of
    one Qobj so that instructions they share are translated once."""
    header = experiment.header
    ops = _ops(experiment.instructions, f"experiments[{index}].instructions", memo=memo)
    return ir.Program(
        num_qubits=int(header["n_qubits"]),
        num_clbits=int(header.get("memory_slots", 0)),
        ops=tuple(ops),
        name=str(header.get("name", f"circuit-{index}")),
        num_var_bits=int(header.get("var_slots", 0)),
    )
