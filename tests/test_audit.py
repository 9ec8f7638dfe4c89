"""`grade audit` (issue 25): mutants of the reference, graded by the real pipeline, tell how
many bugs each exercise's tests catch. A deliberately weak check in a course of one's own
lets a mutant through, which the audit names and --min-score fails on; the bundled sgd's
mutants are all caught (the regression bar); a likely equivalent mutant is told apart from
a survivor by its observations on other seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from conftest import (
    LENIENT,
    SOLUTION,
    course_of_our_own,
    grade_file,
    one_demo_epoch,
    with_functions,
    write_notebook,
)
from test_plugins import ASSIGNMENT, EXERCISE, add_exercise

from grader.audit import equivalence
from grader.audit.outcome import KILLED, SURVIVED
from grader.audit.run import reference_of, targets
from grader.authoring import course
from grader.authoring.config import load_assignments
from grader.grading.results import TestResult

# A course author's checks that look only at shapes: relu's value and positives, the
# forward pass. relu clamping at 1 instead of 0 has the right shapes everywhere.
WEAKENED = {
    'expect_close(out, ctx.want("relu.values"), "relu(X)", rtol=ctx.options.rtol)':
        'if out.shape != ctx.want("relu.values").shape:\n'
        '        raise Failed("relu(X) has the wrong shape", None, None)',
    "if out.shape != X.shape or not bool((out[X > 0] == X[X > 0]).all()):":
        "if out.shape != X.shape:",
    'expect_close(out, ctx.want("mlp.forward"), "mlp_forward(X, ...)", rtol=ctx.options.rtol)':
        'if out.shape != ctx.want("mlp.forward").shape:\n'
        '        raise Failed("the forward pass has the wrong shape", None, None)',
}


def weakened(root: Path) -> None:
    add_exercise(root)
    plugin = root / "plugins" / "mlp.py"
    text = plugin.read_text()
    for strong, weak in WEAKENED.items():
        assert text.count(strong) == 1, strong
        text = text.replace(strong, weak)
    plugin.write_text(text)


def audit_of(root: Path, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`grade audit` of relu in the course at root/course, as a course's CI runs it."""
    out = root / "audit"
    ran = subprocess.run(
        [sys.executable, "-c", "from grader.cli import main; main()", "--course",
         str(root / "course"), "audit", "--assignment", ASSIGNMENT, "--exercise", "relu",
         "--out", str(out), "--jobs", "2", "--json", str(root / "audit.json"), *options],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, course.ENV_VAR: str(root / "course")})
    found = json.loads((root / "audit.json").read_text()) if ran.returncode in (0, 1) else {}
    return ran, found


def built(root: Path, change: Callable[[Path], None]) -> Path:
    """A course made by `grade init` in root/course, the plug-in added by `change`."""
    with course_of_our_own(root, change, ASSIGNMENT):
        return root


@pytest.fixture(scope="module")
def weak_course(tmp_path_factory) -> Path:
    return built(tmp_path_factory.mktemp("weak"), weakened)


@pytest.fixture(scope="module")
def strong_course(tmp_path_factory) -> Path:
    return built(tmp_path_factory.mktemp("strong"), add_exercise)


def test_a_weak_check_lets_a_mutant_through_and_min_score_fails(weak_course):
    ran, found = audit_of(weak_course, "--min-score", "0.9")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    survivors = {m["name"]: m for m in found["mutants"] if m["state"] == SURVIVED}
    clamped = [m for m in survivors.values() if "min=1" in m["diff"]]
    assert clamped, found["mutants"]
    assert "+    return torch.clamp(X, min=1)" in clamped[0]["diff"]
    assert clamped[0]["score"] == clamped[0]["max_score"]  # full marks: the weak checks' gap
    assert "differs from the reference at relu.values" in clamped[0]["note"]
    page = (weak_course / "audit" / "audit.html").read_text()
    assert clamped[0]["name"] in page and "min=1" in page


def test_the_authors_own_checks_kill_every_mutant_of_relu(strong_course):
    ran, found = audit_of(strong_course, "--min-score", "0.9")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert found["mutants"] and all(m["state"] == KILLED for m in found["mutants"])
    assert found["score"] == 1.0
    killers = {test for m in found["mutants"] for test in m["killed_by"]}
    assert "relu.matches_the_reference" in killers
    assert EXERCISE  # the plug-in test_plugins.py grades, unchanged here


def test_the_bundled_sgd_mutants_are_all_caught(tmp_path):
    """The regression bar: every mutant of the bundled sgd is caught, each by the test that
    names its bug."""
    from grader.audit.run import audit

    [settings] = load_assignments(course.BUNDLED.assignment_files(), ("linear_regression",))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(course.ENV_VAR, str(course.BUNDLED.root))
        found = audit([settings.resolved()], tmp_path, chosen="sgd", jobs=2)
    by_name = {o.name: o for o in found.outcomes}
    assert len(by_name) >= 5 and found.score() == 1.0, {
        o.name: (o.state, o.note) for o in found.outcomes}
    zeroing = [o for o in found.outcomes if o.operator == "drop" and "zero_" in o.diff]
    assert zeroing and "sgd.zeroes_the_gradients" in zeroing[0].killed_by
    rebinding = [o for o in found.outcomes if o.operator == "inplace"]
    assert rebinding and "sgd.updates_parameters_in_place" in rebinding[0].killed_by


def test_the_audit_runs_on_a_dask_cluster_with_the_same_outcomes(tmp_path):
    """`--scheduler local`: the same Dask path as grading, the same verdict per mutant."""
    from grader.audit.run import audit

    [settings] = load_assignments(course.BUNDLED.assignment_files(), ("linear_regression",))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(course.ENV_VAR, str(course.BUNDLED.root))
        here = audit([settings.resolved()], tmp_path / "here", chosen="squared_loss", jobs=2)
        there = audit([settings.resolved()], tmp_path / "dask", chosen="squared_loss", jobs=2,
                      scheduler="local")
    assert [(o.name, o.state, o.killed_by) for o in there.outcomes] == \
        [(o.name, o.state, o.killed_by) for o in here.outcomes]
    assert there.outcomes and there.notes == []


def notebook_with(settings, function: str, source: str) -> nbformat.NotebookNode:
    reference = reference_of(settings)
    [target] = [t for t in targets(settings) if t.function == function]
    changed = nbformat.from_dict(reference)
    changed.cells[target.cell].source = source
    return changed


def test_an_equivalent_rewrite_is_told_apart_from_a_real_survivor(monkeypatch):
    monkeypatch.setenv(course.ENV_VAR, str(course.BUNDLED.root))
    [settings] = load_assignments(course.BUNDLED.assignment_files(), ("linear_regression",))
    settings = settings.resolved()
    [target] = [t for t in targets(settings) if t.function == "squared_loss"]
    reference = reference_of(settings)
    same = notebook_with(settings, "squared_loss",
                         "def squared_loss(y_hat, y):\n"
                         "    return (y.reshape(y_hat.shape) - y_hat) ** 2 * 0.5\n")
    off = notebook_with(settings, "squared_loss",
                        "def squared_loss(y_hat, y):\n"
                        "    return (y_hat - y.reshape(y_hat.shape)) ** 2\n")
    assert equivalence.first_difference(reference, same, target.settings) is None
    assert "differs from the reference at squared_loss" in \
        equivalence.first_difference(reference, off, target.settings)


def mutated(function: str, *changes: tuple[str, str]) -> str:
    """The reference's cell defining `function`, with its text changed as a mutant did."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    [source] = [cell.source for cell in notebook.cells
                if cell.cell_type == "code" and cell.source.startswith(f"def {function}(")]
    for old, new in changes:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


@pytest.fixture(scope="module")
def first_survivors(tmp_path_factory, single_threaded_kernels) -> dict[str, TestResult]:
    """The bundled course's first audit let four mutants through with full marks, each a
    bug a student could make: one notebook holds them all (each in its own function)."""
    notebook = with_functions({
        "data_iter": mutated("data_iter", ("range(0, num_examples, batch_size)",
                                           "range(0, num_examples - 1, batch_size)")),
        "train_linreg_concise": mutated("train_linreg_concise",
                                        ("normal_(0, 0.01)", "normal_(0.01, 0)"),
                                        ("range(num_epochs)", "range(num_epochs - 1)")),
        "softmax": mutated("softmax", ("X.max(dim=1", "X.min(dim=1")),
    })
    path = write_notebook(one_demo_epoch(notebook), tmp_path_factory.mktemp("survivors") /
                          "survivors.ipynb")
    return {test.name: test for test in grade_file(path, LENIENT).tests}


@pytest.mark.parametrize(("test", "words"), [
    ("data_iter.covers_every_example_once_per_epoch",
     ("not every small one", "with 1 example and batch_size 1, the epoch yielded no batches")),
    ("concise_linreg_training.initialises_small_weights_and_zero_bias",
     ("standard deviation 0", "normal(0, 0.01)")),
    ("concise_linreg_training.reaches_the_reference_mse",
     ("passes' worth of batches", "for _ in range(num_epochs)")),
    ("softmax.stays_finite_on_large_inputs", ("[-50, 0, 50]", "not its minimum")),
])
def test_the_first_audits_survivors_are_caught_with_a_message_naming_the_bug(
        first_survivors, test, words):
    result = first_survivors[test]
    assert not result.passed, result.message
    for word in words:
        assert word in result.message, result.message


def test_the_survivors_cost_nothing_else(first_survivors):
    failed = {name for name, test in first_survivors.items() if not test.passed}
    assert failed == {"data_iter.covers_every_example_once_per_epoch",
                      "concise_linreg_training.initialises_small_weights_and_zero_bias",
                      "concise_linreg_training.reaches_the_reference_mse",
                      "softmax.stays_finite_on_large_inputs"}, failed


@pytest.mark.parametrize(("options", "said"), [
    (["--exercise", "nosuch"], "no student function of linear_regression is 'nosuch'"),
    (["--min-score", "90"], "'--min-score': 90.0 is not in the range 0<=x<=1"),
    (["--limit", "0"], "'--limit': 0 is not in the range x>=1"),
])
def test_a_bad_audit_option_is_a_usage_error_before_any_grading(options, said, tmp_path,
                                                                monkeypatch):
    from click.testing import CliRunner

    from grader.cli import main

    monkeypatch.setenv(course.ENV_VAR, str(course.BUNDLED.root))
    ran = CliRunner().invoke(main, ["audit", "--assignment", "linear_regression",
                                    "--out", str(tmp_path / "audit"), *options])
    assert ran.exit_code == 2 and said in " ".join(ran.output.split()), ran.output
    assert not (tmp_path / "audit").exists()
