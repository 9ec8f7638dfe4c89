"""Student ids: readable in any script, safe as folders and CSV cells, unique, stable, and
never taken by another entry's file name (issue 22: `vic!.ipynb` took `vic`'s grade)."""

from __future__ import annotations

import csv
import json
import unicodedata

import nbformat
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import BLANK, NOTEBOOK, SOLUTION, write_notebook

from grader.cli import main
from grader.students import identity
from grader.students.identity import APART, MAX_ID_BYTES, NAMES_ALIKE, identities, shown, student_id
from grader.students.intake import discover

HOSTILE = {
    "path separators": "../../etc/passwd",
    "dots": "..",
    "formula": "=HYPERLINK(\"http://x\",\"vic\")",
    "plus and at": "+@SUM(1)",
    "a flag": "--force",
    "control characters": "vic\x1b]0;owned\x07\r\n\t",
    "bidi override": "vic\u202egpj.exe",
    "long": "x" * 10_000,
    "long wide": "李" * 10_000,
    "nothing usable": "!!!",
    "undecodable byte": "vic\udcff",
}


def safe(student: str) -> bool:
    """Safe as a folder name and a spreadsheet cell: one path component, hidden from no
    listing, no formula, nothing invisible or reordering, at most a folder name's bytes."""
    return (student and "/" not in student and student not in (".", "..")
            and student[0] not in ".=+-@" and len(student.encode()) <= 255
            and all(char.isprintable() for char in student))


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_names_give_safe_bounded_ids_that_make_a_folder(name, tmp_path):
    student = student_id(name)
    assert safe(student), student
    assert len(student.encode()) <= MAX_ID_BYTES
    (tmp_path / student).mkdir()  # a real folder of that name, inside tmp_path
    assert [path.name for path in tmp_path.iterdir()] == [student]
    kept = identities([(name, name + ".ipynb")])[name + ".ipynb"].student
    assert safe(kept) and APART in kept  # no hostile name is its own id


def test_names_in_any_script_get_ascii_ids_apart_and_keep_their_display_name(tmp_path):
    names = {"José Núñez": "Jose_Nunez", "Zoë": "Zoe", "李雷": "Li_Lei",
             "김민수": "Gim_Min_Su", "हिन्दी": "hindi", "Борис": "Boris"}
    found = identities([(name, f"{name}.ipynb") for name in names])
    for name, latin in names.items():
        student = found[f"{name}.ipynb"].student
        assert student.isascii() and student.startswith(f"{latin}{APART}"), student
    assert student_id("Zoë Ångström (copy 2)") == "Zoe_Angstrom_copy_2"
    # The same name decomposed (as macOS writes it) reads as the same id.
    assert student_id(unicodedata.normalize("NFD", "Zoë")) == "Zoe"
    # José is not Jose: the exact ASCII name keeps its id, the other is kept apart.
    both = identities([("José", "José.ipynb"), ("Jose", "Jose.ipynb")])
    assert both["Jose.ipynb"].student == "Jose"
    assert both["José.ipynb"].student.startswith(f"Jose{APART}")
    touch(tmp_path, "José Núñez.ipynb")
    (submission,) = discover(tmp_path)[0]
    assert submission.name == "José Núñez"
    assert submission.student.startswith(f"Jose_Nunez{APART}")


def test_a_name_of_a_class_file_is_no_id():
    found = identities([("summary.html", "summary.html"), ("Grades.CSV", "Grades.CSV.ipynb")])
    assert all(APART in given.student for given in found.values())


def test_messages_escape_what_a_name_could_do_to_a_terminal():
    assert shown("a\x1b[2Jb\u202ec") == "a\\x1b[2Jb\\u202ec"
    assert len(shown("x" * 10_000)) <= 81


def ids(folder) -> dict[str, str]:
    """Each entry's id as discover gives it, by entry name."""
    return {s.path.name: s.student for s in discover(folder)[0]}


def notes(folder) -> dict[str, list[str]]:
    return {s.path.name: s.problems for s in discover(folder)[0]}


def touch(folder, *names):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text("{}")


@pytest.mark.parametrize("twin", ["vic!.ipynb", "vic_.ipynb", " vic.ipynb", "vic\u200b.ipynb",
                                  "-vic.ipynb"])
def test_the_exact_name_keeps_its_id_and_both_are_told(tmp_path, twin):
    """Whichever side of `vic.ipynb` the other name sorts on."""
    touch(tmp_path, "vic.ipynb", twin)
    found = ids(tmp_path)
    assert found["vic.ipynb"] == "vic"
    assert found[twin].startswith(f"vic{APART}")
    for name, said in notes(tmp_path).items():
        alike = [note for note in said if note.startswith(NAMES_ALIKE)]
        assert len(alike) == 1 and found[name] in alike[0]
        # Each note names its own file only: a report is its student's alone.
        other = next(n for n in found if n != name)
        assert shown(other) not in alike[0].replace(shown(name), "")


def test_ids_do_not_change_when_names_alike_are_added_or_removed(tmp_path):
    names = ["a b.ipynb", "a_b.ipynb", "a-b.ipynb", "A_B.ipynb", "vic!.ipynb", "vic.ipynb",
             "vic (1).ipynb", "!!!.ipynb", "unnamed.ipynb", "José Núñez.ipynb"]
    touch(tmp_path / "all", *names)
    together = ids(tmp_path / "all")
    assert len(set(together.values())) == len(names)
    for name in names:  # each alone, as if the others came later
        touch(tmp_path / name, name)
        assert ids(tmp_path / name) == {name: together[name]}


def test_a_file_and_a_folder_of_one_name_are_both_kept_apart(tmp_path):
    """Equal claims: neither wins by order, neither takes the other's id."""
    touch(tmp_path, "vic.ipynb")
    (tmp_path / "vic").mkdir()
    (tmp_path / "vic" / "week1.ipynb").write_text("{}")
    found = ids(tmp_path)
    assert found["vic.ipynb"] != found["vic"]
    assert all(student.startswith(f"vic{APART}") for student in found.values())
    assert all(said[0].startswith(NAMES_ALIKE) for said in notes(tmp_path).values())


def test_ids_whose_short_hashes_agree_are_told_apart(monkeypatch):
    monkeypatch.setattr(identity, "SHORT_HASH", 1)  # 16 values: 20 names must share one
    entries = [(f"x {number}", f"x {number}.ipynb") for number in range(20)]
    found = [found.student for found in identities(entries).values()]
    assert len(set(found)) == len(entries)


def test_a_namesake_arriving_changes_the_digest_so_resume_regrades(tmp_path):
    """The note about a name alike is in the result: a reused result would lack it."""
    touch(tmp_path, "vic.ipynb")
    alone = discover(tmp_path)[0][0].digest()
    touch(tmp_path, "vic!.ipynb")
    assert next(s for s in discover(tmp_path)[0] if s.student == "vic").digest() != alone


@pytest.fixture(scope="module")
def graded_twins(tmp_path_factory):
    """The issue's case through the real CLI: the solution as `vic.ipynb`, the blank as
    `vic!.ipynb` (which sorts first), with a roster naming vic and an absent zoe, and a file
    whose name the terminal's markup would read, and a folder named like a class file."""
    root = tmp_path_factory.mktemp("twins")
    submissions = root / "submissions"
    write_notebook(nbformat.read(SOLUTION, as_version=4), submissions / "vic.ipynb")
    write_notebook(nbformat.read(BLANK, as_version=4), submissions / "vic!.ipynb")
    (submissions / "[bold]notes.txt").write_text("a name rich would read as markup")
    (submissions / "grades.csv").mkdir()  # no notebook: graded at once, all failed
    roster = root / "roster.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                      "Victor,201,S-1,vic,Mon\nZoë,202,S-2,zoe,Mon\n", encoding="utf-8")
    out = root / "out"
    result = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--roster",
                                       str(roster), "--json"])
    return result, out, roster


def gradebook(out) -> dict[str, list[str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        return {row[3]: row for row in list(csv.reader(handle))[2:]}


def test_the_exact_name_keeps_its_full_marks_beside_a_blank_namesake(graded_twins):
    result, out, _ = graded_twins
    assert result.exit_code == 0, result.output
    assert "[bold]notes.txt: not a notebook" in result.output
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert sorted(student.split(APART)[0] for student in rows) == ["grades.csv", "vic", "vic"]
    twin = next(student for student in rows if student.startswith(f"vic{APART}"))
    assert float(rows["vic"]["score"]) == float(rows["vic"]["max_score"]) > 0
    assert float(rows[twin]["score"]) < float(rows["vic"]["score"])
    full = rows["vic"]["score"]
    assert float(gradebook(out)["vic"][5]) == float(full)  # the roster's row for vic
    assert set(gradebook(out)) == {"vic", "zoe"} and gradebook(out)["zoe"][5] == ""
    # The class files: none can be a student's folder (grades.csv was, and every run failed).
    assert {path.name for path in out.iterdir() if path.is_file()} <= identity.RESERVED


def test_both_namesakes_are_shown_to_the_instructor_and_neither_grade_is_lost(graded_twins):
    result, out, _ = graded_twins
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    alike = [p for p in summary["problems"] if p.startswith(NAMES_ALIKE)]
    assert any("vic!.ipynb" in p for p in alike) and any("vic.ipynb" in p for p in alike)
    assert len(summary["students"]) == 3
    page = BeautifulSoup((out / "summary.html").read_text(encoding="utf-8"), "html.parser")
    look = {item["data-student"]: item.get_text() for item in
            page.select(".needs-a-look li[data-student]")}
    assert {"vic", *(s for s in summary["students"] if s.startswith("vic~"))} <= set(look)
    assert all("name like another submission's" in look[s] for s in look if "vic" in s)
    for student in (s for s in summary["students"] if s.startswith("vic")):
        saved = json.loads((out / student / NOTEBOOK / "results.json").read_text())
        assert any(note.startswith(NAMES_ALIKE) for note in saved["notes"])


def test_the_roster_names_the_unmatched_file_and_the_absent_student(graded_twins):
    result, out, roster = graded_twins
    unmatched = next(p for p in json.loads(result.stdout[result.stdout.index("{"):])
                     ["problems"] if p.startswith("no roster row names"))
    assert "vic!.ipynb (as vic~" in unmatched
    again = CliRunner().invoke(main, ["gradebook", str(out), "--roster", str(roster)])
    assert again.exit_code == 0, again.output
    assert "vic!.ipynb (as vic~" in again.output
    assert "with no submission (absent, their cells left empty): Zoë (zoe)" in again.output
    plain = CliRunner().invoke(main, ["gradebook", str(out)])  # no roster: a row per id
    assert plain.exit_code == 0 and len(gradebook(out)) == 3
    assert float(gradebook(out)["vic"][5]) > 0
