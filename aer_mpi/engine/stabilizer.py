"""Clifford circuits with mid-circuit measurements, resets, feed-forward and Pauli noise, with no state vector.

Promise of this module: ``is_stabilizer_circuit(program)`` says whether a program
runs here: Clifford gates (engine/tableau.py's test), measurements anywhere,
resets, readout errors, noise whose every branch is a Pauli (Aer's
depolarizing and Pauli errors), and ``if``/``switch`` blocks made of Paulis
(the corrections of error-correction and teleportation circuits).
``run_stabilizer(program, shots, seed)`` gives each shot's classical register,
sampled exactly, in time and memory polynomial in the qubits; a circuit with
final measurements only goes to ``tableau.run_clifford``. ``saved_values``
gives the expectation-value saves of a circuit without mid-circuit
measurements (what ``EstimatorV2`` asks for), exactly.

How (Pauli frames, as Stim's frame simulator, Gidney 2021): one reference run
on a tableau with destabilizers (Aaronson and Gottesman) picks outcome 0 for
every random measurement and records each measurement's reference outcome.
Every shot then carries a Pauli frame F, the Pauli that takes the reference
state to its own (``psi_shot = F psi_ref`` up to a phase): its measured bit
is the reference bit flipped when F has an X there. Gates conjugate F;
a noise branch or a feed-forward block that runs in the shot and not in the
reference (or the other way) multiplies F by its Pauli. F starts, and each
measured or reset qubit restarts, with a random Z (the state is stabilised
by +-Z there, so this changes nothing), which makes a random measurement
random. The frames of a block of shots are bit columns, one per qubit, so
every step is a few numpy operations over the block. Every rank computes
the same shots from one stream: the counts do not depend on the rank count.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

from aer_mpi import ir
from aer_mpi.engine import tableau
from aer_mpi.engine.saves import Saves, pauli_sum_value
from aer_mpi.errors import InvalidInputError


#: Frame bytes a block of shots may hold (two bits per qubit and one per clbit, a byte each).
BLOCK_BYTES = 1 << 25


def _pauli_block(ops: tuple) -> Optional[dict[int, tuple[int, int]]]:
    """Qubit -> (x, z) of the product of ``ops`` when every op is a Pauli gate or a global phase, else None."""
    bits: dict[int, tuple[int, int]] = {}
    for op in ops:
        if isinstance(op, ir.GlobalPhase):
            continue
        pauli = tableau.pauli_of(op)
        if pauli is None:
            return None
        for q, x, z in zip(op.qubits, *pauli):
            old = bits.get(q, (0, 0))
            bits[q] = (old[0] ^ x, old[1] ^ z)
    return {q: xz for q, xz in bits.items() if xz != (0, 0)}


def _pauli_noise(op: Any) -> Optional[tuple[np.ndarray, list]]:
    """A noise op whose every branch is a Pauli: (cumulative probabilities, each branch's Pauli)."""
    if not isinstance(op, ir.Noise) or op.kraus:
        return None
    branches = [_pauli_block(branch) for branch in op.branches]
    if any(branch is None for branch in branches):
        return None
    return np.cumsum(op.probabilities), branches


def _feed_forward_block(ops: tuple) -> Optional[tuple[dict, list]]:
    """A block of an ``if``/``switch``: its Pauli gates' product and its Pauli noise (the noise a noise
    model puts after a conditional gate), or None when it holds anything else."""
    gates = tuple(op for op in ops if not isinstance(op, ir.Noise))
    noises = [_pauli_noise(op) for op in ops if isinstance(op, ir.Noise)]
    pauli = _pauli_block(gates)
    if pauli is None or any(noise is None for noise in noises):
        return None
    return pauli, noises


def _supported(op: Any) -> bool:
    if isinstance(op, (ir.Gate, ir.Diagonal)):
        return tableau.op_table(op) is not None
    if isinstance(op, (ir.Swap, ir.GlobalPhase, ir.Measure, ir.Reset, ir.Readout)):
        return True
    if isinstance(op, ir.Noise):
        return _pauli_noise(op) is not None
    if isinstance(op, (ir.IfElse, ir.Switch)):
        return all(_feed_forward_block(block) is not None for block in ir.blocks(op))
    return False  # saves, set_statevector, loops, stores, Kraus channels


def is_stabilizer_circuit(program: ir.Program) -> bool:
    """Whether ``run_stabilizer`` (and ``saved_values``) simulate ``program`` (see the module's promise)."""
    if not ir.is_dynamic(program):
        return tableau.is_clifford(program)
    return program.num_var_bits == 0 and all(_supported(op) for op in program.ops)


def saved_values(program: ir.Program) -> tuple[dict[str, Any], dict[str, tuple[str, str]], tableau.Tableau]:
    """The saves of a circuit without mid-circuit measurements (``tableau.TABLEAU_SAVES``), as the
    statevector path records them: (label -> value, label -> (kind, subtype)), and the final tableau
    (for ``shot_blocks``: the gates run once). A Pauli's expectation on a stabilizer state is +1 or
    -1 when it is a stabilizer (up to sign), else 0."""
    state = tableau.Tableau(program.num_qubits, destabilizers=True)
    saves = Saves(None)
    for op in program.ops:
        if isinstance(op, ir.SetState):  # set_stabilizer (is_clifford: no other kind)
            state = tableau.Tableau.from_symplectic(op.state, destabilizers=True)
        elif isinstance(op, (ir.Gate, ir.Diagonal)):
            state.apply(op.qubits, tableau.op_table(op))
        elif isinstance(op, ir.Swap):
            state.swap(op.qubit0, op.qubit1)
        elif isinstance(op, ir.Save):
            value: Any
            if tableau.is_tableau_save(op):
                if tuple(op.qubits) != tuple(range(program.num_qubits)):
                    raise InvalidInputError(f"save {op.label!r}: a stabilizer state is saved on every qubit of "
                                            f"the circuit, in order")
                if op.kind == "statevector":  # save_state: the method's state (Aer's label "stabilizer")
                    op = ir.Save("stabilizer", op.qubits, "stabilizer" if op.label == "statevector" else op.label,
                                 op.subtype)
                value = state.symplectic()
            elif op.kind in ("probabilities", "probabilities_dict"):
                value = tableau.outcome_probabilities(state, tuple(op.qubits))
            elif op.kind == "amplitudes_sq":
                value = tableau.outcome_probability(state, tuple(op.qubits), op.params)
            else:
                value = pauli_sum_value(op.kind, op.params,
                                        [state.expectation(label, op.qubits) for label, _, _ in op.params])
            saves.record(op.label, op.subtype, op.kind, value)  # every shot sees it, as in the statevector's static path
    data, kinds = saves.results()
    return data, kinds, state


def measures_anything(program: ir.Program) -> bool:
    return any(isinstance(op, ir.Measure) for op in program.ops)


def run_stabilizer(program: ir.Program, shots: int, seed: int) -> np.ndarray:
    """Each shot's classical register (``program`` passed ``is_stabilizer_circuit``): int64, or Python
    ints past 63 clbits."""
    parts = [values for _, values in shot_blocks(program, shots, seed)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def shot_blocks(program: ir.Program, shots: int, seed: int,
                final: Optional[tableau.Tableau] = None) -> Iterator[tuple[int, np.ndarray]]:
    """``run_stabilizer``'s registers a block of shots at a time, with the shots done so far (the caller
    may stop between blocks: a cancel lands there). ``final``: a circuit without mid-circuit
    measurements' final tableau, when ``saved_values`` made it."""
    if not ir.is_dynamic(program):
        yield shots, tableau.run_clifford(program, shots, seed, final)
        return
    tape = _reference_run(program)
    rng = np.random.default_rng(seed)
    width = program.num_clbits
    block = max(64, BLOCK_BYTES // (2 * program.num_qubits + width + 1))
    for start in range(0, shots, block):
        count = min(block, shots - start)
        yield start + count, _run_frames(tape, program.num_qubits, width, count, rng)


# -- the tape: what every shot's frame does, with the reference's outcomes ---------------
def _condition_clbits(condition: Any) -> tuple[int, ...]:
    if isinstance(condition, ir.Condition):
        return tuple(condition.clbits)
    return _expr_clbits(condition.expr)


def _expr_clbits(expr: tuple) -> tuple[int, ...]:
    if expr[0] == "bits":
        return tuple(expr[1])
    if expr[0] == "const":
        return ()
    found: list[int] = []
    for part in expr[1:]:
        if isinstance(part, tuple):
            found.extend(_expr_clbits(part))
    return tuple(found)


def _reference_run(program: ir.Program) -> list[tuple]:
    """Run the reference on a tableau; the frames' steps, with the reference's outcomes and branches."""
    ref = tableau.Tableau(program.num_qubits, destabilizers=True)
    clbits = np.zeros(max(1, program.num_clbits), dtype=np.uint8)
    tape: list[tuple] = []
    for op in program.ops:
        if isinstance(op, (ir.Gate, ir.Diagonal)):
            table = tableau.op_table(op)
            ref.apply(op.qubits, table)
            if tableau.pauli_of(op) is None:  # a Pauli leaves every frame as it is
                tape.append(("gate", op.qubits, table[0]))
        elif isinstance(op, ir.Swap):
            ref.swap(op.qubit0, op.qubit1)
            tape.append(("swap", op.qubit0, op.qubit1))
        elif isinstance(op, ir.Measure):
            clbits[op.clbit] = outcome = ref.measure(op.qubit)
            tape.append(("measure", op.qubit, op.clbit, outcome))
        elif isinstance(op, ir.Reset):
            if ref.measure(op.qubit):
                ref.apply_pauli({op.qubit: (1, 0)})
            tape.append(("reset", op.qubit))
        elif isinstance(op, ir.Readout):
            cumulative = np.cumsum(np.asarray(op.assignment, dtype=float), axis=1)
            tape.append(("readout", op.clbits, cumulative / cumulative[:, -1:]))
        elif isinstance(op, ir.Noise):  # in the frames only: the reference is the noiseless run
            tape.append(("noise",) + _pauli_noise(op))
        elif isinstance(op, (ir.IfElse, ir.Switch)):
            blocks = [_feed_forward_block(block) for block in ir.blocks(op)]
            taken = _taken_block(op, clbits)
            if taken is not None:
                ref.apply_pauli(blocks[taken][0])
            tape.append(("feed_forward", op, blocks, taken))
        # a global phase changes nothing measurable
    return tape


def _taken_block(op: Any, clbits: Any) -> Optional[int]:
    """Index in ``ir.blocks(op)`` of the block that runs for these clbits (None: none runs)."""
    if isinstance(op, ir.IfElse):
        return 0 if ir.condition_holds(op.condition, clbits) else 1
    value = ir.evaluate(op.target, clbits)
    for index, (case_values, _) in enumerate(op.cases):
        if case_values is None or value in case_values:
            return index
    return None


# -- the frames of a block of shots -------------------------------------------------------
def _run_frames(tape: list[tuple], n: int, width: int, count: int, rng: np.random.Generator) -> np.ndarray:
    fx = np.zeros((n, count), dtype=np.uint8)
    fz = rng.integers(0, 2, size=(n, count), dtype=np.uint8)
    clbits = np.zeros((max(1, width), count), dtype=np.uint8)
    for step in tape:
        kind = step[0]
        if kind == "gate":
            _, qubits, images = step
            index = np.zeros(count, dtype=np.int64)
            for j, q in enumerate(qubits):
                index |= (fx[q].astype(np.int64) << (2 * j)) | (fz[q].astype(np.int64) << (2 * j + 1))
            image = images[index]
            for j, q in enumerate(qubits):
                fx[q] = (image >> (2 * j)) & 1
                fz[q] = (image >> (2 * j + 1)) & 1
        elif kind == "measure":
            _, q, c, outcome = step
            clbits[c] = fx[q] ^ outcome
            fz[q] ^= rng.integers(0, 2, size=count, dtype=np.uint8)
        elif kind == "reset":
            q = step[1]
            fx[q] = 0
            fz[q] = rng.integers(0, 2, size=count, dtype=np.uint8)
        elif kind == "swap":
            _, a, b = step
            fx[[a, b]] = fx[[b, a]]
            fz[[a, b]] = fz[[b, a]]
        elif kind == "noise":
            _, cumulative, branches = step
            _noise(fx, fz, cumulative, branches, rng, None)
        elif kind == "readout":
            _, cbits, cumulative = step
            value = np.zeros(count, dtype=np.int64)
            for j, c in enumerate(cbits):
                value |= clbits[c].astype(np.int64) << j
            draws = rng.random(count)
            recorded = (draws[:, None] >= cumulative[value]).sum(axis=1)
            recorded = np.minimum(recorded, cumulative.shape[1] - 1)
            for j, c in enumerate(cbits):
                clbits[c] = (recorded >> j) & 1
        else:  # feed_forward: each shot's block, against the reference's
            _, op, blocks, taken = step
            shot_blocks = _blocks_per_shot(op, clbits)
            for index, (pauli, noises) in enumerate(blocks):
                runs = shot_blocks == index
                if pauli:  # a block that runs in the shot but not in the reference, or the other way
                    _multiply(fx, fz, pauli, runs != (taken == index))
                for cumulative, branches in noises:  # the block's noise, in the shots that run it
                    _noise(fx, fz, cumulative, branches, rng, runs)
    return tableau.register_values(clbits[:width], width)


def _noise(fx: np.ndarray, fz: np.ndarray, cumulative: np.ndarray, branches: list, rng: np.random.Generator,
           where: Optional[np.ndarray]) -> None:
    """Each shot (of ``where``, a bool mask; None: all) draws a branch; its Pauli multiplies the frame."""
    chosen = np.searchsorted(cumulative, rng.random(fx.shape[1]) * cumulative[-1], side="right")
    for index, pauli in enumerate(branches):
        if pauli:
            _multiply(fx, fz, pauli, chosen == index if where is None else (chosen == index) & where)


def _multiply(fx: np.ndarray, fz: np.ndarray, pauli: dict[int, tuple[int, int]], shots: np.ndarray) -> None:
    """Multiply the frames of the chosen shots (a bool mask) by a Pauli."""
    flip = shots.astype(np.uint8)
    for q, (px, pz) in pauli.items():
        if px:
            fx[q] ^= flip
        if pz:
            fz[q] ^= flip


def _blocks_per_shot(op: Any, clbits: np.ndarray) -> np.ndarray:
    """Each shot's block of ``op`` (-1: none), the condition evaluated once per distinct value of its clbits."""
    count = clbits.shape[1]
    if isinstance(op, ir.IfElse) and isinstance(op.condition, ir.Condition):  # a register's value: bit by bit
        holds = np.ones(count, dtype=bool)
        for j, c in enumerate(op.condition.clbits):
            holds &= clbits[c] == (op.condition.value >> j) & 1
        if op.condition.value >> len(op.condition.clbits):
            holds[:] = False
        return np.where(holds, 0, 1)
    read = sorted(set(_condition_clbits(op.condition) if isinstance(op, ir.IfElse) else _expr_clbits(op.target)))
    if not read:
        taken = _taken_block(op, {})
        return np.full(count, -1 if taken is None else taken, dtype=np.int64)
    values, inverse = np.unique(clbits[read], axis=1, return_inverse=True)
    blocks = np.empty(values.shape[1], dtype=np.int64)
    for k in range(values.shape[1]):
        taken = _taken_block(op, dict(zip(read, values[:, k].tolist())))
        blocks[k] = -1 if taken is None else taken
    return blocks[np.asarray(inverse).reshape(-1)]


__all__ = ["is_stabilizer_circuit", "measures_anything", "run_stabilizer", "saved_values", "shot_blocks"]
