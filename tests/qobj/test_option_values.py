"""Bad option values are refused at run() with the reason (hardening, issue 13)."""

import math

import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator
from aer_mpi.errors import InvalidInputError


@pytest.mark.parametrize(
    "name,value,reason",
    [
        ("shots", 10**30, "shots=1000000000000000000000000000000: expecting an integer >= 0, at most 2**40"),
        ("shots", True, "shots=True: expecting an integer >= 0"),
        ("shots", 10.5, "shots=10.5: expecting an integer >= 0"),
        ("shots", math.inf, "shots=inf: expecting an integer >= 0"),
        ("seed_simulator", 1 << 64, "expecting None or an integer >= 0, below 2**64"),
        ("seed_simulator", -(1 << 63) - 1, "expecting None or an integer >= 0 (or a negative one down to -2**63"),
        ("seed_simulator", False, "seed_simulator=False"),
        ("max_memory_mb", math.inf, "max_memory_mb=inf: expecting None or a number of MiB > 0"),
        ("max_memory_mb", math.nan, "max_memory_mb=nan"),
        ("max_memory_mb", True, "max_memory_mb=True"),
        ("buffer_mb", -math.inf, "buffer_mb=-inf"),
        ("min_local_qubits", True, "min_local_qubits=True"),
        ("memory", 2, "memory=2: expecting True or False"),
    ],
)
def test_bad_values_refused_at_run_with_the_reason(name, value, reason):
    qc = QuantumCircuit(1, 1)
    qc.measure(0, 0)
    backend = AerMPISimulator(comm=MPI.COMM_SELF)
    with pytest.raises(InvalidInputError) as caught:
        backend.run(qc, **{name: value}).result()
    assert reason in str(caught.value)
    with pytest.raises(InvalidInputError):
        backend.set_options(**{name: value})


def test_an_integral_float_is_taken_as_the_integer_with_aers_warning():
    """``shots=1e4`` runs in Aer (cast, with a DeprecationWarning): a notebook's value works here too."""
    qc = QuantumCircuit(1, 1)
    qc.x(0)
    qc.measure(0, 0)
    backend = AerMPISimulator(comm=MPI.COMM_SELF)
    with pytest.warns(DeprecationWarning) as caught:
        result = backend.run(qc, shots=1e4, seed_simulator=3.0).result()
    assert [str(w.message).split(": pass ")[-1] for w in caught] == ["shots=10000", "seed_simulator=3"]
    assert all(w.filename == __file__ for w in caught)  # the warning names the caller's line
    assert result.get_counts() == {"1": 10000} and result.results[0].seed_simulator == 3
    with pytest.warns(DeprecationWarning):
        backend.set_options(shots=20.0)
    assert backend.options.shots == 20 and isinstance(backend.options.shots, int)
    with pytest.warns(DeprecationWarning, match="shots='300'.*taken as 300"):  # Aer's test_floating_shots
        assert sum(backend.run(qc, shots="300").result().get_counts().values()) == 300
    with pytest.raises(InvalidInputError):
        backend.run(qc, shots="many").result()


def test_the_largest_values_are_accepted():
    qc = QuantumCircuit(1, 1)
    qc.x(0)
    qc.measure(0, 0)
    result = AerMPISimulator(comm=MPI.COMM_SELF).run(qc, shots=3, seed_simulator=(1 << 64) - 1).result()
    assert result.get_counts() == {"1": 3}


def test_aers_legacy_method_names_set_the_method_and_device():
    """QasmSimulator's ``method="statevector_cpu"`` (Aer's test_wrapper_qasm_simulator), with Aer's
    DeprecationWarning; a GPU one is refused as device='GPU' is."""
    backend = AerMPISimulator(comm=MPI.COMM_SELF)
    with pytest.warns(DeprecationWarning, match="legacy name"):
        backend.set_options(method="density_matrix_cpu")
    assert backend.options.method == "density_matrix" and backend.options.device == "CPU"
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidInputError, match="device='GPU'"):
        backend.set_options(method="statevector_gpu")
    with pytest.raises(InvalidInputError, match="option method='statevector_tpu'"):
        backend.set_options(method="statevector_tpu")
