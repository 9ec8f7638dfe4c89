"""The multiple-choice quiz, read from the notebook's answer cells without running anything.

The mechanism is the package's; the questions are the course's. Each question is a table
of the assignment's settings, `[quiz.questions.NAME]` (NAME: its test, `quiz.NAME`): the
answer cell it reads, its choices, points and what the student reads. Its right letter is
written in neither place, as the package is readable from the students' sandbox and the
self-check ships the settings: it is read from the reference notebook's answer cell, as
the student's is from theirs (`read_notebook`: observations of the text, on both sides),
and the reference's is never shipped to the self-check (`shareable`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import nbformat
from pydantic import AfterValidator, ConfigDict, Field

from grader.authoring.assign import ANSWER_PROMPT
from grader.authoring.exercise import Declaration
from grader.grading.checks import Check, Context, Failed, GraderFault, Registry
from grader.grading.results import Cause

QUIZ = "quiz"  # the exercise's name, which its checks report under
CHECKS = Registry()
ANSWER_TAG = "answer:"
MARKER = re.compile(r"^### (BEGIN|END) ANSWER\s*$", re.M)
LETTER = re.compile(
    r"^\W*(?:(?:my|the)?\s*answer\s*(?:is)?\s*[:=]?\s*)?\(?([a-z])\)?[.!]?\W*$", re.I)
NAME = r"^[a-z][a-z0-9_]{0,63}$"
FORMAT_CHECK = "answers_with_one_of_the_choices"


def distinct_letters(choices: str) -> str:
    if len(set(choices)) != len(choices):
        raise ValueError(f"each letter may be a choice once, not {choices!r}")
    return choices


Text = Annotated[str, Field(min_length=1, max_length=2000)]


@dataclass(frozen=True)
class Question:
    """One question, as the course declares it. Its key is the reference notebook's cell
    tagged answer:<cell>, between ### BEGIN ANSWER and ### END ANSWER."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    cell: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]  # the tag answer:<cell>
    right: Text  # what a right answer reads after its letter
    wrong: Text  # what a wrong one reads after "<letter> is not right: "
    choices: Annotated[str, Field(pattern=r"^[A-Z]{2,26}$"),
                       AfterValidator(distinct_letters)] = "ABCD"
    points: Annotated[float, Field(ge=0)] = 1.0


def apart(questions: dict[str, Question]) -> dict[str, Question]:
    """Questions whose tests and answer cells are their own."""
    if FORMAT_CHECK in questions:
        raise ValueError(f"{FORMAT_CHECK} is the quiz's own test: name the question otherwise")
    cells = [question.cell for question in questions.values()]
    twice = sorted({cell for cell in cells if cells.count(cell) > 1})
    if twice:
        raise ValueError(f"two questions read the answer cell {', '.join(twice)}: give each "
                         "its own cell")
    return questions


@dataclass(frozen=True)
class Options:
    """The quiz's questions, by test name, in the notebook's order."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    questions: Annotated[dict[Annotated[str, Field(pattern=NAME)], Question],
                         Field(min_length=1, max_length=100), AfterValidator(apart)]

    def __post_init__(self) -> None:
        """The self-check builds it from the shipped settings: plain tables."""
        declared = {name: question if isinstance(question, Question) else Question(**question)
                    for name, question in self.questions.items()}
        object.__setattr__(self, "questions", declared)


def answer_cells(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Tagged answer cells by their cell id; the grader reads them as text."""
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
        raise Failed("no answer given: write one letter in the answer cell", choices, "nothing",
                     cause=Cause.BLANK)
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


def correct_choice(ctx: Context, question: Question) -> str:
    """The letter the reference answers `question` with. Failed in the self-check, which
    has no key: the quiz is marked by the grader alone. A reference without one valid
    letter for `question` is an authoring error: a GraderFault."""
    key = ctx.want(f"quiz.{question.cell}")
    if key is None:
        raise Failed("the quiz is marked by the grader, which holds the answers", None, None)
    try:
        return parse_choice(key, question.choices)
    except Failed as failure:
        raise GraderFault(f"the reference's answer to {question.cell}: "
                          f"{failure.message}") from None


def chosen_letter(ctx: Context, question: Question) -> str:
    """The student's letter for `question`, or Failed saying what is wrong with its form."""
    observed = ctx.student.get(f"quiz.{question.cell}")
    if observed is None:
        raise Failed(f"the answer cell is missing (a markdown cell tagged {ANSWER_TAG}"
                     f"{question.cell}): restore it from the assignment", None, None)
    return parse_choice(observed["value"], question.choices)


@CHECKS.add(QUIZ, points=0)
def answers_with_one_of_the_choices(ctx: Context) -> str:
    """Each answer is one letter among the choices.

    The self-check can tell this, not whether the letter is right (it ships no key), so
    it earns no points of its own: the format is the part of the quiz a student can check."""
    letters = [f"{question.cell}: {chosen_letter(ctx, question)}"
               for question in ctx.options.questions.values()]
    return f"{'; '.join(letters)}, one of the choices (whether it is right, the grader says)."


def marking(question: Question) -> Callable[[Context], str]:
    """The check of one question: the student's letter against the reference's."""
    def run(ctx: Context) -> str:
        chosen = chosen_letter(ctx, question)
        correct = correct_choice(ctx, question)
        if chosen != correct:
            raise Failed(f"{chosen} is not right: {question.wrong}", None, chosen)
        return f"{correct}: {question.right}"

    return run


def checks_for(options: Options) -> list[Check]:
    """A check per question the course declares, after the format's, worth its points."""
    return [Check(QUIZ, name, question.points, marking(question))
            for name, question in options.questions.items()]


EXERCISE = Declaration(checks=CHECKS, options=Options, read_notebook=read_notebook,
                       shareable=shareable, checks_for=checks_for)
