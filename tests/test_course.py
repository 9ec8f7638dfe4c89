"""Course folders: which course is in use, and the bad folders a newcomer may point at."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from course import make_course

from grader.authoring import course
from grader.cli import main


@pytest.fixture(autouse=True)
def no_course_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(course.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)


def test_init_copies_the_bundled_course_and_it_is_then_the_one_in_use(tmp_path: Path):
    result = CliRunner().invoke(main, ["init", "mine"])
    assert result.exit_code == 0, result.output
    mine = tmp_path / "mine"
    for part in course.PARTS:
        assert sorted(p.name for p in (mine / part).iterdir()) == \
            sorted(p.name for p in getattr(course.BUNDLED, part).iterdir())
    assert "plugins/" in result.output and (mine / "plugins" / "README.md").is_file()
    assert course.current() == course.BUNDLED  # not inside it yet
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(mine)
        assert course.current().root == mine.resolve()


@pytest.mark.parametrize("make, words", [
    (lambda folder: folder.mkdir(), "is not a course: it needs reference/ and assignments/"),
    (lambda folder: None, "is not a course"),
])
def test_a_folder_that_is_not_a_course_is_a_usage_error(tmp_path: Path, make, words):
    make(tmp_path / "elsewhere")
    result = CliRunner().invoke(main, ["--course", str(tmp_path / "elsewhere"), "assign"])
    assert result.exit_code == 2 and words in result.output


def test_init_refuses_a_folder_that_holds_files(tmp_path: Path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["init", "busy"])
    assert result.exit_code == 2 and "is not empty" in result.output
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


def test_the_test_course_is_the_bundled_assignments_together(tmp_path: Path):
    """tests/course, which most tests grade with, must not drift from the bundled course."""
    make_course.write(tmp_path / "fresh")
    for part in ("reference/linear_networks.ipynb", "exercises/linear_networks.ipynb",
                 "assignments/linear_networks.toml"):
        assert (tmp_path / "fresh" / part).read_text() == \
            (make_course.HERE / part).read_text(), f"{part} drifted: run make_course.py"
