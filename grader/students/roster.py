"""The roster: who is in the class, read from an LMS's export, and which submission is whose.

When given, the roster is the source of truth: every submission is matched to exactly one
row before grading starts, or listed as unmatched; nothing is matched by guess or by sort
order. Accepted files (UTF-8, a BOM allowed, `,` or `;` between cells, headers in any case):

- Canvas's gradebook export: `Student, ID, SIS User ID, SIS Login ID, Section`, then the
  assignments; its `Points Possible` row, its muted/manual-posting row and the test student
  (`Student, Test`) are skipped.
- Moodle's grading worksheet (`Identifier` = "Participant 12345", `Full name`,
  `Email address`, ...) or its user export (`id`, `username`, `email`, `idnumber`,
  `firstname`, `lastname`).
- A plain CSV with at least one id column: `id`, `login` or `email`, and `name` to show.

A submission's LMS id (Canvas's USERID or Moodle's participant number, from the download's
file names) is matched first, against `ID`/`id`/`Identifier`; then its student id against
every id column, exactly (NFC), and a login's or an email's part before '@'.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from grader.students.identity import look_alike, shown

MAX_ROSTER_BYTES = 16 * 2**20
MAX_ROSTER_ROWS = 100_000
MAX_LISTED = 20  # names a roster message lists before "and N more"
POINTS_POSSIBLE = "Points Possible"
TEST_STUDENT = "Student, Test"  # Canvas's student view, in every export
PARTICIPANT = "Participant "  # Moodle's worksheet: "Participant 12345"
# Each header a roster may have (casefolded), and the Person field it fills.
HEADERS = {
    "student": "student", "name": "student", "full name": "student",
    "id": "id", "identifier": "id",
    "sis user id": "sis_user_id", "idnumber": "sis_user_id", "id number": "sis_user_id",
    "sis login id": "sis_login_id", "login": "sis_login_id", "username": "sis_login_id",
    "email": "email", "email address": "email",
    "section": "section",
    "firstname": "first", "first name": "first", "lastname": "last", "last name": "last",
}
ID_FIELDS = ("id", "sis_user_id", "sis_login_id", "email")
ID_HEADERS = "ID, SIS User ID, SIS Login ID, Identifier, username, idnumber, id, login or email"


class RosterError(ValueError):
    """A roster the gradebook cannot read."""


@dataclass(frozen=True)
class Person:
    """A roster row: what each LMS needs to find the student again."""

    student: str  # the name people read
    id: str = ""  # the LMS's own id: Canvas's user ID, Moodle's participant number
    sis_user_id: str = ""  # the institution's id: Canvas's SIS User ID, Moodle's ID number
    sis_login_id: str = ""  # Canvas's SIS Login ID, Moodle's username
    section: str = ""
    email: str = ""

    def names(self) -> set[str]:
        """The student ids that are theirs, exactly: each id column and a login's or an
        email's part before any '@' (NFC, as ids are)."""
        ids = [getattr(self, name) for name in ID_FIELDS]
        ids += [value.split("@")[0] for value in (self.sis_login_id, self.email)]
        return {unicodedata.normalize("NFC", value.strip()) for value in ids if value.strip()}

    def label(self) -> str:
        """The row as a message names it: name and login."""
        login = self.sis_login_id or self.email or self.sis_user_id or self.id
        return shown(f"{self.student} ({login})" if self.student else login)


def read_roster(path: Path) -> list[Person]:
    """The students of a roster CSV (see the module's docstring for the accepted files)."""
    rows = csv_rows(roster_text(path), path)
    header = [cell.strip().casefold() for cell in next(rows, [])]
    if not any(HEADERS.get(name) in ID_FIELDS for name in header):
        raise RosterError(f"the roster {shown(str(path))} has none of the id columns "
                          f"{ID_HEADERS} (it has: {shown(', '.join(header)) or 'nothing'}); "
                          "export the class list from the LMS, or add one of these columns")
    people = []
    for number, row in enumerate(rows, start=2):
        if number > MAX_ROSTER_ROWS:
            raise RosterError(f"the roster {shown(str(path))} has over {MAX_ROSTER_ROWS:,} "
                              "rows: is it the class list?")
        person = person_of(dict(zip(header, row, strict=False)))
        if person is not None:
            people.append(person)
    return people


def roster_text(path: Path) -> str:
    """The roster's text, bounded, with a message for the encodings spreadsheets write."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ROSTER_BYTES + 1)
    except OSError as error:
        raise RosterError(f"cannot read the roster {shown(str(path))}: "
                          f"{error.strerror}") from None
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterError(f"the roster {shown(str(path))} is over "
                          f"{MAX_ROSTER_BYTES // 2**20} MiB: is it the class list?")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RosterError(f"the roster {shown(str(path))} is UTF-16 (Excel's 'Unicode "
                          "text'): save it as 'CSV UTF-8' instead")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(f"the roster {shown(str(path))} is not UTF-8: save it as "
                          "'CSV UTF-8', or export it from the LMS again") from None


def csv_rows(text: str, path: Path):
    """The rows of a CSV whose cells a `,` or a `;` (Excel in many locales) separates."""
    sample = "\n".join(text.splitlines()[:5])
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        return iter(list(csv.reader(io.StringIO(text), delimiter=dialect.delimiter)))
    except csv.Error as error:
        raise RosterError(f"the roster {shown(str(path))} is not a CSV file: {error}") from None


def person_of(row: Mapping[str, str]) -> Person | None:
    """A roster row's person, or None for the rows an LMS's export adds that are no one."""
    values: dict[str, str] = {}
    for header, cell in row.items():
        name = HEADERS.get(header)
        if name and not values.get(name):
            values[name] = (cell or "").strip()
    if values.get("id", "").startswith(PARTICIPANT):
        values["id"] = values["id"].removeprefix(PARTICIPANT).strip()
    student = values.get("student") or " ".join(
        part for part in (values.get("first", ""), values.get("last", "")) if part)
    if POINTS_POSSIBLE in student or student == TEST_STUDENT:
        return None
    if not any(values.get(name) for name in ID_FIELDS):  # Canvas's muted row, a blank line
        return None
    known = {f.name for f in fields(Person)} - {"student"}
    return Person(student, **{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class Claim:
    """What a submission says of whose it is: its student id, the LMS's id for them (from
    the download's file names) and its own file or folder name, for the messages."""

    student: str
    lms_id: str | None = None
    source: str = ""


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
                         "gradebook.csv (matched exactly by the LMS id of the download's "
                         "file names, then by an id column or a login's part before '@'); "
                         "add them to the roster or rename the submission")
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


def match_roster(claims: Sequence[Claim] | Mapping[str, str],
                 roster: list[Person]) -> RosterMatch:
    """Each submission's roster row: by its LMS id where a row has it, else by its student
    id in the id columns, exactly. A mapping of student id to file name is read as claims
    without LMS ids. Nothing a file name does stops the export: a submission two rows name
    matches neither, and a row two submissions name (a login and another's user id, say)
    goes to neither, whatever the order; each is a problem to read, naming them all."""
    if isinstance(claims, Mapping):
        claims = [Claim(student, None, source) for student, source in claims.items()]
    by_lms: dict[str, list[Person]] = defaultdict(list)
    named: dict[str, list[Person]] = defaultdict(list)
    alike: dict[str, list[str]] = defaultdict(list)
    for person in roster:
        if person.id:
            by_lms[person.id].append(person)
        for name in person.names():
            named[name].append(person)
            alike[look_alike(name)].append(shown(name))
    match = RosterMatch()
    owners: dict[int, list[Claim]] = defaultdict(list)
    for claim in sorted(claims, key=lambda c: c.student):
        rows = by_lms.get(claim.lms_id or "") or named.get(claim.student, [])
        if len(rows) == 1:
            owners[id(rows[0])].append(claim)
            match.rows[claim.student] = rows[0]
        elif rows:
            match.ambiguous.append(f"{as_shown(claim)} ({', '.join(p.label() for p in rows)})")
        else:
            near = sorted(set(alike.get(look_alike(claim.student), [])))
            match.unmatched.append(as_shown(claim) + (
                f" (the roster has {', '.join(near)})" if near else ""))
    for claimants in (c for c in owners.values() if len(c) > 1):
        match.contested.append(f"{match.rows[claimants[0].student].label()} by "
                               f"{', '.join(as_shown(c) for c in claimants)}")
        for claim in claimants:
            del match.rows[claim.student]
    match.missing = [person for person in roster if id(person) not in owners]
    return match


def as_shown(claim: Claim) -> str:
    """A submission in a message: its file or folder name, and its id where that differs."""
    if claim.source in ("", claim.student):
        return claim.student
    return f"{shown(claim.source)} (as {claim.student})"
