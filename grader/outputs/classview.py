"""The instructor's view of one assignment across the class: who scored what on which
exercise, the hardest exercises, the failures many students share, the submissions to
open, the timing spread. Pure functions of the results, for the summary page.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass

from grader.grading.results import NOT_JUDGED, Result
from grader.grading.wording import shorten
from grader.outputs.diagnosis import ExerciseScore, common_cause, exercise_scores, flags
from grader.students.identity import NAMES_ALIKE

COMMON_FAILURES = 10
SHOWN_MESSAGE = 300  # characters of a shared failure's example message
SHOWN_PAIRS = 100  # similar pairs per assignment shown with their cells, the most similar
SHOWN_NAMES = 5  # others named beside a student similar to many
MIN_CHARTED = 2  # results handed in before the class's spread is drawn
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass(frozen=True)
class HeatRow:
    """A student's row of the heat map: one cell per exercise (None where the result has
    no test of it)."""

    result: Result
    cells: list[ExerciseScore | None]


def handed_in(results: list[Result]) -> list[Result]:
    """The results with a notebook behind them: missing work is its own state, left out of
    the class's means, medians, pass rates and histograms."""
    return [result for result in results if result.missing is None]


def exercise_names(results: list[Result]) -> list[str]:
    return list(dict.fromkeys(test.exercise for result in results for test in result.tests))


def heat_map(results: list[Result]) -> list[HeatRow]:
    names = exercise_names(results)
    rows = []
    for result in results:
        scores = {exercise.name: exercise for exercise in exercise_scores(result.tests)}
        rows.append(HeatRow(result, [scores.get(name) for name in names]))
    return rows


@dataclass(frozen=True)
class ExerciseRate:
    name: str
    passed: int  # students who passed every test of it
    students: int
    mean_fraction: float

    @property
    def rate(self) -> float:
        return self.passed / self.students if self.students else 0.0


def exercise_rates(results: list[Result]) -> list[ExerciseRate]:
    """Per exercise, the share of students passing all of its tests, the hardest first."""
    grouped: dict[str, list[ExerciseScore]] = {}
    for result in handed_in(results):
        for exercise in exercise_scores(result.tests):
            grouped.setdefault(exercise.name, []).append(exercise)
    rates = [ExerciseRate(name, sum(e.all_passed for e in group), len(group),
                          statistics.fmean(e.fraction for e in group))
             for name, group in grouped.items()]
    return sorted(rates, key=lambda rate: (rate.rate, rate.mean_fraction))


@dataclass(frozen=True)
class SharedFailure:
    """A failure message many students got, numbers aside: one student's wording as the
    example, how many wordings it stands for, and the tests that said it."""

    message: str
    students: list[str]
    tests: list[str]
    wordings: int = 1


def common_failures(results: list[Result]) -> list[SharedFailure]:
    """The failure messages most students share, most common first. Submissions that
    failed everything for one cause (blank, unreadable) are left out: they are listed
    among the submissions to look at, and would only crowd the list. So are tests left
    unjudged by an earlier failure: that failure is listed, not its consequences."""
    students: dict[str, set[str]] = {}
    tests: dict[str, Counter] = {}
    wordings: dict[str, set[str]] = {}
    for result in results:
        if common_cause(result) is not None:
            continue
        for test in result.tests:
            if test.passed or test.state == NOT_JUDGED:
                continue
            key = NUMBER.sub("#", test.message)
            wordings.setdefault(key, set()).add(test.message)
            students.setdefault(key, set()).add(result.student)
            tests.setdefault(key, Counter())[test.name] += 1
    ranked = sorted(students, key=lambda key: (-len(students[key]), key))
    return [SharedFailure(shorten(min(wordings[key]), SHOWN_MESSAGE), sorted(students[key]),
                          [name for name, _ in tests[key].most_common()], len(wordings[key]))
            for key in ranked[:COMMON_FAILURES]]


def named(students: list[str]) -> str:
    """The first few names, the rest counted: a student similar to a whole class is one
    line, not a list of hundreds."""
    shown = ", ".join(students[:SHOWN_NAMES])
    more = len(students) - SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def needing_a_look(results: list[Result], similar: dict[str, list[str]]) -> list[tuple]:
    """(result, reasons) for each submission an instructor should open: blank, unreadable,
    timed out, unsandboxed, named like another, or near a copy of another (`similar`:
    student to others)."""
    found = []
    for result in handed_in(results):  # missing work is counted on its own, not listed
        reasons = flags(result)
        if any(note.startswith(NAMES_ALIKE) for note in result.notes):
            reasons.append("name like another submission's")
        if similar.get(result.student):
            reasons.append(f"similar to {named(similar[result.student])}")
        if reasons:
            found.append((result, reasons))
    return found


@dataclass(frozen=True)
class TimingSpread:
    step: str
    ratios: list[float]
    max_ratio: float
    unmeasured: int

    @property
    def over(self) -> int:
        return sum(ratio > self.max_ratio for ratio in self.ratios)

    def quantiles(self) -> tuple[float, float, float] | None:
        if not self.ratios:
            return None
        return min(self.ratios), statistics.median(self.ratios), max(self.ratios)


def timing_spread(results: list[Result]) -> list[TimingSpread]:
    """Each timed step's ratios to the reference across the class."""
    steps: dict[str, list] = {}
    for result in results:
        for timing in result.timings:
            steps.setdefault(timing.step, []).append(timing)
    return [TimingSpread(step, sorted(t.ratio for t in timings if t.ratio is not None),
                         max(t.max_ratio for t in timings),
                         sum(t.ratio is None for t in timings))
            for step, timings in steps.items()]
