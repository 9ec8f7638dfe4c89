"""One bug, one root cause: a bug fails the checks whose property it breaks, a check whose
property cannot be judged after it says so and names the check that failed, the checks
whose property holds keep their points, and a training that fails names the function it
uses that failed."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest
from conftest import (
    FAST,
    HIDDEN,
    LENIENT,
    SOLUTION,
    code,
    grade_file,
    one_demo_epoch,
    with_functions,
    write_notebook,
)

from grader.authoring import course
from grader.grading.assignment import Assignment
from grader.grading.cache import store_verified
from grader.grading.checks import Context
from grader.grading.expect import COUNTEREXAMPLE
from grader.grading.inputs import build_inputs
from grader.grading.notebook import read_notebook
from grader.grading.reference import reference_functions, stored_observations
from grader.grading.results import JUDGED, NOT_JUDGED, Result, load_result, save_result
from grader.kernel.probing import Probe, run_table, to_bytes

COLUMNS_SOFTMAX = code("""
    def softmax(X):
        X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
        return X_exp / X_exp.sum(dim=0, keepdim=True)
    """)
UPHILL_SGD = code("""
    def sgd(params, lr, batch_size):
        with torch.no_grad():
            for param in params:
                param += lr * param.grad / batch_size
                param.grad.zero_()
    """)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, single_threaded_kernels) -> dict:
    path = tmp_path_factory.mktemp("verdicts") / "root_causes.ipynb"
    notebook = one_demo_epoch(with_functions({"softmax": COLUMNS_SOFTMAX, "sgd": UPHILL_SGD}))
    result = grade_file(write_notebook(notebook, path), LENIENT)
    return {"result": result, **{test.name: test for test in result.tests}}


def test_a_property_that_holds_keeps_its_points(graded):
    for name in ("softmax.keeps_shape_and_dtype", "softmax.leaves_its_input_unchanged",
                 "sgd.divides_by_batch_size", "sgd.builds_no_autograd_graph"):
        assert graded[name].passed and graded[name].points == graded[name].max_points, \
            graded[name].message


def test_the_root_cause_is_judged_and_named(graded):
    values = graded["softmax.values_match_the_reference"]
    assert not values.passed and values.state == JUDGED
    assert "columns sum to 1" in values.message and "dim=1" in values.message
    step = graded["sgd.updates_parameters_in_place"]
    assert not step.passed and "up the gradient" in step.message and "-=" in step.message


@pytest.mark.parametrize("name, see", [
    ("softmax.stays_finite_on_large_inputs", "softmax.values_match_the_reference"),
    ("softmax.softmax_gradient_matches", "softmax.values_match_the_reference"),
    ("softmax_training.epoch_is_fast_enough", "softmax_training.reaches_the_test_accuracy"),
])
def test_a_property_that_cannot_be_judged_says_so(graded, name, see):
    test = graded[name]
    assert test.state == NOT_JUDGED and test.points == 0
    assert test.message.startswith("not judged: ") and test.message.endswith(f"see {see}")


@pytest.mark.parametrize("name, function, words", [
    ("softmax_training.reaches_the_test_accuracy", "softmax", "columns sum to 1"),
    ("linreg_training.reaches_the_reference_loss", "sgd", "up the gradient"),
    ("linreg_training.recovers_the_true_weights", "sgd", "up the gradient"),
])
def test_a_failed_training_names_the_function_that_failed(graded, name, function, words):
    test = graded[name]
    assert not test.passed
    cause = test.message.partition(" — likely because ")[2]
    assert cause.startswith(f"{function} fails ") and words in cause, test.message
    assert cause.endswith(f"see {function}")


def test_the_state_survives_results_json_and_old_files_load_as_judged(graded, tmp_path):
    result: Result = graded["result"]
    path = tmp_path / "results.json"
    save_result(result, path)
    assert [t.state for t in load_result(path).tests] == [t.state for t in result.tests]
    old = json.loads(path.read_text())
    for test in old["tests"]:
        del test["state"]
    path.write_text(json.dumps(old))
    assert {t.state for t in load_result(path).tests} == {JUDGED}


# --- the smallest case where a failed value check differs ---------------------------------

FROM_SCRATCH = ("softmax", "cross_entropy", "accuracy", "squared_loss", "sgd")
# The d2l tutorial's softmax (seed 004), right wherever exp does not overflow.
NO_SHIFT_SOFTMAX = code("""
    def softmax(X):
        X_exp = X.exp()
        partition = X_exp.sum(dim=1, keepdim=True)
        return X_exp / partition
    """)
NO_LOG_CROSS_ENTROPY = code("""
    def cross_entropy(y_hat, y):
        return - y_hat.gather(1, y.view(-1, 1))
    """)
FLOOR_ACCURACY = code("""
    def accuracy(y_hat, y):
        return (y_hat.argmax(dim=1) == y.reshape(-1)).sum().item() // len(y)
    """)
UNHALVED_SQUARED_LOSS = code("""
    def squared_loss(y_hat, y):
        return (y_hat - y.view(y_hat.size())) ** 2
    """)


def counterexample(message: str) -> tuple[str, str, str]:
    """The case a message shows, what the student's function gave and what was expected."""
    shown = message.partition(f" — {COUNTEREXAMPLE}: ")[2]
    match = re.fullmatch(r"(.*) gives (.*), expected (.*)", shown)
    assert match, message
    return match[1], match[2], match[3]


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"nan|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


@pytest.fixture(scope="module")
def wrong_values(tmp_path_factory, single_threaded_kernels) -> dict:
    path = tmp_path_factory.mktemp("verdicts") / "wrong_values.ipynb"
    notebook = one_demo_epoch(with_functions({
        "softmax": NO_SHIFT_SOFTMAX, "cross_entropy": NO_LOG_CROSS_ENTROPY,
        "accuracy": FLOOR_ACCURACY, "squared_loss": UNHALVED_SQUARED_LOSS}))
    result = grade_file(write_notebook(notebook, path), LENIENT)
    return {"result": result, **{test.name: test for test in result.tests}}


def test_a_softmax_over_the_columns_is_shown_on_a_single_row(graded):
    """Normalised over dim 0, the one row of the smallest X becomes ones."""
    case, got, want = counterexample(graded["softmax.values_match_the_reference"].message)
    assert case.startswith("X = [[") and len(numbers(case)) == 2, case
    assert numbers(got) == [1.0, 1.0] and sum(numbers(want)) == pytest.approx(1, abs=1e-3)


def test_an_uphill_step_is_shown_on_the_smallest_parameters(graded):
    case, got, want = counterexample(graded["sgd.updates_parameters_in_place"].message)
    w, b, grad_w, grad_b, lr, batch_size = numbers(case)
    step = [lr * grad / batch_size for grad in (grad_w, grad_b)]
    assert numbers(got) == pytest.approx([w + step[0], b + step[1]], abs=1e-4)
    assert numbers(want) == pytest.approx([w - step[0], b - step[1]], abs=1e-4)


def test_a_softmax_without_the_shift_is_shown_where_exp_overflows(wrong_values):
    values = wrong_values["softmax.values_match_the_reference"]
    assert values.passed and COUNTEREXAMPLE not in values.message  # no overflow there
    large = wrong_values["softmax.stays_finite_on_large_inputs"]
    case, got, want = counterexample(large.message)
    assert "NaN" in large.message and max(numbers(case)) > 88.7  # float32's exp overflows
    assert any(math.isnan(n) for n in numbers(got)), got
    assert not any(math.isnan(n) for n in numbers(want)), want


def test_unhalved_losses_are_shown_twice_the_expected(wrong_values):
    message = wrong_values["squared_loss.values_match_the_reference"].message
    assert "twice" in message  # the wrong form is still named first
    _, got, want = counterexample(message)
    assert numbers(got) == pytest.approx([2 * n for n in numbers(want)], abs=2e-4)


def test_a_cross_entropy_without_the_log_is_shown_on_the_picked_probability(wrong_values):
    """-y_hat[i, y_i] where -log(y_hat[i, y_i]) is expected: got is -exp(-expected)."""
    case, got, want = counterexample(
        wrong_values["cross_entropy.picks_the_label_entries"].message)
    assert case.startswith("y_hat = [[") and ", y = [" in case
    assert numbers(got) == pytest.approx([-math.exp(-n) for n in numbers(want)], abs=2e-4)


def test_a_floor_division_is_shown_on_the_first_case_with_a_miss(wrong_values):
    """One example, one hit: 1 // 1 agrees; two examples, one hit: 0 instead of 0.5."""
    message = wrong_values["accuracy.accuracy_matches_the_reference"].message
    case, got, want = counterexample(message)
    assert "integer division" in message and case.count("], [") == 1, case  # two rows
    assert (numbers(got), numbers(want)) == ([0.0], [0.5])


def test_hidden_tests_show_no_counterexample(graded, wrong_values):
    failed = [test for graded_notebook in (graded, wrong_values)
              for test in graded_notebook["result"].tests
              if test.name in HIDDEN and not test.passed]
    assert failed and not [t.name for t in failed if COUNTEREXAMPLE in t.message]


def test_the_solution_gets_no_counterexample_and_full_marks(solution_result):
    tests = [t for t in solution_result.tests if t.exercise in FROM_SCRATCH]
    assert tests and {t.name: t.message for t in tests
                      if t.points < t.max_points or COUNTEREXAMPLE in t.message} == {}


def observed(functions: dict, inputs: dict, keys: list[str]) -> dict:
    probe = Probe(functions, dict(inputs), None, 20)
    run_table(probe, "grader.exercises.softmax_probes", "PROBES", keys)
    return probe.observations


def test_a_check_an_instructor_hides_shows_no_counterexample():
    """The settings' `hidden` hides a check the exercise shows: its message loses the case."""
    settings = FAST.resolved()
    inputs = build_inputs(Assignment.of(settings), read_notebook(SOLUTION))
    reference = reference_functions(settings.notebook, course.current().reference)
    keys = ["softmax.values", "softmax.cases"]
    student = observed({"softmax": lambda X: X.exp() / X.exp().sum(dim=0)}, inputs, keys)
    name = "softmax.values_match_the_reference"
    messages = {}
    for hidden in ((), (name,)):
        [check] = [c for c in Assignment.of(replace(settings, hidden=(
            *settings.hidden, *hidden))).checks if c.full_name == name]
        context = Context(student, observed(reference, inputs, keys), inputs)
        messages[hidden] = check.evaluate(context).message
    assert COUNTEREXAMPLE in messages[()] and "X = [[" in messages[()]
    assert COUNTEREXAMPLE not in messages[(name,)] and "[[" not in messages[(name,)]


def test_a_stored_reference_without_the_candidates_is_observed_again(tmp_path):
    """The candidates are probes of their own: a reference stored before them lacks their
    keys, so it is incomplete and observed afresh."""
    planned = Assignment.of(FAST).keys
    candidates = {f"{function}.cases" for function in FROM_SCRATCH}
    assert candidates <= planned
    path = tmp_path / "reference.pt"

    def read_back(keys: frozenset[str]) -> set[str]:
        store_verified(path, to_bytes({key: {"ok": True, "value": 0} for key in keys}))
        return set(stored_observations(path, planned))

    assert read_back(planned - candidates) == set()
    assert read_back(planned) == planned
