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
from pathlib import Path

import nbformat
import pytest
from conftest import course_of_our_own
from test_plugins import ASSIGNMENT, EXERCISE, add_exercise

from grader.audit import equivalence
from grader.audit.outcome import KILLED, SURVIVED
from grader.audit.run import reference_of, targets
from grader.authoring import course
from grader.authoring.config import load_assignments

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


@pytest.fixture(scope="module")
def weak_course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("weak")
    with course_of_our_own(root, weakened, ASSIGNMENT):
        pass
    return root


@pytest.fixture(scope="module")
def strong_course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("strong")
    with course_of_our_own(root, add_exercise, ASSIGNMENT):
        pass
    return root


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
