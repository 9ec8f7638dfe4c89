"""`grade release`: feedback back to students, one bundle per student in the form the LMS
takes back, holding that student's report alone.

- canvas: per assignment, a zip for the assignment's "Upload Submissions" (feedback
  re-upload). Canvas reads a file's owner from its name alone: of the parts of the name
  split at '_', the first two made of digits only are the student's user id and the id of
  the file they handed in, which must be one of theirs ("Download Submissions" names files
  `smithcarol_LATE_123456_7654321_original.ipynb`). Each report keeps that prefix. Canvas
  attaches it to a comment on the submission, under the name of the student's own file.
- moodle: per assignment, a zip for "Upload multiple feedback files in a zip": a folder per
  student named as Moodle's download names it (`Full Name_12345_assignsubmission_file_`),
  whose second part is the participant id Moodle matches on, the report inside.
- plain: DEST/STUDENT/ASSIGNMENT.html.

A report goes only where the result's LMS id and its file's name agree, and only where no
other result claims the same place: a mismatch or a twin is a problem named to the
instructor, never a guess that could hand a student a classmate's report. Work not handed
in and grader faults get no report. Reports are rendered from a copy of the result whose
hidden tests carry no expected or got value, whatever the template shows.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from grader.files import open_regular
from grader.grading.results import OUTPUT_MODE, Result, write_atomically
from grader.outputs.report import by_assignment, render_report
from grader.students.identity import APART, shown, student_id

FLAVOURS = ("canvas", "moodle", "plain")
MAX_RESULT_BYTES = 64 * 2**20
MAX_NAME_CHARS = 60  # of a student's name kept in a Canvas or Moodle file name
NOT_IN_MOODLE_NAMES = set('_/\\:*?"<>|')  # '_' splits Moodle's name from the id
MOODLE_FOLDER = re.compile(
    r"(?P<name>[^_/]*)_(?P<id>[0-9]+)_(?P<plugin>assign(?:submission|feedback)_[a-z0-9]+)(?:_|$)")


class ReleaseError(ValueError):
    """Nothing can be released (no results, an unknown LMS), with what to do."""


class Unmatched(ValueError):
    """A result whose report the LMS could not give to its student, and why."""


@dataclass(frozen=True)
class Feedback:
    """One student's report and its place in the bundle: `entry` its path inside the zip
    (or DEST), `claimant` what no two students may share (the LMS id, or the path)."""

    label: str
    entry: str
    claimant: str
    html: str


@dataclass
class Released:
    """What `release` wrote, how many reports, how many results had no work to report on,
    and the results it left out, each with its reason."""

    written: list[Path] = field(default_factory=list)
    reports: int = 0
    missing: int = 0
    problems: list[str] = field(default_factory=list)


def release(out: Path, dest: Path, flavour: str) -> Released:
    """Write, into `dest`, the students' reports of the results in `out` as `flavour`'s LMS
    takes them back: per assignment one zip (canvas, moodle) or one file per student."""
    if flavour not in FLAVOURS:
        raise ReleaseError(f"unknown LMS {shown(flavour)}: use one of {', '.join(FLAVOURS)}")
    results, problems = read_results(out)
    released = Released(problems=problems)
    for assignment, group in by_assignment(results).items():
        feedback = []
        for result in group:
            if result.missing:
                released.missing += 1
            elif result.fault:
                problems.append(f"{label_of(result)} is a grader fault, not a grade: no "
                                "feedback; grade it again, then release again")
            else:
                try:
                    feedback.append(feedback_of(result, flavour))
                except Unmatched as error:
                    problems.append(str(error))
        written, reports = WRITERS[flavour](dest, assignment,
                                            sole_claimants(feedback, problems), problems)
        released.written += written
        released.reports += reports
    return released


def read_results(out: Path) -> tuple[list[Result], list[str]]:
    """The results in `out` (STUDENT/ASSIGNMENT/results.json), and those unreadable."""
    paths = sorted(out.glob("*/*/results.json"))
    if not paths:
        raise ReleaseError(f"{out} holds no results (looked for STUDENT/ASSIGNMENT/"
                           "results.json): grade a folder into it first")
    results, problems = [], []
    for path in paths:
        try:
            results.append(read_result(path))
        except (OSError, ValueError, TypeError, KeyError, RecursionError) as error:
            where = shown(str(path.relative_to(out)))
            problems.append(f"{where} cannot be read ({shown(str(error))}): no feedback; "
                            "grade that submission again, then release again")
    return results, problems


def read_result(path: Path) -> Result:
    """One results.json, read without following a link and within MAX_RESULT_BYTES."""
    if path.parent.is_symlink() or path.parent.parent.is_symlink():
        raise OSError("its folder is a link, which a grader's output never holds")
    handle, info = open_regular(path)
    with os.fdopen(handle, "rb") as file:
        if info.st_size > MAX_RESULT_BYTES:
            raise ValueError(f"{info.st_size / 2**20:.0f} MiB, over the "
                             f"{MAX_RESULT_BYTES / 2**20:.0f} MiB a result may be")
        return Result.from_dict(json.loads(file.read(MAX_RESULT_BYTES)))


def label_of(result: Result) -> str:
    return f"{shown(result.student)}/{shown(result.assignment)}"


def student_view(result: Result) -> Result:
    """A copy of the result as its student may read it: a hidden test keeps its verdict and
    message (written to quote nothing hidden), never its expected or got value."""
    return replace(result, tests=[replace(test, expected=None, got=None) if test.hidden
                                  else test for test in result.tests])


def feedback_of(result: Result, flavour: str) -> Feedback:
    entry, claimant = PLACES[flavour](result)
    return Feedback(label_of(result), entry, claimant, render_report(student_view(result)))


def report_name(result: Result) -> str:
    """The report's own name after the LMS's prefix: it ends the name, so no part the LMS
    reads (ids, Canvas's `link` ending) comes from it."""
    return f"{student_id(result.assignment)}_report.html"


def canvas_place(result: Result) -> tuple[str, str]:
    """`name[_LATE]_USERID_FILEID_ASSIGNMENT_report.html`, from the handed-in file's name;
    Unmatched where that name lacks Canvas's ids or names another user id than the LMS id."""
    require_lms_id(result)
    # The download's file: the notebook's own name, or for one unpacked, its zip's.
    path = PurePosixPath(result.source)
    name = next((part for part in path.parts if canvas_ids(part)), path.name)
    parts = name.split("_")
    ids = canvas_ids(name)
    if not ids:
        raise Unmatched(f"{label_of(result)}: its file {shown(name)} is not named as Canvas's "
                        "'Download Submissions' names files (name_USERID_FILEID_file), so "
                        "Canvas could not match its feedback to the student: grade the "
                        "files of Canvas's download as they are named")
    user, handed = parts[ids[0]], parts[ids[1]]
    check_lms_id(result, user, "Canvas user id")
    head = parts[:ids[0]]
    late = head[-1:] == ["LATE"]
    person = canvas_name(head[:-1] if late else head)
    kept = [person, "LATE" if late else "", user, handed, report_name(result)]
    return "_".join(part for part in kept if part), user


def canvas_ids(name: str) -> list[int]:
    """Where a file name holds Canvas's USERID_FILEID: the indices of its first two parts
    of digits, if they follow each other; else empty."""
    parts = name.split("_")
    ids = [index for index, part in enumerate(parts) if part.isascii() and part.isdigit()]
    return ids[:2] if len(ids) >= 2 and ids[1] == ids[0] + 1 else []


def canvas_name(parts: list[str]) -> str:
    """The student's name as Canvas's prefix gives it, letters and digits only and short; dropped
    where it would read as digits alone, since Canvas takes the first such part as the user id."""
    name = "".join(char for char in "".join(parts) if char.isalnum())[:MAX_NAME_CHARS]
    return "" if name.isdigit() else name


def moodle_place(result: Result) -> tuple[str, str]:
    """`Full Name_ID_assignsubmission_file_/ASSIGNMENT_report.html`, from the first part of
    the handed-in file's path named as Moodle's download names a student's files."""
    require_lms_id(result)
    for part in PurePosixPath(result.source).parts:
        match = MOODLE_FOLDER.match(part)
        if match:
            check_lms_id(result, match["id"], "Moodle participant id")
            folder = f"{moodle_name(match['name'])}_{match['id']}_{match['plugin']}_"
            return f"{folder}/{report_name(result)}", match["id"]
    raise Unmatched(f"{label_of(result)}: its file {shown(result.source)} is not named as "
                    "Moodle's 'Download all submissions' names files (Full Name_ID_"
                    "assignsubmission_file_), so Moodle could not match its feedback to the "
                    "student: grade the files of Moodle's download as they are named")


def moodle_name(name: str) -> str:
    """The name part of a Moodle folder: printable, no '_' or path characters, short."""
    kept = "".join(char for char in name if char.isprintable() and char not in
                   NOT_IN_MOODLE_NAMES)[:MAX_NAME_CHARS].strip(" .~")
    return kept or "Participant"


def require_lms_id(result: Result) -> None:
    """Unmatched for a result the LMS knows no id of (a file not from its download)."""
    if result.lms_id is None:
        raise Unmatched(f"{label_of(result)} has no LMS id, so its feedback cannot be matched "
                        "to the student: grade the files of the LMS's download, which carry it")


def check_lms_id(result: Result, named: str, what: str) -> None:
    """Unmatched unless the file's name gives the result's own LMS id."""
    if named != result.lms_id:
        raise Unmatched(f"{label_of(result)}: its file names {what} {shown(named)}, its result "
                        f"the LMS id {shown(result.lms_id)}: no feedback, since one of them "
                        "is another student's; check which file is whose and grade again")


def plain_place(result: Result) -> tuple[str, str]:
    """`STUDENT/ASSIGNMENT.html`, each part cleaned (an id keeps its '~' and hash)."""
    student = APART.join(map(student_id, result.student.split(APART)))
    entry = f"{student}/{student_id(result.assignment)}.html"
    return entry, entry


PLACES: dict[str, Callable[[Result], tuple[str, str]]] = {
    "canvas": canvas_place, "moodle": moodle_place, "plain": plain_place}


def sole_claimants(feedback: list[Feedback], problems: list[str]) -> list[Feedback]:
    """The feedback whose place no other result claims; twins are named and left out, since
    the LMS would hand each of them the same report."""
    claims = Counter(item.claimant for item in feedback)
    for claimant in sorted(claimant for claimant, count in claims.items() if count > 1):
        twins = ", ".join(item.label for item in feedback if item.claimant == claimant)
        problems.append(f"{twins} all go to {shown(claimant)}: none of them gets feedback, "
                        "since each would reach the same student; check their ids")
    return [item for item in feedback if claims[item.claimant] == 1]


def bundle_path(dest: Path, assignment: str, flavour: str) -> Path:
    return dest / f"{student_id(assignment)}-{flavour}-feedback.zip"


def write_zip(path: Path, files: dict[str, str]) -> None:
    """A zip of `files` (name: text), written via a temporary file and a rename, so an
    interrupted run never leaves half a bundle for the LMS to take."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    stamp = time.localtime()[:6]
    try:
        os.fchmod(fd, OUTPUT_MODE)
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as bundle:
            for name, text in files.items():
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = OUTPUT_MODE << 16
                bundle.writestr(info, text.encode("utf-8", errors="backslashreplace"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


Writer = Callable[[Path, str, list[Feedback], list[str]], tuple[list[Path], int]]


def zip_writer(flavour: str) -> Writer:
    """Writes one assignment's feedback as `flavour`'s zip (none where there is none), and
    says which files it wrote and how many reports they hold."""
    def write(dest: Path, assignment: str, feedback: list[Feedback],
              problems: list[str]) -> tuple[list[Path], int]:
        if not feedback:
            return [], 0
        path = bundle_path(dest, assignment, flavour)
        write_zip(path, {item.entry: item.html for item in feedback})
        return [path], len(feedback)
    return write


def write_plain(dest: Path, assignment: str, feedback: list[Feedback],
                problems: list[str]) -> tuple[list[Path], int]:
    """Each report as DEST/STUDENT/ASSIGNMENT.html; never through a link found there."""
    written = []
    for item in feedback:
        path = dest / item.entry
        if path.parent.is_symlink() or path.is_symlink():
            problems.append(f"{item.label}: {shown(str(path))} is a link: no feedback written "
                            "through it; remove it and release again")
            continue
        write_atomically(path, item.html)
        written.append(path)
    return written, len(written)


WRITERS: dict[str, Writer] = {"canvas": zip_writer("canvas"), "moodle": zip_writer("moodle"),
                              "plain": write_plain}
