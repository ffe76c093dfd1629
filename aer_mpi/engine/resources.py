"""The one resource policy: ranks per node, cores, threads, memory, kernels.

Promise of this module: every number the engine (and ``aer-mpi info``)
uses to size a run comes from here: how many ranks share this node, how
many cores and kernel threads each rank gets, how much memory a rank may
use and how much a run needs before anything is allocated, and how many
shard copies shot branching may hold. The engine calls it once per run.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Optional, Sequence

import numpy as np

from aer_mpi import environment, ir, kernels
from aer_mpi.comm import ranks_on_this_node
from aer_mpi.engine.config import PRECISIONS, RunConfig
from aer_mpi.engine.sampling import INT64_CLBITS
from aer_mpi.errors import InsufficientMemoryError

#: Scratch a rank holds besides its shard and exchange buffer (kernel chunks, bookkeeping).
SCRATCH_BYTES = 8 << 20
#: Most shard copies shot branching keeps (one per pending measurement outcome).
MAX_BRANCH_COPIES = 64
#: Bytes per shot that shot branching holds besides the state (its random stream, outcome).
BRANCH_BYTES_PER_SHOT = 64


def has_statevector_save(ops: Sequence[ir.Op]) -> bool:
    for op in ops:
        if isinstance(op, ir.Save) and op.kind in ("statevector", "statevector_dict"):
            return True
        if isinstance(op, ir.CONTROL_FLOW) and any(has_statevector_save(b) for b in ir.blocks(op)):
            return True
    return False


#: A bit string of the memory list beyond its characters: the str object and the list's pointer.
RESULT_MEMORY_STRING_BYTES = 64


def shot_bytes(config: RunConfig, num_clbits: int) -> int:
    """Bytes per shot while sampling: uniform, outcome, clbit value, owner index (8 bytes each,
    some twice), plus a hex string per shot when memory=True; a register wider than int64 is a
    Python int per shot (and its memory string as wide)."""
    wide = 0
    if num_clbits > INT64_CLBITS:
        wide = 2 * (num_clbits // 8 + 32) + (num_clbits // 4 + 50 if config.memory else 0)
    return 64 + (80 if config.memory else 0) + wide


def memory_needed(
    program: ir.Program, config: RunConfig, num_local: int, rank: int, working: bool
) -> int:
    """Bytes this rank will hold during the run, counted before allocating any."""
    itemsize = np.dtype(PRECISIONS[config.precision]).itemsize
    outcomes = shot_bytes(config, program.num_clbits) * config.shots
    if rank == 0 and config.memory:
        # rank 0 also holds the memory as bit strings, one per shot, while the results are read or written
        # (Result.get_memory; measured 77 bytes a shot at 20 clbits, with the results' 116 and more at peak)
        outcomes += (program.num_clbits + RESULT_MEMORY_STRING_BYTES) * config.shots
    if not working:
        return outcomes
    shard = itemsize << num_local
    # the exchange buffer and the kernels' scratch never hold more than a shard's worth: a small
    # circuit is not charged their full size (a 2-qubit run fits max_memory_mb=1, as in Aer)
    need = shard + min(config.buffer_bytes, shard) + min(SCRATCH_BYTES, shard + (64 << 10)) + outcomes
    if rank == 0 and has_statevector_save(program.ops):
        # the gathered state in Qiskit's order, plus one shard received at a time
        need += (itemsize << program.num_qubits) + (itemsize << num_local)
    return need


def branch_copies(program: ir.Program, config: RunConfig, num_local: int, rank: int, available: int) -> int:
    """How many copies of the shard shot branching may hold at once besides the rest."""
    itemsize = np.dtype(PRECISIONS[config.precision]).itemsize
    spare = (
        available
        - memory_needed(program, config, num_local, rank, True)
        - BRANCH_BYTES_PER_SHOT * config.shots
    )
    return max(0, min(MAX_BRANCH_COPIES, spare // (itemsize << num_local)))


#: The node's free memory and this process's limits are read again after this many seconds: a batch of
#: small experiments (a primitive's bindings) read psutil and /proc once each, 0.35 ms of their 2-3 ms.
FREE_MEMORY_READ_SECONDS = 0.5
_free_read: Optional[tuple[float, int, tuple]] = None  # (when, available, limits_left())


def memory_available(comm: Any, config: RunConfig, node_ranks: Optional[int] = None) -> int:
    """Bytes one rank may use: ``config.max_memory_bytes``, else the node's free memory shared by its ranks."""
    if config.max_memory_bytes is not None:
        return int(config.max_memory_bytes)
    import psutil

    if node_ranks is None:
        node_ranks = ranks_on_this_node(comm)
    global _free_read
    now = time.monotonic()
    if _free_read is None or now - _free_read[0] > FREE_MEMORY_READ_SECONDS:
        _free_read = (now, int(psutil.virtual_memory().available), limits_left())
    _, available, (own, shared) = _free_read
    free = available // node_ranks
    for left, ranks in ((own, 1), (shared, node_ranks)):
        if left is not None:
            free = min(free, left // ranks)
    return max(free, 0)


def limits_left() -> tuple[Optional[int], Optional[int]]:
    """Bytes left under limits the node's free memory does not show: this process's address space
    (``ulimit -v``, RLIMIT_AS, less what it maps now), and its cgroup's ``memory.max`` (Slurm's
    ``--mem``, shared by the job's ranks on the node, less what they use now); None where unset."""
    own = shared = None
    try:
        import resource

        import psutil

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1):
            own = soft - psutil.Process().memory_info().vms
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/proc/self/cgroup", encoding="ascii") as stream:
            entries = [line.strip().split(":", 2) for line in stream]
    except OSError:
        entries = []
    # cgroup v2 (one hierarchy, "0::/path") and v1 (the "memory" controller's own hierarchy)
    for folder, limit_file, usage_file in (
        [(os.path.join("/sys/fs/cgroup", path.lstrip("/")), "memory.max", "memory.current")
         for number, controllers, path in entries if number == "0" and not controllers]
        + [(os.path.join("/sys/fs/cgroup/memory", path.lstrip("/")), "memory.limit_in_bytes", "memory.usage_in_bytes")
           for _, controllers, path in entries if "memory" in controllers.split(",")]
    ):
        try:
            with open(os.path.join(folder, limit_file), encoding="ascii") as stream:
                limit = stream.read().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # no limit (v1 writes a huge number)
                continue
            with open(os.path.join(folder, usage_file), encoding="ascii") as stream:
                left = int(limit) - int(stream.read().strip())
            shared = left if shared is None else min(shared, left)
        except (OSError, ValueError):
            continue
    return own, shared


def cores_available() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_CORES: Optional[int] = None
_WORLD_NODE_RANKS: Optional[int] = None


def node_ranks(comm: Any) -> int:
    """Ranks of ``comm`` on this node (collective), asked of MPI once per process for COMM_WORLD.

    One rank alone needs no query; COMM_WORLD's answer cannot change, so a
    run of a small circuit does not pay a communicator split each time.
    Every rank takes the same branch (the same sizes, the same call order).
    """
    global _WORLD_NODE_RANKS
    if comm.Get_size() == 1:
        return 1
    from mpi4py import MPI

    if comm.Compare(MPI.COMM_WORLD) != MPI.IDENT:
        return ranks_on_this_node(comm)
    if _WORLD_NODE_RANKS is None:
        _WORLD_NODE_RANKS = ranks_on_this_node(comm)
    return _WORLD_NODE_RANKS


def cores_cached() -> int:
    """``cores_available()`` read once per process (a run asks for it every time)."""
    global _CORES
    if _CORES is None:
        _CORES = cores_available()
    return _CORES


def threads_per_rank(config: RunConfig, node_ranks: int, num_local: Optional[int] = None) -> int:
    """Kernel threads one rank asks for.

    ``threads_per_rank`` when set, else Aer's ``max_parallel_threads`` when
    set, else the node's cores shared by its ranks, at most ``OMP_NUM_THREADS``; but one thread for a
    shard of ``statevector_parallel_threshold`` qubits or fewer (as Aer:
    threads cost more than they save on a small state).
    """
    if num_local is not None and num_local <= config.statevector_parallel_threshold:
        return 1
    share = max(1, cores_cached() // max(1, node_ranks))
    omp = omp_num_threads()
    return config.threads_per_rank or config.max_parallel_threads or (min(share, omp) if omp else share)


def omp_num_threads() -> Optional[int]:
    """``OMP_NUM_THREADS`` (its first level), which caps a rank's threads as it caps Aer's (a batch script
    sets it to the cores it asked for per task, where the scheduler may not bind them); None: unset or
    not a positive number."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def configure_kernels(config: RunConfig, node_ranks: int, num_local: Optional[int] = None) -> tuple[str, int]:
    """Pick the gate kernels and their threads so the node's ranks share its cores.

    ``num_local``: qubits of this rank's shard (threads by state size);
    None: the threads of a large shard. Returns the back end's name and the
    threads it really uses.
    """
    name = kernels.use(config.kernels or environment.choice("AER_MPI_KERNELS"))
    return name, kernels.set_threads(threads_per_rank(config, node_ranks, num_local))


#: Fraction of the L2 cache one chunk of a cache-blocked stage takes (the rest: the gates, the stack).
CHUNK_OF_L2 = 0.5
#: L2 size assumed where the system does not say (bytes).
DEFAULT_L2_BYTES = 1 << 20
#: Largest chunk (bytes) a large shard's stages take, where this core's share of the L3 cache
#: leaves room: the stages are bound by arithmetic, so a chunk may spill from L2 to L3, and a
#: larger chunk needs fewer cache swaps. On an AMD EPYC (Zen 3, 512 KiB L2, 32 MiB L3, AVX2) at
#: 24 qubits, 2 MiB chunks against 256 KiB: QV 1.46 -> 1.31 s, brickwork 1.46 -> 1.30, random
#: 1.66 -> 1.56, QFT 0.90 -> 0.86 (docs/performance.md).
LARGEST_CHUNK_BYTES = 2 << 20
#: A chunk leaves at least 2**CHUNK_COUNT_BITS chunks of a shard, so that the threads share them.
CHUNK_COUNT_BITS = 2


@functools.lru_cache(maxsize=1)
def _cache_sizes() -> dict:
    """``{level: (bytes, cpus sharing it)}`` of this core's unified and data caches (Linux sysfs;
    read once: they do not change)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    sizes: dict = {}
    try:
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            if not entry.startswith("index"):
                continue
            with open(os.path.join(path, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(path, "level")) as f:
                level = int(f.read().strip())
            with open(os.path.join(path, "size")) as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            sharing = 1
            try:
                with open(os.path.join(path, "shared_cpu_list")) as f:
                    sharing = _count_cpus(f.read())
            except (OSError, ValueError):
                pass
            sizes[level] = (int(text.rstrip("KMG")) * scale, max(1, sharing))
    except (OSError, ValueError):
        pass
    return sizes


def _count_cpus(cpu_list: str) -> int:
    """CPUs in a sysfs list such as ``0-3,8``."""
    count = 0
    for part in cpu_list.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            count += int(last or first) - int(first) + 1
    return count


def l2_cache_bytes() -> int:
    """This core's L2 cache (Linux sysfs), else ``DEFAULT_L2_BYTES``."""
    return _cache_sizes().get(2, (DEFAULT_L2_BYTES, 1))[0]


def l3_share_bytes() -> int:
    """This core's share of the L3 cache (its size over the CPUs that share it), else 0."""
    size, sharing = _cache_sizes().get(3, (0, 1))
    return size // sharing


def cache_qubits(config: RunConfig) -> Optional[tuple[int, int]]:
    """Qubits of a cache-blocked stage's chunk as this rank would choose them, ``(smallest,
    largest)``, or None when cache blocking is off (``stage_chunk_qubits`` picks one per shard).

    ``config.cache_qubits`` when set (both); else the smallest is the most whose chunk fits in
    ``CHUNK_OF_L2`` of the L2 cache, and the largest adds half this core's share of the L3
    cache, up to ``LARGEST_CHUNK_BYTES``. Off when ``config.cache_blocking`` is False or
    ``$AER_MPI_CACHE_BLOCKING`` is ``0`` / ``off`` / ``false``.
    """
    if not config.cache_blocking:
        return None
    if not environment.switch("AER_MPI_CACHE_BLOCKING"):
        return None
    if config.cache_qubits is not None:
        return int(config.cache_qubits), int(config.cache_qubits)
    itemsize = np.dtype(PRECISIONS[config.precision]).itemsize
    in_l2 = l2_cache_bytes() * CHUNK_OF_L2
    smallest = max(8, (int(in_l2) // itemsize).bit_length() - 1)
    room = max(in_l2, min(LARGEST_CHUNK_BYTES, in_l2 + l3_share_bytes() / 2))
    return smallest, max(smallest, (int(room) // itemsize).bit_length() - 1)


def stage_chunk_qubits(chosen: Optional[tuple[int, int]], num_local: int) -> Optional[int]:
    """The chunk of a shard of ``num_local`` qubits from ``chosen`` = ``(smallest, largest)``: the
    largest that leaves the threads ``2**CHUNK_COUNT_BITS`` chunks, never below the smallest (a
    shard no wider than that is one chunk, with no cache tier)."""
    if chosen is None:
        return None
    smallest, largest = chosen
    return max(smallest, min(largest, num_local - CHUNK_COUNT_BITS))


def largest_local_qubits(available: int, config: RunConfig) -> int:
    """Most local qubits a shard may have in ``available`` bytes (besides buffer and scratch)."""
    itemsize = np.dtype(PRECISIONS[config.precision]).itemsize
    room = available - config.buffer_bytes - SCRATCH_BYTES
    return (room // itemsize).bit_length() - 1 if room >= itemsize else 0


def mib(num_bytes: int) -> str:
    if num_bytes < 1 << 20:
        return f"{num_bytes:,} bytes"
    if num_bytes >= 1 << 70:  # a state of 1000+ qubits: a float would overflow, and digits say nothing
        return f"about 2^{int(num_bytes).bit_length() - 1} bytes"
    return f"{num_bytes / (1 << 20):,.0f} MiB"


def check_shots_memory(program: ir.Program, config: RunConfig, rank: int, available: int) -> None:
    """Raise ``InsufficientMemoryError`` when the shots' outcomes alone do not fit: a run with no
    state vector (engine/tableau.py) still holds them."""
    outcomes = shot_bytes(config, program.num_clbits) * config.shots
    if outcomes > available:
        raise InsufficientMemoryError(
            f"{config.shots:,} shots need {mib(outcomes)} per rank for their outcomes"
            f"{' and memory strings' if config.memory else ''}; {mib(available)} are available on rank "
            f"{rank}: run fewer shots per job (split them over several runs and add the counts)"
            + (", or leave memory=False" if config.memory else "")
        )


def check_memory(
    program: ir.Program,
    config: RunConfig,
    num_local: int,
    rank: int,
    working_ranks: int,
    available: int,
) -> int:
    """Raise ``InsufficientMemoryError`` when this rank lacks the memory; else the branch copies it may hold."""
    working = rank < working_ranks
    need = memory_needed(program, config, num_local, rank, working)
    if need > available:
        n = program.num_qubits
        outcomes = memory_needed(program, config, num_local, rank, False)
        if outcomes * 2 > need:  # the shots' outcomes, not the state, are what does not fit
            raise InsufficientMemoryError(
                f"{config.shots:,} shots need {mib(outcomes)} per rank for their outcomes"
                f"{' and memory strings' if config.memory else ''}; {mib(available)} are available on rank "
                f"{rank}: run fewer shots per job (split them over several runs and add the counts)"
                + (", or leave memory=False" if config.memory else "")
            )
        error = InsufficientMemoryError(
            f"{n} qubits need {mib(need)} per rank on {working_ranks} rank"
            f"{'s' if working_ranks > 1 else ''} ({config.precision} precision); "
            f"{mib(available)} are available on rank {rank}: use more ranks"
            + (", precision='single'" if config.precision == "double" else "")
            + " or fewer qubits"
        )
        error.state_does_not_fit = True  # the state, not the shots: a Clifford circuit can do without it
        raise error
    return branch_copies(program, config, num_local, rank, available) if working else 0
