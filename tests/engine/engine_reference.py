"""A plain numpy reference for engine tests (no MPI, no Qiskit): one full state per shot.

Its measurement rule is the engine's documented one: shot ``s`` draws from
``default_rng([seed, s])``, one draw per measurement or reset, outcome 1
when the draw is below the probability of 1. Final measurements of a
program that is not dynamic are sampled from one stream
``default_rng(seed)`` over the logical basis order, as the engine does.
"""

from __future__ import annotations

import numpy as np

from aer_mpi import ir


def apply(state: np.ndarray, matrix: np.ndarray, qubits, n: int) -> np.ndarray:
    k = len(qubits)
    tensor = state.reshape((2,) * n)
    axes = [n - 1 - q for q in reversed(qubits)]
    m = np.asarray(matrix, dtype=complex).reshape((2,) * (2 * k))
    out = np.tensordot(m, tensor, axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(out, list(range(k)), axes).reshape(-1)


def probability_of_one(state: np.ndarray, qubit: int) -> float:
    idx = np.arange(len(state))
    return float(np.sum(np.abs(state[(idx >> qubit) & 1 == 1]) ** 2))


def collapse(state: np.ndarray, qubit: int, outcome: int) -> np.ndarray:
    idx = np.arange(len(state))
    out = np.where(((idx >> qubit) & 1) == outcome, state, 0)
    return out / np.linalg.norm(out)


X = np.array([[0, 1], [1, 0]], dtype=complex)


class Shot:
    def __init__(self, program: ir.Program, seed: int, shot: int):
        self.n = program.num_qubits
        self.state = np.zeros(1 << self.n, dtype=complex)
        self.state[0] = 1
        self.clbits = np.zeros(max(program.num_clbits, 0), dtype=np.uint8)
        self.rng = np.random.default_rng([seed, shot])
        self.saves: dict = {}

    def run(self, ops) -> None:
        for op in ops:
            if isinstance(op, ir.Gate):
                self.state = apply(self.state, op.matrix, op.qubits, self.n)
            elif isinstance(op, ir.Diagonal):
                self.state = apply(self.state, np.diag(op.diag), op.qubits, self.n)
            elif isinstance(op, ir.Swap):
                swap = np.eye(4)[[0, 2, 1, 3]]
                self.state = apply(self.state, swap, (op.qubit0, op.qubit1), self.n)
            elif isinstance(op, ir.GlobalPhase):
                self.state = self.state * np.exp(1j * op.phase)
            elif isinstance(op, (ir.Measure, ir.Reset)):
                p_one = probability_of_one(self.state, op.qubit)
                outcome = int(self.rng.random() < p_one)
                self.state = collapse(self.state, op.qubit, outcome)
                if isinstance(op, ir.Measure):
                    self.clbits[op.clbit] = outcome
                elif outcome:
                    self.state = apply(self.state, X, (op.qubit,), self.n)
            elif isinstance(op, ir.Save):
                self.saves[op.label] = save_value(self.state, op, self.n)
            elif isinstance(op, ir.IfElse):
                self.run(op.true_ops if ir.condition_holds(op.condition, self.clbits) else op.false_ops)
            elif isinstance(op, ir.WhileLoop):
                while ir.condition_holds(op.condition, self.clbits):
                    self.run(op.body)
            elif isinstance(op, ir.Switch):
                value = ir.evaluate(op.target, self.clbits)
                for values, body in op.cases:
                    if values is None or value in values:
                        self.run(body)
                        break
            else:
                raise TypeError(op)

    def value(self) -> int:
        return sum(int(b) << i for i, b in enumerate(self.clbits))


def probabilities(state: np.ndarray, qubits, n: int) -> np.ndarray:
    probs = np.abs(state) ** 2
    idx = np.arange(len(state))
    out = np.zeros(1 << len(qubits))
    key = np.zeros_like(idx)
    for j, q in enumerate(qubits):
        key |= ((idx >> q) & 1) << j
    np.add.at(out, key, probs)
    return out


def save_value(state: np.ndarray, op: ir.Save, n: int):
    if op.kind == "statevector":
        return state.copy()
    if op.kind == "probabilities":
        return probabilities(state, op.qubits, n)
    raise NotImplementedError(op.kind)


def run_dynamic(program: ir.Program, shots: int, seed: int) -> tuple[list[int], list[dict]]:
    """Each shot's classical register and saves."""
    values, saves = [], []
    for s in range(shots):
        shot = Shot(program, seed, s)
        shot.run(program.ops)
        values.append(shot.value())
        saves.append(shot.saves)
    return values, saves


def run_static(program: ir.Program, shots: int, seed: int) -> tuple[np.ndarray, list[int], dict]:
    """Final state (before the final measurements), each shot's register, and the saves."""
    shot = Shot(program, seed, 0)
    shot.run([op for op in program.ops if not isinstance(op, ir.Measure)])
    measures = ir.final_measurements(program)
    values: list[int] = []
    if measures:
        probs = np.abs(shot.state) ** 2
        uniforms = np.random.default_rng(seed).random(shots) * probs.sum()
        outcomes = np.minimum(np.searchsorted(np.cumsum(probs), uniforms, side="right"), len(probs) - 1)
        for o in outcomes:
            v = 0
            for q, c in measures:
                v = (v & ~(1 << c)) | (((int(o) >> q) & 1) << c)
            values.append(v)
    return shot.state, values, shot.saves


def counts(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[hex(v)] = out.get(hex(v), 0) + 1
    return out
