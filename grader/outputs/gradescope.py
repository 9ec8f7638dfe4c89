"""Gradescope's container autograder: grade the one submission in /autograder/submission
on the course's assignments (GRADER_ASSIGNMENT limits them) and write
/autograder/results/results.json in Gradescope's format.

`run_autograder` calls `python -m grader.outputs.run_autograder`, which starts the kernels'
warm parent and then runs `main` here; `--root` points elsewhere so the same entry point
runs against any folder laid out the same way (a test does exactly that).
A grader fault never becomes a student's 0: a preflight checks that the data sets the zip
carries are found and that a kernel can be caged (before grading), and that the kernel's
user can run the interpreter and read the files a kernel loads (beside the grading, before
any score is posted); where not,
or a kernel could not start, no results.json is written (Gradescope then says the
autograder failed) and the log says why.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from grader.authoring import course
from grader.authoring.config import Settings, load_assignments
from grader.authoring.datasets import DataNotFound, needed
from grader.grading.grade import grade_submission
from grader.grading.results import Result, TestResult, save_result, write_atomically
from grader.outputs.report import for_student, render_markdown, timing_verdicts, write_report
from grader.paths import PACKAGE
from grader.sandbox.bwrap import (
    SandboxSettings,
    interpreter_paths,
    kernel_prefix,
    kernels_isolated,
    prepare_workdir,
)
from grader.sandbox.host import kernel_environment
from grader.students.submissions import Submission, match_notebooks, notebooks_in

VISIBLE, HIDDEN = "visible", "after_published"
MAX_OUTPUT = 64_000  # characters an output keeps: results.json stays far below its limit
# What the preflight's interpreter runs as the kernel's user, in the kernel's cage: it
# opens each file named on its stdin (kernel_files), as an import would.
READY = "kernel-interpreter-ready"
PREFLIGHT_PROBE = f"""
import json, os, sys
unread = []
for path in json.load(sys.stdin):
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as error:
        unread.append(f"{{path}} ({{error.strerror}})")
if unread:
    sys.exit(f"{{len(unread)}} cannot be read, among them " + ", ".join(unread[:3]))
print({READY!r})
"""
PREFLIGHT_SECONDS = 300  # a cold container's disk is slow
SYSTEM_LIBRARIES = ("/usr", "/lib", "/lib64")  # where the interpreter's shared libraries lie
MAX_ERROR_CHARS = 2000  # of what a failed preflight printed, on the log
LOWEST_PRIORITY = ("nice", "-n", "19")  # coreutils': the preflight and all it starts


def capped(text: str) -> str:
    if len(text) <= MAX_OUTPUT:
        return text
    return text[:MAX_OUTPUT] + "\n\n… (cut: the grader's report holds the rest)"


def test_entry(test: TestResult, number: int, result: Result) -> dict:
    """One of Gradescope's test cases; hidden tests show only after grades are published,
    and never their values. Paths read as report.html shows them."""
    output = test.message
    if not test.hidden:
        output += "".join(f"\n{label}: {value}" for label, value in
                          (("expected", test.expected), ("got", test.got)) if value)
    output = for_student(result)(output)
    return {
        "name": test.name,
        "number": str(number),
        "score": test.points,
        "max_score": test.max_points,
        "status": "passed" if test.passed else "failed",
        "output": capped(output),
        "tags": [result.assignment, test.exercise],
        "visibility": HIDDEN if test.hidden else VISIBLE,
    }


def full_report(result: Result) -> dict:
    """The whole report, hidden tests included, as an entry students see once grades are
    published (it carries no score of its own)."""
    return {"name": f"{result.assignment}: full report", "output_format": "md",
            "output": capped(render_markdown(result, with_hidden=True)), "visibility": HIDDEN}


def missing_message(result: Result) -> str:
    """A notebook not handed in is the student's to fix, not a grader fault."""
    return (f"no notebook {result.assignment}.ipynb was found in your submission: "
            "upload it")


def missing_entry(result: Result) -> dict:
    """An assignment the submission has no notebook for: 0 of its points, saying why."""
    return {"name": f"{result.assignment}: notebook", "score": 0.0,
            "max_score": result.max_score, "status": "failed",
            "output": missing_message(result), "tags": [result.assignment],
            "visibility": VISIBLE}


def adjustment_entry(result: Result, hidden: bool) -> dict | None:
    """Overrides and late penalties as one entry, so the entries' scores add up to the
    total whether or not results.json carries it; None where there are none."""
    change = round(result.score - sum(test.points for test in result.tests), 4)
    if not result.adjustments or change == 0:
        return None
    return {"name": f"{result.assignment}: adjustments", "score": change, "max_score": 0.0,
            "output": "\n".join(a.reason for a in result.adjustments),
            "tags": [result.assignment], "visibility": HIDDEN if hidden else VISIBLE}


def scored_entries(results: list[Result], hidden: bool) -> list[dict]:
    """Every entry that carries points, numbered in order: their scores are the total."""
    tests = [test_entry(test, number, result) for number, (result, test) in
             enumerate(((r, t) for r in results for t in r.tests), start=1)]
    others = [missing_entry(r) if r.missing else adjustment_entry(r, hidden) for r in results]
    return tests + [entry for entry in others if entry is not None]


def leaderboard(results: list[Result]) -> list[dict]:
    """Each timed step whose speed mark was earned, by its ratio to the reference (lower is
    faster): an epoch that did not train, or was too slow, is not ranked."""
    return [{"name": f"{verdict.timing.step} time ratio",
             "value": round(verdict.timing.ratio, 3), "order": "asc"}
            for result in results for verdict in timing_verdicts(result)
            if verdict.verdict == "pass"]


def student_output(result: Result) -> str:
    return missing_message(result) if result.missing \
        else render_markdown(result, with_hidden=False)


def gradescope_results(results: list[Result], seconds: float) -> dict:
    """Gradescope's results.json for the assignments graded. Before grades are published a
    student sees no hidden result: the visible output leaves the hidden tests out, and
    where any test is hidden there is no `score`, so Gradescope adds up the tests' own,
    each shown when its visibility allows (the output says so)."""
    hidden = any(test.hidden for result in results for test in result.tests)
    data = {
        "execution_time": round(seconds, 1),
        "output": capped("\n\n".join(student_output(r) for r in results)),
        "output_format": "md",
        "test_output_format": "text",
        "stdout_visibility": "hidden",
        "tests": scored_entries(results, hidden)
        + [full_report(result) for result in results if not result.missing],
        "leaderboard": leaderboard(results),
    }
    if not hidden:
        data["score"] = round(sum(result.score for result in results), 4)
    return data


class NotGraded(Exception):
    """A grader fault (a kernel that could not start, a failed preflight): Gradescope gets
    no results.json, so it tells the student the autograder failed instead of posting a 0."""


def kernel_files() -> list[str]:
    """The files a kernel loads from the interpreter's folders and the grader's package:
    the modules and shared libraries this process loaded (torch's among them) and the
    modules the kernels' warm parent imports (ipykernel's). A kernel's user who can run
    the interpreter and open each can import what a kernel imports; opening them takes
    milliseconds, where importing torch and ipykernel took two seconds of a core."""
    from grader.sandbox.forkserver import WARM

    places = [Path(place) for place in (*interpreter_paths(), PACKAGE, *SYSTEM_LIBRARIES)]
    loaded = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    mapped = [fields[5] for line in Path("/proc/self/maps").read_text().splitlines()
              if len(fields := line.split(maxsplit=5)) == 6]
    files = {Path(path) for path in (*loaded, *mapped, *map(module_origin, WARM))
             if path and path.startswith("/")}
    return sorted(str(path) for path in files
                  if any(path.is_relative_to(place) for place in places) and path.is_file())


def module_origin(name: str) -> str | None:
    """The file module `name` would be loaded from (its package imported, not it)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


class InterpreterCheck:
    """The kernel's user, in the kernel's cage (its folder made as a kernel's), running
    `python` to open the files a kernel loads (`files`). It starts with the grading, at
    the lowest priority (it takes only what the grading leaves idle), and is handed the
    files once the grading is done (all it loaded among them) and waited for before any
    score is posted."""

    def __init__(self, sandbox: SandboxSettings, python: str,
                 files: Callable[[], list[str]] = kernel_files):
        self.sandbox, self.python, self.files = sandbox, python, files
        self.folder = Path(tempfile.mkdtemp(prefix="grade-preflight-"))
        self.process: subprocess.Popen | None = None
        self.started = time.monotonic()
        self.error: str | None = None
        try:
            self.folder.chmod(0o711)
            workdir = self.folder / "work"
            workdir.mkdir(mode=0o700)
            prepare_workdir(workdir, sandbox)
            command = [*LOWEST_PRIORITY, *kernel_prefix(self.folder, workdir, sandbox, False, {}),
                       python, "-c", PREFLIGHT_PROBE]
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, cwd=workdir,
                env=kernel_environment(workdir, {}), start_new_session=True)
            lowest_priority_session(self.process.pid)
        except (OSError, RuntimeError) as error:
            self.error = str(error)

    def failure(self) -> str | None:
        """What went wrong (waiting for it to end); None where the user could."""
        if self.process is None:
            return self.error
        left = max(0.0, PREFLIGHT_SECONDS - (time.monotonic() - self.started))
        try:
            stdout, stderr = self.process.communicate(json.dumps(self.files()), timeout=left)
        except subprocess.TimeoutExpired:
            return f"it did not answer within {PREFLIGHT_SECONDS} s"
        finally:
            self.close()
        if READY in stdout:
            return None
        return (stderr.strip() or f"it exited with code {self.process.returncode}"
                )[-MAX_ERROR_CHARS:]

    def problems(self) -> list[str]:
        failure = self.failure()
        if failure is None:
            return []
        return [f"the kernel's unprivileged user (uid {self.sandbox.uid}) cannot run "
                f"{self.python} and read the files a kernel loads (torch's and ipykernel's) "
                f"in the kernel's sandbox, so no kernel could start or import them (make the "
                f"interpreter and its folders readable and executable by all): {failure}"]

    def close(self) -> None:
        """Stop it, if it still runs, and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def lowest_priority_session(pid: int) -> None:
    """Where Linux shares the CPU between sessions before it looks at priorities
    (autogroups), the priority of the session `pid` leads, too: else its niceness counts only
    against itself, and the preflight slowed the grading's kernel by half."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(LOWEST_PRIORITY[-1])


def cage_problems(sandbox: SandboxSettings) -> list[str]:
    """Why this container cannot cage a kernel: neither bubblewrap nor a user of the
    kernel's own; empty where it can."""
    try:
        isolated = kernels_isolated(sandbox)
    except RuntimeError as error:  # sandbox mode 'bwrap' asked for, and bwrap fails here
        return [str(error)]
    if not isolated:
        return ["the kernel would run without a sandbox: bubblewrap does not work here and "
                "the grader is not root, so the kernel cannot have a user of its own "
                "(setup.sh installs bubblewrap; Gradescope runs the autograder as root)"]
    return []


def run(root: Path, assignments: list[Settings],
        preflight: Callable[[], list[str]] = list) -> dict:
    """Grade root/submission on each assignment, write root/results/results.json (and the
    reports beside it); NotGraded, with no results.json, where any was a grader fault or
    the `preflight` (waited for once the reports are written) found one."""
    started = time.perf_counter()
    folder = root / "submission"
    submission = Submission("submission", folder, notebooks_in(folder))
    if not submission.notebooks:
        submission.problems.append("the submission holds no notebook (.ipynb)")
    matched = match_notebooks(submission, [settings.notebook for settings in assignments])
    results = [grade_submission(submission, settings, matched=matched)
               for settings in assignments]
    results_dir = root / "results"
    for result in results:  # for the instructor, beside Gradescope's copy
        write_report(result, results_dir / "reports")
        save_result(result, results_dir / "reports" / result.student / result.assignment
                    / "results.json")
    problems = preflight()
    if problems:
        raise NotGraded("the preflight failed: " + "; ".join(problems))
    faults = [f"{result.assignment}: {result.fault}" for result in results if result.fault]
    if faults:
        raise NotGraded("; ".join(faults))
    data = gradescope_results(results, time.perf_counter() - started)
    write_atomically(results_dir / "results.json", json.dumps(data, indent=2))
    return data


def missing_data(assignments: list[Settings]) -> list[str]:
    """Why a data set the assignments' exercises read is not where run_autograder says:
    the zip carries them, so a missing one is a broken upload, never the student's fault."""
    problems = []
    for data in needed(name for settings in assignments for name in settings.exercises):
        try:
            data.files(data.find())
        except DataNotFound as error:
            problems.append(f"{data.name}, which the exercises read, is not in the zip "
                            f"(build it again with `grade gradescope`): {error}")
    return problems


def checked(assignments: list[Settings]) -> list[InterpreterCheck]:
    """NotGraded, before any kernel starts, where the zip's data or a kernel's cage is
    missing; else each sandbox's InterpreterCheck, started."""
    sandboxes = dict.fromkeys(settings.sandbox for settings in assignments)
    problems = [*missing_data(assignments),
                *(problem for sandbox in sandboxes for problem in cage_problems(sandbox))]
    if problems:
        raise NotGraded("the preflight failed: " + "; ".join(problems))
    return [InterpreterCheck(sandbox, sys.executable) for sandbox in sandboxes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--course", type=Path, default=None,
                        help="the course folder (default: the one in use)")
    parser.add_argument("--config", type=Path, default=None,
                        help="one assignment's settings (default: the course's, all)")
    parser.add_argument("--assignment", action="append", default=[],
                        help="only this assignment (repeatable)")
    arguments = parser.parse_args()
    if arguments.course is not None:
        course.use(arguments.course)
    files = [arguments.config] if arguments.config else course.current().assignment_files()
    assignments = load_assignments(files, tuple(arguments.assignment))
    interpreters: list[InterpreterCheck] = []
    try:
        interpreters = checked(assignments)
        data = run(arguments.root, assignments,
                   lambda: [problem for check in interpreters for problem in check.problems()])
    except NotGraded as fault:
        sys.exit(f"not graded, a grader fault (no score posted; regrade once it is fixed): "
                 f"{fault}")
    finally:
        for check in interpreters:
            check.close()
    scored = sum(entry.get("score", 0.0) for entry in data["tests"])
    print(f"score {scored:g} over {len(data['tests'])} tests")


if __name__ == "__main__":
    main()
