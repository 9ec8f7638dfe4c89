"""What one result says at a glance, for the report's top and the class summary: a cause
that failed every test, the problem to fix first, each exercise's score and the reasons
an instructor should look at the submission.

Pure functions of a Result: a report rendered again from results.json says the same.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from grader.authoring import course
from grader.grading.results import NOT_JUDGED, Cause, Result, TestResult
from grader.grading.wording import (
    BLANK_MESSAGE,
    CAUSE_TITLES,
    OTHER_CAUSE,
    RAN_UNSANDBOXED,
    TIMED_OUT,
)
from grader.paths import PACKAGE

TIMEOUT_ERRORS = ("CellTimeout", "TotalTimeout")  # the kinds of a cell's error the runner set
# Causes that fail every test of a notebook at once, where it was never run or read.
WHOLE_NOTEBOOK = (Cause.UNREADABLE, Cause.KERNEL, Cause.MISSING, Cause.REFUSED)
KERNEL_WORK_DIR = re.compile(r"/tmp/grade-[^/\s\"']+/work/")


@dataclass(frozen=True)
class CommonCause:
    """One reason behind every failed test, said once instead of on each test."""

    kind: str  # a Cause of WHOLE_NOTEBOOK, Cause.BLANK, or OTHER_CAUSE
    title: str
    message: str


def common_cause(result: Result) -> CommonCause | None:
    """The one cause that failed every test, if there is one: a blank notebook, an
    unreadable file, a kernel that never started, a missing or refused notebook, or one
    message said by every test. Read from the tests' causes, never their words."""
    if not result.tests or any(test.passed for test in result.tests):
        return None
    # A test left unjudged by an earlier failure is that failure's consequence.
    causes = {test.cause for test in result.tests if test.state != NOT_JUDGED} or {
        test.cause for test in result.tests}
    if causes == {Cause.BLANK}:
        return CommonCause(Cause.BLANK, CAUSE_TITLES[Cause.BLANK], BLANK_MESSAGE)
    messages = list(dict.fromkeys(test.message for test in result.tests))
    cause = next(iter(causes)) if len(causes) == 1 else None
    if cause in WHOLE_NOTEBOOK:
        return CommonCause(cause, CAUSE_TITLES[cause], messages[0])
    if len(messages) == 1:
        return CommonCause(OTHER_CAUSE, CAUSE_TITLES[OTHER_CAUSE], messages[0])
    return None


@dataclass(frozen=True)
class ExerciseScore:
    """One exercise's tests and what they add up to."""

    name: str
    tests: list[TestResult]

    @property
    def points(self) -> float:
        return round(sum(test.points for test in self.tests), 4)

    @property
    def max_points(self) -> float:
        return round(sum(test.max_points for test in self.tests), 4)

    @property
    def passed(self) -> int:
        return sum(test.passed for test in self.tests)

    @property
    def failed(self) -> list[TestResult]:
        """The tests that failed on their own account: a test left unjudged by an earlier
        failure is that failure's consequence, neither passed nor failed."""
        return [test for test in self.tests if not test.passed and test.state != NOT_JUDGED]

    @property
    def not_judged(self) -> list[TestResult]:
        return [test for test in self.tests if test.state == NOT_JUDGED]

    @property
    def all_passed(self) -> bool:
        return self.passed == len(self.tests)

    @property
    def fraction(self) -> float:
        return self.points / self.max_points if self.max_points > 0 else 1.0


def exercise_scores(tests: list[TestResult]) -> list[ExerciseScore]:
    """Tests grouped by exercise, in the order the grader ran them."""
    groups: dict[str, list[TestResult]] = {}
    for test in tests:
        groups.setdefault(test.exercise, []).append(test)
    return [ExerciseScore(name, group) for name, group in groups.items()]


def first_problem(result: Result) -> tuple[ExerciseScore, TestResult] | None:
    """The first exercise that failed a test and the failure to read first there: a visible
    one where there is one, since a hidden test's message says less."""
    for exercise in exercise_scores(result.tests):
        if exercise.failed:
            visible = [test for test in exercise.failed if not test.hidden]
            return exercise, (visible or exercise.failed)[0]
    return None


def timed_out(result: Result) -> bool:
    return any(cell.error.startswith(TIMEOUT_ERRORS) for cell in result.errors)


def flags(result: Result) -> list[str]:
    """Why an instructor should open this submission, in a few words each."""
    cause = common_cause(result)
    found = [cause.title] if cause else []
    if timed_out(result):
        found.append(TIMED_OUT)
    if result.unsandboxed:
        found.append(RAN_UNSANDBOXED)
    return found


def private_roots(result: Result) -> list[str]:
    """Folders of the instructor's machine that names in messages are shown relative to:
    the submissions, the course, the grader and the Python libraries."""
    paths = sysconfig.get_paths()
    roots = {str(Path(result.source).parent), str(course.current().root), str(PACKAGE.parent),
             paths["purelib"], paths["platlib"], paths["stdlib"]}
    # A relative source ("alice.ipynb") has the parent ".": "./" is no private root, and
    # taking it out would mangle "../data" in a message.
    return sorted((root.rstrip("/") + "/" for root in roots
                   if Path(root).is_absolute() and root != "/"), key=len, reverse=True)


def relative_names(text: str, roots: list[str]) -> str:
    """`text` with every absolute path under `roots` made relative: a student sees
    `grader/exercises/softmax.py`, never where the instructor keeps it."""
    text = KERNEL_WORK_DIR.sub("", text)
    for root in roots:
        text = text.replace(root, "")
    return text
