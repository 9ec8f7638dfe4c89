"""The grading workers `grade` starts before importing torch: the batch takes them, and
ones it never took are stopped at exit without waiting for their imports."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from grader.scale import pool


def test_the_workers_started_early_are_the_batchs(tmp_path):
    hidden = (tmp_path / "submissions", tmp_path / "out")
    pool.start_early(2, hidden)
    early = pool._EARLY[(2, hidden)]
    assert len(multiprocessing.active_children()) >= 2  # spawned already, importing
    with pool.worker_pool(3, hidden) as other:
        assert other is not early  # other jobs: other workers
    taken = pool.worker_pool(2, hidden)
    assert taken is early and not pool._EARLY
    with taken:
        assert taken.submit(pow, 2, 5).result(timeout=120) == 32
    pool.stop_untaken()  # nothing left to stop


def test_workers_never_taken_are_stopped_at_exit(tmp_path):
    hidden = (Path("/nowhere"), tmp_path)
    pool.start_early(2, hidden)
    workers = multiprocessing.active_children()
    pool.stop_untaken()
    assert not pool._EARLY
    assert all(not worker.is_alive() for worker in workers)
