"""The quiz is read from the answer cell as text, no kernel: one letter in the forms students
write earns the points, more than one is rejected, and every failure says why."""

from __future__ import annotations

import nbformat
import pytest
from conftest import BLANK, with_functions

from grader.assign import ANSWER_PROMPT
from grader.checks import Context
from grader.exercises import quiz
from grader.results import TestResult

(CHECK,) = [check for check in quiz.CHECKS if check.name == "softmax_shift_invariance"]
EXPLANATION = "softmax(x + c) = softmax(x)"


def grade(text: str | None) -> TestResult:
    """The quiz check on an answer cell holding `text`, or on a notebook without the cell."""
    inputs = {} if text is None else {"quiz.softmax_shift": text}
    return CHECK.evaluate(Context(student={}, reference={}, inputs=inputs))


def grade_notebook(notebook: nbformat.NotebookNode) -> TestResult:
    return CHECK.evaluate(Context(student={}, reference={},
                                  inputs=quiz.make_inputs(None, {}, notebook)))


@pytest.mark.parametrize("text", [
    "C", "c", "(C)", "C.", "**C**", "Answer: C", "answer is c", "`C`", "c)", "  C\n",
    f"{ANSWER_PROMPT}\n\nC",
])
def test_the_right_letter_in_any_usual_form_gets_full_points(text):
    result = grade(text)
    assert (result.passed, result.points) == (True, CHECK.points)
    assert "shift-invariant" in result.message


@pytest.mark.parametrize("text, letter", [
    ("a", "A"), ("(b)", "B"), ("Answer: d", "D"), ("**C**.", "C"),
])
def test_parse_choice_returns_the_chosen_letter_in_upper_case(text, letter):
    assert quiz.parse_choice(text, "ABCD") == letter


@pytest.mark.parametrize("text, letter", [("A", "A"), ("b", "B"), ("(D)", "D")])
def test_a_wrong_letter_fails_with_the_reason(text, letter):
    result = grade(text)
    assert (result.passed, result.points) == (False, 0.0)
    assert result.message.startswith(f"{letter} is not right")
    assert EXPLANATION in result.message


@pytest.mark.parametrize("text", [
    "A, C", "AC", "C or D", "C D", "(A) (C)", "Answer: A or C", "CC",
])
def test_more_than_one_letter_is_rejected_even_with_the_right_one(text):
    result = grade(text)
    assert (result.passed, result.points) == (False, 0.0)
    assert "exactly one of A, B, C, D" in result.message
    assert result.got == text


def test_a_letter_outside_the_choices_is_rejected():
    result = grade("E")
    assert not result.passed
    assert "exactly one of A, B, C, D" in result.message


@pytest.mark.parametrize("text", ["", "   \n", ANSWER_PROMPT, f"**{ANSWER_PROMPT}**"])
def test_an_empty_answer_says_no_answer_was_given(text):
    result = grade(text)
    assert not result.passed
    assert result.message.startswith("no answer given")


def test_a_missing_answer_cell_says_it_is_missing():
    result = grade(None)
    assert not result.passed
    assert "answer cell is missing" in result.message
    assert "answer:softmax_shift" in result.message


def test_the_answer_is_read_from_the_tagged_cell():
    assert grade_notebook(with_functions({}, answer="(C)")).passed
    assert not grade_notebook(with_functions({}, answer="B")).passed


def test_the_assignment_as_handed_out_has_no_answer():
    result = grade_notebook(nbformat.read(BLANK, as_version=4))
    assert result.message.startswith("no answer given")


def test_a_notebook_without_the_tagged_cell_is_missing_the_answer():
    notebook = with_functions({})
    for cell in notebook.cells:
        cell.metadata.pop("tags", None)
    assert "answer cell is missing" in grade_notebook(notebook).message
