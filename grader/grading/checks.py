"""Checks: small pure functions from observations to a verdict with a message.

A check reads what the student's functions returned (already plain data, already loaded
in the grader's process) beside what the reference returned on the same inputs. This is
the framework (Failed, Context, Check, Registry, evaluate_all); the helpers that raise
`Failed` with a message naming the problem are the assertion library, grader/grading/expect.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from grader.grading.results import JUDGED, NOT_JUDGED, NOT_MEASURED, Cause, TestResult, Timing
from grader.grading.wording import HIDDEN_TEXT, HINTS, shorten
from grader.kernel.probing import function_of, functions_of
from grader.sandbox.budget import OUT_OF_TIME

# The cause of a probe that failed, by the kind of error it reported; any other: RAISED.
PROBE_CAUSES = {"NotImplementedError": Cause.BLANK, "Missing": Cause.NO_FUNCTION,
                "Timeout": Cause.TIMEOUT, OUT_OF_TIME: Cause.TIMEOUT}


class Failed(Exception):
    """Ends a check as failed; carries what the student should read and, where the check
    knows it, why (`cause`), which the banners and the class summary read."""

    def __init__(self, message: str, expected: str | None = None, got: str | None = None,
                 cause: Cause | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.got = got
        self.cause = cause


class NotJudged(Failed):
    """This check's property cannot be judged: an earlier check, the root cause, failed. No
    points, and the message names that check instead of blaming this property."""

    def __init__(self, message: str):
        super().__init__(message, cause=Cause.NOT_JUDGED)


class NotMeasured(Exception):
    """A measurement too noisy to judge (a busy machine): the check costs no points."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class GraderFault(Exception):
    """A check asked the grader's own data for what it lacks: the grader's bug, to stop on
    (exit 2), never a student's failed test."""


class GraderTable(dict):
    """The inputs and the reference's observations: what the grader made, where a
    missing key is a GraderFault (a student's values stay plain dicts)."""

    def __missing__(self, key: str):
        raise GraderFault(f"a check asked for {key!r}, which the grader never made: a typo in "
                          "the exercise's checks or its inputs")


class GraderOptions:
    """An exercise's settings, where a name its model lacks is a GraderFault."""

    def __init__(self, options: Any):
        self._options = options

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._options, name)
        except AttributeError:
            raise GraderFault(f"a check asked for the setting {name!r}, which its exercise's "
                              "Options do not declare") from None


class ProbeFailed(Failed):
    """The student's function raised, timed out or is missing. A hidden test shows
    `hidden_message()`: what failed, the kind of error and the grader's hints, never the
    text the student's code raised, which may quote the hidden inputs
    (`raise ValueError(str(X))`)."""

    def __init__(self, message: str, got: str | None = None, said: tuple[str, str] = ("", ""),
                 cause: Cause = Cause.RAISED):
        super().__init__(message, None, got, cause)
        self.said = said  # (the grader's words, the student's text right after them)

    def hidden_message(self) -> str:
        told = "".join(self.said)
        if not self.said[1] or not self.message.startswith(told):
            return self.message
        return f"{self.said[0]}{HIDDEN_TEXT}{self.message[len(told):]}"


@dataclass
class Context:
    """What a check may read: both sides' observations, the inputs and its exercise's
    settings (`options`)."""

    student: dict[str, dict]
    reference: dict[str, dict]
    inputs: dict[str, Any]
    timings: dict[str, Timing] = field(default_factory=dict)  # by timed step
    hints: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    planned: frozenset[str] = frozenset()  # every probe key the grader asked for
    options: Any = None  # the exercise's own settings, for the check being evaluated
    # Why a function's checks fail whatever its values: a forbidden call, by function.
    forbidden: dict[str, str] = field(default_factory=dict)
    results: dict[str, TestResult] = field(default_factory=dict)  # the checks judged so far

    def __post_init__(self) -> None:
        self.reference = GraderTable(self.reference)
        self.inputs = GraderTable(self.inputs)

    def got(self, key: str) -> Any:
        """The student's value for a probe, or Failed saying why there is none; a key the
        grader never planned is its own fault (a typo in a check), never the student's."""
        if self.planned and key not in self.planned and key not in self.reference:
            raise GraderFault(f"a check asked for the probe {key!r}, which no step of the "
                              "assignment's exercises plans: a typo in the exercise's checks")
        entry = self.student.get(key)
        if entry is None:
            raise ProbeFailed(f"{key}: {HINTS['Unobserved']} (the kernel stopped before this "
                              "probe or never returned it)", cause=Cause.UNOBSERVED)
        if not entry["ok"]:
            hints = [HINTS.get(entry["error"], "")] + [
                hint for prefix, pairs in self.hints.items() if key.startswith(prefix)
                for words, hint in pairs if words in entry["message"]]
            explained = f" ({'; '.join(h for h in hints if h)})" if any(hints) else ""
            said = str(entry["message"])
            head = f"{key} failed — {entry['error']}{': ' if said else ''}"
            raise ProbeFailed(f"{head}{said}{explained}", got=entry.get("traceback") or None,
                              said=(head, said),
                              cause=PROBE_CAUSES.get(entry["error"], Cause.RAISED))
        return entry["value"]

    def want(self, key: str) -> Any:
        """The reference's value; its absence is a grader fault, not the student's."""
        entry = self.reference[key]
        if not entry["ok"]:
            raise GraderFault(f"the reference failed its own probe {key}: {entry['message']}")
        return entry["value"]

    def expect_observed(self, keys: Sequence[str]) -> None:
        """Training marks are for training with the student's functions: each must have
        answered the probes on the training's own kind of input (`keys`), whatever the
        training probe reported, since the probe code in the kernel is the student's to
        patch. A probe that is missing counts as much as one still blank."""
        missing: dict[str, str] = {}
        for key in keys:
            entry = self.student.get(key)
            if entry is None or not entry.get("ok"):
                missing.setdefault(function_of(key),
                                   entry["error"] if entry else "not observed")
        if missing:
            blank = sorted(missing)
            pronoun = "it" if len(blank) == 1 else "them"
            if all(why in ("NotImplementedError", "Missing") for why in missing.values()):
                raise Failed(f"the training uses {', '.join(blank)}, not implemented yet: "
                             f"implement {pronoun} first", cause=Cause.BLANK)
            raise Failed(f"the training uses {', '.join(blank)}, whose own probes did not "
                         f"all return: fix {pronoun} first", cause=Cause.USES_FAILED)

    def judged_only_if(self, check: str, because: str) -> None:
        """Where `check` (a full name, judged earlier) failed, this check's property cannot be
        told apart from that failure: NotJudged, naming it."""
        earlier = self.results.get(check)
        if earlier is not None and not earlier.passed:
            raise NotJudged(f"not judged: {because}, see {check}")

    @contextmanager
    def judged_after(self, check: str, because: str) -> Iterator[None]:
        """A failure inside is NotJudged where `check` failed before: e.g. the gradient of a
        softmax whose values are already wrong says nothing of its own."""
        try:
            yield
        except NotJudged:
            raise
        except Failed:
            self.judged_only_if(check, because)
            raise

    def accept(self, note: str) -> None:
        """Record an equivalent form the check accepted, for the feedback."""
        self.notes.append(note)


@dataclass(frozen=True)
class Check:
    exercise: str
    name: str
    points: float
    run: Callable[[Context], str]
    hidden: bool = False
    # Probe keys the training runs on the inputs of (a batch of the training's shapes):
    # each must have returned, since the training probe is the student's to patch. A
    # function raising on an input the training never passes costs only its own test.
    uses: tuple[str, ...] = ()
    # Checks (full names) that must pass for this one to count: what the kernel merely
    # reports (a flag, a count) earns a mark only beside values the grader verified.
    requires: tuple[str, ...] = ()
    timed: bool = False  # reads the grader's timing, which the self-check has not
    options: Any = None  # its exercise's settings (the assignment's table), set when configured
    reads: tuple[str, ...] = ()  # probe keys it reads, checked against the steps at load

    @property
    def full_name(self) -> str:
        return f"{self.exercise}.{self.name}"

    @property
    def summary(self) -> str:
        """What the check asks, in words: its docstring's first line, or its name."""
        doc = (self.run.__doc__ or "").strip().splitlines()
        return doc[0].rstrip(".") if doc else self.name.replace("_", " ")

    def evaluate(self, context: Context) -> TestResult:
        """Run the check; a hostile value that trips it up fails the test, never the grader.

        A hidden test says what failed but not the values behind it: its message would
        otherwise hand out the reference's answers on the hidden inputs."""
        context.notes = []
        context.options = GraderOptions(self.options)
        if self.exercise in context.forbidden:
            return self.result(False, context.forbidden[self.exercise], cause=Cause.FORBIDDEN)
        try:
            context.expect_observed(self.uses)
            message = self.run(context)
        except GraderFault:
            raise
        except NotJudged as failure:
            return self.result(False, failure.message, state=NOT_JUDGED, cause=failure.cause)
        except NotMeasured as unmeasured:
            return self.result(True, unmeasured.message, state=NOT_MEASURED)
        except ProbeFailed as failure:
            if self.hidden:
                return self.result(False, failure.hidden_message(), cause=failure.cause)
            return self.failed(failure)
        except Failed as failure:
            if self.hidden:
                return self.result(False, f"{self.summary}: not met on the hidden inputs",
                                   cause=failure.cause)
            return self.failed(failure)
        except Exception as error:  # noqa: BLE001 - malformed observations land here
            said = "" if self.hidden else f": {shorten(str(error), 300)}"  # may quote values
            return self.result(False, f"could not check the value returned: "
                                      f"{type(error).__name__}{said}", cause=Cause.UNCHECKABLE)
        if self.hidden:
            return self.result(True, f"{self.summary}: met on the hidden inputs.")
        if context.notes:
            message = f"{message} Accepted: {'; '.join(context.notes)}."
        return self.result(True, message)

    def result(self, passed: bool, message: str, expected: str | None = None,
               got: str | None = None, state: str = JUDGED,
               cause: Cause | None = None) -> TestResult:
        return TestResult(
            name=self.full_name, exercise=self.exercise, max_points=self.points,
            points=self.points if passed else 0.0, passed=passed, message=message,
            expected=expected, got=got, hidden=self.hidden, state=state, cause=cause,
        )

    def failed(self, failure: Failed) -> TestResult:
        """The failed test a visible check's Failed says: its message, values and cause."""
        return self.result(False, failure.message, failure.expected, failure.got,
                           cause=failure.cause)


def root_causes(check: Check, results: dict[str, TestResult]) -> list[str]:
    """What failed in the functions a failed training check uses, one line per function:
    the training failed because of them, and the student fixes them, not the training. A
    timed check gets none: a wrong value elsewhere says nothing of what took the time."""
    if check.timed:
        return []
    causes = []
    for function in functions_of(check.uses):
        failed = [r for r in results.values() if r.exercise == function and not r.passed
                  and r.state == JUDGED]
        failed.sort(key=lambda r: r.hidden)  # a visible test says more
        if failed:
            causes.append(f"{function} fails {failed[0].name.split('.', 1)[1]} "
                          f"({shorten(failed[0].message, 200).rstrip('.')}), see {function}")
    return causes


def evaluate_all(checks: Sequence[Check], context: Context) -> list[TestResult]:
    """Every check's result, in order (a check may read the verdicts before it), a check
    whose `requires` failed failing with it (a required check left out, as the self-check
    leaves out hidden ones, gates nothing), and a failed training naming the failures of
    the functions it uses."""
    context.results = results = {}
    for check in checks:
        results[check.full_name] = check.evaluate(context)
        outcome = results[check.full_name]
        causes = root_causes(check, results) if not outcome.passed else []
        if causes and outcome.state == JUDGED \
                and outcome.cause not in (Cause.BLANK, Cause.USES_FAILED):
            outcome.message = f"{outcome.message} — likely because {'; '.join(causes)}"
    for check in checks:
        failed = [name for name in check.requires
                  if name in results and not results[name].passed]
        if failed and results[check.full_name].passed:
            results[check.full_name] = check.result(
                False, f"counts only with {', '.join(failed)} passing: what the kernel "
                       "reports here is not enough on its own", cause=Cause.REQUIRES)
    return list(results.values())


class Registry(list):
    """The checks of one module, in the order they are declared."""

    def add(self, exercise: str, points: float, hidden: bool = False,
            uses: tuple[str, ...] = (), requires: tuple[str, ...] = (), timed: bool = False,
            reads: tuple[str, ...] = ()):
        def register(function: Callable[[Context], str]) -> Callable[[Context], str]:
            self.append(Check(exercise, function.__name__, points, function, hidden, uses,
                              requires, timed, reads=reads))
            return function

        return register
