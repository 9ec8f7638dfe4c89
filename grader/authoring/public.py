"""The self-check's public data, written by `grade assign`: public inputs, the reference's
answers to them and what to run, as plain data for the students' kernels (grader/selfcheck.py
reads it): the probe steps in the grader's order, which of them it runs only when asked (a
long training), and which public tests read what those steps observe. The self-check needs
no plan or settings of the grader's."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from grader.authoring import course
from grader.authoring.assign import student_version
from grader.authoring.config import Settings
from grader.authoring.exercise import Exercise
from grader.grading.assignment import Assignment
from grader.grading.checks import Check, Context, evaluate_all
from grader.grading.inputs import build_inputs, derived_seed
from grader.grading.notebook import read_notebook
from grader.grading.reference import reference_probe
from grader.kernel.probing import Probe


def public_settings(settings: Settings) -> Settings:
    """The assignment's settings with a public seed, drawn from the grading seed by a
    one-way hash, on the CPU (a student's machine)."""
    return replace(settings, seed=derived_seed(settings.seed, "public"), device="cpu")


def build_public(settings: Settings) -> dict:
    """Public inputs and the reference's observations on them, for shipping. Inputs read
    from a notebook are read from the students' version of it: the solution's text holds
    the answers (the quiz's key, say)."""
    assignment = Assignment.of(public_settings(settings))
    settings = assignment.settings
    probe = reference_probe(assignment)
    solution = read_notebook(course.current().reference / f"{settings.notebook}.ipynb")
    inputs = build_inputs(assignment, student_version(solution))
    reference = shareable(assignment.exercises, probe.observations)
    return {
        "inputs": inputs,
        "reference": reference,
        "exercises": list(settings.exercises),
        "options": {name: asdict(options) for name, options in settings.options.items()},
        "points": dict(settings.points),
        "timeouts": {"probe": settings.probe_timeout, "long": settings.long_timeout},
        "hidden": list(settings.hidden),
        "grader_only": grader_only(assignment, probe, inputs, reference),
        "steps": [{"exercise": item.exercise, "module": item.module, "table": item.table,
                   "keys": item.keys, "long": item.step.long,
                   "selfcheck": item.step.in_selfcheck} for item in assignment.work],
        "on_request": on_request(assignment, probe, inputs),
    }


class ReadKeys(dict):
    """Observations that note which keys a check asks for."""

    def __init__(self, observations: dict) -> None:
        super().__init__(observations)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def on_request(assignment: Assignment, probe: Probe, inputs: dict) -> list[str]:
    """The public tests that read what a step the self-check runs only when asked observes
    (a long training, by its Step's `selfcheck`). Each test is judged alone on the
    reference's observations, noting the probe keys it reads."""
    later = {key for item in assignment.work if not item.step.in_selfcheck for key in item.keys}
    found = []
    for check in public_checks(assignment):
        observations = ReadKeys(probe.observations)
        evaluate_all([check], Context(observations, probe.observations, inputs,
                                      planned=assignment.keys))
        if observations.read & later:
            found.append(check.full_name)
    return found


def grader_only(assignment: Assignment, probe: Probe, inputs: dict,
                reference: dict) -> list[str]:
    """The public tests the self-check cannot judge with the data it ships: those the
    reference's own observations fail against it (the quiz's answers, withheld). The
    self-check lists them with what only the grader checks instead of failing them."""
    context = Context(probe.observations, reference, inputs, planned=assignment.keys)
    return [result.name for result in evaluate_all(public_checks(assignment), context)
            if not result.passed]


def public_checks(assignment: Assignment) -> list[Check]:
    """The checks a student's self-check may run: neither hidden nor timed by the grader."""
    return [check for check in assignment.checks
            if not check.hidden and not check.timed]


def shareable(exercises: list[Exercise], observations: dict) -> dict:
    """The reference's observations as the exercises let the self-check ship them (trained
    parameters, say, give way to what they score: nobody may hand them in as their own)."""
    for exercise in exercises:
        if exercise.shareable is not None:
            observations = exercise.shareable(observations)
    return observations


def write_public(settings: Settings) -> Path:
    """Write public/<notebook>.pt of the course in use; returns the file written."""
    folder = course.current().public
    folder.mkdir(exist_ok=True)
    path = folder / f"{settings.notebook}.pt"
    torch.save(build_public(settings), path)
    return path
