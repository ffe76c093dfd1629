#!/usr/bin/env python
"""Benchmark aer_mpi against Qiskit Aer on the same circuits, in the same run.

Driver (no mpiexec): runs one ``mpiexec -n P`` job per rank count, merges
their JSON, prints the table and draws the plots::

    python scripts/benchmark.py --ranks 1 2 4 --qubits 20 22 24 --repeat 3 --out bench

Worker (what the driver starts, or by hand under mpiexec)::

    mpiexec -n 2 python scripts/benchmark.py --worker --qubits 24 --out bench

In each job every rank runs ``AerMPISimulator.run(...).result()`` (SPMD) and
rank 0 times it; then Qiskit Aer (``AerSimulator(method="statevector",
max_parallel_threads=cores)``) runs on rank 0 alone while the other ranks
wait in a sleeping (not spinning) barrier, so it has every core. Each runs
a circuit once untimed, then its repeats (as the other simulators do), and
the medians are reported.

Other simulators (``--peers qsim qulacs lightning``, the default; each where
it imports, ``--peers-path DIR`` puts DIR first on their PYTHONPATH): after
the aer_mpi jobs, each runs in a process of its own on the same circuits
(as gate lists of 1- and 2-qubit matrices), first checked against Qiskit's
Statevector on an 8-qubit QV circuit; its time is the median of the final
state's computation in that process (no job, no sampling), with the
process's cores (qsim in single precision, the others double). The
comparison table adds aer_mpi's passes over the state, the numpy floor (one
read + write pass over the shard, best of 5) and ``x model`` = compute time
/ (passes x floor).

Parameter sweep (``--sweep``): EfficientSU2 on 16 qubits with 100 bindings,
aer_mpi and Aer as 100 ``run()`` calls and as one ``parameter_binds`` run
(one process, ``COMM_SELF``), each peer through its own parameter API::

    python scripts/benchmark.py --sweep --repeat 3 --out sweep

Peak memory above the shard: a thread samples each rank's RSS (psutil) every
millisecond during one untimed ``run().result()`` after the warm-up; the
figure is the peak minus the RSS just before the run (after ``malloc_trim``)
minus the shard itself: what the run held beyond its shard (exchange buffer,
kernel scratch, sampling chunks, MPI's own buffers). That run has a fixed glibc mmap threshold (1 MiB), so
that a previous run's freed arrays are not reused unseen.
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

CIRCUITS = ("qft", "qv", "random", "brickwork", "ghz")
#: Other simulators compared in the same run, where they import (the ``bench`` extra).
PEERS = ("qsim", "qulacs", "lightning")


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
    elif kind == "brickwork":
        from qiskit.quantum_info import random_unitary

        rng = np.random.default_rng(seed)
        qc = QuantumCircuit(n)
        for layer in range(10):  # random SU(4) on neighbours, offset by one every other layer
            for a in range(layer % 2, n - 1, 2):
                qc.unitary(random_unitary(4, seed=int(rng.integers(1 << 30))), [a, a + 1])
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


def gate_list(circuit) -> list:
    """The circuit without its measurements as ``(qubits, matrix)`` of 1- and 2-qubit gates, Qiskit's
    order (``qubits[0]`` is the matrix's low bit): what the other simulators are given."""
    from qiskit.quantum_info import Operator

    bare = circuit.remove_final_measurements(inplace=False)
    gates = []

    def walk(inst_list, qubit_map):
        for inst in inst_list:
            qubits = tuple(qubit_map[q] for q in inst.qubits)
            op = inst.operation
            if op.name == "barrier":
                continue
            if len(qubits) <= 2:
                gates.append((qubits, Operator(op).data))
            else:  # wider: its definition
                inner = op.definition
                walk(inner.data, {iq: qubits[k] for k, iq in enumerate(inner.qubits)})

    walk(bare.data, {q: bare.find_bit(q).index for q in bare.qubits})
    return gates


# -- other simulators (each in a process of its own, --peer) --------------------------
def peer_simulator(name: str, n: int, gates: list, threads: int):
    """A function that computes the final state of ``gates`` with simulator ``name``, in Qiskit's
    order of basis states; ImportError when it is not installed."""
    import numpy as np

    if name == "qsim":
        import cirq
        import qsimcirq

        line = cirq.LineQubit.range(n)
        wire = lambda q: line[n - 1 - q]  # noqa: E731  (cirq: the first qubit is the high bit)
        ops = [cirq.MatrixGate(m).on(*[wire(q) for q in reversed(qs)]) for qs, m in gates]
        circuit = cirq.Circuit(ops)
        sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=threads))
        return lambda: np.asarray(sim.simulate(circuit, qubit_order=line).final_state_vector)
    if name == "qulacs":
        import qulacs

        circuit = qulacs.QuantumCircuit(n)
        for qs, m in gates:
            circuit.add_dense_matrix_gate(list(qs), np.ascontiguousarray(m))

        def run():
            state = qulacs.QuantumState(n)
            circuit.update_quantum_state(state)
            return state.get_vector()

        return run
    if name == "lightning":
        import pennylane as qml

        dev = qml.device("lightning.qubit", wires=n)

        @qml.qnode(dev)
        def run():
            for qs, m in gates:
                qml.QubitUnitary(m, wires=[n - 1 - q for q in reversed(qs)])  # wire 0 is the high bit
            return qml.state()

        return lambda: np.asarray(run())
    raise SystemExit(f"unknown simulator {name!r}: expecting one of {', '.join(PEERS)}")


def peer_worker(args) -> None:
    """Time simulator ``args.peer`` on the gate lists the driver wrote; its part file says if it is missing."""
    import pickle

    import numpy as np

    out = Path(args.out)
    threads = args.cores or len(os.sched_getaffinity(0))
    records = []
    note = None
    try:
        # correctness first, on a small case: the same state as Qiskit's
        with open(out / "gates-check.pkl", "rb") as f:
            n, gates, expected = pickle.load(f)
        got = peer_simulator(args.peer, n, gates, threads)()
        fid = abs(np.vdot(expected, got)) ** 2
        if fid < 1 - 1e-5:
            raise SystemExit(f"{args.peer}: wrong state on the check circuit (fidelity {fid})")
        for n in args.qubits:
            for kind in args.circuits:
                with open(out / f"gates-{kind}{n}.pkl", "rb") as f:
                    gates = pickle.load(f)
                simulate = peer_simulator(args.peer, n, gates, threads)
                simulate()  # warm-up (JIT, plans, allocation)
                times, extra = [], []
                for _ in range(args.repeat):
                    with RssSampler() as rss:
                        start = time.perf_counter()
                        simulate()
                        times.append(time.perf_counter() - start)
                    extra.append(rss.peak - rss.before)
                records.append({"simulator": args.peer, "circuit": kind, "qubits": n, "threads": threads,
                                "seconds": statistics.median(times), "all": times, "peak_extra_bytes": max(extra)})
                print(f"{args.peer:10} {kind:9} {n:3d} {statistics.median(times):8.2f} s", flush=True)
    except ImportError as exc:
        note = f"not installed ({exc})"
        print(f"{args.peer}: {note}", flush=True)
    (out / f"part-peer-{args.peer}-{args.tag or 'run'}.json").write_text(
        json.dumps({"records": records, "note": note}, indent=1))


# -- a parameter sweep: one 16-qubit circuit, many bindings (what VQE users feel) -------------
def sweep_ops(n: int, reps: int = 2) -> tuple[list, int]:
    """Qiskit's EfficientSU2 (linear entanglement) as ``(name, qubits, parameter index)``."""
    ops, k = [], 0
    for rep in range(reps + 1):
        for name in ("ry", "rz"):
            for q in range(n):
                ops.append((name, (q,), k))
                k += 1
        if rep < reps:
            ops.extend(("cx", (q, q + 1), None) for q in range(n - 1))
    return ops, k


#: Bindings of the sweep.
SWEEP_POINTS = 100


def peer_sweep(name: str, n: int, threads: int):
    """A function of one binding's values that computes the final state (or probabilities)."""
    ops, _ = sweep_ops(n)
    if name == "qsim":
        import cirq
        import qsimcirq
        import sympy

        line = cirq.LineQubit.range(n)
        wire = lambda q: line[n - 1 - q]  # noqa: E731
        symbols = {}
        gates = []
        for op, qs, k in ops:
            if op == "cx":
                gates.append(cirq.CNOT(wire(qs[0]), wire(qs[1])))
            else:
                symbols[k] = sympy.Symbol(f"t{k}")
                gates.append((cirq.ry if op == "ry" else cirq.rz)(symbols[k]).on(wire(qs[0])))
        circuit = cirq.Circuit(gates)
        sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=threads))
        return lambda v: sim.simulate(circuit, param_resolver={f"t{k}": float(v[k]) for k in symbols},
                                      qubit_order=line).final_state_vector
    if name == "qulacs":
        import qulacs

        circuit = qulacs.ParametricQuantumCircuit(n)
        order = []
        for op, qs, k in ops:
            if op == "cx":
                circuit.add_CNOT_gate(qs[0], qs[1])
            else:  # qulacs rotates by exp(+i t P / 2): the angle negated
                (circuit.add_parametric_RY_gate if op == "ry" else circuit.add_parametric_RZ_gate)(qs[0], 0.0)
                order.append(k)

        def run(v):
            for i, k in enumerate(order):
                circuit.set_parameter(i, -float(v[k]))
            state = qulacs.QuantumState(n)
            circuit.update_quantum_state(state)
            return state.get_vector()

        return run
    if name == "lightning":
        import pennylane as qml

        dev = qml.device("lightning.qubit", wires=n)

        @qml.qnode(dev)
        def run(v):
            for op, qs, k in ops:
                if op == "cx":
                    qml.CNOT(wires=[n - 1 - qs[0], n - 1 - qs[1]])
                else:
                    (qml.RY if op == "ry" else qml.RZ)(v[k], wires=n - 1 - qs[0])
            return qml.state()

        return run
    raise SystemExit(f"unknown simulator {name!r}")


def sweep_worker(args) -> None:
    """aer_mpi (1 rank, in this process) and Aer: the sweep as 100 run() calls and as one run with
    parameter_binds; the peers with their own parameter APIs (``--peer NAME --sweep``)."""
    import numpy as np
    from mpi4py import MPI
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    from aer_mpi import AerMPISimulator

    n = args.qubits[0]
    ops, count = sweep_ops(n)
    theta = ParameterVector("t", count)
    qc = QuantumCircuit(n)
    for op, qs, k in ops:
        getattr(qc, op)(*(([theta[k]] if k is not None else []) + list(qs)))
    qc.measure_all()
    values = np.random.default_rng(args.seed).uniform(0, 2 * np.pi, (SWEEP_POINTS, count))
    sims = {"aer_mpi": AerMPISimulator(comm=MPI.COMM_SELF)}
    try:
        from qiskit_aer import AerSimulator

        sims["aer"] = AerSimulator(method="statevector", max_parallel_threads=args.cores or 0)
    except ImportError:
        pass

    def loop(sim):
        for v in values:
            sim.run(qc.assign_parameters(v), shots=args.shots, seed_simulator=args.seed).result()

    def binds(sim):
        sim.run(qc, parameter_binds=[{theta[k]: values[:, k].tolist() for k in range(count)}], shots=args.shots,
                seed_simulator=args.seed).result()

    best = {}
    for name, sim in sims.items():
        sim.run(qc.assign_parameters(values[0]), shots=10).result()  # warm-up
    for _ in range(args.repeat):  # alternating, best of the repeats
        for name, sim in sims.items():
            for how, fn in (("loop", loop), ("binds", binds)):
                start = time.perf_counter()
                fn(sim)
                key = f"{name} {how}"
                best[key] = min(best.get(key, float("inf")), time.perf_counter() - start)
    Path(args.out, f"part-sweep-{args.tag or 'run'}.json").write_text(json.dumps(best, indent=1))


def peer_sweep_worker(args) -> None:
    import numpy as np

    n = args.qubits[0]
    _, count = sweep_ops(n)
    values = np.random.default_rng(args.seed).uniform(0, 2 * np.pi, (SWEEP_POINTS, count))
    threads = args.cores or len(os.sched_getaffinity(0))
    result = {}
    try:
        run = peer_sweep(args.peer, n, threads)
        run(values[0])
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for v in values:
                run(v)
            best = min(best, time.perf_counter() - start)
        result[f"{args.peer} loop"] = best
    except ImportError as exc:
        result[f"{args.peer} note"] = f"not installed ({exc})"
    Path(args.out, f"part-sweep-{args.peer}-{args.tag or 'run'}.json").write_text(json.dumps(result, indent=1))


def sweep_driver(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["--tag", args.tag or "run", "--repeat", str(args.repeat), "--out", str(out), "--seed",
              str(args.seed), "--shots", str(args.shots), "--qubits", str(args.qubits[0])]
    if args.cores:
        common += ["--cores", str(args.cores)]
    results = {}
    subprocess.run([sys.executable, __file__, "--sweep", "--worker", *common], check=True)
    results.update(json.loads((out / f"part-sweep-{args.tag or 'run'}.json").read_text()))
    env = dict(os.environ)
    if args.peers_path:
        env["PYTHONPATH"] = os.pathsep.join([args.peers_path] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("OMP_NUM_THREADS", str(args.cores or len(os.sched_getaffinity(0))))
    for name in args.peers:
        subprocess.run([sys.executable, __file__, "--sweep", "--peer", name, *common], check=True, env=env)
        results.update(json.loads((out / f"part-sweep-{name}-{args.tag or 'run'}.json").read_text()))
    times = {k: v for k, v in results.items() if not k.endswith("note")}
    fastest_peer = min((v for k, v in times.items() if not k.startswith("aer_mpi")), default=None)
    lines = [f"{args.qubits[0]}-qubit EfficientSU2 (reps 2), {SWEEP_POINTS} bindings, {args.shots} shots where sampled"]
    for key, value in sorted(times.items(), key=lambda kv: kv[1]):
        ratio = f"  {value / fastest_peer:5.2f}x the fastest peer" if fastest_peer else ""
        lines.append(f"  {key:18} {value:8.3f} s{ratio}")
    lines += [f"  {k}: {v}" for k, v in results.items() if k.endswith("note")]
    text = "\n".join(lines)
    print(text)
    (out / "sweep.txt").write_text(text + "\n")
    (out / "sweep.json").write_text(json.dumps({"results": results, "command": sys.argv}, indent=1))


def measure_floor(num_qubits: int, itemsize: int, repeat: int = 5) -> float:
    """Seconds of one read + write pass over ``2**num_qubits`` amplitudes with numpy (best of ``repeat``)."""
    import numpy as np

    array = np.ones(1 << num_qubits, dtype=np.complex128 if itemsize == 16 else np.complex64)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        np.multiply(array, 1.0, out=array)
        best = min(best, time.perf_counter() - start)
    del array
    return best


def measure_arithmetic_rate(dtype, chunk_qubits: int, repeat: int = 5) -> float:
    """Complex products per second of aer_mpi's fastest kernel case, with the kernel threads of the
    last run: 16 copies of a random 2-qubit gate as one stage, in cache (on the two positions just
    below the chunk), over 2**20 amplitudes (best of ``repeat``). A k-qubit gate takes 2**k
    products per amplitude, so plan metadata's ``complex_products_per_amplitude`` x amplitudes /
    this rate is the time the arithmetic alone needs: the floor no memory layout can lower."""
    import numpy as np

    from aer_mpi import kernels

    rng = np.random.default_rng(1)
    matrix = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))[0]
    state = np.zeros(1 << 20, dtype=dtype)
    state[0] = 1
    gates = [((chunk_qubits - 2, chunk_qubits - 1), matrix, None)] * 16
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        kernels.apply_stage(state, gates, chunk_qubits)
        best = min(best, time.perf_counter() - start)
    return 16 * 4 * state.shape[0] / best


# -- measurement helpers -------------------------------------------------------
def _mmap_threshold(size: int) -> None:
    """glibc's malloc maps blocks of ``size`` bytes or more with mmap (``M_MMAP_THRESHOLD``)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, int(size))
    except (OSError, AttributeError):  # not glibc
        pass


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
    rate = None  # complex products per second, measured once the first run has set the kernel threads
    for n in args.qubits:
        # the memory-bandwidth floor: one numpy read + write pass over a shard of this size
        floor = measure_floor(n - (size.bit_length() - 1), itemsize) if rank == 0 else None
        for kind in args.circuits:
            circuit = build_circuit(kind, n, args.seed)
            options = dict(shots=args.shots, seed_simulator=args.seed)
            if args.fusion == "off":
                options["fusion_enable"] = False
            ours, theirs, extra = [], [], []
            meta = None
            # Each simulator runs the circuit once untimed, then its timed repeats, one simulator after
            # the other (as the peers get): plans and caches are warm, and neither pays for memory the
            # other left behind. Alternating them had every aer_mpi run follow an Aer run: Aer's
            # 4 KiB pages leave memory fragmented, and the next 256 MiB state in huge pages then took
            # 0.4-0.6 s of kernel time to fault in (0.03 s after its own run), on a VM here.
            comm.Barrier()
            backend.run(circuit, **options).result()
            # peak memory in a run of its own: the sampler's thread polls every millisecond, which
            # cost the timed runs 5-10% when it ran beside them
            # (with a fixed 1 MiB mmap threshold: large arrays are mapped and unmapped, never kept in
            # the heap by a previous run, so RSS shows what this run holds; the timed runs then get
            # 32 MiB, where glibc's own threshold settles after large frees, as in a long session:
            # with 1 MiB every temporary array was fresh pages, 15% of QFT-24's time)
            comm.Barrier()
            _mmap_threshold(1 << 20)
            with RssSampler() as rss:
                result = backend.run(circuit, **options).result()
            _mmap_threshold(32 << 20)
            shard = itemsize << result.results[0].metadata["qubits_per_shard"]
            extra.append(comm.allgather(rss.peak - rss.before - shard))
            for _ in range(args.repeat):
                comm.Barrier()
                start = time.perf_counter()
                result = backend.run(circuit, **options).result()
                ours.append(comm.bcast(time.perf_counter() - start, root=0))
                meta = result.results[0].metadata
            if aer is not None:
                aer.run(circuit, **options).result()
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    aer.run(circuit, **options).result()
                    theirs.append(time.perf_counter() - start)
            sleeping_barrier(comm)
            if rank == 0:
                plan = meta["plan"]
                if rate is None and meta.get("cache_qubits"):
                    rate = measure_arithmetic_rate("complex128" if itemsize == 16 else "complex64",
                                                   meta["cache_qubits"])
                products = plan.get("complex_products_per_amplitude")
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
                    "native_kernels": meta.get("native_kernels"),
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
                    "stages": plan.get("stages"),
                    "cache_swaps": plan.get("cache_swaps"),
                    "cache_qubits": meta.get("cache_qubits"),
                    "state_passes": meta.get("state_passes"),
                    "bytes_moved": meta.get("bytes_moved"),
                    "achieved_gbps": meta.get("achieved_gbps"),
                    "floor_seconds": floor,
                    "floor_gbps": 2 * shard / floor / 1e9,
                    "complex_products_per_amplitude": products,
                    "products_per_second": rate,
                    "arithmetic_seconds": products * (shard // itemsize) / rate if products and rate else None,
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


def run_peers(args, out: Path) -> tuple[list, dict]:
    """Write the gate lists, then time each other simulator in a process of its own."""
    import pickle

    import numpy as np
    from qiskit.quantum_info import Statevector

    check = build_circuit("qv", 8, args.seed)
    expected = Statevector(check.remove_final_measurements(inplace=False)).data
    with open(out / "gates-check.pkl", "wb") as f:
        pickle.dump((8, gate_list(check), np.asarray(expected)), f)
    for n in args.qubits:
        for kind in args.circuits:
            with open(out / f"gates-{kind}{n}.pkl", "wb") as f:
                pickle.dump(gate_list(build_circuit(kind, n, args.seed)), f)
    env = dict(os.environ)
    if args.peers_path:
        env["PYTHONPATH"] = os.pathsep.join([args.peers_path] + [p for p in [env.get("PYTHONPATH")] if p])
    cores = args.cores or len(os.sched_getaffinity(0))
    env.setdefault("OMP_NUM_THREADS", str(cores))
    peers, notes = [], {}
    for name in args.peers:
        cmd = [sys.executable, __file__, "--peer", name, "--tag", args.tag or "run", "--repeat", str(args.repeat),
               "--out", str(out), "--qubits", *map(str, args.qubits), "--circuits", *args.circuits]
        if args.cores:
            cmd += ["--cores", str(args.cores)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=env)
        part = json.loads((out / f"part-peer-{name}-{args.tag or 'run'}.json").read_text())
        peers.extend(part["records"])
        if part["note"]:
            notes[name] = part["note"]
    return peers, notes


def print_comparison(records, peers, notes) -> str:
    """Per circuit and size: every simulator's median time, aer_mpi's passes against the floor."""
    names = ["aer"] + [p for p in PEERS if any(r["simulator"] == p for r in peers)]
    head = (f"{'circuit':9} {'n':>3} {'1 rank':>7} {'2 ranks':>7} " + " ".join(f"{k:>9}" for k in names)
            + f" {'fastest':>9} {'x fastest':>9} {'passes':>6} {'floor s':>7} {'x model':>7} {'GB/s':>6}"
            + f" {'floor GB/s':>10} {'mem/shard':>9} {'arith s':>7} {'x roof':>6}")
    lines = [head]
    keys = sorted({(r["circuit"], r["qubits"]) for r in records})
    for kind, n in keys:
        mine = {r["ranks"]: r for r in records if (r["circuit"], r["qubits"]) == (kind, n)}
        one = mine.get(1)
        times = {"aer": (one or {}).get("aer_seconds")}
        for r in peers:
            if (r["circuit"], r["qubits"]) == (kind, n):
                times[r["simulator"]] = r["seconds"]
        known = {k: v for k, v in times.items() if v}
        fastest = min(known, key=known.get) if known else None
        cell = lambda v: f"{v:9.2f}" if v else "        -"  # noqa: E731
        ours = one["aer_mpi_seconds"] if one else None
        two = mine.get(2, {}).get("aer_mpi_seconds")
        line = f"{kind:9} {n:3d} {ours or 0:7.2f} {two or 0:7.2f} " + " ".join(cell(times.get(k)) for k in names)
        line += f" {fastest or '-':>9} " + (f"{ours / known[fastest]:9.2f}" if fastest and ours else "        -")
        if one and one.get("state_passes") is not None:
            model = one["state_passes"] * one["floor_seconds"]
            line += (f" {one['state_passes']:6d} {one['floor_seconds']:7.3f} {one['time_compute'] / model:7.2f}"
                     f" {one['achieved_gbps'] or 0:6.1f} {one['floor_gbps']:10.1f} {one['peak_above_shard_fraction']:9.3f}")
            arithmetic = one.get("arithmetic_seconds")
            if arithmetic:  # the roofline: memory passes or arithmetic, whichever takes longer
                line += f" {arithmetic:7.3f} {one['time_compute'] / max(model, arithmetic):6.2f}"
        lines.append(line)
    for name, note in notes.items():
        lines.append(f"{name}: {note}")
    text = "\n".join(lines)
    print(text)
    return text


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
        subprocess.run(cmd, check=True)
        part = json.loads((out / f"part-{ranks}ranks-{args.tag or 'run'}.json").read_text())
        records.extend(part["records"])
    peers, notes = run_peers(args, out) if args.peers else ([], {})
    print()
    table = print_table(records)
    comparison = print_comparison(records, peers, notes)
    (out / "results.json").write_text(json.dumps({"records": records, "peers": peers, "peer_notes": notes,
                                                  "command": sys.argv}, indent=1))
    (out / "table.txt").write_text(table + "\n\n" + comparison + "\n")
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
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS,
                        help="other simulators timed on the same circuits (where installed); none: --peers")
    parser.add_argument("--peers-path", default=None,
                        help="a directory put first on the peers' PYTHONPATH (e.g. pip install --target DIR)")
    parser.add_argument("--peer", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sweep", action="store_true",
                        help=f"a parameter sweep instead: EfficientSU2 on --qubits (first size) with {SWEEP_POINTS} "
                             "bindings, aer_mpi and Aer (1 process) and the peers")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--tag", default=None, help="name of this run's part files")
    parser.add_argument("--mpiexec", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true", help="re-print table and plots from OUT/results.json")
    args = parser.parse_args()
    if args.qubits is None:
        args.qubits = [16] if args.sweep else [20, 22, 24] + ([26] if args.large else [])
    if args.report:
        records = json.loads((Path(args.out) / "results.json").read_text())["records"]
        data = json.loads((Path(args.out) / "results.json").read_text())
        print_table(records)
        print_comparison(records, data.get("peers", []), data.get("peer_notes", {}))
        if not args.no_plot:
            print("plots:", ", ".join(plot(records, Path(args.out))))
    elif args.sweep and args.peer:
        peer_sweep_worker(args)
    elif args.sweep and args.worker:
        sweep_worker(args)
    elif args.sweep:
        sweep_driver(args)
    elif args.peer:
        peer_worker(args)
    elif args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
