"""Students' self-check: `check("softmax")` runs that exercise's public tests, `check_all()`
every exercise of the notebook's assignment, with the points each is worth.

The public tests are the grader's own checks minus the hidden ones, run on public inputs
(a seed drawn from the grader's by a one-way hash: the shipped file cannot give the grading
seed away). The reference's answers to those inputs are shipped as plain data in the
course's public/ folder, one file per assignment, written by `grade assign`
(grader/authoring/public.py), so the self-check needs neither the reference solutions nor a
network. The same data says what to run: the exercises' probe steps, which of them run
only when asked (a long training) and which public tests read what those observe, so the
self-check needs neither the grader's plan nor its settings. It runs in the student's own
kernel: it is advice, the grade comes from the grader, which also runs what the self-check
cannot (hidden and timed tests, tests that need data it does not ship), and `check_all`
lists those with their points so that a public score is never read as the grade.

It evaluates the grader's public checks, so it is not kernel-side code: grader/kernel/ holds
what the grading kernel runs, and the self-check's cells are skipped when grading.
Notebooks import it as `from grader.selfcheck import check, check_all` (those handed out
earlier import grader.kernel.selfcheck, which forwards here).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import torch

from grader.authoring import course
from grader.authoring.exercise import Exercise, available, lookup, text_observations
from grader.grading.checks import Check, Context, evaluate_all
from grader.grading.results import TestResult
from grader.kernel.probing import Probe, run_table

# Where Jupyter (JPY_SESSION_NAME, as __session__) and VS Code tell a kernel its notebook.
SESSION_NAMES = ("__session__", "__vsc_ipynb_file__")
MAX_NOTEBOOK_BYTES = 32 * 2**20
MAX_NOTEBOOKS = 100  # notebooks of the current folder looked at for the saved answers
LONG = "a long training; check_all(training=True) runs it"
NO_NOTEBOOK = ("it reads your answers from the saved notebook, which the self-check could "
               "not find: save the notebook and run this in Jupyter, from its folder")
STALE = ("the public data of {} was written by an older grader: run `grade assign` again "
         "(the course's instructor does)")
HIDDEN = "hidden test"
TIMED = "timed by the grader"
WITHHELD = "needs the grader's own data (an answer key)"
SAVED = "Answers were read from the notebook as last saved: save it after changing them."


@dataclass
class Outcome:
    """The self-check of some tests: the results of those it ran, and the points of those
    it did not run (left out this time) or cannot run (only the grader checks them), each
    by test with the reason."""

    results: list[TestResult] = field(default_factory=list)
    not_run: dict[str, tuple[float, str]] = field(default_factory=dict)
    grader_only: dict[str, tuple[float, str]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # the exercises seen, in order

    def add(self, other: Outcome) -> None:
        self.groups += [group for group in other.groups if group not in self.groups]
        self.results += other.results
        self.not_run.update(other.not_run)
        self.grader_only.update(other.grader_only)

    @property
    def earned(self) -> float:
        return sum(result.points for result in self.results)

    @property
    def possible(self) -> float:
        """The points of the public tests that ran."""
        return sum(result.max_points for result in self.results)

    @property
    def grade_points(self) -> float:
        """What the grader's tests of these exercises are worth in all."""
        return self.possible + sum(points for points, _ in
                                   [*self.not_run.values(), *self.grader_only.values()])

    def first_failure(self) -> TestResult | None:
        return next((result for result in self.results if not result.passed), None)


@dataclass
class SelfCheck(Outcome):
    """What `check_all` found, its numbers for a program (the table is printed)."""

    assignment: str = ""

    @property
    def exercises(self) -> dict[str, tuple[float, float]]:
        """Each exercise's public points earned and public points, in the notebook's order."""
        scores: dict[str, tuple[float, float]] = {}
        for result in self.results:
            earned, possible = scores.get(result.exercise, (0.0, 0.0))
            scores[result.exercise] = (earned + result.points, possible + result.max_points)
        return scores

    @property
    def failed(self) -> list[str]:
        return [result.name for result in self.results if not result.passed]

    def __repr__(self) -> str:
        return (f"SelfCheck({self.assignment}: {self.earned:.1f} of {self.possible:.1f} public "
                f"points; the grade is out of {self.grade_points:.1f})")


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


def public_files() -> dict[str, Path]:
    """The course's public data files, by assignment."""
    return {path.stem: path for path in sorted(course.current().public.glob("*.pt"))}


def load_public(assignment: str) -> dict:
    """The public data of `assignment`."""
    files = public_files()
    if assignment not in files:
        raise ValueError(f"no public tests of an assignment named {assignment!r}; the course "
                         f"has: {', '.join(files) or 'none (its `grade assign` writes them)'}")
    public = torch.load(files[assignment], weights_only=True)
    if not isinstance(public, dict) or not {"steps", "on_request"} <= public.keys():
        raise ValueError(STALE.format(assignment))
    return public


def public_data(exercise: Exercise) -> tuple[str, dict]:
    """The assignment that holds `exercise`, and its public data."""
    for assignment in public_files():
        public = load_public(assignment)
        if exercise.name in public["exercises"]:
            return assignment, public
    raise ValueError(f"no public tests of {exercise.name} in {course.current().public}: the "
                     "course's `grade assign` writes them")


def configured(exercise: Exercise, public: dict) -> list[Check]:
    """The exercise's checks with the assignment's options, points and hidden tests."""
    options = exercise.options(**public["options"][exercise.name])
    return exercise.configured(options, public.get("points", {}), tuple(public["hidden"]))


def why_grader_only(check: Check, public: dict) -> str | None:
    """Why only the grader can run `check`, or None for a public test."""
    if check.hidden:
        return HIDDEN
    if check.timed:
        return TIMED
    if check.full_name in public.get("grader_only", ()):
        return WITHHELD
    return None


def is_long(check: Check, public: dict) -> bool:
    """Whether `check` reads what a step run only when asked observes (a training):
    `grade assign` found which do, from what each read on the reference's observations."""
    return check.full_name in public["on_request"]


def is_training(exercise: Exercise, public: dict, group: str) -> bool:
    """Whether a test of `group` needs the exercise's steps run only when asked."""
    return any(is_long(check, public) for check in exercise.checks if check.exercise == group)


def why_not_run(exercise: Exercise, check: Check, public: dict, training: bool,
                notebook: nbformat.NotebookNode | None) -> str | None:
    """Why a public test is left out this time, or None to run it."""
    if exercise.read_notebook is not None and notebook is None:
        return NO_NOTEBOOK
    if is_long(check, public) and not training:
        return LONG
    return None


def observe(exercise: Exercise, public: dict, functions: dict, long: bool) -> Context:
    """Run the exercise's probe steps on the student's functions, in the grader's order
    (those run only when asked, if `long`)."""
    probe = Probe(functions, public["inputs"], None, public["timeouts"]["probe"])
    planned: set[str] = set()
    for step in public["steps"]:
        if step["exercise"] == exercise.name and (long or step["selfcheck"]):
            run_table(probe, step["module"], step["table"], step["keys"],
                      public["timeouts"]["long" if step["long"] else "probe"])
            planned.update(step["keys"])
    return Context(probe.observations, public["reference"], public["inputs"],
                   hints=exercise.hints, planned=frozenset(planned))


def run_exercise(exercise: Exercise, public: dict, functions: dict,
                 notebook: nbformat.NotebookNode | None, groups: set[str] | None = None,
                 training: bool = False) -> Outcome:
    """The self-check of one exercise's tests (those of `groups`, else all): its probes run
    once, for every test that can run now."""
    outcome, runnable = Outcome(), []
    for check in configured(exercise, public):
        if groups is not None and check.exercise not in groups:
            continue
        if check.exercise not in outcome.groups:
            outcome.groups.append(check.exercise)
        grader_only = why_grader_only(check, public)
        later = why_not_run(exercise, check, public, training, notebook)
        if grader_only:
            outcome.grader_only[check.full_name] = (check.points, grader_only)
        elif later:
            outcome.not_run[check.full_name] = (check.points, later)
        else:
            runnable.append(check)
    if runnable:
        long = any(is_long(check, public) for check in runnable)
        context = observe(exercise, public, functions, long)
        if notebook is not None:
            context.student.update(text_observations([exercise], notebook))
        outcome.results = evaluate_all(runnable, context)
    return outcome


# --- the saved notebook: the quiz's answers, the assignment's name -------------------------

def read_saved(path: Path) -> nbformat.NotebookNode | None:
    """A saved notebook, or None where `path` is none (or too large to be one)."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        return nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - not a notebook: the self-check looks elsewhere
        return None


def named_assignment(notebook: nbformat.NotebookNode) -> str | None:
    """The assignment the notebook's metadata names (`grade assign` writes it)."""
    grader = notebook.metadata.get("grader")
    return grader.get("notebook") if isinstance(grader, dict) else None


def session_notebook(namespace: dict) -> nbformat.NotebookNode | None:
    """The notebook this kernel runs, where Jupyter or VS Code says which it is."""
    for name in SESSION_NAMES:
        value = namespace.get(name)
        if isinstance(value, str) and value.endswith(".ipynb"):
            for path in (Path(value), Path.cwd() / Path(value).name):
                notebook = read_saved(path)
                if notebook is not None:
                    return notebook
    return None


def saved_notebook(namespace: dict, assignment: str) -> nbformat.NotebookNode | None:
    """This notebook as last saved: the session's, else the one notebook of the current
    folder whose metadata names `assignment`."""
    own = session_notebook(namespace)
    if own is not None and named_assignment(own) in (assignment, None):
        return own
    found = [notebook for path in sorted(Path.cwd().glob("*.ipynb"))[:MAX_NOTEBOOKS]
             if (notebook := read_saved(path)) is not None
             and named_assignment(notebook) == assignment]
    return found[0] if len(found) == 1 else None


def guessed_assignment(namespace: dict) -> str:
    """The assignment of the notebook in use: the one its metadata names, else the one
    whose exercises' functions the notebook defines the most of."""
    own = session_notebook(namespace)
    if own is not None and named_assignment(own) in public_files():
        return named_assignment(own)
    defined = {name for name, value in namespace.items() if callable(value)}
    counts = {assignment: len(defined & {check.exercise for exercise in
                                         lookup(tuple(load_public(assignment)["exercises"]))
                                         for check in exercise.checks})
              for assignment in public_files()}
    best = max(counts.values(), default=0)
    leaders = [assignment for assignment, count in counts.items() if count == best]
    if best == 0 or len(leaders) > 1:
        raise ValueError("cannot tell which assignment this notebook is: name it, e.g. "
                         f"check_all({next(iter(counts), 'assignment')!r}); the course has: "
                         f"{', '.join(counts) or 'none'}")
    return leaders[0]


# --- what the student calls ------------------------------------------------------------------

def run_check(name: str, functions: dict,
              notebook: nbformat.NotebookNode | None = None) -> list[TestResult]:
    """The public test results of one exercise on `functions` (and on `notebook`'s text,
    for an exercise that reads it)."""
    exercise = exercise_of(name)
    return checked(exercise, public_data(exercise)[1], name, functions, notebook).results


def checked(exercise: Exercise, public: dict, name: str, functions: dict,
            notebook: nbformat.NotebookNode | None) -> Outcome:
    """The self-check of the tests of `name`: asked for by name, a training runs too."""
    return run_exercise(exercise, public, functions, notebook, {name},
                        training=is_training(exercise, public, name))


def check(name: str) -> None:
    """Run the public tests of `name` on your functions and print its public points and
    what to fix first."""
    namespace = caller_namespace()
    exercise = exercise_of(name)
    assignment, public = public_data(exercise)
    notebook = None
    if exercise.read_notebook is not None:
        notebook = saved_notebook(namespace, assignment)
    outcome = checked(exercise, public, name, namespace, notebook)
    results = outcome.results
    if outcome.not_run and not results:
        print(f"{name}: not run: {next(iter(outcome.not_run.values()))[1]}")
    else:
        print(f"{name}: {sum(r.passed for r in results)}/{len(results)} public tests "
              f"passed, {outcome.earned:.1f} of {outcome.possible:.1f} public points")
    for result in results:
        print(f"  {'✓' if result.passed else '✗'} {result.name.split('.', 1)[1]}")
    if notebook is not None:
        print(SAVED)
    print_first_failure(outcome)
    print_grader_only(outcome.grader_only)


def check_all(assignment: str | None = None, training: bool = False) -> SelfCheck:
    """Run the public tests of every exercise of the assignment (this notebook's, unless
    named) and print the public score, exercise by exercise, and what only the grader
    checks. Long trainings run only with training=True."""
    namespace = caller_namespace()
    name = assignment or guessed_assignment(namespace)
    public = load_public(name)
    exercises = lookup(tuple(public["exercises"]))
    notebook = None
    if any(exercise.read_notebook is not None for exercise in exercises):
        notebook = saved_notebook(namespace, name)
    summary = SelfCheck(assignment=name)
    for exercise in exercises:
        summary.add(run_exercise(exercise, public, namespace, notebook, training=training))
    print_table(summary)
    if notebook is not None:
        print(SAVED)
    return summary


# --- printing ------------------------------------------------------------------------------

def print_first_failure(outcome: Outcome) -> None:
    failed = outcome.first_failure()
    if failed is None:
        if outcome.results:
            print("All public tests pass.")
        return
    print(f"\nFirst problem: {failed.name}: {failed.message}")
    for label, value in (("expected", failed.expected), ("got", failed.got)):
        if value:
            print(f"  {label}: {value[:500]}")


def print_grader_only(grader_only: dict[str, tuple[float, str]]) -> None:
    if grader_only:
        points = sum(points for points, _ in grader_only.values())
        print(f"\nOnly the grader checks these ({points:.1f} points), so the public score is "
              "not the grade:")
        print_tests(grader_only)


def print_tests(tests: dict[str, tuple[float, str]]) -> None:
    for test, (points, why) in tests.items():
        print(f"  {test:<50} {points:4.1f}  {why}")


def print_table(summary: SelfCheck) -> None:
    print(f"{summary.assignment}: the public tests, on public inputs\n")
    print(f"  {'exercise':<30} {'tests':>7}  public points")
    scores = summary.exercises
    for exercise in summary.groups:
        results = [r for r in summary.results if r.exercise == exercise]
        if exercise in scores:
            tally = f"{sum(r.passed for r in results)}/{len(results)}"
            print(f"  {exercise:<30} {tally:>7}  {scores[exercise][0]:5.1f} / "
                  f"{scores[exercise][1]:.1f}")
        elif any(test.startswith(f"{exercise}.") for test in summary.not_run):
            print(f"  {exercise:<30} {'-':>7}  not run (below)")
    print(f"  {'public score':<30} {'':>7}  {summary.earned:5.1f} / {summary.possible:.1f}")
    if summary.not_run:
        points = sum(points for points, _ in summary.not_run.values())
        print(f"\nNot run this time ({points:.1f} points):")
        print_tests(summary.not_run)
    print_grader_only(summary.grader_only)
    print(f"\nThe grade is out of {summary.grade_points:.1f} points: the grader runs every "
          "test, on inputs of its own.")
    print_first_failure(summary)
