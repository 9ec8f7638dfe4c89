"""The self-check's public data, written by `grade assign`: public inputs and the
reference's answers to them, as plain data for the students' kernels (grader/kernel/
selfcheck.py reads it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nbformat
import torch

from grader import course
from grader.assign import student_version
from grader.config import Settings
from grader.exercises import MODULES
from grader.inputs import build_inputs, derived_seed
from grader.reference import reference_probe


def public_settings(settings: Settings) -> Settings:
    return replace(settings, seed=derived_seed(settings.seed, "public"))


def build_public(notebook: str, solution: nbformat.NotebookNode, settings: Settings) -> dict:
    """Public inputs and the reference's observations on them, for shipping. Inputs read
    from a notebook are read from the students' version of it: the solution's text holds
    the answers (the quiz's key, say)."""
    settings = public_settings(settings).resolved()
    settings = replace(settings, device="cpu")
    modules = [m for m in MODULES if m.NOTEBOOK == notebook]
    probe = reference_probe(notebook, modules, settings)
    return {
        "inputs": build_inputs(modules, settings, student_version(solution)),
        "reference": shareable(modules, probe.observations),
        "settings": settings.as_dict(),
        "hidden": list(settings.hidden),
    }


def shareable(modules: list, observations: dict) -> dict:
    """The reference's observations as the exercises let the self-check ship them (trained
    parameters, say, give way to what they score: nobody may hand them in as their own)."""
    for module in modules:
        if hasattr(module, "shareable"):
            observations = module.shareable(observations)
    return observations


def write_public(notebook: str, solution: nbformat.NotebookNode, settings: Settings) -> Path:
    folder = course.current().public
    folder.mkdir(exist_ok=True)
    path = folder / f"{notebook}.pt"
    torch.save(build_public(notebook, solution, settings), path)
    return path


def ship_public_tests(source_dir: Path, settings: Settings) -> list[Path]:
    """The reference's answers to the public inputs, for the students' self-check."""
    return [write_public(path.stem, nbformat.read(path, as_version=4), settings)
            for path in sorted(source_dir.glob("*.ipynb"))]
