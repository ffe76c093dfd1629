"""aer_mpi's own save instructions, so that circuits need no qiskit-aer.

They carry the same names, labels, subtypes and params as Aer's
(``qiskit_aer.library``), so the engine treats both alike and a circuit built
for Aer runs unchanged. Each class has a helper function
(``save_probabilities(circuit, ...)``), and, when qiskit-aer has not already
defined them, the same ``QuantumCircuit`` methods as Aer
(``circuit.save_probabilities(...)``): see ``install_circuit_methods``.

Subtypes (Aer's): ``single`` (one value), ``list`` (``pershot=True``: one
value per shot), ``average`` (the mean over shots), ``accum``
(``unnormalized=True``: the sum over shots), and the ``c_`` forms
(``conditional=True``): a dict keyed by the classical memory (hex) when the
save ran.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from qiskit.circuit import Instruction, QuantumCircuit

from aer_mpi.qobj.instructions import (
    METHOD_LABEL, SAVE_INSTRUCTIONS, SET_MATRIX_PRODUCT_STATE, SET_STATEVECTOR, save_subtype,
)


class SaveData(Instruction):
    """Base of the save instructions: a directive that records, never changes, the state."""

    _directive = True

    def __init__(self, name: str, num_qubits: int, label: str, subtype: str, params: Optional[list] = None):
        super().__init__(name, num_qubits, 0, list(params or []), label=label)
        self._label = label
        self._subtype = subtype

    def validate_parameter(self, parameter: Any) -> Any:
        return parameter  # basis states and (pauli, coefficients) terms, not angles


def _label(name: str) -> str:
    """Default label of save instruction ``name`` (Aer's)."""
    return SAVE_INSTRUCTIONS[name].label


class SaveStatevector(SaveData):
    """Save the statevector (gathered to rank 0; other ranks' results do not hold it)."""

    def __init__(
        self, num_qubits: int, label: str = _label("save_statevector"), pershot: bool = False, conditional: bool = False
    ):
        subtype = save_subtype("save_statevector", False, pershot, conditional)
        super().__init__("save_statevector", num_qubits, label, subtype)


class SaveStatevectorDict(SaveData):
    """Save the statevector as a dict ``{hex basis state: amplitude}`` of its non-zero entries."""

    def __init__(
        self,
        num_qubits: int,
        label: str = _label("save_statevector_dict"),
        pershot: bool = False,
        conditional: bool = False,
    ):
        subtype = save_subtype("save_statevector_dict", False, pershot, conditional)
        super().__init__("save_statevector_dict", num_qubits, label, subtype)


class SaveProbabilities(SaveData):
    """Save the probabilities of the basis states of its qubits (an array, qubit 0 lowest)."""

    def __init__(
        self,
        num_qubits: int,
        label: str = _label("save_probabilities"),
        unnormalized: bool = False,
        pershot: bool = False,
        conditional: bool = False,
    ):
        super().__init__(
            "save_probabilities", num_qubits, label,
            save_subtype("save_probabilities", unnormalized, pershot, conditional),
        )


class SaveProbabilitiesDict(SaveData):
    """Save the probabilities as ``{hex basis state: probability}`` (non-zero entries)."""

    def __init__(
        self,
        num_qubits: int,
        label: str = _label("save_probabilities_dict"),
        unnormalized: bool = False,
        pershot: bool = False,
        conditional: bool = False,
    ):
        super().__init__(
            "save_probabilities_dict", num_qubits, label,
            save_subtype("save_probabilities_dict", unnormalized, pershot, conditional),
        )


def _basis_states(params: Sequence[Any], num_qubits: int) -> list[int]:
    from aer_mpi.errors import InvalidInputError

    states = []
    for p in params:
        value = int(p, 2) if isinstance(p, str) else int(p)
        if not 0 <= value < (1 << num_qubits):
            raise InvalidInputError(f"basis state {p!r} is not in range(2**{num_qubits})")
        states.append(value)
    if not states:
        raise InvalidInputError("expecting at least one basis state")
    return states


class SaveAmplitudes(SaveData):
    """Save the amplitudes of the basis states ``params`` (ints or bitstrings)."""

    def __init__(
        self,
        num_qubits: int,
        params: Sequence[Any],
        label: str = _label("save_amplitudes"),
        pershot: bool = False,
        conditional: bool = False,
    ):
        super().__init__(
            "save_amplitudes", num_qubits, label, save_subtype("save_amplitudes", False, pershot, conditional),
            _basis_states(params, num_qubits),
        )


class SaveAmplitudesSquared(SaveData):
    """Save the probabilities of the basis states ``params``."""

    def __init__(
        self,
        num_qubits: int,
        params: Sequence[Any],
        label: str = _label("save_amplitudes_sq"),
        unnormalized: bool = False,
        pershot: bool = False,
        conditional: bool = False,
    ):
        super().__init__(
            "save_amplitudes_sq", num_qubits, label,
            save_subtype("save_amplitudes_sq", unnormalized, pershot, conditional),
            _basis_states(params, num_qubits),
        )


def expectation_terms(operator: Any, variance: bool = False) -> list[tuple[str, list[float]]]:
    """Aer's params of an observable: ``(pauli, [coeff in O, coeff in O @ O])`` per Pauli term.

    ``operator`` is a Pauli, a SparsePauliOp, a label, or anything
    ``SparsePauliOp.from_operator`` takes; it must be Hermitian.
    """
    from qiskit.quantum_info import Operator, Pauli, SparsePauliOp

    from aer_mpi.errors import InvalidInputError

    if isinstance(operator, str):
        operator = Pauli(operator)
    if isinstance(operator, Pauli):
        operator = SparsePauliOp(operator)
    elif not isinstance(operator, SparsePauliOp):
        operator = SparsePauliOp.from_operator(Operator(operator))
    if np.any(np.abs(operator.simplify(atol=1e-12).coeffs.imag) > 1e-10):
        raise InvalidInputError("the observable is not Hermitian: an expectation value needs a Hermitian operator")
    params: dict[str, list[float]] = {}
    for label, coeff in operator.label_iter():
        params.setdefault(label, [0.0, 0.0])[0] += float(coeff.real)
    if variance:
        for label, coeff in operator.dot(operator).label_iter():
            params.setdefault(label, [0.0, 0.0])[1] += float(coeff.real)
    return list(params.items())


class SaveExpectationValue(SaveData):
    """Save the expectation value of a Hermitian operator on its qubits (a float)."""

    def __init__(
        self,
        operator: Any,
        label: str = _label("save_expval"),
        unnormalized: bool = False,
        pershot: bool = False,
        conditional: bool = False,
    ):
        terms = expectation_terms(operator)
        super().__init__(
            "save_expval", len(terms[0][0]), label,
            save_subtype("save_expval", unnormalized, pershot, conditional), terms,
        )


class SaveExpectationValueVariance(SaveData):
    """Save ``[expectation value, variance]`` of a Hermitian operator on its qubits."""

    def __init__(
        self,
        operator: Any,
        label: str = _label("save_expval_var"),
        unnormalized: bool = False,
        pershot: bool = False,
        conditional: bool = False,
    ):
        terms = expectation_terms(operator, variance=True)
        super().__init__(
            "save_expval_var", len(terms[0][0]), label,
            save_subtype("save_expval_var", unnormalized, pershot, conditional), terms,
        )


class SaveState(SaveData):
    """Save the simulator's state: for the statevector method, the statevector under "statevector"."""

    def __init__(self, num_qubits: int, label: Optional[str] = None, pershot: bool = False, conditional: bool = False):
        super().__init__("save_state", num_qubits, label or METHOD_LABEL,
                         save_subtype("save_state", False, pershot, conditional))


class SaveUnitary(SaveData):
    """Save the circuit's unitary so far (``method="unitary"``), on every qubit of the circuit."""

    def __init__(self, num_qubits: int, label: str = _label("save_unitary"), pershot: bool = False):
        super().__init__("save_unitary", num_qubits, label, save_subtype("save_unitary", False, pershot))


class SaveSuperOp(SaveData):
    """Save the circuit's superoperator so far (``method="superop"``), on every qubit of the circuit."""

    def __init__(self, num_qubits: int, label: str = _label("save_superop"), pershot: bool = False):
        super().__init__("save_superop", num_qubits, label, save_subtype("save_superop", False, pershot))


class SaveStabilizer(SaveData):
    """Save the stabilizer state (``method="stabilizer"``, or ``"automatic"`` on a Clifford circuit),
    on every qubit of the circuit: a ``qiskit.quantum_info.StabilizerState``."""

    def __init__(self, num_qubits: int, label: str = _label("save_stabilizer"), pershot: bool = False,
                 conditional: bool = False):
        super().__init__("save_stabilizer", num_qubits, label,
                         save_subtype("save_stabilizer", False, pershot, conditional))


class SaveClifford(SaveData):
    """Save the stabilizer state's Clifford (its tableau), as a ``qiskit.quantum_info.Clifford``."""

    def __init__(self, num_qubits: int, label: str = _label("save_clifford"), pershot: bool = False):
        super().__init__("save_clifford", num_qubits, label, save_subtype("save_clifford", False, pershot))


class SaveMatrixProductState(SaveData):
    """Save the matrix product state (``method="matrix_product_state"``), on every qubit of the circuit:
    Aer's tuple ``([(G_q^0, G_q^1) for each qubit q], [lambda_q for each bond])`` in Vidal's form."""

    def __init__(self, num_qubits: int, label: str = _label("save_matrix_product_state"), pershot: bool = False):
        super().__init__("save_matrix_product_state", num_qubits, label,
                         save_subtype("save_matrix_product_state", False, pershot))


class SaveDensityMatrix(SaveData):
    """Save the reduced density matrix of its qubits (computed across ranks, never gathering the state)."""

    def __init__(
        self,
        num_qubits: int,
        label: str = _label("save_density_matrix"),
        unnormalized: bool = False,
        pershot: bool = False,
        conditional: bool = False,
    ):
        super().__init__(
            "save_density_matrix", num_qubits, label,
            save_subtype("save_density_matrix", unnormalized, pershot, conditional),
        )


class SetStatevector(Instruction):
    """Replace the whole state by ``state`` (Aer's ``set_statevector``; on every qubit of the circuit)."""

    def __init__(self, state: Any):
        state = np.asarray(getattr(state, "data", state), dtype=complex).ravel()
        num_qubits = int(state.size).bit_length() - 1
        if state.size < 2 or state.size != 1 << num_qubits:
            raise ValueError(f"a statevector needs 2**n amplitudes, got {state.size}")
        if not np.isclose(np.vdot(state, state).real, 1.0, atol=1e-8):
            raise ValueError("the statevector is not normalised")
        super().__init__(SET_STATEVECTOR, num_qubits, 0, [state])

    def validate_parameter(self, parameter: Any) -> Any:
        return parameter  # the amplitudes


class _SetMatrix(Instruction):
    """Replace the whole state by a matrix (Aer's ``set_density_matrix``, ``set_unitary``, ``set_superop``)."""

    _directive = True
    #: The instruction's name and how many qubits' worth of bits a side of its matrix has per qubit.
    set_name = ""
    bits_per_qubit = 1

    def __init__(self, state: Any):
        matrix = np.asarray(getattr(state, "data", state), dtype=complex)
        num_qubits = (int(matrix.shape[0]).bit_length() - 1) // self.bits_per_qubit if matrix.ndim == 2 else 0
        if (matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or num_qubits < 1
                or matrix.shape[0] != 1 << (num_qubits * self.bits_per_qubit)):
            raise ValueError(f"{self.set_name} needs a square matrix of a power of "
                             f"{1 << self.bits_per_qubit} rows, got shape {matrix.shape}")
        super().__init__(self.set_name, num_qubits, 0, [matrix])

    def validate_parameter(self, parameter: Any) -> Any:
        return parameter  # the matrix


class SetDensityMatrix(_SetMatrix):
    """Replace the state by a density matrix (``method="density_matrix"``; on every qubit)."""

    set_name = "set_density_matrix"


class SetUnitary(_SetMatrix):
    """Replace the circuit's unitary so far (``method="unitary"``; on every qubit)."""

    set_name = "set_unitary"


class SetSuperOp(_SetMatrix):
    """Replace the circuit's superoperator so far (``method="superop"``; on every qubit)."""

    set_name = "set_superop"
    bits_per_qubit = 2


class SetStabilizer(Instruction):
    """Replace the state by a stabilizer state (a ``Clifford`` or ``StabilizerState``; the tableau)."""

    _directive = True

    def __init__(self, state: Any):
        from qiskit.quantum_info import Clifford, StabilizerState

        clifford = state.clifford if isinstance(state, StabilizerState) else (
            state if isinstance(state, Clifford) else Clifford(state))
        super().__init__("set_stabilizer", clifford.num_qubits, 0, [clifford.to_dict()])

    def validate_parameter(self, parameter: Any) -> Any:
        return parameter  # the Clifford's labels


class SetMatrixProductState(Instruction):
    """Replace the state by a matrix product state ``(sites, lambdas)``, as Aer's
    ``save_matrix_product_state`` gives it (site i: ``(G0, G1)``, qubit i's matrices; lambdas: the bonds'
    Schmidt values). It runs as the statevector it stands for (at most
    ``SET_MATRIX_PRODUCT_STATE_MAX_QUBITS`` qubits)."""

    _directive = True

    def __init__(self, state: Any):
        if (not isinstance(state, (tuple, list)) or len(state) != 2 or not isinstance(state[0], (list, tuple))
                or not isinstance(state[1], (list, tuple)) or len(state[0]) != len(state[1]) + 1
                or not all(isinstance(site, (list, tuple)) and len(site) == 2 for site in state[0])):
            raise ValueError("a matrix product state is (sites, lambdas): a list of n (G0, G1) matrix pairs and a "
                             "list of n - 1 vectors of Schmidt values")
        super().__init__(SET_MATRIX_PRODUCT_STATE, len(state[0]), 0, [state])

    def validate_parameter(self, parameter: Any) -> Any:
        return parameter  # the matrices


# -- helper functions: append to a circuit and return it ------------------


def _qubits(circuit: QuantumCircuit, qubits: Optional[Sequence[Any]]) -> list[Any]:
    return list(circuit.qubits) if qubits is None else list(qubits)


def save_statevector(
    circuit: QuantumCircuit, label: str = "statevector", pershot: bool = False, conditional: bool = False
) -> QuantumCircuit:
    """Append a SaveStatevector over all of ``circuit``'s qubits, and return the circuit."""
    circuit.append(SaveStatevector(circuit.num_qubits, label, pershot, conditional), circuit.qubits)
    return circuit


def save_statevector_dict(
    circuit: QuantumCircuit, label: str = "statevector", pershot: bool = False, conditional: bool = False
) -> QuantumCircuit:
    """Append a SaveStatevectorDict; the default label is Aer's method's ("statevector")."""
    circuit.append(SaveStatevectorDict(circuit.num_qubits, label, pershot, conditional), circuit.qubits)
    return circuit


def save_probabilities(
    circuit: QuantumCircuit,
    qubits: Optional[Sequence[Any]] = None,
    label: str = "probabilities",
    unnormalized: bool = False,
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    qubits = _qubits(circuit, qubits)
    circuit.append(SaveProbabilities(len(qubits), label, unnormalized, pershot, conditional), qubits)
    return circuit


def save_probabilities_dict(
    circuit: QuantumCircuit,
    qubits: Optional[Sequence[Any]] = None,
    label: str = "probabilities",
    unnormalized: bool = False,
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    qubits = _qubits(circuit, qubits)
    circuit.append(SaveProbabilitiesDict(len(qubits), label, unnormalized, pershot, conditional), qubits)
    return circuit


def save_amplitudes(
    circuit: QuantumCircuit,
    params: Sequence[Any],
    label: str = "amplitudes",
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    circuit.append(SaveAmplitudes(circuit.num_qubits, params, label, pershot, conditional), circuit.qubits)
    return circuit


def save_amplitudes_squared(
    circuit: QuantumCircuit,
    params: Sequence[Any],
    label: str = "amplitudes_squared",
    unnormalized: bool = False,
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    circuit.append(
        SaveAmplitudesSquared(circuit.num_qubits, params, label, unnormalized, pershot, conditional), circuit.qubits
    )
    return circuit


def save_expectation_value(
    circuit: QuantumCircuit,
    operator: Any,
    qubits: Optional[Sequence[Any]] = None,
    label: str = "expectation_value",
    unnormalized: bool = False,
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    """Append a SaveExpectationValue of ``operator`` on ``qubits`` (default: all, in order)."""
    circuit.append(
        SaveExpectationValue(operator, label, unnormalized, pershot, conditional), _qubits(circuit, qubits)
    )
    return circuit


def save_expectation_value_variance(
    circuit: QuantumCircuit,
    operator: Any,
    qubits: Optional[Sequence[Any]] = None,
    label: str = "expectation_value_variance",
    unnormalized: bool = False,
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    circuit.append(
        SaveExpectationValueVariance(operator, label, unnormalized, pershot, conditional), _qubits(circuit, qubits)
    )
    return circuit


def save_state(
    circuit: QuantumCircuit, label: Optional[str] = None, pershot: bool = False, conditional: bool = False
) -> QuantumCircuit:
    """Append a SaveState over all of ``circuit``'s qubits (label "statevector" by default)."""
    circuit.append(SaveState(circuit.num_qubits, label, pershot, conditional), circuit.qubits)
    return circuit


def save_unitary(circuit: QuantumCircuit, label: str = "unitary", pershot: bool = False) -> QuantumCircuit:
    """Append a SaveUnitary over all of ``circuit``'s qubits (``method="unitary"``), and return the circuit."""
    circuit.append(SaveUnitary(circuit.num_qubits, label, pershot), circuit.qubits)
    return circuit


def save_superop(circuit: QuantumCircuit, label: str = "superop", pershot: bool = False) -> QuantumCircuit:
    """Append a SaveSuperOp over all of ``circuit``'s qubits (``method="superop"``), and return the circuit."""
    circuit.append(SaveSuperOp(circuit.num_qubits, label, pershot), circuit.qubits)
    return circuit


def save_stabilizer(circuit: QuantumCircuit, label: str = "stabilizer", pershot: bool = False,
                    conditional: bool = False) -> QuantumCircuit:
    """Append a SaveStabilizer over all of ``circuit``'s qubits, and return the circuit."""
    circuit.append(SaveStabilizer(circuit.num_qubits, label, pershot, conditional), circuit.qubits)
    return circuit


def save_matrix_product_state(circuit: QuantumCircuit, label: str = "matrix_product_state",
                              pershot: bool = False) -> QuantumCircuit:
    """Append a SaveMatrixProductState over all of ``circuit``'s qubits, and return the circuit."""
    circuit.append(SaveMatrixProductState(circuit.num_qubits, label, pershot), circuit.qubits)
    return circuit


def save_clifford(circuit: QuantumCircuit, label: str = "clifford", pershot: bool = False) -> QuantumCircuit:
    """Append a SaveClifford over all of ``circuit``'s qubits, and return the circuit."""
    circuit.append(SaveClifford(circuit.num_qubits, label, pershot), circuit.qubits)
    return circuit


def save_density_matrix(
    circuit: QuantumCircuit,
    qubits: Optional[Sequence[Any]] = None,
    label: str = "density_matrix",
    unnormalized: bool = False,
    pershot: bool = False,
    conditional: bool = False,
) -> QuantumCircuit:
    """Append a SaveDensityMatrix of ``qubits`` (default: all), and return the circuit."""
    qubits = _qubits(circuit, qubits)
    circuit.append(SaveDensityMatrix(len(qubits), label, unnormalized, pershot, conditional), qubits)
    return circuit


def set_statevector(circuit: QuantumCircuit, state: Any) -> QuantumCircuit:
    """Append a SetStatevector over all of ``circuit``'s qubits, and return the circuit."""
    instruction = SetStatevector(state)
    if instruction.num_qubits != circuit.num_qubits:
        raise ValueError(f"the state has {instruction.num_qubits} qubits, the circuit {circuit.num_qubits}")
    circuit.append(instruction, circuit.qubits)
    return circuit


def _set_whole(circuit: QuantumCircuit, instruction: Instruction) -> QuantumCircuit:
    if instruction.num_qubits != circuit.num_qubits:
        raise ValueError(f"the state has {instruction.num_qubits} qubits, the circuit {circuit.num_qubits}")
    circuit.append(instruction, circuit.qubits)
    return circuit


def set_matrix_product_state(circuit: QuantumCircuit, state: Any) -> QuantumCircuit:
    """Append a SetMatrixProductState over all of ``circuit``'s qubits, and return the circuit."""
    return _set_whole(circuit, SetMatrixProductState(state))


def set_density_matrix(circuit: QuantumCircuit, state: Any) -> QuantumCircuit:
    """Append a SetDensityMatrix over all of ``circuit``'s qubits, and return the circuit."""
    return _set_whole(circuit, SetDensityMatrix(state))


def set_unitary(circuit: QuantumCircuit, state: Any) -> QuantumCircuit:
    """Append a SetUnitary over all of ``circuit``'s qubits, and return the circuit."""
    return _set_whole(circuit, SetUnitary(state))


def set_superop(circuit: QuantumCircuit, state: Any) -> QuantumCircuit:
    """Append a SetSuperOp over all of ``circuit``'s qubits, and return the circuit."""
    return _set_whole(circuit, SetSuperOp(state))


def set_stabilizer(circuit: QuantumCircuit, state: Any) -> QuantumCircuit:
    """Append a SetStabilizer over all of ``circuit``'s qubits, and return the circuit."""
    return _set_whole(circuit, SetStabilizer(state))


_METHODS = {
    "save_statevector": save_statevector,
    "save_statevector_dict": save_statevector_dict,
    "save_probabilities": save_probabilities,
    "save_probabilities_dict": save_probabilities_dict,
    "save_amplitudes": save_amplitudes,
    "save_amplitudes_squared": save_amplitudes_squared,
    "save_expectation_value": save_expectation_value,
    "save_expectation_value_variance": save_expectation_value_variance,
    "save_state": save_state,
    "save_density_matrix": save_density_matrix,
    "save_unitary": save_unitary,
    "save_superop": save_superop,
    "save_stabilizer": save_stabilizer,
    "save_clifford": save_clifford,
    "save_matrix_product_state": save_matrix_product_state,
    "set_statevector": set_statevector,
    "set_density_matrix": set_density_matrix,
    "set_unitary": set_unitary,
    "set_superop": set_superop,
    "set_stabilizer": set_stabilizer,
    "set_matrix_product_state": set_matrix_product_state,
}


def install_circuit_methods() -> list[str]:
    """Add ``QuantumCircuit.save_*`` methods that are not defined yet (qiskit-aer's stay).

    Returns the names added. ``import aer_mpi.library`` calls it.
    """
    added = []
    for name, function in _METHODS.items():
        if not hasattr(QuantumCircuit, name):
            setattr(QuantumCircuit, name, function)
            added.append(name)
    return added


install_circuit_methods()

__all__ = [
    "SaveAmplitudes",
    "SaveAmplitudesSquared",
    "SaveClifford",
    "SaveData",
    "SaveDensityMatrix",
    "SaveMatrixProductState",
    "SaveStabilizer",
    "SaveState",
    "SaveExpectationValue",
    "SaveExpectationValueVariance",
    "SaveProbabilities",
    "SaveProbabilitiesDict",
    "SaveStatevector",
    "SaveStatevectorDict",
    "SaveSuperOp",
    "SaveUnitary",
    "SetDensityMatrix",
    "SetStabilizer",
    "SetMatrixProductState",
    "SetStatevector",
    "SetSuperOp",
    "SetUnitary",
    "expectation_terms",
    "install_circuit_methods",
    "save_amplitudes",
    "save_amplitudes_squared",
    "save_clifford",
    "save_density_matrix",
    "save_matrix_product_state",
    "save_stabilizer",
    "save_state",
    "save_expectation_value",
    "save_expectation_value_variance",
    "save_probabilities",
    "save_probabilities_dict",
    "save_statevector",
    "save_statevector_dict",
    "save_superop",
    "save_unitary",
    "set_density_matrix",
    "set_stabilizer",
    "set_matrix_product_state",
    "set_statevector",
    "set_superop",
    "set_unitary",
]

# Aer's submodules of its library (``from qiskit_aer.library.save_instructions import SaveStatevector``,
# ``...save_instructions.save_statevector``): all of them are this module
_AER_SUBMODULES = {
    "save_instructions": ("save_amplitudes", "save_clifford", "save_data", "save_density_matrix",
                          "save_expectation_value", "save_matrix_product_state", "save_probabilities",
                          "save_stabilizer", "save_state", "save_statevector", "save_superop", "save_unitary"),
    "set_instructions": ("set_density_matrix", "set_matrix_product_state", "set_stabilizer", "set_statevector",
                         "set_superop", "set_unitary"),
}


def _register_aer_submodules() -> None:
    import sys

    this = sys.modules[__name__]
    for package, modules in _AER_SUBMODULES.items():
        sys.modules.setdefault(f"{__name__}.{package}", this)
        for module in modules:
            sys.modules.setdefault(f"{__name__}.{package}.{module}", this)


_register_aer_submodules()
