"""gradebook.csv: one row per student, one column per assignment, as an LMS imports it.

The shape is Canvas's gradebook CSV (the columns `Student, ID, SIS User ID, SIS Login ID,
Section`, then an assignment per column, a `Points Possible` row first); Moodle's CSV grade
import maps the same columns. A student is the submission's file or folder name, put in
`SIS Login ID`, or the roster row (a Canvas gradebook export, say) that names them in one of
its id columns; a student the roster does not name stops the export, listing them all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.report import format_points
from grader.results import Result, write_atomically
from grader.submissions import student_id

ID_COLUMNS = ("SIS Login ID", "SIS User ID", "ID")
POINTS_POSSIBLE = "Points Possible"


class RosterError(ValueError):
    """A roster the gradebook cannot use, or students it does not name."""


@dataclass(frozen=True)
class Person:
    """A roster row: what Canvas needs to find the student."""

    student: str
    id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    def names(self) -> set[str]:
        """The names a submission of theirs may carry: each id as the grader cleans file
        names, and a login's part before any '@'."""
        ids = [self.id, self.sis_user_id, self.sis_login_id, self.sis_login_id.split("@")[0]]
        return {student_id(value) for value in ids if value.strip()}

    def row(self) -> list[str]:
        return [self.student, self.id, self.sis_user_id, self.sis_login_id, self.section]


HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def read_roster(path: Path) -> list[Person]:
    """The students of a roster CSV with Canvas's columns (at least one id column)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise RosterError(f"cannot read the roster {path}: {error}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [name.strip() for name in reader.fieldnames or []]
    if not any(name in columns for name in ID_COLUMNS):
        raise RosterError(f"the roster {path} has none of the columns {', '.join(ID_COLUMNS)} "
                          f"(it has: {', '.join(columns) or 'nothing'})")
    people = []
    for row in reader:
        values = {key.strip(): (value or "").strip() for key, value in row.items()
                  if isinstance(key, str)}
        if values.get("Student", "") == POINTS_POSSIBLE:  # a Canvas export's second row
            continue
        people.append(Person(values.get("Student", ""), values.get("ID", ""),
                             values.get("SIS User ID", ""), values.get("SIS Login ID", ""),
                             values.get("Section", "")))
    return people


def match_roster(students: Iterable[str], roster: list[Person]) -> dict[str, Person]:
    """Each student's roster row; every student must have exactly one."""
    matched, unmatched, ambiguous = {}, [], []
    for student in sorted(set(students)):
        rows = [person for person in roster if student in person.names()]
        if len(rows) == 1:
            matched[student] = rows[0]
        elif rows:
            ambiguous.append(f"{student} ({', '.join(p.student or '?' for p in rows)})")
        else:
            unmatched.append(student)
    problems = []
    if unmatched:
        problems.append(f"the roster names no student {', '.join(unmatched)} (matched by "
                        f"{', '.join(ID_COLUMNS)}): add them or rename their submissions")
    if ambiguous:
        problems.append(f"the roster names more than once: {'; '.join(ambiguous)}")
    if problems:
        raise RosterError("; ".join(problems))
    return matched


def write_gradebook(results: list[Result], path: Path, roster: list[Person] | None) -> None:
    """Total per student and assignment. With a roster, every roster row in its order; one
    with no submission gets empty cells, which an import leaves as they were."""
    assignments = sorted({result.assignment for result in results})
    possible = {result.assignment: result.max_score for result in results}
    totals = {(result.student, result.assignment): result.score for result in results}
    students = sorted({result.student for result in results})
    if roster is None:
        rows = [(Person(student, sis_login_id=student), student) for student in students]
    else:
        owners = {id(person): student
                  for student, person in match_roster(students, roster).items()}
        rows = [(person, owners.get(id(person))) for person in roster]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*HEADER, *assignments])
    writer.writerow([POINTS_POSSIBLE, "", "", "", "",
                     *(format_points(possible[name]) for name in assignments)])
    for person, student in rows:
        writer.writerow([*person.row(), *(
            format_points(totals[student, name]) if (student, name) in totals else ""
            for name in assignments)])
    write_atomically(path, buffer.getvalue())
