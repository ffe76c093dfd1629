"""Qiskit Aer's options on AerMPISimulator: every one accepted, honoured where it means something.

One rank (``comm=MPI.COMM_SELF``); the multi-rank behaviour of the same
options is that of the engine, tested elsewhere. Aer's list of options is
read from qiskit_aer where it is installed, else the table's Aer rows.
"""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from mpi4py import MPI
from qiskit import QuantumCircuit, transpile

from aer_mpi import AerMPIError, AerMPISimulator, InvalidInputError
from aer_mpi.engine import RunConfig
from aer_mpi.engine.resources import threads_per_rank
from aer_mpi.primitives import EstimatorV2, SamplerV2
from aer_mpi.qobj.options import CATEGORIES, IGNORED, IGNORED_OPTIONS, OPTIONS, check_options, qobj_config, run_config

#: Options the noise-model work adds; not part of this table yet.
LATER = {"noise_model"}


def aer_defaults() -> dict:
    try:
        from qiskit_aer import AerSimulator
    except ImportError:
        return {name: row.default for name, row in OPTIONS.items() if row.aer}
    return {k: v for k, v in AerSimulator._default_options().__dict__.items() if k not in LATER}


AER = aer_defaults()


def bell() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def backend(**options) -> AerMPISimulator:
    return AerMPISimulator(comm=MPI.COMM_SELF, **options)


def test_the_table_has_every_aer_option_and_a_category_for_each_row():
    assert set(AER) <= set(OPTIONS)
    assert all(OPTIONS[name].aer for name in AER)
    assert {row.category for row in OPTIONS.values()} <= set(CATEGORIES)


@pytest.mark.parametrize("name", sorted(AER))
def test_aer_default_value_is_accepted(name):
    check_options({name: AER[name]})
    b = backend()
    b.set_options(**{name: AER[name]})


def test_every_aer_option_in_constructor_set_options_and_run():
    b = backend(**AER)
    b.set_options(**AER)
    result = b.run(bell(), **{**AER, "seed_simulator": 3}).result()
    assert result.results[0].shots == 1024
    assert sum(result.get_counts().values()) == 1024


def test_every_aer_option_in_the_primitives_options():
    options = {"backend_options": {"comm": MPI.COMM_SELF, **AER}, "run_options": dict(AER)}
    sampler = SamplerV2(options=options, seed=1)
    bits = sampler.run([bell()], shots=100).result()[0].data.meas
    assert bits.num_shots == 100
    qc = QuantumCircuit(1)
    qc.h(0)
    estimator = EstimatorV2(options={"default_precision": 0.0, **options})
    assert estimator.run([(qc, "X")]).result()[0].data.evs == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("method", "matrix_product", "'matrix_product_state'"),  # a misspelt method: the list of names
        ("method", "tensor", "'statevector'"),
        ("device", "GPU", "device='GPU'"),
        ("precision", "half", "'double' or 'single'"),
    ],
)
def test_refused_values_get_one_clear_error(name, value, says):
    for call in (lambda: backend(**{name: value}), lambda: backend().set_options(**{name: value}),
                 lambda: backend().run(bell(), **{name: value}).result()):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert str(info.value).startswith(f"option {name}={value!r}: expecting ")
        assert says in str(info.value)


def test_methods_devices_and_configuration():
    b = backend()
    assert set(b.available_methods()) >= {"automatic", "statevector", "density_matrix", "matrix_product_state"}
    assert b.available_devices() == ("CPU",)
    config = b.configuration()
    assert config.simulator is True and config.coupling_map is None
    assert config.backend_name == b.name and config.n_qubits == b.target.num_qubits
    assert {"cx", "h", "rz", "unitary", "save_statevector"} <= set(config.basis_gates)
    assert config.max_shots >= 1_000_000


def test_numpy_scalars_behave_as_python_numbers():
    b = backend(shots=np.int64(50), max_parallel_threads=np.int32(1))
    assert b.options.shots == 50 and type(b.options.shots) is int
    plain = b.run(bell(), shots=200, seed_simulator=9, memory=True).result()
    numpy = b.run(bell(), shots=np.int64(200), seed_simulator=np.int64(9), memory=np.bool_(True)).result()
    assert numpy.results[0].shots == 200 and numpy.results[0].seed_simulator == 9
    assert numpy.get_memory() == plain.get_memory()
    b.set_options(fusion_threshold=np.int16(3), max_memory_mb=np.float64(512.0))
    assert b.options.fusion_threshold == 3


def test_none_means_the_default_as_in_aer():
    b = backend()
    assert b.run(bell(), shots=None).result().results[0].shots == 1024
    b.set_options(shots=100)
    assert b.run(bell(), shots=None).result().results[0].shots == 100
    b.set_options(shots=None, memory=None, fusion_max_qubit=None, fusion_threshold=None)
    assert (b.options.shots, b.options.memory, b.options.fusion_max_qubit, b.options.fusion_threshold) == (
        1024, False, 5, 14)
    # Aer's 0 meaning "automatic"
    b.set_options(max_parallel_threads=0, max_memory_mb=0, max_parallel_experiments=0)
    assert (b.options.max_parallel_threads, b.options.max_memory_mb, b.options.max_parallel_experiments) == (
        None, None, None)


def test_ignored_options_are_named_in_the_metadata():
    b = backend(blocking_enable=True, mps_log_data=True)
    result = b.run(bell(), cuStateVec_enable=True, executor=None).result()
    # a run option of None is as if not given (Aer drops them too)
    expected = ["blocking_enable", "cuStateVec_enable", "mps_log_data"]
    assert result.metadata["ignored_options"] == expected
    assert result.results[0].metadata["ignored_options"] == expected
    assert backend().run(bell()).result().results[0].metadata["ignored_options"] == []
    assert all(OPTIONS[name].category == IGNORED for name in IGNORED_OPTIONS)
    assert not any(OPTIONS[name].qobj for name in IGNORED_OPTIONS)


def test_aer_metadata_keys():
    meta = backend(shots=10).run(bell(), seed_simulator=1).result().results[0].metadata
    assert meta["method"] == "statevector" and meta["device"] == "CPU"
    assert meta["num_qubits"] == 2 and meta["num_mpi_processes"] == 1 and meta["mpi_rank"] == 0
    assert meta["parallel_state_update"] == 1  # 2 qubits: below statevector_parallel_threshold
    assert {"enabled", "applied", "max_fused_qubits", "threshold"} <= set(meta["fusion"])
    # as Aer: "enabled" is the option, "applied" whether this circuit (2 qubits < threshold 14) was fused
    assert meta["fusion"]["enabled"] is True and meta["fusion"]["applied"] is False
    assert meta["time_taken"] > 0
    assert meta["num_clbits"] == 2 and meta["measure_sampling"] is True  # bell(): final measurements only


def test_threads_by_state_size_and_max_parallel_threads():
    config = RunConfig(statevector_parallel_threshold=10, threads_per_rank=None, max_parallel_threads=3)
    assert threads_per_rank(config, 1, num_local=10) == 1
    assert threads_per_rank(config, 1, num_local=11) == 3
    assert threads_per_rank(RunConfig(threads_per_rank=2, max_parallel_threads=3), 1, num_local=20) == 2
    assert threads_per_rank(RunConfig(), 1, num_local=20) >= 1


def test_omp_num_threads_caps_a_ranks_threads(monkeypatch):
    """As Aer's: a batch script's OMP_NUM_THREADS (its cores per task) caps the kernel threads, where the
    scheduler may not bind the task to them (probe V: a rank used every core of the node)."""
    from aer_mpi.engine import resources

    monkeypatch.setattr(resources, "_CORES", 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_per_rank(RunConfig(), 2, num_local=20) == 4
    for value, threads in (("1", 1), ("3", 3), ("16", 4), ("2,1", 2), ("zero", 4), ("0", 4)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert threads_per_rank(RunConfig(), 2, num_local=20) == threads, value
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads_per_rank(RunConfig(max_parallel_threads=3), 2, num_local=20) == 3  # an option is explicit


def test_engine_options_reach_the_run_config():
    config = run_config(qobj_config({"enable_truncation": False, "max_parallel_threads": 2,
                                     "statevector_parallel_threshold": 5, "max_parallel_experiments": 1,
                                     "seed_simulator": 1, "shots": 1}))
    assert config.enable_truncation is False and config.max_parallel_threads == 2
    assert config.statevector_parallel_threshold == 5 and config.parallel_experiments is False
    assert run_config(qobj_config({"max_parallel_experiments": 4})).parallel_experiments is True


def test_target_has_a_width_and_transpile_never_refuses_a_device_wide_circuit():
    b = backend(max_memory_mb=64)
    assert 20 <= b.max_state_qubits <= 26  # 64 MiB: 2**22 single-precision amplitudes, less buffers
    assert b.target.num_qubits >= max(b.max_state_qubits, 1024) and b.num_qubits == b.target.num_qubits
    assert b.configuration().n_qubits == b.target.num_qubits
    # a device-transpiled 127-qubit circuit (two active qubits) keeps its width and layout
    wide = QuantumCircuit(127)
    wide.h(0)
    wide.cx(0, 126)
    wide.measure_all()
    for level in range(4):
        assert transpile(wide, b, optimization_level=level).num_qubits == 127


def test_without_an_mpi_library_one_error_says_how_to_get_one(monkeypatch):
    real_import = builtins.__import__

    def no_mpi(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "mpi4py" and fromlist and "MPI" in fromlist:
            raise RuntimeError("cannot load MPI library\nlibmpi.so.12: cannot open shared object file")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_mpi)
    with pytest.raises(AerMPIError) as info:
        AerMPISimulator()
    text = str(info.value)
    assert "pip install mpich" in text and "site's MPI" in text and "cannot load MPI library" in text


@pytest.mark.parametrize("command", [["info"], ["run", "x.qasm", "-o", "x.json"]])
def test_the_command_line_without_an_mpi_library_says_how_to_get_one_in_one_line(tmp_path, command):
    """aer-mpi info and run printed mpi4py's traceback (35 and 71 lines), no fix (probe V)."""
    import subprocess
    import sys

    (tmp_path / "x.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nh q[0];\n')
    script = """
import builtins, sys
real_import = builtins.__import__
def no_mpi(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "mpi4py" and fromlist and "MPI" in fromlist or name == "mpi4py.MPI":
        raise RuntimeError("cannot load MPI library")
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = no_mpi
from aer_mpi.cli.app import main
sys.exit(main(sys.argv[1:]))
"""
    done = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aer-mpi: error: aer_mpi needs an MPI library"), done.stderr
    assert "pip install mpich" in lines[0] and not (tmp_path / "x.json").exists()


def test_from_backend_as_in_aer():
    b = backend()
    sampler = SamplerV2.from_backend(b, default_shots=10, seed=3)
    assert sampler.backend is b and sampler.default_shots == 10
    estimator = EstimatorV2.from_backend(b, options={"default_precision": 0.0})
    assert estimator.backend is b
    with pytest.raises(InvalidInputError, match="AerMPISimulator"):
        SamplerV2.from_backend(object())


def test_a_save_without_measurements_still_reports_the_shots_as_aer():
    """Aer's quirk, kept: classical bits and a save but no measurement give counts of all zeros;
    without the save, no counts at all."""
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    assert "counts" not in backend().run(qc, shots=10).result().data(0)
    qc.save_statevector()
    result = backend().run(qc, shots=10, memory=True).result()
    assert result.get_counts() == {"00": 10} and result.get_memory() == ["00"] * 10


@pytest.mark.parametrize("level", [0, 1, 2])
def test_meas_level_is_accepted_and_the_results_are_bits_as_aers(level):
    """Aer accepts any meas_level and returns counts (probe W: Aer's tutorials); aer_mpi refused 1."""
    result = backend().run(bell(), meas_level=level, shots=200, seed_simulator=3).result()
    counts = result.get_counts()
    assert sum(counts.values()) == 200 and set(counts) <= {"00", "11"}
    assert result.results[0].metadata["ignored_options"] == ["meas_level"]
