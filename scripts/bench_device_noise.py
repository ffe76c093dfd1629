"""Small circuits transpiled for a device, under its noise model: aer_mpi against Qiskit Aer.

    PYTHONPATH=. python scripts/bench_device_noise.py [--shots 4000] [--repeat 3] [--out FILE]

What a Qiskit user with ``NoiseModel.from_backend`` runs: a QFT on 5 qubits, a GHZ state with a T
gate on 5 and a random circuit on 7, transpiled for FakeManilaV2 (5 qubits) or FakeGuadalupeV2
(16), with the device's noise (thermal relaxation, depolarizing, readout). Each simulator on its
automatic method (both take the density matrix when shots > 2**n, else trajectories), and aer_mpi
on ``method="statevector"`` (trajectories, one per shot) for comparison; runs alternated after a
warm-up, best of ``--repeat``. Prints the seconds, aer_mpi / Aer, the methods taken and the total
variation distance between aer_mpi's and Aer's counts (sampling noise alone is about 0.01-0.03).
Needs qiskit-aer and qiskit-ibm-runtime (for the fake devices).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings


def circuits():
    import numpy as np
    from qiskit import QuantumCircuit, transpile
    from qiskit.circuit.library import QFTGate
    from qiskit.circuit.random import random_circuit
    from qiskit_ibm_runtime.fake_provider import FakeGuadalupeV2, FakeManilaV2

    manila, guadalupe = FakeManilaV2(), FakeGuadalupeV2()
    qft = QuantumCircuit(5)
    qft.x(0)
    qft.append(QFTGate(5), range(5))
    qft.measure_all()
    ghz = QuantumCircuit(5)
    ghz.h(0)
    for q in range(4):
        ghz.cx(q, q + 1)
    ghz.t(2)
    ghz.measure_all()
    rand = random_circuit(7, 8, max_operands=2, seed=np.random.default_rng(3).integers(1 << 30))
    rand.measure_all()
    return [("qft-5 manila", transpile(qft, manila, seed_transpiler=1), manila),
            ("ghz+t-5 manila", transpile(ghz, manila, seed_transpiler=1), manila),
            ("random-7 guadalupe", transpile(rand, guadalupe, seed_transpiler=1), guadalupe)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

    from aer_mpi import AerMPISimulator

    rows = []
    for name, qc, device in circuits():
        model = NoiseModel.from_backend(device)
        sims = {"aer": AerSimulator(noise_model=model), "aer_mpi": AerMPISimulator(noise_model=model),
                "aer_mpi trajectories": AerMPISimulator(noise_model=model, method="statevector")}
        best = {label: float("inf") for label in sims}
        results = {}
        for sim in sims.values():
            sim.run(qc, shots=100, seed_simulator=1).result()  # warm-up: imports, compilation, caches
        for _ in range(args.repeat):
            for label, sim in sims.items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results[label] = sim.run(qc, shots=args.shots, seed_simulator=5).result()
                best[label] = min(best[label], time.perf_counter() - start)
        a, b = results["aer_mpi"].get_counts(), results["aer"].get_counts()
        distance = 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / args.shots
        row = {"circuit": name, "active_qubits": results["aer_mpi"].results[0].metadata["num_qubits"],
               "ops": len(qc.data), "shots": args.shots, "seconds": best,
               "aer_mpi / aer": best["aer_mpi"] / best["aer"],
               "trajectories / aer": best["aer_mpi trajectories"] / best["aer"],
               "methods": {label: r.results[0].metadata.get("method") for label, r in results.items()},
               "tvd aer_mpi vs aer": distance}
        rows.append(row)
        print(f"{name:20} n={row['active_qubits']:2d} aer {best['aer']:.3f} s  aer_mpi {best['aer_mpi']:.3f} s "
              f"({row['aer_mpi / aer']:.2f}x, {row['methods']['aer_mpi']}; Aer: {row['methods']['aer']})  "
              f"trajectories {best['aer_mpi trajectories']:.3f} s ({row['trajectories / aer']:.1f}x)  "
              f"tvd {distance:.3f}", flush=True)
    report = {"machine": {"cores": os.cpu_count(), "load": os.getloadavg()}, "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
