"""Time the numba stage kernel (``apply_stage``) on in-cache and larger arrays.

``--fusion-costs`` measures the fusion's in-stage cost table and ``--swaps`` the cache tier's bit
swaps instead. Cases: one dense 1-5 qubit gate and one diagonal as a one-gate stage on a
2**16 array, on low (0-2), mid and high (below the chunk) positions; a
stage of 32 random 2-4 qubit dense gates on 2**16 and 2**22 amplitudes; the
numpy floor (one read + write pass). Times are best of ``--repeat``; with
several ``--kernels NAME=FILE`` (a copy of ``numba_backend.py``, e.g. main's)
the variants alternate run by run, so a busy machine hurts them alike::

    cp ../main/aer_mpi/kernels/numba_backend.py /tmp/k/main_backend.py
    python scripts/bench_kernels.py --kernels main=/tmp/k/main_backend.py new=aer_mpi/kernels/numba_backend.py
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time

import numpy as np


def load(name: str, path: str):
    """``path`` imported from a copy in a temporary folder: its numba cache stays apart from the package's."""
    folder = os.path.join(tempfile.gettempdir(), f"bench_kernels-{os.getuid()}", name)
    os.makedirs(folder, exist_ok=True)
    copy = os.path.join(folder, f"bench_kernels_{name}.py")
    with open(path) as source:
        text = source.read()
    old = None
    if os.path.exists(copy):
        with open(copy) as held:
            old = held.read()
    if old != text:  # rewriting an unchanged copy would drop its numba cache
        with open(copy, "w") as out:
            out.write(text)
    spec = importlib.util.spec_from_file_location(f"bench_kernels_{name}", copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def unitary(rng, k):
    z = rng.normal(size=(1 << k, 1 << k)) + 1j * rng.normal(size=(1 << k, 1 << k))
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def flops(gates, size):
    """Real flops: a complex product is 6, a complex add 2."""
    total = 0
    for positions, matrix, diag in gates:
        dim = 1 << len(positions)
        total += size * (6 if diag is not None else 8 * dim - 2)
    return total


def cases(rng, chunk):
    mid, high = chunk // 2, chunk - 1
    out = []
    for k in (1, 2, 3, 4, 5):
        low = (1,) if k == 1 else tuple(range(k))
        for label, positions in (("low", low), ("mid", tuple(range(mid, mid + k))),
                                 ("high", tuple(range(high - k + 1, high + 1)))):
            out.append((f"dense k={k} {label} {positions}", 16, [(positions[::-1], unitary(rng, k), None)]))
    for label, positions in (("low", (0, 2)), ("mid", (7, 9)), ("high", (12, 15)), ("above", (16, 20))):
        n = 21 if label == "above" else 16
        out.append((f"diag k=2 {label} {positions}", n, [(positions, None, np.exp(1j * rng.uniform(0, 6.3, 4)))]))
    stage = []
    for _ in range(32):
        k = int(rng.integers(2, 5))
        positions = tuple(int(p) for p in rng.permutation(chunk)[:k])
        stage.append((positions, unitary(rng, k), None))
    out.append(("stage 32 x 2-4q, 2**16", 16, stage))
    out.append(("stage 32 x 2-4q, 2**22", 22, stage))
    return out


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def fusion_costs(args) -> None:
    """The fusion's in-stage cost table (plan/fusion.py ``STAGE_DENSE_COSTS``): 64 random gates of
    each width as one stage through ``aer_mpi.kernels`` (the native kernels where they build),
    on 2**16 and 2**20 amplitudes, in units of a 1-qubit gate."""
    from aer_mpi import kernels
    from aer_mpi.plan.fusion import STAGE_DENSE_COSTS, STAGE_DIAGONAL_COST

    kernels.use("auto")
    kernels.set_threads(args.threads)
    dtype = np.complex64 if args.single else np.complex128
    rng = np.random.default_rng(5)
    print(f"threads {args.threads}, chunk {args.chunk}, best of {args.repeat}, native kernels: "
          f"{kernels.native_status()}")
    print("table in plan/fusion.py: " + " ".join(f"{k}:{v:g}" for k, v in STAGE_DENSE_COSTS.items() if k)
          + f" diagonal:{STAGE_DIAGONAL_COST:g}")
    for n in (16, 20):
        state = (rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)).astype(dtype)
        costs = {}
        for k in range(1, 6):
            gates = [(tuple(int(p) for p in rng.permutation(args.chunk)[:k]), unitary(rng, k), None) for _ in range(64)]
            kernels.apply_stage(state, gates, args.chunk)
            costs[k] = best(lambda: kernels.apply_stage(state, gates, args.chunk), args.repeat)
        for k in (2, 8):
            gates = [(tuple(int(p) for p in rng.permutation(n)[:k]), None, np.exp(1j * rng.uniform(0, 6, 1 << k)))
                     for _ in range(64)]
            kernels.apply_stage(state, gates, args.chunk)
            costs[f"diagonal{k}"] = best(lambda: kernels.apply_stage(state, gates, args.chunk), args.repeat)
        print(f"2**{n}: " + " ".join(f"{k}:{t / costs[1]:.2f}" for k, t in costs.items())
              + f"  (1-qubit gate {costs[1] / 64 * 1e3:.3f} ms)")


#: Local bit swaps of the cache tier (plan/stages.py), as QV-24 and random-24 plan them (18 cache
#: qubits), and single pairs with a low, a lowest and a high bit.
SWAP_CASES = (((16, 19), (14, 18), (9, 22), (5, 21), (10, 23)), ((10, 23), (3, 20), (12, 21), (7, 22), (14, 18), (9, 19)),
              ((3, 18), (16, 19), (14, 22), (5, 21), (13, 20), (9, 23)),
              ((11, 18), (6, 23), (9, 20), (3, 22), (7, 19), (8, 21)), ((17, 18), (16, 23), (15, 19)),
              ((3, 20),), ((0, 20),), ((12, 20),))


def swaps(args) -> None:
    """The cache tier's bit swaps through ``aer_mpi.kernels`` (native where it builds) on a 24-qubit
    state: ms and GB/s (a swap reads and writes the amplitudes it moves) against a numpy pass."""
    from aer_mpi import kernels

    kernels.use("auto")
    kernels.set_threads(args.threads)
    n = 24
    print(f"threads {args.threads}, 2**{n} amplitudes, best of {args.repeat}, native kernels: {kernels.native_status()}")
    for dtype in (np.complex64, np.complex128):
        state = np.ones(1 << n, dtype)
        floor = best(lambda: np.multiply(state, 1, out=state), args.repeat)
        print(f"{np.dtype(dtype).name}: numpy pass {floor * 1e3:.1f} ms ({2 * state.nbytes / floor / 1e9:.1f} GB/s)")
        for pairs in SWAP_CASES:
            kernels.swap_bits(state, pairs)
            seconds = best(lambda: kernels.swap_bits(state, pairs), args.repeat)
            moved = state.nbytes * (1 - 0.5 ** len(pairs))  # amplitudes whose pair bits differ
            print(f"  {str(pairs):<64} {seconds * 1e3:6.1f} ms {2 * moved / seconds / 1e9:6.1f} GB/s "
                  f"{seconds / floor:5.2f}x the pass")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", nargs="+", default=["this=aer_mpi/kernels/numba_backend.py"],
                        help="NAME=FILE of numba_backend copies to compare (alternating)")
    parser.add_argument("--repeat", type=int, default=20, help="best of this many runs per case")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=16, help="chunk qubits of the stage")
    parser.add_argument("--single", action="store_true", help="complex64 instead of complex128")
    parser.add_argument("--ghz", type=float, default=2.6, help="clock for the flops/cycle estimate")
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--fusion-costs", action="store_true",
                        help="measure the fusion's in-stage cost per gate width instead (plan/fusion.py)")
    parser.add_argument("--swaps", action="store_true",
                        help="time the cache tier's bit swaps on 24 qubits instead (kernels.swap_bits)")
    args = parser.parse_args()
    if args.swaps:
        swaps(args)
        return
    if args.fusion_costs:
        fusion_costs(args)
        return

    variants = []
    for spec in args.kernels:
        name, path = spec.split("=", 1)
        module = load(name, path)
        module.set_threads(args.threads)
        variants.append((name, module))
    dtype = np.complex64 if args.single else np.complex128
    rng = np.random.default_rng(7)
    states = {}
    width = 34
    head = f"{'case':<{width}}" + "".join(f"{name + ' ms':>11}{'GB/s':>7}{'fl/cyc':>7}" for name, _ in variants)
    print(f"threads {args.threads}, {np.dtype(dtype).name}, chunk {args.chunk}, best of {args.repeat}")
    print(head)
    for label, n, gates in cases(rng, args.chunk):
        if args.filter not in label:
            continue
        if n not in states:
            states[n] = (rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)).astype(dtype)
            states[n] /= np.linalg.norm(states[n])
        state = states[n]
        for _, module in variants:  # compile outside the timing
            module.apply_stage(state, gates, args.chunk)
        times = [[] for _ in variants]
        for _ in range(args.repeat):
            for j, (_, module) in enumerate(variants):
                t = time.perf_counter()
                module.apply_stage(state, gates, args.chunk)
                times[j].append(time.perf_counter() - t)
        row = f"{label:<{width}}"
        traffic = 2 * state.nbytes
        for t in (min(ts) for ts in times):
            cycles = t * args.ghz * 1e9 * args.threads
            row += f"{t * 1e3:>11.4f}{traffic / t / 1e9:>7.1f}{flops(gates, 1 << n) / cycles:>7.2f}"
        print(row)
    for n in sorted(states):
        state = states[n]
        t = best(lambda a=state: np.multiply(a, 1.0, out=a), args.repeat)
        print(f"{'numpy floor 2**' + str(n):<{width}}{t * 1e3:>11.4f}{2 * state.nbytes / t / 1e9:>7.1f}")


if __name__ == "__main__":
    main()
