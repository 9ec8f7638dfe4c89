"""One time budget per submission: every kernel run of a unit draws on it.

A unit may take several kernels: the first run, with the given demos left out; one more
with them, after a NameError only they could fix; fresh kernels past a cell or a probe that
killed one. Each once had total_timeout to itself, so one notebook could cost six of them.
They now share one deadline, and a cell or a probe may run only within what is left of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

OUT_OF_TIME = "OutOfTime"  # the error of a cell or probe the spent budget stopped or left unrun

# One whole run of the notebook and its probes and one whole rerun (with the demos, or past
# a cell that killed the kernel): all an honest notebook needs, as total_timeout is already
# a generous bound on one run. More would only buy time for a notebook that keeps failing.
BUDGET_RUNS = 2


@dataclass
class Budget:
    """The seconds a unit's kernels may take, from its first kernel on, and how many runs
    drew on them."""

    seconds: float
    ends: float  # on time.monotonic()'s clock
    runs: int = 0

    @classmethod
    def start(cls, total_timeout: float) -> Budget:
        seconds = BUDGET_RUNS * total_timeout
        return cls(seconds, time.monotonic() + seconds)

    def left(self) -> float:
        return self.ends - time.monotonic()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The grader's own wait between the kernel's cells (the reference, read before the
        first timed step) is given back: it is not the submission's time."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.ends += time.monotonic() - began

    def spent(self) -> bool:
        return self.left() <= 0

    def note(self) -> str:
        runs = f"{self.runs} kernel run{'s' if self.runs != 1 else ''}"
        return f"the submission used its whole time budget of {self.seconds:g} s across {runs}"
