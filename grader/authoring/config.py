"""Grading settings: every number that decides a score, recorded in results.

Each assignment's settings live in a TOML file, the course's assignments/<name>.toml: the
grader's own at the top, each exercise's numbers in a table of its name, checked on load by
that exercise's model (pydantic), so a typo or an out-of-range value is a clear error,
never a silent default.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from grader.authoring.exercise import lookup
from grader.authoring.option_types import Positive
from grader.sandbox.bwrap import SandboxSettings
from grader.students.late import LatePolicy


@dataclass(frozen=True)
class Settings:
    """One assignment's settings: its notebook, its exercises and what the grader needs; each
    exercise's own numbers are in `options`, validated by that exercise's model."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    notebook: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    exercises: Annotated[tuple[str, ...], Field(min_length=1)]
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 20_240_817
    cell_timeout: Positive = 120.0
    total_timeout: Positive = 600.0
    probe_timeout: Positive = 30.0
    long_timeout: Positive = 180.0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    points: dict[str, Annotated[float, Field(ge=0)]] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    options: dict[str, Any] = field(default_factory=dict)  # by exercise
    # Applied to the results on every run, never deciding a verdict, so not in `digest`:
    gradebook_column: str = ""  # the LMS's column for it, e.g. "HW3 Softmax (123)"
    late: LatePolicy | None = None

    def resolved(self) -> Settings:
        """Settings with 'auto' replaced by the device this machine really has."""
        if self.device == "auto":
            return replace(self, device="cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        return self

    def with_options(self, exercise: str, **changes: Any) -> Settings:
        """The settings with some of one exercise's options changed."""
        changed = replace(self.options[exercise], **changes)
        return replace(self, options={**self.options, exercise: changed})

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """What decides the tests' verdicts: a change regrades."""
        verdict = {k: v for k, v in self.as_dict().items() if k not in AFTER_GRADING}
        text = json.dumps(verdict, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


AFTER_GRADING = ("gradebook_column", "late")


class ConfigError(ValueError):
    """An assignment file that cannot be used, with every problem listed."""


def problems_of(error: ValidationError, table: str = "") -> list[str]:
    return [f"{'.'.join([table] * bool(table) + [str(p) for p in e['loc']]) or '(top)'}: "
            f"{e['msg']}" for e in error.errors()]


def load_settings(path: Path) -> Settings:
    """An assignment's settings from its TOML file, validated, each exercise's table by the
    exercise's own model; test names in points and hidden must exist."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    raw.setdefault("notebook", path.stem)
    names = raw.get("exercises")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: exercises: a list of exercise names is required, "
                          "e.g. exercises = [\"softmax\", \"quiz\"]")
    try:
        exercises = lookup(tuple(names))
    except ValueError as error:
        raise ConfigError(f"{path}: exercises: {error}") from None
    problems, options = [], {}
    for exercise in exercises:
        table = raw.pop(exercise.name, {})
        if not isinstance(table, dict):
            problems.append(f"{exercise.name}: must be a table, [{exercise.name}]")
            continue
        declared = {f.name for f in fields(exercise.options)}
        problems += [f"{exercise.name}.{key}: not a setting of {exercise.name} (it has: "
                     f"{', '.join(sorted(declared)) or 'none'})" for key in table
                     if key not in declared]
        try:
            options[exercise.name] = TypeAdapter(exercise.options).validate_python(table)
        except ValidationError as error:
            problems += problems_of(error, exercise.name)
    try:
        settings = TypeAdapter(Settings).validate_python({**raw, "options": {}})
    except ValidationError as error:
        problems += problems_of(error)
        settings = None
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    known = {check.full_name for exercise in exercises  # with the tests its options add
             for check in exercise.configured(options[exercise.name], {}, ())}
    unknown = sorted((set(settings.points) | set(settings.hidden)) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown test name(s) {', '.join(unknown)}; "
                          f"known tests: {', '.join(sorted(known))}")
    return replace(settings, options=options)


def load_assignments(files: list[Path], only: tuple[str, ...] = ()) -> list[Settings]:
    """The settings of each assignment in `files`, or of those `only` names."""
    if not files:
        raise ConfigError("no assignment to grade: the course's assignments/ folder holds no "
                          "settings file (NAME.toml)")
    loaded = [load_settings(path) for path in files]
    names = [settings.notebook for settings in loaded]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"two settings files name the notebook {', '.join(twice)}")
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ConfigError(f"no assignment named {', '.join(unknown)}; the course has: "
                          f"{', '.join(names)}")
    return [settings for settings in loaded if not only or settings.notebook in only]
