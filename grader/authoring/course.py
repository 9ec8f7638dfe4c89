"""A course: the folder an instructor edits, never the package.

A course holds `reference/` (solution notebooks: the single source of the reference
functions, the quiz answers and the student notebooks), `exercises/` (the student
notebooks `grade assign` writes), `assignments/` (a settings file per assignment, naming
its notebook and its exercises), `public/` (the self-check's data) and, optionally,
`plugins/` (the course's own exercise modules; grader/authoring/exercise.py says what they hold).
The package bundles one, this project's seed course; `grade init DIR` copies it as a
starting point and `grade --course DIR` grades with another. Which course is in use
travels in the environment, so the grading workers a batch spawns use it too.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from grader.paths import PACKAGE

ENV_VAR = "DL_GRADER_COURSE"
PARTS = ("reference", "exercises", "assignments", "public")  # what `init` copies


@dataclass(frozen=True)
class Course:
    root: Path

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    @property
    def assignments(self) -> Path:
        return self.root / "assignments"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def observations(self) -> Path:
        """The reference's observations `grade gradescope` ships with the course, under the
        key the grader computes (grader/grading/reference.py)."""
        return self.root / "observations"

    def assignment_files(self) -> list[Path]:
        """The assignments' settings files, in the order reports list them (by name)."""
        return sorted(self.assignments.glob("*.toml"))

    @property
    def secrets(self) -> list[Path]:
        """What no kernel may read: the solutions, the settings (the grading seed) and the
        reference's observations (the expected answers of every test)."""
        return [self.reference, self.assignments, self.observations]


BUNDLED = Course(PACKAGE / "course")


PLUGINS_README = """\
# plugins/

The course's own exercise modules: `NAME.py` (its checks, hidden inputs and settings model)
and `NAME_probes.py` (what runs in the student's kernel). One named like a bundled exercise
replaces it. The README's "Adding an exercise" says what each holds.
"""


class NotACourse(ValueError):
    """A folder that lacks what a course holds."""


def is_course(folder: Path) -> bool:
    return (folder / "reference").is_dir() and (folder / "assignments").is_dir()


def current() -> Course:
    """The course named by use(), else the current folder if it is one, else the bundled."""
    named = os.environ.get(ENV_VAR)
    if named:
        return Course(Path(named))
    here = Path.cwd()
    return Course(here.resolve()) if is_course(here) else BUNDLED


def use(folder: Path) -> Course:
    """Grade with the course in `folder` from now on, in this process and those it starts."""
    if not is_course(folder):
        raise NotACourse(f"{folder} is not a course: it needs reference/ and assignments/ "
                         "(`grade init DIR` makes one)")
    os.environ[ENV_VAR] = str(folder.resolve())
    return current()


def init(target: Path) -> Course:
    """A copy of the bundled course in `target`, to edit."""
    if target.exists() and any(target.iterdir()):
        raise NotACourse(f"{target} exists and is not empty: choose a new folder")
    for part in PARTS:
        shutil.copytree(getattr(BUNDLED, part), target / part)
    made = Course(target.resolve())
    made.plugins.mkdir()
    (made.plugins / "README.md").write_text(PLUGINS_README, encoding="utf-8")
    return made
