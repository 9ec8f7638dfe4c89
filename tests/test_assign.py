"""Student notebooks are generated from the solutions and must not drift from them."""

from __future__ import annotations

import nbformat
import pytest
import torch

from grader.authoring.assign import assign, render, strip_solutions, student_version
from grader.authoring.config import load_assignments
from grader.authoring.course import BUNDLED
from grader.grading.assignment import Assignment
from grader.sandbox.execute import SELF_CHECK_TAG


def test_committed_student_notebooks_match_their_solutions():
    solutions = sorted(BUNDLED.reference.glob("*.ipynb"))
    assert solutions
    for path in solutions:
        expected = render(student_version(nbformat.read(path, as_version=4)))
        committed = (BUNDLED.exercises / path.name).read_text(encoding="utf-8")
        assert committed == expected, f"{path.name} drifted: run `grade assign`"


def test_assign_is_idempotent_and_names_the_assignment_in_the_metadata(tmp_path):
    names = [path.stem for path in sorted(BUNDLED.reference.glob("*.ipynb"))]
    first = [assign(BUNDLED.reference, tmp_path / "a", name).read_text() for name in names]
    again = [assign(tmp_path / "a", tmp_path / "b", name).read_text() for name in names]
    assert first == again
    for name in names:  # a renamed file is still matched to its assignment
        notebook = nbformat.read(tmp_path / "b" / f"{name}.ipynb", as_version=4)
        assert notebook.metadata["grader"]["notebook"] == name


def test_assigning_a_notebook_the_course_lacks_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no solution notebook .*mlp.ipynb"):
        assign(BUNDLED.reference, tmp_path, "mlp")


def test_solution_blocks_become_not_implemented_at_their_indent():
    source = ("def f(x):\n    \"\"\"Doc.\"\"\"\n    ### BEGIN SOLUTION\n    return x\n"
              "    ### END SOLUTION\n")
    assert strip_solutions(source) == (
        "def f(x):\n    \"\"\"Doc.\"\"\"\n    # YOUR CODE HERE\n    raise NotImplementedError()\n")


def test_student_notebooks_hold_no_solution_answer_or_output():
    for path in BUNDLED.exercises.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN ANSWER" not in text
        assert "X.max(dim=1" not in text
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None


def test_hidden_cells_are_dropped():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("assert secret()", metadata={"tags": ["hidden"]}),
        nbformat.v4.new_code_cell("x = 1"),
    ])
    assert [c.source for c in student_version(notebook).cells] == ["x = 1"]


def test_every_part_with_a_public_test_has_a_check_cell_and_check_all_ends_the_notebook():
    """A student can check every graded part the self-check can judge (the trainings, the
    quiz's form), then the whole assignment with its points."""
    for settings in load_assignments(BUNDLED.assignment_files()):
        solution = nbformat.read(BUNDLED.reference / f"{settings.notebook}.ipynb", as_version=4)
        checks = [cell.source for cell in solution.cells
                  if SELF_CHECK_TAG in cell.metadata.get("tags", [])]
        public = torch.load(BUNDLED.public / f"{settings.notebook}.pt", weights_only=True)
        parts = {check.exercise for check in Assignment.of(settings).checks
                 if not (check.hidden or check.timed or check.full_name in public["grader_only"])}
        assert {f'check("{part}")' for part in parts} - set(checks) == set(), settings.notebook
        assert checks[-1] == "check_all()", settings.notebook
