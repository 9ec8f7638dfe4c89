"""Students' self-check: `check("softmax")` in the notebook runs that exercise's public tests.

The public tests are the grader's own checks minus the hidden ones, run on public inputs
(a seed drawn from the grader's by a one-way hash: the shipped file cannot give the grading
seed away). The reference's answers to those inputs are shipped as plain data in the
course's public/ folder, one file per assignment, written by `grade assign`
(grader/public.py), so the self-check needs neither the reference solutions nor a
network. It runs in the student's own kernel: it is advice, the grade comes from the
grader.
"""

from __future__ import annotations

import inspect

import torch

from grader import course
from grader.checks import Context, evaluate_all
from grader.exercise import Exercise, available
from grader.kernel.probing import Probe, run_table
from grader.plan import planned_work


def caller_namespace() -> dict:
    """The notebook's globals: IPython's user namespace, or the calling frame's globals."""
    try:
        return get_ipython().user_ns  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return inspect.stack()[2].frame.f_globals


def exercise_of(name: str) -> Exercise:
    """The exercise whose checks test `name` (a function, or a part like "quiz")."""
    for exercise in available().values():
        if any(check.exercise == name for check in exercise.checks):
            return exercise
    known = sorted({c.exercise for e in available().values() for c in e.checks})
    raise ValueError(f"no exercise named {name!r}; try one of: {', '.join(known)}")


def public_data(exercise: Exercise) -> dict:
    """The public data of the assignment that holds `exercise`."""
    folder = course.current().public
    for path in sorted(folder.glob("*.pt")):
        public = torch.load(path, weights_only=True)
        if exercise.name in public["exercises"]:
            return public
    raise ValueError(f"no public tests of {exercise.name} in {folder}: the course's "
                     "`grade assign` writes them")


def run_check(name: str, functions: dict) -> list:
    """The public test results of one exercise on `functions`."""
    exercise = exercise_of(name)
    public = public_data(exercise)
    options = exercise.options(**public["options"][exercise.name])
    checks = [c for c in exercise.configured(options, {}, tuple(public["hidden"]))
              if c.exercise == name and not c.hidden and not c.timed]
    probe = Probe(functions, public["inputs"], None, public["timeouts"]["probe"])
    planned: set[str] = set()
    for work in planned_work([exercise]):
        if not work.step.long or name.endswith("_training"):
            run_table(probe, work.module, work.step.table, work.keys,
                      public["timeouts"]["long" if work.step.long else "probe"])
            planned.update(work.keys)
    context = Context(probe.observations, public["reference"], public["inputs"],
                      hints=exercise.hints, planned=frozenset(planned))
    return evaluate_all(checks, context)


def check(exercise: str) -> None:
    """Run the public tests of `exercise` on your functions and print what to fix first."""
    results = run_check(exercise, caller_namespace())
    passed = sum(r.passed for r in results)
    print(f"{exercise}: {passed}/{len(results)} public tests passed")
    for result in results:
        print(f"  {'✓' if result.passed else '✗'} {result.name.split('.', 1)[1]}")
    failed = next((r for r in results if not r.passed), None)
    if failed:
        print(f"\nFirst problem: {failed.message}")
        for label, value in (("expected", failed.expected), ("got", failed.got)):
            if value:
                print(f"  {label}: {value[:500]}")
    else:
        print("All public tests pass. The grader also runs hidden tests.")
