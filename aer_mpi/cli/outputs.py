"""Outputs of ``aer-mpi run``: checked before the run, written atomically after it."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from typing import Any, Optional, Sequence

from aer_mpi.cli.errors import CliError
from aer_mpi.cli.inputs import Source
from aer_mpi.comm.watchdog import unfinished_file


# -- checking outputs before running ------------------------------------------------
def _check_writable_directory(directory: str, what: str) -> None:
    try:
        handle, probe = tempfile.mkstemp(prefix=".aer-mpi-probe-", dir=directory)
    except OSError as exc:
        raise CliError(f"{what}: cannot write in {directory}: {exc.strerror or exc}: choose a writable directory") from None
    os.close(handle)
    os.unlink(probe)


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str, inputs: Sequence[str] = (), statevector_dir: Optional[str] = None,
                 checkpoint_dir: Optional[str] = None) -> None:
    """Refuse an --output that cannot be written safely, before anything runs."""
    if not path or path.endswith(os.sep) or os.path.basename(path) in ("", ".", ".."):
        raise CliError(f"--output {path!r}: not a file name: give one, e.g. results.json")
    if statevector_dir is not None and _same_path(path, statevector_dir):
        raise CliError(f"--output {path}: is also the --save-statevector directory: choose another name")
    for flag, folder in (("--save-statevector", statevector_dir), ("--checkpoint", checkpoint_dir)):
        # the run writes (and replaces, and removes) the files of those folders: a state or a manifest
        # would be overwritten by the results, or the results by them
        if folder and _same_path(os.path.dirname(os.path.abspath(path)), folder):
            raise CliError(f"--output {path}: is inside the {flag} directory {folder}, whose files the run writes "
                           f"and removes: write the results elsewhere")
    for source in inputs:
        if _same_path(path, source):
            raise CliError(f"--output {path}: is the input file {source}: choose another name for the results")
    if os.path.islink(path):
        raise CliError(f"--output {path}: is a symbolic link: aer-mpi never writes through one; remove it or choose another name")
    if os.path.isdir(path):
        raise CliError(f"--output {path}: is a directory: give a file name, e.g. {os.path.join(path, 'results.json')}")
    _refuse_special_file(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"--output {path}: directory {directory} does not exist: create it first")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(f"--output {path}: the file exists and is read-only: remove it or choose another name")
    _check_writable_directory(directory, f"--output {path}")


def check_statevector_targets(directory: str, stems: Sequence[str]) -> None:
    """Refuse, before the run, a statevector file that is a symbolic link or not a plain file
    (it would be refused at write time, after the run): ``directory``/``stem``.npy for each circuit."""
    if not directory:
        raise CliError("--save-statevector '': not a directory name: give one, e.g. states")
    for stem in stems:
        target = os.path.join(directory, f"{stem}.npy")
        if os.path.islink(target):
            raise CliError(f"--save-statevector {directory}: {target} is a symbolic link: aer-mpi never writes "
                           f"through one; remove it or choose another directory")
        if os.path.exists(target) and not os.path.isfile(target):
            raise CliError(f"--save-statevector {directory}: {target} exists and is not a file: remove it or "
                           f"choose another directory")


def check_statevector_dir(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise CliError(f"--save-statevector {directory}: exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--save-statevector {directory}: cannot create it: {exc.strerror or exc}") from None
    _check_writable_directory(directory, f"--save-statevector {directory}")


# -- writing the results ----------------------------------------------------------
def _refuse_special_file(path: str) -> None:
    """An existing --output that is not a regular file (a pipe, a device such as /dev/null, a socket)
    is refused: the results go to a new file renamed over the name, which would replace it."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise CliError(f"--output {path}: exists and is not a regular file (a pipe, a device, ...): aer-mpi "
                       f"writes its results to a file it puts in that name's place; choose a file name")


def write_json_atomically(path: str, document: Any) -> None:
    """Write ``document`` to ``path`` through a temporary file in the same directory and a rename.

    The temporary file gets a random name and is created exclusively (``mkstemp``), and the
    rename replaces the directory entry ``path``: nothing is written through a symbolic link.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.islink(path):
        raise CliError(f"--output {path}: is a symbolic link: aer-mpi never writes through one; remove it or choose another name")
    _refuse_special_file(path)  # (again: it may have appeared while the job ran)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with unfinished_file(temporary):  # (a second SIGTERM or an abort removes it too)
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
        if not experiment.success:
            cancelled = bool((experiment.metadata or {}).get("cancelled"))
            entries.append({
                "name": source.circuit.name,
                "file": source.path,
                "num_qubits": source.circuit.num_qubits,
                "status": "cancelled" if cancelled else "error",
                "error": str(experiment.status),
                "counts": None,
            })
            continue
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
        entry["status"] = "done"
        entries.append(entry)
    return {
        "results": entries,
        "backend": result.backend_name,
        "backend_version": result.backend_version,
        "ranks": ranks,
        "seed": seed,
        "job_id": result.job_id,
        "success": bool(result.success),
        "status": str(result.status),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "time_taken": result.time_taken,
    }
