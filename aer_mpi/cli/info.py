"""``aer-mpi info``: versions, the MPI library, ranks, threads and memory per rank."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from aer_mpi._version import __version__
from aer_mpi.cli.errors import EXIT_OK, one_line
from aer_mpi.comm.watchdog import bounded


def _memory_per_rank(comm: Any) -> tuple[int, int]:
    """(bytes available to each rank, ranks on this node), as the engine counts them."""
    from aer_mpi.comm import ranks_on_this_node
    from aer_mpi.engine.config import RunConfig
    from aer_mpi.engine.resources import memory_available

    return memory_available(comm, RunConfig()), ranks_on_this_node(comm)


def gather_info(comm: Any) -> Optional[dict]:
    """What ``aer-mpi info`` reports (collective); the dict on rank 0, None elsewhere."""
    import platform
    import socket

    import mpi4py
    import numpy
    import qiskit
    from mpi4py import MPI

    from aer_mpi.engine.config import RunConfig
    from aer_mpi.engine.resources import largest_local_qubits, threads_per_rank

    available, local_ranks = _memory_per_rank(comm)
    mine = {
        "host": socket.gethostname(),
        "threads": threads_per_rank(RunConfig(), local_ranks),
        "memory": available,
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    with bounded(comm, "every rank's description"):
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
    for precision in ("double", "single"):
        # the shard plus the exchange buffer and scratch, as the engine counts them
        largest[precision] = largest_local_qubits(memory, RunConfig(precision=precision)) + (working.bit_length() - 1)
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
        "native_kernels": _native_kernels(),
    }


def _native_kernels() -> str:
    """Whether stages run in the native kernels, building them now if need be (``off: WHY`` if not)."""
    from aer_mpi import kernels

    return kernels.native_status()


def _mpi_library_summary(text: str) -> str:
    """The first line of MPI_Get_library_version, plus MPICH's device (the rest is in --json)."""
    lines = [one_line(line) for line in text.splitlines() if line.strip()]
    if not lines:
        return "unknown"
    summary = lines[0]
    device = next((line for line in lines if line.startswith("MPICH Device:")), None)
    return f"{summary}, {device}" if device else summary


def command_info(args: argparse.Namespace) -> int:
    from aer_mpi.errors import AerMPIError
    from aer_mpi.provider.backend import load_mpi

    try:
        MPI = load_mpi()
    except AerMPIError as exc:  # no MPI library: one line saying how to get one
        print(f"aer-mpi: error: {exc}", file=sys.stderr)
        return 1

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
        f"native kernels   {info['native_kernels']}",
    ]
    print("\n".join(lines))
    return EXIT_OK
