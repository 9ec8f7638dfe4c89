"""Checks: small pure functions from observations to a verdict with a message.

A check reads what the student's functions returned (already plain data, already loaded
in the grader's process) beside what the reference returned on the same inputs. Helpers
here raise `Failed` with a message that names the problem, so a check reads top-down as a
list of expectations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.kernel.probing import function_of
from grader.results import TestResult, Timing

HINTS = {
    "NotImplementedError": "not implemented yet: replace `raise NotImplementedError()`",
    "Timeout": "it ran too long (an infinite loop?)",
    "Missing": "the function is missing: keep the name and signature the notebook gives",
    "Unobserved": "the grader could not run it",
}


class Failed(Exception):
    """Ends a check as failed; carries what the student should read."""

    def __init__(self, message: str, expected: str | None = None, got: str | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.got = got


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
    """The student's function raised, timed out or is missing: the message is the
    student's own error, safe to show even for a hidden test."""


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
            detail = f"{entry['error']}: {entry['message']}".strip(": ")
            explained = "; ".join(h for h in hints if h)
            raise ProbeFailed(f"{key} failed — {detail}"
                              + (f" ({explained})" if explained else ""),
                              got=entry.get("traceback") or None)
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
                raise Failed(f"the training uses {', '.join(blank)}, not implemented yet: "
                             f"implement {pronoun} first")
            raise Failed(f"the training uses {', '.join(blank)}, whose own probes did not "
                         f"all return: fix {pronoun} first")

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
        try:
            context.expect_observed(self.uses)
            message = self.run(context)
        except GraderFault:
            raise
        except ProbeFailed as failure:
            return self.result(False, failure.message, *(
                (None, None) if self.hidden else (failure.expected, failure.got)))
        except Failed as failure:
            if self.hidden:
                return self.result(False, f"{self.summary}: not met on the hidden inputs")
            return self.result(False, failure.message, failure.expected, failure.got)
        except Exception as error:  # noqa: BLE001 - malformed observations land here
            return self.result(False, f"could not check the value returned: "
                                      f"{type(error).__name__}: {str(error)[:300]}")
        if self.hidden:
            return self.result(True, f"{self.summary}: met on the hidden inputs.")
        if context.notes:
            message = f"{message} Accepted: {'; '.join(context.notes)}."
        return self.result(True, message)

    def result(self, passed: bool, message: str, expected: str | None = None,
               got: str | None = None) -> TestResult:
        return TestResult(
            name=self.full_name, exercise=self.exercise, max_points=self.points,
            points=self.points if passed else 0.0, passed=passed, message=message,
            expected=expected, got=got, hidden=self.hidden,
        )


def evaluate_all(checks: Sequence[Check], context: Context) -> list[TestResult]:
    """Every check's result, a check whose `requires` failed failing with it (a required
    check left out, as the self-check leaves out hidden ones, gates nothing)."""
    results = {check.full_name: check.evaluate(context) for check in checks}
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
