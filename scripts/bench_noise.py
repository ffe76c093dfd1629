"""Noisy circuit timing: aer_mpi (trajectories on the sharded state) vs Qiskit Aer, in the same run.

    python scripts/bench_noise.py [--qubits 20] [--shots 1000] [--layers 3] [--ranks 1,2] [--seed 7] [--threads T]

A layered circuit (h/sx, rz, a cx ladder) under depolarizing gate errors, thermal relaxation on sx
(T2 <= T1: a mixture with reset branches) and readout errors, every qubit measured. aer_mpi runs it at
each rank count of ``--ranks`` (1: in this process; P > 1: P worker processes, ``processes=P``), Qiskit
Aer (statevector method, its defaults: one trajectory per shot) once; each after a warm-up on a small
circuit. Prints, as JSON: the machine (cores, load average), seconds for each, the ratios, how many
trajectories branching ran and how much fusion between noise events saved (result metadata "noise"),
and the distance between the two samples' marginals on the first 4 qubits (a sanity figure: the tests
check agreement with Aer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def build(n: int, layers: int):
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, n)
    for layer in range(layers):
        for q in range(n):
            qc.h(q) if layer % 2 == 0 else qc.sx(q)
            qc.rz(0.1 * (q + 1) * (layer + 1), q)
        for q in range(layer % 2, n - 1, 2):
            qc.cx(q, q + 1)
    qc.measure(range(n), range(n))
    return qc


def noise_model():
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, thermal_relaxation_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.002, 1), ["h", "rz"])
    model.add_all_qubit_quantum_error(thermal_relaxation_error(80, 60, 0.05), ["sx"])
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 2), ["cx"])
    model.add_all_qubit_readout_error(ReadoutError([[0.98, 0.02], [0.04, 0.96]]))
    return model


def low_marginal(counts: dict, bits: int) -> dict:
    out: dict = {}
    for key, value in counts.items():
        low = key.replace(" ", "")[-bits:]
        out[low] = out.get(low, 0) + value
    return out


def tvd(a: dict, b: dict, shots: int) -> float:
    return 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--ranks", default="1,2", help="aer_mpi rank counts, comma separated (1: this process)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="max_parallel_threads for both simulators (default: each one's own)")
    parser.add_argument("--skip-aer", action="store_true", help="time aer_mpi only")
    args = parser.parse_args()

    from aer_mpi.provider.backend import AerMPISimulator

    circuit = build(args.qubits, args.layers)
    model = noise_model()
    report: dict = {
        "qubits": args.qubits, "shots": args.shots, "layers": args.layers,
        "gates": sum(v for k, v in circuit.count_ops().items() if k != "measure"),
        "cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    threads = {} if args.threads is None else {"max_parallel_threads": args.threads}
    report["threads_option"] = args.threads
    ours_counts = None
    for ranks in [int(r) for r in args.ranks.split(",")]:
        backend = AerMPISimulator(processes=ranks, **threads) if ranks > 1 else AerMPISimulator(**threads)
        try:
            # warm up (numba compilation, worker start) on a small circuit
            backend.run(build(4, 1), shots=10, noise_model=model, seed_simulator=1).result()
            start = time.perf_counter()
            ours = backend.run(circuit, shots=args.shots, seed_simulator=args.seed, noise_model=model).result()
            seconds = time.perf_counter() - start
        finally:
            backend.close()
        meta = ours.results[0].metadata
        ours_counts = ours.get_counts()
        report[f"aer_mpi_{ranks}_ranks"] = done = {
            "seconds": round(seconds, 2), "working_ranks": meta.get("working_ranks"),
            "kernels": meta.get("kernels"), "threads_per_rank": meta.get("threads_per_rank"),
            "noise": meta.get("noise"),
        }
        print(f"aer_mpi, {ranks} rank(s): {json.dumps(done)}", file=sys.stderr, flush=True)
    if not args.skip_aer:
        from qiskit_aer import AerSimulator

        aer = AerSimulator(method="statevector", noise_model=model, **threads)
        aer.run(build(4, 1), shots=10).result()
        start = time.perf_counter()
        theirs = aer.run(circuit, shots=args.shots, seed_simulator=args.seed).result()
        aer_s = time.perf_counter() - start
        report["aer_seconds"] = round(aer_s, 2)
        print(f"Aer: {aer_s:.2f} s", file=sys.stderr, flush=True)
        report["aer_metadata"] = {k: theirs.results[0].metadata.get(k) for k in
                                  ("parallel_shots", "parallel_state_update", "fusion") if k in theirs.results[0].metadata}
        for key, value in list(report.items()):
            if key.startswith("aer_mpi_"):
                report[f"ratio_{key}_over_aer"] = round(value["seconds"] / aer_s, 2)
        if ours_counts is not None:
            bits = min(4, args.qubits)
            report[f"tvd_first_{bits}_qubits"] = round(
                tvd(low_marginal(ours_counts, bits), low_marginal(theirs.get_counts(), bits), args.shots), 3)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
