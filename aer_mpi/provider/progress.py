"""Progress of a running job, shown on rank 0's stderr.

A ``ProgressListener`` receives the events the engine reports on rank 0:
a circuit starts (``experiment``), the run enters a stage (``stage``), steps
are done (``steps``, at the engine's checkpoints), the job ends (``close``).
The base class only remembers where the job is (the CLI names the circuit
that failed from it); ``ProgressBar`` draws a tqdm bar for a terminal,
``ProgressLog`` writes plain lines for a log file (a SLURM job's output).
This module knows neither MPI nor the engine.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO


class ProgressListener:
    """Receives progress events; shows nothing."""

    def __init__(self) -> None:
        self.index: Optional[int] = None
        self.count = 0
        self.name = ""
        self.current_stage = ""
        self.started = time.monotonic()
        self.experiment_started = self.started

    def experiment(self, index: int, count: int, name: str) -> None:
        """Circuit ``index`` (0-based) of ``count``, named ``name``, starts."""
        self.index, self.count, self.name = index, count, name
        self.current_stage = ""
        self.experiment_started = time.monotonic()

    def stage(self, name: str) -> None:
        self.current_stage = name

    def steps(self, done: int, total: int) -> None:
        """``done`` of ``total`` plan steps of the current circuit are done."""

    def close(self, failed: bool = False) -> None:
        """The job has ended; ``failed`` when it raised (the error is reported elsewhere)."""

    def where(self) -> str:
        """The current circuit, as "circuit 2 of 5 (name)"; empty before the first."""
        if self.index is None:
            return ""
        return f"circuit {self.index + 1} of {self.count} ({self.name})"


class ProgressLog(ProgressListener):
    """Plain lines: one when a circuit starts, then at most one per ``interval`` seconds."""

    def __init__(self, stream: Optional[TextIO] = None, interval: float = 30.0, prefix: str = "aer-mpi") -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.prefix = prefix
        self.last_line = 0.0

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.stream.write(f"[{self.prefix} {_clock(elapsed)}] {text}\n")
        self.stream.flush()
        self.last_line = time.monotonic()

    def experiment(self, index: int, count: int, name: str) -> None:
        super().experiment(index, count, name)
        self._line(f"{self.where()}: started")

    def steps(self, done: int, total: int) -> None:
        if time.monotonic() - self.last_line >= self.interval:
            stage = f" {self.current_stage}" if self.current_stage else ""
            known = _known_total(done, total)
            of = f" of {known}" if known is not None else ""
            self._line(f"{self.where()}{stage}: step {done}{of}")

    def close(self, failed: bool = False) -> None:
        if failed:
            self._line(f"stopped in {self.where() or 'the job'}")
        elif self.index is not None:
            self._line(f"done: {self.count} circuit{'s' if self.count != 1 else ''}")


class ProgressBar(ProgressListener):
    """A tqdm bar per circuit: "circuit i/k name [stage]", steps, elapsed."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Any = None

    def _finish_bar(self, failed: bool = False) -> None:
        if self.bar is not None:
            if self.bar.total is not None and not failed:
                self.bar.n = self.bar.total
            self.bar.set_description_str(self._description(""), refresh=False)
            self.bar.close()
            self.bar = None

    def _description(self, stage: str) -> str:
        text = f"circuit {self.index + 1}/{self.count} {self.name}" if self.index is not None else ""
        return f"{text} [{stage}]" if stage else text

    def experiment(self, index: int, count: int, name: str) -> None:
        from tqdm import tqdm

        self._finish_bar()
        super().experiment(index, count, name)
        self.bar = tqdm(
            total=None,
            desc=self._description(""),
            unit="step",
            file=self.stream,
            leave=True,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def stage(self, name: str) -> None:
        super().stage(name)
        if self.bar is not None:
            self.bar.set_description_str(self._description(name))

    def steps(self, done: int, total: int) -> None:
        if self.bar is not None:
            known = _known_total(done, total)
            if known is None and self.bar.total is not None and done > self.bar.total:
                self.bar.total = None  # the count passed the plan's: show steps without a total
            elif known is not None and self.bar.total != known and (self.bar.total is None or done <= known):
                self.bar.total = known
            self.bar.n = done
            self.bar.refresh()

    def close(self, failed: bool = False) -> None:
        self._finish_bar(failed)


def _known_total(done: int, total: Any) -> Optional[int]:
    """``total`` when it is a real bound on ``done``, else None (unknown).

    With mid-circuit measurements a circuit's steps are run once per branch, so
    the engine's ``done`` can pass the plan's ``total``; a line never says
    "step 3408 of 230" then, it says "step 3408".
    """
    if isinstance(total, int) and not isinstance(total, bool) and total > 0 and done <= total:
        return total
    return None


def make_listener(mode: Any, stream: Optional[TextIO] = None) -> ProgressListener:
    """A listener for ``mode``: a listener itself, True ("bar" on a terminal, else "log"),
    "bar", "log", or False/None (silent)."""
    if isinstance(mode, ProgressListener):
        return mode
    stream = stream if stream is not None else sys.stderr
    if mode is True:
        mode = "bar" if _isatty(stream) else "log"
    if mode == "bar":
        return ProgressBar(stream)
    if mode == "log":
        return ProgressLog(stream)
    if mode in (False, None):
        return ProgressListener()
    raise ValueError(f"progress={mode!r}: expecting True, False, 'bar', 'log' or a ProgressListener")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"
