"""The multiple-choice quiz, read from the notebook's answer cells without running anything.

The right answers are not written here: the package is readable from the students'
sandbox. They are read from the reference notebook's answer cells, as the student's are
from theirs (`read_notebook`: observations of the text, on both sides), and the
reference's are never shipped to the self-check (`shareable`).
"""

from __future__ import annotations

import re

import nbformat

from grader.assign import ANSWER_PROMPT
from grader.checks import Context, Failed, GraderFault, Registry

CHECKS = Registry()
CHOICES = {"softmax_shift": "ABCD"}
ANSWER_TAG = "answer:"
MARKER = re.compile(r"^### (BEGIN|END) ANSWER\s*$", re.M)
LETTER = re.compile(
    r"^\W*(?:(?:my|the)?\s*answer\s*(?:is)?\s*[:=]?\s*)?\(?([a-z])\)?[.!]?\W*$", re.I)


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


def read_notebook(notebook: nbformat.NotebookNode) -> dict[str, dict]:
    """The answer cells' text, as observations: the student's from theirs, the key from the
    reference's."""
    return {f"quiz.{key}": {"ok": True, "value": text}
            for key, text in answer_cells(notebook).items()}


def shareable(observations: dict) -> dict:
    """The self-check ships no answer key: the answers are withheld (None)."""
    return {key: {"ok": True, "value": None} if key.startswith("quiz.") else value
            for key, value in observations.items()}


def correct_choice(ctx: Context, question: str) -> str:
    """The letter the reference answers `question` with. Failed in the self-check, which
    has no key: the quiz is marked by the grader alone. A reference without one valid
    letter for `question` is an authoring error: a GraderFault."""
    key = ctx.want(f"quiz.{question}")
    if key is None:
        raise Failed("the quiz is marked by the grader, which holds the answers", None, None)
    try:
        return parse_choice(key, CHOICES[question])
    except Failed as failure:
        raise GraderFault(f"the reference's answer to {question}: {failure.message}") from None


def chosen_letter(ctx: Context, question: str) -> str:
    """The student's letter for `question`, or Failed saying what is wrong with its form."""
    observed = ctx.student.get(f"quiz.{question}")
    if observed is None:
        raise Failed(f"the answer cell is missing (a markdown cell tagged {ANSWER_TAG}"
                     f"{question}): restore it from the assignment", None, None)
    return parse_choice(observed["value"], CHOICES[question])


@CHECKS.add("quiz", points=0)
def answers_with_one_of_the_choices(ctx: Context) -> str:
    """Each answer is one letter among the choices.

    The self-check can tell this, not whether the letter is right (it ships no key), so
    it earns no points of its own: the format is the part of the quiz a student can check."""
    letters = [f"{question}: {chosen_letter(ctx, question)}" for question in CHOICES]
    return f"{'; '.join(letters)}, one of the choices (whether it is right, the grader says)."


@CHECKS.add("quiz", points=2)
def softmax_shift_invariance(ctx: Context) -> str:
    chosen = chosen_letter(ctx, "softmax_shift")
    correct = correct_choice(ctx, "softmax_shift")
    if chosen != correct:
        raise Failed(f"{chosen} is not right: softmax(x + c) = softmax(x), and "
                     "[100, 101, 102] - 102 = [-2, -1, 0]", None, chosen)
    return (f"{correct}: softmax is shift-invariant, "
            "softmax([100, 101, 102]) = softmax([-2, -1, 0]).")
