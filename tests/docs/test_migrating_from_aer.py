"""docs/migrating-from-aer.md: its examples run as written (one rank), and its option table is the options table."""

import re
from pathlib import Path

import pytest

from aer_mpi.qobj.options import HONOURED, IGNORED, OPTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-aer.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
#: | `name` | `default` | category | what |
ROWS = dict(re.findall(r"^\| `(\w+)` \| `[^`]*` \| ([^|]+?) \|", TEXT, flags=re.M))


def test_the_doc_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_migration_example_runs(index):
    code = compile(BLOCKS[index], f"{DOC.name}[block {index}]", "exec")
    exec(code, {"__name__": f"migrating_{index}"})


def test_every_aer_option_is_in_the_table_with_its_category():
    try:
        from qiskit_aer import AerSimulator

        aer = set(AerSimulator._default_options().__dict__)
    except ImportError:
        aer = {name for name, row in OPTIONS.items() if row.aer}
    assert aer <= set(ROWS)
    words = {HONOURED: "honoured", IGNORED: "accepted, ignored"}
    for name in aer:
        row = OPTIONS.get(name)
        # a row another change adds (noise_model) is checked once it has an Aer category
        expected = "not yet" if row is None else words.get(row.category)
        if expected is not None:
            assert ROWS[name] == expected, name


#: | `name` | runs ... |: the instruction table
INSTRUCTION_ROWS = dict(re.findall(r"^\| `(\w+)` \| (runs[^|]*?) \|$", TEXT, flags=re.M))


def _instruction_circuit(name):
    """A circuit that uses Aer's instruction ``name`` the way a Qiskit user writes it, and whether its
    final state is a pure function of the circuit (so Qiskit's Statevector is its oracle)."""
    import numpy as np
    from qiskit import QuantumCircuit
    from qiskit.circuit import library
    from qiskit.circuit.classical import expr
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.quantum_info import Kraus, Statevector

    qc = QuantumCircuit(5, 1)
    qc.h(range(5))
    qc.rx(0.3, range(5))
    controlled = {"mcr": library.RGate(0.3, 0.5), "mcrx": library.RXGate(0.3), "mcry": library.RYGate(0.3),
                  "mcrz": library.RZGate(0.3), "mcswap": library.SwapGate(), "mcsx": library.SXGate(),
                  "mcu": library.UGate(0.1, 0.2, 0.3), "mcu1": library.U1Gate(0.3), "mcu2": library.U2Gate(0.1, 0.2),
                  "mcu3": library.U3Gate(0.1, 0.2, 0.3), "mcx": library.XGate(), "mcy": library.YGate(),
                  "mcz": library.ZGate(), "mcp": library.PhaseGate(0.4), "mcphase": library.PhaseGate(0.4)}
    standard = get_standard_gate_name_mapping()
    if name in controlled:
        gate = controlled[name].control(3)
        qc.append(gate, list(range(gate.num_qubits)))
    elif name == "cu2":
        qc.append(library.U2Gate(0.2, 0.4).control(1), [0, 1])
    elif name in standard and name not in ("measure", "reset", "delay", "barrier", "global_phase"):
        gate = standard[name]
        if gate.params:
            gate = type(gate)(*np.linspace(0.2, 0.9, len(gate.params)))
        qc.append(gate, list(range(gate.num_qubits)))
    elif name in ("diagonal", "multiplexer", "pauli", "unitary", "mcx_gray", "initialize", "set_statevector"):
        {"diagonal": lambda: qc.append(library.DiagonalGate([1, 1j, -1, -1j]), [0, 2]),
         "multiplexer": lambda: qc.append(library.UCGate([np.eye(2), np.array([[0, 1], [1, 0]])]), [0, 1]),
         "pauli": lambda: qc.append(library.PauliGate("XYZ"), [0, 1, 2]),
         "unitary": lambda: qc.unitary(library.QFTGate(2).to_matrix(), [1, 3]),
         "mcx_gray": lambda: qc.append(library.MCXGrayCode(3), [0, 1, 2, 3]),
         "initialize": lambda: qc.initialize([0.6, 0.8j], [2]),
         "set_statevector": lambda: qc.set_statevector(Statevector.from_label("01+-0"))}[name]()
    elif name == "delay":
        qc.delay(100, 0)
    elif name == "barrier":
        qc.barrier()
    else:  # measured, dynamic, noisy or saving: runs, its results are another test's
        if name in ("measure", "reset"):
            getattr(qc, name)(*([0, 0] if name == "measure" else [0]))
        elif name in ("if_else", "while_loop", "break_loop", "continue_loop", "for_loop", "switch_case", "store"):
            qc.measure(0, 0)
            var = qc.add_var("v", expr.lift(True))
            with qc.for_loop(range(2)):
                with qc.while_loop((qc.clbits[0], 1)):
                    qc.h(1)
                    qc.measure(1, 0)
                    with qc.if_test((qc.clbits[0], 0)) as else_:
                        qc.break_loop()
                    with else_:
                        qc.continue_loop()
            with qc.switch(qc.clbits[0]) as case:
                with case(0):
                    qc.store(var, expr.lift(False))
        elif name in ("kraus", "quantum_channel", "roerror", "qerror_loc"):
            qc.append(Kraus([np.sqrt(0.5) * np.eye(2), np.sqrt(0.5) * np.diag([1, -1])]), [0])
        elif name.startswith("save_"):
            method = {"save_amplitudes_sq": "save_amplitudes_squared", "save_expval": "save_expectation_value",
                      "save_expval_var": "save_expectation_value_variance"}.get(name, name)
            from qiskit.quantum_info import Pauli

            args = {"save_amplitudes": ([0, 3],), "save_amplitudes_squared": ([0, 3],),
                    "save_expectation_value": (Pauli("ZX"), [0, 1]),
                    "save_expectation_value_variance": (Pauli("ZX"), [0, 1]),
                    "save_density_matrix": ([0, 1],), "save_probabilities": ([0, 1],),
                    "save_probabilities_dict": ([0, 1],)}.get(method, ())
            getattr(qc, method)(*args, label="saved")
        else:
            raise AssertionError(f"no circuit for {name}: add one")
        return qc, False
    return qc, True


def test_the_instruction_table_lists_aers_instructions_and_each_runs():
    """Every row says 'runs': a circuit with it runs, and a unitary one gives Qiskit's Statevector."""
    import numpy as np
    from qiskit.quantum_info import Statevector

    from aer_mpi import AerMPISimulator

    assert len(INSTRUCTION_ROWS) > 80 and "not yet" not in TEXT.split("## Aer's statevector instructions")[1]
    backend = AerMPISimulator()
    for name in sorted(INSTRUCTION_ROWS):
        circuit, pure = _instruction_circuit(name)
        if pure:
            if name == "set_statevector":  # the state it sets, whatever came before
                expected = Statevector.from_label("01+-0")
            else:
                expected = Statevector(circuit.remove_final_measurements(inplace=False))
            circuit.save_statevector()
        result = backend.run(circuit, shots=20, seed_simulator=1).result()
        assert result.success, name
        if pure:
            assert np.allclose(np.asarray(result.data(0)["statevector"]), expected.data, atol=1e-10), name
