"""What grading produces: plain dataclasses that serialise to results.json and back.

Everything right of the trust boundary ends up here, so reports, the CSV and the
class summary read only these types and never the notebook or the kernel.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path


class Cause(StrEnum):
    """Why a test failed, set where the failure arises: the banners, the flags and the
    class summary read it, never the message's words, which are free to change."""

    BLANK = "blank"  # still as handed out: raises NotImplementedError, no answer written
    NO_FUNCTION = "no_function"  # the function the notebook should define is not there
    RAISED = "raised"  # the student's function raised
    TIMEOUT = "timeout"  # the student's function ran too long, or the budget ran out
    UNOBSERVED = "unobserved"  # the kernel stopped before this probe answered
    USES_FAILED = "uses_failed"  # a training whose functions did not all answer
    UNREADABLE = "unreadable"  # the notebook file could not be read
    KERNEL = "kernel"  # the kernel never started
    MISSING = "missing"  # no notebook for the assignment
    REFUSED = "refused"  # the submission was not graded
    FORBIDDEN = "forbidden"  # a call the exercise forbids
    NOT_JUDGED = "not_judged"  # an earlier failure left nothing to judge
    REQUIRES = "requires"  # counts only beside checks that failed
    UNCHECKABLE = "uncheckable"  # a value the check could not read


@dataclass
class TestResult:
    """One named check: its verdict, its points and what the student should read."""

    __test__ = False  # not a pytest class

    name: str
    exercise: str
    max_points: float
    points: float
    passed: bool
    message: str
    expected: str | None = None
    got: str | None = None
    hidden: bool = False
    # JUDGED; NOT_JUDGED: an earlier check's failure, named in the message, left this one's
    # property unjudgeable (no points); NOT_MEASURED: a timing too noisy to judge (no cost).
    state: str = "judged"
    cause: Cause | None = None  # why it failed, where the grader knows; None: a wrong value

    def __post_init__(self) -> None:
        if self.cause is not None:  # read back from results.json as a plain string
            self.cause = Cause(self.cause)


JUDGED, NOT_JUDGED, NOT_MEASURED = "judged", "not_judged", "not_measured"


@dataclass
class CellRecord:
    """A notebook cell that raised, with the traceback the student needs to fix it."""

    index: int
    source: str
    error: str
    traceback: str


def cpu_key(step: str) -> str:
    """Where a timed step's CPU time goes beside its wall-clock time, in a table by step."""
    return f"{step} cpu"


def runnable_key(step: str) -> str:
    """Where the seconds the kernel's threads ran or waited to run go, likewise."""
    return f"{step} runnable"


@dataclass
class Timing:
    """One timed step of an exercise (named by its probe keys) beside the reference's same
    step, timed in the same run: wall-clock seconds, and CPU seconds where they were read
    (the kernel's from its cgroup, the reference's from its thread's clock), which load on
    the machine does not inflate as it does the wall clock."""

    step: str
    device: str
    student_seconds: float | None
    reference_seconds: float
    max_ratio: float
    student_cpu_seconds: float | None = None
    reference_cpu_seconds: float | None = None
    student_runnable_seconds: float | None = None  # run or waiting to run, not asleep
    cpu_unread: str | None = None  # why the kernel's CPU time is missing, where it is

    @property
    def ratio(self) -> float | None:
        """The ratio the verdict reads: by CPU time wherever the kernel's was read, else by
        the wall clock."""
        cpu = self.cpu_ratio
        return cpu if cpu is not None else self.wall_ratio

    @property
    def judged_by(self) -> str:
        """What `ratio` compares, for the reports: their seconds columns show the same."""
        return "CPU time" if self.cpu_ratio is not None else "wall clock"

    @property
    def judged_seconds(self) -> tuple[float | None, float | None]:
        """(the student's, the reference's) seconds that `ratio` divides."""
        if self.cpu_ratio is None:
            return self.student_seconds, self.reference_seconds
        return self.student_cpu_seconds + self.asleep_seconds, self.reference_cpu_seconds

    @property
    def wall_ratio(self) -> float | None:
        if self.student_seconds is None or self.reference_seconds <= 0:
            return None
        return self.student_seconds / self.reference_seconds

    @property
    def asleep_seconds(self) -> float:
        """How long the kernel's threads neither ran nor waited to run in the step (slept
        or blocked): its wall clock less what load made it wait, and less its work."""
        if self.student_seconds is None or self.student_runnable_seconds is None:
            return 0.0
        return max(0.0, self.student_seconds - self.student_runnable_seconds)

    @property
    def cpu_ratio(self) -> float | None:
        """The kernel's CPU time, with the time it slept (sleeping is slow too), over the
        reference's CPU time; None where either CPU time was not read."""
        if None in (self.student_seconds, self.student_cpu_seconds) \
                or not (self.reference_cpu_seconds or 0) > 0:
            return None
        return (self.student_cpu_seconds + self.asleep_seconds) / self.reference_cpu_seconds


@dataclass
class Curve:
    """A panel of the report's chart, e.g. the loss per epoch.

    `series` holds further named series of the student's drawn in the same panel, where one
    line is not enough (the six faces of a die); `y` may then be empty.
    """

    name: str
    x_label: str
    y_label: str
    x: list[float]
    y: list[float | None]
    reference_y: list[float | None] | None = None
    series: dict[str, list[float | None]] = field(default_factory=dict)


@dataclass
class Lateness:
    """When a file was handed in, as the LMS's export says: its late marker (Canvas's
    `_LATE_`) and the time it gives, where it gives one (Gradescope's metadata, a file time
    the export keeps). The late policy (grader/students/late.py) turns it into a penalty."""

    marked_late: bool = False
    submitted_at: str | None = None  # ISO 8601, with its offset


@dataclass
class Adjustment:
    """A change to the tests' score that is not the grader's verdict, kept beside it and
    shown with its reason: an instructor's override (a test's points, or the total, set) or
    a late penalty (points taken off). Applied again on every run, never saved as a test."""

    kind: str  # OVERRIDE or LATE
    test: str | None  # the test an override sets; None: the total
    points: float  # an override: the points set; a late penalty: the points taken off
    reason: str


OVERRIDE, LATE = "override", "late"


@dataclass
class Result:
    """The whole verdict on one assignment of one submission."""

    student: str
    assignment: str
    source: str
    digest: str
    grader_version: str
    config_digest: str
    tests: list[TestResult] = field(default_factory=list)
    errors: list[CellRecord] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    seeds: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    execution_seconds: float = 0.0
    # A fault of the grader's, not the student's (a kernel that could not be forked or
    # started, an interrupted run): the result is shown, never kept by a resumed batch.
    fault: str | None = None
    # What the kernel processes wrote to their own stdout and stderr (not cell outputs),
    # bounded; shown escaped in this student's report, never on the grader's terminal.
    kernel_output: str = ""
    name: str = ""  # the student as people read them (Unicode, from the roster or the file)
    lms_id: str | None = None  # the LMS's id for the student, from its export's file names
    # Why there is nothing to grade (no notebook for this assignment): no tests, no score,
    # an empty gradebook cell, left out of the class's statistics.
    missing: str | None = None
    possible: float = 0.0  # the assignment's points, which a missing result has no tests for
    lateness: Lateness | None = None
    adjustments: list[Adjustment] = field(default_factory=list)
    # The kernel ran without file-system and network isolation (bubblewrap unavailable or
    # turned off): a flag for the instructor, beside the note the student reads.
    unsandboxed: bool = False

    @property
    def shown_name(self) -> str:
        return self.name or self.student

    @property
    def scored(self) -> bool:
        """Whether there is a score to post: work handed in and graded, or an instructor's
        total for work the grader never saw (handed in some other way). A grader fault is
        never one."""
        return self.fault is None and (self.missing is None or any(
            a.kind == OVERRIDE and a.test is None for a in self.adjustments))

    @property
    def earned(self) -> float:
        """The tests' points, with an override of a test's points in its place."""
        overrides = {a.test: a.points for a in self.adjustments
                     if a.kind == OVERRIDE and a.test is not None}
        return round(sum(overrides.get(t.name, t.points) for t in self.tests), 4)

    @property
    def score(self) -> float:
        """What lands in the gradebook: the tests' points as overridden, less a late
        penalty, never below 0; an override of the total is final."""
        total = [a.points for a in self.adjustments if a.kind == OVERRIDE and a.test is None]
        if total:
            return round(total[-1], 4)
        penalty = sum(a.points for a in self.adjustments if a.kind == LATE)
        return round(max(0.0, self.earned - penalty), 4)

    @property
    def max_score(self) -> float:
        if not self.tests:
            return round(self.possible, 4)
        return round(sum(t.max_points for t in self.tests), 4)

    def to_dict(self) -> dict:
        data = asdict(self)
        for curve in data["curves"]:
            for values in (curve["y"], curve["reference_y"], *curve["series"].values()):
                if values is not None:
                    finite_only(values)
        data["score"] = self.score
        data["max_score"] = self.max_score
        data["earned"] = self.earned
        for timing, saved in zip(self.timings, data["timings"], strict=True):
            saved["ratio"] = timing.ratio
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        data = dict(data)
        for derived in ("score", "max_score", "earned"):
            data.pop(derived, None)
        lateness = data.pop("lateness", None)
        timings = [{k: v for k, v in timing.items() if k != "ratio"}
                   for timing in data.pop("timings", [])]
        return cls(
            tests=[TestResult(**t) for t in data.pop("tests", [])],
            errors=[CellRecord(**c) for c in data.pop("errors", [])],
            curves=[Curve(**c) for c in data.pop("curves", [])],
            timings=[Timing(**timing) for timing in timings],
            adjustments=[Adjustment(**a) for a in data.pop("adjustments", [])],
            lateness=None if lateness is None else Lateness(**lateness),
            **data,
        )


def finite_only(values: list) -> None:
    """NaN and inf (a diverging student) have no JSON form: they become None, in place."""
    for index, value in enumerate(values):
        if isinstance(value, float) and not math.isfinite(value):
            values[index] = None


OUTPUT_MODE = 0o644


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, OUTPUT_MODE)  # mkstemp makes it 0600: a TA or a web server reads it too
        # Lone surrogates (from a student's strings) cannot be UTF-8: escape, never crash.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_result(result: Result, path: Path) -> None:
    write_atomically(path, json.dumps(result.to_dict(), indent=2, allow_nan=False))


def load_result(path: Path) -> Result:
    return Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
