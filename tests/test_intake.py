"""Intake: the layouts LMS exports hand over (Canvas, Moodle, Gradescope), zips unpacked
within bounds, single files, and which file is which assignment's. No kernel runs here."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grader.grading.results import Lateness
from grader.students import intake
from grader.students.identity import APART, NAMES_ALIKE
from grader.students.intake import GRADESCOPE_METADATA, MAX_ZIP_ENTRIES, discover
from grader.students.submissions import Handed, Submission, match_notebooks

WANTED = ["softmax_regression", "linear_regression"]
WHEN = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)


def notebook(claim: str | None = None) -> bytes:
    """A notebook's JSON, claiming an assignment through the grader's metadata or not."""
    metadata = {"grader": {"notebook": claim}} if claim else {}
    return json.dumps({"cells": [], "metadata": metadata, "nbformat": 4,
                       "nbformat_minor": 5}).encode()


def write(path: Path, data: bytes = b"", when: datetime = WHEN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data or notebook())
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def make_zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip of `entries`, with `links` (name: target) stored as symlink entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def by_lms(submissions: list[Submission]) -> dict[str | None, Submission]:
    return {submission.lms_id: submission for submission in submissions}


def originals(submission: Submission) -> dict[str, Handed]:
    return {path.name: handed for path, handed in submission.handed.items()}


# Canvas ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canvas(tmp_path_factory) -> tuple[list[Submission], list[str], Path]:
    """Canvas's "Download Submissions": an on-time student with two notebooks (one a
    resubmission), a late one who zipped theirs, one who handed in a PDF, and two students
    whose logins are the same."""
    folder = tmp_path_factory.mktemp("canvas")
    write(folder / "smithcarol_123456_7654321_softmax_regression-1.ipynb")
    write(folder / "smithcarol_123456_7654322_linear_regression.ipynb")
    make_zip(folder / "doejohn_LATE_222_9001_homework.zip",
             {"homework/softmax_regression.ipynb": notebook(),
              "__MACOSX/homework/._softmax_regression.ipynb": b"\0junk"})
    os.utime(folder / "doejohn_LATE_222_9001_homework.zip", (WHEN.timestamp(),) * 2)
    write(folder / "nunezjose_333_9002_report.pdf", b"%PDF-1.4")
    write(folder / "leeann_444_9003_softmax_regression.ipynb")
    write(folder / "leeann_445_9004_softmax_regression.ipynb")
    return *discover(folder, tmp_path_factory.mktemp("unpacked")), folder


def test_canvas_files_of_one_user_are_one_submission_named_by_their_login(canvas):
    submissions, problems, _ = canvas
    assert problems == []
    carol = by_lms(submissions)["123456"]
    assert (carol.student, carol.name) == ("smithcarol", "smithcarol")
    assert originals(carol) == {
        "smithcarol_123456_7654321_softmax_regression-1.ipynb": Handed(
            "softmax_regression-1.ipynb", Lateness(False, None)),  # on time, by Canvas
        "smithcarol_123456_7654322_linear_regression.ipynb": Handed(
            "linear_regression.ipynb", Lateness(False, None))}


def test_canvas_files_match_their_assignment_by_the_name_the_student_gave(canvas):
    submissions, _, _ = canvas
    carol = by_lms(submissions)["123456"]
    matched = match_notebooks(carol, WANTED)
    assert {name: path.name.split("_", 3)[3] for name, path in matched.items()} == {
        "softmax_regression": "softmax_regression-1.ipynb",
        "linear_regression": "linear_regression.ipynb"}
    assert carol.problems == []


def test_a_late_canvas_zip_is_unpacked_outside_the_submissions_and_marked_late(canvas):
    submissions, _, folder = canvas
    john = by_lms(submissions)["222"]
    assert john.student == "doejohn" and john.problems == []
    (unpacked,) = john.notebooks
    assert folder not in unpacked.parents  # kernels may see the submissions, not this
    assert john.handed[unpacked] == Handed("softmax_regression.ipynb",
                                           Lateness(True, "2026-03-01T23:59:30+00:00"),
                                           via=folder / "doejohn_LATE_222_9001_homework.zip")
    assert match_notebooks(john, WANTED) == {"softmax_regression": unpacked}


def test_a_canvas_student_with_no_notebook_is_told_so(canvas):
    jose = by_lms(canvas[0])["333"]
    assert jose.notebooks == []
    assert "report.pdf: not a notebook (.ipynb) nor a zip, not graded" in jose.problems
    assert "no notebook among the files handed in" in jose.problems


def test_two_canvas_students_of_one_login_are_both_kept_apart(canvas):
    lees = [by_lms(canvas[0])[user] for user in ("444", "445")]
    assert lees[0].student != lees[1].student
    assert all(lee.student.startswith(f"leeann{APART}") for lee in lees)
    assert all(lee.problems[0].startswith(NAMES_ALIKE) for lee in lees)


def test_a_link_in_an_lms_export_refuses_that_student_alone(tmp_path):
    write(tmp_path / "elsewhere.ipynb")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "smithcarol_1_2_softmax_regression.ipynb").symlink_to(
        tmp_path / "elsewhere.ipynb")
    (tmp_path / "in" / "Carol Smith_3_assignsubmission_file_").mkdir()
    (tmp_path / "in" / "Carol Smith_3_assignsubmission_file_" / "a.ipynb").symlink_to(
        tmp_path / "elsewhere.ipynb")
    write(tmp_path / "in" / "doejohn_4_5_softmax_regression.ipynb")
    found = by_lms(discover(tmp_path / "in")[0])
    assert "is a link" in found["1"].refused and not found["1"].notebooks
    assert "holds links (a.ipynb)" in found["3"].refused and not found["3"].notebooks
    assert found["4"].refused is None and len(found["4"].notebooks) == 1


# Moodle ------------------------------------------------------------------------------------

def test_moodle_folders_of_one_participant_are_one_submission(tmp_path):
    write(tmp_path / "José Núñez_12345_assignsubmission_file_" / "softmax_regression.ipynb")
    write(tmp_path / "José Núñez_12345_assignsubmission_onlinetext_" / "onlinetext.html",
          b"<p>see the notebook</p>")
    write(tmp_path / "Carol Smith_678_assignsubmission_file_linear_regression.ipynb")
    submissions, problems = discover(tmp_path)
    assert problems == []
    jose, carol = by_lms(submissions)["12345"], by_lms(submissions)["678"]
    assert jose.name == "José Núñez" and jose.student.startswith(f"Jose_Nunez{APART}")
    assert carol.name == "Carol Smith" and carol.student.startswith(f"Carol_Smith{APART}")
    (handed,) = jose.handed.values()
    assert handed == Handed("softmax_regression.ipynb",
                            Lateness(False, "2026-03-01T23:59:30+00:00"))
    assert list(match_notebooks(carol, WANTED)) == ["linear_regression"]
    # The id depends on the participant alone: the same folder alone gives the same one.
    alone = tmp_path / "alone"
    write(alone / "José Núñez_12345_assignsubmission_file_" / "x.ipynb")
    assert discover(alone)[0][0].student == jose.student


# Gradescope --------------------------------------------------------------------------------

METADATA = """---
submission_216975964:
  :submitters:
  - :name: Alice Sun Fontaine
    :sid: '06758767'
    :email: afontain@example.edu
  - :name: "Jos\\xE9 N\\u00FA\\u00F1ez"
    :sid:
    :email: jose@example.edu
  :created_at: 2023-12-02 02:52:07.938335000 Z
  :score: 0.0
  :status: processed
  :results:
    score: 0.0
    tests: []
    output: 'Autograder: none'
  :history:
  - :submitters: []
    :created_at: 2023-12-04 07:30:05.262325000 Z
    :id: 217383000
submission_216667716:
  :submitters:
  - :name: 李雷
    :sid: '06759834'
    :email: lilei@example.edu
  :created_at: 2023-12-01 05:25:21.716840000 -08:00
  :score: 0.0
  :history: []
"""


@pytest.fixture
def gradescope(tmp_path) -> Path:
    (tmp_path / GRADESCOPE_METADATA).write_text(METADATA, encoding="utf-8")
    write(tmp_path / "submission_216975964" / "softmax_regression.ipynb")
    make_zip(tmp_path / "submission_216667716" / "work.zip",
             {"linear_regression.ipynb": notebook()})
    (tmp_path / "submission_999").mkdir()
    return tmp_path


def test_gradescope_submitters_are_students_with_the_exports_time(gradescope):
    submissions, problems = discover(gradescope)
    assert problems == [f"submission_999: not in {GRADESCOPE_METADATA}, not graded"]
    found = by_lms(submissions)
    assert set(found) == {"06758767", "jose@example.edu", "06759834"}
    alice, jose, lei = found["06758767"], found["jose@example.edu"], found["06759834"]
    assert (alice.student, alice.name) == ("06758767", "Alice Sun Fontaine")
    assert jose.name == "José Núñez" and jose.student.startswith(f"jose_example.edu{APART}")
    assert lei.name == "李雷" and lei.student == "06759834"
    # A group's members each get its work; each is told who they handed it in with.
    assert alice.notebooks == jose.notebooks
    assert "handed in as a group with José Núñez" in alice.problems
    assert [h.lateness for h in alice.handed.values()] == [
        Lateness(False, "2023-12-02T02:52:07+00:00")]
    (handed,) = lei.handed.values()
    assert handed == Handed("linear_regression.ipynb",
                            Lateness(False, "2023-12-01T13:25:21+00:00"),
                            via=gradescope / "submission_216667716" / "work.zip")


def test_gradescope_submitters_twice_or_without_an_id_are_said(gradescope):
    (gradescope / GRADESCOPE_METADATA).write_text(METADATA + """submission_216999999:
  :submitters:
  - :name: Alice Sun Fontaine
    :sid: '06758767'
  - :name: Nobody
  :created_at: 2023-12-03 00:00:00.000000000 Z
""", encoding="utf-8")
    write(gradescope / "submission_216999999" / "softmax_regression.ipynb")
    submissions, problems = discover(gradescope)
    assert by_lms(submissions)["06758767"].path.name == "submission_216999999"
    assert problems == [
        f"submission_999: not in {GRADESCOPE_METADATA}, not graded",
        "06758767 is a submitter of submission_216975964 and submission_216999999: "
        "submission_216999999, handed in later, is graded",
        "submission_216999999: a submitter with no sid nor email (Nobody), not graded"]


def test_gradescope_metadata_that_cannot_be_read_says_what_to_do(gradescope):
    (gradescope / GRADESCOPE_METADATA).write_bytes(b"\xff\xfe not text")
    with pytest.raises(ValueError, match="export the submissions from Gradescope again"):
        discover(gradescope)


def test_gradescope_metadata_is_read_within_its_size_cap(gradescope, monkeypatch):
    monkeypatch.setattr(intake, "MAX_METADATA_BYTES", 100)
    with pytest.raises(ValueError, match="MiB a notebook may be"):
        discover(gradescope)


# Zips --------------------------------------------------------------------------------------

def unpacked(tmp_path: Path, entries: dict[str, bytes], **links) -> Submission:
    """The one submission of a folder holding `alice.zip` of `entries`."""
    make_zip(tmp_path / "in" / "alice.zip", entries, links.get("links"))
    (submission,) = discover(tmp_path / "in", tmp_path / "unpacked")[0]
    return submission


def test_a_zip_unpacks_its_notebooks_in_a_private_folder_of_the_graders(tmp_path):
    alice = unpacked(tmp_path, {"hw/softmax_regression.ipynb": notebook(),
                                "hw/data.csv": b"1,2", "hw/.ipynb_checkpoints/x.ipynb": b"{}"})
    assert alice.student == "alice" and alice.problems == []
    (path,) = alice.notebooks
    assert path.is_relative_to(tmp_path / "unpacked") and path.read_bytes() == notebook()
    assert stat.S_IMODE(path.parents[1].stat().st_mode) == 0o700
    assert alice.handed[path].original == "softmax_regression.ipynb"


def test_a_zip_in_a_students_folder_is_unpacked_too(tmp_path):
    make_zip(tmp_path / "in" / "bob" / "week2.zip", {"linear_regression.ipynb": notebook()})
    write(tmp_path / "in" / "bob" / "softmax_regression.ipynb")
    (bob,) = discover(tmp_path / "in")[0]
    assert sorted(match_notebooks(bob, WANTED)) == sorted(WANTED)
    (inner,) = [path for path in bob.notebooks if path.name == "linear_regression.ipynb"]
    assert not inner.is_relative_to(tmp_path / "in")
    assert any(folder.name.startswith("dl-grader-unpacked-") for folder in inner.parents)


HOSTILE_ZIPS = {
    "a parent folder": ({"../../escaped.ipynb": notebook()}, "has a name the grader"),
    "an absolute path": ({"/tmp/escaped.ipynb": notebook()}, "has a name the grader"),
    "a nested zip": ({"inner.zip": b"PK"}, "is a zip inside the zip"),
}


@pytest.mark.parametrize("entries, said", HOSTILE_ZIPS.values(), ids=HOSTILE_ZIPS.keys())
def test_hostile_zip_entries_are_refused_by_name_and_others_kept(tmp_path, entries, said):
    alice = unpacked(tmp_path, {**entries, "softmax_regression.ipynb": notebook()})
    assert [path.name for path in alice.notebooks] == ["softmax_regression.ipynb"]
    assert any(said in problem for problem in alice.problems), alice.problems
    assert not list(tmp_path.rglob("escaped.ipynb"))
    assert not Path("/tmp/escaped.ipynb").exists()


def test_a_link_in_a_zip_is_not_unpacked(tmp_path):
    alice = unpacked(tmp_path, {}, links={"softmax_regression.ipynb": "/etc/shadow"})
    assert alice.notebooks == []
    assert any("softmax_regression.ipynb is a link, not unpacked" in p
               for p in alice.problems)


def test_a_zip_bomb_is_refused_before_it_fills_the_disk(tmp_path):
    alice = unpacked(tmp_path, {"softmax_regression.ipynb": b"0" * (80 * 2**20)})
    assert alice.notebooks == []
    assert alice.problems == ["alice.zip unpacks to more than 64 MiB: not unpacked; hand "
                              "in the notebooks themselves"]
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) < 2**20


def test_a_zip_whose_header_understates_its_size_is_refused(tmp_path):
    """The header says 10 bytes of a MiB: the grader reads no more, and the CRC fails."""
    path = make_zip(tmp_path / "in" / "alice.zip", {"softmax_regression.ipynb": b"0" * 2**20})
    size = (2**20).to_bytes(4, "little")
    assert path.read_bytes().count(size) == 2  # the local header's and the directory's
    path.write_bytes(path.read_bytes().replace(size, (10).to_bytes(4, "little")))
    (alice,) = discover(tmp_path / "in", tmp_path / "unpacked")[0]
    assert alice.notebooks == []
    assert "is not a zip the grader can read" in alice.problems[0]


def test_a_zip_of_too_many_entries_is_refused(tmp_path):
    alice = unpacked(tmp_path, {f"{n}.txt": b"" for n in range(10_000)})
    assert alice.problems == [f"alice.zip holds 10,000 entries, more than the "
                              f"{MAX_ZIP_ENTRIES} the grader unpacks: not unpacked; hand in "
                              "the notebooks themselves"]


def test_encrypted_and_twice_written_entries_are_said(tmp_path):
    path = tmp_path / "in" / "alice.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("secret.ipynb", b"ciphertext")
        archive.writestr("softmax_regression.ipynb", notebook("softmax_regression"))
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("softmax_regression.ipynb", b"the second")
    data = bytearray(path.read_bytes())  # zipfile writes no encrypted entry: mark one
    data[data.index(b"PK\x01\x02") + 8] |= 0x1  # the first entry's flags, in the directory
    path.write_bytes(data)
    (alice,) = discover(tmp_path / "in", tmp_path / "unpacked")[0]
    (kept,) = alice.notebooks
    assert kept.read_bytes() == notebook("softmax_regression")
    assert alice.problems == [
        "alice.zip: secret.ipynb is encrypted, not unpacked",
        "alice.zip holds softmax_regression.ipynb twice: the first is graded"]


def test_a_file_that_is_no_zip_is_a_problem_not_a_crash(tmp_path):
    write(tmp_path / "in" / "alice.zip", b"PK\x03\x04 not really")
    (alice,) = discover(tmp_path / "in")[0]
    assert alice.notebooks == []
    assert alice.problems[0].startswith("alice.zip is not a zip the grader can read")


# Single files and the plain layout ---------------------------------------------------------

def test_a_single_notebook_or_zip_is_one_submission(tmp_path):
    path = write(tmp_path / "José Núñez.ipynb")
    (jose,) = discover(path)[0]
    assert jose.notebooks == [path] and jose.name == "José Núñez"
    zipped = make_zip(tmp_path / "bob.zip", {"softmax_regression.ipynb": notebook()})
    (bob,) = discover(zipped)[0]
    assert bob.student == "bob" and len(bob.notebooks) == 1
    with pytest.raises(NotADirectoryError, match="nor a notebook"):
        discover(write(tmp_path / "notes.txt", b"hi"))


def test_a_file_that_is_neither_notebook_zip_nor_folder_is_a_folder_problem(tmp_path):
    write(tmp_path / "notes.txt", b"hi")
    write(tmp_path / "alice.ipynb")
    submissions, problems = discover(tmp_path)
    assert [s.student for s in submissions] == ["alice"]
    assert problems == ["notes.txt: not a notebook (.ipynb), a zip nor a folder, not graded"]


# Matching unreadable files -----------------------------------------------------------------

def test_an_unreadable_file_goes_to_the_one_assignment_left(tmp_path):
    good = write(tmp_path / "bob" / "whatever.ipynb", notebook("softmax_regression"))
    broken = write(tmp_path / "bob" / "hw2.ipynb", b"{not json")
    bob = Submission("bob", tmp_path / "bob", [broken, good])
    assert match_notebooks(bob, WANTED) == {"softmax_regression": good,
                                            "linear_regression": broken}
    assert bob.unreadable[broken].startswith("is not a notebook's JSON")
    assert bob.problems == []


def test_unreadable_files_are_not_guessed_at_and_their_reasons_are_said(tmp_path):
    broken = write(tmp_path / "bob" / "hw1.ipynb", b"{not json")
    huge = tmp_path / "bob" / "hw2.ipynb"
    with open(huge, "wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: no disk spent
    bob = Submission("bob", tmp_path / "bob", [broken, huge])
    assert match_notebooks(bob, WANTED) == {}
    assert bob.unreadable[huge] == "is 65 MiB, over the 64 MiB a notebook may be"
    (problem,) = bob.problems
    assert "hw1.ipynb (unreadable: it is not a notebook's JSON" in problem
    assert "hw2.ipynb (unreadable: it is 65 MiB, over the 64 MiB" in problem
