"""Grade mutants of the reference through the real pipeline, and tell what each one did.

For every student function of the chosen assignments (a function defined in a `solution`
cell of the reference notebook that an exercise's probes call), each mutant is the
reference notebook, every blank solved, with that one function mutated. It is graded as a
submission, by the same workers, fork server, sandbox and reference cache as a class (or on
a Dask cluster), on the assignment restricted to the exercise that grades the function. The
unmutated reference, graded the same way, is the control: only a test that passes on it
can kill a mutant. A survivor is then compared with the reference on other seeds
(grader/audit/equivalence.py).
"""

from __future__ import annotations

import ast
import difflib
import importlib
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import nbformat

from grader.audit import equivalence
from grader.audit.mutate import Mutation, mutations, sample
from grader.audit.outcome import EQUIVALENT, KILLED, NOT_GRADED, SURVIVED, Audit, Outcome
from grader.authoring import course
from grader.authoring.config import Settings
from grader.authoring.exercise import Exercise, lookup
from grader.grading.assignment import Assignment
from grader.grading.results import Result
from grader.kernel.probing import function_of
from grader.scale.batch import run_all
from grader.scale.units import Unit
from grader.students.submissions import Submission

CONTROL = "reference"  # the unmutated reference's student id in the audit's output


@dataclass(frozen=True)
class Target:
    """One student function: the reference cell defining it, its own exercise, and the
    assignment restricted to the exercises whose probes call it."""

    settings: Settings
    exercise: str
    function: str
    cell: int


def reference_of(settings: Settings) -> nbformat.NotebookNode:
    """The assignment's reference notebook, read once (only ever copied, never changed)."""
    return read_reference(course.current().reference / f"{settings.notebook}.ipynb")


@cache
def read_reference(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def defined(source: str) -> list[str]:
    """The functions (and classes) a solution cell defines at its top level."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]


def called(exercise: Exercise) -> set[str]:
    """The student functions an exercise's probes call: the functions its probe keys are
    named after, those its `uses` names, and every literal probe.student("name")."""
    names = {function_of(key) for step in exercise.probe_steps
             for key in exercise.step_keys(step)}
    names.update(name for functions in exercise.probe_uses.values() for name in functions)
    if exercise.probes:
        source = Path(importlib.import_module(exercise.probes).__file__ or "").read_text()
        names.update(node.args[0].value for node in ast.walk(ast.parse(source))
                     if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                     and node.func.attr == "student" and node.args
                     and isinstance(node.args[0], ast.Constant)
                     and isinstance(node.args[0].value, str))
    return names


def targets(settings: Settings, chosen: str | None = None) -> list[Target]:
    """The assignment's student functions its exercises' probes call (`chosen`: only those
    of that exercise, or that function)."""
    exercises = lookup(settings.exercises)
    callers = {exercise.name: called(exercise) for exercise in exercises}
    found = []
    for index, cell in enumerate(reference_of(settings).cells):
        if cell.cell_type != "code" or "solution" not in cell.metadata.get("tags", []):
            continue
        for function in defined(cell.source):
            graders = tuple(name for name, names in callers.items() if function in names)
            # Its own exercise first: the one whose probe keys are named after it.
            own = next((e.name for e in exercises if e.name in graders and any(
                function_of(key) == function for step in e.probe_steps
                for key in e.step_keys(step))), graders[0] if graders else None)
            if own is not None and chosen in (None, own, function):
                found.append(Target(replace(settings, exercises=graders), own, function,
                                    index))
    return found


def mutant_notebook(reference: nbformat.NotebookNode, cell: int,
                    source: str) -> nbformat.NotebookNode:
    changed = nbformat.from_dict(reference)
    changed.cells[cell].source = source
    return changed


def diff(before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True), "reference",
                                        "mutant", n=1))


@dataclass
class Mutant:
    """A mutation made a unit to grade."""

    target: Target
    mutation: Mutation
    unit: Unit


def units(targets_: list[Target], folder: Path, limit: int | None,
          seed: int) -> tuple[list[Mutant], list[Unit]]:
    """Each mutant's unit, its notebook written in `folder`, and each exercise's control."""
    mutants, controls = [], {}
    for target in targets_:
        reference = reference_of(target.settings)
        key = target.settings.exercises
        if key not in controls:
            controls[key] = unit_of(f"{CONTROL}.{'+'.join(key)}", reference, target.settings,
                                    folder)
        found = mutations(reference.cells[target.cell].source, [target.function])
        for mutation in sample(found, limit, seed) if limit else found:
            notebook = mutant_notebook(reference, target.cell, mutation.source)
            mutants.append(Mutant(target, mutation, unit_of(mutation.name, notebook,
                                                           target.settings, folder)))
    return mutants, list(controls.values())


def unit_of(name: str, notebook: nbformat.NotebookNode, settings: Settings,
            folder: Path) -> Unit:
    path = folder / settings.notebook / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return Unit(Submission(name, path, [path]), settings, {settings.notebook: path})


def graded(pending: list[Unit], out: Path, jobs: int,
           scheduler: str | None, notes: list[str]) -> Iterator[tuple[Unit, Result | None]]:
    """Each unit's result as it finishes (None for a grader fault, told in `notes`)."""
    with closing(run_all(pending, out, jobs, (out,), scheduler, notes)) as finished:
        for unit, result, fault in finished:
            if fault is not None or result is None or result.fault:
                notes.append(f"{unit.submission.student}: not graded: "
                             f"{(fault or (result and result.fault) or '').strip()[-300:]}")
                yield unit, None
            else:
                yield unit, result


def outcome_of(mutant: Mutant, result: Result | None, control: Result | None) -> Outcome:
    """Killed by the tests that failed here and passed on the control."""
    target, mutation = mutant.target, mutant.mutation
    reference = reference_of(target.settings).cells[target.cell].source
    fields = dict(name=mutation.name, function=target.function, operator=mutation.operator,
                  line=mutation.line, description=mutation.description,
                  assignment=target.settings.notebook, exercise=target.exercise,
                  diff=diff(reference, mutation.source))
    if result is None or control is None:
        return Outcome(**fields, state=NOT_GRADED,
                       note="grading it was a grader fault" if result is None else
                       "the unmutated reference could not be graded")
    passing = {test.name for test in control.tests if test.passed}
    failed = [test for test in result.tests if not test.passed and test.name in passing]
    return Outcome(**fields, state=KILLED if failed else SURVIVED,
                   killed_by=tuple(test.name for test in failed),
                   messages={test.name: test.message for test in failed},
                   score=result.score, max_score=result.max_score)


def with_equivalence(outcome: Outcome, mutant: Mutant) -> Outcome:
    """A survivor compared with the reference on other seeds: likely equivalent, or a real
    survivor with the first difference as its note."""
    reference = reference_of(mutant.target.settings)
    mutated = mutant_notebook(reference, mutant.target.cell, mutant.mutation.source)
    alike, evidence = equivalence.verdict(reference, mutated, mutant.target.settings)
    return replace(outcome, state=EQUIVALENT if alike else SURVIVED, note=evidence)


def audit(assignments: list[Settings], out: Path, chosen: str | None = None, jobs: int = 1,
          scheduler: str | None = None, limit: int | None = None, seed: int = 0) -> Audit:
    """Every chosen assignment's mutants graded into `out`, one assignment after another."""
    report = Audit(outcomes=[], tests={}, seconds={}, seed=seed)
    for settings in assignments:
        found = targets(settings, chosen)
        if not found:
            continue
        started = time.perf_counter()
        mutants, controls = units(found, out / "mutants", limit, seed)
        results = {unit.submission.student: result for unit, result in graded(
            controls + [m.unit for m in mutants], out, jobs, scheduler, report.notes)}
        for target in {t.exercise: t for t in found}.values():
            own = replace(target.settings, exercises=(target.exercise,))
            report.tests[target.exercise] = [check.full_name
                                             for check in Assignment.of(own).checks]
        control_of = {c.settings.exercises: results.get(c.submission.student) for c in controls}
        for mutant in mutants:
            outcome = outcome_of(mutant, results.get(mutant.mutation.name),
                                 control_of[mutant.target.settings.exercises])
            report.outcomes.append(with_equivalence(outcome, mutant)
                                   if outcome.state == SURVIVED else outcome)
        report.seconds[settings.notebook] = time.perf_counter() - started
    return report
