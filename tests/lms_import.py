"""What an LMS's CSV grade import would do with a file, by its documented and coded rules.

A test helper, not the LMS: each checker parses the file as the LMS does and applies its
rules for finding students, columns and empty cells, returning the grades it would set
and the errors it would stop on. Sources: Canvas's GradebookImporter (header check, the
`Points Possible` row, students by ID, SIS User ID, SIS Login ID then name, a column
"Title (id)" by id then by exact title, else a new assignment, a blank or `-` cell no
change, `;` detected); Moodle's gradeimport_csv load_data (one "Map from" column matched
exactly to a user field, "User not found, abort whole import", a non-numeric grade
aborts, an empty or `-` cell empties the grade).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

CANVAS_INFO = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Integration ID",
               "Root Account")
CANVAS_COMPUTED = re.compile("Current Score|Current Points|Current Grade|Final Score|"
                             "Final Points|Final Grade|Override Score|Override Grade")
TITLE_AND_ID = re.compile(r"^(.*)\s\((\d+)\)$")
NO_SCORE = ("", "-")


@dataclass(frozen=True)
class User:
    """A user of the LMS: Canvas's id, SIS ids and name; Moodle's email and idnumber."""

    id: int
    name: str = ""
    sis_user_id: str = ""
    login: str = ""  # Canvas's SIS Login ID, Moodle's username
    email: str = ""


@dataclass
class Imported:
    """What an import would do: grades set by (user id, assignment), where None empties
    it; what it would make anew; and the errors that stop it (then it sets nothing)."""

    grades: dict[tuple[int, str], str | None] = field(default_factory=dict)
    new_assignments: list[str] = field(default_factory=list)
    new_students: list[str] = field(default_factory=list)
    points: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def rows_of(text: str) -> list[list[str]]:
    """The rows as Canvas reads them: `;` where the first lines split evenly on it."""
    lines = text.splitlines()[:3]
    fields = {}
    for sep in ",;":
        counts = {len(next(csv.reader([line], delimiter=sep))) for line in lines}
        fields[sep] = counts.pop() if len(counts) == 1 else 0
    semicolon = bool(lines) and fields[";"] > fields[","]
    return list(csv.reader(io.StringIO(text), delimiter=";" if semicolon else ","))


def canvas_import(text: str, users: list[User], assignments: dict[int, str]) -> Imported:
    """Canvas's gradebook import of `text` into a course of `users` and `assignments`
    (id: title)."""
    done = Imported()
    header, *rows = rows_of(text)
    if not (len(header) > 3 and "Student" in header[0] and "ID" in header[1]):
        done.errors.append("Invalid header row")
        return done
    info = sum(1 for name in header if name in CANVAS_INFO)
    if header[info - 1] != "Section":
        done.errors.append("Invalid header row")
        return done
    columns = {index: assignment_of(name, assignments, done)
               for index, name in enumerate(header) if index >= info
               and not CANVAS_COMPUTED.search(name)}
    for row in rows:
        if row and "Points Possible" in row[0]:
            done.points = {columns[i]: row[i] for i in columns if i < len(row)}
            continue
        user = canvas_user(dict(zip(header, row, strict=False)), users, done)
        for index, assignment in columns.items():
            grade = row[index].strip() if index < len(row) else ""
            if user is not None and grade not in NO_SCORE:
                done.grades[user.id, assignment] = grade
    return done


def assignment_of(header: str, assignments: dict[int, str], done: Imported) -> str:
    """The assignment a column fills: by the id in "Title (id)", by its exact title, or a
    new one."""
    found = TITLE_AND_ID.match(header)
    if found and int(found[2]) in assignments:
        return assignments[int(found[2])]
    if header in assignments.values():
        return header
    done.new_assignments.append(header)
    return header


def canvas_user(values: dict[str, str], users: list[User], done: Imported) -> User | None:
    """The student of a row: by ID, SIS User ID, SIS Login ID, then name; else a student
    Canvas lists as not found (their grades are not imported)."""
    for column, attribute in (("ID", "id"), ("SIS User ID", "sis_user_id"),
                              ("SIS Login ID", "login"), ("Student", "name")):
        value = values.get(column, "").strip()
        found = [u for u in users if value and str(getattr(u, attribute)) == value]
        if found:
            return found[0]
    done.new_students.append(values.get("Student", ""))
    return None


MOODLE_FIELDS = {"useremail": "email", "useridnumber": "sis_user_id", "username": "login",
                 "userid": "id"}


def moodle_import(text: str, users: list[User], map_from: str, map_to: str,
                  items: dict[str, str]) -> Imported:
    """Moodle's "Import CSV" of `text`, its users found by the column `map_from` in the
    field `map_to` (useremail, useridnumber, username, userid); `items` maps a column to
    its grade item (the others are ignored)."""
    done = Imported()
    header, *rows = list(csv.reader(io.StringIO(text)))
    header = [name.strip() for name in header]
    if map_from not in header:
        done.errors.append(f"no column {map_from} to map users from")
        return done
    student: User | None = None  # Moodle keeps the last user for a row with a blank one
    for row in rows:
        if len(row) <= 1:
            continue
        values = {name: value.strip() for name, value in zip(header, row, strict=False)}
        if values[map_from]:
            found = [u for u in users
                     if str(getattr(u, MOODLE_FIELDS[map_to])) == values[map_from]]
            if not found:
                done.errors.append(f"User mapping error: could not find user with "
                                   f"{map_to} \"{values[map_from]}\"")
                return aborted(done)
            student = found[0]
        if student is None:
            done.errors.append("User not found, abort whole import")
            return aborted(done)
        for column, item in items.items():
            grade = values.get(column, "")
            if grade not in NO_SCORE and not re.fullmatch(r"-?\d+([.,]\d+)?", grade):
                done.errors.append(f"Bad grade value {grade!r}")
                return aborted(done)
            done.grades[student.id, item] = None if grade in NO_SCORE else grade
    return done


def aborted(done: Imported) -> Imported:
    """An import that stopped: Moodle commits nothing of it."""
    done.grades.clear()
    return done
