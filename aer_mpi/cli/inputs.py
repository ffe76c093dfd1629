"""Reading circuits for ``aer-mpi run``: OpenQASM 2 and 3 files, with errors that name the file and line."""

from __future__ import annotations

import os
import stat
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from aer_mpi.cli.errors import CliError, one_line

QASM2_SUFFIXES = (".qasm", ".qasm2")
QASM3_SUFFIXES = (".qasm3",)
#: The includes every OpenQASM reader provides; any other must be a file beside the circuit.
STANDARD_INCLUDES = ("qelib1.inc", "stdgates.inc")


# -- reading circuits ------------------------------------------------------------
@dataclass
class Source:
    path: str
    circuit: Any


def _location(path: str, line: Any, column: Any, message: str) -> str:
    where = f"{path}:{line}" if column is None else f"{path}:{line}:{column}"
    return f"{where}: {message}"


def _without_code(text: str) -> str:
    """``text`` with comments and string-free code kept; line numbers unchanged."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)


def check_includes(path: str, text: str, _seen: Optional[set] = None) -> list[str]:
    """The non-standard includes of ``path``, each a file beside it; a ``CliError`` otherwise.

    ``include "../../etc/passwd";`` or an absolute path would read (and, in a parse
    error, print) a file that is not a circuit: only the standard includes and files
    in the circuit's own directory are allowed, and so in the files it includes, at any
    depth (an allowed file's own ``include "../x.inc"`` was read).
    """
    directory = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    seen = {os.path.realpath(path)} if _seen is None else _seen
    found = []
    for match in re.finditer(r'\binclude\s+"([^"\n]*)"', _without_code(text)):
        name = match.group(1)
        if name in STANDARD_INCLUDES:
            continue
        line = text.count("\n", 0, match.start()) + 1
        target = os.path.realpath(os.path.join(directory, name))
        if os.path.isabs(name) or ".." in re.split(r"[\\/]", name) or os.path.dirname(target) != directory:
            raise CliError(
                f"{path}:{line}: include {name!r}: only {' and '.join(STANDARD_INCLUDES)} or a file in the "
                f"circuit's own directory ({directory}) can be included"
            )
        found.append(name)
        if target not in seen:  # (an include cycle is the parser's to report)
            seen.add(target)
            try:
                with open(target, encoding="utf-8", errors="replace") as handle:
                    inner = handle.read()
            except OSError:
                continue  # missing or unreadable: the parser names it
            found.extend(check_includes(target, inner, seen))
    return found


def _without_tokens(message: str) -> str:
    """A parser message without the quoted text it saw (which may come from an included file)."""
    return re.sub(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`", "'…'", message)


def load_qasm2(path: str, text: str) -> Any:
    includes = check_includes(path, text)
    try:
        return _load_qasm2(path, text)
    except CliError as exc:
        if not includes:
            raise
        raise CliError(
            f"{_without_tokens(str(exc))} (in {path} or its includes {', '.join(includes)}; "
            "their text is not shown)"
        ) from None


def _load_qasm2(path: str, text: str) -> Any:
    import qiskit.qasm2

    try:
        return shared_gate_definitions(qiskit.qasm2.loads(
            text,
            include_path=(os.path.dirname(os.path.abspath(path)),),
            custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
        ))
    except qiskit.qasm2.QASM2Error as exc:
        message = _unquoted(str(exc))
        match = re.match(r"^(?:<input>|[^:]*):(\d+),(\d+):\s*(.*)$", message, re.S)
        if match:
            raise CliError(_location(path, match.group(1), match.group(2), one_line(match.group(3)))) from None
        raise CliError(f"{path}: {one_line(message)}") from None


def _unquoted(message: str) -> str:
    """A parser's message without the quotes around it (Qiskit's QASM 2 errors come in single ones,
    which the location's pattern then left at the end)."""
    message = message.strip().strip('"')
    if len(message) > 1 and message[0] == message[-1] == "'":
        message = message[1:-1]
    return message


def shared_gate_definitions(circuit: Any) -> Any:
    """``circuit`` with the gates its QASM 2 file defines as plain gates whose definitions are shared:
    one object per distinct gate (name, width, parameters). Qiskit builds a new body for each use of
    a defined gate, so a gate defined by two of the one before, forty deep (a 40-line file), is
    2**39 objects once copied or pickled (the command line sends the circuits to the other ranks):
    all the memory. Shared, it is forty. The gates keep their names (noise models key errors on them)."""
    from qiskit.circuit import Gate

    from aer_mpi.qobj.assemble import is_qasm2_gate

    memo: dict = {}

    def plain(op: Any) -> Any:
        if not is_qasm2_gate(op):
            return op
        try:
            key = (op.name, op.num_qubits, tuple(float(p) for p in op.params))
        except (TypeError, ValueError):
            return op
        if key not in memo:
            body = op.definition
            shared = body.copy_empty_like()
            for item in body.data:
                shared.append(item.replace(operation=plain(item.operation)), copy=False)
            gate = Gate(op.name, op.num_qubits, list(op.params))
            gate.definition = shared
            memo[key] = gate
        return memo[key]

    if not any(is_qasm2_gate(item.operation) for item in circuit.data):
        return circuit
    out = circuit.copy_empty_like()
    for item in circuit.data:
        out.append(item.replace(operation=plain(item.operation)), copy=False)
    return out


def load_qasm3(path: str, text: str) -> Any:
    try:
        import qiskit_qasm3_import  # noqa: F401
    except ImportError:
        raise CliError(
            f"{path}: reading OpenQASM 3 needs qiskit-qasm3-import (a dependency of aer_mpi, missing here): "
            f"pip install qiskit-qasm3-import"
        ) from None
    import qiskit.qasm3

    if check_includes(path, text):
        raise CliError(f"{path}: OpenQASM 3 circuits can include only stdgates.inc here")
    try:
        return qiskit.qasm3.loads(text)
    except Exception as exc:  # openqasm3's parser errors are not QiskitErrors
        message = one_line(_unquoted(str(exc)))
        match = re.match(r"^L?(\d+)[,:]C?(\d+):\s*(.*)$", message)
        if match:
            what = match.group(3)
            unsupported = re.match(r"node of type (\w+) is not supported", what)
            if unsupported:  # valid OpenQASM 3 that Qiskit's importer does not take
                what = f"{unsupported.group(1)} is valid OpenQASM 3 that the qiskit.qasm3 importer does not support"
            raise CliError(_location(path, match.group(1), match.group(2), what)) from None
        found = _qasm3_syntax_error(text)
        if found is not None:
            raise CliError(_location(path, *found)) from None
        raise CliError(f"{path}: not valid OpenQASM 3: {message or type(exc).__name__}") from None


def _qasm3_syntax_error(text: str) -> Optional[tuple[int, int, str]]:
    """Line, column and message of the first syntax error (openqasm3's parser bails without them)."""
    try:
        from antlr4 import CommonTokenStream, InputStream
        from antlr4.error.ErrorListener import ErrorListener
        from openqasm3.parser import qasm3Lexer, qasm3Parser
    except ImportError:
        return None

    class Record(ErrorListener):
        def __init__(self) -> None:
            self.first: Optional[tuple[int, int, str]] = None

        def syntaxError(self, recognizer, offending, line, column, msg, e):  # noqa: N802 (antlr's name)
            if self.first is None:
                self.first = (line, column, msg)

    record = Record()
    lexer = qasm3Lexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(record)
    parser = qasm3Parser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(record)
    try:
        parser.program()
    except Exception:
        pass
    return record.first


def _qasm_version(text: str) -> Optional[int]:
    """The major version of the OPENQASM statement, skipping comments; None if there is none."""
    stripped = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    match = re.match(r"\s*OPENQASM\s+(\d+)", stripped)
    return int(match.group(1)) if match else None


#: The largest circuit file read (a million-gate OpenQASM file is about 30 MB).
MAX_INPUT_BYTES = 1 << 30
#: Most qubits and bits a file may declare: Qiskit builds an object of about 2 KB for each before any
#: other check (``qubit[50000000] q;``, 70 bytes, took a node's 23 GB); far wider than any circuit
#: that runs here (a stabilizer tableau of 100,000 qubits alone takes 2.5 GB).
MAX_DECLARED_BITS = 100_000
_DECLARATION = re.compile(r"\b(?:qreg|creg)\s+\w+\s*\[\s*(\d+)\s*\]|\b(?:qubit|bit)\s*\[\s*(\d+)\s*\]")


def check_declared_size(path: str, text: str) -> None:
    """Refuse, before parsing, a file whose registers declare more than ``MAX_DECLARED_BITS`` in all."""
    total = sum(int(a or b) for a, b in _DECLARATION.findall(_without_code(text)))
    if total > MAX_DECLARED_BITS:
        raise CliError(f"{path}: declares {total:,} qubits and bits; aer-mpi reads at most {MAX_DECLARED_BITS:,} "
                       f"(no circuit that wide can run here, and reading one would take gigabytes)")


def read_circuit(path: str) -> Any:
    """The circuit in ``path`` (OpenQASM 2 or 3), or a ``CliError`` naming the file."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file: check the path")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory: give the circuit files (e.g. {path}/*.qasm)")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in QASM3_SUFFIXES and suffix not in QASM2_SUFFIXES:
        raise CliError(f"{path}: unknown kind of file {suffix or '(no suffix)'!r}: expecting .qasm or .qasm2 (OpenQASM 2) or .qasm3 (OpenQASM 3)")
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block every rank, /dev/zero fill the memory
        raise CliError(f"{path}: not a regular file (a pipe, a device, ...): give a circuit file")
    if info.st_size > MAX_INPUT_BYTES:
        raise CliError(f"{path}: {info.st_size:,} bytes, more than the {MAX_INPUT_BYTES:,} a circuit file may have")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CliError(f"{path}:{line}: not UTF-8 text: is it an OpenQASM file?") from None
    check_declared_size(path, text)
    version = _qasm_version(text)
    # the file's OPENQASM statement decides, else its suffix (one of the two: checked above); an
    # OpenQASM 2 file named .qasm3 failed in the OpenQASM 3 importer ("non-stdgates imports")
    if version == 3 or (suffix in QASM3_SUFFIXES and version != 2):
        circuit = load_qasm3(path, text)
    else:
        circuit = load_qasm2(path, text)
    if circuit.num_qubits < 1:
        raise CliError(f"{path}: the circuit has no qubits: declare at least one (qreg / qubit)")
    return circuit


def read_sources(paths: Sequence[str]) -> list[Source]:
    """Every circuit, named after its file (made safe and unique for file names)."""
    from aer_mpi.service.filenames import unique_stems

    sources = [Source(path, read_circuit(path)) for path in paths]
    stems = unique_stems(os.path.splitext(os.path.basename(s.path))[0] for s in sources)
    for source, stem in zip(sources, stems):
        source.circuit.name = stem
    return sources
