"""The cache tier's chunk: from this core's caches, then fitted to the shard (engine/resources.py)."""

from __future__ import annotations

import dataclasses

import pytest

from aer_mpi.engine import resources
from aer_mpi.engine.config import RunConfig


@pytest.fixture
def caches(monkeypatch):
    """Pretend caches: ``set(l2_bytes, l3_share_bytes)``."""
    def set_sizes(l2: int, l3_share: int) -> None:
        monkeypatch.setattr(resources, "l2_cache_bytes", lambda: l2)
        monkeypatch.setattr(resources, "l3_share_bytes", lambda: l3_share)
    return set_sizes


def test_the_chunk_spills_to_l3_up_to_2_mib_where_the_core_has_room(caches):
    double, single = RunConfig(), dataclasses.replace(RunConfig(), precision="single")
    caches(512 << 10, 16 << 20)  # the AMD EPYC of docs/performance.md: half the L2 is 2**14 doubles
    assert resources.cache_qubits(double) == (14, 17)  # 2 MiB
    assert resources.cache_qubits(single) == (15, 18)
    caches(512 << 10, 1 << 20)  # many ranks share the L3: half of 1 MiB on top of the L2's half
    assert resources.cache_qubits(double) == (14, 15)
    caches(2 << 20, 0)  # no L3 known: half the L2
    assert resources.cache_qubits(double) == (16, 16)


def test_an_option_or_cache_blocking_off_decides_alone(caches):
    caches(512 << 10, 16 << 20)
    assert resources.cache_qubits(dataclasses.replace(RunConfig(), cache_qubits=9)) == (9, 9)
    assert resources.cache_qubits(dataclasses.replace(RunConfig(), cache_blocking=False)) is None


def test_a_shard_keeps_four_chunks_for_the_threads_and_never_less_than_the_l2s_chunk():
    chosen = (14, 17)
    assert [resources.stage_chunk_qubits(chosen, n) for n in (10, 14, 16, 17, 18, 19, 24, 30)] == \
        [14, 14, 14, 15, 16, 17, 17, 17]
    assert resources.stage_chunk_qubits((9, 9), 24) == 9
    assert resources.stage_chunk_qubits(None, 24) is None


def test_cpu_lists_are_counted():
    assert resources._count_cpus("0-3,8\n") == 5
    assert resources._count_cpus("0") == 1
    assert resources._count_cpus("0-1") == 2
