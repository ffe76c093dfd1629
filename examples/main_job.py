"""The main job: two 22-qubit circuits sharded across MPI ranks.

Run it with any number of ranks (4 in the README):

    mpiexec -n 4 python examples/main_job.py

Every rank runs this same script (SPMD). Rank 0 prints the counts and what
the run did: ranks, qubits per shard, exchanges and bytes moved.
"""

from __future__ import annotations

import argparse
import json

from mpi4py import MPI
from qiskit import QuantumCircuit

from aer_mpi import AerMPISimulator


def bernstein_vazirani(secret: str) -> QuantumCircuit:
    """Finds ``secret`` in one query: every shot must read it back."""
    n = len(secret)
    qc = QuantumCircuit(n + 1, n, name=f"bernstein_vazirani_{n + 1}q")
    qc.x(n)
    qc.h(range(n + 1))
    for i, bit in enumerate(reversed(secret)):
        if bit == "1":
            qc.cx(i, n)
    qc.h(range(n))
    qc.measure(range(n), range(n))
    return qc


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n, name=f"ghz_{n}q")
    qc.h(0)
    for i in range(1, n):
        qc.cx(i - 1, i)
    qc.measure_all()
    return qc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=22, help="circuit width (default 22)")
    parser.add_argument("--shots", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rank = MPI.COMM_WORLD.Get_rank()
    secret = ("1011" * args.qubits)[: args.qubits - 1]
    circuits = [bernstein_vazirani(secret), ghz(args.qubits)]
    backend = AerMPISimulator()
    result = backend.run(circuits, shots=args.shots, seed_simulator=args.seed).result()
    if rank != 0:
        return
    for index, circuit in enumerate(circuits):
        counts = result.get_counts(index)
        meta = result.results[index].metadata
        top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:4])
        print(f"{circuit.name}: {sum(counts.values())} shots, counts {top}")
        if "qubits_per_shard" in meta:  # the sharded statevector
            print(
                "  ranks {ranks} ({working_ranks} working), {qubits_per_shard} qubits per shard, "
                "{exchanges} exchanges, {bytes_exchanged} bytes exchanged, {time_taken:.2f} s".format(**meta)
            )
        else:  # too wide for the ranks' memory: a Clifford circuit runs on the stabilizer tableau
            print("  ranks {ranks}, method {method} (no state vector), {time_taken:.2f} s".format(**meta))
    bv_counts = result.get_counts(0)
    assert list(bv_counts) == [secret], f"expected only {secret}, got {bv_counts}"
    print("metadata:", json.dumps(result.results[1].metadata, default=str))


if __name__ == "__main__":
    main()
