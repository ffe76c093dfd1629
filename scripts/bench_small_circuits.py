"""Per-evaluation cost of small circuits: aer_mpi's primitives against Qiskit Aer's.

A variational loop evaluates a small parameterised circuit thousands of
times, so what matters is the fixed cost of one call (assembly, planning,
the job, the result), not the simulation. This times EstimatorV2 and
SamplerV2 of both simulators on the same 4- and 16-qubit parameterised
circuits, one pub per call, in a loop, and prints seconds per call and the
ratio aer_mpi / Aer.

    python scripts/bench_small_circuits.py [--repeats 50] [--qubits 4 16] [--kernels numpy]

Runs in one process (``comm=MPI.COMM_SELF``); the first calls (imports,
JIT) are left out of the timing, and each figure is the best of five
rounds that alternate between the two simulators. No assertions: a
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def ansatz(num_qubits: int, reps: int = 2):
    from qiskit.circuit.library import efficient_su2

    return efficient_su2(num_qubits, reps=reps, entanglement="linear").decompose()


def observable(num_qubits: int):
    from qiskit.quantum_info import SparsePauliOp

    terms = [("Z" * num_qubits, 1.0)]
    terms += [("I" * i + "ZZ" + "I" * (num_qubits - i - 2), 0.5) for i in range(num_qubits - 1)]
    terms += [("I" * i + "X" + "I" * (num_qubits - i - 1), 0.25) for i in range(num_qubits)]
    return SparsePauliOp.from_list(terms)


def per_call(ours, theirs, repeats: int, rounds: int = 5, warmup: int = 3) -> tuple[float, float]:
    """Seconds per call of each, the best of ``rounds`` interleaved rounds (a shared machine's noise hits both)."""
    for _ in range(warmup):
        ours()
        theirs()
    best = [float("inf"), float("inf")]
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for i, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            for _ in range(per_round):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / per_round)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--qubits", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--kernels", default=os.environ.get("AER_MPI_KERNELS", "auto"))
    parser.add_argument("--shots", type=int, default=1024)
    args = parser.parse_args()

    from mpi4py import MPI
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    from aer_mpi import AerMPISimulator
    from aer_mpi.primitives import EstimatorV2, SamplerV2

    backend = AerMPISimulator(comm=MPI.COMM_SELF, kernels=args.kernels)
    rng = np.random.default_rng(7)
    print(f"{'case':<22}{'aer_mpi s/call':>16}{'Aer s/call':>14}{'ratio':>9}")
    for n in args.qubits:
        circuit = ansatz(n)
        obs = observable(n)
        measured = circuit.measure_all(inplace=False)
        values = rng.uniform(0, 2 * np.pi, circuit.num_parameters)
        ours_est, aer_est = EstimatorV2(backend=backend), AerEstimator()
        ours_smp, aer_smp = SamplerV2(backend=backend, seed=1), AerSampler(seed=1)
        cases = {
            f"EstimatorV2 {n}q": (
                lambda: ours_est.run([(circuit, obs, values)]).result(),
                lambda: aer_est.run([(circuit, obs, values)]).result(),
            ),
            f"SamplerV2 {n}q": (
                lambda: ours_smp.run([(measured, values)], shots=args.shots).result(),
                lambda: aer_smp.run([(measured, values)], shots=args.shots).result(),
            ),
        }
        for name, (ours, theirs) in cases.items():
            t_ours, t_aer = per_call(ours, theirs, args.repeats)
            print(f"{name:<22}{t_ours:>16.5f}{t_aer:>14.5f}{t_ours / t_aer:>9.2f}")


if __name__ == "__main__":
    main()
