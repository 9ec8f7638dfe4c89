"""The probes a notebook is asked for, as steps of cells in the order the kernel runs them,
and what is left to run when a kernel stops. The plan is derived here once per assignment,
by grader/grading/assignment.py, which every stage reads it from."""

from __future__ import annotations

from dataclasses import dataclass, replace

from grader.authoring.config import Settings
from grader.authoring.exercise import Exercise, Step
from grader.kernel.probing import failure, function_of


def step_timeout(step: Step, settings: Settings) -> float:
    return settings.long_timeout if step.long else settings.probe_timeout


@dataclass
class StepWork:
    """One probe step with its keys spelled out, so a rerun can start after any of them."""

    exercise: str
    module: str  # the kernel-side module holding the step's table
    table: str  # the table's name in that module, as the kernel imports it
    step: Step
    keys: list[str]

    @property
    def name(self) -> str:
        """The step as reports name it: its probe keys."""
        return "+".join(self.keys)


def planned_work(exercises: list[Exercise]) -> list[StepWork]:
    """Every probe step with its keys spelled out, in the order the kernel runs them."""
    return [StepWork(exercise.name, exercise.probes, exercise.table_name(step), step,
                     exercise.step_keys(step))
            for exercise in exercises for step in exercise.probe_steps]


def left_to_run(work: list[StepWork], observed: dict) -> list[StepWork]:
    left = [replace(w, keys=[k for k in w.keys if k not in observed]) for w in work]
    return [w for w in left if w.keys]


def stopped_by(culprit: str, work: list[StepWork], why: str, uses: dict) -> dict:
    """The probe that stopped the kernel fails, and so do the other probes of its function
    and those that call it (`uses`): run again, they would most likely stop the fresh kernel
    too."""
    function = function_of(culprit)
    return {key: failure("KernelStopped", f"the kernel stopped while running this probe: {why}"
                         if key == culprit else f"not run: the probe {culprit} stopped the kernel")
            for item in work for key in item.keys
            if function_of(key) == function or function in uses.get(key, ())}
