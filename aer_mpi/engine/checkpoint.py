"""Checkpoints of a job on disk, and resuming from them at any number of ranks.

Promise of this module: a ``JobCheckpoints`` owns one checkpoint directory.
At a point of the run that every rank reaches together (an op boundary of
the plan, or between two experiments) ``write`` saves

* every state the run holds (the shard, and the copies shot branching keeps)
  as one ``.npy`` file each, written by all working ranks at once with
  MPI-IO (``comm.write_npy_collective``: no gather), in the physical order
  of the layout they are in, synced to disk;
* ``snapshot-<g>.pkl`` (rank 0): the finished experiments' outputs, the
  experiment reached, and the engine's part (where the run is, in terms of
  the plan's blocks and ops, which do not depend on the number of ranks;
  the layouts; the shot-branching work stack with every shot's random
  stream; the saves so far; block checksums of the state files);
* ``manifest.json`` (rank 0), atomically, last: it names the generation
  ``g`` of the files above. The files of the previous generation are
  removed only after it, so the previous checkpoint stays valid until the
  new one is complete.

``JobCheckpoints.open`` (collective) finds a manifest in the directory and
checks it: a checkpoint of another job (fingerprint), of a newer format, or
with a damaged or missing file is refused with one error on every rank,
and nothing in the directory is touched. States are re-read in the new
layout by ``read_state`` (each rank its own range, checksums verified), and
``Shard.relayout`` moves them to the layout the new plan has at that point.

One job at a time: rank 0 holds an advisory lock (``flock`` on ``.aer_mpi.lock`` in the
directory) from ``open`` to ``release``; a second job on the same directory is refused ("in use"),
where the two used to delete each other's files. On a file system without ``flock`` (some NFS or
Lustre mounts) the job runs unlocked.

Nothing is written or read through a symbolic link; the snapshot is a
pickle, so a directory or snapshot writable by another user is refused
before it is loaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import secrets
import socket
import stat
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from aer_mpi.comm import Collective, read_npy_range, write_npy_collective
from aer_mpi.errors import CheckpointError, InvalidInputError

FORMAT = "aer_mpi-checkpoint/1"
MANIFEST = "manifest.json"
#: The lock file rank 0 holds while a job uses the directory (it says which process).
LOCK = ".aer_mpi.lock"
#: States are checksummed in blocks of 2**CRC_BLOCK_BITS amplitudes (fewer for smaller states).
CRC_BLOCK_BITS = 16


def stored_seed(directory: Optional[str]) -> Optional[int]:
    """The seed the checkpoint in ``directory`` was made with (None: no readable manifest)."""
    if not directory:
        return None
    try:
        manifest = _read_json(os.path.join(directory, MANIFEST))
    except (OSError, ValueError):
        return None
    seed = manifest.get("seed") if isinstance(manifest, dict) else None
    return seed if isinstance(seed, int) else None


@dataclass
class StateFile:
    """One saved state: its file, the layout it was written in, its block checksums."""

    name: str
    layout: tuple[int, ...]
    num_qubits: int
    crc_block_bits: int
    crcs: np.ndarray


@dataclass
class JobCheckpoints:
    """The checkpoint directory of one job, on every rank (rank 0 writes the small files)."""

    directory: str
    fingerprint: str
    seed: int
    every_seconds: Optional[float] = None
    #: Experiment index -> output of the finished experiments (rank 0: whole; others: small parts).
    finished: dict = field(default_factory=dict)
    #: The experiment running now.
    experiment: int = 0
    #: The engine's part to resume experiment ``resume_experiment`` from (None: nothing to resume).
    resume: Optional[dict] = None
    resume_experiment: int = -1
    #: Why checkpoints could not be written (the run went on without them).
    failures: list = field(default_factory=list)
    generation: int = 0
    last_written: float = field(default_factory=time.monotonic)
    #: Checkpoints written by this run: count, seconds, bytes of state.
    written: int = 0
    seconds: float = 0.0
    bytes: int = 0
    #: Where this run started from (None: from the beginning).
    resumed_from: Optional[dict] = None
    #: Whether this run created the directory (rank 0): if it ends empty, it goes (``release``).
    created: bool = False
    #: Rank 0: the descriptor of the lock file it holds (None: none, or a file system without locks).
    lock_fd: Optional[int] = None

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, comm: Any, directory: str, fingerprint: Optional[str], seed: int,
             every_seconds: Optional[float]) -> "JobCheckpoints":
        """Collective: the directory's checkpoint of this job (resumed), or an empty one (a new run).

        ``fingerprint`` and ``seed`` matter on rank 0 only (shared from there).
        """
        collective = Collective(comm)
        packet: Any = None
        error: Optional[BaseException] = None
        lock_fd = None
        if collective.rank == 0:
            try:
                packet = _load(directory, fingerprint, seed)
                lock_fd = packet.pop("lock_fd", None)
            except Exception as exc:
                error = exc
        collective.agree(error)
        packet = collective.bcast(packet if collective.rank == 0 else None)
        store = cls(directory=directory, fingerprint=packet["fingerprint"], seed=packet["seed"],
                    every_seconds=every_seconds, created=bool(packet.get("created")), lock_fd=lock_fd)
        if packet.get("generation"):
            store.generation = packet["generation"]
            store.experiment = packet["experiment"]
            store.resume = packet["engine"]
            store.resume_experiment = packet["experiment"]
            store.finished = packet["finished"]
            store.resumed_from = {"experiment": packet["experiment"], "generation": packet["generation"],
                                  "ranks": packet["ranks"]}
        return store

    # -- deciding ----------------------------------------------------------------------------
    def due(self) -> bool:
        """Whether the period has passed since the last checkpoint (rank 0 decides; others: False)."""
        return self.every_seconds is not None and time.monotonic() - self.last_written >= self.every_seconds

    def take_resume(self) -> Optional[dict]:
        """The engine part to resume the experiment running now (``experiment``) from, once."""
        if self.experiment != self.resume_experiment:
            return None
        part, self.resume = self.resume, None
        return part

    # -- writing -----------------------------------------------------------------------------
    def write(self, collective: Collective, engine: Optional[dict] = None,
              states: tuple = (), rank0_part: Optional[dict] = None) -> Optional[str]:
        """Write a checkpoint (collective over ``collective``, whose rank 0 is the job's rank 0).

        ``states``: ``(array, layout)`` of this rank for every state to keep;
        ``engine``: what the engine needs to go on (the same on every rank);
        ``rank0_part``: more of it that only rank 0 holds (the saves).
        Returns None, or why it could not be written (a full disk, ...: the
        same on every rank; the previous checkpoint stays valid, a warning is
        printed and the run goes on).

        Between circuits (``engine`` None), nothing is written before the circuit a job resumed in
        has run: the checkpoint it came from still holds the job as it stands, and a new one, without
        that circuit's state, would remove its files. (``resume_experiment`` decides, the same on every
        rank: ``resume`` itself is taken by the working ranks only.)
        """
        if engine is None and self.experiment <= self.resume_experiment:
            return None
        try:
            self._write(collective, engine, states, rank0_part)
        except Exception as exc:  # agreed: every rank is here with the same error
            if getattr(exc, "_agreed", False) or collective.size == 1:
                why = str(exc)
                self.failures.append(why)
                self.last_written = time.monotonic()  # the next try after a period, not at the next meeting
                if collective.rank == 0:
                    print(f"aer_mpi: warning: could not write a checkpoint in {self.directory}: {why}",
                          file=sys.stderr, flush=True)
                return why
            raise
        return None

    def _write(self, collective: Collective, engine: Optional[dict], states: tuple,
               rank0_part: Optional[dict]) -> None:
        start = time.perf_counter()
        generation = self.generation + 1
        files = []
        nbytes = 0
        for j, (array, layout) in enumerate(states):
            name = f"state-{generation}-{j}.npy"
            num_local = array.shape[0].bit_length() - 1
            num_qubits = num_local + (collective.size.bit_length() - 1)
            write_npy_collective(collective, os.path.join(self.directory, name), array.dtype, 1 << num_qubits,
                                 collective.rank << num_local, [array], sync=True, mode=0o600)
            bits = min(CRC_BLOCK_BITS, num_local)
            crcs = collective.allgather(_crcs(array, bits))
            files.append(StateFile(name, tuple(layout), num_qubits, bits, np.concatenate(crcs)))
            nbytes += array.nbytes * collective.size
        error: Optional[BaseException] = None
        if collective.rank == 0:
            try:
                engine_part = None if engine is None else dict(engine, states=files, **(rank0_part or {}))
                snapshot = {"finished": self.finished, "experiment": self.experiment, "engine": engine_part}
                self._publish(generation, snapshot, collective.size, nbytes, time.perf_counter() - start)
            except Exception as exc:
                error = exc
        collective.agree(error)
        self.generation = generation
        self.last_written = time.monotonic()
        self.written += 1
        self.seconds += time.perf_counter() - start
        self.bytes += nbytes

    def _publish(self, generation: int, snapshot: dict, ranks: int, nbytes: int, seconds: float) -> None:
        """Rank 0: the snapshot, then the manifest (atomically), then the previous generation goes."""
        name = f"snapshot-{generation}.pkl"
        payload = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        _write_atomically(os.path.join(self.directory, name), payload)
        engine = snapshot["engine"]
        manifest = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "generation": generation,
            "experiment": self.experiment,
            "finished_experiments": sorted(int(i) for i in self.finished),
            "ranks": ranks,
            "snapshot": name,
            "snapshot_sha256": hashlib.sha256(payload).hexdigest(),
            "states": [] if engine is None else [s.name for s in engine["states"]],
            "point": None if engine is None else engine.get("where"),
            "state_bytes": nbytes,
            "seconds_to_write_states": seconds,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_atomically(os.path.join(self.directory, MANIFEST), json.dumps(manifest, indent=1).encode())
        self._remove_older(generation)

    def _remove_older(self, keep: int) -> None:
        for entry in os.listdir(self.directory):
            if _generation_of(entry) not in (None, keep):
                _unlink_quietly(os.path.join(self.directory, entry))

    def remove(self, comm: Any) -> None:
        """Collective: the job finished; its checkpoint files go (the manifest first)."""
        if comm.Get_rank() == 0 and self.generation:
            _unlink_quietly(os.path.join(self.directory, MANIFEST))
            for entry in os.listdir(self.directory):
                if _generation_of(entry) is not None:
                    _unlink_quietly(os.path.join(self.directory, entry))

    def release(self, comm: Any) -> None:
        """The job ended in any way: a directory it created and left empty (nothing to resume: refused
        or finished) goes, so a run leaves no folder the user would have to clean up. Rank 0 only, no
        communication (safe on an error path)."""
        if comm.Get_rank() != 0:
            return
        if self.lock_fd is not None:
            _unlock(self.directory, self.lock_fd)
            self.lock_fd = None
        if self.created:
            try:
                os.rmdir(self.directory)  # only an empty directory: anything else the user put there stays
            except OSError:
                pass

    def metadata(self) -> dict:
        out = {"directory": self.directory, "written": self.written, "seconds": self.seconds,
               "bytes": self.bytes, "every_seconds": self.every_seconds}
        if self.failures:
            out["failures"] = list(self.failures)
        if self.resumed_from is not None:
            out["resumed_from"] = self.resumed_from
        return out

    # -- reading states ----------------------------------------------------------------------
    def read_state(self, state: StateFile, rank: int, num_local: int, dtype: np.dtype) -> np.ndarray:
        """This rank's ``2**num_local`` amplitudes of a saved state, checksums verified (no communication)."""
        path = os.path.join(self.directory, state.name)
        start, stop = rank << num_local, (rank + 1) << num_local
        block = 1 << state.crc_block_bits
        first, last = start // block, -(-stop // block)
        try:
            data = read_npy_range(path, first * block, last * block)
        except InvalidInputError as exc:
            raise CheckpointError(f"the checkpoint in {self.directory} is damaged ({exc}): resume from another "
                                  f"checkpoint or start without one") from exc
        if data.dtype != np.dtype(dtype):
            raise CheckpointError(f"{path} holds {data.dtype} amplitudes, this run {np.dtype(dtype)}")
        if not np.array_equal(_crcs(data, state.crc_block_bits), state.crcs[first:last]):
            raise CheckpointError(f"{path} is damaged (its checksums differ from the manifest's): "
                                  f"resume from another checkpoint or start without one")
        return data[start - first * block : stop - first * block]


def load_state(checkpoints: JobCheckpoints, shard: Any, state: StateFile, layout: tuple[int, ...]) -> None:
    """Collective: put a saved state on ``shard``, in ``layout`` (errors agreed on every rank)."""
    error: Optional[BaseException] = None
    try:
        if state.num_qubits != shard.num_qubits:
            raise CheckpointError(f"the checkpoint's state has {state.num_qubits} qubits, this circuit "
                                  f"{shard.num_qubits}: use another checkpoint directory")
        shard.array[:] = checkpoints.read_state(state, shard.rank, shard.num_local, shard.dtype)
    except Exception as exc:
        error = exc
    shard.collective.agree(error)
    shard.relayout(state.layout, layout)


class PlanIndex:
    """Points of a plan named as (block, ops done): the same names at any number of ranks.

    Blocks are numbered in the order the planner met them (``Plan.blocks``);
    a step is found by the op it belongs to, whose last step it is.
    """

    def __init__(self, plan: Any):
        self.blocks = plan.blocks
        self.top = len(self.blocks) - 1
        self._block_of: dict[int, int] = {}
        self._where: dict[int, tuple[int, int]] = {}
        self._boundaries: dict[int, frozenset] = {}
        for b, block in enumerate(self.blocks):
            if block.steps:
                self._block_of[id(block.steps)] = b
            for s, step in enumerate(block.steps):
                self._where.setdefault(id(step), (b, s))

    def block_of(self, steps: tuple) -> int:
        return self._block_of[id(steps)]

    def boundaries(self, b: int) -> frozenset:
        """Step indices of block ``b`` where an op has just ended (0 and the ends)."""
        found = self._boundaries.get(b)
        if found is None:
            found = self._boundaries[b] = frozenset((0,) + self.blocks[b].ends)
        return found

    def ops_done(self, b: int, index: int) -> int:
        """Ops of block ``b`` done when its steps before ``index`` are (``index`` a boundary).

        Ops with no steps of their own (a relabelled swap) count as done: the
        step at ``index`` was planned in the layout after them.
        """
        import bisect

        return bisect.bisect_right(self.blocks[b].ends, index)

    def index_after(self, b: int, ops_done: int) -> int:
        """The step index of block ``b`` once ``ops_done`` ops are done."""
        return self.blocks[b].ends[ops_done - 1] if ops_done else 0

    def op_of(self, step: Any) -> tuple[int, int]:
        """(block, op) of a step of this plan."""
        import bisect

        b, s = self._where[id(step)]
        return b, bisect.bisect_right(self.blocks[b].ends, s)

    def last_step(self, b: int, op: int) -> Any:
        """The last step of op ``op`` of block ``b`` (a measurement, a loop, a noise event)."""
        return self.blocks[b].steps[self.blocks[b].ends[op] - 1]


# -- files -----------------------------------------------------------------------------------
def _crcs(array: np.ndarray, bits: int) -> np.ndarray:
    view = np.ascontiguousarray(array).view(np.uint8).reshape(array.shape[0] >> bits, -1)
    return np.array([zlib.crc32(row) for row in view], dtype=np.uint32)


def _generation_of(entry: str) -> Optional[int]:
    """The generation of one of this module's files (None: not one of them; -1: a partial one)."""
    if entry.startswith((".state-", ".snapshot-", f".{MANIFEST}.")) and entry.endswith(".partial"):
        return -1
    for prefix in ("state-", "snapshot-"):
        if entry.startswith(prefix):
            head = entry[len(prefix):].split("-")[0].split(".")[0]
            return int(head) if head.isdigit() else None
    return None


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_atomically(path: str, data: bytes) -> None:
    """``data`` as ``path``: a new file under a random name (never through a link), synced, renamed."""
    directory = os.path.dirname(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    partial = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.partial")
    descriptor = os.open(partial, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.islink(path):
            raise CheckpointError(f"cannot write {path}: it is a symbolic link")
        os.replace(partial, path)
    except BaseException:
        _unlink_quietly(partial)
        raise


def _read_private(path: str) -> bytes:
    """A file of ours: not a link, owned by this user, not writable by others."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        _check_private(path, info)
        return handle.read()


def _check_private(path: str, info: os.stat_result) -> None:
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise CheckpointError(
            f"{path} is owned by another user or writable by others: a checkpoint is only loaded from "
            f"files only you can write (chmod go-w, or use a private checkpoint directory)"
        )


def _read_json(path: str) -> Any:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(path, flags), "rb") as handle:
        return json.loads(handle.read().decode())


def _lock(directory: str) -> Optional[int]:
    """Rank 0: the directory's lock, held (its descriptor); None where the file system has no locks."""
    path = os.path.join(directory, LOCK)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(10):
        try:
            descriptor = os.open(path, flags, 0o600)
        except OSError as exc:
            raise CheckpointError(f"cannot lock checkpoint directory {directory} ({path}: {exc.strerror or exc}): "
                                  f"choose another path") from exc
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(descriptor, 200).decode(errors="replace").strip() or "another process"
            finally:
                os.close(descriptor)
            raise CheckpointError(f"checkpoint directory {directory} is in use by another running job ({holder}): "
                                  f"wait for it to end, or give this job another directory") from None
        except OSError:
            os.close(descriptor)
            return None  # no flock here: unlocked, as before
        try:
            same = os.path.samestat(os.fstat(descriptor), os.lstat(path))
        except OSError:
            same = False
        if same:  # (not a file another job had just unlinked while releasing)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
            return descriptor
        os.close(descriptor)
    return None


def _unlock(directory: str, descriptor: int) -> None:
    """Rank 0: the lock file goes, then the lock (a job that opened it meanwhile retries, ``_lock``)."""
    path = os.path.join(directory, LOCK)
    try:
        if os.path.samestat(os.fstat(descriptor), os.lstat(path)):
            os.unlink(path)
    except OSError:
        pass
    os.close(descriptor)


def _load(directory: str, fingerprint: Optional[str], seed: int) -> dict:
    """Rank 0: what the directory holds for this job (checked), or a fresh start; with the lock held
    (``lock_fd``) when the file system has locks."""
    fresh = {"fingerprint": fingerprint, "seed": seed}
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint directory {directory} is not a directory: choose another path")
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, mode=0o700)
        except OSError as exc:
            raise CheckpointError(f"cannot create checkpoint directory {directory}: {exc.strerror or exc}") from exc
        return dict(fresh, created=True, lock_fd=_lock(directory))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(f"checkpoint directory {directory} is not writable: choose another path")
    lock_fd = _lock(directory)
    try:
        return dict(_load_checkpoint(directory, fingerprint, seed, fresh), lock_fd=lock_fd)
    except BaseException:
        if lock_fd is not None:
            _unlock(directory, lock_fd)
        raise


def _load_checkpoint(directory: str, fingerprint: Optional[str], seed: int, fresh: dict) -> dict:
    path = os.path.join(directory, MANIFEST)
    if not os.path.lexists(path):
        return fresh
    where = f"the checkpoint in {directory}"
    try:
        manifest = _read_json(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{where} is damaged (its manifest cannot be read: {exc}): "
                              f"remove {path} to start again, or use another directory") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise CheckpointError(f"{where} has format {found!r}; this aer_mpi reads {FORMAT!r}: "
                              f"resume it with the aer_mpi that wrote it, or use another directory")
    if manifest.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{where} is of another job (other circuits or options): run the same circuits with the same "
            f"options to resume, or use another checkpoint directory (it was left as it was)"
        )
    if manifest.get("seed") != seed:
        raise CheckpointError(
            f"{where} was made with seed_simulator={manifest.get('seed')}, this run has {seed}: give that seed "
            f"(or none) to resume, or use another checkpoint directory"
        )
    snapshot_path = os.path.join(directory, str(manifest.get("snapshot")))
    try:
        payload = _read_private(snapshot_path)
    except OSError as exc:
        raise CheckpointError(f"{where} is damaged ({snapshot_path}: {exc.strerror or exc}): "
                              f"use another directory or remove this one to start again") from exc
    if hashlib.sha256(payload).hexdigest() != manifest.get("snapshot_sha256"):
        raise CheckpointError(f"{where} is damaged ({snapshot_path} differs from the manifest's checksum): "
                              f"use another directory or remove this one to start again")
    generation, states = manifest.get("generation"), manifest.get("states")
    if (isinstance(generation, bool) or not isinstance(generation, int) or generation < 1
            or not isinstance(states, list) or not all(isinstance(name, str) for name in states)):
        raise CheckpointError(f"{where} is damaged (its manifest's generation {generation!r} or states {states!r} "
                              f"are not what aer_mpi writes): use another directory or remove this one to start again")
    for name in states:
        state_path = os.path.join(directory, name)
        problem = ("is a symbolic link (a checkpoint is only read from its own files)" if os.path.islink(state_path)
                   else "is missing" if not os.path.isfile(state_path) else None)
        if os.path.basename(name) != name:
            problem = "is not a file of the checkpoint directory"
        if problem:
            raise CheckpointError(f"{where} is damaged ({state_path} {problem}): use another directory "
                                  f"or remove this one to start again")
    snapshot = pickle.loads(payload)
    return dict(fresh, generation=generation, experiment=snapshot["experiment"],
                engine=snapshot["engine"], finished=snapshot["finished"], ranks=manifest.get("ranks"))
