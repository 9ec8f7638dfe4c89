"""Grading units on this machine: one assignment of one submission at a time, or in worker
processes, each saved as soon as it is graded.

Both a batch (grader/scale/batch.py) and a cluster's run (grader/scale/distributed.py, which grades
here what needs no kernel) use this; neither imports the other's module for it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from grader import timeline
from grader.authoring.config import Settings
from grader.grading.grade import grade_submission
from grader.grading.results import Result, save_result
from grader.outputs.report import write_report
from grader.sandbox.bwrap import hiding
from grader.sandbox.kernels import KernelPool
from grader.scale import interrupt
from grader.scale.pool import worker_pool
from grader.students.submissions import Submission


@dataclass
class Unit:
    """One assignment of one submission: what is graded, saved and reused as a whole."""

    submission: Submission
    settings: Settings
    matched: dict[str, Path]  # which submitted file is which assignment's

    @property
    def label(self) -> str:
        return f"{self.submission.student}/{self.settings.notebook}"

    @property
    def absent(self) -> bool:
        """Nothing handed in for this assignment: told without a kernel or a worker."""
        return self.settings.notebook not in self.matched and not self.submission.refused


def result_path(out: Path, student: str, assignment: str) -> Path:
    return out / student / assignment / "results.json"


class KernelPools:
    """A kernel pool per sandbox: the assignments that share one share its kernels, which
    see neither the submissions nor the reports (`hidden`)."""

    def __init__(self, hidden: tuple[Path, ...]):
        self.hidden = hidden
        self.pools: dict[tuple, KernelPool] = {}

    def __call__(self, settings: Settings) -> KernelPool:
        key = (settings.sandbox, settings.device)
        if key not in self.pools:
            self.pools[key] = KernelPool(hiding(settings.sandbox, *self.hidden),
                                         gpu=settings.device.startswith("cuda"))
        return self.pools[key]

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


_WORKER_KERNELS: KernelPools | None = None


def worker_kernels(hidden: tuple[Path, ...]) -> KernelPools:
    """A worker process's kernel pools (grader/scale/pool.py), made at its first unit."""
    global _WORKER_KERNELS
    if _WORKER_KERNELS is None:
        _WORKER_KERNELS = KernelPools(hidden)
        atexit.register(_WORKER_KERNELS.close)
    return _WORKER_KERNELS


def grade_and_save(unit: Unit, out: Path, kernels: KernelPools | None = None,
                   hidden: tuple[Path, ...] = ()) -> Result:
    """Grade one unit and write its results and report: with `kernels`, or in a worker
    process with its own, which see none of `hidden`."""
    pools = kernels or worker_kernels(hidden)
    with interrupt.grading():
        result = grade_submission(unit.submission, unit.settings, pools(unit.settings),
                                  unit.matched)
        save_outputs(result, out)
    return result


def save_outputs(result: Result, out: Path) -> None:
    """A unit's report.html, then its results.json (what resume reads as done), each
    written whole; nothing once a signal came, as the result may be its casualty."""
    interrupt.check()
    with timeline.span("the report and results.json"):
        write_report(result, out)
        save_result(result, result_path(out, result.student, result.assignment))


def grade_here(pending: list[Unit], out: Path, jobs: int, hidden: tuple[Path, ...],
               ) -> Iterator[tuple[Unit, Result | None, str | None]]:
    """Yield (unit, result, fault) as each finishes on this machine, in `jobs` worker
    processes (or this one, for 1); a fault is the grader's bug."""
    if jobs <= 1:
        yield from grade_in_turn(pending, out, hidden)
        return
    with worker_pool(jobs) as pool:
        try:
            futures = {pool.submit(grade_and_save, unit, out, None, hidden): unit
                       for unit in pending}
            for future in as_completed(futures):
                try:
                    yield futures[future], future.result(), None
                except Exception:  # noqa: BLE001 - includes a worker that died
                    yield futures[future], None, traceback.format_exc()
        except BaseException:  # an interrupt, or a caller that stopped listening
            stop_workers(pool)
            raise


def grade_in_turn(pending: list[Unit], out: Path, hidden: tuple[Path, ...],
                  ) -> Iterator[tuple[Unit, Result | None, str | None]]:
    """Each unit in this process, one after the other, with kernel pools of its own."""
    kernels = KernelPools(hidden)
    try:
        for unit in pending:
            # No kernel boots ahead of nothing: after the last, it would only take cycles.
            kernels(unit.settings).ahead = unit is not pending[-1]
            try:
                yield unit, grade_and_save(unit, out, kernels), None
            except Exception:  # noqa: BLE001 - one grader fault must not sink the batch
                yield unit, None, traceback.format_exc()
    finally:
        kernels.close()


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop what the workers grade (a SIGTERM, as a terminal's Ctrl-C may not have reached
    them) without saving it, drop what they have not started, and wait for them to close
    their kernels."""
    for worker in multiprocessing.active_children():  # in `grade`, only the pool's workers
        worker.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
