"""Clifford circuits on the tableau (engine/tableau.py, engine/stabilizer.py) against Qiskit Aer's stabilizer method.

    python scripts/bench_stabilizer.py [--ghz 1000] [--codes 21,51,101] [--rounds 10] [--shots 2000]
                                       [--repeat 3] [--seed 7] [--out FILE]

Circuits, each run by aer_mpi (``AerMPISimulator()``, the automatic method: a Clifford circuit whose
state does not fit, or a noisy one, goes to the tableau) and by Aer (``AerSimulator()``, whose
automatic method picks ``stabilizer`` for them), alternating, after a warm-up, with the same seed:

* ``ghz``: a GHZ state of ``--ghz`` qubits, every qubit measured (final measurements: the outcomes
  sampled at once from the tableau);
* ``repetition-d``: a distance-d repetition code (2d - 1 qubits), ``--rounds`` rounds of syndrome
  measurements with resets and corrections fed forward, depolarizing noise on every gate (1%),
  X errors before measurements (1%) and readout errors (2-3%): Pauli frames;
* ``estimator``: ``EstimatorV2`` on a GHZ state of ``--ghz`` qubits, four observables.

Prints, as JSON: the machine (cores, load average), each run's seconds, the medians, the ratio
aer_mpi / Aer, and, to guard correctness, the largest difference between the two samples' rates of
any clbit (sampling noise alone gives about 4 standard errors of the difference at most).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings


def ghz(n: int):
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    return qc


def repetition_code(d: int, rounds: int):
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    data, ancilla = QuantumRegister(d, "d"), QuantumRegister(d - 1, "a")
    syndromes = [ClassicalRegister(d - 1, f"s{r}") for r in range(rounds)]
    final = ClassicalRegister(d, "f")
    qc = QuantumCircuit(data, ancilla, *syndromes, final)
    qc.x(data[0])
    for syndrome in syndromes:
        for i in range(d - 1):
            qc.cx(data[i], ancilla[i])
            qc.cx(data[i + 1], ancilla[i])
        qc.measure(ancilla, syndrome)
        qc.reset(ancilla)
        with qc.if_test((syndrome[0], 1)):
            qc.x(data[0])
    qc.measure(data, final)
    return qc


def noise_model():
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, pauli_error

    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 1), ["x", "h"])
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 2), ["cx"])
    model.add_all_qubit_quantum_error(pauli_error([("X", 0.01), ("I", 0.99)]), ["measure"])
    model.add_all_qubit_readout_error(ReadoutError([[0.98, 0.02], [0.03, 0.97]]))
    return model


def clbit_rates(counts: dict, width: int, shots: int):
    import numpy as np

    ones = np.zeros(width)
    for key, value in counts.items():
        ones += value * (np.array(list(key.replace(" ", "")[::-1])) == "1")
    return ones / shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ghz", type=int, default=1000, help="qubits of the GHZ circuits")
    parser.add_argument("--codes", default="21,51,101", help="repetition-code distances")
    parser.add_argument("--rounds", type=int, default=10, help="syndrome rounds of the codes")
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    warnings.simplefilter("ignore", UserWarning)
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    from aer_mpi import AerMPISimulator
    from aer_mpi.primitives import EstimatorV2

    model = noise_model()
    cases = {}
    measured = ghz(args.ghz)
    measured.measure_all()
    cases["ghz"] = (measured, None)
    for d in (int(v) for v in args.codes.split(",") if v):
        cases[f"repetition-{d}"] = (repetition_code(d, args.rounds), model)

    records = []
    for name, (qc, noise) in cases.items():
        ours = AerMPISimulator(noise_model=noise) if noise else AerMPISimulator()
        theirs = AerSimulator(noise_model=noise) if noise else AerSimulator()
        times = {"aer_mpi": [], "aer": []}
        results = {}
        for k in range(args.repeat + 1):  # the first of each: a warm-up, not timed
            for who, backend in (("aer_mpi", ours), ("aer", theirs)):
                start = time.perf_counter()
                result = backend.run(qc, shots=args.shots, seed_simulator=args.seed + k).result()
                if k:
                    times[who].append(time.perf_counter() - start)
                results[who] = result
        ours_meta, theirs_meta = results["aer_mpi"].results[0].metadata, results["aer"].results[0].metadata
        difference = abs(clbit_rates(results["aer_mpi"].get_counts(), qc.num_clbits, args.shots)
                         - clbit_rates(results["aer"].get_counts(), qc.num_clbits, args.shots)).max()
        records.append({
            "circuit": name, "qubits": qc.num_qubits, "clbits": qc.num_clbits, "shots": args.shots,
            "aer_mpi_seconds": times["aer_mpi"], "aer_seconds": times["aer"],
            "aer_mpi_median": statistics.median(times["aer_mpi"]), "aer_median": statistics.median(times["aer"]),
            "ratio": statistics.median(times["aer_mpi"]) / statistics.median(times["aer"]),
            "aer_mpi_method": ours_meta.get("method"), "aer_method": theirs_meta.get("method"),
            "largest_clbit_rate_difference": float(difference),
            "standard_error_of_the_difference": float((0.5 / args.shots) ** 0.5),
        })
        print(json.dumps(records[-1]), flush=True)

    state = ghz(args.ghz)
    n = args.ghz
    observables = [SparsePauliOp("Z" + "I" * (n - 2) + "Z"), SparsePauliOp("X" * n), SparsePauliOp("Z" + "I" * (n - 1)),
                   SparsePauliOp("YY" + "X" * (n - 2))]
    times = {"aer_mpi": [], "aer": []}
    values = {}
    for k in range(args.repeat + 1):
        for who, estimator in (("aer_mpi", EstimatorV2()), ("aer", AerEstimator())):
            start = time.perf_counter()
            values[who] = estimator.run([(state, observables)]).result()[0].data.evs.tolist()
            if k:
                times[who].append(time.perf_counter() - start)
    records.append({
        "circuit": "estimator", "qubits": n, "observables": len(observables),
        "aer_mpi_seconds": times["aer_mpi"], "aer_seconds": times["aer"],
        "aer_mpi_median": statistics.median(times["aer_mpi"]), "aer_median": statistics.median(times["aer"]),
        "ratio": statistics.median(times["aer_mpi"]) / statistics.median(times["aer"]),
        "aer_mpi_values": values["aer_mpi"], "aer_values": values["aer"],
    })
    print(json.dumps(records[-1]), flush=True)
    report = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}, "records": records,
              "command": "python scripts/bench_stabilizer.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out")}
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
