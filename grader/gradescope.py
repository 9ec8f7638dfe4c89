"""Gradescope's container autograder: grade the one submission in /autograder/submission
and write /autograder/results/results.json in Gradescope's format.

`run_autograder` calls `python -m grader.gradescope`; `--root` points elsewhere so the same
entry point runs against any folder laid out the same way (a test does exactly that).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from grader import course
from grader.config import load_settings
from grader.exercises import all_test_names
from grader.grade import grade_submission
from grader.report import render_report
from grader.results import Result, TestResult, save_result, write_atomically
from grader.submissions import Submission, notebooks_in

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


def gradescope_results(result: Result, seconds: float) -> dict:
    tests = [test_entry(test, number) for number, test in enumerate(result.tests, start=1)]
    return {
        "score": result.score,
        "execution_time": round(seconds, 1),
        "output": render_report(result),
        "output_format": "html",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def run(root: Path, config: Path) -> dict:
    """Grade root/submission, write root/results/results.json (and the report beside it)."""
    started = time.perf_counter()
    settings = load_settings(config, all_test_names())
    folder = root / "submission"
    submission = Submission("submission", folder, notebooks_in(folder))
    if not submission.notebooks:
        submission.problems.append("the submission holds no notebook (.ipynb)")
    result = grade_submission(submission, settings)
    results_dir = root / "results"
    data = gradescope_results(result, time.perf_counter() - started)
    write_atomically(results_dir / "results.json", json.dumps(data, indent=2))
    write_atomically(results_dir / "report.html", data["output"])
    save_result(result, results_dir / "grader-results.json")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--config", type=Path, default=None)
    arguments = parser.parse_args()
    data = run(arguments.root, arguments.config or course.current().default_config)
    print(f"score {data['score']:g} over {len(data['tests'])} tests")


if __name__ == "__main__":
    main()
