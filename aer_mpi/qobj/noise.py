"""Noise models -> noise instructions in the Qobj.

Promise: ``add_noise(qobj, noise_model)`` inserts, in every experiment of
a Qobj, the noise instructions that Qiskit Aer's ``NoiseModel`` puts on the
circuit's instructions, so the Qobj stays JSON and crosses ranks and
processes as before. The model is read through its stable serialised form,
``NoiseModel.to_dict(serializable=True)`` (the same JSON the CLI's
``--noise-model FILE`` reads); qiskit-aer is imported only when a
``NoiseModel`` object is given. A model given run after run (a loop of jobs, a
parameter sweep) is serialised and checked once: the table is kept while the
model's error tables hold the same error objects (``noise_table``: the one
place that looks at Aer's private fields, only to tell whether a model seen
before is unchanged; a model laid out otherwise is read again on every run).

Qobj noise instructions (names as Aer's where Aer has them):

* ``{"name": "quantum_error", "qubits": [...], "probabilities": [p0, ...],
  "instructions": [[inst, ...], ...]}``: a mixture, branch ``i`` (its
  instructions on circuit qubits) happens with probability ``p_i``;
* ``{"name": "kraus", "qubits": [...], "params": [K0, K1, ...]}``: a channel
  given by Kraus matrices (JSON complex matrices ``[[[re, im], ...], ...]``);
* ``{"name": "superop", "qubits": [...], "params": [S]}``: a superoperator
  (column-stacking convention, as ``qiskit.quantum_info.SuperOp``), turned into Kraus
  matrices at translation;
* ``{"name": "roerror", "qubits": [...], "memory": [...], "params": [A]}``:
  readout error, ``A[true][recorded]`` the assignment probabilities.

Placement, as Aer's: a gate's or reset's quantum error right after it, a
measure's quantum error right before it and its readout error right after
it; an error on given qubits replaces the all-qubit error of that
instruction there; a non-local error (``noise_qubits``, older Aer) acts on
its own qubits.
"""

from __future__ import annotations

import json
import math
import os
import threading
import weakref
from typing import Any, Iterable, Optional

import numpy as np

from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj.instructions import NOISE_INSTRUCTIONS

#: Tolerance of the CPTP / probability checks (Aer's ``atol`` is 1e-8).
ATOL = 1e-7


# -- reading numbers --------------------------------------------------------------------
def complex_array(data: Any, where: str, ndim: int = 2) -> np.ndarray:
    """A complex array of ``ndim`` dimensions from numpy, complex lists, or Aer's JSON ``[re, im]`` pairs."""
    if isinstance(data, str):
        raise InvalidInputError(
            f"{where}: a matrix written as text ({data[:30]!r}...): save the noise model with "
            f"json.dump(noise_model.to_dict(serializable=True), file)"
        )
    try:
        array = np.asarray(data)
        if array.dtype == object:
            array = np.asarray(data, dtype=complex)
        if array.dtype.kind in "iuf" and array.ndim == ndim + 1 and array.shape[-1] == 2:
            array = array[..., 0] + 1j * array[..., 1]  # [re, im] pairs
        array = np.asarray(array, dtype=complex)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: expecting a complex matrix: {exc}") from exc
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{where}: non-finite entries")
    return array


def encode(matrix: np.ndarray) -> list:
    """JSON form of a complex matrix."""
    m = np.asarray(matrix, dtype=complex)
    return np.stack([m.real, m.imag], axis=-1).tolist()


def check_kraus(matrices: list[np.ndarray], num_qubits: int, where: str) -> list[np.ndarray]:
    """Kraus matrices of a CPTP channel on ``num_qubits`` qubits, or one clear error."""
    dim = 1 << num_qubits
    if not matrices:
        raise InvalidInputError(f"{where}: no Kraus matrices")
    for k, m in enumerate(matrices):
        if m.shape != (dim, dim):
            raise InvalidInputError(f"{where}: Kraus matrix {k} has shape {m.shape}, expecting ({dim}, {dim})")
    total = sum(m.conj().T @ m for m in matrices)
    if not np.allclose(total, np.eye(dim), atol=ATOL):
        raise InvalidInputError(
            f"{where}: the channel is not CPTP (sum of K^dagger K differs from the identity by "
            f"{np.max(np.abs(total - np.eye(dim))):.3g}): a noise channel must preserve the trace"
        )
    return matrices


def superop_to_kraus(superop: np.ndarray, num_qubits: int, where: str) -> list[np.ndarray]:
    """Kraus matrices of a superoperator (Qiskit's column-stacking convention), via its Choi matrix."""
    dim = 1 << num_qubits
    if superop.shape != (dim * dim, dim * dim):
        raise InvalidInputError(f"{where}: expecting a {dim * dim}x{dim * dim} superoperator, got {superop.shape}")
    # Qiskit: choi = superop reshaped (d,d,d,d) -> transpose (0,2,1,3)
    choi = superop.reshape(dim, dim, dim, dim).transpose(3, 1, 2, 0).reshape(dim * dim, dim * dim)
    if not np.allclose(choi, choi.conj().T, atol=ATOL):
        raise InvalidInputError(f"{where}: the superoperator is not completely positive (its Choi matrix is not Hermitian)")
    values, vectors = np.linalg.eigh(choi)
    if values.min() < -ATOL:
        raise InvalidInputError(
            f"{where}: the superoperator is not completely positive (Choi eigenvalue {values.min():.3g} < 0)"
        )
    kraus = [
        math.sqrt(v) * vectors[:, i].reshape(dim, dim, order="F")
        for i, v in enumerate(values)
        if v > ATOL
    ]
    return check_kraus(kraus, num_qubits, where)


def check_probabilities(probabilities: Any, count: int, where: str) -> list[float]:
    try:
        p = [float(x) for x in probabilities]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: expecting probabilities: {exc}") from exc
    if len(p) != count:
        raise InvalidInputError(f"{where}: {len(p)} probabilities for {count} branches")
    if any(not math.isfinite(x) or x < -ATOL or x > 1 + ATOL for x in p) or abs(sum(p) - 1) > ATOL:
        raise InvalidInputError(f"{where}: probabilities {p} must be in [0, 1] and add up to 1")
    return [min(1.0, max(0.0, x)) for x in p]


def error_entries(error: dict, where: str) -> list[dict]:
    """The mixtures ``{"instructions": branches, "probabilities": [...]}`` of a quantum error's dict
    (Aer's ``to_dict()``), checked, applied one after the other: one for a ``QuantumError``, one per
    generator for a ``PauliLindbladError`` (each applied on its own, with its probability)."""
    branches = error.get("instructions", [])
    if not isinstance(branches, list):
        raise InvalidInputError(f"{where}.instructions: expecting a list of branches")
    for b, branch in enumerate(branches):
        for inst in branch:
            _check_error_instruction(inst, f"{where}.instructions[{b}]")
    if error.get("type") == "plerror":
        return [{"instructions": [generator, []], "probabilities": [p, 1.0 - p]}
                for generator, p in zip(branches, _lindblad_probabilities(error, len(branches), where))]
    return [{"instructions": branches,
             "probabilities": check_probabilities(error.get("probabilities", []), len(branches), where)}]


def _lindblad_probabilities(error: dict, count: int, where: str) -> list[float]:
    """The probability of each generator of a Pauli-Lindblad error from its rate ``r``: the channel
    ``exp(r (P . P - .))`` is ``P`` applied with probability ``(1 - exp(-2 r)) / 2``."""
    try:
        rates = [float(r) for r in error.get("rates", [])]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: expecting the rates of a PauliLindbladError: {exc}") from exc
    if len(rates) != count:
        raise InvalidInputError(f"{where}: {len(rates)} rates for {count} generators")
    if any(not math.isfinite(r) or r < 0 for r in rates):
        raise InvalidInputError(
            f"{where}: a PauliLindbladError with a negative or non-finite rate ({min(rates)}) is not a physical "
            f"channel (a quasi-probability, as in error cancellation), so it cannot be sampled; give rates >= 0")
    return [-0.5 * math.expm1(-2.0 * r) for r in rates]


def check_assignment(matrix: Any, where: str) -> np.ndarray:
    """A readout assignment matrix: square, 2**k, rows adding up to 1."""
    try:
        a = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: expecting a matrix of probabilities: {exc}") from exc
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2 or a.shape[0] & (a.shape[0] - 1):
        raise InvalidInputError(f"{where}: expecting a 2**k x 2**k assignment matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or a.min() < -ATOL or not np.allclose(a.sum(axis=1), 1, atol=ATOL):
        raise InvalidInputError(f"{where}: each row of the readout assignment matrix must be probabilities adding up to 1")
    return np.clip(a, 0.0, 1.0)


# -- the noise model's table -----------------------------------------------------------
def _relabel(instructions: list, qubits: list[int]) -> list[dict]:
    """An error's instructions (on its qubits 0..k-1) placed on circuit ``qubits``, JSON-ready."""
    out = []
    for inst in instructions:
        name = inst["name"]
        new = {"name": name, "qubits": [qubits[q] for q in inst.get("qubits", [])]}
        params = inst.get("params")
        if params is not None:
            if name in ("kraus", "unitary", "superop"):
                new["params"] = [encode(complex_array(m, f"noise instruction {name}")) for m in params]
            elif name == "pauli":
                new["params"] = [str(p) for p in params]
            else:
                new["params"] = [float(np.real(p)) for p in params]
        out.append(new)
    return out


class NoiseTable:
    """The errors of one noise model, indexed by instruction name and qubits."""

    def __init__(self, data: dict):
        if not isinstance(data, dict) or not isinstance(data.get("errors", None), list):
            raise InvalidInputError("noise_model: expecting a NoiseModel or its to_dict() form {'errors': [...]}")
        #: (name, qubits or None) -> list of errors (quantum: dict; readout: array)
        self.quantum: dict[tuple, list] = {}
        #: ``quantum_errors``' answers: a device model's error on a gate and qubits is relabelled and
        #: checked once, however often the circuit uses them (the instructions share the dicts).
        self._built: dict[tuple, list[dict]] = {}
        self.readout: dict[tuple, np.ndarray] = {}
        self.nonlocal_: dict[tuple, list] = {}
        for k, error in enumerate(data["errors"]):
            where = f"noise_model.errors[{k}]"
            if not isinstance(error, dict):
                raise InvalidInputError(f"{where}: expecting a dict")
            kind = error.get("type")
            operations = error.get("operations", [])
            gate_qubits = error.get("gate_qubits")
            keys = [None] if not gate_qubits else [tuple(int(q) for q in qs) for qs in gate_qubits]
            if kind == "roerror":
                matrix = check_assignment(error.get("probabilities"), where)
                for qs in keys:
                    self.readout[qs] = matrix
            elif kind in ("qerror", "plerror"):
                entries = error_entries(error, where)  # checked once here (CPTP kraus/superop, known names)
                noise_qubits = error.get("noise_qubits")
                for entry in entries:
                    for name in operations:
                        for qs in keys:
                            if noise_qubits:
                                for nq in noise_qubits:
                                    self.nonlocal_.setdefault((name, qs), []).append((entry, [int(q) for q in nq]))
                            else:
                                self.quantum.setdefault((name, qs), []).append(entry)
            else:
                raise InvalidInputError(f"{where}.type: expecting 'qerror', 'plerror' or 'roerror', got {kind!r}")

    def is_empty(self) -> bool:
        return not (self.quantum or self.readout or self.nonlocal_)

    def quantum_errors(self, name: str, qubits: list[int]) -> list[dict]:
        """Noise instructions for ``name`` on ``qubits`` (local error, else the all-qubit one), as
        Aer samples them: an error narrower than the instruction acts on its first qubits (a 1-qubit
        error on every ``unitary`` hits a 2-qubit one's first qubit), and a measure or reset of
        several qubits without an error of its own takes each qubit's."""
        key = tuple(qubits)
        built = self._built.get((name, key))
        if built is not None:
            return built
        if (name, key) in self.quantum or name not in ("measure", "reset") or len(key) < 2:
            targets = [key]
        else:
            targets = [(q,) for q in key]
        out = []
        for target in targets:
            errors = self.quantum.get((name, target))
            for entry in self.quantum.get((name, None), []) if errors is None else errors:
                width = _error_width(entry)
                if width > len(target):
                    raise InvalidInputError(
                        f"noise_model: an error on {width} qubits is attached to {name!r}, which here acts on "
                        f"{len(target)} qubit(s) {list(target)}: an error may not be wider than its instruction "
                        f"(Aer refuses it too); attach it to instructions of at least {width} qubits")
                out.append(_error_instruction(entry, list(target[:width])))
        for entry, nq in self.nonlocal_.get((name, key), []) + self.nonlocal_.get((name, None), []):
            out.append(_error_instruction(entry, nq))
        self._built[(name, key)] = out
        return out

    def readout_error(self, qubits: tuple) -> Optional[np.ndarray]:
        matrix = self.readout.get(tuple(qubits))
        if matrix is None and len(qubits) == 1:
            matrix = self.readout.get(None)
        return matrix


def _error_width(entry: dict) -> int:
    width = 0
    for branch in entry["instructions"]:
        for inst in branch:
            width = max([width] + [int(q) + 1 for q in inst.get("qubits", [])])
    return width


def _check_error_instruction(inst: dict, where: str) -> None:
    name = inst.get("name")
    n = len(inst.get("qubits", []))
    if name == "kraus":
        check_kraus([complex_array(m, where) for m in inst.get("params", [])], n, f"{where} (kraus)")
    elif name == "superop":
        superop_to_kraus(complex_array(inst["params"][0], where), n, f"{where} (superop)")
    elif name == "unitary":
        m = complex_array(inst["params"][0], where)
        if m.shape != (1 << n, 1 << n) or not np.allclose(m.conj().T @ m, np.eye(1 << n), atol=ATOL):
            raise InvalidInputError(f"{where}: the unitary of a quantum error is not unitary")


def _error_instruction(entry: dict, qubits: list[int]) -> dict:
    probabilities = list(entry["probabilities"])
    branches = [_relabel(branch, qubits) for branch in entry["instructions"]]
    return {"name": "quantum_error", "qubits": list(qubits), "probabilities": probabilities, "instructions": branches}


# -- entry points ----------------------------------------------------------------------
def noise_dict(noise_model: Any) -> dict:
    """The serialised form of a NoiseModel, a dict already in that form, or a JSON file of it."""
    if isinstance(noise_model, dict):
        return noise_model
    if isinstance(noise_model, (str, os.PathLike)):
        try:
            with open(noise_model, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"noise model file {os.fspath(noise_model)!r}: {exc}") from exc
        except RecursionError as exc:  # json's decoder recurses per level: a hostile file ends it
            raise InvalidInputError(
                f"noise model file {os.fspath(noise_model)!r}: its arrays or objects are nested too deeply to "
                f"be a noise model: write it with json.dump(noise_model.to_dict(serializable=True), file)"
            ) from exc
    to_dict = getattr(noise_model, "to_dict", None)
    if not callable(to_dict):
        raise InvalidInputError(
            f"noise_model={noise_model!r}: expecting a qiskit_aer.noise.NoiseModel or its to_dict() form"
        )
    try:
        return to_dict(serializable=True)
    except TypeError:
        return to_dict()


def noise_passes(circuits: list, noise_model: Any) -> list:
    """``circuits`` after the noise model's own passes, as Aer runs them before simulating: the
    thermal relaxation ``NoiseModel.from_backend`` puts on delays of scheduled circuits lives there,
    not in ``to_dict()``. Only circuits with a delay are passed through (the passes act on delays)."""
    manager = getattr(noise_model, "_pass_manager", None)
    manager = manager() if callable(manager) else None
    if manager is None:
        return circuits
    out = list(circuits)
    for i, circuit in enumerate(out):
        if any(inst.operation.name == "delay" for inst in circuit.data):
            out[i] = manager.run(circuit)
    return out


def is_noise_model(value: Any) -> bool:
    """The options table's check: a NoiseModel, or its dict form."""
    return callable(getattr(value, "to_dict", None)) or (isinstance(value, dict) and "errors" in value)


def _noisy(table: NoiseTable, instructions: Iterable[dict]) -> list[dict]:
    out: list[dict] = []
    for inst in instructions:
        name = inst["name"]
        for body in ("true_body", "false_body", "body"):
            if body in inst:
                inst = dict(inst, **{body: _noisy(table, inst[body])})
        if "cases" in inst:
            inst = dict(inst, cases=[dict(c, body=_noisy(table, c["body"])) for c in inst["cases"]])
        qubits = list(inst.get("qubits", []))
        if name == "measure":
            out.extend(table.quantum_errors("measure", qubits))
            out.append(inst)
            matrix = table.readout_error(tuple(qubits))
            if matrix is not None:
                out.append({"name": "roerror", "qubits": qubits, "memory": list(inst["memory"]),
                            "params": [matrix.tolist()]})
            elif len(qubits) > 1:
                for q, c in zip(qubits, inst["memory"]):
                    single = table.readout_error((q,))
                    if single is not None:
                        out.append({"name": "roerror", "qubits": [q], "memory": [c], "params": [single.tolist()]})
        elif qubits and name not in NOISE_INSTRUCTIONS and not name.startswith("save_"):
            out.append(inst)
            out.extend(table.quantum_errors(inst.get("label", name) if name == "unitary" else name, qubits))
        else:
            out.append(inst)
    return out


#: id(model) -> (weak reference to the model, fingerprint, the error objects, table), newest last.
_TABLES: dict[int, tuple] = {}
_TABLES_KEPT = 4
_TABLES_LOCK = threading.Lock()  # jobs of one backend may be submitted from several threads


def _model_errors(model: Any) -> Optional[list]:
    """The error objects a qiskit_aer ``NoiseModel``'s ``to_dict()`` is made of, with their places:
    ``[(place, error), ...]``. Aer's errors are immutable (composing one makes a new object) and
    every ``add_*_error`` replaces an entry of these tables, so the same places holding the same
    objects mean the same ``to_dict()``. None for a model laid out otherwise (another version of
    Aer, a subclass that may serialise itself otherwise, a duck type): it is then read again on
    every run."""
    kind = type(model)
    if kind.__name__ != "NoiseModel" or not kind.__module__.startswith("qiskit_aer."):
        return None
    try:
        default, local = model._default_quantum_errors, model._local_quantum_errors
        readout, local_readout = model._default_readout_error, model._local_readout_errors
    except AttributeError:
        return None
    if not (isinstance(default, dict) and isinstance(local, dict) and isinstance(local_readout, dict)):
        return None
    if not all(isinstance(errors, dict) for errors in local.values()):
        return None
    out = [(("q", name), error) for name, error in default.items()]
    out += [(("q", name, tuple(qubits)), error) for name, errors in local.items() for qubits, error in errors.items()]
    out.append((("r",), readout))
    out += [(("r", tuple(qubits)), error) for qubits, error in local_readout.items()]
    return out


def noise_table(noise_model: Any) -> "NoiseTable":
    """The checked table of ``noise_model``: built from ``noise_dict``, and for a NoiseModel object
    kept for its next run while it holds the same errors (what a model costs: a 16-qubit device's
    to_dict() and checks take about 0.3 s, against 0.1 s for its 7-qubit circuit's simulation)."""
    if isinstance(noise_model, (dict, str, os.PathLike)):
        return NoiseTable(noise_dict(noise_model))
    errors = _model_errors(noise_model)
    if errors is None:
        return NoiseTable(noise_dict(noise_model))
    fingerprint = tuple((place, id(error)) for place, error in errors)
    with _TABLES_LOCK:
        kept = _TABLES.get(id(noise_model))
        if kept is not None and kept[0]() is noise_model and kept[1] == fingerprint:
            return kept[3]
    table = NoiseTable(noise_dict(noise_model))
    try:
        ref = weakref.ref(noise_model)
    except TypeError:
        return table
    with _TABLES_LOCK:
        _TABLES.pop(id(noise_model), None)
        # the error objects are held so that no new error can take a kept one's id
        _TABLES[id(noise_model)] = (ref, fingerprint, [error for _, error in errors], table)
        for key in [k for k, entry in _TABLES.items() if entry[0]() is None]:
            del _TABLES[key]
        while len(_TABLES) > _TABLES_KEPT:
            del _TABLES[next(iter(_TABLES))]
    return table


def noise_model_kind(noise_model: Any) -> str:
    """Aer's word for a noise model as a whole: ``"ideal"`` (none, or empty), ``"readout"`` (readout
    errors only) or ``"circuit"`` (quantum errors, which Aer samples shot by shot even on a circuit
    they do not touch)."""
    if noise_model is None:
        return "ideal"
    table = noise_model if isinstance(noise_model, NoiseTable) else noise_table(noise_model)
    if table.is_empty():
        return "ideal"
    return "circuit" if (table.quantum or table.nonlocal_) else "readout"


def add_noise(qobj: Any, noise_model: Any) -> Any:
    """Insert the noise of ``noise_model`` (or its ``NoiseTable``) in every experiment of ``qobj`` (in
    place); returns it."""
    table = noise_model if isinstance(noise_model, NoiseTable) else noise_table(noise_model)
    if table.is_empty():
        return qobj
    for experiment in qobj.experiments:
        experiment.instructions = _noisy(table, experiment.instructions)
    return qobj


__all__ = [
    "NOISE_INSTRUCTIONS", "NoiseTable", "add_noise", "check_assignment", "check_kraus", "complex_array",
    "encode", "is_noise_model", "noise_dict", "noise_model_kind", "noise_passes", "noise_table", "superop_to_kraus",
]


# -- Qobj -> ir (called by translate.py) --------------------------------------------------
_PAULI_GATES = {"X": "x", "Y": "y", "Z": "z"}


def _expand_pauli(inst: dict, at: str) -> list[dict]:
    label = str(inst.get("params", [""])[0])
    qubits = list(inst.get("qubits", []))
    if len(label) != len(qubits) or any(ch not in "IXYZ" for ch in label):
        raise InvalidInputError(f"{at}: Pauli label {label!r} does not fit qubits {qubits}")
    # label[-1] acts on qubits[0], as Qiskit's Pauli
    return [{"name": _PAULI_GATES[ch], "qubits": [q]} for ch, q in zip(reversed(label), qubits) if ch != "I"]


def noise_ops(inst: dict, at: str, ops_of: Any) -> list:
    """``ir`` ops of one noise instruction; ``ops_of(instructions, where)`` translates plain ones."""
    from aer_mpi import ir

    name = inst["name"]
    qubits = tuple(int(q) for q in inst.get("qubits", []))
    if name == "roerror":
        memory = tuple(int(c) for c in inst.get("memory", []))
        matrix = check_assignment(inst.get("params", [None])[0], at)
        if matrix.shape[0] != 1 << len(memory):
            raise InvalidInputError(f"{at}: a {matrix.shape[0]}x{matrix.shape[0]} assignment matrix for {len(memory)} clbits")
        return [ir.Readout(memory, matrix)]
    if name in ("kraus", "superop"):
        params = inst.get("params", [])
        if name == "superop":
            kraus = superop_to_kraus(complex_array(params[0], at), len(qubits), at)
        else:
            kraus = check_kraus([complex_array(m, at) for m in params], len(qubits), at)
        if len(kraus) == 1:  # a unitary: no sampling
            return ops_of([{"name": "unitary", "qubits": list(qubits), "params": [encode(kraus[0])]}], at)
        return [ir.Noise(qubits, kraus=tuple(kraus), name=name)]
    if name == "quantum_error":
        branches_in = inst.get("instructions", [])
        probabilities = check_probabilities(inst.get("probabilities", []), len(branches_in), at)
        branches = []
        for b, branch in enumerate(branches_in):
            plain: list[dict] = []
            for inner in branch:
                if inner["name"] == "pauli":
                    plain.extend(_expand_pauli(inner, f"{at}.instructions[{b}]"))
                else:
                    plain.append(inner)
            branches.append(tuple(ops_of(plain, f"{at}.instructions[{b}]")))
        # merge identical (identity) branches; drop impossible ones
        kept: list[tuple[float, tuple]] = []
        for p, ops in zip(probabilities, branches):
            if p <= 0:
                continue
            if not ops and kept and not kept[0][1]:
                kept[0] = (kept[0][0] + p, ())
            elif not ops:
                kept.insert(0, (p, ()))
            else:
                kept.append((p, ops))
        if len(kept) == 1:
            return list(kept[0][1])  # certain: no sampling
        return [ir.Noise(qubits, tuple(p for p, _ in kept), tuple(ops for _, ops in kept), name="quantum_error")]
    raise InvalidInputError(f"{at}: unknown noise instruction {name!r}")


# -- noise placed directly in a circuit (called by assemble.py) ------------------------------
def circuit_noise(op: Any, qubits: list[int], where: str) -> list[dict]:
    """Qobj instructions of a ``kraus`` / ``superop`` instruction or an Aer ``QuantumError`` in a circuit."""
    name = op.name
    if name == "quantum_channel":
        error = getattr(op, "_quantum_error", None)
        to_dict = getattr(error, "to_dict", None)
        if not callable(to_dict):
            raise InvalidInputError(f"{where}: a quantum_channel instruction without its QuantumError")
        return [_error_instruction(entry, list(qubits)) for entry in error_entries(to_dict(), where)]
    matrices = [complex_array(m, where) for m in op.params]
    if name == "superop":
        superop_to_kraus(matrices[0], len(qubits), where)
    else:
        check_kraus(matrices, len(qubits), where)
    return [{"name": name, "qubits": list(qubits), "params": [encode(m) for m in matrices]}]


def backend_noise_model(backend: Any) -> Any:
    """``qiskit_aer.noise.NoiseModel.from_backend(backend)``, or None when it is ideal."""
    try:
        from qiskit_aer.noise import NoiseModel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InvalidInputError(
            "from_backend needs qiskit-aer for NoiseModel.from_backend: pip install qiskit-aer, "
            "or pass noise_model=None"
        ) from exc
    model = NoiseModel.from_backend(backend)
    return None if model.is_ideal() else model
