"""The files that cover the whole class, declared once: a batch, `grade collect` and a
cluster's run all write them through `write_class_outputs`, so they cannot drift apart.
A new class output is a function writing it and one line in OUTPUTS.

The similar pairs are found by the caller, once, from the cells it keeps (a batch from
the fingerprints it writes, `collect` from the ones it copies), and travel in the context
to every output that shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader.grading.results import Result
from grader.outputs.gradebook import MOODLE_FOLDER, write_gradebook
from grader.outputs.report import write_grades_csv, write_summary
from grader.outputs.similarity import SimilarPair, write_similarity_csv
from grader.students.roster import Person


@dataclass
class ClassFiles:
    """What the class outputs are written from: the scored results, the output folder,
    the similar pairs, and how the gradebook is laid out (its roster, LMS flavour and each
    assignment's column)."""

    results: list[Result]
    out: Path
    pairs: list[SimilarPair] = field(default_factory=list)
    roster: list[Person] | None = None
    lms: str = "canvas"
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassOutput:
    """One class output: the names it may take in the output folder (no student id may
    equal one: grader/students/identity.py RESERVED) and what writes it, returning the problems the
    instructor must read."""

    names: tuple[str, ...]
    write: Callable[[ClassFiles], list[str]]


def grades_csv(files: ClassFiles) -> list[str]:
    write_grades_csv(files.results, files.out / "grades.csv")
    return []


def gradebook(files: ClassFiles) -> list[str]:
    """gradebook.csv, or gradebook-moodle/ for Moodle; the roster's problems."""
    return write_gradebook(files.results, files.out / "gradebook.csv", files.roster,
                           files.lms, files.columns)


def similarity_csv(files: ClassFiles) -> list[str]:
    write_similarity_csv(files.pairs, files.out / "similarity.csv")
    return []


def summary_html(files: ClassFiles) -> list[str]:
    write_summary(files.results, files.out / "summary.html", files.pairs)
    return []


GRADEBOOK = ClassOutput(("gradebook.csv", MOODLE_FOLDER), gradebook)
OUTPUTS: tuple[ClassOutput, ...] = (
    ClassOutput(("grades.csv",), grades_csv),
    GRADEBOOK,  # also written alone, by `grade gradebook`
    ClassOutput(("similarity.csv",), similarity_csv),
    ClassOutput(("summary.html",), summary_html),
)


def write_class_outputs(files: ClassFiles) -> list[str]:
    """Write every class output, in order; the problems they report, each once."""
    return list(dict.fromkeys(problem for output in OUTPUTS for problem in output.write(files)))
