"""Bounded memory: the pre-check's count, and what a run allocates beyond its shard."""

import dataclasses
import os

import numpy as np
import pytest
from mpi4py import MPI

from aer_mpi import ir
from aer_mpi.engine import RunConfig, run_experiment
from aer_mpi.engine.resources import SCRATCH_BYTES, memory_needed
from aer_mpi.errors import InsufficientMemoryError
from aer_mpi.kernels import numpy_backend

H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
CX = np.eye(4)[[0, 3, 2, 1]]


def ghz(n: int) -> ir.Program:
    ops = [ir.Gate((0,), H, "h")] + [ir.Gate((q, q + 1), CX, "cx") for q in range(n - 1)]
    ops += [ir.Measure(q, q) for q in range(n)]
    return ir.Program(n, n, tuple(ops), "ghz")


def test_thirty_qubits_on_two_ranks_need_the_shard_and_little_else():
    config = RunConfig(shots=1000)
    need = memory_needed(ghz(30), config, num_local=29, rank=0, working=True)
    shard = 16 << 29  # 8 GiB of complex128
    assert shard < need <= shard + config.buffer_bytes + SCRATCH_BYTES + 200 * 1000
    single = memory_needed(ghz(30), RunConfig(shots=1000, precision="single"), 29, 0, True)
    assert single - (8 << 29) == need - shard


def test_registers_wider_than_int64_are_counted_per_shot():
    """Past 63 clbits each shot's register is a Python int (and its memory string as wide)."""
    narrow = ir.Program(4, 63, ghz(4).ops)
    wide = ir.Program(4, 200, ghz(4).ops)
    for memory in (False, True):
        config = RunConfig(shots=1000, memory=memory)
        assert memory_needed(wide, config, 4, 0, False) > memory_needed(narrow, config, 4, 0, False) + 1000 * 50


def test_precheck_refuses_before_allocating():
    config = RunConfig(shots=10, max_memory_bytes=100 << 20)
    program = ghz(24)
    # a T: not Clifford (a Clifford circuit whose state does not fit runs on a stabilizer tableau)
    program = dataclasses.replace(program, ops=(ir.Diagonal((0,), np.array([1, np.exp(0.25j * np.pi)])),) + program.ops)
    with pytest.raises(InsufficientMemoryError, match=r"24 qubits need 2\d\d MiB per rank on 1 rank.*use more ranks"):
        run_experiment(program, config, MPI.COMM_SELF)
    assert run_experiment(ghz(24), config, MPI.COMM_SELF).metadata["method"] == "stabilizer"


def test_too_many_shots_are_named_as_the_cause():
    config = RunConfig(shots=1 << 24, memory=True, max_memory_bytes=100 << 20)
    with pytest.raises(InsufficientMemoryError, match=r"16,777,216 shots need 3,360 MiB .*fewer shots"):
        run_experiment(ghz(2), config, MPI.COMM_SELF)


_MEASURE = """
import tracemalloc, sys
from mpi4py import MPI
sys.path.insert(0, {tests!r})
from test_memory import ghz
from aer_mpi.engine import RunConfig, run_experiment
config = RunConfig(shots=2000, seed=3, kernels={kernels!r})
# warm-up with the same circuit: imports, and numba compiling the kernels this run takes (its
# cache-blocked stages among them) outside the measurement, as on a fresh install
run_experiment(ghz({n}), config, MPI.COMM_SELF)
tracemalloc.start()
output = run_experiment(ghz({n}), config, MPI.COMM_SELF)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
assert set(output.counts) <= {{"0x0", hex((1 << {n}) - 1)}}, output.counts
print(output.metadata["kernels"], peak)
"""


def test_run_allocates_little_beyond_the_shard(kernels):  # the conftest fixture: numba and numpy
    # In a process of its own: tracemalloc counts every thread's allocations (and numba's
    # compiler's), and nothing of the session's other tests may count against this run.
    import os
    import subprocess
    import sys

    n = 20
    shard = 16 << n
    code = _MEASURE.format(tests=os.path.dirname(os.path.abspath(__file__)), kernels=kernels, n=n)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    used, peak = proc.stdout.split()
    assert used == kernels
    # numpy's allocations are traced (numba's are not, and are a few KiB per thread)
    assert int(peak) - shard <= 0.25 * shard, (int(peak) - shard) / shard
    assert numpy_backend.CHUNK_ELEMENTS * 16 * 4 <= 0.25 * shard


def test_the_memory_check_sees_ulimit_and_cgroup_limits(monkeypatch, tmp_path):
    """A rank under `ulimit -v` (or Slurm's --mem cgroup) got a bare MemoryError mid-run: the check used
    the node's free memory only."""
    import resource

    import psutil
    from mpi4py import MPI

    from aer_mpi.engine import RunConfig
    from aer_mpi.engine import resources

    mapped = psutil.Process().memory_info().vms
    monkeypatch.setattr(resource, "getrlimit", lambda which: (mapped + (300 << 20), resource.RLIM_INFINITY)
                        if which == resource.RLIMIT_AS else (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    own, _ = resources.limits_left()
    assert own is not None and abs(own - (300 << 20)) < (64 << 20)
    monkeypatch.setattr(resources, "_free_read", None)  # (read again now, not within FREE_MEMORY_READ_SECONDS)
    assert resources.memory_available(MPI.COMM_SELF, RunConfig(), node_ranks=1) <= own
    # a cgroup v2 limit, shared by the node's ranks
    (tmp_path / "memory.max").write_text(str(2 << 30))
    (tmp_path / "memory.current").write_text(str(1 << 30))
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/self/cgroup":
            return real_open(tmp_path / "cgroup", *args, **kwargs)
        if str(path).startswith("/sys/fs/cgroup/"):
            return real_open(tmp_path / os.path.basename(path), *args, **kwargs)
        return real_open(path, *args, **kwargs)

    (tmp_path / "cgroup").write_text("0::/job\n")
    monkeypatch.setattr("builtins.open", fake_open)
    assert resources.limits_left()[1] == 1 << 30
    monkeypatch.setattr(resources, "_free_read", None)
    assert resources.memory_available(MPI.COMM_SELF, RunConfig(), node_ranks=2) <= (1 << 30) // 2
