"""The exercises from the other seed tutorials: probability and the normal density (seed
000), gradients by hand against autograd (002) and the concise implementations (000, 002,
004). The solution gets full marks, the blank none, and realistic bugs fail the right checks
with a message that names them, leaving every other check passing.

Each bug notebook carries one bug per new function, so a notebook is graded once for many
bugs; the from-scratch functions stay correct in it and must keep full marks.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import (
    LENIENT,
    Bug,
    code,
    grade_file,
    messages,
    one_demo_epoch,
    outcomes,
    with_functions,
    words_missing,
    write_notebook,
)

from grader.exercises import autograd, concise_linreg, concise_softmax, probability
from grader.grading.results import NOT_JUDGED, Result

NEW_MODULES = (probability, autograd, concise_linreg, concise_softmax)
NEW_CHECKS = {check.full_name for module in NEW_MODULES for check in module.CHECKS}
NEW_EXERCISES = {check.exercise for module in NEW_MODULES for check in module.CHECKS}
BLANKS = ("estimate_probabilities", "normal", "analytic_grad", "numerical_grad",
          "split_indices", "training_loop", "load_array", "train_linreg_concise",
          "init_weights", "evaluate_accuracy", "train_epoch")

# An empty source continues the bug above it, with further checks and their own words.
BUGS = [
    # --- notebook P: the seeds' own code and the first slips -----------------------------
    Bug("P", "estimate_probabilities", "normalised by the grand total (seed 000)", code("""
        def estimate_probabilities(counts):
            cum_counts = counts.cumsum(dim=0)
            return cum_counts / cum_counts.sum()
        """), ("rows_sum_to_one", "estimates_match_the_reference",
               "handles_integer_counts_and_other_dice"), ("grand total", "keepdim=True"),
        also_fails=("approaches_the_true_probabilities",)),
    Bug("P", "normal", "np.exp (seed 000)", code("""
        import numpy as np

        def normal(x, mu, sigma):
            p = 1 / math.sqrt(2 * math.pi * sigma**2)
            return p * np.exp(-0.5 / sigma**2 * (x - mu)**2)
        """), ("accepts_numbers_and_numpy_arrays", "keeps_the_graph"), ("np.exp",)),
    Bug("P", "analytic_grad", "the factor 2 of the square forgotten", code("""
        def analytic_grad(x, y, w, b):
            d_pred = model(x, w, b) - y
            return torch.stack([(d_pred * x).mean(), d_pred.mean()])
        """), ("matches_autograd_at_the_start", "matches_autograd_elsewhere"),
        ("half", "2(p − y)")),
    Bug("P", "numerical_grad", "a one-sided difference", code("""
        def numerical_grad(x, y, w, b, eps=1e-2):
            base = mse(model(x, w, b), y)
            return torch.stack([(mse(model(x, w + eps, b), y) - base) / eps,
                                (mse(model(x, w, b + eps), y) - base) / eps])
        """), ("central_difference_matches_autograd", "matches_autograd_elsewhere_too"),
        ("one-sided", "central")),
    Bug("P", "split_indices", "shuffled[n_val:-1] drops the last index (seed 002)", code("""
        def split_indices(n_samples, val_fraction=0.2):
            n_val = int(val_fraction * n_samples)
            shuffled_indices = torch.randperm(n_samples)
            return shuffled_indices[n_val:-1], shuffled_indices[:n_val]
        """), ("sizes_follow_the_fraction", "handles_small_sets"),
        ("[n_val:-1]", "shuffled[n_val:]"), also_fails=("covers_every_index_once",)),
    Bug("P", "training_loop", "params.grad never zeroed", code("""
        def training_loop(n_epochs, learning_rate, params, x, y):
            for _ in range(n_epochs):
                mse(model(x, *params), y).backward()
                with torch.no_grad():
                    params -= learning_rate * params.grad
            return params
        """), ("zeroes_the_gradient_every_step",), ("sum of both", "zero"),
        also_fails=("reproduces_the_seed_run", "trains_on_other_data",
                    "gradients_come_from_autograd"),
        exercise="autograd_training"),
    Bug("P", "load_array", "is_train ignored, never shuffled", code("""
        def load_array(data_arrays, batch_size, is_train=True):
            return DataLoader(TensorDataset(*data_arrays), batch_size)
        """), ("shuffles_when_training",), ("original order", "shuffle=is_train")),
    Bug("P", "train_linreg_concise", "trainer.zero_grad() forgotten", code("""
        def train_linreg_concise(data_iter, num_epochs, lr=0.03):
            net = nn.Sequential(nn.Linear(2, 1))
            net[0].weight.data.normal_(0, 0.01)
            net[0].bias.data.fill_(0)
            loss = nn.MSELoss()
            trainer = torch.optim.SGD(net.parameters(), lr=lr)
            for _ in range(num_epochs):
                for X, y in data_iter:
                    loss(net(X), y).backward()
                    trainer.step()
            return net
        """), ("reaches_the_reference_mse",), ("diverged", "zero_grad()"),
        also_fails=("recovers_the_true_weights",), exercise="concise_linreg_training"),
    Bug("P", "init_weights", "0.01 passed as the mean", code("""
        def init_weights(m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.01)
        """), ("draws_linear_weights_from_normal",), ("sets the mean", "std=0.01")),
    Bug("P", "evaluate_accuracy", "neither net.eval() nor torch.no_grad()", code("""
        def evaluate_accuracy(net, data_iter):
            correct, total = 0, 0
            for X, y in data_iter:
                correct += int((net(X).argmax(dim=1) == y).sum())
                total += len(y)
            return correct / total
        """), ("matches_the_accuracy_computed_here", "runs_in_eval_mode"),
        ("training mode", "net.eval()")),
    Bug("P", "evaluate_accuracy", "(the same bug, without no_grad)", "",
        ("runs_without_gradients",), ("torch.no_grad()",)),
    Bug("P", "train_epoch", "updater.zero_grad() forgotten", code("""
        def train_epoch(net, train_iter, loss, updater):
            net.train()
            for X, y in train_iter:
                loss(net(X), y).backward()
                updater.step()
        """), ("zeroes_the_gradients",), ("earlier batches", "zero_grad()"),
        # Carried gradients may or may not leave the epoch short of the accuracy (0.763
        # against a limit of 0.762 on the grading seed); where they do, the counts the kernel
        # reports count for nothing on their own.
        may_fail=("reaches_the_test_accuracy", "steps_once_per_batch",
                  "trains_in_training_mode"),
        exercise="concise_softmax_training"),
    # --- notebook Q: another slip per function --------------------------------------------
    Bug("Q", "estimate_probabilities", "no running sum, each group alone", code("""
        def estimate_probabilities(counts):
            return counts / counts.sum(dim=1, keepdim=True)
        """), ("estimates_match_the_reference", "handles_integer_counts_and_other_dice"),
        ("its own group only", "cumsum(dim=0)"), also_fails=("approaches_the_true_probabilities",)),
    Bug("Q", "normal", "σ instead of σ² in the constant", code("""
        def normal(x, mu, sigma):
            x = torch.as_tensor(x)
            return torch.exp(-(x - mu) ** 2 / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma)
        """), ("values_match_the_reference",), ("σ = 1", "σ²"),
        also_fails=("matches_torch_distributions", "accepts_numbers_and_numpy_arrays",
                    "keeps_the_graph")),
    Bug("Q", "analytic_grad", "target minus prediction", code("""
        def analytic_grad(x, y, w, b):
            d_pred = 2 * (y - model(x, w, b))
            return torch.stack([(d_pred * x).mean(), d_pred.mean()])
        """), ("matches_autograd_at_the_start", "matches_autograd_elsewhere"),
        ("sign is flipped",)),
    Bug("Q", "numerical_grad", "divided by eps, not 2 * eps", code("""
        def numerical_grad(x, y, w, b, eps=1e-2):
            def loss(w, b):
                return mse(model(x, w, b), y)

            return torch.stack([(loss(w + eps, b) - loss(w - eps, b)) / eps,
                                (loss(w, b + eps) - loss(w, b - eps)) / eps])
        """), ("central_difference_matches_autograd", "matches_autograd_elsewhere_too"),
        ("twice", "2 * eps")),
    Bug("Q", "split_indices", "two independent permutations overlap", code("""
        def split_indices(n_samples, val_fraction=0.2):
            n_val = int(val_fraction * n_samples)
            return torch.randperm(n_samples)[n_val:], torch.randperm(n_samples)[:n_val]
        """), ("covers_every_index_once", "handles_small_sets"), ("in both",)),
    Bug("Q", "training_loop", "in-place update outside torch.no_grad()", code("""
        def training_loop(n_epochs, learning_rate, params, x, y):
            for _ in range(n_epochs):
                if params.grad is not None:
                    params.grad.zero_()
                mse(model(x, *params), y).backward()
                params -= learning_rate * params.grad
            return params
        """), ("reproduces_the_seed_run", "zeroes_the_gradient_every_step",
               "trains_on_other_data"), ("leaf Variable", "torch.no_grad()"),
        also_fails=("gradients_come_from_autograd",),
        exercise="autograd_training"),
    Bug("Q", "load_array", "always shuffled, is_train ignored", code("""
        def load_array(data_arrays, batch_size, is_train=True):
            return DataLoader(TensorDataset(*data_arrays), batch_size, shuffle=True)
        """), ("keeps_the_order_for_evaluation",), ("is_train=False", "shuffle=is_train")),
    Bug("Q", "train_linreg_concise", "nn.Linear's default initialisation kept", code("""
        def train_linreg_concise(data_iter, num_epochs, lr=0.03):
            net = nn.Sequential(nn.Linear(2, 1))
            loss = nn.MSELoss()
            trainer = torch.optim.SGD(net.parameters(), lr=lr)
            for _ in range(num_epochs):
                for X, y in data_iter:
                    trainer.zero_grad()
                    loss(net(X), y).backward()
                    trainer.step()
            return net
        """), ("initialises_small_weights_and_zero_bias",), ("bias is not 0", "fill_(0)"),
        exercise="concise_linreg_training"),
    Bug("Q", "init_weights", "every module with a weight", code("""
        def init_weights(m):
            if hasattr(m, "weight"):
                nn.init.normal_(m.weight, std=0.01)
        """), ("leaves_the_bias_and_other_modules_alone",), ("LayerNorm", "nn.Linear")),
    Bug("Q", "evaluate_accuracy", "per-batch accuracies averaged", code("""
        def evaluate_accuracy(net, data_iter):
            net.eval()
            accuracies = []
            with torch.no_grad():
                for X, y in data_iter:
                    accuracies.append(float((net(X).argmax(dim=1) == y).float().mean()))
            return sum(accuracies) / len(accuracies)
        """), ("matches_the_accuracy_computed_here",), ("per-batch", "number of examples")),
    Bug("Q", "train_epoch", "net.train() forgotten", code("""
        def train_epoch(net, train_iter, loss, updater):
            for X, y in train_iter:
                updater.zero_grad()
                loss(net(X), y).backward()
                updater.step()
        """), ("trains_in_training_mode",), ("net.train()",),
        exercise="concise_softmax_training"),
]
NOTEBOOKS = sorted({bug.notebook for bug in BUGS})


def case_id(bug: Bug, check: str) -> str:
    return f"{bug.notebook}-{bug.function}-{check}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory, single_threaded_kernels) -> Callable[[str], Result]:
    """Grade each notebook once, on first use."""
    cache: dict[str, Result] = {}

    def grade(notebook: str) -> Result:
        if notebook not in cache:
            sources = {bug.function: bug.source for bug in BUGS
                       if bug.notebook == notebook and bug.source}
            path = tmp_path_factory.mktemp(notebook) / f"{notebook}.ipynb"
            built = one_demo_epoch(with_functions(sources))
            cache[notebook] = grade_file(write_notebook(built, path), LENIENT)
        return cache[notebook]

    return grade


def test_the_solution_gets_full_marks_on_the_new_exercises(solution_result):
    new = {t.name: t for t in solution_result.tests if t.name in NEW_CHECKS}
    assert new.keys() == NEW_CHECKS
    assert {name: t.message for name, t in new.items() if not t.passed} == {}


def test_the_blank_gets_zero_saying_not_implemented(blank_result):
    new = [t for t in blank_result.tests if t.name in NEW_CHECKS]
    assert new and all(t.points == 0 for t in new)
    judged = [t for t in new if t.state != NOT_JUDGED]  # the rest have nothing to go by
    assert [t.message for t in judged if "not implemented" not in t.message] == []


def test_the_dice_estimates_are_plotted_in_the_report(solution_result):
    dice = next(c for c in solution_result.curves
                if c.name == "estimate_probabilities: running estimates")
    assert list(dice.series) == [f"P(die={face})" for face in range(1, 7)]
    assert all(abs(values[-1] - 1 / 6) < 0.05 for values in dice.series.values())
    assert dice.reference_y == [1 / 6] * len(dice.x)


def test_every_new_blank_has_two_bugs_the_grader_names():
    named = [bug.function for bug in BUGS if bug.source]
    assert {function: named.count(function) for function in BLANKS
            if named.count(function) < 2} == {}
    assert set().union(*(bug.failing for bug in BUGS)) <= NEW_CHECKS


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_only_the_checks_of_each_bug_fail(graded, notebook):
    """Caught, and independent: every other check, the from-scratch ones included, passes."""
    expected = set().union(*(bug.failing for bug in BUGS if bug.notebook == notebook))
    either = set().union(*(bug.uncertain for bug in BUGS if bug.notebook == notebook))
    result = graded(notebook)
    failed = {test.name for test in result.tests if not test.passed} - either
    assert failed == expected, {name: messages(result).get(name) for name in failed ^ expected}


@pytest.mark.parametrize("bug, check", [
    pytest.param(bug, check, id=case_id(bug, check)) for bug in BUGS for check in bug.named_by])
def test_the_message_names_the_bug(graded, bug, check):
    name = f"{bug.exercise or bug.function}.{check}"
    message = messages(graded(bug.notebook))[name]
    assert not outcomes(graded(bug.notebook))[name]
    assert words_missing(name, message, bug.words) == [], message
