"""Gradescope's container autograder: grade the one submission in /autograder/submission
on the course's assignments (GRADER_ASSIGNMENT limits them) and write
/autograder/results/results.json in Gradescope's format.

`run_autograder` calls `python -m grader.gradescope`; `--root` points elsewhere so the same
entry point runs against any folder laid out the same way (a test does exactly that).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from grader import course
from grader.config import Settings, load_assignments
from grader.grade import grade_submission
from grader.report import render_report
from grader.results import Result, TestResult, save_result, write_atomically
from grader.submissions import Submission, match_notebooks, notebooks_in

VISIBLE, HIDDEN = "visible", "after_published"


def test_entry(test: TestResult, number: int) -> dict:
    """One of Gradescope's test cases; hidden tests show only after grades are published."""
    output = test.message
    if not test.hidden:
        output += "".join(f"\n{label}: {value}" for label, value in
                          (("expected", test.expected), ("got", test.got)) if value)
    return {
        "name": test.name,
        "number": str(number),
        "score": test.points,
        "max_score": test.max_points,
        "status": "passed" if test.passed else "failed",
        "output": output,
        "visibility": HIDDEN if test.hidden else VISIBLE,
    }


def gradescope_results(results: list[Result], seconds: float) -> dict:
    """Gradescope's results.json for the assignments graded: their tests in order, the
    reports one after the other."""
    tests = [test_entry(test, number) for number, test in
             enumerate((test for result in results for test in result.tests), start=1)]
    return {
        "score": round(sum(result.score for result in results), 4),
        "execution_time": round(seconds, 1),
        "output": "\n".join(render_report(result) for result in results),
        "output_format": "html",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def run(root: Path, assignments: list[Settings]) -> dict:
    """Grade root/submission on each assignment, write root/results/results.json (and the
    reports beside it)."""
    started = time.perf_counter()
    folder = root / "submission"
    submission = Submission("submission", folder, notebooks_in(folder))
    if not submission.notebooks:
        submission.problems.append("the submission holds no notebook (.ipynb)")
    matched = match_notebooks(submission, [settings.notebook for settings in assignments])
    results = [grade_submission(submission, settings, matched=matched)
               for settings in assignments]
    results_dir = root / "results"
    data = gradescope_results(results, time.perf_counter() - started)
    write_atomically(results_dir / "results.json", json.dumps(data, indent=2))
    write_atomically(results_dir / "report.html", data["output"])
    for result in results:
        save_result(result, results_dir / f"grader-results-{result.assignment}.json")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--config", type=Path, default=None,
                        help="one assignment's settings (default: the course's, all)")
    parser.add_argument("--assignment", action="append", default=[],
                        help="only this assignment (repeatable)")
    arguments = parser.parse_args()
    files = [arguments.config] if arguments.config else course.current().assignment_files()
    data = run(arguments.root, load_assignments(files, tuple(arguments.assignment)))
    print(f"score {data['score']:g} over {len(data['tests'])} tests")


if __name__ == "__main__":
    main()
