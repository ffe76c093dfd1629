"""Fixed costs that small and device-transpiled circuits pay, against Qiskit Aer.

Three measurements, both simulators in the same process after a warm-up, runs alternating between
them, medians (this machine's speed moves by tens of percent from one minute to the next, so
only ratios within one run mean anything):

* ``run().result()`` of circuits transpiled for a 127-qubit device (``FakeSherbrooke``): a
  10-qubit QFT (about 1500 instructions) and EfficientSU2(16, reps=3), 1000 shots;
* aer_mpi's own phases on the QFT: assembly, validation, translation, truncation to the used qubits;
* ``EstimatorV2`` with one pub of ``--bindings`` parameter sets (6 qubits, 8 Pauli terms), per binding.

No assertions: a benchmark, not a test.

    python scripts/bench_fixed_costs.py [--repeat 15] [--bindings 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings


def median_ms(function, repeat: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def alternating_ms(first, second, repeat: int) -> tuple[float, float]:
    """Medians of ``first`` and ``second``, run in turn (so a slow minute hurts both alike)."""
    first(), second()  # warm-up
    times: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for function, kept in zip((first, second), times):
            start = time.perf_counter()
            function()
            kept.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def transpiled_circuits() -> dict:
    import numpy as np
    from qiskit import transpile
    from qiskit.circuit.library import QFT, efficient_su2
    from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

    device = FakeSherbrooke()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        qft = QFT(10).decompose()
    qft.measure_all()
    ansatz = efficient_su2(16, reps=3)
    ansatz = ansatz.assign_parameters(np.random.default_rng(1).uniform(0, 6, ansatz.num_parameters))
    ansatz.measure_all()
    return {name: transpile(circuit, device, optimization_level=1, seed_transpiler=1)
            for name, circuit in (("QFT-10 on a 127-qubit device", qft), ("EfficientSU2-16 on it", ansatz))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--bindings", type=int, default=300)
    args = parser.parse_args()

    import numpy as np
    from qiskit.circuit.library import efficient_su2
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_aer import AerSimulator as AerReference
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    from aer_mpi import AerSimulator
    from aer_mpi.plan.truncate import truncate
    from aer_mpi.primitives import EstimatorV2
    from aer_mpi.qobj.assemble import assemble_circuits
    from aer_mpi.qobj.translate import to_program

    ours, theirs = AerSimulator(), AerReference()
    print(f"{'circuit':34s} {'instr.':>6s} {'aer_mpi ms':>10s} {'Aer ms':>8s} {'ratio':>6s}")
    circuits = transpiled_circuits()
    for name, circuit in circuits.items():
        a, b = alternating_ms(lambda: ours.run(circuit, shots=1000, seed_simulator=1).result(),
                              lambda: theirs.run(circuit, shots=1000, seed_simulator=1).result(), args.repeat)
        print(f"{name:34s} {len(circuit.data):6d} {a:10.1f} {b:8.1f} {a / b:6.2f}")

    qft = next(iter(circuits.values()))
    config = {"shots": 1000, "seed_simulator": 1}
    qobj = assemble_circuits([qft], config)
    program = to_program(qobj.experiments[0])
    phases = {
        "assembly": lambda: assemble_circuits([qft], config),
        "validation": qobj.validate,
        "translation": lambda: to_program(qobj.experiments[0]),
        "truncation": lambda: truncate(program),
    }
    print("aer_mpi's phases on the QFT (ms): " + ", ".join(
        f"{phase} {median_ms(function, args.repeat):.1f}" for phase, function in phases.items()))

    n = 6
    ansatz = efficient_su2(n, reps=2)
    observable = SparsePauliOp.from_list([("Z" * n, 1.0), ("X" * n, 0.5)]
                                         + [("I" * i + "ZZ" + "I" * (n - i - 2), 0.3) for i in range(n - 1)])
    values = np.random.default_rng(0).uniform(0, 2 * np.pi, (args.bindings, ansatz.num_parameters))
    pub = [(ansatz, observable, values)]
    a, b = alternating_ms(lambda: EstimatorV2().run(pub).result(), lambda: AerEstimator().run(pub).result(),
                          max(3, args.repeat // 3))
    print(f"EstimatorV2, {args.bindings} bindings of a {n}-qubit ansatz: aer_mpi {a / args.bindings:.3f} ms "
          f"per binding, Aer {b / args.bindings:.3f} ms, ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
