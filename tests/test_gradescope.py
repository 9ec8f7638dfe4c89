"""The Gradescope autograder as Gradescope runs it: `grade gradescope` builds the zip, the
zip is unpacked into a root laid out as /autograder (sources in source/, run_autograder
copied beside it, the submission in submission/), the package it holds is installed into
a fresh environment, and run_autograder grades from there (no Docker engine exists here,
and setup.sh's downloads cannot run: the environment sees the system's torch instead)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NOTEBOOK, with_functions, write_notebook

from grader import course
from grader.cli import main
from grader.course import BUNDLED, ENV_VAR

ASSIGNMENT = "softmax_regression"
# A broken evaluate_accuracy whose error tries to add an image and a link to the page.
HOSTILE = ("def evaluate_accuracy(net, data_iter):\n"
           "    raise ValueError('<img src=x onerror=alert(1)> [click](http://evil)')\n")


def run(command: list[str], cwd: Path | None = None, timeout: float = 600):
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    root = tmp_path_factory.mktemp("autograder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_VAR, str(BUNDLED.root))
        built = CliRunner().invoke(main, ["gradescope", "--assignment", ASSIGNMENT,
                                          "--out", str(root / "autograder.zip")])
    assert built.exit_code == 0, built.output
    with zipfile.ZipFile(root / "autograder.zip") as archive:
        archive.extractall(root / "source")
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(modes[script])
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope
    venv = root / "venv"  # what setup.sh makes, the package built here (no download)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(root / "dist"), str(root / "source" / "package")])
    [wheel] = (root / "dist").glob("dl_grader-*.whl")
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    run([str(venv / "bin/python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         str(wheel)])
    write_notebook(with_functions({"evaluate_accuracy": HOSTILE},
                                  base=BUNDLED.reference / f"{ASSIGNMENT}.ipynb"),
                   root / "submission" / "homework" / "my_notebook.ipynb")
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "PYTHONPATH")}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=str(venv / "bin/python"))
    completed = subprocess.run([str(root / "run_autograder")], env=env, cwd=root,
                               capture_output=True, text=True, timeout=600)
    results = root / "results" / "results.json"
    data = json.loads(results.read_text()) if results.exists() else None
    return completed, root, modes, data


def test_the_zip_is_laid_out_as_gradescope_wants(autograded):
    _, root, modes, _ = autograded
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    names = set(modes)
    assert {f"course/reference/{ASSIGNMENT}.ipynb", f"course/assignments/{ASSIGNMENT}.toml",
            f"course/public/{ASSIGNMENT}.pt", "package/pyproject.toml",
            "package/grader/gradescope.py", "package/grader/templates/gradescope.md.j2"} <= names
    assert not [n for n in names if n.startswith("package/grader/course/")]  # no other course
    assert len([n for n in names if n.startswith("data/")]) == 4
    setup = (root / "source" / "setup.sh").read_text()
    assert "chromium" not in setup and "[test]" not in setup and "python3.11" in setup


def test_run_autograder_grades_from_the_unpacked_layout(autograded):
    completed, root, _, data = autograded
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert data is not None and "score" in completed.stdout
    assert data["execution_time"] > 0 and data["output_format"] == "md"
    tests = [t for t in data["tests"] if "score" in t]
    assert data["score"] == pytest.approx(sum(t["score"] for t in tests))
    assert 0 < data["score"] < sum(t["max_score"] for t in tests)
    failed = {t["name"] for t in tests if t["status"] == "failed"}
    assert failed and all(name.startswith("evaluate_accuracy.") for name in failed)
    assert all(t["tags"] == [ASSIGNMENT, t["name"].split(".")[0]] for t in tests)
    assert [entry["name"] for entry in data["leaderboard"]] == ["epoch.run time ratio"]
    assert (root / "results" / "reports" / "submission" / ASSIGNMENT / "report.html").is_file()


def test_the_installed_package_is_the_zips(autograded):
    _, root, _, _ = autograded
    where = run([str(root / "venv/bin/python"), "-c", "import grader; print(grader.__file__)"],
                cwd=root)
    assert Path(where.stdout.strip()).is_relative_to(root / "venv")


def test_nothing_hidden_shows_before_publication(autograded):
    _, _, _, data = autograded
    tests = {t["name"]: t for t in data["tests"]}
    tie = tests["accuracy.breaks_ties_like_argmax"]
    assert tie["visibility"] == "after_published" and "expected:" not in tie["output"]
    visible = tests["softmax.values_match_the_reference"]
    assert visible["visibility"] == "visible"
    shown = data["output"]
    assert "Fix this first" in shown and "the total shows when grades are published" in shown
    assert f"{data['score']:g} /" not in shown
    full = tests[f"{ASSIGNMENT}: full report"]
    assert full["visibility"] == "after_published" and f"{data['score']:g} /" in full["output"]


def test_what_a_student_wrote_cannot_add_markup(autograded):
    _, _, _, data = autograded
    for text in (data["output"], data["tests"][-1]["output"]):
        assert r"\<img" in text
        assert not re.search(r"(?<!\\)<img|(?<!\\)\]\(http", text)


def test_a_course_without_its_self_check_data_cannot_be_zipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert CliRunner().invoke(main, ["init", "mine"]).exit_code == 0
    (tmp_path / "mine" / "public" / f"{ASSIGNMENT}.pt").unlink()
    result = CliRunner().invoke(main, ["--course", "mine", "gradescope", "--assignment",
                                       ASSIGNMENT])
    assert result.exit_code == 2
    assert f"{ASSIGNMENT}.pt is missing (`grade assign` writes it)" in result.output
    assert not (tmp_path / "autograder.zip").exists()


def test_visible_tests_show_paths_as_the_report_does(tmp_path):
    """A traceback names the kernel's work folder and the instructor's folders: Gradescope's
    test output shows them relative, as report.html does, and without terminal colours."""
    from grader.gradescope import test_entry
    from grader.results import Result, TestResult

    source = tmp_path / "submissions" / "ann.ipynb"
    got = (f"\x1b[31mValueError\x1b[0m in /tmp/grade-x1y2/work/helper.py line 3, "
           f"read from {source.parent}/data.csv")
    test = TestResult("softmax.values", "softmax", 1.0, 0.0, False, "softmax.values failed",
                      got=got)
    result = Result("ann", "softmax_regression", str(source), "d", "v", "c", tests=[test])
    output = test_entry(test, 1, result)["output"]
    assert "/tmp/grade-" not in output and str(tmp_path) not in output, output
    assert "\x1b" not in output and "helper.py line 3" in output and "data.csv" in output


def test_a_grader_fault_posts_no_score(tmp_path, monkeypatch):
    """A kernel that could not start is the grader's fault: no results.json (Gradescope
    then says the autograder failed) rather than a 0 posted to the student; the
    instructor's report is kept."""
    import grader.gradescope as gradescope
    from grader.config import load_assignments
    from grader.results import Result

    def faulted(submission, settings, matched=None):
        return Result(submission.student, settings.notebook, str(submission.path), "d", "v",
                      "c", fault="the kernel could not start: Broken pipe")

    monkeypatch.setattr(gradescope, "grade_submission", faulted)
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / f"{NOTEBOOK}.ipynb").write_text("{}")
    settings = load_assignments(course.current().assignment_files(), (NOTEBOOK,))
    with pytest.raises(gradescope.NotGraded, match="Broken pipe"):
        gradescope.run(tmp_path, settings)
    assert not (tmp_path / "results" / "results.json").exists()
    assert (tmp_path / "results" / "reports" / "submission" / NOTEBOOK
            / "results.json").is_file()
