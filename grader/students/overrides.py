"""Instructor overrides: points a person sets, kept apart from the grader's verdict.

An instructor writes `overrides.csv` (columns `student,assignment,test,points,reason`) in
the course folder, the output folder or both. Every run reads both and applies them to the
results afresh (`apply`), so a regrade, which rewrites results.json, never loses one, and
deleting a row undoes it. A row sets one test's points, or the total (`test` empty or
`total`); `student` is the student's id, their LMS id or, through the roster
(`by_roster`), a roster login. The reason is shown to the student beside the points.

A bad file stops the run before anything is graded (OverrideError, every bad row named by
file and line). What can only be judged against the results (points over a test's max)
stops it there; a row that matches nothing graded is a problem to print (`unused`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from grader.authoring.course import current
from grader.files import NotRegular, open_regular
from grader.grading.results import OVERRIDE, Adjustment, Result
from grader.students.identity import shown
from grader.students.late import LatePolicy, late_penalty, normal

if TYPE_CHECKING:
    from grader.students.roster import Person

FILE_NAME = "overrides.csv"
COLUMNS = ("student", "assignment", "test", "points", "reason")
TOTAL = "total"
MAX_BYTES = 2**20
MAX_ERRORS = 20  # errors one message lists before "and N more"


class OverrideError(ValueError):
    """An overrides file, or a row of it, that cannot be applied."""


@dataclass(frozen=True)
class Override:
    """One row: whose points, on which test (None: the total), and why; `where` is its
    file and line, for messages."""

    student: str
    assignment: str
    test: str | None
    points: float
    reason: str
    where: str

    @property
    def key(self) -> tuple[str, str, str | None]:
        return normal(self.student), self.assignment, self.test

    @property
    def target(self) -> str:
        """What it sets, as a message names it."""
        what = "the total" if self.test is None else f"test {shown(self.test)}"
        return f"{what} of {shown(self.student)} on {shown(self.assignment)}"

    def matches(self, result: Result) -> bool:
        return self.assignment == result.assignment and normal(self.student) in {
            normal(result.student), normal(result.lms_id or "")}


def override_files(out: Path) -> list[Path]:
    """The overrides files there are: the course's, then the output folder's (one file if
    both folders are the same). A link is listed, so reading it is refused, not skipped."""
    found = []
    for folder in (current().root, out):
        path = folder / FILE_NAME
        if os.path.lexists(path) and not any(same(path, seen) for seen in found):
            found.append(path)
    return found


def same(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def read_overrides(paths: list[Path]) -> list[Override]:
    """Every row of the files, in order; OverrideError listing every bad row by file and
    line, and any key (student, assignment, test) set twice, in one file or across them."""
    overrides, errors = [], []
    for path in paths:
        rows, problems = parse(path, read_text(path))
        overrides += rows
        errors += problems
    errors += duplicated(overrides)
    if errors:
        raise OverrideError(listed(errors))
    return overrides


def read_text(path: Path) -> str:
    """The file's text, read without following a link and at most MAX_BYTES of it."""
    try:
        handle, info = open_regular(path)
    except NotRegular:
        raise OverrideError(f"{path}: not a regular file; write the overrides in a CSV "
                            "file there") from None
    except OSError as error:
        raise OverrideError(f"{path}: cannot be read ({error.strerror}); a link is refused: "
                            "put the file itself there") from None
    with os.fdopen(handle, "rb") as file:
        if info.st_size > MAX_BYTES:
            raise OverrideError(f"{path}: {info.st_size} bytes, over the {MAX_BYTES} an "
                                "overrides file may be")
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise OverrideError(f"{path}: grew past {MAX_BYTES} bytes while it was read")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OverrideError(f"{path}: not UTF-8 text; save it as CSV UTF-8") from None


def parse(path: Path, text: str) -> tuple[list[Override], list[str]]:
    """The rows of one file and the errors of those that are bad."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    if sorted(columns) != sorted(COLUMNS):
        return [], [f"{path}:1: the columns must be {','.join(COLUMNS)} (it has: "
                    f"{shown(','.join(columns)) or 'nothing'})"]
    reader.fieldnames = columns
    overrides, errors = [], []
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                overrides.append(override_of(row, where))
            except OverrideError as error:
                errors.append(str(error))
    except csv.Error as error:
        errors.append(f"{path}:{reader.line_num}: not CSV: {error}")
    return overrides, errors


def override_of(row: dict, where: str) -> Override:
    """One row, checked: who, what, a non-negative number and a reason."""
    if None in row or any(value is None for value in row.values()):
        raise OverrideError(f"{where}: the row must have the {len(COLUMNS)} cells "
                            f"{','.join(COLUMNS)}")
    values = {key: value.strip() for key, value in row.items()}
    for key in ("student", "assignment", "points", "reason"):
        if not values[key]:
            raise OverrideError(f"{where}: {key} is empty; every override needs "
                                f"{'a reason the student reads' if key == 'reason' else key}")
    test = None if values["test"].lower() in ("", TOTAL) else values["test"]
    return Override(values["student"], values["assignment"], test,
                    points_of(values["points"], where), values["reason"], where)


def points_of(text: str, where: str) -> float:
    try:
        points = float(text)
    except ValueError:
        raise OverrideError(f"{where}: points {shown(text)} is not a number") from None
    if not math.isfinite(points) or points < 0:
        raise OverrideError(f"{where}: points {shown(text)} must be a number of 0 or more")
    return points


def duplicated(overrides: list[Override]) -> list[str]:
    """A row for each key set more than once, naming where it was set first."""
    first: dict[tuple, Override] = {}
    errors = []
    for override in overrides:
        earlier = first.setdefault(override.key, override)
        if earlier is not override:
            errors.append(f"{override.where}: {override.target} is set twice, here and at "
                          f"{earlier.where}; keep one")
    return errors


def listed(errors: list[str]) -> str:
    more = len(errors) - MAX_ERRORS
    return "\n".join(errors[:MAX_ERRORS] + [f"and {more} more"] * (more > 0))


def by_roster(overrides: list[Override], rows: Mapping[str, Person]) -> list[Override]:
    """The overrides with a student named by a roster login (or another roster id) named
    by their student id instead; `rows` is the roster match (student id: their row). A
    name that is a student's id, or that several rows hold, is left as it is."""
    holders: dict[str, list[str]] = {}
    for student, person in rows.items():
        for name in person.names():
            holders.setdefault(name, []).append(student)
    ids = {normal(student) for student in rows}
    return [replace(o, student=holders[normal(o.student)][0])
            if normal(o.student) not in ids and len(holders.get(normal(o.student), [])) == 1
            else o for o in overrides]


def apply(result: Result, overrides: Iterable[Override], policy: LatePolicy | None) -> Result:
    """A copy of `result` with its adjustments made afresh: this student's overrides of this
    assignment (each test's, then the total), then the late penalty unless the total is
    overridden (that is final). The tests are untouched. OverrideError for points over what
    the test (or the assignment) is worth, or two rows (by id and LMS id) on one key."""
    mine = [override for override in overrides if override.matches(result)]
    maxima = {test.name: test.max_points for test in result.tests}
    for override in mine:
        check_points(override, result.max_score if override.test is None
                     else maxima.get(override.test))
    errors = duplicated([replace(o, student=result.student) for o in mine])
    if errors:
        raise OverrideError(listed(errors))
    tests = [o for o in mine if o.test in maxima]
    totals = [o for o in mine if o.test is None]
    adjustments = [Adjustment(OVERRIDE, o.test, o.points, o.reason) for o in tests + totals]
    penalty = None if totals or result.missing else late_penalty(
        policy, result.lateness, result.student, result.lms_id, result.max_score)
    return replace(result, adjustments=adjustments + [penalty] * (penalty is not None))


def check_points(override: Override, most: float | None) -> None:
    """Points over the most there are to earn are a typo, not extra credit; `most` is None
    for a test the assignment lacks (`unused` reports it)."""
    if most is not None and override.points > most:
        raise OverrideError(f"{override.where}: {override.points:g} points for "
                            f"{override.target}, which is worth {most:g}")


def unused(overrides: Iterable[Override], results: Iterable[Result]) -> list[str]:
    """Rows that change nothing, for the CLI to print: no result for that student and
    assignment, or a test the assignment does not have."""
    results = list(results)
    problems = []
    for override in overrides:
        found = [result for result in results if override.matches(result)]
        tests = {test.name for result in found for test in result.tests}
        if not found:
            problems.append(f"{override.where}: no result for {shown(override.student)} on "
                            f"{shown(override.assignment)}: the override is not applied; "
                            "check the student's id and the assignment's name")
        elif override.test is not None and override.test not in tests:
            problems.append(f"{override.where}: {shown(override.assignment)} has no test "
                            f"{shown(override.test)}: the override is not applied; its tests "
                            f"are {', '.join(sorted(tests)) or 'none (not handed in)'}")
    return problems
