"""The container autograder's entry point, run for real against a folder laid out like
/autograder (no Docker engine exists here)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import NOTEBOOK, TEST_COURSE, with_functions, write_notebook

from grader.paths import PACKAGE

ENTRY = PACKAGE.parent / "autograder" / "run_autograder"


@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    root = tmp_path_factory.mktemp("autograder")
    write_notebook(with_functions({"accuracy": "def accuracy(y_hat, y):\n    return 0.5\n"}),
                   root / "submission" / "homework" / "my_notebook.ipynb")
    config = root / f"{NOTEBOOK}.toml"  # the test course's assignment, a shorter time limit
    config.write_text((TEST_COURSE.assignments / config.name).read_text().replace(
        "total_timeout = 600.0", "total_timeout = 240.0"))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), GRADER_CONFIG=str(config))
    completed = subprocess.run([str(ENTRY)], env=env, capture_output=True, text=True,
                               timeout=600)
    return completed, root


def test_the_entry_point_exits_cleanly(autograded):
    completed, _ = autograded
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "score" in completed.stdout


def test_results_json_has_gradescope_fields(autograded):
    _, root = autograded
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["execution_time"] > 0 and data["output_format"] == "html"
    assert "<html" in data["output"].lower()
    for test in data["tests"]:
        assert {"name", "score", "max_score", "output", "visibility", "status"} <= set(test)
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    assert 0 < data["score"] < sum(t["max_score"] for t in data["tests"])


def test_only_the_wrong_function_loses_points(autograded):
    _, root = autograded
    data = json.loads((root / "results" / "results.json").read_text())
    failed = {t["name"] for t in data["tests"] if t["status"] == "failed"}
    assert failed and all(name.startswith(("accuracy.", "softmax_training.")) for name in failed)


def test_hidden_tests_wait_for_publication_and_hide_their_values(autograded):
    _, root = autograded
    tests = {t["name"]: t for t in json.loads((root / "results" / "results.json")
                                                .read_text())["tests"]}
    tie = tests["accuracy.breaks_ties_like_argmax"]
    assert tie["visibility"] == "after_published" and "expected:" not in tie["output"]
    visible = tests["accuracy.accuracy_matches_the_reference"]
    assert visible["visibility"] == "visible" and "expected:" in visible["output"]


def test_the_report_is_attached(autograded):
    _, root = autograded
    assert (root / "results" / "report.html").read_text().count('class="test') > 10
