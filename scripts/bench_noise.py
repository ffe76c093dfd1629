"""Noisy circuit timing: aer_mpi (trajectories on the sharded state) vs Qiskit Aer, in the same run.

    python scripts/bench_noise.py [--qubits 20] [--shots 1000] [--layers 3] [--processes P]

A layered circuit (h, rz, cx ladder) under depolarizing gate errors, thermal relaxation on sx
and readout errors, final measurements. Prints seconds, the ratio, the TVD between the two
count sets, and the trajectories aer_mpi ran (result metadata "noise").
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--processes", type=int, default=None, help="aer_mpi worker processes (default: this one)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from qiskit_aer import AerSimulator

    from aer_mpi.provider.backend import AerMPISimulator

    circuit = build(args.qubits, args.layers)
    model = noise_model()
    backend = AerMPISimulator(processes=args.processes) if args.processes else AerMPISimulator()
    # warm up (numba compilation, worker start) on a small circuit
    backend.run(build(4, 1), shots=10, noise_model=model, seed_simulator=1).result()
    start = time.perf_counter()
    ours = backend.run(circuit, shots=args.shots, seed_simulator=args.seed, noise_model=model).result()
    ours_s = time.perf_counter() - start
    aer = AerSimulator(method="statevector", noise_model=model)
    aer.run(build(4, 1), shots=10).result()
    start = time.perf_counter()
    theirs = aer.run(circuit, shots=args.shots, seed_simulator=args.seed).result()
    aer_s = time.perf_counter() - start
    a, b = ours.get_counts(), theirs.get_counts()
    tvd = 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / args.shots
    meta = ours.results[0].metadata
    report = {
        "qubits": args.qubits, "shots": args.shots, "layers": args.layers,
        "gates": sum(v for k, v in circuit.count_ops().items() if k != "measure"),
        "ranks": meta.get("ranks"), "aer_mpi_s": round(ours_s, 3), "aer_s": round(aer_s, 3),
        "ratio_aer_mpi_over_aer": round(ours_s / aer_s, 2), "tvd_between_the_two": round(tvd, 3),
        "noise": meta.get("noise"),
    }
    print(json.dumps(report, indent=1))
    backend.close()


if __name__ == "__main__":
    main()
