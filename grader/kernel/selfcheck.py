"""Students' self-check: `check("softmax")` in the notebook runs that exercise's public tests.

The public tests are the grader's own checks minus the hidden ones, run on public inputs
(a seed drawn from the grader's by a one-way hash: the shipped file cannot give the grading
seed away). The reference's answers to those inputs are shipped as plain data in
the course's public/ folder, written by `grade assign` (grader/public.py), so the self-check needs
neither the reference solutions nor a network. It runs in the student's own kernel: it is
advice, the grade comes from the grader.
"""

from __future__ import annotations

import inspect

import torch

from grader import course
from grader.checks import Context, evaluate_all
from grader.config import Settings
from grader.exercises import MODULES, configured, hints_for
from grader.kernel.probing import Probe, run_table
from grader.plan import planned_work, step_timeout


def caller_namespace() -> dict:
    """The notebook's globals: IPython's user namespace, or the calling frame's globals."""
    try:
        return get_ipython().user_ns  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return inspect.stack()[2].frame.f_globals


def module_of(exercise: str):
    for module in MODULES:
        if any(c.exercise == exercise for c in module.CHECKS):
            return module
    known = sorted({c.exercise for m in MODULES for c in m.CHECKS})
    raise ValueError(f"no exercise named {exercise!r}; try one of: {', '.join(known)}")


def run_check(exercise: str, functions: dict) -> list:
    """The public test results of one exercise on `functions`."""
    module = module_of(exercise)
    public = torch.load(course.current().public / f"{module.NOTEBOOK}.pt", weights_only=True)
    checks = [c for c in configured(module, {}, tuple(public["hidden"]))
              if c.exercise == exercise and not c.hidden and not c.timed]
    settings = Settings(**{k: v for k, v in public["settings"].items() if k != "sandbox"})
    probe = Probe(functions, public["inputs"], None, settings.probe_timeout)
    planned: set[str] = set()
    for work in planned_work([module]):
        if not work.step.long or exercise.endswith("_training"):
            run_table(probe, work.module, work.step.table, work.keys,
                      step_timeout(work.step, settings))
            planned.update(work.keys)
    context = Context(probe.observations, public["reference"], public["inputs"],
                      settings.as_dict(), hints=hints_for([module]), planned=frozenset(planned))
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
