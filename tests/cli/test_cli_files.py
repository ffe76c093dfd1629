"""aer-mpi run and files: -o never names an input or a symbolic link, the results are
written through a fresh temporary file, and QASM includes stay beside the circuit
(their text is never printed). In-process (rank 0 of a singleton): fast."""

import os

import pytest

from aer_mpi.cli.app import main
from aer_mpi.cli.errors import CliError
from aer_mpi.cli.inputs import read_circuit
from aer_mpi.cli.outputs import check_output, write_json_atomically

GOOD = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n'
pytestmark = pytest.mark.skipif(
    any(os.environ.get(v) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")), reason="runs the CLI in this process"
)


def test_output_naming_an_input_is_refused_and_nothing_written(tmp_path, capsys, monkeypatch):
    circuit = tmp_path / "bell.qasm"
    circuit.write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "bell.qasm", "--shots", "4", "-o", "bell.qasm"]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert circuit.read_text() == GOOD
    # the same file under another spelling, and through a hard link
    os.link(circuit, tmp_path / "alias.json")
    for name in (str(circuit), "./bell.qasm", "alias.json"):
        with pytest.raises(CliError, match="is the input file"):
            check_output(name, ["bell.qasm"])
    assert sorted(os.listdir(tmp_path)) == ["alias.json", "bell.qasm"]


def test_output_symlink_refused_and_results_written_atomically(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "results.json"
    link.symlink_to(victim)
    with pytest.raises(CliError, match="symbolic link"):
        check_output(str(link))
    with pytest.raises(CliError, match="symbolic link"):
        write_json_atomically(str(link), {"a": 1})
    assert victim.read_text() == "precious"
    # a file planted under a guessable temporary name is neither used nor harmed
    planted = tmp_path / ".out.json.tmp"
    planted.symlink_to(victim)
    write_json_atomically(str(tmp_path / "out.json"), {"a": 1})
    assert (tmp_path / "out.json").read_text().strip().startswith("{") and victim.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == [".out.json.tmp", "out.json", "results.json", "victim.txt"]


def test_output_that_is_a_pipe_or_device_is_refused_not_replaced(tmp_path, capsys, monkeypatch):
    """-o /dev/null replaced the device by a regular file (the results are renamed over the name)."""
    circuit = tmp_path / "bell.qasm"
    circuit.write_text(GOOD)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "bell.qasm", "--shots", "4", "-o", "pipe.json"]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert not os.path.isfile(fifo) and os.path.exists(fifo)
    for name in (str(fifo), os.devnull):
        with pytest.raises(CliError, match="not a regular file"):
            check_output(name)
        with pytest.raises(CliError, match="not a regular file"):
            write_json_atomically(name, {"a": 1})
    assert not os.path.isfile(os.devnull)
    assert sorted(os.listdir(tmp_path)) == ["bell.qasm", "pipe.json"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret.inc", "sub/../../secret.inc", "link.inc"])
def test_include_only_standard_or_beside_the_circuit(tmp_path, name):
    (tmp_path / "secret.inc").write_text("root:x:0:0:secret_token\n")
    folder = tmp_path / "circuits"
    folder.mkdir()
    (folder / "link.inc").symlink_to(tmp_path / "secret.inc")
    circuit = folder / "c.qasm"
    circuit.write_text(f'OPENQASM 2.0;\ninclude "qelib1.inc";\ninclude "{name}";\nqreg q[1];\n')
    with pytest.raises(CliError, match=r"c.qasm:3: include .*can be included") as info:
        read_circuit(str(circuit))
    assert "secret_token" not in str(info.value) and "root:x" not in str(info.value)


def test_include_beside_the_circuit_works_and_its_text_is_never_printed(tmp_path):
    (tmp_path / "gates.inc").write_text("gate mine a { h a; }\n")
    good = tmp_path / "good.qasm"
    good.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\ninclude "gates.inc";\nqreg q[1];\nmine q[0];\n')
    assert read_circuit(str(good)).num_qubits == 1
    (tmp_path / "notes.inc").write_text("secret_token_abc = hunter2;\n")
    bad = tmp_path / "bad.qasm"
    bad.write_text('OPENQASM 2.0;\ninclude "notes.inc";\nqreg q[1];\n')
    with pytest.raises(CliError) as info:
        read_circuit(str(bad))
    message = str(info.value)
    assert "secret_token_abc" not in message and "hunter2" not in message
    assert "bad.qasm" in message and "their text is not shown" in message


def _run(tmp_path, monkeypatch, *argv):
    (tmp_path / "bell.qasm").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    return main(["run", "bell.qasm", "--shots", "4", "-q", *argv])


@pytest.mark.parametrize("argv,message", [
    (["-o", ""], "not a file name"),
    (["-o", "new.json/"], "not a file name"),
    (["-o", "same", "--save-statevector", "same"], "also the --save-statevector directory"),
    (["-o", "r.json", "--checkpoint", ""], "not a directory"),
    (["-o", "r.json", "--checkpoint", "bell.qasm"], "not a directory"),
    (["-o", "r.json", "--save-statevector", "states", "--noise-model", "missing.json"], "missing.json"),
])
def test_outputs_that_cannot_be_written_are_refused_before_the_run_and_nothing_is_created(
        tmp_path, monkeypatch, capsys, argv, message):
    assert _run(tmp_path, monkeypatch, *argv) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["bell.qasm"]


def test_a_statevector_file_that_is_a_link_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "states").mkdir()
    (tmp_path / "states" / "bell.npy").symlink_to(victim)
    assert _run(tmp_path, monkeypatch, "-o", "r.json", "--save-statevector", "states") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious" and not (tmp_path / "r.json").exists()


def test_inputs_that_are_not_regular_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "pipe.qasm"
    os.mkfifo(fifo)  # opening it would block every rank
    with pytest.raises(CliError, match="not a regular file"):
        read_circuit(str(fifo))
    (tmp_path / "zero.qasm").symlink_to("/dev/zero")  # reading it would fill the memory
    with pytest.raises(CliError, match="not a regular file"):
        read_circuit(str(tmp_path / "zero.qasm"))


def test_a_circuit_refused_by_the_backend_is_bad_input_naming_its_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "opaque.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nopaque myg q;\nqreg q[1];\nmyg q[0];\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", "opaque.qasm", "--shots", "4", "-q", "-o", "r.json"]) == 2
    err = capsys.readouterr().err
    assert "opaque.qasm: " in err and "unknown instruction 'myg'" in err
    assert not (tmp_path / "r.json").exists()


def test_nested_gate_definitions_do_not_multiply(tmp_path, monkeypatch):
    """A 42-line QASM file whose gates each repeat the one before (2**39 Hadamards written out) took all
    the memory: Qiskit copies a defined gate's body for every use when the circuits are pickled for the
    other ranks and when its matrix is built. Shared definitions and memoised matrices: well under a
    second, and the circuit's own answer (an even number of Hadamards: the identity)."""
    import json

    from qiskit import qasm2
    from qiskit.quantum_info import Statevector

    from aer_mpi.cli.inputs import shared_gate_definitions

    lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', "gate g0 a { h a; }"]
    lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, 40)]
    lines += ["qreg q[2];", "creg c[2];", "g39 q[0];", "x q[1];", "measure q -> c;"]
    (tmp_path / "nested.qasm").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "nested.qasm", "--shots", "10", "--seed", "1", "-o", "out.json"]) == 0
    assert json.loads((tmp_path / "out.json").read_text())["results"][0]["counts"] == {"10": 10}
    # parameterised definitions keep their meaning when shared
    text = ('OPENQASM 2.0;\ninclude "qelib1.inc";\ngate rot(t) a, b { rz(t) a; cx a, b; ry(t / 2) b; }\n'
            "gate twice(t) a, b { rot(t) a, b; rot(2 * t) b, a; }\nqreg q[2];\nh q[0];\ntwice(0.3) q[0], q[1];\n"
            "twice(0.7) q[1], q[0];\n")
    original = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    assert Statevector(shared_gate_definitions(original)).equiv(Statevector(original))


def test_output_inside_a_folder_the_run_writes_is_refused(tmp_path, capsys, monkeypatch):
    """-o sv/c.npy with --save-statevector sv replaced the saved state with the results (exit 0), and
    -o ck/manifest.json with --checkpoint ck overwrote the checkpoint's manifest."""
    (tmp_path / "c.qasm").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "c.qasm", "--shots", "4", "-q", "-o", "sv/c.npy", "--save-statevector", "sv"]) == 2
    assert "inside the --save-statevector directory sv" in capsys.readouterr().err
    assert main(["run", "c.qasm", "--shots", "4", "-q", "-o", "ck/manifest.json", "--checkpoint", "ck"]) == 2
    assert "inside the --checkpoint directory ck" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["c.qasm"]


def test_an_included_file_may_not_include_a_file_outside_the_circuits_directory(tmp_path):
    (tmp_path / "outside.inc").write_text("gate secretgate a { x a; }\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "inner.inc").write_text('include "../outside.inc";\ngate mine a { secretgate a; }\n')
    (sub / "loop.inc").write_text('include "loop.inc";\n')  # a cycle: checked once, left to the parser
    circuit = sub / "c.qasm"
    circuit.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\ninclude "inner.inc";\nqreg q[1];\nmine q[0];\n')
    with pytest.raises(CliError, match=r"inner.inc:1: include '../outside.inc': only"):
        read_circuit(str(circuit))
    (sub / "inner.inc").write_text('gate mine a { x a; }\n')
    assert read_circuit(str(circuit)).count_ops() == {"mine": 1}
    looping = sub / "l.qasm"
    looping.write_text('OPENQASM 2.0;\ninclude "loop.inc";\nqreg q[1];\n')
    with pytest.raises(CliError):
        read_circuit(str(looping))


@pytest.mark.parametrize("name, text", [
    ("huge.qasm3", 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[50000000] q;\nbit[1] c;\nh q[0];\n'),
    ("huge.qasm", 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[60000];\ncreg c[60000];\nh q[0];\n'),
])
def test_a_huge_register_declaration_is_refused_before_parsing(tmp_path, name, text):
    """A 70-byte file declaring qubit[50000000] made Qiskit build 50 million objects (all the memory)."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CliError, match=r"declares (50,000,001|120,000) qubits and bits; aer-mpi reads at most 100,000"):
        read_circuit(str(path))
    path.write_text(text.replace("50000000", "3").replace("60000", "3") + "// qreg z[99999999];\n")
    assert read_circuit(str(path)).num_qubits == 3


def test_results_whose_memory_lists_do_not_fit_are_written_without_them(tmp_path, monkeypatch, capsys):
    """Millions of shots with --memory: the document's bit strings ran rank 0 out of memory and the run
    failed with an empty message, its counts lost (probe P3). Now the counts are written, the memory
    lists left out and said so, and the run fails (exit 1) naming the fix."""
    import json

    from aer_mpi.cli import app

    real = app.results_document

    def no_room_for_memory(result, sources, seed, ranks, memory):
        if memory:
            raise MemoryError()
        return real(result, sources, seed, ranks, memory)

    monkeypatch.setattr(app, "results_document", no_room_for_memory)
    (tmp_path / "bell.qasm").write_text(GOOD + "creg c[2];\nmeasure q -> c;\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "bell.qasm", "--shots", "4", "-q", "-o", "r.json", "--memory"]) == 1
    err = capsys.readouterr().err
    assert "per-shot memory of 4 shots did not fit" in err and "run fewer shots per job with --memory" in err
    document = json.loads((tmp_path / "r.json").read_text())
    assert sum(document["results"][0]["counts"].values()) == 4
    assert "memory" not in document["results"][0] and "counts are complete" in document["memory_omitted"]
    assert sorted(os.listdir(tmp_path)) == ["bell.qasm", "r.json"]


def test_the_memory_check_counts_rank_0s_memory_strings():
    """Rank 0 holds each shot's memory twice (the results' hex strings, Result.get_memory's bit strings)."""
    from aer_mpi import ir
    from aer_mpi.engine.config import RunConfig
    from aer_mpi.engine.resources import memory_needed

    program = ir.Program(num_qubits=2, num_clbits=20, ops=())
    plain, with_memory = (RunConfig(shots=10**6, memory=m) for m in (False, True))
    rank1 = memory_needed(program, with_memory, 2, 1, True) - memory_needed(program, plain, 2, 1, True)
    rank0 = memory_needed(program, with_memory, 2, 0, True) - memory_needed(program, plain, 2, 0, True)
    assert rank1 == 80 * 10**6 and rank0 == (80 + 20 + 64) * 10**6


def test_errors_name_the_command_lines_fixes(tmp_path, monkeypatch, capsys):
    """The engine's messages name fixes in the Python API's words (precision='single', transpile(...),
    seed_simulator=7, expecting None or ...): the command line says them as its options (probe V)."""
    monkeypatch.chdir(tmp_path)
    n = 40
    (tmp_path / "wide.qasm").write_text(
        f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n}];\ncreg c[{n}];\n'
        + "".join(f"h q[{i}];\nt q[{i}];\n" for i in range(n)) + "measure q -> c;\n")
    assert main(["run", "wide.qasm", "-o", "o.json", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--precision single" in err and "precision='single'" not in err, err
    (tmp_path / "opaque.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nopaque mystery q;\nqreg q[1];\n'
                                          'creg c[1];\nmystery q[0];\nmeasure q -> c;\n')
    assert main(["run", "opaque.qasm", "-o", "o.json", "-q"]) != 0
    err = capsys.readouterr().err
    assert "give it a gate body in the file" in err and "transpile(circuit, backend)" not in err, err
    with pytest.raises(SystemExit):
        main(["run", "opaque.qasm", "-o", "o.json", "--seed", "1.5"])
    err = capsys.readouterr().err
    assert "--seed: expecting an integer >= 0, got '1.5'" in err, err
    from aer_mpi.cli.errors import command_line_spelling

    assert command_line_spelling("ck was made with seed_simulator=7, this run has 8: give") == \
        "ck was made with --seed 7, this run has 8: give"


def test_the_openqasm_statement_decides_the_language_whatever_the_suffix(tmp_path):
    """An OpenQASM 2 file named .qasm3 failed in the OpenQASM 3 importer ("non-stdgates imports not
    currently supported"); a .qasm file of OpenQASM 3 was already read as such (probe V)."""
    two = tmp_path / "bell.qasm3"
    two.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
                   'measure q -> c;\n')
    assert read_circuit(str(two)).count_ops() == {"h": 1, "cx": 1, "measure": 2}
    three = tmp_path / "bell.qasm"
    three.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\ncx q[0], q[1];\n')
    assert read_circuit(str(three)).count_ops() == {"h": 1, "cx": 1}
    (tmp_path / "bell.txt").write_text("")
    with pytest.raises(CliError, match=r"expecting \.qasm or \.qasm2 \(OpenQASM 2\) or \.qasm3"):
        read_circuit(str(tmp_path / "bell.txt"))
