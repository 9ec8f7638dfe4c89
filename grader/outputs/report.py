"""HTML reports, the class summary and grades.csv, all read from Result objects only.

Tracebacks, messages and cell sources come from student code and are hostile: the
Jinja environment escapes everything, and only the SVG drawn by grader.outputs.curves and
grader.outputs.charts is marked safe. The class charts' module, and matplotlib with it, is
imported only where a summary draws them: a report is written for every submission, on
the path of a student waiting for it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from grader.grading import wording
from grader.grading.results import (
    NOT_JUDGED,
    OVERRIDE,
    Adjustment,
    Curve,
    Result,
    TestResult,
    Timing,
    write_atomically,
)
from grader.outputs.classview import (
    MIN_CHARTED,
    SHOWN_PAIRS,
    ExerciseRate,
    TimingSpread,
    common_failures,
    exercise_names,
    exercise_rates,
    handed_in,
    heat_map,
    needing_a_look,
    timing_spread,
)
from grader.outputs.curves import curves_svg
from grader.outputs.diagnosis import (
    common_cause,
    exercise_scores,
    first_problem,
    private_roots,
    relative_names,
)
from grader.paths import TEMPLATES
from grader.students.identity import shown

if TYPE_CHECKING:
    from grader.outputs.similarity import SimilarPair

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and
# two-byte escapes: what IPython and friends write into tracebacks.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove terminal escape codes, which would show up as garbage in HTML."""
    return _ANSI.sub("", text)


def format_seconds(seconds: float | None) -> str:
    """Seconds for people: '0.42 s', '12.3 s', '2 min 05 s'; None is 'not measured'."""
    if seconds is None:
        return wording.NOT_MEASURED
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def format_points(points: float) -> str:
    """Points without float noise: 2.0 is '2', 1/3 is '0.33'."""
    return f"{round(points, 2) + 0.0:.10g}"  # + 0.0 turns -0.0 into 0.0


def verdict(test: TestResult) -> str:
    """A test's verdict as the report and its styles name it: a test an earlier failure left
    unjudged is neither passed nor failed."""
    if test.state == NOT_JUDGED:
        return "not-judged"
    return "pass" if test.passed else "fail"


def seed_tag(seed: int) -> str:
    """A seed as the report shows it: enough to tell two runs apart, useless for drawing the
    hidden inputs again (the report goes to the student; results.json keeps the seed)."""
    return "#" + hashlib.sha256(str(seed).encode()).hexdigest()[:10]


TENSOR_TEXT = re.compile(r"^tensor shape (?P<shape>\([^)]*\)) (?P<dtype>\S+): ")


def shown_as(text: str) -> str:
    """What an expected or got text holds, in words: checks write tensors as a shape, a
    dtype and their first values, flattened."""
    if text.startswith("Traceback"):
        return "the error it raised"
    match = TENSOR_TEXT.match(text)
    if match is None:
        return ""
    more = ", its first 8 values flattened" if text.rstrip().endswith("…") else ""
    return f"a tensor of shape {match['shape']}, {match['dtype'].removeprefix('torch.')}{more}"


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
                       seed_tag=seed_tag, md=markdown_text, shown_as=shown_as, person=shown,
                       verdict=verdict)
    env.globals["words"] = wording  # the generic phrases, said once in grader/grading/wording.py
    return env


ENV = _environment()


def _test_names(results: list[Result]) -> list[str]:
    """Every test name across results, in the order tests first appear: a stable column order."""
    return list(dict.fromkeys(test.name for result in results for test in result.tests))


def _by_exercise(tests: list[TestResult]) -> dict[str, list[TestResult]]:
    """Tests grouped by exercise, keeping the order the grader ran them in."""
    return {exercise.name: exercise.tests for exercise in exercise_scores(tests)}


def repeated_from(tests: list[TestResult]) -> dict[str, str]:
    """Per test whose expected and got an earlier test already showed, that earlier test:
    one traceback of a blank function is shown once, not under each of its tests."""
    first: dict[tuple, str] = {}
    repeats = {}
    for test in tests:
        if test.hidden or (test.expected is None and test.got is None):
            continue
        key = (test.expected, test.got)
        if key in first:
            repeats[test.name] = first[key]
        else:
            first[key] = test.name
    return repeats


@dataclass(frozen=True)
class TimingVerdict:
    """A timed step and its verdict, which is the speed mark's: an epoch within the limit
    that earned no mark (it did not train) is not shown as a success."""

    timing: Timing
    verdict: str  # pass, fail, none
    label: str
    reason: str = ""


def speed_marks(result: Result) -> list[TestResult]:
    """The tests that read a timing: the exercises' checks declare it."""
    from grader.authoring.exercise import available  # the checks, with torch: only where one grades

    timed = {check.full_name for exercise in available().values()
             for check in exercise.checks if check.timed}
    return [test for test in result.tests if test.name in timed]


def timing_verdicts(result: Result) -> list[TimingVerdict]:
    unmarked = [test for test in speed_marks(result) if not test.passed] \
        if result.timings else []
    verdicts = []
    for timing in result.timings:
        if timing.ratio is None:
            verdicts.append(TimingVerdict(timing, "none", wording.NOT_MEASURED))
        elif timing.ratio > timing.max_ratio:
            verdicts.append(TimingVerdict(timing, "fail", "too slow"))
        elif unmarked:
            verdicts.append(TimingVerdict(timing, "fail", "no speed mark", "; ".join(
                f"{test.name}: {test.message}" for test in unmarked)))
        else:
            verdicts.append(TimingVerdict(timing, "pass", "within limit"))
    return verdicts


def for_student(result: Result) -> Callable[[object], str]:
    """How any text a student reads is shown, in every output: no terminal escapes, and
    no path of the instructor's machine or of the kernel's work folder."""
    roots = private_roots(result)
    return lambda text: relative_names(strip_ansi(str(text)), roots)


def curves_by_exercise(result: Result) -> tuple[dict[str, list[Curve]], list[Curve]]:
    """Each exercise's curves, to show beside its tests, and the curves that name no
    exercise of the result. A curve is an exercise's if its name is the exercise's or
    starts with it and a colon ("train: validation loss", titled "validation loss" there)."""
    names = {test.exercise for test in result.tests}
    placed: dict[str, list[Curve]] = {}
    unplaced = []
    for curve in result.curves:
        home, _, title = curve.name.partition(": ")
        if home in names:
            placed.setdefault(home, []).append(replace(curve, name=title or home))
        else:
            unplaced.append(curve)
    return placed, unplaced


def test_overrides(result: Result) -> dict[str, Adjustment]:
    """Per test, the instructor's override of its points (the last one, as `earned`)."""
    return {a.test: a for a in result.adjustments if a.kind == OVERRIDE and a.test is not None}


def render_report(result: Result) -> str:
    """The page one student reads: what to fix first at the top, then each exercise as a
    section of its own (its training curves with it), folded where everything passed. Work
    not handed in is one short page, not a list of failed tests."""
    placed, unplaced = curves_by_exercise(result)
    return ENV.get_template("report.html.j2").render(
        result=result,
        source=Path(result.source).name,
        cause=common_cause(result),
        first=first_problem(result),
        exercises=exercise_scores(result.tests),
        repeated=repeated_from(result.tests),
        timings=timing_verdicts(result),
        relative=for_student(result),
        charts={name: Markup(curves_svg(curves)) for name, curves in placed.items()},
        chart=Markup(curves_svg(unplaced)),
        overrides=test_overrides(result),
    )


def report_path(out: Path, student: str, assignment: str) -> Path:
    return out / student / assignment / "report.html"


MARKDOWN = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
MARKDOWN.filters.update(ENV.filters)
MARKDOWN.globals.update(ENV.globals)


def render_markdown(result: Result, with_hidden: bool) -> str:
    """The report as Gradescope shows it (Markdown): without the hidden tests and, when
    there are any, without the total, unless `with_hidden` (after publication)."""
    tests = [t for t in result.tests if with_hidden or not t.hidden]
    return MARKDOWN.get_template("gradescope.md.j2").render(
        result=result, exercises=_by_exercise(tests), with_hidden=with_hidden,
        relative=for_student(result),
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


def adjustment_text(adjustment: Adjustment) -> str:
    """An adjustment in a few words with its reason, for grades.csv."""
    points = format_points(adjustment.points)
    if adjustment.kind == OVERRIDE:
        what = adjustment.test or "total"
        return f"{what} set to {points}: {adjustment.reason}"
    return f"late: -{points}: {adjustment.reason}"


def write_grades_csv(results: list[Result], path: Path) -> None:
    """One row per student and assignment for the gradebook, grouped by assignment; a test
    a row lacks (another assignment's) is an empty cell. The tests' cells keep the grader's
    verdict; `earned` is their sum with the instructor's overrides, `adjustment` says what
    changed it and why, and `score` is final. Work not handed in has empty cells and total,
    and says why in `missing`."""
    names = _test_names(results)
    steps = list(dict.fromkeys(t.step for result in results for t in result.timings))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "assignment", "score", "max_score", "earned", "adjustment",
                     "missing", *names, *(f"{step} ratio" for step in steps)])
    for result in [r for group in by_assignment(results).values() for r in group]:
        points = {test.name: format_points(test.points) for test in result.tests}
        ratios = {t.step: t.ratio for t in result.timings}
        unscored = not result.scored
        writer.writerow(
            [
                result.student,
                result.assignment,
                "" if unscored else format_points(result.score),
                format_points(result.max_score),
                "" if result.missing is not None else format_points(result.earned),
                "; ".join(adjustment_text(a) for a in result.adjustments),
                result.missing or "",
                *(points.get(name, "") for name in names),
                *("" if ratios.get(step) is None else round(ratios[step], 3) for step in steps),
            ]
        )
    write_atomically(path, buffer.getvalue())


def _pass_rates(results: list[Result]) -> dict[str, float]:
    """Per test, the share of the students who ran it that passed it, the hardest first
    (the results handed in: missing work has no tests)."""
    verdicts: dict[str, list[bool]] = {name: [] for name in _test_names(results)}
    for result in results:
        for test in result.tests:
            verdicts[test.name].append(test.passed)
    rates = {name: sum(passed) / len(passed) for name, passed in verdicts.items()}
    return dict(sorted(rates.items(), key=lambda item: item[1]))


def similar_to(pairs: list[SimilarPair]) -> dict[str, list[str]]:
    """Per student, the students a pair names them with."""
    others: dict[str, list[str]] = {}
    for pair in pairs:
        others.setdefault(pair.first, []).append(pair.second)
        others.setdefault(pair.second, []).append(pair.first)
    return others


def assignment_summary(results: list[Result], pairs: Sequence[SimilarPair]) -> dict:
    """One assignment's figures: the heat map, the hardest exercises, the shared failures,
    the submissions to open, the score and timing spread, the similar pairs. Work not
    handed in is counted, and left out of every figure of the work handed in."""
    handed = handed_in(results)
    scores = [result.score for result in handed]
    max_score = max((result.max_score for result in results), default=0.0)
    spread = timing_spread(handed)
    rates = exercise_rates(handed)
    # A spread of one result says nothing its row does not; drawing it took most of the
    # time a class of one spends on its summary.
    charts = (class_charts(handed, rates, spread, max_score) if len(handed) >= MIN_CHARTED
              else dict.fromkeys(CLASS_CHARTS, Markup("")))
    return {
        "results": results,
        "handed": len(handed),
        "missing": len(results) - len(handed),
        "max_score": max_score,
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "exercises": exercise_names(results),
        "heat_map": heat_map(results),
        "exercise_rates": rates,
        "common_failures": common_failures(handed),
        "look": needing_a_look(handed, similar_to(pairs)),
        "timing": spread,
        "pairs": pairs[:SHOWN_PAIRS],  # the rest are in similarity.csv
        "more_pairs": max(len(pairs) - SHOWN_PAIRS, 0),
        **charts,
    }


CLASS_CHARTS = ("exercise_chart", "timing_chart", "histogram", "pass_rates")


def class_charts(handed: list[Result], rates: list[ExerciseRate], spread: list[TimingSpread],
                 max_score: float) -> dict[str, Markup]:
    """The summary's charts of the work handed in, drawn with matplotlib, which is imported
    here only: a class of one draws none, and its one student waits on its summary."""
    from grader.outputs.charts import histogram_svg, pass_rates_svg, timing_spread_svg

    return {
        "exercise_chart": Markup(pass_rates_svg({r.name: r.rate for r in rates}, "exercise")),
        "timing_chart": Markup(timing_spread_svg({t.step: t.ratios for t in spread},
                                                 {t.step: t.max_ratio for t in spread})),
        "histogram": Markup(histogram_svg([result.score for result in handed], max_score)),
        "pass_rates": Markup(pass_rates_svg(_pass_rates(handed))),
    }


def heat_colour(fraction: float) -> str:
    """A cell's background: red at 0, amber at one half, green at 1."""
    hue = round(120 * min(max(fraction, 0.0), 1.0))
    return f"hsl({hue}, 70%, 82%)"


def render_summary(results: list[Result], pairs: Sequence[SimilarPair] = ()) -> str:
    """The class overview, by assignment, each linking to every report."""
    return ENV.get_template("summary.html.j2").render(
        assignments={name: assignment_summary(group, [p for p in pairs if p.assignment == name])
                     for name, group in by_assignment(results).items()},
        count=len({result.student for result in results}), heat_colour=heat_colour,
        names={result.student: result.shown_name for result in results})


def write_summary(results: list[Result], path: Path, pairs: Sequence[SimilarPair] = ()) -> None:
    write_atomically(path, render_summary(results, pairs))
