"""``aer-mpi run`` on a batch whose last circuit fails (hardening, issue 13), at 1, 2 and 3 ranks.

The finished circuits' results and the failed circuit's error are written,
the exit status is 1 and the failure is reported on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import RANKS_WITH_IDLE, mpiexec_or_skip
from test_cli_signals import small_qasm


def ghz_qasm(n):
    # the T: not Clifford (a Clifford circuit too wide for memory would run on a stabilizer tableau)
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];", f"creg c[{n}];", "h q[0];", "t q[0];"]
    lines += [f"cx q[{q}],q[{q + 1}];" for q in range(n - 1)]
    return "\n".join(lines + ["measure q -> c;"]) + "\n"


@pytest.mark.parametrize("ranks", RANKS_WITH_IDLE)
def test_last_circuit_failing_keeps_the_others_and_exits_1(tmp_path, ranks):
    (tmp_path / "a.qasm").write_text(small_qasm(1))
    (tmp_path / "b.qasm").write_text(small_qasm(2))
    (tmp_path / "big.qasm").write_text(ghz_qasm(27))  # 2 GiB: over --max-memory-mb 100
    env = dict(os.environ, OMP_NUM_THREADS="1", AER_MPI_KERNELS="numpy")
    proc = subprocess.run(
        [mpiexec_or_skip(), "-n", str(ranks), sys.executable, "-m", "aer_mpi", "run", "a.qasm", "b.qasm", "big.qasm",
         "--shots", "32", "--seed", "1", "--max-memory-mb", "100", "-o", "out.json", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "big.qasm" in proc.stderr and "MiB" in proc.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    a, b, big = document["results"]
    assert a["status"] == b["status"] == "done" and sum(b["counts"].values()) == 32
    assert big["status"] == "error" and "InsufficientMemoryError" in big["error"] and big["counts"] is None
    assert document["success"] is False
