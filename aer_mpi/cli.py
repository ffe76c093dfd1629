"""``aer-mpi``: the command line for batch jobs (``mpiexec -n P aer-mpi run ...``, ``srun``).

Every rank runs this program. Rank 0 reads and parses the input files and
checks the outputs; it broadcasts either the circuits or the one-line error,
so every rank leaves with the same exit status and none waits for a rank
that has given up. The circuits then run through ``AerMPISimulator`` and its
``AerJob``, exactly as a Python script under ``mpiexec`` would; rank 0 writes
the results (JSON, atomically) and, with ``--save-statevector``, every rank
writes its part of each final state into one ``.npy`` file per circuit.

Exit status: 0 success; 2 bad usage or input (a missing or malformed file, an
output that cannot be written); 1 the run failed (not enough memory, an
error on a rank); 130 interrupted. Errors are one line on stderr, from rank 0.
This module knows the backend and the engine's settings, not the kernels.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import random
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from aer_mpi._version import __version__

PROG = "aer-mpi"
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

QASM2_SUFFIXES = (".qasm", ".qasm2")
QASM3_SUFFIXES = (".qasm3",)


class CliError(Exception):
    """A one-line error for the user; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.status = status


# -- which rank am I, before MPI starts ----------------------------------------
def _rank_hint() -> int:
    """This process's rank from the launcher's environment (0 when unknown).

    Used only to print usage errors and help once, without starting MPI.
    """
    for name in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "MPI_LOCALRANKID"):
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


class _Parser(argparse.ArgumentParser):
    """Prints help and usage errors on rank 0 only; every rank exits alike."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if _rank_hint() == 0:
            super()._print_message(message, file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run Qiskit circuits on a statevector sharded across MPI ranks "
        "(start it with mpiexec -n P or srun; every rank runs the same command).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run circuits from OpenQASM files and write the results as JSON",
        description="Run OpenQASM 2 (.qasm) and OpenQASM 3 (.qasm3) files, one circuit each, "
        "and write their counts to OUTPUT (JSON, written by rank 0 atomically).",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="OpenQASM 2 (.qasm) or 3 (.qasm3) files")
    run.add_argument("--shots", type=_positive_int, default=1024, help="shots per circuit (default 1024)")
    run.add_argument(
        "--seed", type=_seed, default=None,
        help="seed of the sampler; the same seed gives the same counts whatever the number of ranks "
        "(default: a random seed, recorded in the output)",
    )
    run.add_argument("--precision", choices=("double", "single"), default="double",
                     help="complex128 (double, default) or complex64 (single: half the memory)")
    run.add_argument("--memory", action="store_true", help="also record every shot's outcome")
    run.add_argument("--output", "-o", required=True, metavar="OUT.json", help="where to write the results")
    run.add_argument(
        "--save-statevector", metavar="DIR", default=None,
        help="write each circuit's final state (before its final measurements) to DIR/<name>.npy, "
        "in Qiskit's qubit order, from every rank in parallel (DIR must be on a file system all ranks share)",
    )
    run.add_argument("--max-memory-mb", type=_positive_int, default=None, metavar="MIB",
                     help="memory each rank may use (default: what its node has free, shared by its ranks)")
    run.add_argument(
        "--parallel-experiments", action=argparse.BooleanOptionalAction, default=True,
        help="run circuits too small to shard whole, one per rank at a time (default); "
        "--no-parallel-experiments shards every circuit over all ranks",
    )
    noise = run.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr (errors still print)")
    noise.add_argument(
        "--progress", choices=("bar", "log"), default=None,
        help="progress on stderr from rank 0: a bar, or plain lines (default: a bar on a terminal, "
        "lines otherwise, e.g. in a SLURM log)",
    )
    run.set_defaults(handler=command_run)

    info = sub.add_parser("info", help="print versions, the MPI library, ranks, threads and memory per rank")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    info.set_defaults(handler=command_info)
    return parser


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expecting an integer >= {minimum}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if _rank_hint() == 0:
            print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


# -- reading circuits ------------------------------------------------------------
@dataclass
class Source:
    path: str
    circuit: Any


def _location(path: str, line: Any, column: Any, message: str) -> str:
    where = f"{path}:{line}" if column is None else f"{path}:{line}:{column}"
    return f"{where}: {message}"


def load_qasm2(path: str, text: str) -> Any:
    import qiskit.qasm2

    try:
        return qiskit.qasm2.loads(
            text,
            include_path=(os.path.dirname(os.path.abspath(path)),),
            custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
        )
    except qiskit.qasm2.QASM2Error as exc:
        message = str(exc).strip().strip('"')
        match = re.match(r"^(?:<input>|[^:]*):(\d+),(\d+):\s*(.*)$", message, re.S)
        if match:
            raise CliError(_location(path, match.group(1), match.group(2), _one_line(match.group(3)))) from None
        raise CliError(f"{path}: {_one_line(message)}") from None


def load_qasm3(path: str, text: str) -> Any:
    try:
        import qiskit_qasm3_import  # noqa: F401
    except ImportError:
        raise CliError(
            f"{path}: reading OpenQASM 3 needs qiskit-qasm3-import: pip install 'aer-mpi[qasm3]'"
        ) from None
    import qiskit.qasm3

    try:
        return qiskit.qasm3.loads(text)
    except Exception as exc:  # openqasm3's parser errors are not QiskitErrors
        message = _one_line(str(exc).strip().strip('"'))
        match = re.match(r"^L?(\d+)[,:]C?(\d+):\s*(.*)$", message)
        if match:
            raise CliError(_location(path, match.group(1), match.group(2), match.group(3))) from None
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _qasm_version(text: str) -> Optional[int]:
    """The major version of the OPENQASM statement, skipping comments; None if there is none."""
    stripped = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    match = re.match(r"\s*OPENQASM\s+(\d+)", stripped)
    return int(match.group(1)) if match else None


def read_circuit(path: str) -> Any:
    """The circuit in ``path`` (OpenQASM 2 or 3), or a ``CliError`` naming the file."""
    if not os.path.exists(path):
        raise CliError(f"{path}: no such file: check the path")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory: give the circuit files (e.g. {path}/*.qasm)")
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise CliError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CliError(f"{path}:{line}: not UTF-8 text: is it an OpenQASM file?") from None
    suffix = os.path.splitext(path)[1].lower()
    version = _qasm_version(text)
    if suffix in QASM3_SUFFIXES or (suffix in QASM2_SUFFIXES and version == 3):
        circuit = load_qasm3(path, text)
    elif suffix in QASM2_SUFFIXES:
        circuit = load_qasm2(path, text)
    else:
        raise CliError(f"{path}: unknown kind of file {suffix or '(no suffix)'!r}: expecting .qasm (OpenQASM 2) or .qasm3")
    if circuit.num_qubits < 1:
        raise CliError(f"{path}: the circuit has no qubits: declare at least one (qreg / qubit)")
    return circuit


def read_sources(paths: Sequence[str]) -> list[Source]:
    """Every circuit, named after its file (made safe and unique for file names)."""
    from aer_mpi.filenames import unique_stems

    sources = [Source(path, read_circuit(path)) for path in paths]
    stems = unique_stems(os.path.splitext(os.path.basename(s.path))[0] for s in sources)
    for source, stem in zip(sources, stems):
        source.circuit.name = stem
    return sources


# -- checking outputs before running ------------------------------------------------
def _check_writable_directory(directory: str, what: str) -> None:
    try:
        handle, probe = tempfile.mkstemp(prefix=".aer-mpi-probe-", dir=directory)
    except OSError as exc:
        raise CliError(f"{what}: cannot write in {directory}: {exc.strerror or exc}: choose a writable directory") from None
    os.close(handle)
    os.unlink(probe)


def check_output(path: str) -> None:
    if os.path.isdir(path):
        raise CliError(f"--output {path}: is a directory: give a file name, e.g. {os.path.join(path, 'results.json')}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"--output {path}: directory {directory} does not exist: create it first")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"--output {path}: the file exists and is read-only: remove it or choose another name")
    _check_writable_directory(directory, f"--output {path}")


def check_statevector_dir(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CliError(f"--save-statevector {directory}: exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--save-statevector {directory}: cannot create it: {exc.strerror or exc}") from None
    _check_writable_directory(directory, f"--save-statevector {directory}")


# -- writing the results ----------------------------------------------------------
def write_json_atomically(path: str, document: Any) -> None:
    """Write ``document`` to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, default=_json_default)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, complex):
        return [value.real, value.imag]
    return str(value)


def results_document(result: Any, sources: Sequence[Source], seed: int, ranks: int, memory: bool) -> dict:
    entries = []
    for i, (source, experiment) in enumerate(zip(sources, result.results)):
        data = experiment.data
        entry: dict[str, Any] = {
            "name": source.circuit.name,
            "file": source.path,
            "num_qubits": source.circuit.num_qubits,
            "shots": experiment.shots,
            "seed": experiment.seed_simulator,
            "counts": result.get_counts(i) if getattr(data, "counts", None) is not None else None,
        }
        if memory:
            entry["memory"] = result.get_memory(i) if getattr(data, "memory", None) is not None else None
        metadata = dict(experiment.metadata or {})
        if "statevector_file" in metadata:
            entry["statevector"] = metadata["statevector_file"]
        entry["metadata"] = metadata
        entry["time_taken"] = experiment.time_taken
        entries.append(entry)
    return {
        "results": entries,
        "backend": result.backend_name,
        "backend_version": result.backend_version,
        "ranks": ranks,
        "seed": seed,
        "job_id": result.job_id,
        "success": bool(result.success),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "time_taken": result.time_taken,
    }


# -- commands ---------------------------------------------------------------------------
def _prepare(args: argparse.Namespace) -> tuple[list[Source], int]:
    """On rank 0: the circuits and the seed, after checking every input and output."""
    check_output(args.output)
    sources = read_sources(args.files)
    if args.save_statevector is not None:  # last: it creates the directory
        check_statevector_dir(args.save_statevector)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 62)
    return sources, seed


def _share(comm: Any, compute: Any) -> Any:
    """Run ``compute()`` on rank 0 and give every rank its value, or raise its ``CliError`` everywhere."""
    packet: Optional[bytes] = None
    if comm.Get_rank() == 0:
        try:
            outcome: tuple = ("ok", compute())
        except CliError as exc:
            outcome = ("error", str(exc), exc.status)
        except Exception as exc:  # a bug or an odd file: still one line, on every rank
            outcome = ("error", f"{type(exc).__name__}: {_one_line(str(exc))}", EXIT_BAD_INPUT)
        try:
            packet = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            packet = pickle.dumps(("error", f"cannot send the circuits to the other ranks: {exc}", EXIT_RUN_FAILED))
    outcome = pickle.loads(comm.bcast(packet, root=0))
    if outcome[0] == "error":
        raise CliError(outcome[1], outcome[2])
    return outcome[1]


def command_run(args: argparse.Namespace) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        sources, seed = _share(comm, lambda: _prepare(args))
    except CliError as exc:
        if rank == 0:
            _error(str(exc))
        return exc.status

    from aer_mpi.backend import AerMPISimulator
    from aer_mpi.progress import ProgressListener, make_listener

    if args.quiet:
        listener: ProgressListener = ProgressListener()
    else:
        listener = make_listener(args.progress or True)
    backend = AerMPISimulator(comm=comm)
    options: dict[str, Any] = {
        "shots": args.shots,
        "seed_simulator": seed,
        "precision": args.precision,
        "memory": args.memory,
        "progress": listener,
        "statevector_dir": args.save_statevector,
    }
    if args.max_memory_mb is not None:
        options["max_memory_mb"] = args.max_memory_mb
    options["parallel_experiments"] = args.parallel_experiments
    try:
        job = backend.run([s.circuit for s in sources], **options)
        result = job.result()
    except Exception as exc:
        if rank == 0:
            prefix = ""
            if listener.index is not None and listener.index < len(sources):
                prefix = f"{sources[listener.index].path} ({listener.where()}): "
            _error(f"{prefix}{_one_line(str(exc)) or type(exc).__name__}")
        return EXIT_RUN_FAILED

    status = EXIT_OK
    packet: Optional[str] = None
    if rank == 0:
        for source, experiment in zip(sources, result.results):
            note = (experiment.metadata or {}).get("statevector_note")
            if note:
                print(f"{PROG}: warning: {source.path}: statevector {note}", file=sys.stderr)
        try:
            document = results_document(result, sources, seed, comm.Get_size(), args.memory)
            write_json_atomically(args.output, document)
        except Exception as exc:
            packet = f"--output {args.output}: cannot write the results: {_one_line(str(exc))}"
    packet = comm.bcast(packet, root=0)
    if packet is not None:
        if rank == 0:
            _error(packet)
        status = EXIT_RUN_FAILED
    return status


def _memory_per_rank(comm: Any) -> tuple[int, int]:
    """(bytes available to each rank, ranks on this node), as the engine counts them."""
    from aer_mpi.comm import ranks_on_this_node
    from aer_mpi.engine.config import RunConfig
    from aer_mpi.engine.runner import memory_available

    return memory_available(comm, RunConfig()), ranks_on_this_node(comm)


def _threads_per_rank() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(cpus, int(omp)) if omp.isdigit() and int(omp) > 0 else cpus


def gather_info(comm: Any) -> Optional[dict]:
    """What ``aer-mpi info`` reports (collective); the dict on rank 0, None elsewhere."""
    import platform
    import socket

    import mpi4py
    import numpy
    import qiskit
    from mpi4py import MPI

    available, local_ranks = _memory_per_rank(comm)
    mine = {
        "host": socket.gethostname(),
        "threads": _threads_per_rank(),
        "memory": available,
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    everyone = comm.gather(mine, root=0)
    if comm.Get_rank() != 0:
        return None
    try:
        import qiskit_qasm3_import

        qasm3 = qiskit_qasm3_import.__version__
    except ImportError:
        qasm3 = None
    hosts: dict[str, int] = {}
    for entry in everyone:
        hosts[entry["host"]] = hosts.get(entry["host"], 0) + 1
    memory = min(e["memory"] for e in everyone)
    working = 1 << (comm.Get_size().bit_length() - 1)
    largest = {}
    for precision, itemsize in (("double", 16), ("single", 8)):
        # the shard plus the exchange buffer and scratch, as the engine counts them
        from aer_mpi.engine.config import RunConfig
        from aer_mpi.engine.runner import SCRATCH_BYTES

        room = memory - RunConfig().buffer_bytes - SCRATCH_BYTES
        local = (room // itemsize).bit_length() - 1 if room >= itemsize else 0
        largest[precision] = local + (working.bit_length() - 1)
    return {
        "aer_mpi": __version__,
        "python": platform.python_version(),
        "qiskit": qiskit.__version__,
        "numpy": numpy.__version__,
        "mpi4py": mpi4py.__version__,
        "qiskit_qasm3_import": qasm3,
        "mpi_library": MPI.Get_library_version().strip(),
        "mpi_standard": "%d.%d" % MPI.Get_version(),
        "ranks": comm.Get_size(),
        "working_ranks": working,
        "nodes": hosts,
        "threads_per_rank": min(e["threads"] for e in everyone),
        "memory_per_rank_bytes": memory,
        "largest_circuit_qubits": largest,
    }


def _mpi_library_summary(text: str) -> str:
    """The first line of MPI_Get_library_version, plus MPICH's device (the rest is in --json)."""
    lines = [_one_line(line) for line in text.splitlines() if line.strip()]
    if not lines:
        return "unknown"
    summary = lines[0]
    device = next((line for line in lines if line.startswith("MPICH Device:")), None)
    return f"{summary}, {device}" if device else summary


def command_info(args: argparse.Namespace) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    info = gather_info(comm)
    if info is None:
        return EXIT_OK
    if args.json:
        print(json.dumps(info, indent=1))
        return EXIT_OK
    nodes = ", ".join(f"{host} ({count})" for host, count in info["nodes"].items())
    lines = [
        f"aer-mpi          {info['aer_mpi']} (Python {info['python']})",
        f"qiskit           {info['qiskit']}",
        f"numpy            {info['numpy']}",
        f"mpi4py           {info['mpi4py']}",
        f"qasm3 import     {info['qiskit_qasm3_import'] or 'not installed (pip install aer-mpi[qasm3])'}",
        f"MPI library      {_mpi_library_summary(info['mpi_library'])} (MPI {info['mpi_standard']})",
        f"ranks            {info['ranks']} ({info['working_ranks']} hold a shard) on {len(info['nodes'])} node(s): {nodes}",
        f"threads per rank {info['threads_per_rank']}",
        f"memory per rank  {info['memory_per_rank_bytes'] / (1 << 30):.2f} GiB (the least of any rank)",
        "largest circuit  {double} qubits (double), {single} qubits (single) on these ranks".format(
            **info["largest_circuit_qubits"]
        ),
    ]
    print("\n".join(lines))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
