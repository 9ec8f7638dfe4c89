"""An interrupt loses nothing: a real `grade --jobs 2` batch stopped by a terminal's Ctrl-C
(SIGINT to its process group) early, then by a SIGTERM to `grade` alone in the middle,
saves no unit it did not finish, exits with the signal's code saying how to resume, and
the resumed batch ends with an uninterrupted batch's scores. A result that is a grader
fault (a kernel that could not be forked) is no score and is never kept by a resume."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from conftest import SETTINGS, TEST_COURSE, code, with_functions, write_notebook

from grader import __version__
from grader.authoring.course import BUNDLED, ENV_VAR
from grader.cli import main
from grader.grading.grade import grade_submission
from grader.grading.results import Result, TestResult, load_result, save_result
from grader.sandbox.bwrap import forks_kernels, hiding
from grader.sandbox.kernels import KernelPool, descendants
from grader.scale import interrupt
from grader.scale.batch import BatchReport, up_to_date
from grader.scale.units import Unit, save_outputs
from grader.students.submissions import Submission

ASSIGNMENT = "preliminaries"  # the smallest: no Fashion-MNIST, no timed step
REFERENCE = BUNDLED.reference / f"{ASSIGNMENT}.ipynb"
UNNORMALISED = code("""
    def normal(x, mu, sigma):
        x = torch.as_tensor(x, dtype=torch.float32)
        return torch.exp(-(x - mu) ** 2 / (2 * sigma ** 2))
    """)
INTERRUPTED = re.compile(r"interrupted: (\d+) graded, (\d+) left; run the same command to resume")
GRADE = "from grader.cli import main; main()"
RUN_SECONDS = 600


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path
    saved: dict[str, Result]  # what `out` holds once the run ended, by student/assignment


def saved_results(out: Path) -> dict[str, Result]:
    return {f"{path.parent.parent.name}/{path.parent.name}": load_result(path)
            for path in out.glob("*/*/results.json")}


def marks(result: Result) -> dict[str, float]:
    return {test.name: test.points for test in result.tests}


def grade(folder: Path, out: Path, stop: Callable[[subprocess.Popen, Path], bool] | None = None,
          ) -> Run:
    """`grade --jobs 2` as a terminal runs it (a process group of its own); `stop`, polled
    while it runs, signals it once it says so."""
    log = out.parent / f"{out.name}.{time.monotonic_ns()}.stderr"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", GRADE, "--course", str(BUNDLED.root), str(folder), "--out",
             str(out), "--jobs", "2", "--assignment", ASSIGNMENT, "--json"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
        deadline = time.monotonic() + RUN_SECONDS
        while stop is not None and process.poll() is None and time.monotonic() < deadline:
            if stop(process, log):
                break
            time.sleep(0.1)
        stdout, _ = process.communicate(timeout=RUN_SECONDS)
    return Run(process.returncode, stdout, log.read_text(), out, saved_results(out))


def kernels_below(pid: int) -> set[int]:
    """The kernels (or the fork servers they come from) below process `pid`."""
    found = set()
    for child in descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"grader.sandbox.forkserver" in command or b"ipykernel" in command:
            found.add(child)
    return found


def kernels_running(pid: int) -> set[int]:
    """The kernels themselves below `pid`: their parent, which `grade` starts first, is
    not one (a forked kernel runs under a uid of its own)."""
    running = set()
    for child in kernels_below(pid):
        with contextlib.suppress(OSError):  # one that ended as it was looked at
            if (b"ipykernel" in Path(f"/proc/{child}/cmdline").read_bytes()
                    or Path(f"/proc/{child}").stat().st_uid != os.getuid()):
                running.add(child)
    return running


def ctrl_c_once_a_kernel_starts(process: subprocess.Popen, log: Path) -> bool:
    """Early: a worker has started a kernel."""
    if kernels_running(process.pid):
        os.killpg(process.pid, signal.SIGINT)
        return True
    return False


def sigterm_once_a_unit_is_graded(process: subprocess.Popen, log: Path) -> bool:
    """In the middle: one unit of this run is graded, others are not; only `grade` itself
    is told, as `kill PID` or a scheduler does."""
    if f"/{ASSIGNMENT}: " in log.read_text():
        process.send_signal(signal.SIGTERM)
        return True
    return False


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """A class graded once without interruption, and once interrupted early, resumed and
    interrupted in the middle, then resumed to the end."""
    root = tmp_path_factory.mktemp("interrupted")
    folder = root / "submissions"
    write_notebook(nbformat.read(REFERENCE, as_version=4), folder / "ann.ipynb")
    write_notebook(with_functions({"normal": UNNORMALISED}, base=REFERENCE),
                   folder / "bea.ipynb")
    write_notebook(nbformat.read(BUNDLED.exercises / f"{ASSIGNMENT}.ipynb", as_version=4),
                   folder / "cal.ipynb")
    whole = grade(folder, root / "whole")
    assert whole.code == 0, whole.stderr
    out = root / "out"
    early = grade(folder, out, ctrl_c_once_a_kernel_starts)
    middle = grade(folder, out, sigterm_once_a_unit_is_graded)
    resumed = grade(folder, out)
    return whole, {"early": early, "middle": middle}, resumed


def test_an_interrupted_batch_exits_with_the_signals_code_saying_how_to_resume(batches):
    _, stopped, _ = batches
    for point, code_ in (("early", 130), ("middle", 143)):
        run = stopped[point]
        assert run.code == code_, f"{point}: {run.stderr}"
        said = INTERRUPTED.search(run.stderr)
        assert said, f"{point}: {run.stderr}"
        graded, left = map(int, said.groups())
        assert left > 0 and graded <= len(run.saved), f"{point}: {said[0]}"
        assert "Aborted" not in run.stderr and run.stdout == ""


def test_an_interrupt_saves_no_unit_it_did_not_finish(batches):
    whole, stopped, _ = batches
    assert sorted(whole.saved) == [f"{s}/{ASSIGNMENT}" for s in ("ann", "bea", "cal")]
    scores = {label: result.score for label, result in whole.saved.items()}
    assert scores[f"ann/{ASSIGNMENT}"] > scores[f"bea/{ASSIGNMENT}"] > scores[f"cal/{ASSIGNMENT}"]
    for point, run in stopped.items():
        for label, result in run.saved.items():
            assert result.fault is None, f"{point}: {label} saved with a fault: {result.fault}"
            assert marks(result) == marks(whole.saved[label]), f"{point}: {label}"


def test_the_resumed_batch_ends_with_the_uninterrupted_scores(batches):
    whole, stopped, resumed = batches
    assert resumed.code == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert sorted(summary["unchanged"]) == sorted(stopped["middle"].saved)
    assert sorted(summary["graded"] + summary["unchanged"]) == sorted(whole.saved)
    assert summary["faults"] == []
    assert {label: marks(r) for label, r in resumed.saved.items()} == \
        {label: marks(r) for label, r in whole.saved.items()}
    assert (resumed.out / "grades.csv").read_text() == (whole.out / "grades.csv").read_text()


def test_ctrl_c_stops_a_jobs_1_batch_in_its_first_unit_and_closes_its_kernels(tmp_path,
                                                                              monkeypatch):
    """In --jobs 1 the unit is graded in `grade` itself: Ctrl-C stops it there."""
    monkeypatch.setenv(ENV_VAR, str(TEST_COURSE.root))  # `--course` sets it; put back after
    folder = tmp_path / "submissions"
    for student in ("ann", "bea"):
        write_notebook(nbformat.read(REFERENCE, as_version=4), folder / f"{student}.ipynb")
    earlier = kernels_below(os.getpid())
    started: set[int] = set()

    def ctrl_c_once_a_kernel_starts() -> None:
        deadline = time.monotonic() + RUN_SECONDS
        while not started and time.monotonic() < deadline:
            started.update(kernels_running(os.getpid()) - earlier)
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_once_a_kernel_starts, daemon=True).start()
    stopped = CliRunner().invoke(main, ["--course", str(BUNDLED.root), "run", str(folder),
                                        "--out", str(tmp_path / "out"), "--assignment",
                                        ASSIGNMENT])
    assert started, "no kernel started"
    assert stopped.exit_code == 130, stopped.output
    assert "interrupted: 0 graded, 2 left; run the same command to resume" in stopped.output
    assert not list((tmp_path / "out").glob("*/*/results.json"))
    assert not started & kernels_below(os.getpid())


def a_result(submission: Submission, fault: str | None = None) -> Result:
    settings = SETTINGS.resolved()
    return Result(submission.student, settings.notebook, str(submission.path),
                  submission.digest(), __version__, settings.digest(),
                  tests=[TestResult("softmax.rows_sum_to_one", "softmax", 1.0, 0.0, False,
                                    "not graded: the kernel could not start")],
                  fault=fault)


@pytest.fixture
def submission(tmp_path) -> Submission:
    path = write_notebook(with_functions({}), tmp_path / "submissions" / "ann.ipynb")
    return Submission("ann", path, [path])


def test_a_saved_grader_fault_is_not_up_to_date(submission, tmp_path):
    unit = Unit(submission, SETTINGS.resolved(), {SETTINGS.notebook: submission.path})
    out = tmp_path / "out"
    save_outputs(a_result(submission), out)
    assert up_to_date(unit, out) is not None  # the same result, without a fault, is kept
    save_outputs(a_result(submission, fault="the kernel could not start: Broken pipe"), out)
    assert up_to_date(unit, out) is None


def test_a_grader_fault_is_no_score_in_the_batch_or_the_gradebook(submission, tmp_path):
    report = BatchReport()
    faulty = a_result(submission, fault="the kernel could not start: Broken pipe")
    assert report.add("ann/x", faulty, None) is None
    assert report.faults == {"ann/x": faulty.fault} and report.results == []
    out = tmp_path / "out"
    save_result(faulty, out / "ann" / faulty.assignment / "results.json")
    fine = replace(a_result(submission), student="bob")
    save_result(fine, out / "bob" / fine.assignment / "results.json")
    written = CliRunner().invoke(main, ["gradebook", str(out)])
    assert written.exit_code == 0, written.output
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[2:]] == ["bob"]


def test_nothing_graded_after_a_signal_is_saved(submission, tmp_path):
    """A result can come back after a signal (its kernel killed by the same Ctrl-C, the
    interrupt swallowed on its way): it is not the student's, so it is not saved."""
    out = tmp_path / "out"
    with interrupt.stopping_on_signals():
        with pytest.raises(interrupt.Interrupted) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert stopped.value.exit_code == 143
        with pytest.raises(interrupt.Interrupted):
            save_outputs(a_result(submission), out)
    assert not out.exists()
    save_outputs(a_result(submission), out)  # a later run of the same process saves again
    assert (out / "ann" / SETTINGS.notebook / "results.json").exists()


@pytest.mark.skipif(not forks_kernels(SETTINGS.sandbox), reason="kernels are forked only as "
                    "root with bubblewrap")
def test_a_kernel_that_could_not_be_forked_is_a_grader_fault(submission, tmp_path):
    """The issue's Ctrl-C killed the fork servers: every unit after it was saved as 0."""
    pool = KernelPool(hiding(SETTINGS.sandbox, tmp_path), gpu=False, ahead=False)
    pool.forks.process.kill()
    try:
        result = grade_submission(submission, SETTINGS, pool)
    finally:
        pool.close()
    assert result.fault and "could not be forked" in result.fault
    assert all("could not start" in test.message for test in result.tests)
    assert any("grader's fault" in note for note in result.notes)
