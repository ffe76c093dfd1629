"""What a checkpoint costs: write bandwidth against the file system's, and the run's slowdown.

    mpiexec -n 2 python scripts/bench_checkpoint.py --qubits 24 --dir /scratch/ck

Runs one circuit twice on the ranks it is given: without checkpoints, and
with a checkpoint every ``--every`` seconds into ``--dir``; prints the
checkpoints written, the bytes and seconds they took (from the run's
``metadata["checkpoint"]``), the bandwidth they reached, the floor (one
process writing the same bytes with numpy and fsync, in the same
directory) and the run's wall time with and without. Then it stops a
third run with ``cancel(checkpoint=True)`` and resumes it, and checks the
counts equal the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from mpi4py import MPI
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator


def brickwork(n: int, layers: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    for layer in range(layers):
        for q in range(n):
            qc.rx(0.1 + 0.01 * ((layer + q) % 7), q)
        qc.cx(range(layer % 2, n - 1, 2), range(layer % 2 + 1, n, 2))
    qc.measure_all()
    return qc


def write_floor(directory: str, nbytes: int) -> float:
    """Seconds for one process to write ``nbytes`` and fsync them (the file system's floor)."""
    data = np.ones(nbytes // 16, dtype=np.complex128)
    path = os.path.join(directory, "floor.bin")
    start = time.perf_counter()
    with open(path, "wb") as handle:
        data.tofile(handle)
        handle.flush()
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    os.unlink(path)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=22)
    parser.add_argument("--layers", type=int, default=40)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between checkpoints")
    parser.add_argument("--dir", default="bench-checkpoints", help="where to write them (all ranks must see it)")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    backend = AerMPISimulator(comm=comm)
    circuit = brickwork(args.qubits, args.layers)
    options = dict(shots=1000, seed_simulator=1)

    def timed(**extra):
        comm.Barrier()
        start = time.perf_counter()
        result = backend.run(circuit, **options, **extra).result()
        return result, time.perf_counter() - start

    if rank == 0:
        shutil.rmtree(args.dir, ignore_errors=True)
    plain, plain_seconds = timed()
    kept, kept_seconds = timed(checkpoint_dir=args.dir, checkpoint_every_seconds=args.every)
    meta = kept.results[0].metadata["checkpoint"]

    # stopped after a checkpoint, then resumed: the same counts
    job = backend.run(circuit, **options, checkpoint_dir=args.dir, checkpoint_every_seconds=args.every)
    while not os.path.exists(os.path.join(args.dir, "manifest.json")) and not job.done():
        time.sleep(0.01)
    job.cancel(checkpoint=True)
    try:
        job.result()
        stopped = False
    except Exception:
        stopped = True
    resumed, _ = timed(checkpoint_dir=args.dir)

    if rank == 0:
        state_bytes = 16 << args.qubits
        floor = write_floor(args.dir, state_bytes)
        per = meta["seconds"] / max(1, meta["written"])
        print(f"{args.qubits} qubits ({state_bytes / 2**20:.0f} MiB), {comm.Get_size()} ranks, "
              f"{plain.results[0].metadata['working_ranks']} working")
        print(f"run without checkpoints: {plain_seconds:.2f} s; with one every {args.every:g} s: "
              f"{kept_seconds:.2f} s ({kept_seconds / plain_seconds:.2f}x)")
        print(f"checkpoints written: {meta['written']}, {meta['bytes'] / 2**20:.0f} MiB in {meta['seconds']:.3f} s "
              f"({per:.3f} s each, {meta['bytes'] / max(meta['seconds'], 1e-9) / 1e9:.2f} GB/s)")
        print(f"floor: one process writes {state_bytes / 2**20:.0f} MiB + fsync in {floor:.3f} s "
              f"({state_bytes / floor / 1e9:.2f} GB/s); a checkpoint takes {per / floor:.2f}x that")
        same = resumed.get_counts() == plain.get_counts()
        print(f"stopped by cancel(checkpoint=True): {stopped}; resumed counts equal the uninterrupted run's: {same}")
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
