"""The Gradescope autograder as Gradescope runs it: `grade gradescope` builds the zip, the
zip is unpacked into a root laid out as /autograder (sources in source/, run_autograder
copied beside it, the submission in submission/), the package it holds is installed into
a fresh environment, and run_autograder grades from there (no Docker engine exists here,
and setup.sh's downloads cannot run: the environment sees the system's torch instead).
run_autograder runs in a memory control group of its own where this machine allows, so
the peak of its whole process tree is measured against what the zip tells the instructor."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner
from conftest import NOTEBOOK, with_functions, write_notebook

from grader.authoring import course
from grader.authoring.autograder import (
    MEMORY_GB,
    container_environment,
    install_offline,
    lay_out,
    memory_advice,
)
from grader.authoring.course import BUNDLED, ENV_VAR
from grader.cli import main
from grader.grading.results import LATE, Adjustment, Result, TestResult, Timing
from grader.outputs.gradescope import gradescope_results, leaderboard
from grader.sandbox.cgroups import own_group
from grader.sandbox.janitor import remove_groups

ASSIGNMENT = "softmax_regression"
# A broken evaluate_accuracy whose error tries to add an image and a link to the page.
HOSTILE = ("def evaluate_accuracy(net, data_iter):\n"
           "    raise ValueError('<img src=x onerror=alert(1)> [click](http://evil)')\n")


SPEED_MARK = "softmax_training.epoch_is_fast_enough"


def run(command: list[str], cwd: Path | None = None, timeout: float = 600):
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@contextmanager
def memory_group() -> Iterator[Path | None]:
    """A cgroup v1 memory group below this process's own, for a run to measure its whole
    process tree (the kernels' groups nest below it); None where none can be made."""
    try:
        group = own_group("memory") / f"gradescope-test-{os.getpid()}"
        group.mkdir()
    except OSError:
        yield None
        return
    try:
        yield group
    finally:
        remove_groups(sorted(group.rglob("*/"), key=lambda p: -len(p.parts)) + [group], 50)


def run_autograder(root: Path, env: dict[str, str], group: Path | None):
    """run_autograder as Gradescope starts it, inside `group` where there is one."""
    enter = ["sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec "$@"', "sh"] if group \
        else []
    return subprocess.run([*enter, str(root / "run_autograder")], env=env, cwd=root,
                          capture_output=True, text=True, timeout=600)


class Autograded(NamedTuple):
    completed: subprocess.CompletedProcess
    root: Path  # laid out as /autograder
    modes: dict[str, int]  # the zip's members' file modes
    data: dict | None  # results.json
    peak_mib: float | None  # the run's whole process tree, where it could be measured


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    root = tmp_path_factory.mktemp("autograder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_VAR, str(BUNDLED.root))
        built = CliRunner().invoke(main, ["gradescope", "--assignment", ASSIGNMENT,
                                          "--out", str(root / "autograder.zip")])
    assert built.exit_code == 0, built.output
    modes = lay_out(root / "autograder.zip", root)
    python = install_offline(root)  # what setup.sh makes, the package built here
    write_notebook(with_functions({"evaluate_accuracy": HOSTILE},
                                  base=BUNDLED.reference / f"{ASSIGNMENT}.ipynb"),
                   root / "submission" / "homework" / "my_notebook.ipynb")
    with memory_group() as group:
        completed = run_autograder(root, container_environment(root, python), group)
        peak = group and int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
    results = root / "results" / "results.json"
    data = json.loads(results.read_text()) if results.exists() else None
    return Autograded(completed, root, modes, data, peak)


def entry_scores(data: dict) -> float:
    """The total Gradescope adds up where results.json gives none."""
    return sum(entry["score"] for entry in data["tests"] if "score" in entry)


def test_the_zip_is_laid_out_as_gradescope_wants(autograded):
    root, modes = autograded.root, autograded.modes
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    names = set(modes)
    assert {f"course/reference/{ASSIGNMENT}.ipynb", f"course/assignments/{ASSIGNMENT}.toml",
            f"course/public/{ASSIGNMENT}.pt", "package/pyproject.toml", "README.md",
            "package/grader/outputs/gradescope.py",
            "package/grader/outputs/templates/gradescope.md.j2"} <= names
    assert not [n for n in names if n.startswith("package/grader/course/")]  # no other course
    assert len([n for n in names if n.startswith("data/")]) == 4
    setup = (root / "source" / "setup.sh").read_text()
    assert "chromium" not in setup and "[test]" not in setup and "python3.11" in setup


def test_the_zip_says_how_much_memory_to_set(autograded):
    advice = memory_advice()
    assert f"at least {MEMORY_GB} GB" in advice and "measured peak" in advice
    for name in ("README.md", "setup.sh"):
        assert advice in (autograded.root / "source" / name).read_text()


def test_the_memory_stated_covers_the_measured_peak(autograded):
    """The whole tree's peak (grader, fork server, kernel) stays within what the zip tells
    the instructor to set; where it grows past it, the figure must be measured again."""
    if autograded.peak_mib is None:
        pytest.skip("no memory control group can be made here to measure the peak")
    print(f"run_autograder's peak: {autograded.peak_mib:.0f} MiB")
    assert autograded.peak_mib < MEMORY_GB * 1024, autograded.peak_mib


def test_run_autograder_grades_from_the_unpacked_layout(autograded):
    completed, root, data = autograded.completed, autograded.root, autograded.data
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert data is not None and "score" in completed.stdout
    assert data["execution_time"] > 0 and data["output_format"] == "md"
    tests = {t["name"]: t for t in data["tests"] if "score" in t}
    assert 0 < entry_scores(data) < sum(t["max_score"] for t in tests.values())
    failed = {name for name, t in tests.items() if t["status"] == "failed"}
    assert failed and all(name.startswith("evaluate_accuracy.") for name in failed)
    assert all(t["tags"] == [ASSIGNMENT, name.split(".")[0]] for name, t in tests.items())
    earned = tests[SPEED_MARK]["status"] == "passed"
    assert [e["name"] for e in data["leaderboard"]] == ["epoch.run time ratio"] * earned
    assert (root / "results" / "reports" / "submission" / ASSIGNMENT / "report.html").is_file()


def test_the_container_reads_the_reference_the_zip_ships(autograded):
    """`grade gradescope` observed the reference and put it in the zip, under the key the
    container computes: its grader read it, and kept no entry of its own."""
    shipped = [name for name in autograded.modes if name.startswith("course/observations/")]
    assert [Path(name).name.split("-")[:2] for name in shipped] == [["reference", ASSIGNMENT]]
    assert (autograded.root / "source" / shipped[0]).is_file()
    private = autograded.root / "tmp" / f"dl-grader-{os.geteuid()}" / "private"
    assert private.is_dir()  # the container's cache was there to be used
    assert not list(private.glob("reference-*"))


def test_the_installed_package_is_the_zips(autograded):
    root = autograded.root
    where = run([str(root / "venv/bin/python"), "-c", "import grader; print(grader.__file__)"],
                cwd=root)
    assert Path(where.stdout.strip()).is_relative_to(root / "venv")


def test_nothing_hidden_shows_before_publication(autograded):
    """With hidden tests, results.json carries no total (Gradescope adds up the tests it
    may show), and the visible text gives the visible tests' points, as it says."""
    data = autograded.data
    tests = {t["name"]: t for t in data["tests"]}
    tie = tests["accuracy.breaks_ties_like_argmax"]
    assert tie["visibility"] == "after_published" and "expected:" not in tie["output"]
    visible = tests["softmax.values_match_the_reference"]
    assert visible["visibility"] == "visible"
    assert "score" not in data
    shown_points = sum(t["score"] for t in tests.values()
                       if t.get("visibility") == "visible" and "score" in t)
    shown = data["output"]
    assert "Fix this first" in shown and "show when grades are published" in shown
    assert f"{shown_points:g} / " in shown and "on the visible tests" in shown
    assert f"{entry_scores(data):g} /" not in shown
    full = tests[f"{ASSIGNMENT}: full report"]
    total = f"{entry_scores(data):g} /"
    assert full["visibility"] == "after_published" and total in full["output"]


def test_what_a_student_wrote_cannot_add_markup(autograded):
    data = autograded.data
    for text in (data["output"], data["tests"][-1]["output"]):
        assert r"\<img" in text
        assert not re.search(r"(?<!\\)<img|(?<!\\)\]\(http", text)


def test_a_kernel_user_that_cannot_run_the_interpreter_posts_no_score(autograded, tmp_path):
    """The preflight: the interpreter's folder closed to the kernel's user (as a venv in
    root's home would be) fails run_autograder, with no results.json and the reason on the
    log, though it runs beside the grading (whatever the kernels forked from the warm parent
    managed)."""
    for name in ("source", "submission"):
        (tmp_path / name).symlink_to(autograded.root / name)
    shutil.copy(autograded.root / "run_autograder", tmp_path / "run_autograder")
    venv = autograded.root / "venv"
    venv.chmod(0o700)
    try:
        completed = run_autograder(tmp_path, container_environment(tmp_path, venv / "bin/python"),
                                   None)
    finally:
        venv.chmod(0o755)
    assert completed.returncode != 0
    assert not (tmp_path / "results" / "results.json").exists()
    assert "not graded, a grader fault (no score posted" in completed.stderr
    log = completed.stderr
    assert "the preflight failed: the kernel's unprivileged user" in log, log
    assert "cannot run" in log and "read the files a kernel loads" in log



@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's user is a uid of its own as root")
def test_the_kernel_users_preflight_takes_only_what_the_grading_leaves_idle():
    """Beside the grading, the preflight's session runs at the lowest priority: Linux shares
    the CPU between sessions before it looks at priorities, and the niced check in a session
    of its own took a core from the kernel being graded. Once it answers, nothing is left."""
    import sys

    from grader.outputs.gradescope import InterpreterCheck
    from grader.sandbox.bwrap import SandboxSettings

    check = InterpreterCheck(SandboxSettings(), sys.executable)
    try:
        autogroup = Path(f"/proc/{check.process.pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().split()[-1] == "19", autogroup.read_text()
        assert check.problems() == []
    finally:
        check.close()
    assert check.process.returncode == 0 and not check.folder.exists()



@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's user is a uid of its own as root")
def test_a_file_a_kernel_loads_that_its_user_cannot_read_fails_the_preflight():
    """The preflight opens, as the kernel's user in its cage, every file a kernel loads:
    torch's, ipykernel's and the interpreter's own shared libraries among them. One that
    user cannot read (a module installed by root with a umask of 077) is named, where an
    interpreter that starts would have hidden it until a student's import failed."""
    import sys

    from grader.outputs.gradescope import InterpreterCheck, kernel_files
    from grader.paths import PACKAGE
    from grader.sandbox.bwrap import SandboxSettings

    files = kernel_files()
    assert any("/torch/" in path and ".so" in path for path in files)
    assert any(path.endswith("ipykernel/kernelapp.py") for path in files)
    closed = PACKAGE / f"closed-{os.getpid()}.py"  # visible in the cage, as the package is
    closed.write_text("")
    closed.chmod(0o600)
    try:
        check = InterpreterCheck(SandboxSettings(), sys.executable,
                                 lambda: [*files, str(closed)])
        [problem] = check.problems()
    finally:
        closed.unlink()
    assert f"{closed} (Permission denied)" in problem, problem
    assert "1 cannot be read" in problem and "read the files a kernel loads" in problem

def test_a_course_without_its_self_check_data_cannot_be_zipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert CliRunner().invoke(main, ["init", "mine"]).exit_code == 0
    (tmp_path / "mine" / "public" / f"{ASSIGNMENT}.pt").unlink()
    result = CliRunner().invoke(main, ["--course", "mine", "gradescope", "--assignment",
                                       ASSIGNMENT])
    assert result.exit_code == 2
    assert f"{ASSIGNMENT}.pt is missing (`grade assign` writes it)" in result.output
    assert not (tmp_path / "autograder.zip").exists()


def test_visible_tests_show_paths_as_the_report_does(tmp_path):
    """A traceback names the kernel's work folder and the instructor's folders: Gradescope's
    test output shows them relative, as report.html does, and without terminal colours."""
    from grader.outputs.gradescope import test_entry

    source = tmp_path / "submissions" / "ann.ipynb"
    got = (f"\x1b[31mValueError\x1b[0m in /tmp/grade-x1y2/work/helper.py line 3, "
           f"read from {source.parent}/data.csv")
    test = TestResult("softmax.values", "softmax", 1.0, 0.0, False, "softmax.values failed",
                      got=got)
    result = Result("ann", "softmax_regression", str(source), "d", "v", "c", tests=[test])
    output = test_entry(test, 1, result)["output"]
    assert "/tmp/grade-" not in output and str(tmp_path) not in output, output
    assert "\x1b" not in output and "helper.py line 3" in output and "data.csv" in output


def test_a_grader_fault_posts_no_score(tmp_path, monkeypatch):
    """A kernel that could not start is the grader's fault: no results.json (Gradescope
    then says the autograder failed) rather than a 0 posted to the student; the
    instructor's report is kept."""
    import grader.outputs.gradescope as gradescope
    from grader.authoring.config import load_assignments

    def faulted(submission, settings, matched=None):
        return Result(submission.student, settings.notebook, str(submission.path), "d", "v",
                      "c", fault="the kernel could not start: Broken pipe")

    monkeypatch.setattr(gradescope, "grade_submission", faulted)
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / f"{NOTEBOOK}.ipynb").write_text("{}")
    settings = load_assignments(course.current().assignment_files(), (NOTEBOOK,))
    with pytest.raises(gradescope.NotGraded, match="Broken pipe"):
        gradescope.run(tmp_path, settings)
    assert not (tmp_path / "results" / "results.json").exists()
    assert (tmp_path / "results" / "reports" / "submission" / NOTEBOOK
            / "results.json").is_file()


def test_a_zip_without_the_data_set_its_exercises_read_posts_no_score(tmp_path, monkeypatch):
    import grader.outputs.gradescope as gradescope
    from grader.authoring.config import load_assignments
    from grader.kernel import data as kernel_data

    monkeypatch.setattr(kernel_data, "candidate_dirs", lambda: [tmp_path / "nowhere"])
    settings = load_assignments(course.current().assignment_files(), (NOTEBOOK,))
    with pytest.raises(gradescope.NotGraded, match="Fashion-MNIST, which the exercises read, "
                                                   "is not in the zip"):
        gradescope.checked(settings)


def timed_result(speed_mark_passed: bool) -> Result:
    """An epoch within its time limit, its speed mark earned or not (it did not train)."""
    mark = TestResult(SPEED_MARK, "softmax_training", 2.0, 2.0 * speed_mark_passed,
                      speed_mark_passed, "one epoch" if speed_mark_passed else "not judged")
    return Result("s", ASSIGNMENT, "s.ipynb", "d", "v", "c", tests=[mark],
                  timings=[Timing("epoch.run", "cpu", 1.2, 1.0, 3.0)])


def test_the_leaderboard_ranks_only_earned_speed_marks():
    assert leaderboard([timed_result(False)]) == []
    assert leaderboard([timed_result(True)]) == [
        {"name": "epoch.run time ratio", "value": 1.2, "order": "asc"}]


def two_tests(hidden_points: float, late: float = 0.0) -> Result:
    tests = [TestResult("softmax.values", "softmax", 2.0, 2.0, True, "ok"),
             TestResult("softmax.hidden", "softmax", 3.0, hidden_points, hidden_points > 0,
                        "not met on the hidden inputs", hidden=True)]
    adjustments = [Adjustment(LATE, None, late, "1 day late: 1 point off")] if late else []
    return Result("s", ASSIGNMENT, "s.ipynb", "d", "v", "c", tests=tests,
                  adjustments=adjustments)


def test_hidden_tests_leave_the_total_to_gradescope_and_the_text_says_so():
    result = two_tests(hidden_points=3.0)
    data = gradescope_results([result], 1.0)
    assert "score" not in data and entry_scores(data) == result.score == 5.0
    assert "2 / 2 on the visible tests" in data["output"]
    assert "show when grades are published" in data["output"] and "5 / 5" not in data["output"]


def test_without_hidden_tests_the_total_is_posted_and_shown():
    result = Result("s", ASSIGNMENT, "s.ipynb", "d", "v", "c",
                    tests=[TestResult("softmax.values", "softmax", 2.0, 1.5, False, "off")])
    data = gradescope_results([result], 1.0)
    assert data["score"] == 1.5 and "1.5 / 2" in data["output"]
    assert "visible tests" not in data["output"]


def test_a_late_penalty_is_an_entry_so_the_tests_add_up_to_the_score():
    result = two_tests(hidden_points=3.0, late=1.0)
    data = gradescope_results([result], 1.0)
    assert entry_scores(data) == result.score == 4.0
    [adjusted] = [t for t in data["tests"] if t["name"].endswith(": adjustments")]
    assert adjusted["score"] == -1.0 and "1 day late" in adjusted["output"]
    assert adjusted["visibility"] == "after_published"  # it would tell the hidden points


def test_a_missing_notebook_is_the_students_zero_not_a_grader_fault():
    result = Result("s", ASSIGNMENT, "submission", "d", "v", "c", possible=10.0,
                    missing=f"no notebook {ASSIGNMENT}.ipynb was handed in")
    data = gradescope_results([result], 1.0)
    message = f"no notebook {ASSIGNMENT}.ipynb was found in your submission: upload it"
    [entry] = data["tests"]
    assert entry["score"] == 0 and entry["max_score"] == 10.0 and entry["output"] == message
    assert entry["visibility"] == "visible" and data["score"] == 0
    assert message in data["output"] and data["leaderboard"] == []
