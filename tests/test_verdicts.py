"""One bug, one root cause: a bug fails the checks whose property it breaks, a check whose
property cannot be judged after it says so and names the check that failed, the checks
whose property holds keep their points, and a training that fails names the function it
uses that failed."""

from __future__ import annotations

import json

import pytest
from conftest import LENIENT, code, grade_file, one_demo_epoch, with_functions, write_notebook

from grader.results import JUDGED, NOT_JUDGED, Result, load_result, save_result

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
