"""A real wheel: built from this checkout, installed into a fresh virtual environment, and
run from an unrelated folder, it starts a course, builds its student notebooks and grades
a class, with nothing read from the checkout.

The environment sees the system's site-packages for torch and the other dependencies (a
second copy of torch would take minutes to install), but the grader it runs is the wheel's.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.authoring.course import BUNDLED
from grader.paths import PACKAGE

CHECKOUT = PACKAGE.parent


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DL_GRADER_COURSE")}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh environment with the wheel built from this checkout installed in it."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a clean copy: the build leaves nothing in the checkout
    shutil.copytree(CHECKOUT, source, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.egg-info", "build", "tests"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(root / "dist"), str(source)], cwd=root)
    [wheel] = (root / "dist").glob("dl_grader-*.whl")
    run([sys.executable, "-m", "venv", "--system-site-packages", str(root / "venv")], cwd=root)
    run([str(root / "venv/bin/python"), "-m", "pip", "install", "--no-deps", "--no-index",
         "--force-reinstall", str(wheel)], cwd=root)
    return root / "venv"


def test_the_wheel_holds_the_templates_and_the_course(venv: Path, tmp_path: Path):
    out = run([str(venv / "bin/python"), "-c", (
        "import json, grader\nfrom grader import paths\nfrom grader.authoring import course\n"
        "print(json.dumps([grader.__file__, sorted(p.name for p in paths.TEMPLATES.iterdir()),"
        " sorted(p.name for p in course.BUNDLED.reference.iterdir())]))")], cwd=tmp_path)
    location, templates, reference = json.loads(out.stdout)
    assert Path(location).is_relative_to(venv) and not Path(location).is_relative_to(CHECKOUT)
    assert "report.html.j2" in templates and "summary.html.j2" in templates
    assert reference == sorted(p.name for p in BUNDLED.reference.glob("*.ipynb"))
    assert len(reference) >= 3


def test_an_installed_grader_starts_a_course_and_grades_a_class_from_any_folder(
        venv: Path, tmp_path: Path):
    grade = str(venv / "bin/grade")
    run([grade, "init", "course"], cwd=tmp_path)
    course = tmp_path / "course"
    for part in ("exercises", "public"):
        shutil.rmtree(course / part)
    run([grade, "assign"], cwd=course)  # the current folder is a course: it is the one used
    names = [path.stem for path in BUNDLED.assignment_files()]
    assert sorted(p.stem for p in (course / "public").iterdir()) == names
    class_folder = tmp_path / "class"
    for name in names:  # renamed files: matched to their assignment by the notebook's metadata
        blank = course / "exercises" / f"{name}.ipynb"
        assert "raise NotImplementedError" in blank.read_text()
        (class_folder / "solution").mkdir(parents=True, exist_ok=True)
        shutil.copy(course / "reference" / f"{name}.ipynb",
                    class_folder / "solution" / f"my {name}.ipynb")
        (class_folder / "blank").mkdir(exist_ok=True)
        shutil.copy(blank, class_folder / "blank" / f"{name}-v2.ipynb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run([grade, "--course", str(course), str(class_folder), "--out", "graded", "--json",
                "--timeout", "300"], cwd=elsewhere)
    scores = json.loads(done.stdout)["students"]
    for name in names:
        assert scores["solution"][name]["score"] == scores["solution"][name]["max_score"] > 0
        assert scores["blank"][name]["score"] == 0
        assert (elsewhere / "graded" / "solution" / name / "report.html").is_file()
    with open(elsewhere / "graded" / "grades.csv", newline="") as handle:
        assert {(row["student"], row["assignment"]) for row in csv.DictReader(handle)} == {
            (student, name) for student in ("blank", "solution") for name in names}
    assert (elsewhere / "graded" / "summary.html").is_file()
