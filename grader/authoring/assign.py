"""Build student notebooks from solution notebooks, nbgrader-style.

Solution notebooks in reference/ are the single source: code between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes ``raise NotImplementedError``,
text between ``### BEGIN ANSWER`` and ``### END ANSWER`` becomes a prompt, cells tagged
``hidden`` are dropped and outputs are cleared; the digests of the cells tagged ``demo``
are recorded (grader/grading/handout.py). Running it twice gives the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from grader.grading.handout import demo_digests

SOLUTION = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S
)
ANSWER = re.compile(r"^### BEGIN ANSWER\n.*?^### END ANSWER[ \t]*$", re.M | re.S)
NOT_IMPLEMENTED = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()"
ANSWER_PROMPT = "YOUR ANSWER HERE"
HIDDEN_TAG = "hidden"


def strip_solutions(source: str) -> str:
    return SOLUTION.sub(lambda m: NOT_IMPLEMENTED.format(indent=m["indent"]), source)


def strip_answers(source: str) -> str:
    return ANSWER.sub(ANSWER_PROMPT, source)


def student_version(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the solution notebook as students receive it, its demos' digests in the
    metadata."""
    notebook = nbformat.from_dict(solution)
    cells = []
    for cell in notebook.cells:
        if HIDDEN_TAG in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = strip_answers(cell.source)
        cells.append(cell)
    notebook.cells = cells
    notebook.metadata.setdefault("grader", {})["demos"] = demo_digests(notebook)
    return notebook


def assign(source_dir: Path, target_dir: Path, name: str) -> Path:
    """Write the student version of the solution notebook `name`; returns the file written.

    The notebook's metadata names the assignment, so a submission is matched by it whatever
    the student renamed the file to, and records its demos' digests."""
    path = source_dir / f"{name}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"no solution notebook {path}")
    notebook = student_version(nbformat.read(path, as_version=4))
    notebook.metadata["grader"]["notebook"] = name
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    target.write_text(render(notebook), encoding="utf-8")
    return target


def render(notebook: nbformat.NotebookNode) -> str:
    """The notebook's canonical text, so regenerating is byte-for-byte stable."""
    return nbformat.writes(notebook) + "\n"
