"""The run options table (aer_mpi.qobj.options) and everything derived from it agree."""

from __future__ import annotations

import dataclasses

import pytest
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator, InvalidInputError, QobjValidationError
from aer_mpi.cli.app import build_parser
from aer_mpi.engine import RunConfig
from aer_mpi.plan.fusion import FusionOptions
from aer_mpi.qobj.options import (OPTIONS, check_options, defaults, normalise_options, qobj_config, run_config,
                                  validate_config)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_default_passes_its_own_check(name):
    row = OPTIONS[name]
    assert row.accepts(row.default)
    check_options({name: row.default})


def test_backend_defaults_are_the_table():
    assert dict(AerMPISimulator._default_options().__dict__) == defaults()


def test_cli_defaults_are_the_table():
    args = build_parser().parse_args(["run", "a.qasm", "--output", "out.json"])
    cli = {"shots": args.shots, "seed_simulator": args.seed, "precision": args.precision,
           "max_memory_mb": args.max_memory_mb, "parallel_experiments": args.parallel_experiments}
    assert cli == {name: OPTIONS[name].default for name in cli}
    run = next(a for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions
               if a.dest == "precision")
    assert tuple(run.choices) == ("double", "single") and OPTIONS["precision"].check("single")


def test_run_config_from_the_defaults_is_run_config():
    assert run_config(defaults()) == RunConfig()


def test_fusion_defaults_agree_with_the_table():
    fusion = FusionOptions()
    config = RunConfig()
    assert (fusion.enabled, fusion.max_qubits, fusion.max_diagonal_qubits, fusion.threshold) == (
        config.fusion_enable, config.fusion_max_qubit, config.fusion_max_diagonal_qubit, config.fusion_threshold
    )


def test_every_engine_field_exists_and_units_convert():
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert {row.engine for row in OPTIONS.values() if row.engine} <= fields
    config = run_config({"max_memory_mb": 300, "buffer_mb": 0.5, "seed_simulator": 7})
    assert config.max_memory_bytes == 300 << 20 and config.buffer_bytes == 1 << 19 and config.seed == 7


BAD = [
    ("buffer_mb", float("inf"), "a number of MiB > 0"),
    ("buffer_mb", float("nan"), "a number of MiB > 0"),
    ("buffer_mb", True, "a number of MiB > 0"),
    ("max_memory_mb", float("inf"), "None or a number of MiB > 0"),
    ("max_memory_mb", -1, "None or a number of MiB > 0"),
    ("shots", True, "an integer >= 0"),
    ("shots", -1, "an integer >= 0"),
    ("shots", 2.5, "an integer >= 0"),
    ("seed_simulator", -(1 << 63) - 1, "None or an integer >= 0"),
    ("min_local_qubits", False, "an integer >= 1"),
    ("fusion_max_qubit", -1, "an integer >= 0"),
    ("threads_per_rank", 0, "None or an integer >= 1"),
    ("kernels", "cuda", "None or one of 'auto', 'numba', 'numpy'"),
    ("memory", 2, "True or False"),
    ("progress", "bars", "'bar', 'log' or a ProgressListener"),
]


@pytest.mark.parametrize("name,value,allowed", BAD)
def test_bad_values_are_refused_naming_the_allowed_values(name, value, allowed):
    with pytest.raises(InvalidInputError, match="expecting") as info:
        check_options({name: value})
    assert str(info.value).startswith(f"option {name}={value!r}: expecting {OPTIONS[name].expecting}")
    assert allowed in str(info.value)


@pytest.mark.parametrize("name,value,allowed", BAD[:6])
def test_bad_values_are_refused_by_run_and_set_options(name, value, allowed):
    qc = QuantumCircuit(1)
    backend = AerMPISimulator()
    with pytest.raises(InvalidInputError, match=f"option {name}="):
        backend.run(qc, **{name: value}).result()
    with pytest.raises(InvalidInputError, match=f"option {name}="):
        backend.set_options(**{name: value})
    with pytest.raises(InvalidInputError, match=f"option {name}="):
        AerMPISimulator(**{name: value})


def test_unknown_option_lists_the_known_names():
    with pytest.raises(InvalidInputError) as info:
        check_options({"shotz": 5})
    message = str(info.value)
    assert message.startswith("unknown option 'shotz': the options are ")
    assert message.endswith(", ".join(sorted(OPTIONS)))


def test_qobj_config_validation_uses_the_table():
    config = qobj_config({**defaults(), "seed_simulator": 3})
    assert "progress" not in config and "parameter_binds" not in config
    validate_config(config, "config")
    for key, value, message in [
        ("shots", -1, "config.shots: expecting an integer >= 0, got -1"),
        ("buffer_mb", float("inf"), "config.buffer_mb: expecting a number of MiB > 0, got inf"),
        ("seed_simulator", None, "config.seed_simulator: expecting an integer >= 0, got None"),
        ("progress", True, "config.progress: unknown key"),
    ]:
        with pytest.raises(QobjValidationError) as info:
            validate_config({**config, key: value}, "config")
        assert message in str(info.value)
    validate_config({"shots": 5}, "experiments[0].config", required=False)


def test_none_restores_every_options_default_and_keeps_the_backends_value_at_run():
    """As in Aer: ``AerSimulator(method=None)``, ``set_options(fusion_enable=None)`` (a notebook's parameter
    left at None) restore the default; ``run(method=None)`` keeps the backend's value."""
    qc = QuantumCircuit(1, 1)
    qc.x(0)
    qc.measure(0, 0)
    for name, row in OPTIONS.items():
        backend = AerMPISimulator(**{name: None})
        assert getattr(backend.options, name) == row.default, name
        backend.set_options(**{name: None})
        assert getattr(backend.options, name) == row.default, name
    backend = AerMPISimulator(method="density_matrix", seed_simulator=3)
    result = backend.run(qc, shots=5, method=None, precision=None, fusion_enable=None).result()
    assert result.get_counts() == {"1": 5}
    assert result.results[0].metadata["method"] == "density_matrix"


def test_true_or_false_options_take_one_and_zero_as_aer():
    qc = QuantumCircuit(1, 1)
    qc.x(0)
    qc.measure(0, 0)
    result = AerMPISimulator().run(qc, shots=3, memory=1, fusion_enable=0).result()
    assert result.get_memory() == ["1"] * 3
    assert normalise_options({"memory": 0, "cache_blocking": 1}) == {"memory": False, "cache_blocking": True}
