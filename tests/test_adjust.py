"""Instructor overrides and the late policy, on synthetic results (no kernel): what each
costs or sets, every bad row's message, and a results.json round trip keeping them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from conftest import TEST_COURSE

from grader.authoring.config import ConfigError, load_settings
from grader.authoring.course import ENV_VAR
from grader.grading.results import (
    LATE,
    OVERRIDE,
    Lateness,
    Result,
    TestResult,
    load_result,
    save_result,
)
from grader.outputs.gradebook import Person
from grader.students.late import LatePolicy, late_penalty, unknown_extensions, with_offset
from grader.students.overrides import (
    MAX_BYTES,
    Override,
    OverrideError,
    apply,
    by_roster,
    override_files,
    parse,
    read_overrides,
    unused,
)

DUE = with_offset(datetime.fromisoformat("2025-03-01T23:59:00-05:00"))
HEADER = "student,assignment,test,points,reason\n"


def policy(**changes) -> LatePolicy:
    return replace(LatePolicy(due=DUE, penalty_per_day=0.1, max_penalty=0.3), **changes)


def result(student: str = "alice", lateness: Lateness | None = None, **changes) -> Result:
    tests = [TestResult("loss", "linreg", 4.0, 2.0, False, "off by 2"),
             TestResult("sgd", "linreg", 6.0, 6.0, True, "ok")]
    return replace(Result(student, "linreg", f"{student}.ipynb", "d", "v", "c", tests=tests,
                          lms_id="4711", lateness=lateness), **changes)


def penalty(submitted_at: str | None, marked: bool = False, late: LatePolicy | None = None,
            student: str = "alice"):
    return late_penalty(late or policy(), Lateness(marked, submitted_at), student, "4711", 10.0)


def csv_file(folder: Path, rows: str, name: str = "overrides.csv") -> Path:
    path = folder / name
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


# The late policy.

@pytest.mark.parametrize(("submitted_at", "points", "days"), [
    ("2025-03-01T23:59:00-05:00", None, 0),  # on the minute
    ("2025-03-02T04:59:00+00:00", None, 0),  # the same moment, another zone
    ("2025-03-01T23:59:01-05:00", 1.0, 1),  # a second late is a started day
    ("2025-03-03T23:59:00-05:00", 2.0, 2),
    ("2025-03-09T12:00:00-05:00", 3.0, 8),  # capped at 30%
])
def test_started_days_after_the_due_date_cost_the_rate_up_to_the_cap(
        submitted_at: str, points: float | None, days: int) -> None:
    adjustment = penalty(submitted_at)
    assert (adjustment and adjustment.points) == points
    if adjustment:
        assert adjustment.kind == LATE and adjustment.test is None
        assert f"{days} started day(s) late at 10% of the points a day, at most 30%" \
            in adjustment.reason
        assert "due 2025-03-01 23:59 UTC-05:00" in adjustment.reason


def test_the_grace_period_forgives_minutes_and_is_named() -> None:
    graced = policy(grace_minutes=30)
    assert penalty("2025-03-02T00:29:00-05:00", late=graced) is None
    adjustment = penalty("2025-03-02T00:30:00-05:00", late=graced)
    assert adjustment.points == 1.0
    assert "grace period of 30 minute(s)" in adjustment.reason
    assert "handed in 2025-03-02 00:30 UTC-05:00" in adjustment.reason


def test_an_extension_moves_the_due_date_by_id_or_lms_id() -> None:
    by_id = policy(extensions={"alice": 2})
    assert penalty("2025-03-03T23:00:00-05:00", marked=True, late=by_id) is None
    adjustment = penalty("2025-03-04T01:00:00-05:00", late=by_id)
    assert adjustment.points == 1.0 and "extension of 2 day(s)" in adjustment.reason
    by_lms = policy(extensions={"4711": 1.5})
    assert penalty("2025-03-03T11:00:00-05:00", late=by_lms, student="bob") is None


def test_a_marker_without_a_time_counts_one_day() -> None:
    for submitted_at in (None, "yesterday", "2025-03-02T10:00:00"):  # none, bad, naive
        adjustment = penalty(submitted_at, marked=True)
        assert adjustment.points == 1.0, submitted_at
        assert "marked late by the LMS, which gives no time, so counted as 1 day late" \
            in adjustment.reason
    early = penalty("2025-03-01T15:00:00Z", marked=True)
    assert early.points == 1.0 and "though the time it gives (2025-03-01 10:00 UTC-05:00) " \
        "is not after the due date, so counted as 1 day late" in early.reason
    assert penalty(None, marked=False) is None
    assert penalty(None, marked=True, late=policy(extensions={"alice": 1})) is None
    assert late_penalty(None, Lateness(True), "alice", None, 10.0) is None


def test_a_late_policy_is_read_from_the_settings_and_a_naive_due_date_refused(
        tmp_path: Path) -> None:
    top = (TEST_COURSE.assignments / "linear_networks.toml").read_text()
    path = tmp_path / "linear_networks.toml"
    path.write_text(f"{top}\n[late]\ndue = 2025-03-01T23:59:00-05:00\n"
                    "penalty_per_day = 0.2\nextensions = { alice = 2 }\n")
    late = load_settings(path).late
    assert (late.due, late.penalty_per_day, late.extensions) == (DUE, 0.2, {"alice": 2})
    for due in ("2025-03-01T23:59:00", "2025-03-01"):
        path.write_text(f"{top}\n[late]\ndue = {due}\n")
        with pytest.raises(ConfigError, match=r"late\.due: .* has no UTC offset; write it "
                                              r"with one, e\.g\. 2025-03-01T23:59:00-05:00"):
            load_settings(path)


def test_an_extension_for_no_one_graded_is_reported() -> None:
    late = policy(extensions={"alice": 1, "4711": 1, "alcie": 2})
    assert unknown_extensions(late, "linreg", {"alice", "4711"}) == [
        "linreg: the extension for alcie names no student graded (keys are a student's id "
        "or LMS id): check the [late] extensions of its settings"]
    assert unknown_extensions(None, "linreg", set()) == []


# Overrides.

def test_an_override_sets_a_test_then_the_total_is_final(tmp_path: Path) -> None:
    rows = read_overrides([csv_file(tmp_path, "alice,linreg,loss,3.5,regraded by hand\n")])
    adjusted = apply(result(), rows, None)
    assert adjusted.adjustments[0].kind == OVERRIDE
    assert (adjusted.earned, adjusted.score, result().score) == (9.5, 9.5, 8.0)
    assert adjusted.tests == result().tests
    late = Lateness(submitted_at="2025-03-02T10:00:00-05:00")
    assert apply(result(lateness=late), rows, policy()).score == 8.5
    total = parse_rows("4711,linreg,total,7,excused lateness\nalice,linreg,loss,1,x")
    adjusted = apply(result(lateness=late), total, policy())
    assert adjusted.score == 7.0 and [a.kind for a in adjusted.adjustments] == [OVERRIDE] * 2
    assert [a.test for a in adjusted.adjustments] == ["loss", None]


def test_overrides_are_made_afresh_on_every_run() -> None:
    stale = replace(result(), adjustments=[*apply(result(), [], policy()).adjustments])
    assert apply(stale, [], None).adjustments == []
    late = result(lateness=Lateness(True))
    assert [a.kind for a in apply(apply(late, [], policy()), [], policy()).adjustments] \
        == [LATE]


def test_a_round_trip_through_results_json_keeps_adjustments_and_score(
        tmp_path: Path) -> None:
    rows = read_overrides([csv_file(tmp_path, "alice,linreg,sgd,5,style\n")])
    late = Lateness(True, "2025-03-02T10:00:00-05:00")
    adjusted = apply(result(lateness=late), rows, policy())
    save_result(adjusted, tmp_path / "results.json")
    loaded = load_result(tmp_path / "results.json")
    assert loaded == adjusted and loaded.score == adjusted.score == 6.0


@pytest.mark.parametrize(("rows", "message"), [
    ("alice,linreg,loss,many,x\n", ":2: points many is not a number"),
    ("alice,linreg,loss,-1,x\n", ":2: points -1 must be a number of 0 or more"),
    ("alice,linreg,loss,nan,x\n", ":2: points nan must be a number of 0 or more"),
    ("alice,linreg,loss,1,\n", ":2: reason is empty; every override needs a reason the "
                               "student reads"),
    ("alice,,loss,1,x\n", ":2: assignment is empty"),
    ("alice,linreg,loss,1\n", ":2: the row must have the 5 cells"),
    ("alice,linreg,loss,1,x,y\n", ":2: the row must have the 5 cells"),
    ("alice,linreg,loss,1,x\n\nalice,linreg,loss,2,y\n",
     ":4: test loss of alice on linreg is set twice, here and at .*overrides.csv:2; keep one"),
    ("alice,linreg,,1,x\nalice,linreg,total,2,y\n", ":3: the total of alice on linreg is "
                                                    "set twice"),
])
def test_every_bad_row_is_named_by_file_and_line(tmp_path: Path, rows: str,
                                                 message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        read_overrides([csv_file(tmp_path, rows)])


def test_bad_files_are_refused_saying_why(tmp_path: Path) -> None:
    cases = {"columns": ("student,points\nalice,1\n", "the columns must be student,"),
             "encoding": (b"\xff\xfe".decode("latin-1"), "not UTF-8 text")}
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="latin-1" if name == "encoding" else "utf-8")
        with pytest.raises(OverrideError, match=message):
            read_overrides([path])
    big = tmp_path / "big.csv"
    big.write_text(HEADER + "x" * MAX_BYTES)
    with pytest.raises(OverrideError, match="over the 1048576 an overrides file may be"):
        read_overrides([big])
    (tmp_path / "link.csv").symlink_to(csv_file(tmp_path, "alice,linreg,loss,1,x\n"))
    with pytest.raises(OverrideError, match="a link is refused"):
        read_overrides([tmp_path / "link.csv"])


def test_errors_are_listed_together_and_bounded(tmp_path: Path) -> None:
    with pytest.raises(OverrideError) as raised:
        read_overrides([csv_file(tmp_path, "alice,linreg,loss,x,y\n" * 25)])
    lines = str(raised.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "and 5 more"


def test_the_same_key_in_the_course_and_the_output_folder_names_both(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    course, out = tmp_path / "course", tmp_path / "out"
    course.mkdir(), out.mkdir()
    monkeypatch.setenv(ENV_VAR, str(course))
    assert override_files(out) == []
    csv_file(course, "alice,linreg,loss,1,x\n")
    csv_file(out, "alice,linreg,loss,2,y\n")
    assert override_files(out) == [course / "overrides.csv", out / "overrides.csv"]
    assert override_files(course) == [course / "overrides.csv"]
    with pytest.raises(OverrideError, match=f"{out}/overrides.csv:2: .* set twice, here and "
                                            f"at {course}/overrides.csv:2"):
        read_overrides(override_files(out))


def test_points_over_the_max_are_an_error() -> None:
    for row, worth in (("alice,linreg,loss,4.5,x", "test loss .* worth 4"),
                       ("alice,linreg,total,11,x", "the total .* worth 10")):
        with pytest.raises(OverrideError, match=f"4.5|11 points for {worth}"):
            apply(result(), parse_rows(row), None)


def test_two_rows_on_one_student_by_id_and_lms_id_are_an_error() -> None:
    rows = parse_rows("alice,linreg,loss,1,x\n4711,linreg,loss,2,y")
    with pytest.raises(OverrideError, match="set twice"):
        apply(result(), rows, None)


def test_a_row_that_changes_nothing_is_reported() -> None:
    rows = parse_rows("alice,linreg,sgdd,1,x\nbob,linreg,loss,1,x\nalice,other,,1,x\n"
                      "carol,linreg,loss,1,x\ncarol,linreg,,4,excused")
    missing = result("carol", tests=[], missing="nothing handed in", possible=10.0)
    problems = unused(rows, [result(), missing])
    assert [p.split(": ", 1)[1] for p in problems] == [
        "linreg has no test sgdd: the override is not applied; its tests are loss, sgd",
        "no result for bob on linreg: the override is not applied; check the student's id "
        "and the assignment's name",
        "no result for alice on other: the override is not applied; check the student's id "
        "and the assignment's name",
        "linreg has no test loss: the override is not applied; its tests are none (not "
        "handed in)"]
    assert apply(missing, rows, policy()).score == 4.0
    assert apply(result(), rows, None).adjustments == []


def test_a_roster_login_names_the_student() -> None:
    rows = parse_rows("alice@uni.edu,linreg,loss,1,x\nal,linreg,sgd,1,x")
    roster = {"alice": Person("Alice", "4711", "", "alice@uni.edu")}
    resolved = by_roster(rows, roster)
    assert [o.student for o in resolved] == ["alice", "al"]
    assert apply(result(), resolved, None).earned == 7.0


def parse_rows(rows: str) -> list[Override]:
    """Good rows as a file would give them, for tests that need no folder."""
    overrides, errors = parse(Path("overrides.csv"), HEADER + rows)
    assert not errors
    return overrides
