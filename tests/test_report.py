"""Reports, summary and grades.csv, checked by parsing what they produce."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from grader.grading.results import (
    LATE,
    NOT_JUDGED,
    OVERRIDE,
    Adjustment,
    Cause,
    CellRecord,
    Curve,
    Lateness,
    Result,
    Timing,
    load_result,
    save_result,
)
from grader.grading.results import TestResult as Check  # aliased so pytest does not collect it
from grader.grading.wording import shorten
from grader.outputs.charts import histogram_svg, pass_rates_svg, timing_spread_svg
from grader.outputs.curves import curves_svg
from grader.outputs.report import (
    format_points,
    format_seconds,
    render_report,
    render_summary,
    seed_tag,
    strip_ansi,
    write_grades_csv,
    write_report,
    write_summary,
)

HOSTILE = "<script>alert('pwned')</script>"
ANSI_TRACEBACK = (
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m\n"
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)\n"
    "Cell \x1b[0;32mIn[3], line 1\x1b[0m\n"
    "\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m\x1b[38;5;241m/\x1b[39m\x1b[38;5;241m0\x1b[39m"
    f"  # {HOSTILE}\n"
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"
)


def _test(name: str, exercise: str, points: float, max_points: float = 1.0, **kw) -> Check:
    return Check(
        name=name,
        exercise=exercise,
        max_points=max_points,
        points=points,
        passed=kw.pop("passed", points == max_points),
        message=kw.pop("message", "ok" if points == max_points else "wrong"),
        **kw,
    )


def _result(student: str, tests: list[Check], assignment: str = "softmax_regression",
            **kw) -> Result:
    return Result(
        student=student,
        assignment=assignment,
        source=f"{student}.ipynb",
        digest="0123456789abcdef" * 4,
        grader_version="9.9.9",
        config_digest="fedcba9876543210" * 4,
        tests=tests,
        **kw,
    )


@pytest.fixture
def perfect() -> Result:
    return _result(
        "alice",
        [
            _test("softmax_rows_sum_to_one", "softmax", 2.0, 2.0, expected="1.0", got="1.0"),
            _test("cross_entropy_value", "loss", 1.0),
        ],
        timings=[Timing("epoch.run", "NVIDIA H100", student_seconds=12.3, reference_seconds=6.0,
                        max_ratio=3.0)],
        curves=[Curve("loss", "epoch", "loss", [1, 2, 3], [0.9, 0.6, 0.4], [0.8, 0.5, 0.35])],
        seeds={"torch": 0, "numpy": 1},
    )


@pytest.fixture
def broken() -> Result:
    """Fails a visible and a hidden test, diverged to None, crashed a cell, was never timed."""
    return _result(
        "bob",
        [
            _test(
                "softmax_rows_sum_to_one",
                "softmax",
                0.0,
                2.0,
                message=f"rows sum to 3 {HOSTILE}",
                expected="tensor([1., 1.])",
                got=f"tensor([3., 3.]) {HOSTILE}",
            ),
            _test(
                "held_out_accuracy",
                "training",
                0.5,
                2.0,
                passed=False,
                message="accuracy 0.41 on held-out data",
                expected="SECRET-EXPECTED",
                got="SECRET-GOT",
                hidden=True,
            ),
        ],
        errors=[CellRecord(3, f"1/0  # {HOSTILE}", "ZeroDivisionError: 1/0", ANSI_TRACEBACK)],
        timings=[Timing("epoch.run", "NVIDIA H100", student_seconds=None, reference_seconds=6.0,
                        max_ratio=3.0)],
        curves=[Curve("loss", "epoch", "loss", [1, 2, 3], [2.3, None, None])],
        notes=["sandbox: network access was blocked"],
    )


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def _row(soup: BeautifulSoup, test: str):
    row = soup.select_one(f'tr.test[data-test="{test}"]')
    assert row is not None, f"no row for {test}"
    return row


def test_report_shows_total_verdicts_and_points(perfect: Result, broken: Result) -> None:
    good, bad = _soup(render_report(perfect)), _soup(render_report(broken))

    assert good.select_one("#total").get_text(strip=True) == "3 / 3"
    assert bad.select_one("#total").get_text(strip=True) == "0.5 / 4"
    assert "pass" in _row(good, "softmax_rows_sum_to_one")["class"]
    assert "fail" in _row(bad, "softmax_rows_sum_to_one")["class"]
    assert "fail" in _row(bad, "held_out_accuracy")["class"]
    assert "0.5 / 2" in _row(bad, "held_out_accuracy").get_text()
    assert "9.9.9" in good.get_text()
    assert good.select_one("#seeds").get_text(" ", strip=True) == \
        f"Seeds: torch {seed_tag(0)} , numpy {seed_tag(1)}"


def test_the_report_tags_seeds_without_giving_them_away(perfect: Result) -> None:
    """Students read the report: with the grading seed they could draw the hidden inputs
    and the secret weights again for their next submission."""
    result = replace(perfect, seeds={"inputs": 20240817})
    text = _soup(render_report(result)).select_one("#seeds").get_text()
    assert "20240817" not in text
    assert seed_tag(20240817) in text and seed_tag(20240817) != seed_tag(20240818)


def test_report_groups_tests_by_exercise(perfect: Result) -> None:
    soup = _soup(render_report(perfect))

    groups = {
        table["data-exercise"]: [row["data-test"] for row in table.select("tr.test")]
        for table in soup.select("table.exercise")
    }
    assert groups == {"softmax": ["softmax_rows_sum_to_one"], "loss": ["cross_entropy_value"]}


def test_expected_and_got_only_for_visible_tests(broken: Result) -> None:
    html = render_report(broken)
    soup = _soup(html)

    visible = _row(soup, "softmax_rows_sum_to_one")
    assert visible.select_one("pre.expected").get_text() == "tensor([1., 1.])"
    assert visible.select_one("pre.got").get_text() == f"tensor([3., 3.]) {HOSTILE}"
    hidden = _row(soup, "held_out_accuracy")
    assert hidden.select("pre") == []
    assert "accuracy 0.41 on held-out data" in hidden.get_text()
    assert "SECRET" not in html


def test_student_text_is_escaped(broken: Result) -> None:
    broken.student = "<b>bob</b>"
    html = render_report(broken)
    soup = _soup(html)

    assert soup.find_all("script") == []
    assert soup.find_all("b") == []
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert HOSTILE in _row(soup, "softmax_rows_sum_to_one").select_one(".message").get_text()
    assert soup.select_one("pre.source").get_text() == f"1/0  # {HOSTILE}"
    assert soup.h1.get_text() == "Report for <b>bob</b>: softmax_regression"


def test_cell_errors_show_source_and_plain_traceback(broken: Result) -> None:
    html = render_report(broken)
    errors = _soup(html).select_one("#errors")

    assert "\x1b" not in html
    assert errors.select_one(".cell-error")["data-cell"] == "3"
    traceback = errors.select_one("pre.traceback").get_text()
    assert traceback == strip_ansi(ANSI_TRACEBACK)
    assert "ZeroDivisionError: division by zero" in traceback
    assert "[0;31m" not in traceback


def test_report_without_errors_has_no_error_section(perfect: Result) -> None:
    assert _soup(render_report(perfect)).select_one("#errors") is None


def test_strip_ansi_removes_colours_and_links_only() -> None:
    link = "\x1b]8;;file:///tmp/x.py\x1b\\x.py\x1b]8;;\x1b\\"
    assert strip_ansi("\x1b[1;31mError\x1b[0m: \x1b[38;5;241mbad\x1b[39m") == "Error: bad"
    assert strip_ansi(f"see {link} line 2") == "see x.py line 2"
    assert strip_ansi("[0;31m is not an escape") == "[0;31m is not an escape"


def test_timing_shows_ratio_against_allowed(perfect: Result, broken: Result) -> None:
    timed = _soup(render_report(perfect)).select_one("#timing")
    untimed = _soup(render_report(broken)).select_one("#timing")

    ratio = timed.select_one("[data-step='epoch.run'] .timing-ratio").get_text(" ", strip=True)
    assert "2.05×" in ratio and "3.00×" in ratio
    assert timed.select_one(".timing-ratio .badge.pass") is not None
    assert "12.3 s" in timed.get_text() and "6.00 s" in timed.get_text()
    assert "not measured" in untimed.get_text()
    assert "not available" in untimed.select_one(".timing-ratio").get_text()


def test_every_timed_step_has_its_row(perfect: Result) -> None:
    perfect.timings.append(Timing("mlp.epoch", "cpu", 1.0, 2.0, 3.0))
    rows = _soup(render_report(perfect)).select("#timing [data-step]")
    assert [row["data-step"] for row in rows] == ["epoch.run", "mlp.epoch"]
    assert "0.50×" in rows[1].get_text()


def test_timing_over_limit_is_flagged(perfect: Result) -> None:
    perfect.timings[0].student_seconds = 30.0
    ratio = _soup(render_report(perfect)).select_one(".timing-ratio")

    assert "5.00×" in ratio.get_text()
    assert ratio.select_one(".badge.fail") is not None


def test_notes_and_missing_timing(broken: Result, perfect: Result) -> None:
    perfect.timings = []
    assert _soup(render_report(perfect)).select_one("#timing") is None
    assert _soup(render_report(perfect)).select_one("#notes") is None
    notes = _soup(render_report(broken)).select_one("#notes")
    assert notes.get_text(strip=True) == "sandbox: network access was blocked"


def test_chart_is_inline_svg(perfect: Result, broken: Result) -> None:
    """A curve named after an exercise ("loss") sits in that exercise's section, near its
    tests, drawn larger than the 230 px it had at the page's bottom; one naming no
    exercise of the result stays in a section of its own."""
    placed, unplaced = _soup(render_report(perfect)), _soup(render_report(broken))
    svg = placed.select_one('#ex-loss .exercise-chart[data-exercise="loss"] svg.chart-curves')
    assert svg is not None and placed.select_one("#chart") is None
    assert svg.title.get_text() == "Training curves: loss"
    assert float(svg["height"].removesuffix("pt")) * 4 / 3 >= 300  # px
    assert unplaced.select_one("#chart svg.chart.chart-curves") is not None
    assert not placed.find_all("img") and not unplaced.find_all("img")
    perfect.curves = [replace(perfect.curves[0], name="loss: per epoch")]
    svg = _soup(render_report(perfect)).select_one("#ex-loss svg.chart-curves")
    assert svg.title.get_text() == "Training curves: per epoch"  # the section names it
    perfect.curves = []
    assert _soup(render_report(perfect)).select(".exercise-chart, #chart") == []


def test_write_report_writes_report_html(tmp_path: Path, perfect: Result) -> None:
    path = write_report(perfect, tmp_path)

    assert path == tmp_path / "alice" / "softmax_regression" / "report.html"
    soup = _soup(path.read_text(encoding="utf-8"))
    assert soup.select_one("#total").get_text() == "3 / 3"
    assert soup.select_one("#assignment").get_text() == "softmax_regression"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_curves_svg_survives_non_finite_points() -> None:
    curves = [
        Curve("loss", "epoch", "loss", [1, 2, 3], [None, math.nan, math.inf], [1.0, None, 0.5]),
        Curve("accuracy", "epoch", "acc", [1, 2, 3], [0.1, None], None),
    ]
    svg = curves_svg(curves)
    soup = _soup(svg)

    assert svg.startswith('<svg class="chart chart-curves"')
    assert "<?xml" not in svg and "DOCTYPE" not in svg
    assert soup.svg.title.get_text() == "Training curves: loss, accuracy"
    assert "no finite values" in soup.get_text()
    assert curves_svg([]) == ""


def test_curves_svg_draws_named_series_and_they_round_trip(tmp_path: Path,
                                                           perfect: Result) -> None:
    faces = {f"P(die={i})": [1.0 / i, 0.2, None] for i in range(1, 7)}
    perfect.curves = [Curve("dice", "groups", "estimate", [1, 2, 3], [], [1 / 6] * 3, faces)]
    svg = _soup(curves_svg(perfect.curves))

    assert all(label in svg.get_text() for label in faces)
    assert "no finite values" not in svg.get_text()
    save_result(perfect, tmp_path / "results.json")
    assert load_result(tmp_path / "results.json").curves[0].series == faces
    blank = Curve("dice", "groups", "estimate", [1, 2], [], None, {"P(die=1)": [None, None]})
    assert "no finite values" in _soup(curves_svg([blank])).get_text()


def test_histogram_and_pass_rate_charts() -> None:
    histogram = _soup(histogram_svg([1.0, 2.5, 9.0, 10.0], 10.0)).svg
    rates = _soup(pass_rates_svg({"softmax": 1.0, "loss": 0.25})).svg

    assert histogram["class"] == ["chart", "chart-histogram"]
    assert histogram.title.get_text() == "Histogram of 4 scores out of 10"
    assert rates["class"] == ["chart", "chart-pass-rates"]
    labels = [text.get_text() for text in rates.find_all("text")]
    assert {"softmax", "loss", "100%", "25%"} <= set(labels)
    assert histogram_svg([], 10.0) == "" and pass_rates_svg({}) == ""


def test_summary_stats_charts_and_table(perfect: Result, broken: Result) -> None:
    carol = _result("carol", [_test("softmax_rows_sum_to_one", "softmax", 2.0, 2.0)])
    early = _result("alice", [_test("normal.matches", "normal", 1.0)], "preliminaries")
    soup = _soup(render_summary([perfect, broken, carol, early]))

    assert soup.select_one("#count").get_text() == \
        "3 students, 2 assignments: preliminaries, softmax_regression"
    sections = soup.select("section.assignment")
    assert [s["data-assignment"] for s in sections] == ["preliminaries", "softmax_regression"]
    first, section = sections
    assert first.select_one(".count").get_text(" ", strip=True) == "1 handed in"
    assert section.select_one(".count").get_text(" ", strip=True) == "3 handed in"
    assert section.select_one(".missing").get_text(" ", strip=True) == "0 not handed in"
    assert section.select_one(".mean strong").get_text() == "1.83 / 4"
    assert section.select_one(".median strong").get_text() == "2 / 4"
    assert section.select_one(".histogram svg.chart-histogram") is not None
    assert section.select_one(".pass-rates svg.chart-pass-rates") is not None
    rows = section.select(".students tbody tr")
    assert [row["data-student"] for row in rows] == ["alice", "bob", "carol"]
    cells = {row["data-student"]: [td.get_text() for td in row.find_all("td")] for row in rows}
    assert cells["alice"] == ["alice", "3", "3", "epoch.run 2.05×", "0"]
    assert cells["bob"] == ["bob", "0.5", "4", "epoch.run —", "2"]
    assert cells["carol"] == ["carol", "2", "2", "—", "0"]
    assert rows[0].a["href"] == "alice/softmax_regression/report.html"
    assert first.select_one(".students a")["href"] == "alice/preliminaries/report.html"


def test_summary_loads_nothing_external(tmp_path: Path, perfect: Result, broken: Result) -> None:
    path = tmp_path / "summary.html"
    write_summary([perfect, broken], path)
    soup = _soup(path.read_text(encoding="utf-8"))

    assert soup.find_all(["script", "link", "img", "iframe"]) == []
    for tag in soup.find_all(True):
        for attribute in ("src", "href", "xlink:href"):
            value = tag.get(attribute, "")
            assert not value.startswith(("http:", "https:", "//")), (tag.name, value)
    assert "url(http" not in str(soup)


def test_summary_of_nobody() -> None:
    soup = _soup(render_summary([]))
    assert soup.select_one("#count").get_text() == "No submissions were graded."
    assert soup.select_one(".students") is None


def test_grades_csv(tmp_path: Path, perfect: Result, broken: Result) -> None:
    path = tmp_path / "grades.csv"
    early = _result("alice", [_test("normal.matches", "normal", 1.0)], "preliminaries")
    write_grades_csv([broken, perfect, early], path)

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == [
        "student",
        "assignment",
        "score",
        "max_score",
        "earned",
        "adjustment",
        "missing",
        "softmax_rows_sum_to_one",
        "held_out_accuracy",
        "cross_entropy_value",
        "normal.matches",
        "epoch.run ratio",
    ]
    first, alice, bob = rows  # grouped by assignment, then by student
    assert (first["student"], first["assignment"], first["normal.matches"]) == \
        ("alice", "preliminaries", "1")
    assert first["softmax_rows_sum_to_one"] == ""
    assert alice["assignment"] == bob["assignment"] == "softmax_regression"
    assert (alice["student"], float(alice["score"]), float(alice["max_score"])) == ("alice", 3, 3)
    assert float(alice["softmax_rows_sum_to_one"]) == 2.0
    assert alice["held_out_accuracy"] == ""
    assert float(alice["epoch.run ratio"]) == 2.05
    assert (bob["student"], float(bob["score"]), bob["held_out_accuracy"]) == ("bob", 0.5, "0.5")
    assert bob["cross_entropy_value"] == ""
    assert bob["epoch.run ratio"] == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "not measured"), (0.4213, "0.42 s"), (12.34, "12.3 s"), (125.4, "2 min 05 s")],
)
def test_format_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("points", "text"), [(2.0, "2"), (2.5, "2.5"), (1 / 3, "0.33"), (-0.0, "0")]
)
def test_format_points(points: float, text: str) -> None:
    assert format_points(points) == text


# On real graded submissions: the class of conftest.graded_class.

def _page(out: Path, student: str) -> BeautifulSoup:
    return _soup((out / student / "linear_networks" / "report.html").read_text(encoding="utf-8"))


def test_a_failing_report_starts_with_what_to_fix_first(graded_class) -> None:
    _, _, out = graded_class
    carol = _page(out, "carol")
    block = carol.select_one("#fix-first")
    assert block["data-exercise"] == "softmax"
    assert "the columns sum to 1 instead of the rows" in block.get_text()
    assert block.find_previous("section", id="tests") is None  # above every exercise
    assert carol.select_one("#banner") is None
    assert "softmax_training" in block.select_one(".others").get_text()


def test_passing_exercises_are_folded_and_failing_ones_open(graded_class) -> None:
    _, _, out = graded_class
    sections = {section["data-exercise"]: section
                for section in _page(out, "carol").select("details.exercise-section")}
    assert sections["softmax"].has_attr("open") and sections["softmax_training"].has_attr("open")
    assert not sections["normal"].has_attr("open")
    softmax = [t for t in load_result(out / "carol" / "linear_networks" / "results.json").tests
               if t.exercise == "softmax"]
    tally = f"{sum(t.passed for t in softmax)}/{len(softmax)} passed"
    assert tally in sections["softmax"].summary.get_text()
    assert _page(out, "alice").select_one("#all-passed") is not None
    assert not any(s.has_attr("open") for s in _page(out, "alice").select("details"))


def test_the_timed_epoch_shows_no_success_when_its_mark_failed(graded_class) -> None:
    """carol's epoch is within the time limit, but earns no speed mark: it does not train."""
    _, _, out = graded_class
    carol, alice = _page(out, "carol"), _page(out, "alice")
    assert not _row(carol, "softmax_training.epoch_is_fast_enough")["class"].count("pass")
    row = carol.select_one("#timing [data-step='epoch.run']")
    assert row["data-verdict"] == "fail" and row.select(".badge.pass") == []
    assert "no speed mark" in row.get_text()
    mark = next(t for t in load_result(out / "carol" / "linear_networks" / "results.json").tests
                if t.name == "softmax_training.epoch_is_fast_enough")
    assert row.select_one(".timing-reason").get_text() == f"{mark.name}: {mark.message}"
    assert alice.select_one("#timing [data-step='epoch.run']")["data-verdict"] == "pass"


def test_expected_and_got_say_what_they_show(graded_class) -> None:
    _, _, out = graded_class
    carol = load_result(out / "carol" / "linear_networks" / "results.json")
    tensors = [t for t in carol.tests if not t.passed and not t.hidden and t.expected and t.got
               and t.expected.startswith("tensor shape") and t.got.startswith("tensor shape")]
    assert tensors
    page = _page(out, "carol")
    for test in tensors:
        labels = [h4.get_text() for h4 in _row(page, test.name).select(".compare h4")]
        shape = test.got.split(" ")[2]
        assert labels[1].startswith(f"Got: a tensor of shape {shape}"), labels
        assert labels[0].startswith("Expected: a tensor of shape"), labels
    raised = _page(out, "bob").select_one("pre.got").find_previous("h4").get_text()
    assert raised == "Got: the error it raised"


def test_a_blank_notebook_gets_one_banner_and_one_traceback_per_error(graded_class) -> None:
    _, _, out = graded_class
    bob = _page(out, "bob")
    banner = bob.select_one("#banner")
    assert banner["data-cause"] == "blank" and bob.select_one("#fix-first") is None
    assert "NotImplementedError" in banner.get_text()
    assert not any(s.has_attr("open") for s in bob.select("details.exercise-section"))
    shown = [pre.get_text() for pre in bob.select("pre.got")]
    assert shown and len(shown) == len(set(shown))  # each traceback once
    repeats = bob.select(".same-as a")
    assert repeats and all(bob.find(id=a["href"][1:]) is not None for a in repeats)


def test_an_unreadable_notebook_gets_a_banner_not_71_rows_of_it(graded_class) -> None:
    _, _, out = graded_class
    banner = _page(out, "dave").select_one("#banner")
    assert (banner["data-cause"], banner.get_text().count("NotJSONError")) == ("unreadable", 1)
    assert "dave.ipynb is not a readable notebook" in banner.get_text()


def test_students_see_no_absolute_path_of_the_instructor(graded_class) -> None:
    _, submissions, out = graded_class
    private = [str(submissions), str(Path(__file__).resolve().parent.parent), "/tmp/grade-"]
    for student in ("alice", "bob", "carol", "dave", "erin"):
        html = (out / student / "linear_networks" / "report.html").read_text(encoding="utf-8")
        assert not [root for root in private if root in html], student
    assert _page(out, "bob").select_one(".meta code").get_text() == "bob.ipynb"


def test_the_copier_is_paired_with_the_one_copied_and_the_solution_with_no_one(graded_class):
    """erin renamed and reformatted carol's own work: that pair is flagged; alice, who
    handed in the reference, shares only what is not evidence."""
    _, _, out = graded_class
    rows = list(csv.DictReader((out / "similarity.csv").open(encoding="utf-8")))
    assert [(row["student"], row["other_student"]) for row in rows] == [("carol", "erin")]
    looks = {li["data-student"]: li.get_text() for li in
             _soup((out / "summary.html").read_text(encoding="utf-8")).select(".needs-a-look li")}
    assert "similar to" in looks["erin"] and "similar to" not in looks.get("alice", "")

def test_outputs_are_readable_by_the_group(graded_class) -> None:
    _, _, out = graded_class
    for name in ("grades.csv", "gradebook.csv", "similarity.csv", "summary.html",
                 "alice/linear_networks/report.html", "alice/linear_networks/results.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_the_summary_rolls_up_by_exercise_and_counts_shared_failures() -> None:
    columns = "the columns sum to 1 instead of the rows"
    results = [
        _result(name, [_test("softmax.values", "softmax", 0, 2, message=columns),
                       _test("softmax.rows", "softmax", 1, 1),
                       _test("loss.value", "loss", 0, 1,
                             message=f"loss is {value}, above 0.5")])
        for name, value in (("ann", 0.61), ("ben", 0.72))]
    results.append(_result("cy", [_test("softmax.values", "softmax", 2, 2),
                                  _test("softmax.rows", "softmax", 1, 1),
                                  _test("loss.value", "loss", 1, 1)]))
    blank = "not implemented yet: NotImplementedError"
    results.append(_result("dee", [_test(n, e, 0, message=blank, cause=Cause.BLANK)
                                   for n, e in (("softmax.values", "softmax"),
                                                ("softmax.rows", "softmax"),
                                                ("loss.value", "loss"))]))
    section = _soup(render_summary(results)).select_one("section.assignment")

    failures = [(li["data-count"], li.select_one(".message").get_text())
                for li in section.select(".common-failures li")]
    # numbers aside, the same message; dee, blank, is listed to look at instead
    assert sorted(failures) == [("2", "loss is 0.61, above 0.5"), ("2", columns)]
    looks = {li["data-student"]: li.get_text() for li in section.select(".needs-a-look li")}
    assert list(looks) == ["dee"] and "Nothing is implemented yet" in looks["dee"]
    ann = {td["data-exercise"]: td["data-fraction"]
           for td in section.select('.heatmap tr[data-student="ann"] td.cell')}
    assert ann == {"softmax": "0.33", "loss": "0.00"}
    rates = [(tr["data-exercise"], tr.select("td")[1].get_text())
             for tr in section.select(".exercise-rates-table tr[data-exercise]")]
    assert rates == [("loss", "1 / 4"), ("softmax", "1 / 4")]  # loss earns fewer points


def test_a_timing_judged_on_cpu_time_shows_the_seconds_it_compared(perfect: Result) -> None:
    """The ratio is the CPU times': the columns beside it show those, not the wall clock
    (12.3 s against 6.00 s would read 2.05×, next to a ratio of 1.50×)."""
    perfect.timings[0] = Timing("epoch.run", "cpu", student_seconds=12.3,
                                reference_seconds=6.0, max_ratio=3.0,
                                student_cpu_seconds=3.0, reference_cpu_seconds=2.0,
                                student_runnable_seconds=12.3)
    row = _soup(render_report(perfect)).select_one("#timing [data-step='epoch.run']")
    text = row.get_text(" ", strip=True)
    assert "3.00 s (CPU time)" in text and "2.00 s" in text and "1.50×" in text, text
    assert "12.3 s" not in text


def test_the_footer_is_an_element(perfect: Result) -> None:
    page = render_report(perfect)
    assert "Generated by grader" in _soup(page).select_one("footer").get_text()
    assert "\n>Generated" not in page


# Missing work, adjustments, not-judged tests, names: synthetic results, no kernel.

MISSING = "no notebook softmax_regression.ipynb was handed in"


def _missing(student: str, **kw) -> Result:
    return _result(student, [], missing=MISSING, possible=4.0, **kw)


def test_work_not_handed_in_is_one_short_page_not_failed_tests() -> None:
    soup = _soup(render_report(_missing("dave", name="José Núñez")))

    assert soup.h1.get_text() == "Report for José Núñez: softmax_regression"
    assert soup.title.get_text() == "Report: José Núñez, softmax_regression"
    block = soup.select_one("#missing")
    assert "No notebook for softmax_regression was handed in" in block.get_text()
    assert MISSING in block.select_one(".message").get_text()
    assert soup.select("tr.test, #tests, #banner, #fix-first, #total") == []
    assert "failed" not in soup.get_text() and "hand the notebook in again" not in soup.get_text()


def test_a_students_name_is_shown_as_given_and_its_control_characters_escaped(
        perfect: Result) -> None:
    perfect.name = "李雷 \u202eevil"
    title = _soup(render_report(perfect)).h1.get_text()
    assert title == "Report for 李雷 \\u202eevil: softmax_regression"


def test_the_report_shows_each_adjustment_with_its_reason(broken: Result) -> None:
    broken.adjustments = [
        Adjustment(OVERRIDE, "softmax_rows_sum_to_one", 1.5, "regraded by hand: rows fine"),
        Adjustment(LATE, None, 0.5, "2 days late, 25% a day"),
    ]
    broken.lateness = Lateness(marked_late=True, submitted_at="2024-03-03T10:00:00+01:00")
    soup = _soup(render_report(broken))

    assert soup.select_one("#total").get_text() == "1.5 / 4"  # 0.5 + 1.5 - 0.5
    assert soup.select_one("#earned").get_text(" ", strip=True).startswith(
        "The tests earned 2 / 4")
    items = {li["data-kind"]: li.get_text(" ", strip=True)
             for li in soup.select("#adjustments li")}
    assert items["late"] == "Late penalty: −0.5 points: 2 days late, 25% a day"
    assert "set to 1.5 points by the instructor" in items["override"]
    assert "regraded by hand: rows fine" in items["override"]
    assert "Handed in late, at 2024-03-03T10:00:00+01:00" in soup.select_one("#lateness").text
    row = _row(soup, "softmax_rows_sum_to_one")
    assert row.select_one("td.num").get_text(" ", strip=True) == "0 1.5 / 2"
    assert row.select_one(".override .reason").get_text() == "regraded by hand: rows fine"
    broken.adjustments = [Adjustment(OVERRIDE, None, 4.0, "excused")]
    total = _soup(render_report(broken)).select_one("#adjustments li").get_text(" ", strip=True)
    assert total == "Total set to 4 points by the instructor: excused"


NOT_JUDGED_MESSAGE = "not judged: a shape alone is no softmax, see softmax.values"


def _with_a_consequence(student: str, value: float) -> Result:
    """Fails softmax.values on its own account; softmax.shape is its consequence."""
    return _result(student, [
        _test("softmax.values", "softmax", 0, 2, message=f"off by {value} on row 3"),
        _test("softmax.shape", "softmax", 0, 1, message=NOT_JUDGED_MESSAGE,
              state=NOT_JUDGED),
        _test("training.speed", "training", 0, 1, message=NOT_JUDGED_MESSAGE,
              state=NOT_JUDGED),
        _test("loss.value", "loss", 1, 1),
    ])


def test_a_test_left_unjudged_is_neither_passed_nor_failed() -> None:
    soup = _soup(render_report(_with_a_consequence("ann", 0.5)))

    row = _row(soup, "softmax.shape")
    assert "not-judged" in row["class"] and "fail" not in row["class"]
    assert row.select_one(".badge").get_text() == "not judged"
    assert soup.select_one("#fix-first")["data-test"] == "softmax.values"
    training = soup.select_one('details[data-exercise="training"]')
    assert not training.has_attr("open") and "not-judged" in training["class"]
    assert training.select_one(".badge.pass") is None  # 0/1 passed is not shown green
    assert "1 not judged" in training.summary.get_text()
    assert soup.select_one("#fix-first .others") is None  # no other exercise failed


def test_the_summary_leaves_missing_work_out_of_every_figure() -> None:
    """Four students, two of whom handed nothing in: the figures are the other two's."""
    handed = [_result("ann", [_test("softmax.values", "softmax", 2, 2),
                              _test("loss.value", "loss", 2, 2)]),
              _result("ben", [_test("softmax.values", "softmax", 0, 2, message="wrong"),
                              _test("loss.value", "loss", 2, 2)])]
    results = [*handed, _missing("cy", name="Zoë"), _missing("dee")]
    section = _soup(render_summary(results)).select_one("section.assignment")

    def stat(name: str) -> str:
        return section.select_one(f".stats .{name} strong").get_text()

    assert (stat("count"), stat("missing"), stat("to-look")) == ("2", "2", "0")
    assert (stat("mean"), stat("median")) == ("3 / 4", "3 / 4")  # not 1.5 and 1
    assert section.select(".needs-a-look li") == []
    assert section.select_one(".histogram svg title").get_text() == \
        "Histogram of 2 scores out of 4"
    rates = {tr["data-exercise"]: tr.select("td")[1].get_text()
             for tr in section.select(".exercise-rates-table tr[data-exercise]")}
    assert rates == {"softmax": "1 / 2", "loss": "2 / 2"}
    zoe = section.select_one('.heatmap tr[data-student="cy"]')
    assert zoe.th.get_text() == "Zoë" and "missing" in zoe["class"]
    assert zoe.select_one("td.cell.missing").get_text() == "not handed in"
    assert zoe.select("td.cell[style]") == []  # grey, not red at 0%
    students = {tr["data-student"]: [td.get_text() for td in tr.find_all("td")]
                for tr in section.select(".students tbody tr")}
    assert students["cy"] == ["Zoë", "—", "4", "not handed in"]


def test_a_class_where_nobody_handed_in_has_no_figures() -> None:
    section = _soup(render_summary([_missing("cy"), _missing("dee")])).select_one(
        "section.assignment")
    assert section.select_one(".missing strong").get_text() == "2"
    assert section.select(".mean, .median, .histogram, .pass-rates") == []


def test_the_heat_map_shows_unjudged_exercises_grey() -> None:
    section = _soup(render_summary([_with_a_consequence("ann", 0.5)])).select_one(
        "section.assignment")
    cells = {td["data-exercise"]: td for td in section.select(".heatmap td.cell")}
    assert "not-judged" in cells["training"]["class"] and not cells["training"].get("style")
    assert cells["training"].get_text() == "not judged"
    assert "1 not judged" in cells["softmax"]["title"]
    failed = section.select_one('.students tr[data-student="ann"]').find_all("td")[-1]
    assert failed.get_text() == "1"  # softmax.values alone


def test_common_failures_merge_one_students_numbers_and_leave_consequences_out() -> None:
    section = _soup(render_summary([_with_a_consequence("ann", 0.5),
                                    _with_a_consequence("ben", 0.75)])).select_one(
        "section.assignment")
    [failure] = section.select(".common-failures li")  # no not-judged entry
    assert failure["data-count"] == "2"
    assert failure.select_one(".example").get_text() == "for example"
    assert failure.select_one(".message").get_text() == "off by 0.5 on row 3"
    assert "2 wordings" in failure.select_one(".meta").get_text()


def test_summary_lists_show_display_names(perfect: Result) -> None:
    blank = _result("bo", [_test("softmax.values", "softmax", 0, 2,
                                 message="not implemented yet: NotImplementedError")],
                    name="Bô Đặng")
    perfect.name = "Ålice Ærø"
    section = _soup(render_summary([perfect, blank])).select_one("section.assignment")
    assert section.select_one('.needs-a-look li[data-student="bo"] a').get_text() == "Bô Đặng"
    assert section.select_one('.heatmap tr[data-student="alice"] th').get_text() == "Ålice Ærø"
    assert section.select_one('.students tr[data-student="alice"] a')["href"] == \
        "alice/softmax_regression/report.html"


def test_grades_csv_keeps_the_verdict_the_adjustments_and_missing_work_apart(
        tmp_path: Path, broken: Result) -> None:
    broken.adjustments = [Adjustment(OVERRIDE, "softmax_rows_sum_to_one", 2.0, "regraded"),
                          Adjustment(LATE, None, 1.0, "1 day late")]
    write_grades_csv([broken, _missing("dee")], tmp_path / "grades.csv")
    with (tmp_path / "grades.csv").open(newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}

    bob, dee = rows["bob"], rows["dee"]
    assert (bob["softmax_rows_sum_to_one"], bob["earned"], bob["score"]) == ("0", "2.5", "1.5")
    assert bob["adjustment"] == \
        "softmax_rows_sum_to_one set to 2: regraded; late: -1: 1 day late"
    assert bob["missing"] == ""
    assert (dee["score"], dee["earned"], dee["max_score"], dee["missing"]) == \
        ("", "", "4", MISSING)
    assert dee["softmax_rows_sum_to_one"] == dee["held_out_accuracy"] == ""


@pytest.mark.parametrize(("text", "limit", "shortened"), [
    ("the values expected and the values got differ", 30, "the values expected and the…"),
    ("short enough", 30, "short enough"),
    ("x" * 50, 10, "x" * 9 + "…"),  # one long word is cut where it must be
    ("softmax fails rows (expected 1, got 3), see softmax", 26, "softmax fails rows…"),
])
def test_shorten_cuts_at_a_word_boundary(text: str, limit: int, shortened: str) -> None:
    assert shorten(text, limit) == shortened
    assert len(shorten(text, limit)) <= limit


def test_the_timing_axis_reads_plain_ratios() -> None:
    svg = _soup(timing_spread_svg({"epoch.run": [0.8, 1.5, 2.2, 7.0]}, {"epoch.run": 3.0}))
    labels = [text.get_text() for text in svg.find_all("text")]
    assert {"1×", "2×", "5×"} <= set(labels)
    assert not [label for label in labels if "10" in label or "$" in label]


def test_a_class_of_one_has_its_figures_but_no_charts_of_a_spread() -> None:
    """One submission (a student's check, a TA's regrade): its row and its exercise table,
    no histogram or pass-rate chart of a single result."""
    section = _soup(render_summary([_result("ann", [
        _test("softmax.values", "softmax", 2, 2), _test("loss.value", "loss", 0, 2)])])
    ).select_one("section.assignment")
    assert section.select("svg") == []
    assert section.select(".histogram, .pass-rates") == []
    rates = {tr["data-exercise"]: tr.select("td")[1].get_text()
             for tr in section.select(".exercise-rates-table tr[data-exercise]")}
    assert rates == {"softmax": "1 / 1", "loss": "0 / 1"}


def test_a_report_and_a_class_of_ones_summary_load_no_matplotlib(tmp_path: Path,
                                                                  perfect: Result) -> None:
    """matplotlib's import (0.4 s) and its drawing (0.13 s a chart) were on the path of a
    student waiting for feedback: a report's curves are drawn without it, a class of one
    draws no class chart, and an exercise's probes import pyplot only to run. A class's
    summary still draws its charts with it."""
    save_result(perfect, tmp_path / "results.json")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from grader.authoring.exercise import available\n"
        "from grader.grading.results import load_result\n"
        "from grader.outputs.report import render_report, render_summary\n"
        "available()\n"
        f"result = load_result(Path({str(tmp_path / 'results.json')!r}))\n"
        "assert 'svg' in render_report(result) and render_summary([result])\n"
        "print('matplotlib' in sys.modules)\n"
        "render_summary([result] * 3)\n"
        "print('matplotlib' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr
