"""The multiple-choice quiz, read from the notebook's answer cell without running anything.

The right answers are not written here: the package is readable from the students'
sandbox, so the key is read, grader-side, from the reference notebook's answer cells,
which the sandbox hides and which `grade assign` blanks in the student notebooks.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from grader import course
from grader.assign import ANSWER_PROMPT
from grader.checks import Context, Failed, Registry

NOTEBOOK = "linear_networks"
CHECKS = Registry()
CHOICES = {"softmax_shift": "ABCD"}
ANSWER_TAG = "answer:"
MARKER = re.compile(r"^### (BEGIN|END) ANSWER\s*$", re.M)
LETTER = re.compile(
    r"^\W*(?:(?:my|the)?\s*answer\s*(?:is)?\s*[:=]?\s*)?\(?([a-z])\)?[.!]?\W*$", re.I)


def key_notebook() -> Path:
    """The solution notebook of the course in use, the only place the answers are kept."""
    return course.current().reference / f"{NOTEBOOK}.ipynb"


def answer_cells(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Tagged answer cells by question id; the grader reads them as text."""
    answers = {}
    for cell in notebook.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if isinstance(tag, str) and tag.startswith(ANSWER_TAG):
                answers[tag.removeprefix(ANSWER_TAG)] = str(cell.get("source", ""))
    return answers


def parse_choice(text: str, choices: str) -> str:
    """One letter from the forms students write: C, c, (C), "C.", "Answer: C"."""
    text = MARKER.sub("", text).replace(ANSWER_PROMPT, "").replace("*", "").replace("`", "").strip()
    if not text:
        raise Failed("no answer given: write one letter in the answer cell", choices, "nothing")
    match = LETTER.match(text)
    if not match or match[1].upper() not in choices:
        raise Failed(f"the answer must be exactly one of {', '.join(choices)}",
                     "one letter", text[:80])
    return match[1].upper()


def correct_choice(question: str) -> str:
    """The letter key_notebook() answers `question` with, read at each check (a few ms) so
    that what is marked is the reference as it stands.

    Failed where the reference cannot be read: the self-check runs in the sandbox, which
    hides it, and the quiz is marked by the grader alone. A reference without one valid
    letter for `question` is an authoring error, raised as ValueError."""
    try:
        cells = answer_cells(nbformat.read(key_notebook(), as_version=4))
    except OSError:
        raise Failed("the quiz is marked by the grader, which holds the answers", None,
                     None) from None
    if question not in cells:
        raise ValueError(f"the reference has no answer cell tagged {ANSWER_TAG}{question}")
    try:
        return parse_choice(cells[question], CHOICES[question])
    except Failed as failure:
        raise ValueError(f"the reference's answer to {question}: {failure.message}") from None


def make_inputs(generator, settings: dict, notebook: nbformat.NotebookNode) -> dict:
    return {f"quiz.{key}": text for key, text in answer_cells(notebook).items()}


@CHECKS.add("quiz", points=2)
def softmax_shift_invariance(ctx: Context) -> str:
    text = ctx.inputs.get("quiz.softmax_shift")
    if text is None:
        raise Failed("the answer cell is missing (a markdown cell tagged "
                     "answer:softmax_shift): restore it from the assignment", None, None)
    chosen = parse_choice(text, CHOICES["softmax_shift"])
    correct = correct_choice("softmax_shift")
    if chosen != correct:
        raise Failed(f"{chosen} is not right: softmax(x + c) = softmax(x), and "
                     "[100, 101, 102] - 102 = [-2, -1, 0]", None, chosen)
    return (f"{correct}: softmax is shift-invariant, "
            "softmax([100, 101, 102]) = softmax([-2, -1, 0]).")
