"""Stopping on a signal without saving anything half-done.

A terminal's Ctrl-C sends SIGINT to its whole foreground process group: `grade` and its
workers (and, unless they run in a session of their own, their fork servers and kernels).
SIGINT and SIGTERM therefore stop grading where it stands, as `Interrupted`; the code it
unwinds closes the kernels, and `check()` refuses to save a result once a signal came: one
graded while the signal was on its way (its kernel or fork server killed by the same
Ctrl-C, an interrupt swallowed on the way) is not the student's.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None  # the first signal this process received
_grading = False  # a worker is grading a unit: its first signal stops it


class Interrupted(KeyboardInterrupt):
    """A signal stopped grading: `graded` units were saved in this run and `left` were not
    (None: before the batch counted them)."""

    def __init__(self, signum: int = signal.SIGINT, graded: int = 0, left: int | None = None):
        super().__init__(signum, graded, left)
        self.signum, self.graded, self.left = signum, graded, left

    @property
    def exit_code(self) -> int:
        """As a shell reports a process the signal ended: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def message(self) -> str:
        done = "nothing graded yet" if self.left is None else \
            f"{self.graded} graded, {self.left} left"
        return f"interrupted: {done}; run the same command to resume"


def signal_of(error: BaseException) -> int:
    """The signal behind an interrupt (a plain KeyboardInterrupt is Ctrl-C's)."""
    return error.signum if isinstance(error, Interrupted) else signal.SIGINT


def _stop(signum: int, frame: FrameType | None) -> None:
    """The main process: every signal stops it where it stands, as Ctrl-C does by default."""
    global _received
    _received = _received or signum
    raise Interrupted(signum)


def _stop_unit(signum: int, frame: FrameType | None) -> None:
    """A worker: the first signal stops the unit it grades; later ones, or one while it
    waits for work, only mark it stopped, so unwinding (closing kernels) runs to the end
    and an idle worker does not die with a traceback."""
    global _received
    first = _received is None
    _received = _received or signum
    if first and _grading:
        raise Interrupted(signum)


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """In the main process: SIGINT and SIGTERM raise Interrupted; the previous handlers
    come back after, and a signal received here stops no later run of the same process."""
    global _received
    _received = None
    previous = {signum: signal.signal(signum, _stop) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received = None


def listen_in_worker() -> None:
    """In a worker process: signals stop only the unit being graded (see `grading`)."""
    for signum in SIGNALS:
        signal.signal(signum, _stop_unit)


@contextmanager
def grading() -> Iterator[None]:
    """A worker grades a unit: a signal now stops it. Refused at once after a signal."""
    global _grading
    check()
    before, _grading = _grading, True
    try:
        yield
    finally:
        _grading = before


def check() -> None:
    """Raise Interrupted if a signal came: nothing graded since may be saved."""
    if _received is not None:
        raise Interrupted(_received)
