"""A course's round trip: a class downloaded from the LMS as it exports it, graded against
the LMS's roster, and the gradebook imported back by the LMS's own rules (tests/lms_import.py)
with every grade in its student's row, missing work left alone, late work penalised and an
instructor's override kept through a forced regrade. Once for Canvas, once for Moodle."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lms_import import User, canvas_import, moodle_import

from grader.authoring import course
from grader.cli import main

ASSIGNMENTS = ("preliminaries", "linear_regression")
COLUMNS = {"preliminaries": "HW1 Preliminaries (111)",
           "linear_regression": "HW2 Linear Regression (456)"}
DUE = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
ON_TIME = DUE.replace(hour=12).timestamp()
TWO_DAYS_LATE = DUE.replace(day=3, hour=10).timestamp()  # 1 day 10 hours: 2 started days
OVERRIDDEN = "data_iter.shuffles_every_epoch"
CANVAS_USERS = [User(123456, "Smith, Carol", "S001", "csmith"),
                User(234567, "Núñez, José", "S002", "jnunez"),
                User(345678, "Doe, Dave", "S003", "ddoe"),
                User(456789, "Evans, Eve", "S004", "eevans")]
CANVAS_ASSIGNMENTS = {111: "HW1 Preliminaries", 456: "HW2 Linear Regression"}
MOODLE_USERS = [User(1, "Zoë Ångström", email="zoe@example.edu"),
                User(2, "Li Lei", email="lilei@example.edu"),
                User(3, "Ana Absent", email="ana@example.edu")]


def moodle_imports(out: Path) -> tuple[dict, list[str]]:
    """Each assignment's file imported as Moodle would, into the grade item of its name."""
    grades, errors = {}, []
    for name, column in COLUMNS.items():
        done = moodle_import((out / "gradebook-moodle" / f"{name}.csv").read_text(),
                             MOODLE_USERS, "Email address", "useremail", {column: name})
        grades.update(done.grades)
        errors += done.errors
    return grades, errors


def solution(name: str) -> bytes:
    return (course.BUNDLED.reference / f"{name}.ipynb").read_bytes()


def blank(name: str) -> bytes:
    return (course.BUNDLED.exercises / f"{name}.ipynb").read_bytes()


def a_course(root: Path) -> Path:
    """A course of the instructor's own: the LMS's column names and a late policy (10% a
    started day, at most 50%) for linear regression."""
    made = course.init(root / "course")
    for name, column in COLUMNS.items():
        path = made.assignments / f"{name}.toml"
        text = path.read_text().replace('gradebook_column = ""',
                                        f'gradebook_column = "{column}"')
        if name == "linear_regression":
            text += ('\n[late]\ndue = 2026-12-01T23:59:00Z\npenalty_per_day = 0.1\n'
                     'max_penalty = 0.5\n')
        path.write_text(text)
    return made.root


def write(path: Path, data: bytes, when: float = ON_TIME) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when, when))


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def grade(root: Path, submissions: Path, roster: Path, lms: str, *more: str) -> dict:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(course.ENV_VAR, str(root / "course"))
        ran = CliRunner().invoke(main, [
            str(submissions), "--out", str(root / "out"), "--roster", str(roster),
            "--lms", lms, "--jobs", "2", "--json",
            *(f"--assignment={name}" for name in ASSIGNMENTS), *more])
    assert ran.exit_code == 0, ran.output
    return json.loads(ran.stdout[ran.stdout.index("{"):])


def round_trip(root: Path, roster_text: str, lms: str, student: str) -> tuple[dict, dict]:
    """The class in `root/submissions` graded with the roster, then an override of
    `student`'s and a forced regrade: (the first run's summary, regrade_with_override's)."""
    roster = root / "roster.csv"
    roster.write_text(roster_text, encoding="utf-8")
    first = grade(root, root / "submissions", roster, lms)
    return first, regrade_with_override(root, root / "submissions", roster, lms, student)


def regrade_with_override(root: Path, submissions: Path, roster: Path, lms: str,
                          student: str) -> dict:
    """The gradebook's text before, and after an override and a forced regrade of it all."""
    before = gradebook(root / "out", lms)
    (root / "out" / "overrides.csv").write_text(
        "student,assignment,test,points,reason\n"
        f'{student},linear_regression,{OVERRIDDEN},0,"shuffles with a fixed seed: '
        'not shuffling, as the handout asks"\n')
    forced = grade(root, submissions, roster, lms, "--force")
    return {"before": before, "after": gradebook(root / "out", lms), "forced": forced}


def gradebook(out: Path, lms: str) -> str | tuple[dict, list[str]]:
    """What the LMS would import: Canvas's gradebook.csv, or Moodle's grades and errors."""
    return moodle_imports(out) if lms == "moodle" else (out / "gradebook.csv").read_text()


@pytest.fixture(scope="module")
def canvas_class(tmp_path_factory):
    """Canvas's "Download Submissions" of both assignments in one folder: Carol's two
    solutions (linear regression marked late, two started days), José's preliminaries in
    a zip, Dave's blank linear regression resubmitted (`-1`), nothing from Eve. The roster
    is Canvas's gradebook export, with grades already in it."""
    root = tmp_path_factory.mktemp("canvas")
    a_course(root)
    down = root / "submissions"
    write(down / "smithcarol_123456_7001_preliminaries.ipynb", solution("preliminaries"))
    write(down / "smithcarol_LATE_123456_7002_linear_regression.ipynb",
          solution("linear_regression"), TWO_DAYS_LATE)
    write(down / "nunezjose_234567_7003_homework.zip",
          zipped("week1/preliminaries.ipynb", solution("preliminaries")))
    write(down / "doedave_345678_7004_linear_regression-1.ipynb", blank("linear_regression"))
    first, trip = round_trip(root, (
        "Student,ID,SIS User ID,SIS Login ID,Section,HW1 Preliminaries (111),"
        "HW2 Linear Regression (456)\n"
        "    Points Possible,,,,,28.00,33.00\n"
        '"Smith, Carol",123456,S001,csmith,Sec A,3,4\n'
        '"Núñez, José",234567,S002,jnunez,Sec A,5,17\n'
        '"Doe, Dave",345678,S003,ddoe,Sec B,6,7\n'
        '"Evans, Eve",456789,S004,eevans,Sec B,12,9\n'), "canvas", "csmith")
    yield root, first, trip, root / "roster.csv"


def test_canvas_files_are_matched_to_the_roster_before_grading(canvas_class):
    root, first, _, _ = canvas_class
    assert not [p for p in first["problems"] if "no roster row" in p]
    assert [p for p in first["problems"] if "Evans, Eve" in p]  # absent, named
    carol = json.loads((root / "out" / "smithcarol" / "linear_regression" /
                        "results.json").read_text())
    assert (carol["name"], carol["lms_id"]) == ("Smith, Carol", "123456")
    assert carol["source"] == "smithcarol_LATE_123456_7002_linear_regression.ipynb"
    jose = first["students"]["nunezjose"]
    assert jose["preliminaries"]["score"] == jose["preliminaries"]["max_score"] == 28
    assert jose["linear_regression"]["score"] is None  # not handed in: no 0


def test_canvas_imports_each_grade_into_its_row_and_leaves_the_rest(canvas_class):
    _, _, trip, _ = canvas_class
    done = canvas_import(trip["before"], CANVAS_USERS, CANVAS_ASSIGNMENTS)
    assert done.errors == [] and done.new_assignments == [] and done.new_students == []
    prelim, linreg = CANVAS_ASSIGNMENTS[111], CANVAS_ASSIGNMENTS[456]
    assert done.grades == {
        (123456, prelim): "28",
        (123456, linreg): "26.4",  # 33, less 2 started days late at 10%: 6.6 off
        (234567, prelim): "28",  # from the zip
        (345678, linreg): "0",  # handed in blank: a real 0
    }  # José's linear regression, Dave's preliminaries and all of Eve's: left as they were


def test_the_late_penalty_is_shown_to_the_student(canvas_class):
    root, _, _, _ = canvas_class
    saved = json.loads((root / "out" / "smithcarol" / "linear_regression" /
                        "results.json").read_text())
    [late] = [a for a in saved["adjustments"] if a["kind"] == "late"]
    assert late["points"] == 6.6 and "2 started day" in late["reason"]
    page = (root / "out" / "smithcarol" / "linear_regression" / "report.html").read_text()
    assert "6.6" in page and "late" in page.lower()


def test_an_override_survives_a_forced_regrade(canvas_class):
    root, _, trip, _ = canvas_class
    assert "smithcarol/linear_regression" in trip["forced"]["graded"]  # really regraded
    done = canvas_import(trip["after"], CANVAS_USERS, CANVAS_ASSIGNMENTS)
    assert done.errors == []
    # The test was worth 1 of 33: 32 earned, less 10% a day for 2 days of 33.
    assert done.grades[123456, CANVAS_ASSIGNMENTS[456]] == "25.4"
    saved = json.loads((root / "out" / "smithcarol" / "linear_regression" /
                        "results.json").read_text())
    [override] = [a for a in saved["adjustments"] if a["kind"] == "override"]
    assert override["test"] == OVERRIDDEN and "fixed seed" in override["reason"]
    page = (root / "out" / "smithcarol" / "linear_regression" / "report.html").read_text()
    assert "fixed seed" in page


def test_release_gives_canvas_a_report_per_handed_in_file(canvas_class, tmp_path):
    root, _, _, _ = canvas_class
    ran = CliRunner().invoke(main, ["release", str(root / "out"), "--to", str(tmp_path),
                                    "--lms", "canvas"])
    assert ran.exit_code == 0, ran.output
    with zipfile.ZipFile(tmp_path / "linear_regression-canvas-feedback.zip") as archive:
        names = sorted(archive.namelist())
    assert [name.split("_")[:3] for name in names] == [
        ["doedave", "345678", "7004"], ["smithcarol", "LATE", "123456"]]


@pytest.fixture(scope="module")
def moodle_class(tmp_path_factory):
    """Moodle's "Download all submissions" of linear regression and preliminaries: a
    folder per participant; the roster is Moodle's grading worksheet."""
    root = tmp_path_factory.mktemp("moodle")
    a_course(root)
    down = root / "submissions"
    write(down / "Zoë Ångström_1001_assignsubmission_file_" / "linear_regression.ipynb",
          solution("linear_regression"))
    write(down / "Zoë Ångström_1001_assignsubmission_file_" / "preliminaries.ipynb",
          solution("preliminaries"))
    write(down / "Li Lei_1002_assignsubmission_file_" / "my notebook.ipynb",
          blank("preliminaries"))
    first, trip = round_trip(root, (
        "Identifier,Full name,Email address,Status,Grade,Maximum Grade\n"
        "Participant 1001,Zoë Ångström,zoe@example.edu,Submitted,,100\n"
        "Participant 1002,Li Lei,lilei@example.edu,Submitted,,100\n"
        "Participant 1003,Ana Absent,ana@example.edu,No submission,,100\n"), "moodle",
        "zoe@example.edu")
    yield root, first, trip


def test_moodle_imports_without_a_user_not_found_and_touches_only_graded_work(moodle_class):
    _, first, trip = moodle_class
    grades, errors = trip["before"]
    assert errors == []
    assert grades == {(1, "linear_regression"): "33", (1, "preliminaries"): "28",
                      (2, "preliminaries"): "0"}  # Li Lei's linear regression left alone
    [zoe] = [r for s, r in first["students"].items() if s.startswith("Zoe_Angstrom~")]
    assert zoe["preliminaries"]["score"] == 28
    assert [p for p in first["problems"] if "Ana Absent" in p]


def test_moodle_keeps_the_override_through_a_forced_regrade(moodle_class):
    _, _, trip = moodle_class
    grades, errors = trip["after"]
    assert errors == [] and grades[1, "linear_regression"] == "32"


def test_one_notebook_is_graded_as_a_class_of_one(tmp_path, monkeypatch):
    monkeypatch.setenv(course.ENV_VAR, str(course.BUNDLED.root))
    own = tmp_path / "carol.ipynb"
    shutil.copy(course.BUNDLED.reference / "preliminaries.ipynb", own)
    ran = CliRunner().invoke(main, [str(own), "--assignment", "preliminaries", "--json"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout[ran.stdout.index("{"):])
    assert summary["students"]["carol"]["preliminaries"]["score"] == 28
    assert (tmp_path / "carol-graded" / "carol" / "preliminaries" / "report.html").is_file()
    with open(tmp_path / "carol-graded" / "gradebook.csv", newline="") as handle:
        assert [row["SIS Login ID"] for row in csv.DictReader(handle)] == ["", "carol"]
