"""Grading on a Dask cluster: a real scheduler and `dask worker` processes on loopback, one
of them killed mid-batch, one with another course (refused); `--scheduler local` through
the CLI. Nothing is lost or written twice, and the results are those of grading here."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from conftest import (
    BLANK,
    COLUMNS_SOFTMAX,
    FAST,
    NOTEBOOK,
    SOLUTION,
    TEST_COURSE,
    with_functions,
    write_notebook,
)
from distributed import Client

from grader.authoring.course import ENV_VAR
from grader.authoring.exercise import available
from grader.cli import main
from grader.scale import distributed as cluster
from grader.scale.batch import grade_folder
from grader.scale.fingerprint import Fingerprint

TIMED = {check.full_name for e in available().values() for check in e.checks if check.timed}
START_SECONDS = 60


class Scheduler:
    """A `dask scheduler` on loopback and the `dask worker` processes started for it, each
    in a session of its own, so that killing one takes everything it started along."""

    def __init__(self, folder: Path):
        self.file = folder / "scheduler.json"
        self.workers: dict[str, subprocess.Popen] = {}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(self.file)],
            start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while not self.file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        self.client = Client(scheduler_file=str(self.file), timeout=START_SECONDS)

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def start_worker(self, name: str, course: Path = TEST_COURSE.root) -> None:
        """A worker of one thread (as on two shared cores), without a nanny to revive it."""
        env = {**os.environ, ENV_VAR: str(course), "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--name", name,
             "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
            env=env, start_new_session=True)
        self.client.wait_for_workers(len(self.workers), timeout=START_SECONDS)

    def kill(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait()

    def close(self) -> None:
        self.client.close()
        for process in [*self.workers.values(), self.process]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def scheduler(folder: Path):
    started = Scheduler(folder)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def other_course(tmp_path_factory) -> Path:
    """The test course with another grading seed: a worker using it must be refused."""
    course = tmp_path_factory.mktemp("other") / "course"
    shutil.copytree(TEST_COURSE.root, course)
    settings = course / "assignments" / f"{NOTEBOOK}.toml"
    settings.write_text(settings.read_text().replace("seed = 20240817", "seed = 1"))
    return course


def kill_a_busy_worker(running: Scheduler, killed: list[str], stop: threading.Event) -> None:
    """Kill the first worker seen grading, a few seconds into its submission."""
    while not stop.is_set():
        busy = {address: keys for address, keys in running.client.processing().items() if keys}
        if busy:
            address, keys = next(iter(busy.items()))
            time.sleep(4)  # its kernel runs the notebook by now
            name = running.client.scheduler_info()["workers"][address]["name"]
            running.kill(name)
            killed.extend(keys)
            return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def graded_on_a_cluster(tmp_path_factory, other_course):
    """A mixed class graded by two workers, one killed mid-batch, beside a refused one."""
    root = tmp_path_factory.mktemp("cluster")
    submissions = root / "submissions"
    # Written as the session fixtures write them: the same bytes, so the same digest and
    # the same inputs as solution_result and blank_result.
    write_notebook(nbformat.read(SOLUTION, as_version=4), submissions / "solution.ipynb")
    write_notebook(nbformat.read(BLANK, as_version=4), submissions / "blank.ipynb")
    write_notebook(with_functions({"softmax": COLUMNS_SOFTMAX}),
                   submissions / "columns.ipynb")
    (submissions / "carol.ipynb").write_text("{ not a notebook")
    (submissions / "dave").mkdir()
    saved: list[str] = []
    save = cluster.save_outputs

    def counted(result, out):
        saved.append(f"{result.student}/{result.assignment}")
        save(result, out)

    with scheduler(root) as running, pytest.MonkeyPatch.context() as patch:
        patch.setattr(cluster, "save_outputs", counted)
        for name in ("w1", "w2"):
            running.start_worker(name)
        running.start_worker("other-course", other_course)
        killed: list[str] = []
        stop = threading.Event()
        killer = threading.Thread(target=kill_a_busy_worker, args=(running, killed, stop))
        killer.start()
        try:
            report = grade_folder(submissions, root / "out", [FAST], scheduler=running.address)
        finally:
            stop.set()
            killer.join()
    return report, root / "out", saved, killed


def verdicts(result) -> dict[str, tuple]:
    """Each untimed test's verdict, points and message (timings vary from run to run)."""
    return {t.name: (t.passed, t.points, t.message) for t in result.tests
            if t.name not in TIMED}


def test_every_submission_is_graded_once_though_a_worker_died(graded_on_a_cluster):
    report, out, saved, killed = graded_on_a_cluster
    labels = [f"{s}/{NOTEBOOK}" for s in ("blank", "carol", "columns", "dave", "solution")]
    assert len(killed) == 1, "no worker was seen grading"
    assert any(label in killed[0] for label in labels)
    assert not report.faults
    assert sorted(report.graded) == labels
    assert sorted(saved) == sorted(label for label in labels
                                   if not label.startswith("dave/"))  # no kernel: graded here
    assert sorted(str(p.relative_to(out).parent) for p in out.glob("*/*/results.json")) == labels
    assert not list(out.rglob("*.tmp"))
    assert (out / "grades.csv").read_text().count(f",{NOTEBOOK},") == len(labels)


def test_results_equal_those_graded_here(graded_on_a_cluster, solution_result, blank_result):
    report, _, _, _ = graded_on_a_cluster
    stuck = [note for r in [*report.results, solution_result, blank_result] for note in r.notes
             if "could not start" in note]
    assert not stuck, f"no kernel started (the machine is too busy?): {stuck[:1]}"
    by_student = {result.student: result for result in report.results}
    assert all(passed for passed, _, _ in verdicts(by_student["solution"]).values())
    for local in (solution_result, blank_result):
        remote = by_student[local.student]
        assert (remote.digest, remote.config_digest) == (local.digest, local.config_digest)
        assert verdicts(remote) == verdicts(local)
        assert remote.source.endswith(f"submissions/{local.student}.ipynb")
    columns = by_student["columns"]
    failed = {name for name, (passed, _, _) in verdicts(columns).items() if not passed}
    assert "softmax.rows_sum_to_one" in failed  # the bug, and what training with it gives
    assert {name.split(".")[0] for name in failed} <= {"softmax", "softmax_training"}


def test_a_worker_with_another_course_is_refused_and_says_why(graded_on_a_cluster):
    report, _, _, _ = graded_on_a_cluster
    refused = [p for p in report.problems if "refused" in p]
    assert len(refused) == 1
    assert "its course differs" in refused[0] and "DL_GRADER_COURSE" in refused[0]


def test_no_worker_or_only_refused_ones_is_an_error(tmp_path, other_course, monkeypatch):
    write_notebook(with_functions({}, base=BLANK), tmp_path / "s" / "x.ipynb")
    monkeypatch.setattr(cluster, "FIRST_WORKER_SECONDS", 1)
    with scheduler(tmp_path) as running:
        with pytest.raises(cluster.ClusterError, match="no worker joined the scheduler"):
            grade_folder(tmp_path / "s", tmp_path / "o", [FAST], scheduler=running.address)
        running.start_worker("other-course", other_course)
        with pytest.raises(cluster.ClusterError) as error:
            grade_folder(tmp_path / "s", tmp_path / "o", [FAST], scheduler=running.address)
    assert "no worker grades as this machine does" in str(error.value)
    assert "its course differs" in str(error.value)
    assert not list((tmp_path / "o").glob("*/*/results.json"))


def test_an_unreachable_scheduler_is_a_usage_error(tmp_path, monkeypatch):
    write_notebook(with_functions({}, base=BLANK), tmp_path / "s" / "x.ipynb")
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    result = CliRunner().invoke(main, [str(tmp_path / "s"), "--out", str(tmp_path / "o"),
                                       "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output


def test_scheduler_local_grades_through_the_cli(tmp_path, blank_result):
    write_notebook(nbformat.read(BLANK, as_version=4), tmp_path / "s" / "blank.ipynb")
    (tmp_path / "s" / "carol.ipynb").write_text("{ not a notebook")
    result = CliRunner().invoke(main, [str(tmp_path / "s"), "--out", str(tmp_path / "o"),
                                       "--scheduler", "local", "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert f"blank/{NOTEBOOK}" in result.stdout and f"carol/{NOTEBOOK}" in result.stdout
    saved = (tmp_path / "o" / "blank" / NOTEBOOK / "results.json").read_text()
    assert f'"score": {blank_result.score}' in saved


def test_each_difference_is_named_with_what_to_do():
    here = Fingerprint("0.1.0 (code a)", "course-a", "data-a")
    assert here.differences(here) == []
    said = Fingerprint("0.2.0 (code b)", "course-a", "data-b").differences(here)
    assert len(said) == 2
    assert "its grader differs (0.2.0 (code b), expected 0.1.0 (code a))" in said[0]
    assert "its data differs" in said[1] and "FASHION_MNIST_DIR" in said[1]


def worker_threads() -> tuple[str | None, int]:
    import torch

    return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_local_cluster_splits_the_cores_between_its_workers(workers, monkeypatch):
    """As --jobs does: each worker's torch and kernels get cores / workers threads (Dask
    would give each one), and the nanny's settings do not stay in the grader's environment."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = max(1, (os.cpu_count() or 1) // workers)
    with cluster.connected(cluster.LOCAL, workers) as client:
        seen = client.run(worker_threads)
    assert list(seen.values()) == [(str(share), share)] * workers
    assert "OMP_NUM_THREADS" not in os.environ
