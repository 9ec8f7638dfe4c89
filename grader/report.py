"""HTML reports, the class summary and grades.csv, all read from Result objects only.

Tracebacks, messages and cell sources come from student code and are hostile: the
Jinja environment escapes everything, and only the SVG drawn by grader.charts is
marked safe.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import statistics
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from grader.charts import curves_svg, histogram_svg, pass_rates_svg
from grader.paths import TEMPLATES
from grader.results import Result, TestResult, write_atomically

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and
# two-byte escapes: what IPython and friends write into tracebacks.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove terminal escape codes, which would show up as garbage in HTML."""
    return _ANSI.sub("", text)


def format_seconds(seconds: float | None) -> str:
    """Seconds for people: '0.42 s', '12.3 s', '2 min 05 s'; None is 'not measured'."""
    if seconds is None:
        return "not measured"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def format_points(points: float) -> str:
    """Points without float noise: 2.0 is '2', 1/3 is '0.33'."""
    return f"{round(points, 2) + 0.0:.10g}"  # + 0.0 turns -0.0 into 0.0


def seed_tag(seed: int) -> str:
    """A seed as the report shows it: enough to tell two runs apart, useless for drawing the
    hidden inputs again (the report goes to the student; results.json keeps the seed)."""
    return "#" + hashlib.sha256(str(seed).encode()).hexdigest()[:10]


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def markdown_text(text: str) -> str:
    """Text as Markdown shows it literally, on one line: a student's error message cannot
    add a link, an image or a heading to a page."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(seconds=format_seconds, points=format_points, strip_ansi=strip_ansi,
                       seed_tag=seed_tag, md=markdown_text)
    return env


ENV = _environment()


def _test_names(results: list[Result]) -> list[str]:
    """Every test name across results, in the order tests first appear: a stable column order."""
    return list(dict.fromkeys(test.name for result in results for test in result.tests))


def _by_exercise(tests: list[TestResult]) -> dict[str, list[TestResult]]:
    """Tests grouped by exercise, keeping the order the grader ran them in."""
    groups: dict[str, list[TestResult]] = {}
    for test in tests:
        groups.setdefault(test.exercise, []).append(test)
    return groups


def render_report(result: Result) -> str:
    """The page one student reads to see what passed, what failed and why."""
    return ENV.get_template("report.html.j2").render(
        result=result,
        exercises=_by_exercise(result.tests),
        chart=Markup(curves_svg(result.curves)),
    )


def report_path(out: Path, student: str, assignment: str) -> Path:
    return out / student / assignment / "report.html"


MARKDOWN = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
MARKDOWN.filters.update(ENV.filters)


def render_markdown(result: Result, with_hidden: bool) -> str:
    """The report as Gradescope shows it (Markdown): without the hidden tests and, when
    there are any, without the total, unless `with_hidden` (after publication)."""
    tests = [t for t in result.tests if with_hidden or not t.hidden]
    return MARKDOWN.get_template("gradescope.md.j2").render(
        result=result, exercises=_by_exercise(tests), with_hidden=with_hidden,
        any_hidden=any(t.hidden for t in result.tests),
        first_failure=next((t for t in tests if not t.passed), None))


def write_report(result: Result, out: Path) -> Path:
    path = report_path(out, result.student, result.assignment)
    write_atomically(path, render_report(result))
    return path


def by_assignment(results: list[Result]) -> dict[str, list[Result]]:
    """Results grouped by assignment (in name order), each group by student."""
    groups: dict[str, list[Result]] = {}
    for result in sorted(results, key=lambda r: (r.assignment, r.student)):
        groups.setdefault(result.assignment, []).append(result)
    return groups


def write_grades_csv(results: list[Result], path: Path) -> None:
    """One row per student and assignment for the gradebook, grouped by assignment; a test
    a row lacks (another assignment's) is an empty cell."""
    names = _test_names(results)
    steps = list(dict.fromkeys(t.step for result in results for t in result.timings))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "assignment", "score", "max_score", *names,
                     *(f"{step} ratio" for step in steps)])
    for result in [r for group in by_assignment(results).values() for r in group]:
        points = {test.name: format_points(test.points) for test in result.tests}
        ratios = {t.step: t.ratio for t in result.timings}
        writer.writerow(
            [
                result.student,
                result.assignment,
                format_points(result.score),
                format_points(result.max_score),
                *(points.get(name, "") for name in names),
                *("" if ratios.get(step) is None else round(ratios[step], 3) for step in steps),
            ]
        )
    write_atomically(path, buffer.getvalue())


def _pass_rates(results: list[Result]) -> dict[str, float]:
    """Per test, the share of the students who ran it that passed it."""
    verdicts: dict[str, list[bool]] = {name: [] for name in _test_names(results)}
    for result in results:
        for test in result.tests:
            verdicts[test.name].append(test.passed)
    return {name: sum(passed) / len(passed) for name, passed in verdicts.items()}


def assignment_summary(results: list[Result]) -> dict:
    """One assignment's figures: score distribution, pass rates, its students' results."""
    scores = [result.score for result in results]
    max_score = max((result.max_score for result in results), default=0.0)
    return {
        "results": results,
        "max_score": max_score,
        "mean": statistics.fmean(scores),
        "median": statistics.median(scores),
        "histogram": Markup(histogram_svg(scores, max_score)),
        "pass_rates": Markup(pass_rates_svg(_pass_rates(results))),
    }


def render_summary(results: list[Result]) -> str:
    """The class overview, by assignment: score distribution, pass rates and a link to
    every report."""
    return ENV.get_template("summary.html.j2").render(
        assignments={name: assignment_summary(group)
                     for name, group in by_assignment(results).items()},
        count=len({result.student for result in results}))


def write_summary(results: list[Result], path: Path) -> None:
    write_atomically(path, render_summary(results))
