"""An exercise: one self-contained unit the pipeline discovers, never names.

An exercise is a Python module. The package ships the seed course's (grader/exercises/);
a course adds its own, or replaces one of the same name, in its plugins/ folder, imported
as `dl_course.<name>`. An assignment file lists the exercises it grades and holds each
one's numbers in a table of its name. The pipeline reads only these attributes:

  CHECKS        its checks (a checks.Registry), in the order reports list them;
  make_inputs   (generator, options, notebook) -> its hidden inputs, by probe key;
  Options       a dataclass: its numbers, read from the assignment's [<name>] table and
                validated there;
  PROBES        the kernel-side module (relative: ".<name>_probes") that calls the
                student's functions, with PROBE_STEPS, the ProbeSteps its cells run in
                order (the timed ones reported by name), and PROBE_USES, the probe keys
                that call functions besides their own;
  read_notebook (notebook) -> observations read from the notebook's text, no kernel run
                (the quiz's answers): the student's from theirs, the reference's from the
                solution;
  HINTS         hints added to error messages, by probe-key prefix;
  FORBIDDEN     the library calls each from-scratch function may not make, by function
                (grader.forbidden.Forbidden): such a call costs that function's marks;
  curves        (context) -> the report's chart panels;
  shareable     (observations) -> the reference's observations the self-check may ship.

Only CHECKS is required.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from grader import course
from grader.checks import Check
from grader.kernel.probing import COURSE_PACKAGE, ProbeStep, course_modules

BUILT_IN = "grader.exercises"
PROBE_SUFFIX = "_probes"  # kernel-side modules: not exercises of their own


@dataclass(frozen=True)
class NoOptions:
    """The settings model of an exercise that has no numbers of its own."""


def no_inputs(generator, options, notebook) -> dict:
    return {}


@dataclass(frozen=True)
class Exercise:
    name: str
    checks: tuple[Check, ...]
    make_inputs: Callable[..., dict]
    read_notebook: Callable[[Any], dict] | None = None
    options: type = NoOptions
    probes: str | None = None
    probe_steps: tuple[ProbeStep, ...] = ()
    probe_uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hints: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    forbidden: dict[str, Any] = field(default_factory=dict)
    curves: Callable[..., list] | None = None
    shareable: Callable[[dict], dict] | None = None

    @classmethod
    def from_module(cls, module: ModuleType) -> Exercise:
        name = module.__name__.rsplit(".", 1)[-1]
        if not hasattr(module, "CHECKS"):
            raise TypeError(f"exercise module {module.__name__} has no CHECKS")
        probes = getattr(module, "PROBES", None)
        return cls(
            name=name,
            checks=tuple(module.CHECKS),
            make_inputs=getattr(module, "make_inputs", no_inputs),
            read_notebook=getattr(module, "read_notebook", None),
            options=getattr(module, "Options", NoOptions),
            probes=importlib.util.resolve_name(probes, module.__package__) if probes else None,
            probe_steps=tuple(getattr(module, "PROBE_STEPS", ())) if probes else (),
            probe_uses=dict(getattr(module, "PROBE_USES", {})),
            hints=dict(getattr(module, "HINTS", {})),
            forbidden=dict(getattr(module, "FORBIDDEN", {})),
            curves=getattr(module, "curves", None),
            shareable=getattr(module, "shareable", None),
        )

    @property
    def test_names(self) -> set[str]:
        return {check.full_name for check in self.checks}

    def configured(self, options: Any, points: dict[str, float],
                   hidden: tuple[str, ...]) -> list[Check]:
        """Its checks with the assignment's options, points and hidden flags applied."""
        return [replace(check, options=options, points=points.get(check.full_name, check.points),
                        hidden=check.hidden or check.full_name in hidden)
                for check in self.checks]


def text_observations(exercises: list[Exercise], notebook: Any) -> dict[str, dict]:
    """What the exercises read from the notebook's text, without running it."""
    return {key: entry for exercise in exercises if exercise.read_notebook is not None
            for key, entry in exercise.read_notebook(notebook).items()}


def module_names(package: str, folder: Path) -> list[str]:
    return sorted(f"{package}.{info.name}" for info in pkgutil.iter_modules([str(folder)])
                  if not info.name.startswith("_") and not info.name.endswith(PROBE_SUFFIX))


@cache
def discovered(plugins: Path | None) -> dict[str, Exercise]:
    """The package's exercises, then the course's plug-ins (which replace a namesake)."""
    names = module_names(BUILT_IN, Path(importlib.import_module(BUILT_IN).__path__[0]))
    if plugins is not None and plugins.is_dir():
        course_modules(str(plugins))
        names += module_names(COURSE_PACKAGE, plugins)
    found = {}
    for name in names:
        exercise = Exercise.from_module(importlib.import_module(name))
        found[exercise.name] = exercise
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
