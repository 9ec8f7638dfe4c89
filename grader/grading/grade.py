"""Grading one assignment of one submission: execute, probe, check, score.

notebook → execution (student kernel) → observations (plain data) → checks (here) → Result.
The reference side (grader/grading/reference.py) runs the same probes on the solution's functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader import __version__, timeline
from grader.authoring import course
from grader.authoring.config import Settings
from grader.authoring.exercise import text_observations
from grader.grading.assignment import Assignment, Attempt
from grader.grading.checks import Context, GraderFault, evaluate_all
from grader.grading.forbidden import forbidden_uses
from grader.grading.handout import left_out, read_handout, recorded_demos, unwritten
from grader.grading.inputs import build_inputs, late_inputs
from grader.grading.notebook import NotebookUnreadable, read_notebook
from grader.grading.observe import observe
from grader.grading.reference import ReferenceTiming
from grader.grading.results import Cause, Result, TestResult, Timing
from grader.grading.source import ParsedNotebook, parse_notebook
from grader.grading.timings import flattered, timing_of
from grader.grading.wording import KERNEL_NOT_STARTED, not_graded
from grader.sandbox.budget import Budget
from grader.sandbox.bwrap import describe as describe_sandbox
from grader.sandbox.bwrap import hiding, use_bwrap
from grader.sandbox.kernels import KernelPool
from grader.students.identity import shown
from grader.students.submissions import Submission, match_notebooks

ALONE_RUNS = 2  # the reference's timed steps, timed again alone


def fail_all(assignment: Assignment, message: str, cause: Cause) -> list[TestResult]:
    """Every test failed for one reason that kept the notebook from being judged."""
    return [check.result(False, message, cause=cause) for check in assignment.checks]


def missing_reason(submission: Submission, notebook: str) -> str:
    """Why no file of `submission` is the notebook of an assignment: nothing handed in, or
    files that could not be read (their reasons kept, whatever matched)."""
    reason = f"no notebook {notebook}.ipynb was handed in"
    unreadable = [f"{shown(path.name)} {why}" for path, why in submission.unreadable.items()]
    if unreadable:
        reason += ("; what was handed in could not be read, so which assignment it is "
                   "cannot be told: " + "; ".join(unreadable))
    return reason


def handed_in_as(submission: Submission, notebook: Path | None) -> str:
    """The file a result names: its path inside the submissions folder (a notebook from a
    zip: the zip's, then its path inside), never the instructor's own folders."""
    if notebook is None:
        return submission.path.name
    handed = submission.handed.get(notebook)
    folder = submission.path.parent
    if handed is not None and handed.via is not None and handed.via.is_relative_to(folder):
        return f"{handed.via.relative_to(folder)}/{handed.original}"
    return str(notebook.relative_to(folder)) if notebook.is_relative_to(folder) \
        else notebook.name


@contextmanager
def reading_student_text(path: Path, step: str) -> Iterator[None]:
    """Steps that read the student's text are bounded and total by design
    (grader/grading/source.py); one that raises still fails that notebook with the reason,
    never the batch."""
    try:
        yield
    except GraderFault:
        raise
    except Exception as error:  # noqa: BLE001 - the student's text tripped it
        raise NotebookUnreadable(f"{path.name} could not be read: {type(error).__name__} "
                                 f"while {step}") from None


def grade_notebook(path: Path, assignment: Assignment, result: Result,
                   kernels: KernelPool) -> list[TestResult]:
    """The tests of the assignment on the notebook at `path` (timings, curves and notes go
    to `result`)."""
    handout = read_handout(course.current().exercises / f"{assignment.notebook}.ipynb")
    try:
        notebook = read_notebook(path)
        with reading_student_text(path, "reading its code"):
            inputs = build_inputs(assignment, notebook)
            parsed = parse_notebook(notebook)  # once: the demos, the blanks, forbidden calls
            demos = left_out(parsed, recorded_demos(handout))
            blank = unwritten(parsed, handout)
    except NotebookUnreadable as error:
        return fail_all(assignment, str(error), Cause.UNREADABLE)
    late = late_inputs(assignment, result.digest)
    reference = ReferenceTiming(assignment, late)  # read while the kernel boots
    try:
        return probed_and_judged(path, parsed, demos, blank, Attempt(
            assignment, notebook, inputs, late, kernels,
            Budget.start(assignment.settings.total_timeout), reference, result))
    finally:  # however it ends, nothing of the reference's runs on beside the next
        reference.wait()


def probed_and_judged(path: Path, parsed: ParsedNotebook, demos: set[int], blank: list[str],
                      attempt: Attempt) -> list[TestResult]:
    """The attempt's notebook run and probed in its kernels, and the checks on it."""
    assignment, result = attempt.assignment, attempt.result
    if blank:
        result.notes.append(f"Not written yet, as handed out: {', '.join(blank)} (still "
                            "`raise NotImplementedError()`).")
    started = time.perf_counter()
    try:
        with timeline.span("the notebook and the probes, in the kernel"):
            observations, seconds = observe(attempt, demos)
    except RuntimeError as error:  # the kernel died before it ran a line of the notebook
        result.fault = f"{KERNEL_NOT_STARTED}: {error}"
        result.notes.append(f"{KERNEL_NOT_STARTED.capitalize()}: {error}. This is the "
                            "grader's fault, not your notebook's: it will be graded again.")
        return fail_all(assignment, not_graded(f"{KERNEL_NOT_STARTED} ({error})"),
                        Cause.KERNEL)
    result.execution_seconds += time.perf_counter() - started
    try:
        with reading_student_text(path, "reading its answers and calls"):
            observations.update(text_observations(assignment.exercises, attempt.notebook))
            forbidden = forbidden_uses([e.forbidden for e in assignment.exercises], parsed,
                                       observations)
    except NotebookUnreadable as error:
        return fail_all(assignment, str(error), Cause.UNREADABLE)
    with timeline.span("the checks"):
        return judged(attempt, observations, seconds, forbidden)


def judged(attempt: Attempt, observations: dict, seconds: dict[str, float],
           forbidden: dict[str, str]) -> list[TestResult]:
    """The checks on what the attempt's kernels observed, beside the reference's, whose
    timed steps ran on the attempt's late inputs beside the kernel's."""
    assignment, result = attempt.assignment, attempt.result
    timings, timed_reference = timed_beside(attempt, observations, seconds)
    reference = attempt.reference.observed()
    parts = {work.name for work in assignment.timed if work.step.part_of}
    # A part explains its step's time (where it was timed at all): not a figure of its own.
    result.timings.extend(timing for timing in timings if timing.step not in parts)
    context = Context(observations, {**reference.observations, **timed_reference},
                      {**attempt.inputs, **attempt.late}, {t.step: t for t in timings},
                      assignment.hints, planned=assignment.keys, forbidden=forbidden)
    tests = evaluate_all(assignment.checks, context)
    for exercise in assignment.exercises:
        if exercise.curves is not None:
            result.curves.extend(exercise.curves(context))
    return tests


def timed_beside(attempt: Attempt, observations: dict, seconds: dict[str, float],
                 ) -> tuple[list[Timing], dict]:
    """The timed steps' figures, and the reference's observations of them.

    The reference's steps ran beside the kernel's, and a step that lasts longer than the
    reference's had only its start slowed by it, while the reference's whole step was:
    its figure then flatters the student. So where a step's ratio is above ALONE_ABOVE of
    its bound, or the kernel ran on more than one core (its own threads or processes
    beside its step, slowing the reference's), the reference's steps are timed again,
    alone now that the kernel is gone, ALONE_RUNS times, and the verdict reads the least
    of each step's figures: a load on the machine only ever adds to one (the reference's
    epoch took 0.34 to 0.53 s of CPU time here, from one minute to the next, and twice in
    six runs both its figures were slow). Only the steps that give a verdict count: a part
    of one (a function timed over the epoch's batches) only words its step's message, and
    a step slow enough for that to matter is timed again for its own ratio (a part's
    milliseconds are noise: one of 6 ms read 2.4×)."""
    assignment, settings = attempt.assignment, attempt.settings
    reference_seconds, observed = attempt.reference.finish()
    timed = attempt.reference.timed_steps()  # a part only where its step's verdict needed it

    def figures(reference: dict[str, float]) -> list[Timing]:
        return [timing_of(work, observations, seconds, reference, settings) for work in timed]

    timings = figures(reference_seconds)
    verdicts = [timing for timing, work in zip(timings, timed, strict=True)
                if not work.step.part_of]
    if attempt.reference.beside and any(map(flattered, verdicts)):
        explained = frozenset(attempt.reference.explained)
        runs = [reference_seconds, *(ReferenceTiming(assignment, attempt.late,
                                                     explained).finish()[0]
                                     for _ in range(ALONE_RUNS))]
        timings = figures({key: min(run[key] for run in runs) for key in reference_seconds})
    return timings, observed


def grade_submission(submission: Submission, assignment: Assignment | Settings,
                     kernels: KernelPool | None = None,
                     matched: dict[str, Path] | None = None) -> Result:
    """The verdict on one assignment of one student's submission; never raises for bad
    student input.

    `matched` says which submitted file is which assignment's (by default, matched here,
    for this assignment alone); `kernels` hands out a kernel per notebook: a batch passes
    one pool for all its submissions, so the next kernel boots while this one is graded.
    A batch passes the Assignment it built once; settings are made one here.
    """
    assignment = Assignment.of(assignment)
    settings = assignment.settings
    if matched is None:
        matched = match_notebooks(submission, [settings.notebook])
    notebook = matched.get(settings.notebook)
    handed = submission.handed.get(notebook) if notebook is not None else None
    result = Result(
        student=submission.student,
        assignment=settings.notebook,
        source=handed_in_as(submission, notebook),
        digest=submission.digest(),
        grader_version=__version__,
        config_digest=settings.digest(),
        seeds={"inputs": settings.seed},
        name=submission.name,
        lms_id=submission.lms_id,
        possible=assignment.possible,
        lateness=handed.lateness if handed else None,
    )
    result.notes = list(submission.problems)
    unbounded = describe_sandbox(settings.sandbox)
    if unbounded:
        result.notes.append(unbounded)
    result.unsandboxed = not use_bwrap(settings.sandbox)
    if submission.refused:
        result.notes.append(f"Not graded: {submission.refused}.")
        result.tests = fail_all(assignment, not_graded(submission.refused), Cause.REFUSED)
        return result
    if notebook is None:
        result.missing = missing_reason(submission, settings.notebook)
        return result
    pool = kernels or KernelPool(hiding(settings.sandbox, submission.path.parent),
                                 settings.device.startswith("cuda"), ahead=False)
    try:
        result.tests = grade_notebook(notebook, assignment, result, pool)
    finally:
        if kernels is None:
            pool.close()
    return result
