#!/usr/bin/env python
"""Benchmark aer_mpi against Qiskit Aer on the same circuits, in the same run.

Driver (no mpiexec): runs one ``mpiexec -n P`` job per rank count, merges
their JSON, prints the table and draws the plots::

    python scripts/benchmark.py --ranks 1 2 4 --qubits 20 22 24 --repeat 3 --out bench

Worker (what the driver starts, or by hand under mpiexec)::

    mpiexec -n 2 python scripts/benchmark.py --worker --qubits 24 --out bench

In each job every rank runs ``AerMPISimulator.run(...).result()`` (SPMD) and
rank 0 times it; Qiskit Aer (``AerSimulator(method="statevector",
max_parallel_threads=cores)``) runs on rank 0 alone while the other ranks
wait in a sleeping (not spinning) barrier, so it has every core. The two
alternate repeat by repeat, and the medians are reported.

Peak memory above the shard: a thread samples each rank's RSS (psutil) every
millisecond during ``run().result()``; the figure is the peak minus the RSS
just before the run (after ``malloc_trim``) minus the shard itself: what the
run held beyond its shard (exchange buffer, kernel scratch, sampling chunks,
MPI's own buffers). The driver runs the workers with a fixed glibc mmap
threshold so that a previous run's freed shard is not reused unseen.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

CIRCUITS = ("qft", "qv", "random", "ghz")


# -- circuits ----------------------------------------------------------------
def build_circuit(kind: str, n: int, seed: int = 7):
    import numpy as np
    from qiskit import QuantumCircuit

    if kind == "qft":
        from qiskit.synthesis import synth_qft_full

        qc = QuantumCircuit(n)
        qc.h(range(n))  # a non-trivial input state
        qc.compose(synth_qft_full(n), inplace=True)
    elif kind == "qv":
        from qiskit.circuit.library import quantum_volume

        qc = quantum_volume(n, 10, seed=seed)  # random SU(4) unitaries
    elif kind == "random":
        rng = np.random.default_rng(seed)
        qc = QuantumCircuit(n)
        for layer in range(10):
            for q in range(n):
                qc.u(*rng.uniform(0, 2 * np.pi, 3), q)
            order = rng.permutation(n)
            for a, b in zip(order[0::2], order[1::2]):
                if layer % 2:
                    qc.cz(int(a), int(b))
                else:
                    qc.cx(int(a), int(b))
    elif kind == "ghz":
        qc = QuantumCircuit(n)
        qc.h(0)
        for q in range(n - 1):
            qc.cx(q, q + 1)
    else:
        raise SystemExit(f"unknown circuit {kind!r}: expecting one of {', '.join(CIRCUITS)}")
    qc.measure_all()
    qc.name = f"{kind}{n}"
    return qc


# -- measurement helpers -------------------------------------------------------
def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class RssSampler:
    """Peak resident memory of this process while active (sampled every ``period`` s)."""

    def __init__(self, period: float = 0.001):
        import psutil

        self.process = psutil.Process()
        self.period = period
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        _trim()  # give freed memory back first, so the baseline is what is live
        self.before = self.process.memory_info().rss
        self.peak = self.before
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.period)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def sleeping_barrier(comm, period: float = 0.005):
    """A barrier that sleeps instead of spinning, so a waiting rank leaves its core free."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(period)


def worker(args) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    from aer_mpi import AerMPISimulator

    cores = args.cores or len(os.sched_getaffinity(0))
    backend = AerMPISimulator(comm=comm, precision=args.precision, buffer_mb=args.buffer_mb)
    aer = None
    if rank == 0 and not args.no_aer:
        from qiskit_aer import AerSimulator

        aer = AerSimulator(method="statevector", max_parallel_threads=cores,
                           precision=args.precision)
    # warm-up: imports, numba cache loading, communicators
    backend.run(build_circuit("ghz", 12), shots=10, seed_simulator=1).result()
    if aer is not None:
        aer.run(build_circuit("ghz", 12), shots=10, seed_simulator=1).result()

    itemsize = 16 if args.precision == "double" else 8
    records = []
    for n in args.qubits:
        for kind in args.circuits:
            circuit = build_circuit(kind, n, args.seed)
            options = dict(shots=args.shots, seed_simulator=args.seed)
            if args.fusion == "off":
                options["fusion_enable"] = False
            ours, theirs, extra = [], [], []
            meta = None
            for _ in range(args.repeat):
                comm.Barrier()
                with RssSampler() as rss:
                    start = time.perf_counter()
                    result = backend.run(circuit, **options).result()
                    wall = time.perf_counter() - start
                meta = result.results[0].metadata
                shard = itemsize << meta["qubits_per_shard"]
                extra.append(comm.allgather(rss.peak - rss.before - shard))
                ours.append(comm.bcast(wall, root=0))
                if not args.no_aer:
                    if rank == 0:
                        start = time.perf_counter()
                        aer.run(circuit, **options).result()
                        theirs.append(time.perf_counter() - start)
                    sleeping_barrier(comm)
            if rank == 0:
                plan = meta["plan"]
                working = meta["working_ranks"]
                shard = itemsize << meta["qubits_per_shard"]
                state = itemsize << n
                # naive: one single-pair exchange per gate on a global qubit, each moving half the state
                naive_bytes = meta["naive_exchanges"] * (state // 2) if working > 1 else 0
                peak_extra = max(max(e) for e in extra)
                record = {
                    "circuit": kind,
                    "qubits": n,
                    "ranks": size,
                    "working_ranks": working,
                    "threads_per_rank": meta.get("threads_per_rank"),
                    "kernels": meta.get("kernels"),
                    "precision": args.precision,
                    "fusion": meta.get("fusion"),
                    "aer_mpi_seconds": statistics.median(ours),
                    "aer_mpi_all": ours,
                    "aer_seconds": statistics.median(theirs) if theirs else None,
                    "aer_all": theirs,
                    "ratio": statistics.median(ours) / statistics.median(theirs) if theirs else None,
                    "shard_bytes": shard,
                    "peak_above_shard_bytes": int(peak_extra),
                    "peak_above_shard_fraction": peak_extra / shard,
                    # the plan's exchanges; the one before sampling is counted apart
                    "exchanges": plan["exchanges"],
                    "bytes_exchanged": meta["bytes_exchanged"] - meta.get("sampling_bytes_exchanged", 0),
                    "sampling_bytes_exchanged": meta.get("sampling_bytes_exchanged", 0),
                    "naive_exchanges": meta["naive_exchanges"],
                    "naive_bytes": naive_bytes,
                    "time_communication": meta["time_communication"],
                    "time_compute": meta["time_compute"],
                    "time_planning": meta.get("time_planning"),
                    "steps": plan["steps"],
                }
                records.append(record)
                print(format_row(record), flush=True)
    if rank == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"part-{size}ranks-{args.tag or 'run'}.json"
        path.write_text(json.dumps({"records": records, "cores": cores}, indent=1))
        print(f"wrote {path}", flush=True)


# -- reporting ------------------------------------------------------------------
HEADER = (
    f"{'circuit':8} {'n':>3} {'P':>2} {'thr':>3} {'aer_mpi s':>9} {'aer s':>7} {'ratio':>6} "
    f"{'mem/shard':>9} {'exch':>5} {'naive':>5} {'GiB moved':>9} {'naive GiB':>9} {'saved':>6} "
    f"{'comm s':>7} {'compute s':>9}"
)


def format_row(r: dict) -> str:
    gib = 1 << 30
    saved = (
        f"{100 * (1 - r['bytes_exchanged'] / r['naive_bytes']):5.0f}%" if r["naive_bytes"] else "    -"
    )
    aer = f"{r['aer_seconds']:7.2f}" if r["aer_seconds"] is not None else "      -"
    ratio = f"{r['ratio']:6.2f}" if r["ratio"] is not None else "     -"
    return (
        f"{r['circuit']:8} {r['qubits']:3d} {r['ranks']:2d} {r['threads_per_rank'] or 0:3d} "
        f"{r['aer_mpi_seconds']:9.2f} {aer} {ratio} {r['peak_above_shard_fraction']:9.3f} "
        f"{r['exchanges']:5d} {r['naive_exchanges']:5d} {r['bytes_exchanged'] / gib:9.2f} "
        f"{r['naive_bytes'] / gib:9.2f} {saved:>6} {r['time_communication']:7.2f} {r['time_compute']:9.2f}"
    )


def print_table(records) -> str:
    lines = [HEADER] + [format_row(r) for r in sorted(records, key=lambda r: (r["circuit"], r["qubits"], r["ranks"]))]
    text = "\n".join(lines)
    print(text)
    return text


def plot(records, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    kinds = sorted({r["circuit"] for r in records})
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        rows = [r for r in records if r["circuit"] == kind]
        for ranks in sorted({r["ranks"] for r in rows}):
            pts = sorted((r["qubits"], r["aer_mpi_seconds"]) for r in rows if r["ranks"] == ranks)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"aer_mpi {ranks} rank{'s' if ranks > 1 else ''}")
        aer = {}
        for r in rows:
            if r["aer_seconds"] is not None:
                aer.setdefault(r["qubits"], []).append(r["aer_seconds"])
        if aer:
            qs = sorted(aer)
            ax.plot(qs, [statistics.median(aer[q]) for q in qs], "k--", label="Qiskit Aer (all cores)")
        ax.set_yscale("log")
        ax.set_title(kind)
        ax.set_xlabel("qubits")
        ax.set_ylabel("wall time of run().result() [s]")
        ax.legend(fontsize=7)
    files.append(_save_figure(plt, fig, out / "time.png"))

    multi = [r for r in records if r["naive_bytes"]]
    if multi:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        labels = [f"{r['circuit']}{r['qubits']}/{r['ranks']}" for r in multi]
        x = range(len(multi))
        ax.bar([i - 0.2 for i in x], [r["naive_bytes"] / (1 << 30) for r in multi], 0.4, label="naive: one exchange per gate")
        ax.bar([i + 0.2 for i in x], [r["bytes_exchanged"] / (1 << 30) for r in multi], 0.4, label="planner")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=60, fontsize=7)
        ax.set_ylabel("GiB exchanged (all ranks)")
        ax.legend(fontsize=8)
        files.append(_save_figure(plt, fig, out / "bytes.png"))
    return files


def _save_figure(plt, fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)


def driver(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mpiexec = args.mpiexec or str(Path(sys.executable).with_name("mpiexec"))
    if not Path(mpiexec).exists():
        mpiexec = "mpiexec"
    records = []
    for ranks in args.ranks:
        cmd = [mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker", "--tag", args.tag or "run"]
        for key in ("qubits", "circuits"):
            cmd += [f"--{key}"] + [str(v) for v in getattr(args, key)]
        cmd += ["--repeat", str(args.repeat), "--shots", str(args.shots), "--seed", str(args.seed),
                "--precision", args.precision, "--buffer-mb", str(args.buffer_mb), "--out", str(out),
                "--fusion", args.fusion]
        if args.no_aer:
            cmd.append("--no-aer")
        if args.cores:
            cmd += ["--cores", str(args.cores)]
        print("$", " ".join(cmd), flush=True)
        # a fixed mmap threshold: large arrays are mapped and unmapped, never
        # kept in the heap by a previous run, so RSS shows what a run holds
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 20))
        subprocess.run(cmd, check=True, env=env)
        part = json.loads((out / f"part-{ranks}ranks-{args.tag or 'run'}.json").read_text())
        records.extend(part["records"])
    print()
    table = print_table(records)
    (out / "results.json").write_text(json.dumps({"records": records, "command": sys.argv}, indent=1))
    (out / "table.txt").write_text(table + "\n")
    if not args.no_plot:
        print("plots:", ", ".join(plot(records, out)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4], help="rank counts (driver)")
    parser.add_argument("--qubits", type=int, nargs="+", default=None, help="default 20 22 24 (26 with --large)")
    parser.add_argument("--large", action="store_true", help="add 26 qubits to the default sizes")
    parser.add_argument("--circuits", nargs="+", default=list(CIRCUITS), choices=CIRCUITS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--precision", choices=("double", "single"), default="double")
    parser.add_argument("--buffer-mb", type=float, default=16)
    parser.add_argument("--fusion", choices=("on", "off"), default="on")
    parser.add_argument("--cores", type=int, default=None, help="Aer threads (default: this process's cores)")
    parser.add_argument("--no-aer", action="store_true", help="aer_mpi only (e.g. beyond Aer's memory)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--tag", default=None, help="name of this run's part files")
    parser.add_argument("--mpiexec", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true", help="re-print table and plots from OUT/results.json")
    args = parser.parse_args()
    if args.qubits is None:
        args.qubits = [20, 22, 24] + ([26] if args.large else [])
    if args.report:
        records = json.loads((Path(args.out) / "results.json").read_text())["records"]
        print_table(records)
        print("plots:", ", ".join(plot(records, Path(args.out))))
    elif args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
