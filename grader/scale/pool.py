"""The grading workers of --jobs above 1, which `grade` starts before it imports torch: the
workers import theirs meanwhile, instead of after it. Each grades with kernel pools of its
own (grader/scale/units.py), made at its first unit."""

from __future__ import annotations

import atexit
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.process import BaseProcess

from grader.imports import import_uncollected
from grader.sandbox.host import THREAD_VARIABLES, share_of_cores
from grader.scale import interrupt

_EARLY: dict[int, tuple[ProcessPoolExecutor, set[BaseProcess]]] = {}  # by jobs, and workers


def start_worker(threads: int) -> None:
    """A worker's start: its share of the cores (oversubscribed thread pools made an epoch
    30× slower with two workers on two cores), signals that stop only the unit it grades,
    and the course's own exercise modules, which the settings sent to it refer to."""
    import_uncollected("torch", "grader.authoring.exercise")  # in the worker: its own
    import torch

    from grader.authoring.exercise import available

    interrupt.listen_in_worker()
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    torch.set_num_threads(threads)
    available()


def new_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` workers. Spawned, not forked: a fork of a process whose torch thread pools
    already ran can hang in its first parallel op (seen: a worker stuck in
    torch.multinomial)."""
    return ProcessPoolExecutor(max_workers=jobs, initializer=start_worker,
                               initargs=(share_of_cores(jobs),),
                               mp_context=multiprocessing.get_context("spawn"))


def start_early(jobs: int) -> None:
    """Spawn the workers now (each task spawns one while none is idle); the batch takes
    them (worker_pool), and ones it never took are stopped by stop_untaken."""
    before = set(multiprocessing.active_children())
    pool = new_pool(jobs)
    for _ in range(jobs):
        pool.submit(int)
    _EARLY[jobs] = pool, set(multiprocessing.active_children()) - before
    atexit.register(stop_untaken)


def stop_untaken() -> None:
    """Stop the workers started early that no batch took (at the latest at exit): still
    importing or idle, they have nothing to lose."""
    while _EARLY:
        _, (pool, workers) = _EARLY.popitem()
        for worker in workers:
            worker.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """The workers started early for `jobs`, else new ones."""
    early = _EARLY.pop(jobs, None)
    return early[0] if early else new_pool(jobs)
