"""An instructor adds an exercise without touching the package: two modules in the course's
plugins/ folder (the exercise declared as one object, EXERCISE), its cells in a solution
notebook and one table in that assignment's settings. It is discovered, graded in the
sandbox (whose kernel imports the course's probe module), reported with its own timed step
and self-checked.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from conftest import class_graded, course_of_our_own, write_notebook

from grader.authoring import course
from grader.selfcheck import run_check

EXERCISE = '''
"""ReLU and a two-layer perceptron's forward pass, from scratch (the course's own)."""

from dataclasses import dataclass

import torch

from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import expect_close, expect_tensor
from grader.authoring.exercise import Declaration, Step

from . import mlp_probes as probes

CHECKS = Registry()
HINTS = {"relu.": [("must be Tensor", "use torch.maximum or X.clamp(min=0)")]}


@dataclass(frozen=True)
class Options:
    hidden_units: int = 32
    rtol: float = 1e-5
    max_ratio: float = 1000.0


def make_inputs(generator, options, notebook):
    return {
        "relu.X": torch.randn(64, 10, generator=generator),
        "mlp.X": torch.randn(128, 20, generator=generator),
        "mlp.W1": torch.randn(20, options.hidden_units, generator=generator) * 0.2,
        "mlp.b1": torch.randn(options.hidden_units, generator=generator) * 0.1,
        "mlp.W2": torch.randn(options.hidden_units, 3, generator=generator) * 0.2,
        "mlp.b2": torch.zeros(3),
    }


@CHECKS.add("relu", points=2)
def matches_the_reference(ctx: Context) -> str:
    """relu(X) is max(X, 0) elementwise."""
    out = expect_tensor(ctx.got("relu.values"), "relu(X)")
    expect_close(out, ctx.want("relu.values"), "relu(X)", rtol=ctx.options.rtol)
    return "relu(X) matches the reference."


@CHECKS.add("relu", points=1, hidden=True, reads=("relu.values",))
def keeps_the_positive_values(ctx: Context) -> str:
    """relu keeps every positive input as it is."""
    X = ctx.inputs["relu.X"]
    out = expect_tensor(ctx.got("relu.values"), "relu(X)")
    if out.shape != X.shape or not bool((out[X > 0] == X[X > 0]).all()):
        raise Failed("relu changed a positive value", None, None)
    return "Positive values are kept."


@CHECKS.add("mlp", points=2, uses=("relu.values",))
def forward_matches_the_reference(ctx: Context) -> str:
    out = expect_tensor(ctx.got("mlp.forward"), "mlp_forward(X, ...)")
    expect_close(out, ctx.want("mlp.forward"), "mlp_forward(X, ...)", rtol=ctx.options.rtol)
    return "The forward pass matches the reference."


@CHECKS.add("mlp", points=1, timed=True, requires=("mlp.forward_matches_the_reference",))
def forward_is_fast_enough(ctx: Context) -> str:
    timing = ctx.timings["mlp.timed"]
    if timing.ratio is None or timing.ratio > timing.max_ratio:
        raise Failed(f"the forward pass took {timing.ratio}x the reference's", None, None)
    return f"{timing.ratio:.1f}x the reference's time."


EXERCISE = Declaration(
    checks=CHECKS,
    probes=probes,
    steps=(Step(probes.PROBES),
           Step(probes.TIMED, timed=True, bound=lambda options: options.max_ratio)),
    options=Options,
    make_inputs=make_inputs,
    hints=HINTS,
)
'''
PROBES = '''
"""Kernel side of the course's MLP exercise."""

from grader.kernel.probing import Probe


def forward(probe: Probe):
    inputs = probe.inputs
    return probe.student("mlp_forward")(inputs["mlp.X"], inputs["mlp.W1"], inputs["mlp.b1"],
                                        inputs["mlp.W2"], inputs["mlp.b2"])


def timed(probe: Probe):
    for _ in range(20):
        out = forward(probe)
    return out


PROBES = {
    "relu.values": lambda probe: probe.student("relu")(probe.inputs["relu.X"].clone()),
    "mlp.forward": forward,
}
TIMED = {"mlp.timed": timed}
'''
SOLUTION = {
    "relu": "def relu(X):\n    ### BEGIN SOLUTION\n    return torch.clamp(X, min=0)\n"
            "    ### END SOLUTION\n",
    "mlp_forward": "def mlp_forward(X, W1, b1, W2, b2):\n    ### BEGIN SOLUTION\n"
                   "    return relu(X @ W1 + b1) @ W2 + b2\n    ### END SOLUTION\n",
}
WRONG_RELU = "def relu(X):\n    return torch.clamp(X, min=0.5)\n"
ASSIGNMENT = "softmax_regression"


def add_exercise(root: Path) -> None:
    """What the instructor writes: the plug-in, its cells, its table."""
    (root / "plugins").mkdir(exist_ok=True)  # `grade init` makes it
    (root / "plugins" / "mlp.py").write_text(textwrap.dedent(EXERCISE).lstrip())
    (root / "plugins" / "mlp_probes.py").write_text(textwrap.dedent(PROBES).lstrip())
    path = root / "reference" / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells += [nbformat.v4.new_markdown_cell("## Part 4 — A multilayer perceptron")]
    for name, source in SOLUTION.items():
        notebook.cells += [nbformat.v4.new_code_cell(source, metadata={"tags": ["solution"]}),
                           nbformat.v4.new_code_cell(f'check("{name.split("_")[0]}")',
                                                     metadata={"tags": ["selfcheck"]})]
    nbformat.write(notebook, path)
    settings = root / "assignments" / f"{ASSIGNMENT}.toml"
    text = settings.read_text().replace('"concise_softmax"]', '"concise_softmax", "mlp"]')
    settings.write_text(text + "\n[mlp]\nhidden_units = 16\n")


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """A course made by `grade init`, the exercise added, notebooks built, a class graded."""
    root = tmp_path_factory.mktemp("plugin")
    with course_of_our_own(root, add_exercise, ASSIGNMENT) as runner:
        solution = nbformat.read(root / "course" / "reference" / f"{ASSIGNMENT}.ipynb",
                                 as_version=4)
        write_notebook(solution, root / "class" / "alice.ipynb")
        for cell in solution.cells:
            if cell.source.startswith("def relu"):
                cell.source = WRONG_RELU
        write_notebook(solution, root / "class" / "bob.ipynb")
        yield root, class_graded(runner, ASSIGNMENT, "--jobs", "2")


def test_the_student_notebook_has_the_exercise_blank(extended):
    root, _ = extended
    text = (root / "course" / "exercises" / f"{ASSIGNMENT}.ipynb").read_text()
    assert "def relu(X):" in text and "clamp" not in text


def test_the_exercise_is_graded_in_the_sandbox_beside_the_bundled_ones(extended):
    root, summary = extended
    scores = summary["students"]
    alice, bob = scores["alice"][ASSIGNMENT], scores["bob"][ASSIGNMENT]
    assert alice["score"] == alice["max_score"] == bob["max_score"]
    assert bob["max_score"] - bob["score"] == 2 + 1 + 2 + 1  # every mlp and relu mark
    saved = json.loads((root / "out" / "bob" / ASSIGNMENT / "results.json").read_text())
    failed = {t["name"]: t["message"] for t in saved["tests"] if not t["passed"]}
    assert set(failed) == {"relu.matches_the_reference", "relu.keeps_the_positive_values",
                           "mlp.forward_matches_the_reference", "mlp.forward_is_fast_enough"}
    assert "relu(X) differs from the reference" in failed["relu.matches_the_reference"]
    assert failed["relu.keeps_the_positive_values"] == \
        "relu keeps every positive input as it is: not met on the hidden inputs"


def test_its_timed_step_and_its_tests_are_reported_by_name(extended):
    root, _ = extended
    page = BeautifulSoup((root / "out" / "alice" / ASSIGNMENT / "report.html").read_text(),
                         "html.parser")
    assert page.select_one('tr.test.pass[data-test="mlp.forward_is_fast_enough"]')
    assert "mlp.timed" in page.get_text() and "epoch.run" in page.get_text()
    with open(root / "out" / "grades.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert rows["alice"]["relu.matches_the_reference"] == "2"
    assert rows["bob"]["relu.matches_the_reference"] == "0"
    assert float(rows["alice"]["mlp.timed ratio"]) > 0


def test_the_exercise_is_self_checked_with_its_public_tests(extended, monkeypatch):
    root, _ = extended
    monkeypatch.setenv(course.ENV_VAR, str(root / "course"))
    passed = run_check("relu", {"relu": lambda X: X.clamp(min=0)})
    assert [(r.name, r.passed) for r in passed] == [("relu.matches_the_reference", True)]
    [failed] = run_check("relu", {"relu": lambda X: X.abs()})
    assert not failed.passed and "differs from the reference" in failed.message
