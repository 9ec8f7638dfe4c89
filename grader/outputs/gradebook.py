"""gradebook.csv: a row per student, a column per assignment, as an LMS imports it.

Only a score is written: work not handed in, a grader fault or no result at all leaves
the cell empty, so an import never puts a 0 over a grade the LMS already holds. With a
roster (grader.students.roster) its rows are the students, in its order; without one, each graded
student. An assignment's column is its `gradebook_column` setting (`columns`), else its
name. No cell starts with `=`, `+`, `-`, `@`, a tab or a return (a spreadsheet would run
it as a formula): such a cell gets a `'` in front. Three flavours:

- canvas: `Student, ID, SIS User ID, SIS Login ID, Section`, a column per assignment, a
  `Points Possible` row first. Canvas finds the student by `ID`, then `SIS User ID`, then
  `SIS Login ID`; a column named like the assignment's own, "HW3 Softmax (123)" (its id in
  parentheses), fills that assignment, any other name makes a new one. An empty cell
  leaves the grade as it was.
- moodle: Moodle empties a grade for an empty cell, so no file of it has one: a file per
  assignment, `gradebook-moodle/ASSIGNMENT.csv` (beside where gradebook.csv would be),
  holding only the students with a score for it. Its columns: one mapping column, then
  `Full name`, then the assignment's; no points row (Moodle aborts the whole import on a
  row it cannot map to a user). In "Import CSV", set "Map from" to that column and "Map
  to" to the same field: `Email address` to useremail, `ID number` to useridnumber,
  `Username` to username (the student id, without a roster), and the assignment's column
  to its grade item.
- plain: `student, name, lms_id`, a column per assignment; a row per student and nothing
  else (the points possible are in grades.csv), for a spreadsheet or a script.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from grader.grading.results import Result, write_atomically
from grader.outputs.report import format_points
from grader.students.roster import (
    POINTS_POSSIBLE,
    Claim,
    Person,
    RosterError,
    listed,
    match_roster,
    read_roster,
)

__all__ = ["FLAVOURS", "HEADER", "Person", "RosterError", "match_roster", "read_roster",
           "write_gradebook"]

HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_FOLDER = "gradebook-moodle"  # a file per assignment: Moodle has no empty cell
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Moodle's user fields a gradebook row can be mapped by, as the mapping column's header.
MOODLE_MAPPINGS = (("Email address", "email"), ("ID number", "sis_user_id"),
                   ("Username", "sis_login_id"))


@dataclass(frozen=True)
class Entry:
    """A gradebook row: the person as the LMS knows them, and whose results fill it."""

    person: Person
    student: str | None  # None: on the roster, no submission matched


@dataclass
class Book:
    """What every flavour writes: the rows, the columns and each cell's text."""

    entries: list[Entry]
    assignments: list[str]
    headers: list[str]  # each assignment's column, in the same order
    possible: dict[str, str]
    cells: dict[tuple[str, str], str]  # (student, assignment): the score; absent: empty
    problems: list[str]

    def scores(self, entry: Entry) -> list[str]:
        return [self.cells.get((entry.student or "", name), "") for name in self.assignments]


def write_gradebook(results: list[Result], path: Path, roster: list[Person] | None,
                    flavour: str = "canvas",
                    columns: Mapping[str, str] | None = None) -> list[str]:
    """Write `path` in `flavour` (canvas, moodle or plain); `columns` maps an assignment to
    its LMS column ("HW3 Softmax (123)"). Returns what the instructor must read: the
    roster's problems and what the flavour could not write."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown gradebook flavour {flavour!r}: choose one of "
                         f"{', '.join(FLAVOURS)}")
    book = book_of(results, roster, columns or {})
    if flavour == "moodle":
        for index, name in enumerate(book.assignments):
            write_rows(path.parent / MOODLE_FOLDER / f"{name}.csv", moodle_rows(replace(
                book, assignments=[name], headers=[book.headers[index]])))
    else:
        write_rows(path, FLAVOURS[flavour](book))
    return list(dict.fromkeys(book.problems))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[safe(c) for c in row] for row in rows])
    write_atomically(path, buffer.getvalue())


def book_of(results: list[Result], roster: list[Person] | None,
            columns: Mapping[str, str]) -> Book:
    """The rows and cells of a gradebook, whatever its flavour."""
    assignments = sorted({result.assignment for result in results})
    # A fault's result has no tests to count points from: any other result's points win.
    possible = {r.assignment: format_points(r.max_score)
                for r in sorted(results, key=lambda r: r.fault is None)}
    cells = {(r.student, r.assignment): format_points(r.score) for r in results
             if r.scored}
    firsts = {r.student: r for r in reversed(results)}
    problems = []
    if roster is None:
        entries = [Entry(Person(first.shown_name, first.lms_id or "", sis_login_id=student),
                         student) for student, first in sorted(firsts.items())]
    else:
        claims = [Claim(r.student, r.lms_id, Path(r.source).name) for r in firsts.values()]
        match = match_roster(claims, roster)
        owners = {id(person): student for student, person in match.rows.items()}
        entries = [Entry(person, owners.get(id(person))) for person in roster]
        problems = match.problems()
    return Book(entries, assignments, [columns.get(a) or a for a in assignments],
                possible, cells, problems)


def canvas_rows(book: Book) -> list[list[str]]:
    """Canvas's gradebook import: the points possible first, then each row."""
    rows = [[*HEADER, *book.headers],
            [POINTS_POSSIBLE, "", "", "", "", *(book.possible[a] for a in book.assignments)]]
    for entry in book.entries:
        person = entry.person
        rows.append([person.student, person.id, person.sis_user_id,
                     person.sis_login_id, person.section, *book.scores(entry)])
    return rows


def moodle_rows(book: Book) -> list[list[str]]:
    """Moodle's "Import CSV": a row per student with every score of the book (one
    assignment's), mapped by one user field; no empty cell, which would empty a grade."""
    header, attribute = moodle_mapping([e.person for e in book.entries if e.student])
    rows, unmapped = [[header, "Full name", *book.headers]], []
    for entry in book.entries:
        scores = book.scores(entry)
        if not all(scores):
            continue
        if not getattr(entry.person, attribute):
            unmapped.append(entry.person.label())
            continue
        rows.append([getattr(entry.person, attribute), entry.person.student, *scores])
    if unmapped:
        book.problems.append(f"left out of the Moodle gradebook, having no {header} for "
                             f"Moodle to map: {listed(unmapped)}; add it to the roster")
    return rows


def moodle_mapping(people: list[Person]) -> tuple[str, str]:
    """The user field Moodle maps rows by: the first every student has (email first), else
    the one most have (the others are left out, said so)."""
    for header, attribute in MOODLE_MAPPINGS:
        if all(getattr(person, attribute) for person in people):
            return header, attribute
    return max(MOODLE_MAPPINGS, key=lambda m: sum(bool(getattr(p, m[1])) for p in people))


def plain_rows(book: Book) -> list[list[str]]:
    """A row per student: id, name, LMS id and a score per assignment."""
    return [["student", "name", "lms_id", *book.headers], *(
        [entry.student or "", entry.person.student, entry.person.id, *book.scores(entry)]
        for entry in book.entries)]


FLAVOURS: dict[str, Callable[[Book], list[list[str]]]] = {
    "canvas": canvas_rows, "moodle": moodle_rows, "plain": plain_rows}


def safe(cell: str) -> str:
    """A cell no spreadsheet runs as a formula: one starting like a formula gets a `'`."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell
