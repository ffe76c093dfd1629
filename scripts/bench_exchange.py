"""The amplitude exchange alone: pipelined (chunks on their way while the next is packed) or not.

Run under mpiexec with a power-of-two number of ranks::

    mpiexec -n 2 python scripts/bench_exchange.py --local-qubits 23 --repeat 5

For each set of (rank bit, local bit) pairs it times ``BitSwapExchange.swap`` on a shard of
2**local-qubits complex128 amplitudes with 1 and 2 chunks in flight, alternating, best of
``--repeat``, and prints the time, what waiting took of it, the GB/s sent per rank, and a numpy
read + write pass over the shard (the memory floor) for scale. Bytes and results are the same
for both (the exchange layer's tests compare them with numpy).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from mpi4py import MPI

from aer_mpi.comm import BitSwapExchange
from aer_mpi.comm.exchange import DEFAULT_BUFFER_BYTES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local-qubits", type=int, default=22)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--buffer-mb", type=float, default=DEFAULT_BUFFER_BYTES / 2**20)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    g = comm.size.bit_length() - 1
    if comm.size != 1 << g or g == 0:
        raise SystemExit("run it under mpiexec with 2, 4, 8... ranks")
    L = args.local_qubits
    shard = np.random.default_rng(comm.rank).normal(size=2 * (1 << L)).view(np.complex128)
    exchange = BitSwapExchange(comm, int(args.buffer_mb * 2**20))
    cases = [[(0, L - 1)], [(0, L // 2)], [(0, 3)], [(0, 0)]]
    if g >= 2:
        cases.append([(0, L - 1), (1, L - 2)])
        cases.append([(0, 2), (1, 9)])
    floor = min(_numpy_pass(shard) for _ in range(args.repeat))
    if comm.rank == 0:
        print(f"{comm.size} ranks, 2**{L} amplitudes a shard ({shard.nbytes / 2**20:.0f} MiB), buffers "
              f"{args.buffer_mb:g} MiB; a numpy read+write pass over the shard: {floor * 1e3:.1f} ms")
        print(f"{'pairs':<22} {'slots':>5} {'best ms':>8} {'waiting':>8} {'GB/s sent':>9} {'x pass':>7}")
    for pairs in cases:
        best = {s: (float("inf"), 0.0) for s in args.slots}
        sent = 0
        for _ in range(args.repeat):
            for slots in args.slots:
                exchange.slots = slots
                before_wait, before_bytes = exchange.stats.wait_seconds, exchange.stats.bytes_sent
                comm.Barrier()
                start = time.perf_counter()
                exchange.swap(shard, pairs)
                comm.Barrier()
                seconds = time.perf_counter() - start
                sent = exchange.stats.bytes_sent - before_bytes
                if seconds < best[slots][0]:
                    best[slots] = (seconds, exchange.stats.wait_seconds - before_wait)
        if comm.rank == 0:
            for slots in args.slots:
                seconds, waiting = best[slots]
                print(f"{str(pairs):<22} {slots:>5} {seconds * 1e3:>8.1f} {waiting * 1e3:>8.1f} "
                      f"{sent / seconds / 1e9:>9.2f} {seconds / floor:>7.2f}")
    exchange.close()


def _numpy_pass(shard: np.ndarray) -> float:
    start = time.perf_counter()
    np.multiply(shard, 1.0, out=shard)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
