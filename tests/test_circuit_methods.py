"""QuantumCircuit.save_* / set_statevector after ``import aer_mpi``, which itself does not import qiskit."""

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_aer_mpi_then_qiskit_adds_the_methods_without_importing_qiskit_itself():
    out = _run(
        """
        import sys
        import aer_mpi
        assert "qiskit" not in sys.modules
        from qiskit import QuantumCircuit
        qc = QuantumCircuit(2)
        qc.save_density_matrix([0])
        qc.save_state()
        qc.set_statevector([0, 1, 0, 0])
        print(type(qc.data[0].operation).__module__, qc.data[1].operation.name, qc.data[2].operation.name)
        """
    )
    assert out == "aer_mpi.library save_state set_statevector"


def test_qiskit_first_then_aer_mpi_adds_the_methods():
    assert _run(
        """
        from qiskit import QuantumCircuit
        import aer_mpi
        print(hasattr(QuantumCircuit, "save_expectation_value"), hasattr(QuantumCircuit, "save_state"))
        """
    ) == "True True"


def test_qiskit_aer_methods_are_kept():
    assert _run(
        """
        import aer_mpi
        import qiskit_aer
        from qiskit import QuantumCircuit
        qc = QuantumCircuit(1)
        qc.save_density_matrix()
        print(type(qc.data[0].operation).__module__.split(".")[0])
        """
    ) == "qiskit_aer"
