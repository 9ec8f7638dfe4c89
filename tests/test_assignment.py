"""One Assignment per assignment: its plan derived once however many submissions a batch
grades (issue 24), and the settings that decide no verdict kept as the caller's."""

from __future__ import annotations

import shutil
import sys
import threading
from dataclasses import replace

import pytest
from conftest import BLANK, FAST

from grader.grading import assignment as assignment_module
from grader.grading import plan
from grader.grading.assignment import Assignment
from grader.scale.batch import grade_folder


@pytest.fixture
def plans_derived(monkeypatch) -> list[str]:
    """The calls of plan.planned_work from here on, by any module however it imported it,
    with no Assignment built before."""
    monkeypatch.setattr(assignment_module, "_BUILT", {})
    calls: list[str] = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is plan.planned_work.__code__:
            calls.append(frame.f_back.f_globals.get("__name__", ""))

    sys.setprofile(profile)
    threading.setprofile(profile)
    yield calls
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]


def test_a_batch_of_two_submissions_derives_the_plan_once(plans_derived, tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for student in ("ann", "bob"):
        shutil.copy(BLANK, folder / f"{student}.ipynb")
    report = grade_folder(folder, tmp_path / "graded", [FAST])
    assert len(report.results) == 2 and not report.problems, report.problems
    assert plans_derived == ["grader.grading.assignment"]


def test_settings_that_decide_no_verdict_are_the_callers_but_the_plan_is_shared(
        plans_derived):
    first = Assignment.of(FAST)
    renamed = Assignment.of(replace(FAST, gradebook_column="Homework 3"))
    assert renamed.settings.gradebook_column == "Homework 3"
    assert first.settings.gradebook_column != "Homework 3"
    assert renamed.work is first.work and renamed.checks is first.checks
    assert Assignment.of(first) is first
    assert len(plans_derived) == 1
    reseeded = Assignment.of(replace(FAST, seed=FAST.seed + 1))
    assert reseeded.work is not first.work and len(plans_derived) == 2
