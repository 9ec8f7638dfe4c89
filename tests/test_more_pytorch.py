"""The more_pytorch assignment (issue 16): the rest of the seed tutorials, added the way an
instructor adds one, through the exercise interface alone: its exercise modules (in
grader/exercises/, the bundled course's), a solution notebook and a settings file, no
change to the pipeline.

One class is graded through the real CLI and the sandboxed kernels: the solution (full
marks), the blank notebook (zero, "not implemented"), a notebook of correct variants in
other styles (full marks) and notebooks of the seeds' bugs and other slips, one bug per
function each, so that a kernel run grades many independent bugs. Every bug fails the
checks that name it, with a message in the words given, and leaves every other check
passing. The self-check passes the reference's functions.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass

import nbformat
import pytest
import torch
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import HIDDEN_FAILURE, words_missing
from nbclient import NotebookClient

from grader.authoring import course
from grader.authoring.assign import render, student_version
from grader.authoring.config import load_settings
from grader.authoring.exercise import available
from grader.cli import main
from grader.grading.reference import reference_functions
from grader.selfcheck import run_check

COURSE = course.BUNDLED.root
ASSIGNMENT = "more_pytorch"
EXERCISES = ("one_hot", "validation_training", "seq_model", "module_classes", "show_images")
# The groups a student self-checks, by the name the notebook's check("…") cells give.
SELF_CHECKED = ("one_hot", "train", "seq_model", "FlattenLayer", "LinearNet",
                "module_classes_training", "show_images")
DEFINITION = re.compile(r"^(?:def|class) (\w+)\b", re.M)


def code(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"


@dataclass(frozen=True)
class Bug:
    """One wrong implementation: the checks (full names) whose message must name it, in the
    words given, and the checks it fails as a consequence, or may fail."""

    notebook: str
    function: str  # the def or class the notebook's cell holds
    what: str
    source: str  # empty: the bug above, with further checks and their own words
    named_by: tuple[str, ...]
    words: tuple[str, ...]
    also_fails: tuple[str, ...] = ()
    may_fail: tuple[str, ...] = ()  # where the hidden inputs decide, either verdict honest


TRAIN_COUNTS = ("train.steps_once_per_epoch", "train.zeroes_the_gradients",
                "train.validation_builds_no_graph")
BUGS = [
    # --- notebook A: the seeds' own code -------------------------------------------------
    Bug("A", "one_hot", "three classes hard-coded, as the seed's torch.zeros(n, 3)", code("""
        def one_hot(target, num_classes):
            target_onehot = torch.zeros(target.shape[0], 3)
            return target_onehot.scatter_(1, target.unsqueeze(1), 1.0)
        """), ("one_hot.encodes_other_class_counts",
               "one_hot.takes_the_class_count_from_num_classes"),
        ("out of bounds", "num_classes columns")),
    Bug("A", "train", "the validation loss with autograd on, as the seed computes it", code("""
        def train(n_epochs, optimizer, model, loss_fn, X_train, y_train, X_val, y_val):
            train_losses, val_losses = [], []
            for epoch in range(n_epochs):
                y_train_pred = model(X_train)
                loss_train = loss_fn(y_train_pred, y_train)
                y_val_pred = model(X_val)
                loss_val = loss_fn(y_val_pred, y_val)
                optimizer.zero_grad()
                loss_train.backward()
                optimizer.step()
                train_losses.append(float(loss_train))
                val_losses.append(loss_val.item())
            return train_losses, val_losses
        """), ("train.validation_builds_no_graph",), ("autograd recording", "torch.no_grad()")),
    Bug("A", "make_seq_model", "ReLU, as the seed's text calls the layer", code("""
        def make_seq_model():
            return nn.Sequential(nn.Linear(1, 13), nn.ReLU(), nn.Linear(13, 1))
        """), ("seq_model.has_the_seed_layers",), ("nn.ReLU", "nn.Tanh()"),
        also_fails=("seq_model.beats_the_linear_model",)),
    Bug("A", "FlattenLayer", "784 features hard-coded", code("""
        class FlattenLayer(nn.Module):
            def forward(self, x):
                return x.view(-1, 784)
        """), ("FlattenLayer.flattens_any_shape",), ("FlattenLayer.other_shapes failed",),
        # The training flattens 28x28 images: it keeps its marks (no cascade).
        also_fails=("FlattenLayer.passes_the_gradient_back",)),
    Bug("A", "LinearNet", "super().__init__() forgotten", code("""
        class LinearNet(nn.Module):
            def __init__(self, num_inputs, num_outputs):
                self.linear = nn.Linear(num_inputs, num_outputs)

            def forward(self, x):
                return self.linear(x.view(x.shape[0], -1))
        """), ("LinearNet.registers_its_parameters", "LinearNet.computes_scores_per_image"),
        ("Module.__init__()", "super().__init__() first"),
        also_fails=("LinearNet.handles_other_sizes",
                    "module_classes_training.linear_net_reaches_the_test_accuracy")),
    Bug("A", "show_images", "a title set when titles is None", code("""
        def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
            figsize = (num_cols * scale, num_rows * scale)
            _, axes = plt.subplots(num_rows, num_cols, figsize=figsize)
            axes = axes.flatten()
            for i, (ax, img) in enumerate(zip(axes, imgs)):
                ax.imshow(img)
                ax.axes.get_xaxis().set_visible(False)
                ax.axes.get_yaxis().set_visible(False)
                ax.set_title(titles[i])
            return axes
        """), ("show_images.handles_empty_cells_and_no_titles",),
        ("not subscriptable", "`if titles:`")),
    # --- notebook B: the first slips ------------------------------------------------------
    Bug("B", "one_hot", "F.one_hot without .float()", code("""
        import torch.nn.functional as F

        def one_hot(target, num_classes):
            return F.one_hot(target, num_classes)
        """), ("one_hot.returns_a_float_matrix", "one_hot.encodes_the_seed_labels"),
        ("int64", ".float()"), also_fails=("one_hot.encodes_other_class_counts",
                                          "one_hot.takes_the_class_count_from_num_classes",
                                          # not judged without a float matrix to go by
                                          "one_hot.leaves_the_target_unchanged")),
    Bug("B", "train", "optimizer.zero_grad() forgotten", code("""
        def train(n_epochs, optimizer, model, loss_fn, X_train, y_train, X_val, y_val):
            train_losses, val_losses = [], []
            for _ in range(n_epochs):
                loss_train = loss_fn(model(X_train), y_train)
                with torch.no_grad():
                    loss_val = loss_fn(model(X_val), y_val)
                loss_train.backward()
                optimizer.step()
                train_losses.append(loss_train.item())
                val_losses.append(loss_val.item())
            return train_losses, val_losses
        """), ("train.zeroes_the_gradients", "train.curves_match_the_reference"),
        ("earlier epochs", "optimizer.zero_grad() before backward()"),
        also_fails=("train.steps_once_per_epoch", "train.validation_builds_no_graph",
                    "train.uses_the_optimizer_and_loss_passed_in")),
    Bug("B", "make_seq_model", "one global net returned by every call", code("""
        seq_net = nn.Sequential(nn.Linear(1, 13), nn.Tanh(), nn.Linear(13, 1))

        def make_seq_model():
            return seq_net
        """), ("seq_model.returns_a_new_net_each_call",), ("share parameters", "global"),
        may_fail=("seq_model.beats_the_linear_model",)),
    Bug("B", "FlattenLayer", "the whole batch flattened, x.view(-1)", code("""
        class FlattenLayer(nn.Module):
            def forward(self, x):
                return x.view(-1)
        """), ("FlattenLayer.flattens_each_image",), ("whole batch", "x.view(x.shape[0], -1)"),
        also_fails=("FlattenLayer.flattens_any_shape", "FlattenLayer.passes_the_gradient_back",
                    "module_classes_training.flatten_layer_net_reaches_the_test_accuracy")),
    Bug("B", "LinearNet", "a softmax on the scores", code("""
        class LinearNet(nn.Module):
            def __init__(self, num_inputs, num_outputs):
                super().__init__()
                self.linear = nn.Linear(num_inputs, num_outputs)

            def forward(self, x):
                return torch.softmax(self.linear(x.view(x.shape[0], -1)), dim=1)
        """), ("LinearNet.computes_scores_per_image",), ("probabilities", "CrossEntropyLoss"),
        also_fails=("LinearNet.handles_other_sizes",),
        may_fail=("module_classes_training.linear_net_reaches_the_test_accuracy",)),
    Bug("B", "show_images", "the grid filled column by column", code("""
        def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
            figsize = (num_cols * scale, num_rows * scale)
            _, axes = plt.subplots(num_rows, num_cols, figsize=figsize)
            axes = axes.T.flatten()
            for i, (ax, img) in enumerate(zip(axes, imgs)):
                ax.imshow(img)
                ax.axes.get_xaxis().set_visible(False)
                ax.axes.get_yaxis().set_visible(False)
                if titles:
                    ax.set_title(titles[i])
            return axes
        """), ("show_images.draws_each_image_in_order",), ("column by column", "row by row"),
        also_fails=("show_images.titles_each_image",
                    "show_images.handles_empty_cells_and_no_titles")),
    # --- notebook C: more of the seeds' code, and other slips -----------------------------
    Bug("C", "one_hot", "target reshaped in place, target.unsqueeze_(1)", code("""
        def one_hot(target, num_classes):
            return torch.zeros(len(target), num_classes).scatter_(1, target.unsqueeze_(1), 1.0)
        """), ("one_hot.leaves_the_target_unchanged",), ("in place", "target.unsqueeze(1)")),
    Bug("C", "train", "nothing returned, as the seed's loop", code("""
        def train(n_epochs, optimizer, model, loss_fn, X_train, y_train, X_val, y_val):
            for epoch in range(n_epochs):
                loss_train = loss_fn(model(X_train), y_train)
                with torch.no_grad():
                    loss_val = loss_fn(model(X_val), y_val)
                optimizer.zero_grad()
                loss_train.backward()
                optimizer.step()
                if epoch % 500 == 0:
                    print('Epoch %d, Training Loss %f Validation Loss %d'
                          % (epoch, float(loss_train), float(loss_val)))
        """), ("train.returns_both_losses_per_epoch", "train.curves_match_the_reference"),
        ("returned None", "return train_losses, val_losses"),
        also_fails=(*TRAIN_COUNTS, "train.uses_the_optimizer_and_loss_passed_in")),
    Bug("C", "make_seq_model", "no activation between the layers", code("""
        def make_seq_model():
            return nn.Sequential(nn.Linear(1, 13), nn.Linear(13, 1))
        """), ("seq_model.has_the_seed_layers", "seq_model.beats_the_linear_model"),
        ("straight line",)),
    Bug("C", "FlattenLayer", "the graph cut with .detach()", code("""
        class FlattenLayer(nn.Module):
            def forward(self, x):
                return x.detach().view(x.shape[0], -1)
        # Nothing before the flattening has parameters: the training still trains.
        """), ("FlattenLayer.passes_the_gradient_back",), ("without .detach()",)),
    Bug("C", "LinearNet", "weights kept as plain tensors, never registered", code("""
        class LinearNet(nn.Module):
            def __init__(self, num_inputs, num_outputs):
                super().__init__()
                self.W = torch.normal(0, 0.01, (num_inputs, num_outputs), requires_grad=True)
                self.b = torch.zeros(num_outputs, requires_grad=True)

            def forward(self, x):
                return x.view(x.shape[0], -1) @ self.W + self.b
        """), ("LinearNet.registers_its_parameters",), ("registers no parameters", "nn.Linear"),
        also_fails=("LinearNet.computes_scores_per_image", "LinearNet.handles_other_sizes",
                    "module_classes_training.linear_net_reaches_the_test_accuracy")),
    Bug("C", "show_images", "axes left visible", code("""
        def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
            figsize = (num_cols * scale, num_rows * scale)
            _, axes = plt.subplots(num_rows, num_cols, figsize=figsize)
            axes = axes.flatten()
            for i, (ax, img) in enumerate(zip(axes, imgs)):
                ax.imshow(img)
                if titles:
                    ax.set_title(titles[i])
            return axes
        """), ("show_images.hides_the_axes",), ("keep their axes", "set_visible(False)")),
    # --- notebook D: slips the public inputs let through ----------------------------------
    Bug("D", "one_hot", "scattered along dim 0", code("""
        def one_hot(target, num_classes):
            return torch.zeros(len(target), num_classes).scatter_(0, target.unsqueeze(1), 1.0)
        """), ("one_hot.encodes_the_seed_labels",), ("along dim 0", "scatter_(1,"),
        also_fails=("one_hot.encodes_other_class_counts",
                    "one_hot.takes_the_class_count_from_num_classes")),
    Bug("D", "train", "the validation loss after the step", code("""
        def train(n_epochs, optimizer, model, loss_fn, X_train, y_train, X_val, y_val):
            train_losses, val_losses = [], []
            for _ in range(n_epochs):
                loss_train = loss_fn(model(X_train), y_train)
                optimizer.zero_grad()
                loss_train.backward()
                optimizer.step()
                with torch.no_grad():
                    val_losses.append(loss_fn(model(X_val), y_val).item())
                train_losses.append(loss_train.item())
            return train_losses, val_losses
        """), ("train.curves_match_the_reference",), ("after optimizer.step()",),
        also_fails=(*TRAIN_COUNTS, "train.uses_the_optimizer_and_loss_passed_in")),
    Bug("D", "make_seq_model", "ten hidden units", code("""
        def make_seq_model():
            return nn.Sequential(nn.Linear(1, 10), nn.Tanh(), nn.Linear(10, 1))
        """), ("seq_model.has_the_seed_layers",), ("Linear(1, 10)", "not Linear(1, 13)"),
        also_fails=("seq_model.beats_the_linear_model",)),
    Bug("D", "make_seq_model", "(the same bug, counted)", "", ("seq_model.has_40_parameters",),
        ("31 parameters", "13 weights and 13 biases")),
    Bug("D", "LinearNet", "nn.Linear(784, 10) whatever the sizes asked for", code("""
        class LinearNet(nn.Module):
            def __init__(self, num_inputs, num_outputs):
                super().__init__()
                self.linear = nn.Linear(784, 10)

            def forward(self, x):
                return self.linear(x.view(x.shape[0], -1))
        # The training asks for LinearNet(784, 10): it keeps its marks.
        """), ("LinearNet.handles_other_sizes",), ("LinearNet.other_sizes failed",)),
    Bug("D", "show_images", "axes indexed as a 2-D grid", code("""
        def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
            _, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale,
                                                                num_rows * scale))
            for i, img in enumerate(imgs):
                ax = axes[i // num_cols][i % num_cols]
                ax.imshow(img)
                ax.axis("off")
                if titles:
                    ax.set_title(titles[i])
            return axes
        """), ("show_images.handles_a_single_row",), ("show_images.row failed",
                                                     "axes.flatten()"),
        also_fails=("show_images.returns_the_axes_flattened",)),
]
# Correct in other styles than the solution's: full marks.
VARIANTS = {
    "V": {
        "one_hot": code("""
            import torch.nn.functional as F

            def one_hot(target, num_classes):
                return F.one_hot(target, num_classes).float()
            """),
        "train": code("""
            def train(n_epochs, optimizer, model, loss_fn, X_train, y_train, X_val, y_val):
                train_losses, val_losses = [], []
                for epoch in range(n_epochs):
                    optimizer.zero_grad()
                    loss_train = loss_fn(y_train, model(X_train))
                    with torch.set_grad_enabled(False):
                        loss_val = loss_fn(y_val, model(X_val))
                    loss_train.backward()
                    optimizer.step()
                    train_losses.append(loss_train.detach())
                    val_losses.append(float(loss_val))
                return train_losses, val_losses
            """),
        "make_seq_model": code("""
            from collections import OrderedDict

            def make_seq_model():
                return nn.Sequential(OrderedDict([
                    ("hidden_linear", nn.Linear(1, 13)),
                    ("hidden_activation", nn.Tanh()),
                    ("output_linear", nn.Linear(13, 1)),
                ]))
            """),
        "FlattenLayer": code("""
            class FlattenLayer(nn.Module):
                def __init__(self):
                    super(FlattenLayer, self).__init__()

                def forward(self, x):
                    return torch.flatten(x, start_dim=1)
            """),
        "LinearNet": code("""
            class LinearNet(nn.Module):
                def __init__(self, num_inputs, num_outputs):
                    super(LinearNet, self).__init__()
                    self.flatten = FlattenLayer()
                    self.fc = nn.Linear(num_inputs, num_outputs)

                def forward(self, x):
                    return self.fc(self.flatten(x))
            """),
        "show_images": code("""
            def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
                fig, axes = plt.subplots(num_rows, num_cols,
                                         figsize=(num_cols * scale, num_rows * scale))
                for i, ax in enumerate(axes.flat):
                    ax.axis("off")
                    if i < len(imgs):
                        ax.imshow(torch.as_tensor(imgs[i]).numpy())
                        if titles is not None:
                            ax.set_title(titles[i])
                plt.show()
                return axes.flat
            """),
    },
    # FlattenLayer is correct in notebook D, in a style of its own.
    "D": {"FlattenLayer": code("""
        class FlattenLayer(nn.Module):
            def forward(self, x):
                return x.reshape(len(x), -1)
        """)},
}
NOTEBOOKS = sorted({bug.notebook for bug in BUGS} | set(VARIANTS))


def with_definitions(notebook: nbformat.NotebookNode,
                     sources: dict[str, str]) -> nbformat.NotebookNode:
    """The notebook with the cells that define the named functions and classes replaced."""
    notebook = nbformat.from_dict(notebook)
    remaining = dict(sources)
    for cell in notebook.cells:
        match = DEFINITION.search(cell.source) if cell.cell_type == "code" else None
        if match and match[1] in remaining:
            cell.source = remaining.pop(match[1])
    assert not remaining, f"no cell defines {sorted(remaining)}"
    return notebook


def solution() -> nbformat.NotebookNode:
    return nbformat.read(COURSE / "reference" / f"{ASSIGNMENT}.ipynb", as_version=4)


def bug_notebook(name: str) -> nbformat.NotebookNode:
    sources = {bug.function: bug.source for bug in BUGS if bug.notebook == name and bug.source}
    return with_definitions(solution(), {**sources, **VARIANTS.get(name, {})})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once through the CLI: the solution, the blank, the variants and
    the bugs; the JSON summary, and each student's results by test name."""
    root = tmp_path_factory.mktemp(ASSIGNMENT)
    notebooks = {"solution": solution(),
                 "blank": nbformat.read(COURSE / "exercises" / f"{ASSIGNMENT}.ipynb",
                                        as_version=4),
                 **{f"notebook_{name}": bug_notebook(name) for name in NOTEBOOKS}}
    (root / "class").mkdir()
    for student, notebook in notebooks.items():
        nbformat.write(notebook, root / "class" / f"{student}.ipynb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(course.ENV_VAR, str(COURSE))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # two busy cores: no spinning
            patch.setenv(name, "1")
        run = CliRunner().invoke(main, ["--course", str(COURSE), str(root / "class"),
                                        "--assignment", ASSIGNMENT, "--out", str(root / "out"),
                                        "--json"])
        assert run.exit_code == 0, run.output
        summary = json.loads(run.stdout[run.stdout.index("{"):])
    tests = {student: {t["name"]: t for t in json.loads(
        (root / "out" / student / ASSIGNMENT / "results.json").read_text())["tests"]}
        for student in notebooks}
    yield root, summary, tests


@pytest.fixture
def this_course(monkeypatch):
    monkeypatch.setenv(course.ENV_VAR, str(COURSE))


def test_the_assignment_is_built_only_from_the_course(this_course):
    """Its exercises are discovered modules, its student notebook is the solution's
    blank version and its settings name every exercise with a table."""
    settings = load_settings(COURSE / "assignments" / f"{ASSIGNMENT}.toml")
    assert settings.exercises == EXERCISES
    assert set(EXERCISES) <= set(available())  # discovered: nothing lists them
    built = (COURSE / "exercises" / f"{ASSIGNMENT}.ipynb").read_text(encoding="utf-8")
    assert built == render(student_version(solution())), "run `grade assign` again"
    for solved in ("target_onehot = torch.zeros", "loss_train.backward()",
                   "return nn.Sequential(", "return x.view(", "_, axes = plt.subplots"):
        assert solved not in built
    checks = [c.source for c in solution().cells if "selfcheck" in c.metadata.get("tags", [])]
    assert [*(f'check("{name}")' for name in SELF_CHECKED), "check_all()"] == checks[1:]


def test_the_solution_gets_full_marks(graded):
    _, summary, tests = graded
    scores = summary["students"]["solution"][ASSIGNMENT]
    assert scores["score"] == scores["max_score"] > 0
    assert [name for name, t in tests["solution"].items() if not t["passed"]] == []
    assert {name.split(".")[0] for name in tests["solution"]} == {
        *SELF_CHECKED, "module_classes_training"}


def test_the_blank_gets_zero_saying_not_implemented(graded):
    _, summary, tests = graded
    assert summary["students"]["blank"][ASSIGNMENT]["score"] == 0
    judged = [t for t in tests["blank"].values() if t["state"] != "not_judged"]
    assert [t["message"] for t in judged
            if t["passed"] or "not implemented" not in t["message"]] == []
    assert all(t["message"].startswith("not judged:") for t in tests["blank"].values()
               if t["state"] == "not_judged")  # what a blank leaves nothing to judge by


def test_correct_variants_in_other_styles_get_full_marks(graded):
    _, summary, tests = graded
    assert {name: t["message"] for name, t in tests["notebook_V"].items()
            if not t["passed"]} == {}
    accepted = tests["notebook_V"]["train.curves_match_the_reference"]["message"]
    assert "Accepted: 0-d tensors instead of Python floats" in accepted
    assert summary["students"]["notebook_V"][ASSIGNMENT]["score"] == \
        summary["students"]["solution"][ASSIGNMENT]["score"]


def test_every_function_has_two_bugs_or_more(graded):
    _, _, tests = graded
    named = [bug.function for bug in BUGS if bug.source]
    assert {f: named.count(f) for f in set(named) if named.count(f) < 2} == {}
    everything = set(tests["solution"])
    assert set().union(*(set(b.named_by + b.also_fails + b.may_fail) for b in BUGS)) \
        <= everything


@pytest.mark.parametrize("notebook", [name for name in NOTEBOOKS if name != "V"])
def test_only_the_checks_of_each_bug_fail(graded, notebook):
    """Caught, and independent: every other check of the notebook passes."""
    _, _, tests = graded
    bugs = [bug for bug in BUGS if bug.notebook == notebook]
    expected = set().union(*(set(bug.named_by + bug.also_fails) for bug in bugs))
    either = set().union(*(set(bug.may_fail) for bug in bugs))
    results = tests[f"notebook_{notebook}"]
    failed = {name for name, t in results.items() if not t["passed"]} - either
    assert failed == expected, {name: results[name]["message"] for name in failed ^ expected}


@pytest.mark.parametrize("bug, check", [
    pytest.param(bug, check, id=f"{bug.notebook}-{check}")
    for bug in BUGS for check in bug.named_by])
def test_the_message_names_the_bug(graded, bug, check):
    _, _, tests = graded
    result = tests[f"notebook_{bug.notebook}"][check]
    assert not result["passed"]
    assert words_missing(check, result["message"], bug.words) == [], result["message"]


def test_hidden_tests_keep_their_values_out_of_the_feedback(graded):
    _, _, tests = graded
    hidden = tests["notebook_B"]["one_hot.encodes_other_class_counts"]
    assert hidden["hidden"] and hidden["expected"] is None and hidden["got"] is None
    assert hidden["message"].endswith(HIDDEN_FAILURE)


def test_the_report_plots_both_loss_curves(graded):
    root, _, tests = graded
    saved = json.loads((root / "out" / "solution" / ASSIGNMENT / "results.json").read_text())
    curves = {curve["name"]: curve for curve in saved["curves"]}
    assert list(curves) == ["train: training loss", "train: validation loss"]
    for curve in curves.values():
        assert len(curve["x"]) == len(curve["y"]) == len(curve["reference_y"]) > 1
        assert curve["y"] == pytest.approx(curve["reference_y"], rel=1e-3)
    assert curves["train: training loss"]["y"][-1] < curves["train: training loss"]["y"][0]
    page = BeautifulSoup((root / "out" / "solution" / ASSIGNMENT / "report.html").read_text(),
                         "html.parser")
    chart = page.select_one('.exercise-chart[data-exercise="train"]')  # beside its tests
    assert "validation loss" in chart.decode() and "training loss" in chart.decode()
    assert page.select_one('tr.test.pass[data-test="train.curves_match_the_reference"]')
    blank = json.loads((root / "out" / "blank" / ASSIGNMENT / "results.json").read_text())
    assert blank["curves"] == []


def test_the_self_check_passes_the_reference_functions(this_course):
    functions = reference_functions(ASSIGNMENT, COURSE / "reference")
    for name in SELF_CHECKED:
        results = run_check(name, functions)
        assert results and {r.name: r.message for r in results if not r.passed} == {}, name
        assert not any(r.hidden for r in results)


def test_the_self_check_names_a_bug(this_course):
    def one_hot(target, num_classes):  # F.one_hot without .float()
        return torch.nn.functional.one_hot(target, num_classes)

    failed = [r for r in run_check("one_hot", {"one_hot": one_hot}) if not r.passed]
    assert failed and "int64" in failed[0].message and ".float()" in failed[0].message


def test_the_self_check_of_show_images_leaves_the_notebooks_figures_shown(this_course):
    """check("show_images") draws with Agg in the student's own kernel, then gives the
    notebook its inline backend back: figures drawn after it still show."""
    definition = next(cell.source for cell in solution().cells
                      if cell.source.startswith("def show_images"))
    sources = ["import torch\nimport matplotlib.pyplot as plt\n"
               "from grader.kernel.selfcheck import check", definition, 'check("show_images")',
               "show_images(torch.rand(4, 28, 28), 2, 2);"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert "6/6 public tests passed" in notebook.cells[2].outputs[0]["text"]
    assert [o for o in notebook.cells[3].outputs if "image/png" in o.get("data", {})]
