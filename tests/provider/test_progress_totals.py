"""Progress lines never count past their total (dynamic circuits run steps once per branch)."""

import io
import re

from aer_mpi.provider.progress import ProgressBar, ProgressLog


def test_log_never_says_step_n_of_less_than_n():
    stream = io.StringIO()
    log = ProgressLog(stream, interval=0.0)
    log.experiment(0, 1, "dyn")
    log.steps(100, 230)
    log.steps(3408, 230)
    log.steps(5, 0)
    lines = stream.getvalue().splitlines()
    assert lines[1].endswith("step 100 of 230")
    assert lines[2].endswith("step 3408") and lines[3].endswith("step 5")
    for line in lines:
        match = re.search(r"step (\d+) of (\d+)", line)
        assert match is None or int(match.group(1)) <= int(match.group(2)), line


def test_bar_drops_a_total_that_was_passed():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.experiment(0, 1, "dyn")
    bar.steps(10, 230)
    assert bar.bar.total == 230 and bar.bar.n == 10
    bar.steps(3408, 230)
    assert bar.bar.total is None and bar.bar.n == 3408
    bar.close()
    assert "3408/230" not in stream.getvalue()
