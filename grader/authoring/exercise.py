"""An exercise: one self-contained unit the pipeline discovers, never names.

An exercise is a Python module. The package ships the seed course's (grader/exercises/);
a course adds its own, or replaces one of the same name, in its plugins/ folder, imported
as `dl_course.<name>`. An assignment file lists the exercises it grades and holds each
one's numbers in a table of its name.

The module declares itself in one object, its parts given as Python objects, not names:

    from . import mlp_probes as probes          (grader.exercises.<name>_probes: built in)

    EXERCISE = Declaration(
        checks=CHECKS,                           # a checks.Registry, in report order
        probes=probes,                           # the kernel-side module calling the student
        steps=(Step(probes.PROBES),              # its cells, in the order the kernel runs them
               Step(probes.TIMED, timed=True, bound=lambda options: options.max_ratio)),
        options=Options,                         # a dataclass: the assignment's [<name>] table
        make_inputs=make_inputs,                 # (generator, options, notebook) -> inputs
        uses={},                                 # probe keys calling functions besides their own
        hints=HINTS,                             # hints added to error messages, by key prefix
        forbidden=FORBIDDEN,                     # grader.grading.forbidden.Forbidden, by function
        read_notebook=None,                      # (notebook) -> observations of its text
        curves=None,                             # (context) -> the report's chart panels
        shareable=None,                          # (observations) -> what the self-check ships
        checks_for=None,                         # (options) -> checks the settings declare
        data=(),                                 # the grader.authoring.datasets.DataSet it reads
    )

Discovery checks every cross-reference once, before anything is graded: a step's keys are
in its table and the table is a global of the probes module, a bound reads one Options
field, a check's `requires` exist, and every probe key a check depends on (its `uses=`,
the probes on the training's kind of input it gates on) or reads (its `reads=`, and the
literal keys of ctx.got/ctx.want in the module) is planned by some step.
A mistake is an ExerciseError naming the file and the key: `grade` stops at once.

A module without EXERCISE is an ExerciseError too: module globals (CHECKS, PROBE_STEPS,
...) are not read.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from grader.authoring import course
from grader.grading.checks import Check
from grader.kernel.probing import COURSE_PACKAGE, course_modules, function_of

if TYPE_CHECKING:  # grader.authoring.datasets finds the data sets in use through the exercises
    from grader.authoring.datasets import DataSet

BUILT_IN = "grader.exercises"
PROBE_SUFFIX = "_probes"  # kernel-side modules: not exercises of their own
Bound = Callable[[Any], float]  # an exercise's Options -> a timed step's largest time ratio


class ExerciseError(ValueError):
    """An exercise's declaration names something that does not exist (a probe key, a check,
    a setting): the grader's own mistake, told with the file and the name before any
    notebook is graded."""


@dataclass(frozen=True)
class NoOptions:
    """The settings model of an exercise that has no numbers of its own."""


def no_inputs(generator, options, notebook) -> dict:
    return {}


@dataclass(frozen=True)
class Step:
    """One kernel cell of probes, declared with its table itself: a dict of its probes
    module, all of it or the `keys` given.

    `timed` steps are timed from outside the kernel, their `bound` (Options -> the largest
    ratio over the reference's time, e.g. `lambda options: options.max_epoch_ratio`) read
    from the assignment's settings; `long` ones get the epoch time limit instead of the
    per-probe one; `setup` ones leave state a timed step needs, so the reference runs them
    even when its observations come from the cache; `late` inputs (integer seeds) are drawn
    per submission and reach the kernel only with this cell, so a timed step whose work
    depends on them cannot be run ahead. `selfcheck`: whether the students' self-check runs
    it (default: unless long). A timed step `part_of` another (its name: its probe keys)
    times one function over that step's work, to say which takes its time; it has no
    verdict and no row of its own in the reports.
    """

    table: Mapping[str, Callable]
    keys: tuple[str, ...] | None = None
    timed: bool = False
    long: bool = False
    setup: bool = False
    late: tuple[str, ...] = ()
    bound: Bound | None = None
    selfcheck: bool | None = None
    part_of: str = ""

    @property
    def in_selfcheck(self) -> bool:
        return (not self.long) if self.selfcheck is None else self.selfcheck


@dataclass(frozen=True)
class Declaration:
    """What an exercise module declares as EXERCISE; see the module's docstring. Without
    `shareable`, the self-check ships none of the reference's long steps' observations
    (trained parameters a student could hand in as their own)."""

    checks: Sequence[Check]
    probes: ModuleType | None = None
    steps: tuple[Step, ...] = ()
    options: type = NoOptions
    make_inputs: Callable[..., dict] = no_inputs
    uses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hints: Mapping[str, list[tuple[str, str]]] = field(default_factory=dict)
    forbidden: Mapping[str, Any] = field(default_factory=dict)
    read_notebook: Callable[[Any], dict] | None = None
    curves: Callable[..., list] | None = None
    shareable: Callable[[dict], dict] | None = None
    # Checks its settings declare, after `checks` (the quiz's questions, one each).
    checks_for: Callable[[Any], Sequence[Check]] | None = None
    data: tuple[DataSet, ...] = ()  # the data sets its kernels read from disk


@dataclass(frozen=True)
class Exercise:
    """An exercise as the pipeline reads it: its probes module by name, as the kernel
    imports it, and its declared steps."""

    name: str
    checks: tuple[Check, ...]
    make_inputs: Callable[..., dict]
    read_notebook: Callable[[Any], dict] | None = None
    options: type = NoOptions
    probes: str | None = None
    probe_steps: tuple[Step, ...] = ()
    probe_uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hints: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    forbidden: dict[str, Any] = field(default_factory=dict)
    curves: Callable[..., list] | None = None
    shareable: Callable[[dict], dict] | None = None
    file: str = ""  # the module declaring it, for the messages that name a mistake
    checks_for: Callable[[Any], Sequence[Check]] | None = None
    data: tuple[DataSet, ...] = ()

    @classmethod
    def from_module(cls, module: ModuleType) -> Exercise:
        """The exercise the module declares as EXERCISE; ExerciseError if it declares none."""
        name, file = module.__name__.rsplit(".", 1)[-1], module.__file__ or module.__name__
        declared = getattr(module, "EXERCISE", None)
        if not isinstance(declared, Declaration):
            found = "absent" if declared is None else f"a {type(declared).__name__}"
            raise ExerciseError(
                f"{file}: an exercise module must declare its exercise as one object, "
                "EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(...), ...) "
                f"(from grader.authoring.exercise; see its docstring), but its EXERCISE is {found}")
        return from_declaration(declared, name, file)

    @property
    def test_names(self) -> set[str]:
        return {check.full_name for check in self.checks}

    def step_keys(self, step: Step) -> list[str]:
        """The probe keys one of its steps runs, in its table's order."""
        return [key for key in step.table if step.keys is None or key in step.keys]

    def table_name(self, step: Step) -> str:
        """The name the kernel imports one of its steps' tables by: the probes module's
        global holding it."""
        module = importlib.import_module(self.probes or "")
        return next(name for name, value in vars(module).items() if value is step.table)

    def configured(self, options: Any, points: dict[str, float],
                   hidden: tuple[str, ...]) -> list[Check]:
        """Its checks with the assignment's options, points and hidden flags applied."""
        declared = self.checks_for(options) if self.checks_for is not None else ()
        return [replace(check, options=options, points=points.get(check.full_name, check.points),
                        hidden=check.hidden or check.full_name in hidden)
                for check in [*self.checks, *declared]]


def from_declaration(declared: Declaration, name: str, file: str) -> Exercise:
    """The declared exercise as the pipeline reads it, its steps' tables checked to be
    globals of its probes module (the kernel imports them by name)."""
    if declared.steps and declared.probes is None:
        raise ExerciseError(f"{file}: steps are declared without their probes module: "
                            "add probes=<the module holding their tables>")
    for step in declared.steps:
        if not any(value is step.table for value in vars(declared.probes).values()):
            raise ExerciseError(f"{file}: a step's table is not a global of "
                                f"{declared.probes.__name__}: define it there and pass it as "
                                "probes.<NAME>")
    exercise = Exercise(
        name=name, checks=tuple(declared.checks), make_inputs=declared.make_inputs,
        read_notebook=declared.read_notebook, options=declared.options,
        probes=declared.probes.__name__ if declared.probes else None,
        probe_steps=tuple(declared.steps), probe_uses=dict(declared.uses),
        hints=dict(declared.hints),
        forbidden=dict(declared.forbidden), curves=declared.curves, file=file,
        checks_for=declared.checks_for, data=tuple(declared.data))
    return replace(exercise, shareable=declared.shareable or without_long_steps(exercise))


class FieldReader:
    """Stands for an exercise's Options while a bound is called: records the field read."""

    def __init__(self, options: type, file: str):
        self._fields = option_fields(options, file)
        self._file = file
        self.read: list[str] = []

    def __getattr__(self, name: str) -> str:
        if name not in self._fields:
            raise ExerciseError(f"{self._file}: a step's bound reads {name!r}, which is not "
                                f"a field of its Options{close_to(name, self._fields)}")
        self.read.append(name)
        return name


def bound_field(bound: Bound | None, options: type, file: str) -> str | None:
    """The Options field a bound returns, or ExerciseError if it reads anything else."""
    if bound is None:
        return None
    reader = FieldReader(options, file)
    returned = bound(reader)
    if reader.read != [returned]:
        raise ExerciseError(f"{file}: a step's bound must return one field of its Options, "
                            "e.g. bound=lambda options: options.max_ratio")
    return returned


def option_fields(options: type, file: str) -> list[str]:
    if not dataclasses.is_dataclass(options):
        raise ExerciseError(f"{file}: its Options ({getattr(options, '__name__', options)}) "
                            "must be a dataclass")
    return [f.name for f in dataclasses.fields(options)]


def without_long_steps(exercise: Exercise) -> Callable[[dict], dict]:
    """The safe default of what the self-check may ship: nothing a long step observed."""
    def shareable(observations: dict) -> dict:
        long = {key for step in exercise.probe_steps if step.long
                for key in exercise.step_keys(step)}
        return {key: value for key, value in observations.items() if key not in long}

    return shareable


def close_to(name: str, known: Iterable[str]) -> str:
    """'; did you mean …?' for a misspelt name, or ''."""
    matches = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def keys_of(function: str, known: Known) -> str:
    """Where a function was named for a probe key, its keys to choose from."""
    keys = ", ".join(sorted(key for key in known.keys if function_of(key) == function))
    return f"; {function!r} is a function: name the probe keys it must answer, of {keys}" \
        if keys else ""


@dataclass(frozen=True)
class Known:
    """What a declaration may name: the probe keys some step plans, the timed steps (by the
    name reports give them), the checks, and the check groups whose keys come from the
    notebook's text (read_notebook), known only once a notebook is read."""

    keys: frozenset[str]
    timed: frozenset[str]
    checks: frozenset[str]
    text: frozenset[str]

    @classmethod
    def of(cls, exercises: Iterable[Exercise]) -> Known:
        exercises = list(exercises)
        steps = [(e, s, e.step_keys(s)) for e in exercises for s in e.probe_steps]
        return cls(frozenset(k for _, _, keys in steps for k in keys),
                   frozenset("+".join(keys) for _, step, keys in steps if step.timed),
                   frozenset(c.full_name for e in exercises for c in e.checks),
                   frozenset(c.exercise for e in exercises if e.read_notebook for c in e.checks))

    @property
    def functions(self) -> set[str]:
        return {function_of(key) for key in self.keys}

    def produced(self, key: str) -> bool:
        return key in self.keys or function_of(key) in self.text


def validate_steps(exercise: Exercise) -> None:
    """Its Options are a dataclass and each step's table, keys and bound exist."""
    fields = option_fields(exercise.options, exercise.file)
    if exercise.probe_steps:
        module = probes_module(exercise)
    for step in exercise.probe_steps:
        name = exercise.table_name(step)
        if not isinstance(step.table, dict):
            raise ExerciseError(f"{exercise.file}: a step's table {name!r} is not a dict "
                                f"of {module.__name__}")
        for key in step.keys or ():
            if key not in step.table:
                raise ExerciseError(f"{exercise.file}: a step names the probe key {key!r}, "
                                    f"which {name} lacks{close_to(key, step.table)}")
        validate_part(exercise, step, name)
        if step.timed and bound_field(step.bound, exercise.options, exercise.file) not in fields:
            raise ExerciseError(f"{exercise.file}: the timed step of {name} has no bound "
                                "among its Options' fields: give it one, "
                                "e.g. bound=lambda options: options.max_ratio")


def validate_part(exercise: Exercise, step: Step, name: str) -> None:
    """A part is timed, and of a timed step of its own exercise that is no part itself."""
    if not step.part_of:
        return
    wholes = {"+".join(exercise.step_keys(s)) for s in exercise.probe_steps
              if s.timed and not s.part_of}
    if not step.timed or step.part_of not in wholes:
        raise ExerciseError(f"{exercise.file}: the step of {name} is part_of "
                            f"{step.part_of!r}, which is no timed step of its own; a part "
                            f"is timed and names one of {sorted(wholes)}")


def probes_module(exercise: Exercise) -> ModuleType:
    try:
        return importlib.import_module(exercise.probes or "")
    except ImportError as error:
        raise ExerciseError(f"{exercise.file}: its probes module {exercise.probes} cannot be "
                            f"imported: {error}") from None


def validate(exercise: Exercise, module: ModuleType, known: Known) -> None:
    """Every check's `requires`, `uses` and `reads`, the probe keys its `uses` names and the
    literal look-ups in its module exist."""
    file = exercise.file
    for check in exercise.checks:
        for target in check.requires:
            if target not in known.checks:
                raise ExerciseError(f"{file}: the check {check.full_name} requires {target!r}, "
                                    f"which no exercise declares{close_to(target, known.checks)}")
        for verb, keys in (("uses", check.uses), ("reads", check.reads)):
            for key in keys:
                if not known.produced(key):
                    raise ExerciseError(f"{file}: the check {check.full_name} {verb} the probe "
                                        f"key {key!r}, which no step plans"
                                        f"{keys_of(key, known) or close_to(key, known.keys)}")
    for key, functions in exercise.probe_uses.items():
        for name in (key, *functions):
            if name not in (known.keys if name == key else known.functions):
                raise ExerciseError(f"{file}: its probe uses name {name!r}, which no step "
                                    "plans")
    for line, kind, name in literal_reads(module):
        where, names, made = {"key": ("the probe key", known.keys, "no exercise's step plans"),
                              "timed": ("the timed step", known.timed, "no exercise times"),
                              "check": ("the check", known.checks, "no exercise declares")}[kind]
        if name not in names and not (kind == "key" and known.produced(name)):
            raise ExerciseError(f"{file}:{line}: a check reads {where} {name!r}, which "
                                f"{made}{close_to(name, names)}")


READERS = {"got": "key", "want": "key", "judged_after": "check", "judged_only_if": "check"}


def literal_reads(module: ModuleType) -> list[tuple[int, str, str]]:
    """(line, kind, name) of each literal name a check looks up in the module's source:
    ctx.got/ctx.want("key"), ctx.timings["step"] or .get("step"), ctx.judged_after/
    judged_only_if("check")."""
    try:
        tree = ast.parse(Path(module.__file__ or "").read_text())
    except (OSError, SyntaxError):
        return []
    found = []
    for node in ast.walk(tree):
        name = literal_name(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and name:
            if node.func.attr in READERS:
                found.append((node.lineno, READERS[node.func.attr], name))
            elif node.func.attr == "get" and is_timings(node.func.value):
                found.append((node.lineno, "timed", name))
        elif isinstance(node, ast.Subscript) and is_timings(node.value) and name:
            found.append((node.lineno, "timed", name))
    return found


def literal_name(node: ast.AST) -> str | None:
    """The string literal a call's first argument or a subscript is, if it is one."""
    first = (node.args[0] if node.args else None) if isinstance(node, ast.Call) else \
        getattr(node, "slice", None)
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) \
        else None


def is_timings(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "timings"


def text_observations(exercises: list[Exercise], notebook: Any) -> dict[str, dict]:
    """What the exercises read from the notebook's text, without running it."""
    return {key: entry for exercise in exercises if exercise.read_notebook is not None
            for key, entry in exercise.read_notebook(notebook).items()}


def module_names(package: str, folder: Path) -> list[str]:
    return sorted(f"{package}.{info.name}" for info in pkgutil.iter_modules([str(folder)])
                  if not info.name.startswith("_") and not info.name.endswith(PROBE_SUFFIX))


@cache
def discovered(plugins: Path | None) -> dict[str, Exercise]:
    """The package's exercises, then the course's plug-ins (which replace a namesake), each
    checked against them all."""
    names = module_names(BUILT_IN, Path(importlib.import_module(BUILT_IN).__path__[0]))
    if plugins is not None and plugins.is_dir():
        course_modules(str(plugins))
        names += module_names(COURSE_PACKAGE, plugins)
    found, modules = {}, {}
    for name in names:
        module = importlib.import_module(name)
        exercise = Exercise.from_module(module)
        found[exercise.name], modules[exercise.name] = exercise, module
    for exercise in found.values():
        validate_steps(exercise)
    known = Known.of(found.values())
    for name, exercise in found.items():
        validate(exercise, modules[name], known)
    return found


def available() -> dict[str, Exercise]:
    """Every exercise the course in use can grade, by name."""
    return discovered(course.current().plugins)


def lookup(names: tuple[str, ...]) -> list[Exercise]:
    """The exercises named, in that order; a name nobody defines is a ValueError."""
    known = available()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"no exercise named {', '.join(unknown)}; known exercises: "
                         f"{', '.join(sorted(known))}")
    return [known[name] for name in names]
