"""One contract per function (issue 26): a submission the grader passes works in the
handout's own loops, what the docstring refuses is refused with a message, a failure on an
input the training never uses costs only its own test, and neither a property any
non-answer has nor a mode that a wrong value hides earns or loses a point on its own."""

from __future__ import annotations

import pytest
import torch
from conftest import LENIENT, code, grade_file, one_demo_epoch, with_functions, write_notebook

from grader.exercises import one_hot, probability, seq_model
from grader.grading.checks import Check, Context, evaluate_all, root_causes
from grader.grading.results import JUDGED, NOT_JUDGED, TestResult

# Seed 001's sgd: the caller zeroes; the handout's loop (seed 000's, the book's) never does.
KEEPING_SGD = code("""
    def sgd(params, lr, batch_size):
        for param in params:
            param.data -= lr * param.grad / batch_size
    """)
# Right on the (n,) labels the docstring names; raises on (n, 1) labels, and on a row with
# a tie, which the training's batches never hold.
FLAT_ONLY_ACCURACY = code("""
    def accuracy(y_hat, y):
        assert y.dim() == 1, "labels of shape (n,)"
        assert (y_hat == y_hat.max(dim=1, keepdim=True).values).sum() == len(y), "a tie"
        return float((y_hat.argmax(dim=1) == y).float().mean())
    """)
# Runs in eval mode under no_grad, but divides by one example too many.
OFF_BY_ONE_EVALUATION = code("""
    def evaluate_accuracy(net, data_iter):
        net.eval()
        correct, total = 0, 0
        with torch.no_grad():
            for X, y in data_iter:
                correct += int((net(X).argmax(dim=1) == y).sum())
                total += len(y)
        return correct / (total + 1)
    """)
CONSTANT_SOFTMAX = code("""
    def softmax(X):
        return torch.full_like(X, 0.1)
    """)
# d2l's accuracy: the count of hits, which the handout's demo would multiply by the batch size.
COUNTING_ACCURACY = code("""
    def accuracy(y_hat, y):
        if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
            y_hat = y_hat.argmax(axis=1)
        cmp = y_hat.type(y.dtype) == y.reshape(-1)
        return float(cmp.type(y.dtype).sum())
    """)


def graded_with(tmp_path_factory, name: str, functions: dict[str, str]) -> dict[str, TestResult]:
    path = tmp_path_factory.mktemp("contract") / f"{name}.ipynb"
    result = grade_file(write_notebook(one_demo_epoch(with_functions(functions)), path), LENIENT)
    return {test.name: test for test in result.tests}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, single_threaded_kernels) -> dict[str, TestResult]:
    return graded_with(tmp_path_factory, "contract", {
        "sgd": KEEPING_SGD, "accuracy": FLAT_ONLY_ACCURACY,
        "evaluate_accuracy": OFF_BY_ONE_EVALUATION})


@pytest.fixture(scope="module")
def non_answers(tmp_path_factory, single_threaded_kernels) -> dict[str, TestResult]:
    return graded_with(tmp_path_factory, "non_answers",
                       {"softmax": CONSTANT_SOFTMAX, "accuracy": COUNTING_ACCURACY})


def expect_refused(test: TestResult, *words: str) -> None:
    """Failed, saying `words`, with no "Accepted:" note: the handout does not allow it."""
    assert not test.passed
    for word in words:
        assert word in test.message, test.message
    assert "Accepted" not in test.message


def test_an_sgd_that_leaves_the_gradients_fails_naming_the_handouts_loop(graded):
    expect_refused(graded["sgd.zeroes_the_gradients"], "left the gradients", "never zeroes",
                   "param.grad.zero_()")


def test_the_training_probe_does_not_zero_for_the_student():
    from grader.exercises import linreg_probes

    source = linreg_probes.train.__code__.co_names
    assert "zero_" not in source


def test_an_accuracy_raising_where_the_training_never_goes_costs_only_its_own_test(graded):
    """(n, 1) labels are asked of no one; a row with a tie only of the ties test: the
    training, whose batches hold neither, keeps its marks."""
    accuracy = {name: test for name, test in graded.items() if name.startswith("accuracy.")}
    assert [name for name, test in accuracy.items() if not test.passed] == [
        "accuracy.breaks_ties_like_argmax"], accuracy
    training = [test for name, test in graded.items() if name.startswith("softmax_training.")]
    assert training and all(test.passed for test in training), training
    assert "handles_labels_of_shape_n_by_1" not in " ".join(t.message for t in graded.values())


def test_a_wrong_evaluation_leaves_its_modes_not_judged(graded):
    assert not graded["evaluate_accuracy.matches_the_accuracy_computed_here"].passed
    for name in ("evaluate_accuracy.runs_in_eval_mode",
                 "evaluate_accuracy.runs_without_gradients"):
        test = graded[name]
        assert not test.passed and test.state == NOT_JUDGED, (name, test.message)
        assert "not met" not in test.message
        assert "matches_the_accuracy_computed_here" in test.message


def test_a_constant_softmax_earns_no_point_for_its_input(non_answers):
    test = non_answers["softmax.leaves_its_input_unchanged"]
    assert not test.passed and test.state == NOT_JUDGED, test.message
    assert not [t for t in non_answers.values() if t.name.startswith("softmax.") and t.passed]


def test_a_count_of_hits_is_refused_naming_the_fraction(non_answers):
    expect_refused(non_answers["accuracy.accuracy_matches_the_reference"],
                   "count of correct predictions", "fraction", "len(y)")


def result(name: str, passed: bool, message: str = "") -> TestResult:
    exercise = name.split(".", 1)[0]
    return TestResult(name=name, exercise=exercise, max_points=1, points=float(passed),
                      passed=passed, message=message, state=JUDGED)


def test_a_slow_epoch_is_not_blamed_on_another_functions_wrong_value():
    timed = Check("softmax_training", "epoch_is_fast_enough", 2, lambda ctx: "",
                  uses=("accuracy.values", "cross_entropy.values"), timed=True)
    untimed = Check("softmax_training", "reaches_the_test_accuracy", 3, lambda ctx: "",
                    uses=("accuracy.values", "cross_entropy.values"))
    results = {"accuracy.breaks_ties_like_argmax": result(
        "accuracy.breaks_ties_like_argmax", False, "ties counted twice")}
    assert root_causes(timed, results) == []
    assert root_causes(untimed, results)


def judged(module, names: tuple[str, ...], student: dict, inputs: dict) -> list[TestResult]:
    """The named checks of `module`, evaluated in order on observations made by hand."""
    checks = [check for check in module.CHECKS if check.name in names]
    observed = {key: {"ok": True, "value": value} for key, value in student.items()}
    return evaluate_all(checks, Context(observed, {}, inputs))


def expect_not_judged(results: list[TestResult]) -> None:
    value_check, property_check = results
    assert not value_check.passed
    assert not property_check.passed and property_check.state == NOT_JUDGED, \
        property_check.message
    assert value_check.name in property_check.message


def test_target_left_alone_beside_no_matrix_earns_nothing():
    target = torch.tensor([0, 2, 1])
    expect_not_judged(judged(one_hot, ("returns_a_float_matrix", "leaves_the_target_unchanged"),
                             {"one_hot.seed": {"out": None, "target_after": target.clone()}},
                             {"one_hot.seed": target, "one_hot.seed_classes": 3}))


def test_counts_left_alone_beside_no_estimates_earn_nothing():
    counts = torch.ones(4, 6)
    expect_not_judged(judged(
        probability, ("returns_one_row_per_group", "leaves_counts_unchanged"),
        {"estimate_probabilities.seeded": {"out": None, "counts_after": counts.clone()}},
        {"dice.counts": counts}))


def test_a_net_without_parameters_earns_nothing_for_sharing_none():
    empty = {"module": True, "type": "Sequential", "sequential": True, "layers": [],
             "parameters": [], "outputs": torch.zeros(3, 1), "shared": False}
    expect_not_judged(judged(seq_model, ("has_40_parameters", "returns_a_new_net_each_call"),
                             {"make_seq_model.built": empty}, {}))


def test_a_shape_1_accuracy_is_refused_as_the_handouts_demo_refuses_it():
    """The handout accepts a 0-d tensor (what .mean() gives); its demo's f"{acc:.3f}" raises
    on a tensor of shape (1,), so the grader refuses one, saying how to return it."""
    from grader.exercises._shared import as_number
    from grader.grading.checks import Failed

    ctx = Context({}, {}, {})
    ctx.notes = []
    assert as_number(ctx, torch.tensor(0.75), "accuracy(y_hat, y)") == 0.75
    assert ctx.notes == ["a 0-d tensor instead of a Python float"]
    with pytest.raises(Failed, match=r"shape \(1,\).*:.3f.*\.item\(\) or a 0-d tensor"):
        as_number(ctx, torch.tensor([0.75]), "accuracy(y_hat, y)")
