"""The grading workers `grade` starts before importing torch: the batch takes them, and
ones it never took are stopped at exit without waiting for their imports."""

from __future__ import annotations

import multiprocessing
import time

from grader.scale import pool


def test_the_workers_started_early_are_the_batchs():
    pool.start_early(2)
    early, workers = pool._EARLY[2]
    assert len(workers) == 2 and all(w.is_alive() for w in workers)  # spawned, importing
    with pool.worker_pool(3) as other:
        assert other is not early  # other jobs: other workers
    taken = pool.worker_pool(2)
    assert taken is early and not pool._EARLY
    with taken:
        assert taken.submit(pow, 2, 5).result(timeout=120) == 32
    pool.stop_untaken()  # nothing left to stop


def test_workers_never_taken_are_stopped_at_exit():
    bystander = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    bystander.start()  # a child of the caller's own, which is no worker of the pool's
    try:
        pool.start_early(2)
        _, workers = pool._EARLY[2]
        pool.stop_untaken()
        assert not pool._EARLY
        assert all(not worker.is_alive() for worker in workers)
        assert bystander.is_alive()
    finally:
        bystander.terminate()
        bystander.join()
