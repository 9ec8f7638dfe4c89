"""`grade release`: each student's report in the form Canvas, Moodle or a plain folder
takes back, their own alone, without hidden values, and none for work not handed in."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest

from grader.grading.results import Result, TestResult, save_result
from grader.outputs.release import ReleaseError, release

ASSIGNMENT = "softmax_regression"
SECRETS = ("SECRET-EXPECTED-31337", "SECRET-GOT-42424")
# student: (LMS id, Canvas's file name, Moodle's path)
STUDENTS = {
    "carol": ("123456", "smithcarol_LATE_123456_7654321_softmax_regression.ipynb",
              "Carol Smith_123456_assignsubmission_file_/softmax_regression.ipynb"),
    "dave": ("222", "jonesdave_222_888_softmax_regression.ipynb",
             "Dave Jones_222_assignsubmission_file_softmax_regression.ipynb"),
}


def result_of(student: str, source: str, lms_id: str | None, **kw) -> Result:
    tests = [
        TestResult("softmax.rows", "softmax", 1.0, 1.0, True, "rows sum to one",
                   expected=f"visible expected of {student}", got=f"visible got of {student}"),
        TestResult("softmax.hidden", "softmax", 1.0, 0.0, False,
                   "softmax: not met on the hidden inputs", expected=SECRETS[0],
                   got=SECRETS[1], hidden=True),
    ]
    return Result(student, ASSIGNMENT, source, "0" * 64, "9.9.9", "f" * 64, tests=tests,
                  name=student.title(), lms_id=lms_id, **kw)


def save(out: Path, result: Result) -> None:
    save_result(result, out / result.student / result.assignment / "results.json")


def graded(out: Path, lms: int) -> Path:
    """A class's output: two students with reports, one who handed nothing in, a grader
    fault and a student the LMS knows no id of."""
    for student, (lms_id, *sources) in STUDENTS.items():
        save(out, result_of(student, sources[lms], lms_id))
    save(out, Result("erin", ASSIGNMENT, "erin", "", "", "", lms_id="333",
                     missing="no notebook softmax_regression.ipynb was handed in"))
    save(out, result_of("fay", STUDENTS["carol"][lms].replace("123456", "444"), "444",
                        fault="the kernel could not start"))
    save(out, result_of("gus", "gus.ipynb", None))
    return out


def bundle(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as opened:
        return {name: opened.read(name).decode() for name in opened.namelist()}


def canvas_owner(name: str) -> tuple[str, str]:
    """Canvas's rule on re-upload: of the name's parts split at '_', the first two that are
    digits alone are the user id and the id of the file handed in."""
    user, handed = [part for part in Path(name).name.split("_") if re.fullmatch(r"\d+", part)][:2]
    return user, handed


def moodle_owner(name: str) -> str:
    """Moodle's rule (importziplib): the first path part split at '_' into at least four
    pieces gives the participant id as its second."""
    return next(info[1] for info in (part.split("_", 4) for part in name.split("/"))
                if len(info) >= 4)


def assert_own_report_only(html: str, student: str) -> None:
    assert f"visible got of {student}" in html
    others = set(STUDENTS) - {student}
    assert not [other for other in others if f"of {other}" in html or f"for {other}" in html]
    assert not [secret for secret in SECRETS if secret in html]


def test_canvas_keeps_the_download_prefix_and_each_report_is_its_students(tmp_path):
    out = graded(tmp_path / "out", lms=0)
    released = release(out, tmp_path / "dest", "canvas")
    assert released.written == [tmp_path / "dest" / f"{ASSIGNMENT}-canvas-feedback.zip"]
    files = bundle(released.written[0])
    assert sorted(files) == ["jonesdave_222_888_softmax_regression_report.html",
                             "smithcarol_LATE_123456_7654321_softmax_regression_report.html"]
    owners = {"jonesdave_222_888_softmax_regression_report.html": ("222", "888", "dave"),
              "smithcarol_LATE_123456_7654321_softmax_regression_report.html":
                  ("123456", "7654321", "carol")}
    for name, html in files.items():
        user, handed, student = owners[name]
        assert canvas_owner(name) == (user, handed)
        assert_own_report_only(html, student)
    assert (released.reports, released.missing) == (2, 1)
    assert [p for p in released.problems if "fay" in p and "grader fault" in p]
    assert [p for p in released.problems if "gus" in p and "no LMS id" in p]
    assert len(released.problems) == 2


def test_moodle_folders_carry_the_participant_id(tmp_path):
    out = graded(tmp_path / "out", lms=1)
    released = release(out, tmp_path / "dest", "moodle")
    files = bundle(released.written[0])
    assert sorted(files) == [
        "Carol Smith_123456_assignsubmission_file_/softmax_regression_report.html",
        "Dave Jones_222_assignsubmission_file_/softmax_regression_report.html"]
    for name, html in files.items():
        student = "carol" if name.startswith("Carol") else "dave"
        assert moodle_owner(name) == STUDENTS[student][0]
        assert_own_report_only(html, student)
    assert released.reports == 2


def test_plain_writes_a_report_per_student(tmp_path):
    out = graded(tmp_path / "out", lms=0)
    dest = tmp_path / "dest"
    released = release(out, dest, "plain")
    # gus has no LMS id, which a plain folder does not need; erin and fay get nothing
    assert sorted(released.written) == [dest / s / f"{ASSIGNMENT}.html"
                                        for s in ("carol", "dave", "gus")]
    for student in STUDENTS:
        assert_own_report_only((dest / student / f"{ASSIGNMENT}.html").read_text(), student)
    assert sorted(path.name for path in dest.iterdir()) == ["carol", "dave", "gus"]


def test_a_file_naming_another_id_or_shared_by_two_gets_no_report(tmp_path):
    out = tmp_path / "out"
    save(out, result_of("carol", STUDENTS["carol"][1], "999"))  # the file says 123456
    save(out, result_of("dave", STUDENTS["dave"][1], "222"))
    save(out, result_of("dan", STUDENTS["dave"][1].replace("jonesdave", "dan"), "222"))
    save(out, result_of("ed", "ed.ipynb", "555"))  # not Canvas's download name
    released = release(out, tmp_path / "dest", "canvas")
    assert released.written == [] and released.reports == 0
    problems = "\n".join(released.problems)
    assert "carol/softmax_regression: its file names Canvas user id 123456" in problems
    assert "dan/softmax_regression, dave/softmax_regression all go to 222" in problems
    assert "ed/softmax_regression: its file ed.ipynb is not named as Canvas" in problems


def test_hostile_names_stay_inside_and_never_read_as_another_id(tmp_path):
    out = tmp_path / "out"
    save(out, result_of("ann", "../../1.2_77_88_\x1b[31mx.ipynb", "77"))
    released = release(out, tmp_path / "dest", "canvas")
    name, = bundle(released.written[0])
    assert name == "77_88_softmax_regression_report.html"  # "1.2" would read as user 12
    evil = Result("../x", "../../etc", "x.ipynb", "", "", "", name="x")
    plain_out = tmp_path / "plain-out"
    save_result(evil, plain_out / "x" / "etc" / "results.json")
    released = release(plain_out, tmp_path / "plain", "plain")
    assert released.written == [tmp_path / "plain" / "x" / "etc.html"]


def test_unreadable_or_linked_results_are_named(tmp_path):
    out = graded(tmp_path / "out", lms=0)
    (out / "hal" / ASSIGNMENT).mkdir(parents=True)
    (out / "hal" / ASSIGNMENT / "results.json").write_text("{not json")
    os.symlink(out / "carol", out / "mallory")
    released = release(out, tmp_path / "dest", "canvas")
    problems = "\n".join(released.problems)
    assert "hal/softmax_regression/results.json cannot be read" in problems
    assert "mallory/softmax_regression/results.json cannot be read (its folder is a link" \
        in problems
    assert released.reports == 2


def test_nothing_to_release_says_what_to_do(tmp_path):
    with pytest.raises(ReleaseError, match="holds no results .*grade a folder into it first"):
        release(tmp_path, tmp_path / "dest", "canvas")
    with pytest.raises(ReleaseError, match="unknown LMS blackboard: use one of canvas"):
        release(tmp_path, tmp_path / "dest", "blackboard")


def test_plain_never_writes_through_a_link_in_dest(tmp_path):
    out = graded(tmp_path / "out", lms=0)
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    os.symlink(elsewhere, dest / "carol")
    released = release(out, dest, "plain")
    assert not list(elsewhere.iterdir())
    assert released.reports == 2  # dave's and gus's
    assert [p for p in released.problems if p.startswith("carol/softmax_regression: ")
            and "is a link: no feedback written through it" in p]
