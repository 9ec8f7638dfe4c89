"""gradebook.csv in each LMS's import shape, by file name or through a roster, checked by
importing it with the LMS's own rules (tests/lms_import.py)."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.grading.results import Result, TestResult, save_result
from grader.outputs.gradebook import (
    HEADER,
    MOODLE_FOLDER,
    Person,
    RosterError,
    match_roster,
    read_roster,
    write_gradebook,
)
from grader.students.roster import Claim
from tests.lms_import import User, canvas_import, moodle_import

ROSTER = ("Student,ID,SIS User ID,SIS Login ID,Section\n"
          "    Points Possible,,,,,\n"
          "\"Lovelace, Ada\",101,S-1,alice@uni.example,Mon\n"
          "\"Babbage, Charles\",102,S-2,bob,Mon\n"
          "\"Cantor, Georg\",103,carol,carol,Tue\n"
          "\"Dedekind, Richard\",104,S-4,dave,Tue\n"
          "\"Euler, Leonhard\",105,S-5,erin,Tue\n"
          "\"Noether, Emmy\",106,S-6,emmy,Wed\n")


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_without_a_roster_each_student_is_a_row_by_file_name(graded_class):
    report, _, out = graded_class
    header, possible, *rows = rows_of(out / "gradebook.csv")
    assert header == [*HEADER, "linear_networks"]
    max_score = report.results[0].max_score
    assert possible == ["Points Possible", "", "", "", "", f"{max_score:g}"]
    scores = {r.student: r.score for r in report.results}
    assert {row[3]: float(row[5]) for row in rows} == scores
    assert [row[0] for row in rows] == sorted(scores)


def test_a_roster_names_the_rows_and_keeps_its_students_without_work(graded_class, tmp_path):
    report, _, out = graded_class
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    result = CliRunner().invoke(main, ["gradebook", str(out), "--roster", str(roster)])
    assert result.exit_code == 0, result.output
    _, _, *rows = rows_of(out / "gradebook.csv")
    by_id = {row[1]: row for row in rows}
    scores = {r.student: r.score for r in report.results}
    assert by_id["101"][:5] == ["Lovelace, Ada", "101", "S-1", "alice@uni.example", "Mon"]
    assert float(by_id["101"][5]) == scores["alice"]
    assert float(by_id["103"][5]) == scores["carol"]
    assert by_id["106"][5] == ""  # on the roster, handed in nothing: left as it was


def test_students_the_roster_does_not_name_are_told_and_nothing_is_refused(graded_class,
                                                                          tmp_path):
    """One odd file name must not stop a class's run (issue 22: it did, for everyone)."""
    _, submissions, out = graded_class
    roster = tmp_path / "roster.csv"
    roster.write_text("\n".join(ROSTER.splitlines()[:5]) + "\n", encoding="utf-8")  # to carol
    for arguments in (["gradebook", str(out)], [str(submissions), "--out", str(out)]):
        result = CliRunner().invoke(main, [*arguments, "--roster", str(roster)])
        assert result.exit_code == 0, result.output
        assert "no roster row names dave.ipynb (as dave), erin.ipynb (as erin)" in " ".join(
            result.output.split())
        _, _, *rows = rows_of(out / "gradebook.csv")
        assert [row[3] for row in rows] == ["alice@uni.example", "bob", "carol"]


def people(text: str) -> list[Person]:
    return [Person(*line.split(",")) for line in text.strip().splitlines()]


CLASS = people("""
Lovelace,101,S-1,ada@uni.example,Mon
Babbage,102,S-2,bob,Mon
Noether,106,S-6,emmy,Wed
""")


def test_the_roster_matches_ids_exactly_and_says_what_differs_only_in_case():
    match = match_roster({"ada": "ada.ipynb", "Bob": "Bob.ipynb",
                          "Ada_Lovelace~1f2e3d4c": "Ada Lovelace.ipynb"}, CLASS)
    assert {student: person.student for student, person in match.rows.items()} == {
        "ada": "Lovelace"}  # by its login's part before '@'
    unmatched, missing = match.problems()
    assert "Bob.ipynb (as Bob) (the roster has bob)" in unmatched
    assert "Ada Lovelace.ipynb (as Ada_Lovelace~1f2e3d4c)," in unmatched  # nothing fuzzy
    assert missing.endswith("Babbage (bob), Noether (emmy)")


def test_a_row_two_submissions_name_goes_to_neither_whatever_their_order(tmp_path):
    """A classmate's user id as a file name must not take their row (nor lose it by sort
    order: '102' sorts before 'bob', 'S-2' before it too)."""
    for thief in ("102", "S-2", "zz_102"):
        students = {"bob": "bob.ipynb", thief: f"{thief}.ipynb"}
        match = match_roster(students, CLASS)
        if thief == "zz_102":
            assert match.rows["bob"].student == "Babbage"
            continue
        assert "bob" not in match.rows and thief not in match.rows
        results = [Result(student, "linear_networks", name, "", "", "")
                   for student, name in students.items()]
        assert any("Babbage (bob) by" in p for p in
                   write_gradebook(results, tmp_path / "gradebook.csv", CLASS))
        _, _, *rows = rows_of(tmp_path / "gradebook.csv")
        assert {row[0]: row[5] for row in rows}["Babbage"] == ""


def test_many_unmatched_submissions_make_one_bounded_message():
    match = match_roster({f"s{n:04}": f"s{n:04}" for n in range(1000)}, CLASS)
    assert len(match.problems()[0]) < 400 and "and 980 more" in match.problems()[0]


def test_the_gradebook_of_results_on_disk_needs_results(tmp_path):
    result = CliRunner().invoke(main, ["gradebook", str(tmp_path)])
    assert result.exit_code == 2 and "holds no results" in result.output
    write_gradebook([], tmp_path / "gradebook.csv", None)
    assert rows_of(tmp_path / "gradebook.csv") == [HEADER, ["Points Possible", "", "", "", ""]]


def result(student: str, assignment: str, points: float | None, max_points: float = 25,
           **given) -> Result:
    """A result without grading: one test worth `max_points`, or missing work (None)."""
    if points is None:
        return Result(student, assignment, "", "", "", "", missing="no notebook",
                      possible=max_points, **given)
    test = TestResult("t", "e", max_points, points, points == max_points, "")
    return Result(student, assignment, f"{student}.ipynb", "", "", "", tests=[test], **given)


# carol handed in only softmax: the issue's `carol,,,carol,,0,0,0,25`
CAROL = [result("carol", "linear_regression", None), result("carol", "preliminaries", None),
         result("carol", "softmax_regression", 25), result("dan", "softmax_regression", 10)]
COURSE = {123: "HW3 Softmax", 122: "HW2 Linear regression"}
USERS = [User(7, "Cantor, Georg", login="carol", email="carol@uni.example"),
         User(8, "Dedekind, Richard", login="dan", email="dan@uni.example")]


def roster_from(tmp_path, text: str) -> list[Person]:
    roster = tmp_path / "roster.csv"
    roster.write_text(text, encoding="utf-8")
    return read_roster(roster)


def written(tmp_path, results, roster=None, **options) -> tuple[str, list[str]]:
    """The gradebook's text; for Moodle, its files' texts, one after another by name."""
    path = tmp_path / "gradebook.csv"
    problems = write_gradebook(results, path, roster, **options)
    if options.get("flavour") == "moodle":
        files = sorted((tmp_path / MOODLE_FOLDER).glob("*.csv"))
        return "".join(file.read_text(encoding="utf-8") for file in files), problems
    return path.read_text(encoding="utf-8"), problems


def test_canvas_leaves_the_grade_of_missing_work_as_it_was(tmp_path):
    text, _ = written(tmp_path, CAROL)
    assert "carol,,,carol,,,,25" in text.splitlines()
    done = canvas_import(text, USERS, COURSE)
    assert done.errors == []
    assert {key: grade for key, grade in done.grades.items() if key[0] == 7} == {
        (7, "softmax_regression"): "25"}  # nothing over linear_regression, preliminaries
    assert done.points["softmax_regression"] == "25"


def test_canvas_fills_the_assignment_its_column_names_and_makes_none(tmp_path):
    columns = {"softmax_regression": "HW3 Softmax (123)",
               "linear_regression": "HW2 Linear regression (122)"}
    text, _ = written(tmp_path, CAROL, columns=columns)
    done = canvas_import(text, USERS, COURSE)
    assert done.new_assignments == ["preliminaries"]  # no column set: a new assignment
    assert done.grades == {(7, "HW3 Softmax"): "25", (8, "HW3 Softmax"): "10"}
    assert canvas_import(written(tmp_path, CAROL)[0], USERS, COURSE).new_assignments == [
        "linear_regression", "preliminaries", "softmax_regression"]  # the columns


def test_a_fault_or_no_result_leaves_the_cell_empty(tmp_path):
    faulty = result("dan", "linear_regression", 5, fault="no kernel")
    text, _ = written(tmp_path, [*CAROL, faulty], flavour="plain")
    rows = list(csv.reader(text.splitlines()))
    assert rows == [["student", "name", "lms_id", "linear_regression", "preliminaries",
                     "softmax_regression"],
                    ["carol", "carol", "", "", "", "25"], ["dan", "dan", "", "", "", "10"]]


MOODLE_SHEET = ("\ufeffIdentifier;Full name;Email address;Status;Grade\n"
                "Participant 501;Georg Cantor;carol@uni.example;Submitted;\n"
                "Participant 502;Richard Dedekind;dan@uni.example;Submitted;\n"
                "Participant 503;Emmy Noether;emmy@uni.example;No submission;\n")


def test_moodle_maps_every_row_to_a_user_and_empties_nothing_it_was_not_given(tmp_path):
    people = roster_from(tmp_path, MOODLE_SHEET)
    assert [(p.id, p.student, p.email) for p in people][0] == (
        "501", "Georg Cantor", "carol@uni.example")
    results = [result("carol", "softmax_regression", 25, lms_id="501"),
               result("dan", "softmax_regression", 10, lms_id="502"),
               result("emmy", "softmax_regression", None, lms_id="503")]
    text, problems = written(tmp_path, results, people, flavour="moodle",
                             columns={"softmax_regression": "HW3 Softmax"})
    assert text.splitlines()[0] == "Email address,Full name,HW3 Softmax"
    done = moodle_import(text, USERS + [User(9, login="emmy", email="emmy@uni.example")],
                         "Email address", "useremail", {"HW3 Softmax": "HW3"})
    assert done.errors == [] and problems == []
    assert done.grades == {(7, "HW3"): "25", (8, "HW3"): "10"}  # emmy's grade untouched
    without_roster, _ = written(tmp_path, results, flavour="moodle")
    done = moodle_import(without_roster, USERS + [User(9, login="emmy")], "Username",
                         "username", {"softmax_regression": "HW3"})
    assert done.errors == [] and done.grades == {(7, "HW3"): "25", (8, "HW3"): "10"}


def test_the_canvas_shape_is_what_moodle_aborts_on(tmp_path):
    """The issue: Moodle cannot map the `Points Possible` row to a user."""
    text, _ = written(tmp_path, CAROL)
    done = moodle_import(text, USERS, "SIS Login ID", "username",
                         {"softmax_regression": "HW3"})
    assert done.grades == {} and done.errors == ["User not found, abort whole import"]


def test_moodle_gets_a_file_per_assignment_with_no_empty_cell_and_names_who_it_cannot_map(
        tmp_path):
    """Moodle empties a grade for an empty cell: Carol's missing work is in no file."""
    people = [Person("Cantor", email="carol@uni.example"), Person("Dedekind", "8", "",
                                                                  "dan")]
    _, problems = written(tmp_path, CAROL, people, flavour="moodle")
    files = {path.stem: path.read_text().splitlines()
             for path in (tmp_path / MOODLE_FOLDER).glob("*.csv")}
    assert files == {
        "linear_regression": ["Email address,Full name,linear_regression"],
        "preliminaries": ["Email address,Full name,preliminaries"],
        "softmax_regression": ["Email address,Full name,softmax_regression",
                               "carol@uni.example,Cantor,25"]}
    assert problems[-1].startswith("left out of the Moodle gradebook, having no Email "
                                   "address for Moodle to map: Dedekind (dan)")
    assert not (tmp_path / "gradebook.csv").exists()


CANVAS_EXPORT = ("Student,ID,SIS User ID,SIS Login ID,Section,HW3 Softmax (123),"
                 "Current Score\n"
                 "    Points Possible,,,,,25,(read only)\n"
                 ",,,,,Manual Posting,\n"
                 "\"Cantor, Georg\",7,S-7,carol@uni.example,Tue,20,80\n"
                 "\"Dedekind, Richard\",8,S-8,dan,Tue,,0\n"
                 "\"Student, Test\",99,,4f2a,Tue,,\n")


def test_a_canvas_export_as_roster_round_trips(tmp_path):
    people = roster_from(tmp_path, CANVAS_EXPORT)
    assert [p.student for p in people] == ["Cantor, Georg", "Dedekind, Richard"]
    results = [result("carol", "softmax_regression", 25),  # by login before '@'
               result("Dedekind_Richard~1a2b3c4d", "softmax_regression", 10, lms_id="8")]
    text, problems = written(tmp_path, results, people,
                             columns={"softmax_regression": "HW3 Softmax (123)"})
    assert problems == []
    rows = list(csv.reader(text.splitlines()))
    assert rows[2] == ["Cantor, Georg", "7", "S-7", "carol@uni.example", "Tue", "25"]
    assert rows[3][:5] == ["Dedekind, Richard", "8", "S-8", "dan", "Tue"]
    done = canvas_import(text, [User(7, "Cantor, Georg"), User(8, "Dedekind, Richard")],
                         COURSE)
    assert done.errors == [] and done.new_students == [] and done.new_assignments == []
    assert done.grades == {(7, "HW3 Softmax"): "25", (8, "HW3 Softmax"): "10"}


def test_the_lms_id_is_matched_first_and_two_rows_for_it_are_both_named():
    roster = [Person("Cantor", "7", sis_login_id="carol"), Person("Other", "8",
                                                                    sis_login_id="gc")]
    match = match_roster([Claim("carol", "8", "carol_8_1_hw.ipynb")], roster)
    assert match.rows["carol"].student == "Other"  # the LMS id, not the file's name
    twins = [Person("Cantor", "7"), Person("Cantor again", "7")]
    match = match_roster([Claim("gc", "7", "gc.ipynb")], twins)
    assert match.rows == {}
    assert "gc.ipynb (as gc) (Cantor (7), Cantor again (7)); fix the roster" in \
        match.problems()[0]


@pytest.mark.parametrize("text", [
    "name,LOGIN,Email\nAda Lovelace,ada,ada@uni.example\n",
    "Name;Login;Email\r\n\"Ada Lovelace\";ada;ada@uni.example\r\n",
    "\ufeffid,username,email,idnumber,firstname,lastname\n"
    "3,ada,ada@uni.example,S-3,Ada,Lovelace\n",
])
def test_plain_and_moodle_user_rosters_are_read(tmp_path, text):
    (ada,) = roster_from(tmp_path, text)
    assert (ada.student, ada.sis_login_id, ada.email) == (
        "Ada Lovelace", "ada", "ada@uni.example")
    assert match_roster({"ada": "ada.ipynb"}, [ada]).rows["ada"] == ada


@pytest.mark.parametrize(("data", "message"), [
    (b"Name,Section\nAda,Mon\n", "has none of the id columns ID, SIS User ID"),
    ("Student,ID\nAda,1\n".encode("utf-16"), "UTF-16"),
    ("Student,ID\nJos\u00e9,1\n".encode("latin-1"), "is not UTF-8"),
    (b"Student,ID\n" + b"A,1\n" * 100_001, "over 100,000 rows"),
])
def test_a_roster_that_cannot_be_read_says_what_to_do(tmp_path, data, message):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(data)
    with pytest.raises(RosterError, match=message):
        read_roster(roster)


def test_no_cell_starts_a_formula_whatever_the_roster_holds(tmp_path):
    people = [Person("=HYPERLINK(\"http://x\")", "7", "+1", "-carol", "@mon",
                     "carol@uni.example")]
    results = [result("carol", "softmax_regression", 25, lms_id="7")]
    for flavour in ("canvas", "moodle", "plain"):
        text, _ = written(tmp_path, results, people, flavour=flavour)
        cells = [cell for row in csv.reader(text.splitlines()) for cell in row]
        assert "'=HYPERLINK(\"http://x\")" in cells
        assert not [cell for cell in cells if cell[:1] in "=+-@\t\r" and cell]
    with pytest.raises(ValueError, match="unknown gradebook flavour 'blackboard': choose "
                                         "one of canvas, moodle, plain"):
        write_gradebook(results, tmp_path / "gradebook.csv", None, flavour="blackboard")


def test_the_gradebook_command_reads_a_canvas_export_as_roster(tmp_path):
    out = tmp_path / "out"
    for each in CAROL:
        save_result(each, out / each.student / each.assignment / "results.json")
    roster = tmp_path / "export.csv"
    roster.write_text(CANVAS_EXPORT, encoding="utf-8")
    ran = CliRunner().invoke(main, ["gradebook", str(out), "--roster", str(roster)])
    assert ran.exit_code == 0, ran.output
    assert rows_of(out / "gradebook.csv")[2:] == [
        ["Cantor, Georg", "7", "S-7", "carol@uni.example", "Tue", "", "", "25"],
        ["Dedekind, Richard", "8", "S-8", "dan", "Tue", "", "", "10"]]


def test_an_instructors_total_for_work_not_handed_in_is_posted(tmp_path):
    """Work the grader never saw (handed in by email, say) gets the total an override
    sets; without one its cell stays empty."""
    from grader.grading.results import OVERRIDE, Adjustment

    emailed = result("carol", "linear_regression", None)
    emailed.adjustments = [Adjustment(OVERRIDE, None, 20, "handed in by email")]
    text, _ = written(tmp_path, [emailed, result("dan", "linear_regression", None)])
    assert text.splitlines()[2:] == ["carol,,,carol,,20", "dan,,,dan,,"]
