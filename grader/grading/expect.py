"""The assertion library of checks: `expect_*` helpers that raise `Failed` with a message
naming the problem, the usual wrong forms a message can name, and the counterexamples a
failure is told with. Apart from the check framework (grader/grading/checks.py), so that a check
reads top-down as a list of expectations and exercises share these, never each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from grader.grading.checks import Context, Failed, GraderFault, NotJudged, NotMeasured, ProbeFailed
from grader.grading.results import Timing

# A reference step whose wall-clock time exceeds its CPU time this many times ran on a busy
# machine (it runs on one thread: idle, the two agree within a few per cent).
BUSY_FACTOR = 1.5
SHOWN_ASLEEP = 0.01  # seconds a kernel slept in a timed step before its message says so


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


def with_counterexample(ctx: Context, key: str, names: Sequence[str], agree: Agreement):
    """A failure inside told with the smallest candidate input of `key` (inputs and probe
    alike) on which the student's function and the reference's disagree."""
    return told_with(lambda: counterexample(ctx, key, names, agree))


def counterexample(ctx: Context, key: str, names: Sequence[str], agree: Agreement) -> str:
    """What with_counterexample adds: nothing where the probe of `key` itself failed, as the
    student's own error is the message already."""
    try:
        got = ctx.got(key)
    except Failed:
        return ""
    return smallest_difference(ctx.inputs[key], got, ctx.want(key), names, agree)


def small_values(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """Values with one decimal, for a counterexample a student can follow by hand."""
    return (torch.randn(shape, generator=generator) * 2).round(decimals=1)


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


def expect_gradient(grad: Any, where: str, advice: str) -> Any:
    """The gradient a probe read back; None means the student's function cut the autograd
    graph, which the message says with `where` it should have reached and `advice`."""
    if grad is None:
        raise Failed(f"no gradient {where}: {advice}", "a gradient", "None")
    return grad


def expect_per_example(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """Each loss belongs to its own example: taken in the order of the reference's losses,
    the student's rise (or fall, where a sign is flipped) strictly, as neither a constant
    nor the losses of other data do."""
    steps = got.double().reshape(-1)[want.double().reshape(-1).argsort()].diff()
    if not (bool((steps > 0).all()) or bool((steps < 0).all())):
        raise Failed(f"{what} do not follow the examples: each must be computed from its own "
                     "example's prediction and target", describe(want), describe(got))


def same_losses(rtol: float, atol: float) -> Agreement:
    """Losses of one candidate input agree as the checks accept them: shaped (n,) or (n, 1)."""
    return lambda _, got, want: isinstance(got, torch.Tensor) and same_value(
        got.reshape(-1), want.reshape(-1), rtol, atol)


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


def slowest_part(whole: Timing | None, parts: dict[str, Timing | None]) -> tuple[str, str] | None:
    """The function that takes most of a slow step's extra time, from measurement: each of
    `parts` (by function) timed alone over the step's work, from outside the kernel as the
    step is, beside the reference's. (its name, the figures in words), or None where no
    one function holds at least half of the extra time."""
    if whole is None or None in whole.judged_seconds:
        return None
    student, reference = whole.judged_seconds
    measured = [(timing.judged_seconds[0] - timing.judged_seconds[1], function, timing)
                for function, timing in parts.items()
                if timing is not None and None not in timing.judged_seconds
                and timing.judged_seconds[1] > 0]
    if not measured or student <= reference:
        return None
    extra, function, timing = max(measured, key=lambda found: found[0])
    if extra < (student - reference) / 2:
        return None
    own, theirs = timing.judged_seconds
    return function, (f"{function} alone takes {own:.2f} s over the epoch's batches (the "
                      f"epoch {student:.2f} s), {own / theirs:.0f}× the reference's "
                      f"{theirs:.3f} s")


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
