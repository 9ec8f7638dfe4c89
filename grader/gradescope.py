"""Gradescope's container autograder: grade the one submission in /autograder/submission
on the course's assignments (GRADER_ASSIGNMENT limits them) and write
/autograder/results/results.json in Gradescope's format.

`run_autograder` calls `python -m grader.gradescope`; `--root` points elsewhere so the same
entry point runs against any folder laid out the same way (a test does exactly that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from grader import course
from grader.config import Settings, load_assignments
from grader.grade import grade_submission
from grader.report import for_student, render_markdown, write_report
from grader.results import Result, TestResult, save_result, write_atomically
from grader.submissions import Submission, match_notebooks, notebooks_in

VISIBLE, HIDDEN = "visible", "after_published"
MAX_OUTPUT = 64_000  # characters an output keeps: results.json stays far below its limit


def capped(text: str) -> str:
    if len(text) <= MAX_OUTPUT:
        return text
    return text[:MAX_OUTPUT] + "\n\n… (cut: the grader's report holds the rest)"


def test_entry(test: TestResult, number: int, result: Result) -> dict:
    """One of Gradescope's test cases; hidden tests show only after grades are published,
    and never their values. Paths read as report.html shows them."""
    output = test.message
    if not test.hidden:
        output += "".join(f"\n{label}: {value}" for label, value in
                          (("expected", test.expected), ("got", test.got)) if value)
    output = for_student(result)(output)
    return {
        "name": test.name,
        "number": str(number),
        "score": test.points,
        "max_score": test.max_points,
        "status": "passed" if test.passed else "failed",
        "output": capped(output),
        "tags": [result.assignment, test.exercise],
        "visibility": HIDDEN if test.hidden else VISIBLE,
    }


def full_report(result: Result) -> dict:
    """The whole report, hidden tests included, as an entry students see once grades are
    published (it carries no score of its own)."""
    return {"name": f"{result.assignment}: full report", "output_format": "md",
            "output": capped(render_markdown(result, with_hidden=True)), "visibility": HIDDEN}


def leaderboard(results: list[Result]) -> list[dict]:
    """Each timed step's ratio to the reference: lower is faster."""
    return [{"name": f"{timing.step} time ratio", "value": round(timing.ratio, 3),
             "order": "asc"}
            for result in results for timing in result.timings if timing.ratio is not None]


def gradescope_results(results: list[Result], seconds: float) -> dict:
    """Gradescope's results.json for the assignments graded. What students see before
    grades are published holds no hidden result: the visible output leaves the hidden tests
    out, and the total too where any test is hidden."""
    tests = [test_entry(test, number, result) for number, (result, test) in
             enumerate(((r, t) for r in results for t in r.tests), start=1)]
    return {
        "score": round(sum(result.score for result in results), 4),
        "execution_time": round(seconds, 1),
        "output": capped("\n\n".join(render_markdown(r, with_hidden=False) for r in results)),
        "output_format": "md",
        "test_output_format": "text",
        "stdout_visibility": "hidden",
        "tests": tests + [full_report(result) for result in results],
        "leaderboard": leaderboard(results),
    }


class NotGraded(Exception):
    """A grader fault (a kernel that could not start): Gradescope gets no results.json, so
    it tells the student the autograder failed instead of posting a 0."""


def run(root: Path, assignments: list[Settings]) -> dict:
    """Grade root/submission on each assignment, write root/results/results.json (and the
    reports beside it); NotGraded, with no results.json, where any was a grader fault."""
    started = time.perf_counter()
    folder = root / "submission"
    submission = Submission("submission", folder, notebooks_in(folder))
    if not submission.notebooks:
        submission.problems.append("the submission holds no notebook (.ipynb)")
    matched = match_notebooks(submission, [settings.notebook for settings in assignments])
    results = [grade_submission(submission, settings, matched=matched)
               for settings in assignments]
    results_dir = root / "results"
    for result in results:  # for the instructor, beside Gradescope's copy
        write_report(result, results_dir / "reports")
        save_result(result, results_dir / "reports" / result.student / result.assignment
                    / "results.json")
    faults = [f"{result.assignment}: {result.fault}" for result in results if result.fault]
    if faults:
        raise NotGraded("; ".join(faults))
    data = gradescope_results(results, time.perf_counter() - started)
    write_atomically(results_dir / "results.json", json.dumps(data, indent=2))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--course", type=Path, default=None,
                        help="the course folder (default: the one in use)")
    parser.add_argument("--config", type=Path, default=None,
                        help="one assignment's settings (default: the course's, all)")
    parser.add_argument("--assignment", action="append", default=[],
                        help="only this assignment (repeatable)")
    arguments = parser.parse_args()
    if arguments.course is not None:
        course.use(arguments.course)
    files = [arguments.config] if arguments.config else course.current().assignment_files()
    try:
        data = run(arguments.root, load_assignments(files, tuple(arguments.assignment)))
    except NotGraded as fault:
        sys.exit(f"not graded, a grader fault (no score posted; regrade once it is fixed): "
                 f"{fault}")
    print(f"score {data['score']:g} over {len(data['tests'])} tests")


if __name__ == "__main__":
    main()
