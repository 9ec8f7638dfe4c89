"""gradebook.csv in Canvas's import shape, by file name or through a roster."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.gradebook import (
    HEADER,
    Person,
    RosterError,
    match_roster,
    read_roster,
    write_gradebook,
)
from grader.results import Result

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


def test_a_roster_without_id_columns_is_refused_and_one_naming_an_id_twice_matches_neither(
        tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Email\nAda,ada@x\n", encoding="utf-8")
    with pytest.raises(RosterError, match="none of the columns SIS Login ID, SIS User ID, ID"):
        read_roster(roster)
    roster.write_text("Student,ID,SIS Login ID\nA,1,ada\nB,2,ada\n", encoding="utf-8")
    match = match_roster({"ada": "ada.ipynb"}, read_roster(roster))
    assert match.rows == {}
    assert "the roster names more than once, left out of gradebook.csv: ada.ipynb (as ada) " \
           "(A (ada), B (ada))" in match.problems()[0]


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
