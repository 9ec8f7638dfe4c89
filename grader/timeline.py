"""Where one grading process's seconds go, for `grade --profile` and the bench's breakdown:
spans of named phases, timed from when the grader started.

Recorded only once `enable()` was called, and in this process only: with --jobs above 1,
the workers' own phases stay in the workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

STARTED = time.perf_counter()  # `grade` imports this module first


@dataclass(frozen=True)
class Span:
    name: str
    start: float  # seconds from STARTED
    seconds: float


_SPANS: list[Span] | None = None


def enable(on: bool = True) -> None:
    """Record from now on (forgetting what was), or no more."""
    global _SPANS
    _SPANS = [] if on else None


def record(name: str, began: float, ended: float | None = None) -> None:
    """A phase from `began` to `ended` (now by default), perf_counter's seconds."""
    if _SPANS is not None:
        ended = time.perf_counter() if ended is None else ended
        _SPANS.append(Span(name, began - STARTED, ended - began))


@contextmanager
def span(name: str) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        record(name, began)


def spans() -> list[Span]:
    """What was recorded, in the order the phases began."""
    return sorted(_SPANS or [], key=lambda found: found.start)


def elapsed() -> float:
    return time.perf_counter() - STARTED
