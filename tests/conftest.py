"""Shared helpers: build submissions from the solution notebook with some functions swapped."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from grader.config import Settings
from grader.grade import grade_submission
from grader.paths import EXERCISES, REFERENCE
from grader.results import Result
from grader.submissions import Submission

SOLUTION = REFERENCE / "linear_networks.ipynb"
BLANK = EXERCISES / "linear_networks.ipynb"
FAST = Settings(cell_timeout=60, total_timeout=180, probe_timeout=20, epoch_timeout=60)


def with_functions(replacements: dict[str, str], base: Path = SOLUTION,
                   answer: str | None = None) -> nbformat.NotebookNode:
    """The notebook at `base` with the cells defining the named functions replaced."""
    notebook = nbformat.read(base, as_version=4)
    remaining = dict(replacements)
    for cell in notebook.cells:
        match = re.search(r"^def (\w+)\(", cell.source, re.M)
        if cell.cell_type == "code" and match and match[1] in remaining:
            cell.source = remaining.pop(match[1])
        if answer is not None and any(t.startswith("answer:") for t in
                                      cell.metadata.get("tags", [])):
            cell.source = answer
    assert not remaining, f"no cell defines {sorted(remaining)}"
    return notebook


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def grade_file(path: Path, settings: Settings = FAST) -> Result:
    return grade_submission(Submission(path.stem, path, [path]), settings)


def outcomes(result: Result) -> dict[str, bool]:
    return {test.name: test.passed for test in result.tests}


def messages(result: Result) -> dict[str, str]:
    return {test.name: test.message for test in result.tests}


@pytest.fixture(scope="session")
def solution_result(tmp_path_factory) -> Result:
    path = write_notebook(nbformat.read(SOLUTION, as_version=4),
                          tmp_path_factory.mktemp("solution") / "solution.ipynb")
    return grade_file(path)


@pytest.fixture(scope="session")
def blank_result(tmp_path_factory) -> Result:
    path = write_notebook(nbformat.read(BLANK, as_version=4),
                          tmp_path_factory.mktemp("blank") / "blank.ipynb")
    return grade_file(path)
