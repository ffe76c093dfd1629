"""Circuits as users bring them, against Qiskit Aer: wide library gates, controlled gates,
``initialize``, readout and device noise.

Each case is one ``run().result()`` of both simulators on the same circuit, the best of a few
runs alternating between them after a warm-up (imports, JIT), in one process
(``comm=MPI.COMM_SELF``). Where Aer refuses an instruction without ``transpile`` (QFTGate, a Grover
operator), Aer runs the transpiled circuit and aer_mpi the raw one, as users of each would. Prints
seconds and the ratio aer_mpi / Aer, and checks that the two agree (the statevectors to 1e-10,
the counts by their total variation distance); no assertions: a benchmark, not a test.

    python scripts/bench_user_circuits.py [--repeat 3] [--shots 4000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def cases(shots: int):
    """(name, circuit for aer_mpi, circuit for Aer, run options, compare 'state' or 'counts')."""
    from qiskit import QuantumCircuit, transpile
    from qiskit.circuit.library import MCXGate, QFTGate, grover_operator
    from qiskit.quantum_info import random_statevector
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel, ReadoutError
    from qiskit_ibm_runtime.fake_provider import FakeNairobiV2

    out = []
    qc = QuantumCircuit(16)
    qc.h(range(16))
    qc.append(MCXGate(9), range(10))
    qc.save_statevector()
    out.append(("mcx, 9 controls, 16 qubits", qc, qc, {}, "state"))

    qc = QuantumCircuit(10)
    qc.h(range(10))
    qc.append(QFTGate(10), range(10))
    qc.save_statevector()
    out.append(("QFTGate(10), raw / transpiled", qc, transpile(qc, AerSimulator()), {}, "state"))

    oracle = QuantumCircuit(12)
    oracle.h(11)
    oracle.mcx(list(range(11)), 11)
    oracle.h(11)
    qc = QuantumCircuit(12)
    qc.h(range(12))
    qc.append(grover_operator(oracle).power(3), range(12))
    qc.save_statevector()
    out.append(("Grover-12, 3 iterations, raw / transpiled", qc, transpile(qc, AerSimulator()), {}, "state"))

    qc = QuantumCircuit(12)
    qc.h(0)
    qc.initialize(random_statevector(1 << 11, seed=3).data, range(1, 12))
    qc.cx(0, 5)
    qc.save_statevector()
    out.append(("initialize of 11 of 12 qubits", qc, qc, {}, "state"))

    qc = QuantumCircuit(3, 3)
    qc.x(0)
    qc.h(2)
    qc.measure(range(3), range(3))
    model = NoiseModel()
    model.add_readout_error(ReadoutError([[0.9, 0.1], [0.4, 0.6]]), [0])
    model.add_readout_error(ReadoutError([[0.7, 0.3], [0.0, 1.0]]), [1])
    out.append((f"readout errors only, {5 * shots} shots", qc, qc,
                {"noise_model": model, "method": "statevector", "shots": 5 * shots}, "counts"))

    device = FakeNairobiV2()
    qc = QuantumCircuit(5)
    qc.h(0)
    for q in range(4):
        qc.cx(q, q + 1)
    qc.rz(0.3, 2)
    qc.measure_all()
    scheduled = transpile(qc, device, seed_transpiler=1, scheduling_method="alap")
    out.append(("FakeNairobiV2 noise, scheduled, statevector", scheduled, scheduled,
                {"noise_model": NoiseModel.from_backend(device), "method": "statevector", "shots": shots}, "counts"))
    return out


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def agreement(kind: str, ours, theirs) -> str:
    if kind == "state":
        diff = np.max(np.abs(np.asarray(ours.get_statevector()) - np.asarray(theirs.get_statevector())))
        return f"max |diff| {diff:.1e}"
    a, b = ours.get_counts(), theirs.get_counts()
    total = sum(a.values())
    tvd = sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b)) / (2 * total)
    return f"TVD {tvd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shots", type=int, default=4000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from mpi4py import MPI
    from qiskit_aer import AerSimulator

    from aer_mpi import AerMPISimulator

    ours_backend = AerMPISimulator(comm=MPI.COMM_SELF)
    aer_backend = AerSimulator()
    print(f"{'case':<46}{'aer_mpi s':>11}{'Aer s':>10}{'ratio':>8}  agreement")
    for name, ours_circuit, aer_circuit, options, kind in cases(args.shots):
        options = dict({"shots": args.shots, "seed_simulator": 5}, **options)
        run_ours = lambda: ours_backend.run(ours_circuit, **options).result()  # noqa: E731
        run_aer = lambda: aer_backend.run(aer_circuit, **options).result()  # noqa: E731
        run_ours(), run_aer()  # warm-up
        t_aer, aer_result = best_of(run_aer, args.repeat)
        t_ours, our_result = best_of(run_ours, args.repeat)
        print(f"{name:<46}{t_ours:>11.4f}{t_aer:>10.4f}{t_ours / t_aer:>8.2f}  {agreement(kind, our_result, aer_result)}")


if __name__ == "__main__":
    main()
