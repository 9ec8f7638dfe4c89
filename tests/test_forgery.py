"""Training marks cannot be forged from inside the kernel.

The kernel's probe code is the student's to patch, so what a training probe reports is only
worth marks if nobody could have written it down in advance: the hidden data's true weights
come from the grading seed, the self-check ships no trained parameters, and training with a
function still left blank earns nothing. These tests read the checks in this process, on
observations built by hand; tests/hostile/ grades the same forgeries through a kernel.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import FAST, SOLUTION

from grader.authoring.course import BUNDLED
from grader.exercises import linreg, softmax
from grader.grading.assignment import Assignment
from grader.grading.checks import Context, evaluate_all
from grader.grading.inputs import build_inputs
from grader.grading.notebook import read_notebook
from grader.grading.reference import reference_probe
from grader.kernel.probing import failure


@pytest.fixture(scope="module")
def graded_inputs():
    assignment = Assignment.of(FAST)
    probe = reference_probe(assignment)
    return assignment.settings, build_inputs(assignment, read_notebook(SOLUTION)), probe


def verdicts(settings, inputs, reference, student: dict, module) -> dict[str, tuple[bool, str]]:
    context = Context(student, reference.observations, inputs,
                      planned=Assignment.of(settings).keys)
    alone = replace(settings, exercises=(module.__name__.rsplit(".", 1)[-1],))
    checks = Assignment.of(alone).checks
    return {result.name: (result.passed, result.message)
            for result in evaluate_all(checks, context)}


def training(results: dict, exercise: str) -> dict:
    return {name: outcome for name, outcome in results.items() if name.startswith(exercise)}


def test_the_reference_training_passes_when_handed_in(graded_inputs):
    """The control: the same observations, unforged, earn the training marks."""
    settings, inputs, reference = graded_inputs
    results = verdicts(settings, inputs, reference, dict(reference.observations), linreg)
    assert all(passed for passed, _ in training(results, "linreg_training.").values())


@pytest.mark.parametrize("blank", ["data_iter", "squared_loss", "sgd"])
def test_training_with_a_blank_function_earns_nothing(graded_inputs, blank):
    settings, inputs, reference = graded_inputs
    student = dict(reference.observations)  # a perfect training, as a forger reports it
    for key in [k for k in student if k.startswith(f"{blank}.")]:
        student[key] = failure("NotImplementedError", "")
    results = training(verdicts(settings, inputs, reference, student, linreg),
                       "linreg_training.")
    assert results and not any(passed for passed, _ in results.values())
    assert all(f"uses {blank}, not implemented yet" in message
               for _, message in results.values())


def test_the_softmax_epoch_needs_its_functions_too(graded_inputs):
    settings, inputs, reference = graded_inputs
    student = dict(reference.observations)
    student["cross_entropy.values"] = failure("Missing", "no function named 'cross_entropy'")
    results = training(verdicts(settings, inputs, reference, student, softmax),
                       "softmax_training.")
    assert results and not any(passed for passed, _ in results.values())


def test_the_notebooks_true_weights_are_not_the_graders(graded_inputs):
    """A forger who hands in the weights the notebook states fails both training checks."""
    settings, inputs, reference = graded_inputs
    student = dict(reference.observations)
    stated = [torch.tensor([[2.0], [-3.4]]), torch.tensor([4.2])]
    student["linreg.train"] = {"ok": True, "value": {"snapshots": [stated] * 3}}
    results = training(verdicts(settings, inputs, reference, student, linreg),
                       "linreg_training.")
    assert not any(passed for passed, _ in results.values()), results
    assert "hidden data's true w" in results["linreg_training.recovers_the_true_weights"][1]


def test_the_hidden_weights_follow_the_seed():
    draws = {tuple(linreg.hidden_truth(torch.Generator().manual_seed(seed))[0].tolist())
             for seed in range(20)}
    assert len(draws) > 15 and (2.0, -3.4) not in draws


def test_the_self_check_ships_no_trained_parameters():
    """The public file holds the reference's accuracy after an epoch, not its W and b."""
    shipped = {key: entry for path in BUNDLED.public.glob("*.pt")
               for key, entry in torch.load(path, weights_only=True)["reference"].items()}
    trained = {key: entry["value"] for key, entry in shipped.items()
               if isinstance(entry["value"], dict) and "test_accuracy" in entry["value"]}
    assert set(trained) >= {"epoch.run", "concise_softmax.epoch"}
    for key, value in trained.items():
        assert not {"W", "b"} & value.keys(), key
        assert 0.5 < value["test_accuracy"] < 1.0


def test_a_reference_accuracy_is_read_only_from_the_reference(graded_inputs):
    """A student's observation that claims a test accuracy is ignored: W and b decide."""
    settings, inputs, reference = graded_inputs
    student = dict(reference.observations)
    claimed = dict(student["epoch.run"]["value"], test_accuracy=1.0)
    blank = inputs["epoch.blank_pixels"]
    claimed["W"] = torch.zeros_like(claimed["W"])
    claimed["W"][blank] = inputs["epoch.W0"][blank]  # started from the grader's W0
    student["epoch.run"] = {"ok": True, "value": claimed}
    results = verdicts(settings, inputs, reference, student, softmax)
    passed, message = results["softmax_training.reaches_the_test_accuracy"]
    assert not passed and "test accuracy is 0.1" in message
