"""Grading one submission: execute, probe, check, score.

notebook → execution (student kernel) → observations (plain data) → checks (here) → Result.
The reference side (grader/reference.py) runs the same probes on the solution's functions.
"""

from __future__ import annotations

import time
from pathlib import Path

from grader import __version__
from grader.checks import Check, Context, evaluate_all
from grader.config import Settings
from grader.exercises import configured, hints_for, modules_for, notebooks
from grader.inputs import build_inputs, late_inputs
from grader.kernels import KernelPool
from grader.notebook import NotebookUnreadable, read_notebook
from grader.observe import observe
from grader.plan import StepWork, planned_keys, timed_work
from grader.reference import reference_probe, time_reference
from grader.results import Result, TestResult, Timing
from grader.sandbox import describe as describe_sandbox
from grader.sandbox import hiding
from grader.submissions import Submission, match_notebooks


def checks_of(modules: list, settings: Settings) -> list[Check]:
    return [c for m in modules for c in configured(m, settings.points, settings.hidden)]


def fail_all(modules: list, settings: Settings, message: str) -> list[TestResult]:
    return [check.result(False, message) for check in checks_of(modules, settings)]


def timing_of(work: StepWork, observations: dict, seconds: dict[str, float],
              reference_seconds: dict[str, float], settings: Settings) -> Timing:
    """A timed step's figures; the student's count only if the step's probes returned."""
    returned = all(observations.get(key, {}).get("ok") for key in work.keys)
    return Timing(work.name, settings.device, seconds.get(work.name) if returned else None,
                  reference_seconds[work.name], settings.as_dict()[work.step.max_ratio])


def grade_notebook(path: Path | None, name: str, settings: Settings, result: Result,
                   kernels: KernelPool) -> None:
    modules = modules_for(name)
    if path is None:
        missing = f"no notebook {name}.ipynb in the submission"
        result.tests.extend(fail_all(modules, settings, missing))
        return
    try:
        notebook = read_notebook(path)
    except NotebookUnreadable as error:
        result.tests.extend(fail_all(modules, settings, str(error)))
        return
    inputs = build_inputs(modules, settings, notebook)
    late = late_inputs(modules, settings, result.digest)
    started = time.perf_counter()
    try:
        observations, seconds = observe(notebook, modules, inputs, late, settings, result,
                                        kernels)
    except RuntimeError as error:  # the kernel died before it ran a line of the notebook
        result.notes.append(f"The kernel could not start: {error}")
        result.tests.extend(fail_all(modules, settings, f"not graded: the kernel could not "
                                                        f"start ({error})"))
        return
    result.execution_seconds += time.perf_counter() - started
    reference = reference_probe(name, modules, settings)
    reference_seconds, timed_reference = time_reference(reference, modules, settings, late)
    timings = [timing_of(work, observations, seconds, reference_seconds, settings)
               for work in timed_work(modules)]
    result.timings.extend(timings)
    context = Context(observations, {**reference.observations, **timed_reference},
                      {**inputs, **late}, settings.as_dict(), {t.step: t for t in timings},
                      hints_for(modules), planned=planned_keys(modules))
    result.tests.extend(evaluate_all(checks_of(modules, settings), context))
    for module in modules:
        if hasattr(module, "curves"):
            result.curves.extend(module.curves(context))


def grade_submission(submission: Submission, settings: Settings,
                     kernels: KernelPool | None = None) -> Result:
    """The full verdict on one student's submission; never raises for bad student input.

    `kernels` hands out a kernel per notebook; a batch passes one pool for all its
    submissions, so the next kernel boots while this one is graded.
    """
    settings = settings.resolved()
    result = Result(
        student=submission.student,
        source=str(submission.path),
        digest=submission.digest(),
        grader_version=__version__,
        config_digest=settings.digest(),
        seeds={"inputs": settings.seed},
    )
    wanted = notebooks()
    matched = match_notebooks(submission, wanted)
    result.notes = list(submission.problems)  # matching may have added to them
    unsandboxed = describe_sandbox(settings.sandbox)
    if unsandboxed:
        result.notes.append(unsandboxed)
    if submission.refused:
        result.notes.append(f"Not graded: {submission.refused}.")
        for name in wanted:
            result.tests.extend(fail_all(modules_for(name), settings,
                                         f"not graded: {submission.refused}"))
        return result
    pool = kernels or KernelPool(hiding(settings.sandbox, submission.path.parent),
                                 settings.device.startswith("cuda"), ahead=False)
    try:
        for name in wanted:
            grade_notebook(matched.get(name), name, settings, result, pool)
    finally:
        if kernels is None:
            pool.close()
    return result
