"""Students' self-check: public tests only, friendly output, no reference and no network."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import SOLUTION, with_functions

import grader.selfcheck as selfcheck
from grader.authoring.config import load_assignments
from grader.authoring.course import BUNDLED, ENV_VAR
from grader.authoring.exercise import lookup
from grader.grading.assignment import Assignment
from grader.grading.inputs import build_inputs
from grader.grading.reference import reference_functions
from grader.sandbox.bwrap import SandboxSettings
from grader.sandbox.execute import KernelRun
from grader.sandbox.kernels import LaunchedKernel
from grader.selfcheck import SelfCheck, check, check_all, run_check

NO_KEEPDIM = "def softmax(X):\n    e = torch.exp(X - X.max(dim=1, keepdim=True).values)\n" \
             "    return e / e.sum(dim=1)\n"


ASSIGNMENTS = load_assignments(BUNDLED.assignment_files())


@pytest.fixture(autouse=True)
def bundled_course(monkeypatch):
    """The bundled course ships the self-check's data (the test course does not)."""
    monkeypatch.setenv(ENV_VAR, str(BUNDLED.root))


@pytest.mark.parametrize("settings", ASSIGNMENTS, ids=lambda s: s.notebook)
def test_the_reference_passes_every_public_test_of_its_assignment(settings):
    functions = reference_functions(settings.notebook, BUNDLED.reference)
    names = {check.exercise for e in lookup(settings.exercises) for check in e.checks} - {"quiz"}
    for name in sorted(names):
        results = run_check(name, functions)
        assert results and all(r.passed for r in results), (name, results)


def test_hidden_tests_are_not_run_and_public_inputs_differ_from_hidden_ones():
    [settings] = [s for s in ASSIGNMENTS if s.notebook == "softmax_regression"]
    public = torch.load(BUNDLED.public / "softmax_regression.pt", weights_only=True)
    assert public["hidden"] == list(settings.hidden)
    hidden = {check.full_name for e in lookup(settings.exercises)
              for check in e.configured(settings.options[e.name], settings.points,
                                        settings.hidden) if check.hidden}
    names = {r.name for r in run_check("accuracy", reference_functions("softmax_regression",
                                                                       BUNDLED.reference))}
    assert "accuracy.breaks_ties_like_argmax" in hidden
    assert names and not names & hidden
    hidden_inputs = build_inputs(Assignment.of(settings), nbformat.v4.new_notebook())
    assert not torch.equal(public["inputs"]["softmax.X"], hidden_inputs["softmax.X"])


def test_an_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="no exercise named 'sofmax'; try one of: .*softmax, "):
        run_check("sofmax", {})


def test_a_bug_prints_the_first_failing_expectation(capsys, monkeypatch):
    namespace = {"softmax": lambda X: torch.exp(X) / torch.exp(X).sum(dim=0)}
    monkeypatch.setattr(selfcheck, "caller_namespace", lambda: namespace)
    check("softmax")
    printed = capsys.readouterr().out
    # shape and dtype hold (1 + 1 of 7 points); the hidden gradient test is named apart
    assert printed.startswith("softmax: 2/5 public tests passed, 2.0 of 7.0 public points")
    assert "✗ values_match_the_reference" in printed
    assert "First problem: softmax.values_match_the_reference:" in printed
    assert "columns sum to 1" in printed
    assert "Only the grader checks these (1.0 points)" in printed
    assert "softmax.softmax_gradient_matches" in printed and "hidden test" in printed


def test_check_runs_in_the_sandbox_without_reference_or_network():
    """The notebook's own check cells, run in a sandboxed kernel that sees no reference/
    (the test course's notebook imports grader.kernel.selfcheck, as notebooks handed out
    earlier do)."""
    notebook = with_functions({"softmax": NO_KEEPDIM}, base=SOLUTION)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        f"import os\nprint(os.path.exists({str(SOLUTION)!r}))"))
    kernel = LaunchedKernel(SandboxSettings(), gpu=False)
    with KernelRun(notebook, kernel, 120, 400, skip_tag=None) as run:
        run.run_notebook()
    outputs = {cell.source: "".join(o.get("text", "") for o in cell.get("outputs", []))
               for cell in notebook.cells if cell.cell_type == "code"}
    assert outputs[notebook.cells[0].source].strip() == "False"
    assert "softmax: 0/5 public tests passed" in outputs['check("softmax")']
    assert "keepdim=True" in outputs['check("softmax")']
    assert "accuracy: 1/1 public tests passed" in outputs['check("accuracy")']


# --- check_all: the public score, what it leaves out and what only the grader checks -------

SOFTMAX = "softmax_regression"
[SOFTMAX_SETTINGS] = [s for s in ASSIGNMENTS if s.notebook == SOFTMAX]
TRAININGS = {"softmax_training.reaches_the_test_accuracy",
             "concise_softmax_training.reaches_the_test_accuracy"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """The solution notebook as a student's kernel finds it saved: its metadata names the
    assignment, its answer cell holds the key's letter."""
    path = tmp_path_factory.mktemp("saved") / "my_copy.ipynb"
    shutil.copy(BUNDLED.reference / f"{SOFTMAX}.ipynb", path)
    return path


@pytest.fixture(scope="module")
def solution_namespace(saved) -> dict:
    """The solution's functions, in a kernel that Jupyter told its notebook's path."""
    return {**reference_functions(SOFTMAX, BUNDLED.reference), "__session__": str(saved)}


def checked_all(monkeypatch, namespace: dict, **options) -> SelfCheck:
    monkeypatch.setattr(selfcheck, "caller_namespace", lambda: namespace)
    return check_all(**options)


def test_check_all_gives_the_solution_every_public_point_and_names_the_rest(
        monkeypatch, capsys, solution_namespace):
    summary = checked_all(monkeypatch, solution_namespace, training=True)
    printed = capsys.readouterr().out
    assert summary.assignment == SOFTMAX  # from the saved notebook's metadata
    assert summary.failed == [] and summary.earned == summary.possible > 0
    assert TRAININGS <= {r.name for r in summary.results} and summary.not_run == {}
    assert summary.exercises["quiz"] == (0.0, 0.0)  # the format is checked, for no points
    assert summary.grader_only == {
        "softmax.softmax_gradient_matches": (1.0, selfcheck.HIDDEN),
        "cross_entropy.cross_entropy_gradient_matches": (1.0, selfcheck.HIDDEN),
        "accuracy.breaks_ties_like_argmax": (1.0, selfcheck.HIDDEN),
        "softmax_training.epoch_is_fast_enough": (2.0, selfcheck.TIMED),
        "quiz.softmax_shift_invariance": (2.0, selfcheck.WITHHELD),
        "evaluate_accuracy.runs_without_gradients": (1.0, selfcheck.HIDDEN)}
    assert summary.grade_points == Assignment.of(SOFTMAX_SETTINGS).possible == 36
    assert re.search(rf"\n  public score +{summary.earned:.1f} / {summary.possible:.1f}\n",
                     printed)
    assert "Only the grader checks these (8.0 points), so the public score is not the grade"\
        in printed
    assert "The grade is out of 36.0 points" in printed and "First problem" not in printed
    assert selfcheck.SAVED in printed


def test_check_all_with_one_bug_costs_its_points_and_names_its_check(
        monkeypatch, capsys, tmp_path, solution_namespace):
    monkeypatch.chdir(tmp_path)
    namespace = {**solution_namespace, "__session__": None}
    exec(NO_KEEPDIM, namespace)  # noqa: S102 - the student's cell
    summary = checked_all(monkeypatch, namespace)  # the assignment guessed from the functions
    printed = capsys.readouterr().out
    assert summary.assignment == SOFTMAX
    earned, possible = summary.exercises["softmax"]
    assert earned < possible and summary.earned == summary.possible - (possible - earned)
    assert summary.failed[0] == "softmax.values_match_the_reference"
    assert {name.split(".")[0] for name in summary.failed} == {"softmax"}
    assert "First problem: softmax.values_match_the_reference" in printed
    # Without training=True, the long trainings are named with their points, not run; the
    # saved notebook (unnamed here, none in the folder) is not found: the quiz is not run.
    long = {name for name, (_, why) in summary.not_run.items() if why == selfcheck.LONG}
    assert TRAININGS <= long and {name.split(".")[0] for name in long} == {
        "softmax_training", "concise_softmax_training"}
    assert summary.not_run.keys() - long == {"quiz.answers_with_one_of_the_choices"}
    assert summary.not_run["quiz.answers_with_one_of_the_choices"][1] == selfcheck.NO_NOTEBOOK
    assert "Not run this time" in printed and "check_all(training=True) runs it" in printed
    assert re.search(r"\n  softmax_training +- +not run \(below\)\n", printed)
    assert summary.grade_points == 36


def quiz_notebook(answer: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(BUNDLED.exercises / f"{SOFTMAX}.ipynb", as_version=4)
    for cell in notebook.cells:
        if "answer:softmax_shift" in cell.metadata.get("tags", []):
            cell.source = answer
    return notebook


def test_the_quiz_checks_the_answers_form_not_whether_it_is_right():
    [valid] = run_check("quiz", {}, quiz_notebook("B"))  # a wrong letter, in a valid form
    assert valid.passed and valid.name == "quiz.answers_with_one_of_the_choices"
    assert "whether it is right, the grader says" in valid.message
    [invalid] = run_check("quiz", {}, quiz_notebook("B or C"))
    assert not invalid.passed and "exactly one of A, B, C, D" in invalid.message
    [blank] = run_check("quiz", {}, quiz_notebook("YOUR ANSWER HERE"))
    assert not blank.passed and "no answer given" in blank.message


def test_the_quiz_check_says_when_it_cannot_find_the_saved_notebook(
        monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(selfcheck, "caller_namespace", lambda: {})
    check("quiz")
    printed = capsys.readouterr().out
    assert printed.startswith("quiz: not run: it reads your answers from the saved notebook")
    assert "quiz.softmax_shift_invariance" in printed and "answer key" in printed


def test_the_saved_notebook_is_the_one_of_the_folder_that_names_the_assignment(
        monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert selfcheck.saved_notebook({}, SOFTMAX) is None
    shutil.copy(BUNDLED.exercises / f"{SOFTMAX}.ipynb", tmp_path / "renamed.ipynb")
    shutil.copy(BUNDLED.exercises / "more_pytorch.ipynb", tmp_path / "other.ipynb")
    (tmp_path / "broken.ipynb").write_text("{not json")
    found = selfcheck.saved_notebook({}, SOFTMAX)
    assert found is not None and selfcheck.named_assignment(found) == SOFTMAX
    shutil.copy(tmp_path / "renamed.ipynb", tmp_path / "renamed-Copy1.ipynb")
    assert selfcheck.saved_notebook({}, SOFTMAX) is None  # two copies: neither is trusted


def test_an_assignment_that_cannot_be_told_asks_for_its_name(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"cannot tell which assignment .* check_all\("):
        selfcheck.guessed_assignment({})
    with pytest.raises(ValueError, match="no public tests of an assignment named 'mlp'; the "
                                         "course has: linear_regression, more_pytorch"):
        check_all("mlp")
    defined = {"data_iter": len, "sgd": len, "softmax": len}
    assert selfcheck.guessed_assignment(defined) == "linear_regression"


def test_the_public_data_names_the_tests_only_the_grader_can_judge():
    public = torch.load(BUNDLED.public / f"{SOFTMAX}.pt", weights_only=True)
    assert public["grader_only"] == ["quiz.softmax_shift_invariance"]
    assert public["points"] == dict(SOFTMAX_SETTINGS.points)
    assert public["reference"]["quiz.softmax_shift"]["value"] is None  # no key shipped


# --- what to run comes with the public data, not from the grader's plan or a name ---------

def test_the_public_data_says_which_steps_to_run_and_which_tests_train():
    public = torch.load(BUNDLED.public / f"{SOFTMAX}.pt", weights_only=True)
    work = Assignment.of(SOFTMAX_SETTINGS).work
    assert [(s["exercise"], s["module"], s["table"], s["keys"], s["long"], s["selfcheck"])
            for s in public["steps"]] == [(w.exercise, w.module, w.table, w.keys,
                                           w.step.long, not w.step.long) for w in work]
    assert set(public["on_request"]) == TRAININGS | {
        f"concise_softmax_training.{name}" for name in
        ("steps_once_per_batch", "zeroes_the_gradients", "trains_in_training_mode")}


def test_what_is_left_for_training_is_what_the_public_data_declares():
    """Not a suffix of the group's name: a test the data calls long waits for a training."""
    public = torch.load(BUNDLED.public / f"{SOFTMAX}.pt", weights_only=True)
    declared = {**public, "on_request": ["softmax.values_match_the_reference"]}
    [exercise] = lookup(("softmax",))
    functions = reference_functions(SOFTMAX, BUNDLED.reference)
    outcome = selfcheck.run_exercise(exercise, declared, functions, None, {"softmax"})
    assert {test: why for test, (_, why) in outcome.not_run.items()} == {
        "softmax.values_match_the_reference": selfcheck.LONG}
    assert outcome.results and all(result.passed for result in outcome.results)
    assert selfcheck.is_training(exercise, declared, "softmax")
    assert not selfcheck.is_training(exercise, declared, "softmax_training")


def test_public_data_written_by_an_older_grader_asks_for_grade_assign(monkeypatch, tmp_path):
    old = torch.load(BUNDLED.public / f"{SOFTMAX}.pt", weights_only=True)
    del old["steps"], old["on_request"]
    torch.save(old, tmp_path / f"{SOFTMAX}.pt")
    monkeypatch.setattr(selfcheck, "public_files", lambda: {SOFTMAX: tmp_path / f"{SOFTMAX}.pt"})
    with pytest.raises(ValueError, match=f"the public data of {SOFTMAX} was written by an "
                                         "older grader: run `grade assign` again"):
        check_all(SOFTMAX)
