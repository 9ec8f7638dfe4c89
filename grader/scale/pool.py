"""The grading workers of --jobs above 1, which `grade` starts before it imports torch: the
workers import theirs meanwhile, instead of after it."""

from __future__ import annotations

import atexit
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

Key = tuple[int, tuple[Path, ...]]
_EARLY: dict[Key, ProcessPoolExecutor] = {}


def worker_threads(jobs: int) -> int:
    """Each worker's share of the cores, for its torch and its kernels."""
    return max(1, (os.cpu_count() or 1) // jobs)


def start_worker(threads: int, hidden: tuple[Path, ...]) -> None:
    from grader.scale.units import prepare_worker  # in the worker: its own imports

    prepare_worker(threads, hidden)


def new_pool(jobs: int, hidden: tuple[Path, ...]) -> ProcessPoolExecutor:
    """`jobs` workers whose kernels do not see `hidden`. Spawned, not forked: a fork of a
    process whose torch thread pools already ran can hang in its first parallel op (seen: a
    worker stuck in torch.multinomial)."""
    return ProcessPoolExecutor(max_workers=jobs, initializer=start_worker,
                               initargs=(worker_threads(jobs), hidden),
                               mp_context=multiprocessing.get_context("spawn"))


def start_early(jobs: int, hidden: tuple[Path, ...]) -> None:
    """Spawn the workers now (each task spawns one while none is idle); the batch takes
    them (worker_pool), and ones it never took are stopped by stop_untaken."""
    pool = new_pool(jobs, hidden)
    for _ in range(jobs):
        pool.submit(int)
    _EARLY[(jobs, hidden)] = pool
    atexit.register(stop_untaken)


def stop_untaken() -> None:
    """Stop the workers started early that no batch took (at the latest at exit): still
    importing or idle, they have nothing to lose."""
    while _EARLY:
        _, pool = _EARLY.popitem()
        for worker in multiprocessing.active_children():
            worker.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def worker_pool(jobs: int, hidden: tuple[Path, ...]) -> ProcessPoolExecutor:
    """The workers started early for these jobs and hidden folders, else new ones."""
    return _EARLY.pop((jobs, hidden), None) or new_pool(jobs, hidden)
