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
import unicodedata
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader.identity import look_alike, shown
from grader.report import format_points
from grader.results import Result, write_atomically

ID_COLUMNS = ("SIS Login ID", "SIS User ID", "ID")
POINTS_POSSIBLE = "Points Possible"
MAX_LISTED = 20  # names a roster message lists before "and N more"


class RosterError(ValueError):
    """A roster the gradebook cannot read."""


@dataclass(frozen=True)
class Person:
    """A roster row: what Canvas needs to find the student."""

    student: str
    id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    def names(self) -> set[str]:
        """The student ids that are theirs, exactly: each id column and a login's part
        before any '@' (NFC, as ids are)."""
        ids = [self.id, self.sis_user_id, self.sis_login_id, self.sis_login_id.split("@")[0]]
        return {unicodedata.normalize("NFC", value.strip()) for value in ids if value.strip()}

    def label(self) -> str:
        """The row as a message names it: name and login."""
        login = self.sis_login_id or self.sis_user_id or self.id
        return shown(f"{self.student} ({login})" if self.student else login)

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


@dataclass
class RosterMatch:
    """Which roster row is whose, and what matched nothing on either side."""

    rows: dict[str, Person] = field(default_factory=dict)  # student id: their row
    unmatched: list[str] = field(default_factory=list)  # how each such submission is shown
    contested: list[str] = field(default_factory=list)  # rows more than one submission names
    ambiguous: list[str] = field(default_factory=list)  # submissions more than one row names
    missing: list[Person] = field(default_factory=list)  # rows with no submission

    def problems(self) -> list[str]:
        """What the instructor must read: submissions left out, students absent."""
        found = []
        if self.unmatched:
            found.append(f"no roster row names {listed(self.unmatched)}: left out of "
                         f"gradebook.csv (matched exactly by {', '.join(ID_COLUMNS)} or a "
                         "login's part before '@'); add them to the roster or rename the "
                         "submission")
        if self.ambiguous:
            found.append(f"submissions the roster names more than once, left out of "
                         f"gradebook.csv: {listed(self.ambiguous)}; fix the roster")
        if self.contested:
            found.append(f"roster rows named by more than one submission, given to none "
                         f"(their cells left empty): {listed(self.contested)}; check whose "
                         "work each is")
        if self.missing:
            found.append(f"on the roster with no submission (absent, their cells left "
                         f"empty): {listed([person.label() for person in self.missing])}")
        return found


def listed(names: list[str]) -> str:
    """Names for one message, bounded however many there are."""
    more = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def match_roster(students: Mapping[str, str], roster: list[Person]) -> RosterMatch:
    """Each student's roster row by exact id. `students` maps each id to its submission's
    file or folder name, for the messages. Nothing a file name does stops the export: an id
    two rows name matches neither, and a row two submissions name (a login and another's
    user id, say) goes to neither, whatever the order; each is a problem to read."""
    named: dict[str, list[Person]] = defaultdict(list)
    alike: dict[str, list[str]] = defaultdict(list)
    for person in roster:
        for name in person.names():
            named[name].append(person)
            alike[look_alike(name)].append(shown(name))
    match = RosterMatch()
    claims: dict[int, list[str]] = defaultdict(list)
    for student in sorted(students):
        rows = named.get(student, [])
        if len(rows) == 1:
            claims[id(rows[0])].append(student)
            match.rows[student] = rows[0]
        elif rows:
            match.ambiguous.append(f"{as_shown(student, students[student])} "
                                   f"({', '.join(p.label() for p in rows)})")
        else:
            near = sorted(set(alike.get(look_alike(student), [])))
            match.unmatched.append(as_shown(student, students[student]) + (
                f" (the roster has {', '.join(near)})" if near else ""))
    for claimants in (c for c in claims.values() if len(c) > 1):
        match.contested.append(f"{match.rows[claimants[0]].label()} by "
                               f"{', '.join(as_shown(s, students[s]) for s in claimants)}")
        for student in claimants:
            del match.rows[student]
    found = {id(person) for person in match.rows.values()}
    match.missing = [person for person in roster
                     if id(person) not in found and id(person) not in claims]
    return match


def as_shown(student: str, source: str) -> str:
    """A submission in a message: its file or folder name, and its id where that differs."""
    return student if source == student else f"{shown(source)} (as {student})"


def write_gradebook(results: list[Result], path: Path,
                    roster: list[Person] | None) -> list[str]:
    """Total per student and assignment. With a roster, every roster row in its order; one
    with no submission gets empty cells, which an import leaves as they were. Returns the
    roster's problems (see RosterMatch)."""
    assignments = sorted({result.assignment for result in results})
    possible = {result.assignment: result.max_score for result in results}
    totals = {(result.student, result.assignment): result.score for result in results}
    students = sorted({result.student for result in results})
    problems = []
    if roster is None:
        rows = [(Person(student, sis_login_id=student), student) for student in students]
    else:
        match = match_roster({r.student: Path(r.source).name for r in results}, roster)
        owners = {id(person): student for student, person in match.rows.items()}
        rows = [(person, owners.get(id(person))) for person in roster]
        problems = match.problems()
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
    return problems
