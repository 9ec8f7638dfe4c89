"""Checks: small pure functions from observations to a verdict with a message.

A check reads what the student's functions returned (already plain data, already loaded
in the grader's process) beside what the reference returned on the same inputs. Helpers
here raise `Failed` with a message that names the problem, so a check reads top-down as a
list of expectations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.budget import OUT_OF_TIME
from grader.diagnosis import shorten
from grader.kernel.probing import function_of
from grader.results import JUDGED, NOT_JUDGED, NOT_MEASURED, TestResult, Timing

HINTS = {
    "NotImplementedError": "not implemented yet: replace `raise NotImplementedError()`",
    "Timeout": "it ran too long (an infinite loop?)",
    "Missing": "the function is missing: keep the name and signature the notebook gives",
    "Unobserved": "the grader could not run it",
    OUT_OF_TIME: ("the submission had used its whole time budget before this ran: make "
                  "the slow or crashing cells named in the notes finish"),
}

# A reference step whose wall-clock time exceeds its CPU time this many times ran on a busy
# machine (it runs on one thread: idle, the two agree within a few per cent).
BUSY_FACTOR = 1.5
SHOWN_ASLEEP = 0.01  # seconds a kernel slept in a timed step before its message says so
HIDDEN_TEXT = ("[what it said is not shown for a hidden test, as it could quote the hidden "
               "inputs: call the function on inputs of your own to see it]")
USES_BLANK = "the training uses"  # how a training check on functions not all observed begins


class Failed(Exception):
    """Ends a check as failed; carries what the student should read."""

    def __init__(self, message: str, expected: str | None = None, got: str | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.got = got


class NotJudged(Failed):
    """This check's property cannot be judged: an earlier check, the root cause, failed. No
    points, and the message names that check instead of blaming this property."""


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

    def __init__(self, message: str, got: str | None = None, said: tuple[str, str] = ("", "")):
        super().__init__(message, None, got)
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
        """The student's value for a probe, or Failed saying why there is none."""
        entry = self.student.get(key)
        if entry is None:
            raise ProbeFailed(f"{key}: {HINTS['Unobserved']} (the kernel stopped before this "
                              "probe or never returned it)")
        if not entry["ok"]:
            hints = [HINTS.get(entry["error"], "")] + [
                hint for prefix, pairs in self.hints.items() if key.startswith(prefix)
                for words, hint in pairs if words in entry["message"]]
            explained = f" ({'; '.join(h for h in hints if h)})" if any(hints) else ""
            said = str(entry["message"])
            head = f"{key} failed — {entry['error']}{': ' if said else ''}"
            raise ProbeFailed(f"{head}{said}{explained}", got=entry.get("traceback") or None,
                              said=(head, said))
        return entry["value"]

    def want(self, key: str) -> Any:
        """The reference's value; its absence is a grader fault, not the student's."""
        entry = self.reference[key]
        if not entry["ok"]:
            raise GraderFault(f"the reference failed its own probe {key}: {entry['message']}")
        return entry["value"]

    def expect_observed(self, functions: Sequence[str]) -> None:
        """Training marks are for training with the student's functions: each of them must
        have answered every probe the grader planned for it, whatever the training probe
        reported, since the probe code in the kernel is the student's to patch. A probe
        that is missing counts as much as one still blank."""
        missing: dict[str, str] = {}
        for function in functions:
            keys = sorted(k for k in self.planned if function_of(k) == function)
            for key in keys or [f"{function}.*"]:
                entry = self.student.get(key)
                if entry is None or not entry.get("ok"):
                    missing.setdefault(function, entry["error"] if entry else "not observed")
        if missing:
            blank = sorted(missing)
            pronoun = "it" if len(blank) == 1 else "them"
            if all(why in ("NotImplementedError", "Missing") for why in missing.values()):
                raise Failed(f"{USES_BLANK} {', '.join(blank)}, not implemented yet: "
                             f"implement {pronoun} first")
            raise Failed(f"{USES_BLANK} {', '.join(blank)}, whose own probes did not "
                         f"all return: fix {pronoun} first")

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

    def with_counterexample(self, key: str, names: Sequence[str], agree: Agreement):
        """A failure inside told with the smallest candidate input of `key` (inputs and probe
        alike) on which the student's function and the reference's disagree."""
        return told_with(lambda: self.smallest_difference(key, names, agree))

    def smallest_difference(self, key: str, names: Sequence[str], agree: Agreement) -> str:
        try:
            got = self.got(key)
        except Failed:  # the student's own error is the message already
            return ""
        return smallest_difference(self.inputs[key], got, self.want(key), names, agree)


@dataclass(frozen=True)
class Check:
    exercise: str
    name: str
    points: float
    run: Callable[[Context], str]
    hidden: bool = False
    uses: tuple[str, ...] = ()  # functions whose probes must all have returned
    # Checks (full names) that must pass for this one to count: what the kernel merely
    # reports (a flag, a count) earns a mark only beside values the grader verified.
    requires: tuple[str, ...] = ()
    timed: bool = False  # reads the grader's timing, which the self-check has not
    options: Any = None  # its exercise's settings (the assignment's table), set when configured

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
            return self.result(False, context.forbidden[self.exercise])
        try:
            context.expect_observed(self.uses)
            message = self.run(context)
        except GraderFault:
            raise
        except NotJudged as failure:
            return self.result(False, failure.message, state=NOT_JUDGED)
        except NotMeasured as unmeasured:
            return self.result(True, unmeasured.message, state=NOT_MEASURED)
        except ProbeFailed as failure:
            if self.hidden:
                return self.result(False, failure.hidden_message())
            return self.result(False, failure.message, failure.expected, failure.got)
        except Failed as failure:
            if self.hidden:
                return self.result(False, f"{self.summary}: not met on the hidden inputs")
            return self.result(False, failure.message, failure.expected, failure.got)
        except Exception as error:  # noqa: BLE001 - malformed observations land here
            said = "" if self.hidden else f": {shorten(str(error), 300)}"  # may quote values
            return self.result(False, f"could not check the value returned: "
                                      f"{type(error).__name__}{said}")
        if self.hidden:
            return self.result(True, f"{self.summary}: met on the hidden inputs.")
        if context.notes:
            message = f"{message} Accepted: {'; '.join(context.notes)}."
        return self.result(True, message)

    def result(self, passed: bool, message: str, expected: str | None = None,
               got: str | None = None, state: str = JUDGED) -> TestResult:
        return TestResult(
            name=self.full_name, exercise=self.exercise, max_points=self.points,
            points=self.points if passed else 0.0, passed=passed, message=message,
            expected=expected, got=got, hidden=self.hidden, state=state,
        )


def root_causes(check: Check, results: dict[str, TestResult]) -> list[str]:
    """What failed in the functions a failed training check uses, one line per function:
    the training failed because of them, and the student fixes them, not the training."""
    causes = []
    for function in check.uses:
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
        if causes and outcome.state == JUDGED and not outcome.message.startswith(USES_BLANK):
            outcome.message = f"{outcome.message} — likely because {'; '.join(causes)}"
    for check in checks:
        failed = [name for name in check.requires
                  if name in results and not results[name].passed]
        if failed and results[check.full_name].passed:
            results[check.full_name] = check.result(
                False, f"counts only with {', '.join(failed)} passing: what the kernel "
                       "reports here is not enough on its own")
    return list(results.values())


class Registry(list):
    """The checks of one module, in the order they are declared."""

    def add(self, exercise: str, points: float, hidden: bool = False,
            uses: tuple[str, ...] = (), requires: tuple[str, ...] = (), timed: bool = False):
        def register(function: Callable[[Context], str]) -> Callable[[Context], str]:
            self.append(Check(exercise, function.__name__, points, function, hidden, uses,
                              requires, timed))
            return function

        return register


def describe(value: Any) -> str:
    """A short, readable account of a value for 'expected' and 'got'."""
    if isinstance(value, torch.Tensor):
        body = torch.Tensor.__repr__(value.flatten()[:8]) if value.numel() else "[]"
        more = " …" if value.numel() > 8 else ""
        return f"tensor shape {tuple(value.shape)} {value.dtype}: {body}{more}"
    if isinstance(value, dict) and "__kind__" in value:
        return {
            "too_large": f"a tensor too large to keep, shape {value.get('shape')}",
            "too_long": f"a sequence too long to keep ({value.get('length')} items)",
        }.get(value["__kind__"], f"an object of type {value.get('type')}")
    return f"{type(value).__name__}: {value!r}"[:300]


COUNTEREXAMPLE = "the smallest case where yours differs"
SHOWN_ELEMENTS = 24  # a larger tensor is shown by its shape
SHOWN_CHARACTERS = 160
# Whether the student's output on one candidate input (its arguments) agrees with the
# reference's: (arguments, student's output, reference's output).
Agreement = Callable[[list, Any, Any], bool]


def shown(value: Any) -> str:
    """A value as a counterexample shows it: numbers to 4 digits, tensors as nested lists,
    several outputs joined by "and", the text capped."""
    if isinstance(value, torch.Tensor) and value.numel() <= SHOWN_ELEMENTS:
        text = str((value.double().round(decimals=4) if value.is_floating_point()
                    else value).tolist())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{value:.4g}"
    elif isinstance(value, list) and value:
        text = " and ".join(shown(item) for item in value[:4])
    else:
        text = describe(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + " …"


def shown_output(entry: Any) -> str:
    """One call's output as the probes' `on_each_case` sent it: what it returned or raised."""
    if isinstance(entry, dict) and "raised" in entry:
        return f"raises {str(entry['raised'])[:100]}"
    return shown(entry.get("out") if isinstance(entry, dict) else entry)


def smallest_difference(cases: list, got: Any, want: list, names: Sequence[str],
                        agree: Agreement) -> str:
    """' — the smallest case where yours differs: …' for the first of the candidate inputs
    (`cases`, from small to large, each the arguments of one call, named by `names`) on
    which the student's output and the reference's disagree; '' where they agree on all, or
    the student's side sent back something other than one output per case."""
    if not isinstance(got, list) or len(got) != len(cases):
        return ""
    for arguments, mine, theirs in zip(cases, got, want, strict=True):
        if "out" not in theirs:
            raise GraderFault(f"the reference raised {theirs.get('raised')} on a candidate "
                              f"input: {shown(arguments)}")
        if isinstance(mine, dict) and "out" in mine and agree(arguments, mine["out"],
                                                              theirs["out"]):
            continue
        case = ", ".join(f"{name} = {shown(value)}"
                         for name, value in zip(names, arguments, strict=True))
        return (f" — {COUNTEREXAMPLE}: {case} gives {shown_output(mine)}, expected "
                f"{shown_output(theirs)}")
    return ""


@contextmanager
def told_with(more: Callable[[], str]) -> Iterator[None]:
    """A failure inside, its message followed by `more()`, computed only then. A NotJudged
    keeps its own (it names the root cause), and so does the student's own error."""
    try:
        yield
    except (NotJudged, ProbeFailed):
        raise
    except Failed as failure:
        failure.message += more()
        raise


def expect_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, dict) and value.get("__kind__") == "too_large":
        raise Failed(f"{what} is a tensor too large to check (shape {value.get('shape')}): "
                     "return only what the contract asks for", None, describe(value))
    if not isinstance(value, torch.Tensor):
        raise Failed(f"{what} must be a torch.Tensor", "a torch.Tensor", describe(value))
    return value


def expect_shape(tensor: torch.Tensor, shapes: Sequence[tuple[int, ...]], what: str) -> None:
    if tuple(tensor.shape) not in [tuple(s) for s in shapes]:
        wanted = " or ".join(str(tuple(s)) for s in shapes)
        raise Failed(f"{what} has shape {tuple(tensor.shape)}, expected {wanted}",
                     wanted, str(tuple(tensor.shape)))


def expect_finite(tensor: torch.Tensor, what: str) -> None:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise Failed(f"{what} holds {bad} NaN or infinite value(s)", None, describe(tensor))


def max_difference(got: torch.Tensor, want: torch.Tensor) -> float:
    difference = (got.double() - want.double()).abs()
    return float(difference.max()) if difference.numel() else 0.0


def expect_close(got: torch.Tensor, want: torch.Tensor, what: str,
                 rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Same shape, finite, and within the stated tolerance of the reference."""
    expect_shape(got, [tuple(want.shape)], what)
    expect_finite(got, what)
    if not torch.allclose(got.double(), want.double(), rtol=rtol, atol=atol):
        raise Failed(
            f"{what} differs from the reference by up to {max_difference(got, want):.3g} "
            f"(tolerance rtol={rtol:g}, atol={atol:g})",
            describe(want), describe(got),
        )


@dataclass(frozen=True)
class WrongForm:
    """A usual mistake, computed in the grader on the same inputs, and what to tell a
    student whose output matches it."""

    feedback: str
    value: Any  # a tensor, or a number


def same_value(got: Any, value: Any, rtol: float, atol: float) -> bool:
    if isinstance(value, torch.Tensor):
        return (isinstance(got, torch.Tensor) and got.shape == value.shape
                and bool(torch.isfinite(value.double()).all())
                and torch.allclose(got.double(), value.double(), rtol=rtol, atol=atol))
    return isinstance(got, int | float) and abs(got - value) <= atol + rtol * abs(value)


def name_the_wrong_form(got: Any, forms: Sequence[WrongForm], expected: str | None = None,
                        rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Failed, with its feedback, where `got` (already known to be wrong) matches one of the
    usual wrong forms; nothing otherwise."""
    for form in forms:
        if same_value(got, form.value, rtol, atol):
            raise Failed(form.feedback, expected, describe(got))


def expect_close_naming(got: torch.Tensor, want: torch.Tensor, what: str,
                        forms: Sequence[WrongForm], rtol: float = 1e-4,
                        atol: float = 1e-6) -> None:
    """expect_close, but a value that matches a usual wrong form is told which one."""
    if not same_value(got, want, rtol, atol):
        name_the_wrong_form(got, forms, describe(want), rtol, atol)
    expect_close(got, want, what, rtol, atol)


def expect_fast_enough(timing: Timing | None, what: str, advice: str) -> str:
    """A timed step's verdict that load cannot decide: on CPU time wherever the kernel's was
    read (its cgroup's, beside the reference's thread clock; the time it slept added), above
    the bound a fail whatever the wall clock says. Only without it, on the wall clock, and
    not measured (at no cost) where the reference shows the machine too busy for that."""
    if timing is None or timing.wall_ratio is None:
        raise Failed(f"{what} did not run in the timed step", None, None)
    if timing.cpu_ratio is not None:
        return by_cpu_time(timing, what, advice)
    return by_wall_clock(timing, what, advice)


def by_cpu_time(timing: Timing, what: str, advice: str) -> str:
    ratio, asleep = timing.cpu_ratio, timing.asleep_seconds
    spent = f"{timing.student_cpu_seconds:.2f} s of CPU time" + (
        f" and {asleep:.2f} s asleep" if asleep >= SHOWN_ASLEEP else "")
    versus = f"the reference's {timing.reference_cpu_seconds:.2f} s of CPU time"
    clock = f"by the wall clock {timing.student_seconds:.2f} s, {timing.wall_ratio:.2f}×"
    if ratio <= timing.max_ratio:
        return f"{spent} on {timing.device}, {ratio:.2f}× {versus} ({clock})."
    raise Failed(f"{what} took {spent} on {timing.device}, {ratio:.1f}× {versus} (allowed "
                 f"{timing.max_ratio:g}×; {clock}): {advice}", f"≤ {timing.max_ratio:g}×",
                 f"{ratio:.1f}×")


def by_wall_clock(timing: Timing, what: str, advice: str) -> str:
    ratio, reference_cpu = timing.wall_ratio, timing.reference_cpu_seconds
    why = timing.cpu_unread or "the kernel's CPU time was not read"
    if reference_cpu and timing.reference_seconds > BUSY_FACTOR * reference_cpu:
        raise NotMeasured(f"not measured: the machine was busy (the reference's {what} took "
                          f"{timing.reference_seconds / reference_cpu:.1f}× its CPU time by the "
                          f"wall clock) and {why}, so the wall clock alone cannot judge; the "
                          "speed mark is kept")
    if ratio <= timing.max_ratio:
        return (f"{timing.student_seconds:.2f} s on {timing.device}, {ratio:.2f}× the "
                f"reference ({timing.reference_seconds:.2f} s).")
    raise Failed(f"{what} took {timing.student_seconds:.2f} s on {timing.device}, "
                 f"{ratio:.1f}× the reference's {timing.reference_seconds:.2f} s "
                 f"(allowed {timing.max_ratio:g}×): {advice}", f"≤ {timing.max_ratio:g}×",
                 f"{ratio:.1f}×")
