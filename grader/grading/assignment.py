"""One assignment, resolved once, and one attempt at it: what every stage of grading reads
instead of re-deriving it from the settings (issue 24).

An `Assignment` is the settings with what follows from them: the exercises (looked up once),
their configured checks and the plan (the probe steps in the kernel's order, their keys,
the timed steps, the hints). A batch builds it once per assignment; `Assignment.of` keeps
it per process, so a worker sent the settings builds it once too. An `Attempt` is one
submission's notebook at it, with what its kernel runs share; it holds data, the stages
(grader/grading/grade.py, grader/grading/observe.py) stay functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from grader.authoring.config import Settings
from grader.authoring.exercise import Exercise, lookup
from grader.grading.checks import Check
from grader.grading.plan import StepWork, planned_work

if TYPE_CHECKING:
    import nbformat

    from grader.grading.reference import ReferenceTiming
    from grader.grading.results import Result
    from grader.sandbox.budget import Budget
    from grader.sandbox.kernels import KernelPool


@dataclass(frozen=True)
class Assignment:
    """The resolved settings of one assignment and what follows from them."""

    settings: Settings
    exercises: list[Exercise]
    checks: tuple[Check, ...]
    work: tuple[StepWork, ...]  # every probe step, in the order the kernel runs them
    keys: frozenset[str]  # every probe key the grader asks for
    hints: dict[str, list]  # by probe key, from every exercise
    uses: dict[str, tuple]  # by probe key: the functions it calls (grader/plan.stopped_by)

    @classmethod
    def of(cls, settings: Settings | Assignment) -> Assignment:
        """The assignment of `settings` (an Assignment is passed through), built once per
        process for the same verdict-deciding settings and exercises."""
        if isinstance(settings, Assignment):
            return settings
        settings = settings.resolved()
        exercises = lookup(settings.exercises)
        key = (settings.digest(), tuple(id(exercise) for exercise in exercises))
        built = _BUILT.get(key)
        if built is None:
            built = _BUILT[key] = build(settings, exercises)
        # gradebook_column and late decide no verdict (outside the digest): the caller's.
        return built if built.settings == settings else replace(built, settings=settings)

    @property
    def notebook(self) -> str:
        return self.settings.notebook

    @property
    def timed(self) -> list[StepWork]:
        """The steps timed against the reference."""
        return [work for work in self.work if work.step.timed]

    @property
    def possible(self) -> float:
        """The assignment's points, which a result with no tests (work not handed in) keeps."""
        return sum(check.points for check in self.checks)


_BUILT: dict[tuple, Assignment] = {}  # the exercises it holds keep their ids unique


def build(settings: Settings, exercises: list[Exercise]) -> Assignment:
    """Derive the assignment's checks and plan from its resolved settings: the one place."""
    checks = tuple(check for exercise in exercises for check in exercise.configured(
        settings.options[exercise.name], settings.points, settings.hidden))
    work = tuple(planned_work(exercises))
    return Assignment(
        settings, exercises, checks, work,
        keys=frozenset(key for item in work for key in item.keys),
        hints={key: pairs for e in exercises for key, pairs in e.hints.items()},
        uses={key: functions for e in exercises for key, functions in e.probe_uses.items()},
    )


@dataclass
class Attempt:
    """One submission's notebook at one assignment, and what all its kernel runs share:
    the hidden inputs and the late ones (its own seeds), the kernels, the time budget, the
    reference's timed steps run beside the kernel's, and the result being built (notes,
    errors, timings go there)."""

    assignment: Assignment
    notebook: nbformat.NotebookNode
    inputs: dict
    late: dict[str, int]
    kernels: KernelPool
    budget: Budget
    reference: ReferenceTiming
    result: Result

    @property
    def settings(self) -> Settings:
        return self.assignment.settings
