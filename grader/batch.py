"""Grading a folder: every submission, in parallel, resumable, then the class outputs.

Each submission's results.json and report.html are written atomically as soon as it is
graded, so an interrupted batch resumes where it stopped: a finished submission is graded
again only if its content, the grader version or the settings changed.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader import __version__
from grader.config import Settings
from grader.grade import grade_submission
from grader.kernels import KernelPool
from grader.report import write_grades_csv, write_report, write_summary
from grader.results import Result, load_result, save_result
from grader.sandbox import hiding
from grader.submissions import Submission, discover


@dataclass
class BatchReport:
    """What a batch did, for the CLI's summary and exit code."""

    results: list[Result] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def result_path(out: Path, student: str) -> Path:
    return out / student / "results.json"


def up_to_date(submission: Submission, out: Path, settings: Settings) -> Result | None:
    """The earlier result for this submission, if nothing that decides its score changed."""
    path = result_path(out, submission.student)
    try:
        previous = load_result(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    same = (previous.digest == submission.digest()
            and previous.grader_version == __version__
            and previous.config_digest == settings.digest())
    return previous if same else None


_WORKER_KERNELS: KernelPool | None = None


def grade_and_save(submission: Submission, settings: Settings, out: Path,
                   kernels: KernelPool | None = None) -> Result:
    """Grade one submission and write its results and report (runs in a worker process)."""
    result = grade_submission(submission, settings, kernels or _WORKER_KERNELS)
    folder = out / submission.student
    save_result(result, folder / "results.json")
    write_report(result, folder)
    return result


def start_worker(threads: int, settings: Settings, hidden: tuple[Path, ...]) -> None:
    """A grading worker: its share of the cores, and a kernel pool of its own.

    Oversubscribed thread pools made an epoch 30× slower with two workers on two cores.
    """
    global _WORKER_KERNELS
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)
    _WORKER_KERNELS = kernel_pool(settings, hidden)
    atexit.register(_WORKER_KERNELS.close)


def kernel_pool(settings: Settings, hidden: tuple[Path, ...]) -> KernelPool:
    """Kernels that see neither the submissions nor the reports (`hidden`)."""
    return KernelPool(hiding(settings.sandbox, *hidden), gpu=settings.device.startswith("cuda"))


def run_all(pending: list[Submission], settings: Settings, out: Path, jobs: int,
            hidden: tuple[Path, ...]) -> Iterator[tuple[Submission, Result | None, str | None]]:
    """Yield (submission, result, fault) as each finishes; a fault is the grader's bug."""
    if jobs <= 1:
        kernels = kernel_pool(settings, hidden)
        try:
            for submission in pending:
                # No kernel boots ahead of nothing: after the last, it would only take cycles.
                kernels.ahead = submission is not pending[-1]
                try:
                    yield submission, grade_and_save(submission, settings, out, kernels), None
                except Exception:  # noqa: BLE001 - one grader fault must not sink the batch
                    yield submission, None, traceback.format_exc()
        finally:
            kernels.close()
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # Spawned, not forked: a fork of a process whose torch thread pools already ran can hang
    # in its first parallel op (seen: a worker stuck in torch.multinomial).
    with ProcessPoolExecutor(max_workers=jobs, initializer=start_worker,
                             initargs=(threads, settings, hidden),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(grade_and_save, s, settings, out): s for s in pending}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result(), None
            except Exception:  # noqa: BLE001 - includes a worker that died
                yield futures[future], None, traceback.format_exc()


def earlier_results(submissions: list[Submission], report: BatchReport,
                    out: Path) -> list[Result]:
    """Results already on disk for students this run left alone (--only), for the class files."""
    done = {r.student for r in report.results} | set(report.faults)
    earlier = []
    for submission in submissions:
        if submission.student not in done:
            try:
                earlier.append(load_result(result_path(out, submission.student)))
            except (OSError, ValueError, TypeError, KeyError):
                continue
    return earlier


def grade_folder(folder: Path, out: Path, settings: Settings, jobs: int = 1,
                 force: bool = False, only: set[str] | None = None,
                 on_progress: Callable[[int, int, list[str]], None] = lambda *_: None,
                 ) -> BatchReport:
    """Grade every submission in `folder` into `out`, then write grades.csv and summary.html."""
    settings = settings.resolved()
    submissions, problems = discover(folder)
    submissions_all = list(submissions)
    if only:
        unknown = only - {s.student for s in submissions}
        if unknown:
            raise LookupError(f"no submission for: {', '.join(sorted(unknown))}")
        submissions = [s for s in submissions if s.student in only]
    report = BatchReport(problems=problems)
    report.problems.extend(p for s in submissions for p in s.problems)
    pending = []
    for submission in submissions:
        previous = None if force else up_to_date(submission, out, settings)
        if previous is None:
            pending.append(submission)
        else:
            report.results.append(previous)
            report.reused.append(submission.student)
    unfinished = [s.student for s in pending]
    on_progress(0, len(pending), unfinished[:jobs])
    out.mkdir(parents=True, exist_ok=True)  # made now, so the kernels' sandbox can hide it
    for submission, result, fault in run_all(pending, settings, out, jobs, (folder, out)):
        if result is None:
            report.faults[submission.student] = fault or "unknown fault"
        else:
            report.results.append(result)
            report.graded.append(submission.student)
        unfinished.remove(submission.student)
        # Workers take submissions in order: the next `jobs` unfinished are the ones running.
        on_progress(len(pending) - len(unfinished), len(pending), unfinished[:jobs])
    report.results.extend(earlier_results(submissions_all, report, out))
    report.results.sort(key=lambda r: r.student)
    write_grades_csv(report.results, out / "grades.csv")
    write_summary(report.results, out / "summary.html")
    return report
