"""Realistic student bugs fail the right checks with a message that names them; the
equivalent forms a careful student writes get full marks, and the feedback says what was
accepted.

Grading one notebook costs seconds (a kernel, the notebook, the probes, a Fashion-MNIST
epoch), so each notebook carries one bug per function. The checks are per function, so bugs
in different functions cannot mask one another; only the training checks combine functions,
and they are left out of the per-function assertions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

from grader.exercises import linreg, quiz, softmax
from grader.grading.expect import COUNTEREXAMPLE
from grader.grading.results import Result

TRAINING = {"linreg_training", "softmax_training"}
# The from-scratch exercises; the others' bugs are in test_more_exercises.py.
CHECKS = {check.full_name for module in (linreg, softmax, quiz) for check in module.CHECKS}


@dataclass(frozen=True)
class Form:
    """A correct implementation that differs from the reference, and the notes it earns."""

    notebook: str
    function: str
    what: str
    source: str
    accepted: dict[str, str]  # check -> what its "Accepted:" note must say
    gap: str | None = None  # set where the grader still takes points off


DATA_ITER_CHECKS = ("yields_feature_label_pairs", "covers_every_example_once_per_epoch",
                    "keeps_the_last_partial_batch", "shuffles_every_epoch",
                    "keeps_features_and_labels_aligned", "handles_flat_labels")
SOFTMAX_CHECKS = ("values_match_the_reference", "rows_sum_to_one",
                  "stays_finite_on_large_inputs", "keeps_shape_and_dtype",
                  "leaves_its_input_unchanged", "softmax_gradient_matches")
ACCURACY_CHECKS = ("accuracy_matches_the_reference", "breaks_ties_like_argmax")


# The checks whose failure shows the smallest candidate input on which it also shows.
SHOW_A_CASE = {"softmax.values_match_the_reference", "softmax.stays_finite_on_large_inputs",
               "cross_entropy.returns_per_example_cross_entropy",
               "cross_entropy.picks_the_label_entries", "accuracy.accuracy_matches_the_reference",
               "squared_loss.values_match_the_reference", "sgd.updates_parameters_in_place",
               "sgd.divides_by_batch_size"}
# Bugs that raise on the hidden input: their message is the student's own error.
RAISE = {"row sums without keepdim=True", "argmax over dim=0"}


def others(checks: tuple[str, ...], *named: str) -> tuple[str, ...]:
    return tuple(check for check in checks if check not in named)


BUGS = [
    # --- notebook A: the seeds' own mistakes and the commonest shape slips --------------
    Bug("A", "data_iter", "n from the global num_examples (seed 000)", code("""
        num_examples = features.shape[0]

        def data_iter(batch_size, features, labels):
            indices = list(range(num_examples))
            random.shuffle(indices)
            for i in range(0, num_examples, batch_size):
                batch_indices = torch.tensor(indices[i: min(i + batch_size, num_examples)])
                yield features[batch_indices], labels[batch_indices]
        """), DATA_ITER_CHECKS, ("global", "num_examples", "len(features)")),
    Bug("A", "squared_loss", "y not reshaped, (n, 1) - (n,)", code("""
        def squared_loss(y_hat, y):
            return (y_hat - y) ** 2 / 2
        """), ("accepts_targets_of_shape_n",), ("(13, 13)", "broadcast", "reshape y")),
    Bug("A", "sgd", "param = param - ... rebinds the name", code("""
        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param = param - lr * param.grad / batch_size
        """), ("updates_parameters_in_place",), ("did not change", "in place"),
        also_fails=("divides_by_batch_size", "zeroes_the_gradients")),
    Bug("A", "softmax", "exp without subtracting the row max (d2l)", code("""
        def softmax(X):
            X_exp = torch.exp(X)
            return X_exp / X_exp.sum(1, keepdim=True)
        """), ("stays_finite_on_large_inputs",), ("NaN", "overflows", "max")),
    Bug("A", "cross_entropy", "y_hat[:, y] picks whole columns", code("""
        def cross_entropy(y_hat, y):
            return -torch.log(y_hat[:, y])
        """), ("returns_per_example_cross_entropy", "picks_the_label_entries"),
        ("(n, n)", "y_hat[range(n), y]"), also_fails=("cross_entropy_gradient_matches",)),
    Bug("A", "accuracy", "the count of hits, as d2l returns", code("""
        def accuracy(y_hat, y):
            if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
                y_hat = y_hat.argmax(axis=1)
            cmp = y_hat.type(y.dtype) == y.reshape(-1)
            return float(cmp.type(y.dtype).sum())
        """), ("accuracy_matches_the_reference",), ("count of correct predictions", "fraction"),
        also_fails=("breaks_ties_like_argmax",)),
    # --- notebook B: a missing factor, sign or shuffle ----------------------------------
    Bug("B", "data_iter", "no shuffle", code("""
        def data_iter(batch_size, features, labels):
            for i in range(0, len(features), batch_size):
                yield features[i:i + batch_size], labels[i:i + batch_size]
        """), ("shuffles_every_epoch",), ("original order", "shuffle")),
    Bug("B", "squared_loss", "not halved", code("""
        def squared_loss(y_hat, y):
            return (y_hat - y.reshape(y_hat.shape)) ** 2
        """), ("values_match_the_reference",), ("twice", "halve"),
        also_fails=("accepts_targets_of_shape_n", "gradient_matches_the_reference")),
    Bug("B", "sgd", "gradient not divided by batch_size", code("""
        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param -= lr * param.grad
                    param.grad.zero_()
        """), ("divides_by_batch_size",), ("too large", "batch_size")),
    Bug("B", "softmax", "normalised over dim=0", code("""
        def softmax(X):
            X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
            return X_exp / X_exp.sum(dim=0, keepdim=True)
        """), ("values_match_the_reference",), ("columns sum to 1", "dim=1"),
        also_fails=others(SOFTMAX_CHECKS, "values_match_the_reference",
                          "leaves_its_input_unchanged", "keeps_shape_and_dtype")),
    Bug("B", "cross_entropy", "minus sign forgotten", code("""
        def cross_entropy(y_hat, y):
            return torch.log(y_hat[range(len(y_hat)), y])
        """), ("picks_the_label_entries",), ("negative", "-log"),
        also_fails=("cross_entropy_gradient_matches",)),
    Bug("B", "accuracy", "a tie counts as a hit for every maximal class", code("""
        def accuracy(y_hat, y):
            hits = y_hat == y_hat.max(dim=1, keepdim=True).values
            return float(hits[range(len(y_hat)), y.reshape(-1)].float().mean())
        """), ("breaks_ties_like_argmax",), ("tied maxima", "0.75")),
    # --- notebook C: a dropped batch, reductions, in-place updates ----------------------
    Bug("C", "data_iter", "last partial batch dropped", code("""
        def data_iter(batch_size, features, labels):
            indices = list(range(len(features)))
            random.shuffle(indices)
            for i in range(0, len(features) - batch_size + 1, batch_size):
                batch_indices = torch.tensor(indices[i: i + batch_size])
                yield features[batch_indices], labels[batch_indices]
        """), ("keeps_the_last_partial_batch",), ("the last", "remainder", "the smallest case: "
        "with 3 examples and batch_size 2, the last batch of 1 example was never yielded"),
        also_fails=("covers_every_example_once_per_epoch", "handles_flat_labels")),
    Bug("C", "squared_loss", "returns the mean", code("""
        def squared_loss(y_hat, y):
            return ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).mean()
        """), ("returns_per_example_losses", "values_match_the_reference"),
        ("single number", "per-example"),
        also_fails=("accepts_targets_of_shape_n", "gradient_matches_the_reference")),
    Bug("C", "sgd", "in-place update outside torch.no_grad()", code("""
        def sgd(params, lr, batch_size):
            for param in params:
                param -= lr * param.grad / batch_size
                param.grad.zero_()
        """), ("builds_no_autograd_graph",), ("no_grad",),
        also_fails=("updates_parameters_in_place", "divides_by_batch_size",
                    "zeroes_the_gradients")),
    Bug("C", "softmax", "shifts X in place", code("""
        def softmax(X):
            X -= X.max(dim=1, keepdim=True).values
            X_exp = X.exp()
            return X_exp / X_exp.sum(dim=1, keepdim=True)
        """), ("leaves_its_input_unchanged",), ("modified X in place", "new tensor"),
        also_fails=("softmax_gradient_matches",)),
    Bug("C", "cross_entropy", "returns the mean", code("""
        def cross_entropy(y_hat, y):
            return -torch.log(y_hat[range(len(y_hat)), y]).mean()
        """), ("returns_per_example_cross_entropy", "picks_the_label_entries"),
        ("single number", "per-example"), also_fails=("cross_entropy_gradient_matches",)),
    Bug("C", "accuracy", "returns the hits without averaging", code("""
        def accuracy(y_hat, y):
            return (y_hat.argmax(dim=1) == y.reshape(-1)).float()
        """), ("accuracy_matches_the_reference",), ("must be a number",),
        also_fails=("breaks_ties_like_argmax",)),
    # --- notebook D: bugs caught, but explained in autograd's or the wrong terms --------
    Bug("D", "data_iter", "features and labels shuffled apart", code("""
        def data_iter(batch_size, features, labels):
            n = len(features)
            for i in range(0, n, batch_size):
                yield (features[torch.randperm(n)[i:i + batch_size]],
                       labels[torch.randperm(n)[i:i + batch_size]])
        """), ("keeps_features_and_labels_aligned",), ("do not belong", "same indices"),
        also_fails=("covers_every_example_once_per_epoch", "handles_flat_labels")),
    Bug("D", "sgd", "gradient zeroed before the update", code("""
        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param.grad.zero_()
                    param -= lr * param.grad / batch_size
        """), ("updates_parameters_in_place",), ("zero",),
        also_fails=("divides_by_batch_size",)),
    Bug("D", "softmax", "row sums without keepdim=True", code("""
        def softmax(X):
            X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
            return X_exp / X_exp.sum(dim=1)
        """), ("values_match_the_reference",), ("keepdim",),
        also_fails=others(SOFTMAX_CHECKS, "values_match_the_reference")),
    Bug("D", "accuracy", "argmax over dim=0", code("""
        def accuracy(y_hat, y):
            return float((y_hat.argmax(dim=0) == y.reshape(-1)).float().mean())
        """), ("accuracy_matches_the_reference",), ("dim=1",),
        also_fails=others(ACCURACY_CHECKS, "accuracy_matches_the_reference")),
    # --- notebooks F and G: wrong forms caught by value, and named ------------------------
    Bug("F", "squared_loss", "absolute error instead of the square", code("""
        def squared_loss(y_hat, y):
            return (y_hat - y.reshape(y_hat.shape)).abs() / 2
        """), ("values_match_the_reference",), ("absolute errors", "square"),
        also_fails=("accepts_targets_of_shape_n", "gradient_matches_the_reference")),
    Bug("F", "sgd", "adds the gradient instead of subtracting it", code("""
        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param += lr * param.grad / batch_size
                    param.grad.zero_()
        """), ("updates_parameters_in_place",), ("up the gradient", "-=")),
    Bug("F", "softmax", "divided by the sum of the whole matrix", code("""
        def softmax(X):
            X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
            return X_exp / X_exp.sum()
        """), ("values_match_the_reference",), ("whole matrix", "dim=1, keepdim=True"),
        also_fails=("rows_sum_to_one", "stays_finite_on_large_inputs",
                    "softmax_gradient_matches")),
    Bug("F", "cross_entropy", "the log forgotten", code("""
        def cross_entropy(y_hat, y):
            return -y_hat[range(len(y_hat)), y]
        """), ("picks_the_label_entries",), ("log is missing", "-log"),
        also_fails=("cross_entropy_gradient_matches",)),
    Bug("F", "accuracy", "floor division of the hits by n", code("""
        def accuracy(y_hat, y):
            return int((y_hat.argmax(dim=1) == y.reshape(-1)).sum()) // len(y)
        """), ("accuracy_matches_the_reference",), ("integer division", "//"),
        also_fails=others(ACCURACY_CHECKS, "accuracy_matches_the_reference")),
    Bug("G", "squared_loss", "the difference not squared", code("""
        def squared_loss(y_hat, y):
            return (y_hat - y.reshape(y_hat.shape)) / 2
        """), ("values_match_the_reference",), ("not squared",),
        also_fails=("returns_per_example_losses", "accepts_targets_of_shape_n",
                    "gradient_matches_the_reference")),
    Bug("G", "sgd", "the learning rate left out", code("""
        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param -= param.grad / batch_size
                    param.grad.zero_()
        """), ("divides_by_batch_size",), ("learning rate",)),
    Bug("G", "softmax", "log-probabilities, the exp forgotten", code("""
        def softmax(X):
            return X - torch.logsumexp(X, dim=1, keepdim=True)
        """), ("values_match_the_reference",), ("log-probabilities", "exp"),
        also_fails=("rows_sum_to_one", "stays_finite_on_large_inputs",
                    "keeps_shape_and_dtype", "softmax_gradient_matches")),
    Bug("G", "cross_entropy", "log10 instead of the natural log", code("""
        def cross_entropy(y_hat, y):
            return -torch.log10(y_hat[range(len(y_hat)), y])
        """), ("picks_the_label_entries",), ("log10", "natural log"),
        also_fails=("cross_entropy_gradient_matches",)),
    Bug("G", "accuracy", "the hits divided by the number of classes", code("""
        def accuracy(y_hat, y):
            return float((y_hat.argmax(dim=1) == y.reshape(-1)).sum()) / y_hat.shape[1]
        """), ("accuracy_matches_the_reference",), ("number of classes", "len(y)"),
        also_fails=others(ACCURACY_CHECKS, "accuracy_matches_the_reference")),
]

FORMS = [
    Form("E1", "data_iter", "torch.randperm with index_select", code("""
        def data_iter(batch_size, features, labels):
            num_examples = len(features)
            indices = torch.randperm(num_examples)
            for i in range(0, num_examples, batch_size):
                j = indices[i:i + batch_size]
                yield features.index_select(0, j), labels.index_select(0, j)
        """), {}),
    Form("E1", "squared_loss", "losses of shape (n,)", code("""
        def squared_loss(y_hat, y):
            return (y_hat.reshape(-1) - y.reshape(-1)) ** 2 / 2
        """), {"returns_per_example_losses": "losses of shape (n,) instead of (n, 1)"}),
    Form("E1", "sgd", "param.data -= with .grad.data.zero_() (seed 001's step, zeroed here)",
         code("""
        def sgd(params, lr, batch_size):
            for param in params:
                param.data -= lr * param.grad / batch_size
                param.grad.data.zero_()
        """), {}),
    Form("E1", "softmax", "exp(X - logsumexp(X))", code("""
        def softmax(X):
            return torch.exp(X - torch.logsumexp(X, dim=1, keepdim=True))
        """), {}),
    Form("E1", "cross_entropy", "gather, losses of shape (n, 1)", code("""
        def cross_entropy(y_hat, y):
            return -torch.log(y_hat.gather(1, y.view(-1, 1)))
        """), {"picks_the_label_entries": "losses of shape (n, 1)"}),
    Form("E1", "accuracy", "the hits over len(y) (seed 004's mean)", code("""
        def accuracy(y_hat, y):
            return (y_hat.argmax(dim=1) == y).sum().item() / len(y)
        """), {}),
    Form("E2", "data_iter", "LongTensor with index_select (seed 001)", code("""
        def data_iter(batch_size, features, labels):
            num_examples = len(features)
            indices = list(range(num_examples))
            random.shuffle(indices)
            for i in range(0, num_examples, batch_size):
                j = torch.LongTensor(indices[i:min(i + batch_size, num_examples)])
                yield features.index_select(0, j), labels.index_select(0, j)
        """), {}),
    Form("E2", "squared_loss", "y.view(y_hat.size()) (seed 001)", code("""
        def squared_loss(y_hat, y):
            return (y_hat - y.view(y_hat.size())) ** 2 / 2
        """), {}),
    Form("E2", "sgd", "sub_ and grad set to None", code("""
        def sgd(params, lr, batch_size):
            with torch.no_grad():
                for param in params:
                    param.sub_(lr * param.grad / batch_size)
                    param.grad = None
        """), {"zeroes_the_gradients": "gradients set to None"}),
    Form("E2", "softmax", "amax shift, one exp", code("""
        def softmax(X):
            X_exp = (X - X.amax(dim=1, keepdim=True)).exp()
            return X_exp / X_exp.sum(dim=1, keepdim=True)
        """), {}),
    Form("E2", "cross_entropy", "torch.arange indexing, .log()", code("""
        def cross_entropy(y_hat, y):
            return -y_hat[torch.arange(len(y_hat)), y].log()
        """), {}),
    Form("E2", "accuracy", "a 0-d tensor", code("""
        def accuracy(y_hat, y):
            return (y_hat.argmax(dim=1) == y.reshape(-1)).float().mean()
        """), {"accuracy_matches_the_reference": "a 0-d tensor"}),
]

BUG_NOTEBOOKS = sorted({bug.notebook for bug in BUGS})
FORM_NOTEBOOKS = sorted({form.notebook for form in FORMS})


def case_id(item: Bug | Form, check: str = "") -> str:
    return "-".join(filter(None, (item.notebook, item.function, item.what.replace(" ", "_"),
                                  check)))


def known_gap(item: Bug | Form) -> list[pytest.MarkDecorator]:
    """A strict xfail: the test starts passing, and must be unmarked, once the grader is fixed."""
    return [pytest.mark.xfail(strict=True, reason=f"grader gap: {item.gap}")] if item.gap else []


def lost_points(result: Result, exercises: set[str]) -> dict[str, str]:
    return {test.name: test.message for test in result.tests
            if test.exercise in exercises and test.points < test.max_points}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, single_threaded_kernels) -> Callable[[str], Result]:
    """Grade each notebook once, on first use."""
    cache: dict[str, Result] = {}

    def grade(notebook: str) -> Result:
        if notebook not in cache:
            sources = {item.function: item.source for item in [*BUGS, *FORMS]
                       if item.notebook == notebook}
            path = tmp_path_factory.mktemp(notebook) / f"{notebook}.ipynb"
            built = one_demo_epoch(with_functions(sources))
            cache[notebook] = grade_file(write_notebook(built, path), LENIENT)
        return cache[notebook]

    return grade


def test_the_tables_name_real_checks():
    named = {f"{item.function}.{check}" for item in FORMS for check in item.accepted}
    named |= set().union(*(bug.failing for bug in BUGS))
    assert named <= CHECKS, sorted(named - CHECKS)


def test_every_function_has_two_bugs_the_grader_names():
    named = [bug.function for bug in BUGS if bug.gap is None]
    functions = {check.split(".")[0] for check in CHECKS} - TRAINING - {"quiz"}
    assert {function: named.count(function) for function in functions if
            named.count(function) < 2} == {}


@pytest.mark.parametrize("notebook", BUG_NOTEBOOKS)
def test_only_the_checks_of_each_bug_fail(graded, notebook):
    """Caught, and independent: a bug fails its function's checks and no other's."""
    expected = set().union(*(bug.failing for bug in BUGS if bug.notebook == notebook))
    failed = {test.name for test in graded(notebook).tests
              if not test.passed and test.exercise not in TRAINING}
    assert failed == expected, {name: messages(graded(notebook))[name]
                                for name in failed ^ expected}


@pytest.mark.parametrize("bug, check", [
    pytest.param(bug, check, id=case_id(bug, check), marks=known_gap(bug))
    for bug in BUGS for check in bug.named_by])
def test_the_message_names_the_bug(graded, bug, check):
    name = f"{bug.function}.{check}"
    message = messages(graded(bug.notebook))[name]
    assert not outcomes(graded(bug.notebook))[name]
    assert words_missing(name, message, bug.words) == [], message


@pytest.mark.parametrize("form", [pytest.param(form, id=case_id(form), marks=known_gap(form))
                                  for form in FORMS])
def test_an_equivalent_form_gets_full_marks(graded, form):
    assert lost_points(graded(form.notebook), {form.function}) == {}


@pytest.mark.parametrize("notebook", FORM_NOTEBOOKS)
def test_training_with_equivalent_forms_gets_full_marks(graded, notebook):
    result = graded(notebook)
    assert lost_points(result, TRAINING) == {}
    assert result.errors == []


@pytest.mark.parametrize("form, check", [
    pytest.param(form, check, id=case_id(form, check))
    for form in FORMS for check in form.accepted])
def test_the_feedback_says_what_was_accepted(graded, form, check):
    message = messages(graded(form.notebook))[f"{form.function}.{check}"]
    assert form.accepted[check] in message.partition(" Accepted: ")[2], message


@pytest.mark.parametrize("bug, check", [
    pytest.param(bug, check, id=case_id(bug, check))
    for bug in BUGS for check in bug.named_by if f"{bug.function}.{check}" in SHOW_A_CASE])
def test_a_failed_value_check_shows_the_smallest_case_it_fails_on(graded, bug, check):
    message = messages(graded(bug.notebook))[f"{bug.function}.{check}"]
    assert (f" — {COUNTEREXAMPLE}: " in message) == (bug.what not in RAISE), message


@pytest.mark.parametrize("notebook", FORM_NOTEBOOKS)
def test_equivalent_forms_show_no_counterexample(graded, notebook):
    assert [test.name for test in graded(notebook).tests if COUNTEREXAMPLE in test.message] == []
