"""gradebook.csv in Canvas's import shape, by file name or through a roster."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.gradebook import HEADER, RosterError, match_roster, read_roster, write_gradebook

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


def test_students_the_roster_does_not_name_are_listed_in_the_error(graded_class, tmp_path):
    _, submissions, out = graded_class
    roster = tmp_path / "roster.csv"
    roster.write_text("\n".join(ROSTER.splitlines()[:5]) + "\n", encoding="utf-8")  # to carol
    for arguments in (["gradebook", str(out)], [str(submissions), "--out", str(out)]):
        result = CliRunner().invoke(main, [*arguments, "--roster", str(roster)])
        assert result.exit_code == 2
        assert "the roster names no student dave, erin" in result.output


def test_a_roster_without_id_columns_or_naming_one_student_twice_is_refused(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Email\nAda,ada@x\n", encoding="utf-8")
    with pytest.raises(RosterError, match="none of the columns SIS Login ID, SIS User ID, ID"):
        read_roster(roster)
    roster.write_text("Student,ID,SIS Login ID\nA,1,ada\nB,2,ada\n", encoding="utf-8")
    with pytest.raises(RosterError, match="more than once: ada"):
        match_roster(["ada"], read_roster(roster))


def test_the_gradebook_of_results_on_disk_needs_results(tmp_path):
    result = CliRunner().invoke(main, ["gradebook", str(tmp_path)])
    assert result.exit_code == 2 and "holds no results" in result.output
    write_gradebook([], tmp_path / "gradebook.csv", None)
    assert rows_of(tmp_path / "gradebook.csv") == [HEADER, ["Points Possible", "", "", "", ""]]
