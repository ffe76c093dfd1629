"""Dynamic circuits (mid-circuit measurements, feed-forward): aer_mpi's shot branching vs Qiskit Aer.

    python scripts/bench_dynamic.py [--qubits 20] [--shots 1000] [--circuits qft,ghz] [--ranks 1,2]
                                    [--repeat 3] [--seed 7] [--threads T] [--aer-threads T] [--mqt-path DIR]
                                    [--skip-aer] [--out FILE]

Two circuits of MQT Bench (``mqt.bench.benchmarks``): ``dynamic_qft``, the semiclassical QFT (per
qubit: phase rotations conditioned on the bits measured before, h, measure), and ``ghz_dynamic``, a
constant-depth GHZ state (Bell pairs, parity measurements, X corrections conditioned on the XOR of
the bits measured before, then every qubit measured). MQT Bench is used when it imports (``pip
install --target DIR mqt-bench`` and ``--mqt-path DIR``, kept out of the project's environment);
otherwise the same constructions below, copied from MQT Bench 2.3.0, build the same circuits.

Each repeat runs, alternating, aer_mpi at each rank count of ``--ranks`` (1: in this process;
P > 1: P worker processes, ``processes=P``) and Qiskit Aer (``AerSimulator(method="statevector")``,
its defaults: one run of the circuit per shot, shots in parallel), each after a warm-up, with the same
seed. Prints, as JSON: the machine (cores, load average before and after), each run's seconds and
the medians, the ratio to Aer, aer_mpi's branching metadata (groups run, splits, shard copies, shots
replayed, fused ops), and, to guard correctness, the largest distance (TVD) between aer_mpi's and
Aer's samples on the marginals of each classical register's low 4 bits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_noise import tvd  # noqa: E402  (one definition of the distance)


def dynamic_qft(num_qubits: int):
    """MQT Bench's ``dynamic_qft`` (the semiclassical QFT of Griffiths and Niu)."""
    import numpy as np
    from qiskit.circuit import ClassicalRegister, QuantumCircuit, QuantumRegister

    q = QuantumRegister(num_qubits, "q")
    meas = ClassicalRegister(num_qubits, "meas")
    qc = QuantumCircuit(q, meas, name="dynamic_qft")
    for qubit in reversed(range(num_qubits)):
        for source in reversed(range(qubit + 1, num_qubits)):
            with qc.if_test((meas[num_qubits - source - 1], 1)):
                qc.p(np.pi * (2.0 ** (qubit - source)), q[qubit])
        qc.h(q[qubit])
        qc.measure(q[qubit], meas[num_qubits - qubit - 1])
    return qc


def ghz_dynamic(num_qubits: int):
    """MQT Bench's ``ghz_dynamic`` (constant depth: parity measurements and XOR-conditioned X corrections)."""
    from qiskit.circuit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit.classical import expr

    q = QuantumRegister(num_qubits, "q")
    final = ClassicalRegister(num_qubits, "final_measurement")
    qc = QuantumCircuit(q, final, name="ghz_dynamic")
    mid = ClassicalRegister(num_qubits // 2, "mid_measurement")
    qc.add_register(mid)
    qc.h(range(0, num_qubits, 2))
    for i in range(0, num_qubits, 2):
        if i - 1 >= 0:
            qc.cx(i, i - 1)
        if i + 1 < num_qubits - 1:
            qc.cx(i, i + 1)
    for clbit, qubit in zip(mid, range(1, num_qubits, 2)):
        qc.measure(qubit, clbit)
        with qc.if_test((clbit, 1)):
            qc.x(qubit)
    condition = mid[0]
    for i in range(2, num_qubits, 2):
        with qc.if_test(expr.equal(condition, True)):
            qc.x(i)
        if i // 2 < len(mid):
            condition = expr.bit_xor(condition, mid[i // 2])
    for i in range(0, num_qubits - 1, 2):
        qc.cx(i, i + 1)
    qc.measure(q, final)
    return qc


BUILDERS = {"qft": ("dynamic_qft", dynamic_qft), "ghz": ("ghz_dynamic", ghz_dynamic)}


def build(name: str, num_qubits: int, mqt_path: str | None):
    """The circuit, from MQT Bench when ``mqt_path`` is given (and it imports), else from the copy above."""
    module, local = BUILDERS[name]
    if mqt_path:
        if mqt_path not in sys.path:
            sys.path.append(mqt_path)
        import importlib

        return importlib.import_module(f"mqt.bench.benchmarks.{module}").create_circuit(num_qubits), "mqt.bench"
    return local(num_qubits), "scripts/bench_dynamic.py (MQT Bench 2.3.0's construction)"


def register_marginals(counts: dict, bits: int = 4) -> list[dict]:
    """For each classical register (space-separated in the keys), the counts of its low ``bits`` bits."""
    out: list[dict] = []
    for key, value in counts.items():
        parts = key.split(" ")
        while len(out) < len(parts):
            out.append({})
        for r, part in enumerate(parts):
            low = part[-bits:]
            out[r][low] = out[r].get(low, 0) + value
    return out


def distance(ours: dict, theirs: dict, shots: int) -> float:
    """Largest TVD between the two samples over the registers' low-bit marginals."""
    return max(tvd(a, b, shots) for a, b in zip(register_marginals(ours), register_marginals(theirs)))


def branching_summary(metadata: dict) -> dict:
    keep = ("working_ranks", "threads_per_rank", "kernels", "state_passes", "time_compute")
    out = {k: metadata.get(k) for k in keep if k in metadata}
    for key in ("branching", "noise"):
        if key in metadata:
            out[key] = metadata[key]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--circuits", default="qft,ghz", help="comma separated: qft, ghz")
    parser.add_argument("--ranks", default="1", help="aer_mpi rank counts, comma separated (1: this process)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians are reported")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="aer_mpi's max_parallel_threads (default: its own, by shard size)")
    parser.add_argument("--aer-threads", type=int, default=None,
                        help="Aer's max_parallel_threads (default: its own: parallel shots on every core)")
    parser.add_argument("--mqt-path", default=None, help="a --target folder holding mqt-bench (optional)")
    parser.add_argument("--skip-aer", action="store_true", help="time aer_mpi only")
    parser.add_argument("--out", default=None, help="also write the JSON report here")
    args = parser.parse_args()

    from aer_mpi.provider.backend import AerMPISimulator

    threads = {} if args.threads is None else {"max_parallel_threads": args.threads}
    rank_counts = [int(r) for r in args.ranks.split(",")]
    backends = {r: AerMPISimulator(processes=r, **threads) if r > 1 else AerMPISimulator(**threads)
                for r in rank_counts}
    aer = None
    if not args.skip_aer:
        from qiskit_aer import AerSimulator

        aer = AerSimulator(method="statevector",
                           **({} if args.aer_threads is None else {"max_parallel_threads": args.aer_threads}))
    report: dict = {
        "qubits": args.qubits, "shots": args.shots, "seed": args.seed, "threads_option": args.threads,
        "aer_threads_option": args.aer_threads,
        "cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "circuits": {},
    }
    try:
        for name in args.circuits.split(","):
            circuit, source = build(name, args.qubits, args.mqt_path)
            small, _ = build(name, 4, args.mqt_path)
            entry: dict = {"source": source, "ops": dict(circuit.count_ops())}
            runners = {f"aer_mpi_{r}_ranks": backends[r] for r in rank_counts}
            if aer is not None:
                runners["aer"] = aer
            for backend in runners.values():  # warm up: numba compilation, worker start
                backend.run(small, shots=10, seed_simulator=1).result()
            seconds: dict = {key: [] for key in runners}
            results: dict = {}
            for _ in range(args.repeat):
                for key, backend in runners.items():
                    start = time.perf_counter()
                    result = backend.run(circuit, shots=args.shots, seed_simulator=args.seed).result()
                    seconds[key].append(round(time.perf_counter() - start, 2))
                    results[key] = result
                    print(f"{name}: {key} {seconds[key][-1]:.2f} s", file=sys.stderr, flush=True)
            for key in runners:
                entry[key] = {"seconds": seconds[key], "median": statistics.median(seconds[key])}
                if key != "aer":
                    entry[key].update(branching_summary(results[key].results[0].metadata))
            ours = results[f"aer_mpi_{rank_counts[0]}_ranks"].get_counts()
            for key in runners:
                if key.startswith("aer_mpi_") and results[key].get_counts() != ours:
                    entry["counts_differ_between_rank_counts"] = True
            if aer is not None:
                for key in runners:
                    if key != "aer":
                        entry[f"ratio_{key}_over_aer"] = round(entry[key]["median"] / entry["aer"]["median"], 3)
                entry["tvd_low_4_bits_per_register"] = round(distance(ours, results["aer"].get_counts(), args.shots), 3)
                entry["aer_metadata"] = {k: results["aer"].results[0].metadata.get(k)
                                         for k in ("parallel_shots", "parallel_state_update", "fusion")}
            report["circuits"][name] = entry
    finally:
        for backend in backends.values():
            backend.close()
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
