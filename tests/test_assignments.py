"""The bundled course's assignments, as a course releases them: each grades alone and all
grade together, to the same verdicts; a submitted file is matched to its assignment by
the notebook's metadata, whatever its name; reports, grades.csv and the summary group by
assignment."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from grader.authoring.course import BUNDLED, ENV_VAR
from grader.cli import main

NAMES = [path.stem for path in BUNDLED.assignment_files()]


def grade(*arguments: str) -> dict:
    result = CliRunner().invoke(main, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """Ada hands in every solution under names of her own, Ben the blank notebooks, Cy one
    file: linear regression's. Graded together, then each assignment alone for Ada."""
    root = tmp_path_factory.mktemp("classroom")
    submissions = root / "submissions"
    for week, name in enumerate(NAMES, start=1):
        (submissions / "ada").mkdir(parents=True, exist_ok=True)
        shutil.copy(BUNDLED.reference / f"{name}.ipynb", submissions / "ada" / f"week{week}.ipynb")
        (submissions / "ben").mkdir(exist_ok=True)
        shutil.copy(BUNDLED.exercises / f"{name}.ipynb", submissions / "ben" / f"{name}.ipynb")
    shutil.copy(BUNDLED.reference / "linear_regression.ipynb", submissions / "cy.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_VAR, str(BUNDLED.root))
        together = grade(str(submissions), "--out", str(root / "all"), "--jobs", "2")
        alone = {name: grade(str(submissions), "--out", str(root / name), "--assignment", name,
                             "--only", "ada") for name in NAMES}
    yield root, together, alone


def verdicts(out, student: str, name: str) -> dict[str, tuple[float, str]]:
    saved = json.loads((out / student / name / "results.json").read_text())
    assert saved["assignment"] == name
    return {t["name"]: (t["points"], t["message"]) for t in saved["tests"]}


def test_together_every_assignment_of_every_student_is_graded(classroom):
    _, together, _ = classroom
    students = together["students"]
    assert sorted(together["graded"]) == sorted(f"{s}/{n}" for s in ("ada", "ben", "cy")
                                                for n in NAMES)
    for name in NAMES:
        assert students["ada"][name]["score"] == students["ada"][name]["max_score"] > 0
        assert students["ben"][name]["score"] == 0
    assert students["cy"]["linear_regression"]["score"] == \
        students["cy"]["linear_regression"]["max_score"]


def test_a_missing_assignment_is_not_handed_in_never_a_zero(classroom):
    root, together, _ = classroom
    absent = together["students"]["cy"]["softmax_regression"]
    assert absent["score"] is None and absent["max_score"] > 0
    assert absent["missing"] == "no notebook softmax_regression.ipynb was handed in"
    saved = json.loads((root / "all" / "cy" / "preliminaries" / "results.json").read_text())
    assert saved["tests"] == [] and saved["missing"].startswith("no notebook preliminaries")


def test_alone_each_assignment_gets_the_verdicts_it_gets_together(classroom):
    root, _, alone = classroom
    for name in NAMES:
        assert alone[name]["graded"] == [f"ada/{name}"]
        assert sorted(p.name for p in (root / name / "ada").iterdir()) == [name]
        points = {test: mark for test, (mark, _) in verdicts(root / name, "ada", name).items()}
        assert points == {test: mark for test, (mark, _) in
                          verdicts(root / "all", "ada", name).items()}  # (timings differ)


def test_the_class_files_group_by_assignment(classroom):
    root, _, _ = classroom
    with open(root / "all" / "grades.csv", newline="") as handle:
        rows = [(row["assignment"], row["student"]) for row in csv.DictReader(handle)]
    assert rows == [(name, student) for name in NAMES for student in ("ada", "ben", "cy")]
    page = BeautifulSoup((root / "all" / "summary.html").read_text(), "html.parser")
    sections = page.select("section.assignment")
    assert [section["data-assignment"] for section in sections] == NAMES
    for section in sections:
        links = [a["href"] for a in section.select(".students a")]
        assert links == [f"{s}/{section['data-assignment']}/report.html"
                         for s in ("ada", "ben", "cy")]
    report = BeautifulSoup((root / "all" / "ada" / "preliminaries" / "report.html").read_text(),
                           "html.parser")
    assert report.select_one("#assignment").get_text() == "preliminaries"
    assert {row["data-test"].split(".")[0] for row in report.select("tr.test")} == {
        "estimate_probabilities", "normal", "analytic_grad", "numerical_grad", "split_indices",
        "autograd_training"}
