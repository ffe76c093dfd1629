"""Qobj experiment -> ``ir.Program``.

Gate matrices come from Qiskit's standard gate classes, so every standard
gate is exactly what Qiskit means by it. Diagonal matrices become
``ir.Diagonal`` (they never move data) and swaps become ``ir.Swap`` (a
relabelling).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from aer_mpi import ir
from aer_mpi.errors import InvalidInputError
from aer_mpi.qobj import QobjExperiment

SAVE_KINDS_BY_NAME = {f"save_{kind}": kind for kind in ir.SAVE_KINDS}
#: Save kinds the engine runs today.
SUPPORTED_SAVES = {"save_statevector"}


@lru_cache(maxsize=None)
def _gate_class(name: str) -> Any:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    return type(get_standard_gate_name_mapping()[name])


@lru_cache(maxsize=4096)
def gate_matrix(name: str, params: tuple[float, ...]) -> np.ndarray:
    """Matrix of standard gate ``name`` with ``params`` (cached: circuits repeat gates)."""
    gate = _gate_class(name)(*params)
    matrix = np.asarray(gate.to_matrix(), dtype=complex)
    matrix.setflags(write=False)
    return matrix


def decode_matrix(data: Any) -> np.ndarray:
    array = np.asarray(data, dtype=float)
    return array[..., 0] + 1j * array[..., 1]


def _gate_op(qubits: tuple[int, ...], matrix: np.ndarray, name: str) -> ir.Op:
    off_diagonal = matrix - np.diag(np.diag(matrix))
    if not np.any(off_diagonal):
        return ir.Diagonal(qubits, np.diag(matrix).copy(), name)
    if name == "swap":
        return ir.Swap(qubits[0], qubits[1])
    return ir.Gate(qubits, matrix, name)


def _ops(instructions: list[dict], where: str) -> list[ir.Op]:
    ops: list[ir.Op] = []
    for i, inst in enumerate(instructions):
        name = inst["name"]
        qubits = tuple(inst.get("qubits", []))
        at = f"{where}[{i}] ({name})"
        if name in ("barrier", "delay", "id"):
            continue
        if name == "measure":
            ops.extend(ir.Measure(q, c) for q, c in zip(qubits, inst["memory"]))
        elif name == "reset":
            ops.extend(ir.Reset(q) for q in qubits)
        elif name == "global_phase":
            ops.append(ir.GlobalPhase(float(inst["params"][0])))
        elif name == "unitary":
            matrix = decode_matrix(inst["params"][0])
            dim = 1 << len(qubits)
            if matrix.shape != (dim, dim):
                raise InvalidInputError(f"{at}: expecting a {dim}x{dim} matrix, got {matrix.shape}")
            if not np.allclose(matrix.conj().T @ matrix, np.eye(dim), atol=1e-8):
                raise InvalidInputError(f"{at}: the matrix is not unitary")
            ops.append(_gate_op(qubits, matrix, inst.get("label", "unitary")))
        elif name == "diagonal":
            diag = decode_matrix(inst["params"])
            if diag.shape != (1 << len(qubits),) or not np.allclose(np.abs(diag), 1, atol=1e-8):
                raise InvalidInputError(f"{at}: expecting {1 << len(qubits)} entries of modulus 1")
            ops.append(ir.Diagonal(qubits, diag, "diagonal"))
        elif name.startswith("save_"):
            if name not in SUPPORTED_SAVES:
                raise InvalidInputError(f"{at}: {name} is not supported yet; use save_statevector")
            ops.append(
                ir.Save(SAVE_KINDS_BY_NAME[name], qubits, inst.get("label", name[5:]), inst.get("subtype", "single"))
            )
        elif name == "if_else":
            cond = inst["condition"]
            ops.append(
                ir.IfElse(
                    ir.Condition(tuple(cond["clbits"]), int(cond["value"])),
                    tuple(_ops(inst.get("true_body", []), f"{at}.true_body")),
                    tuple(_ops(inst.get("false_body", []), f"{at}.false_body")),
                )
            )
        else:
            try:
                matrix = gate_matrix(name, tuple(float(p) for p in inst.get("params", [])))
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInputError(f"{at}: cannot build gate {name!r}: {exc}") from exc
            if matrix.shape[0] != 1 << len(qubits):
                raise InvalidInputError(f"{at}: {name} acts on {matrix.shape[0].bit_length() - 1} qubits, got {len(qubits)}")
            if name == "global_phase":
                ops.append(ir.GlobalPhase(float(inst["params"][0])))
            else:
                ops.append(_gate_op(qubits, matrix, name))
    return ops


def to_program(experiment: QobjExperiment, index: int = 0) -> ir.Program:
    header = experiment.header
    ops = _ops(experiment.instructions, f"experiments[{index}].instructions")
    return ir.Program(
        num_qubits=int(header["n_qubits"]),
        num_clbits=int(header.get("memory_slots", 0)),
        ops=tuple(ops),
        name=str(header.get("name", f"circuit-{index}")),
    )
