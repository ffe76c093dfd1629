"""Time the native stage kernels gate by gate, by width and positions, in both precisions.

Each case is 16 copies of one random k-qubit gate on the given positions, as one cache-blocked
stage (``native.apply_stage``) over 2**20 amplitudes in chunks of 2**14, on one thread; the
figure is nanoseconds per amplitude per gate (best of ``--repeat``) and per complex product (a
k-qubit gate takes 2**k per amplitude). Positions below the vector (0 in double precision, 0-1 in
single on AVX2) take the in-vector paths. With several ``NAME=LIBRARY`` builds (a copy of
``stage.c`` built elsewhere, e.g. main's) the builds alternate run by run, so a busy machine
hurts them alike::

    gcc -O3 -ffp-contract=off -fno-tree-slp-vectorize -fno-fast-math -std=gnu11 -shared -fPIC \\
        -march=native -o /tmp/old.so ../main/aer_mpi/kernels/native/stage.c
    python scripts/bench_native_positions.py old=/tmp/old.so new=/tmp/new.so
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np

from bench_kernels import unitary  # scripts/ is on the path when a script runs

CASES = [(1, (0,)), (1, (1,)), (1, (12,)), (2, (0, 1)), (2, (0, 5)), (2, (1, 5)), (2, (5, 9)),
         (3, (0, 1, 2)), (3, (0, 5, 9)), (3, (1, 5, 9)), (3, (4, 5, 9)),
         (4, (0, 1, 2, 3)), (4, (0, 5, 9, 11)), (4, (1, 5, 9, 11)), (4, (10, 11, 12, 13))]


def main() -> None:
    from aer_mpi.kernels import native

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="*", help="NAME=LIBRARY (default: this checkout's build)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=14)
    args = parser.parse_args()
    if not native.available(np.complex128):
        raise SystemExit(f"the native kernels are off here: {native.status()}")
    builds = {"this": None} if not args.builds else {
        name: ctypes.CDLL(path) for name, path in (item.split("=", 1) for item in args.builds)}
    rng = np.random.default_rng(1)
    print(f"ns per amplitude per gate (ns per complex product), 1 thread, 2**{args.qubits} amplitudes, "
          f"chunks of 2**{args.chunk}")
    for dtype in (np.complex128, np.complex64):
        state = np.full(1 << args.qubits, (1 << args.qubits) ** -0.5, dtype=dtype)
        for k, positions in CASES:
            gates = [(positions, unitary(rng, k), None)] * 16
            best = {}
            for _ in range(args.repeat):
                for name, library in builds.items():
                    if library is not None:
                        native._vector_bytes = native.bind(library)
                        native._library = library
                    start = time.perf_counter()
                    assert native.apply_stage(state, gates, args.chunk, 1)
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
            cells = [f"{name} {t / 16 / state.size * 1e9:.2f} ({t / 16 / state.size * 1e9 / (1 << k):.3f})"
                     for name, t in best.items()]
            print(f"{np.dtype(dtype).name:10s} {k} {str(positions):16s} " + "   ".join(cells))


if __name__ == "__main__":
    main()
