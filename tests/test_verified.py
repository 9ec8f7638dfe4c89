"""Every mark is for values the grader verifies on the hidden inputs.

The probe code runs in the student's kernel, which can patch it: any observation can be
forged. These tests read the checks in this process on forged observations: the reference's
own at another seed (a perfect answer, to other inputs) and the reference's hollowed out to
constants (flags and counts kept at their passing values, lists emptied or tensors zeroed).
Neither may earn a mark; the control, the reference's observations on these very inputs,
earns them all.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import FAST, SOLUTION

from grader.grading.assignment import Assignment
from grader.grading.checks import Context, evaluate_all
from grader.grading.inputs import build_inputs
from grader.grading.notebook import read_notebook
from grader.grading.reference import reference_probe
from grader.grading.results import TestResult

OTHER_SEED = 1234
READS_THE_TEXT = "quiz"  # the quiz grades the notebook's own answer, not observations
UNTIMED = {"softmax_training.epoch_is_fast_enough"}  # needs the grader's timing of the epoch


# Not this module's to fix: the from-scratch epoch's accuracy holds for an epoch trained on
# other inputs (softmax.py's epoch checks could ask for expect_same_training there too).
def scored_checks() -> list[str]:
    return [check.full_name for check in Assignment.of(FAST).checks
            if check.points > 0 and check.exercise != READS_THE_TEXT]


@pytest.fixture(scope="module")
def grading():
    """The grading seed's settings, inputs and reference, and the reference's observations
    at another seed."""
    solution = read_notebook(SOLUTION)
    assignment = Assignment.of(FAST)
    reference = reference_probe(assignment).observations
    elsewhere = reference_probe(Assignment.of(replace(FAST, seed=OTHER_SEED))).observations
    return assignment, build_inputs(assignment, solution), reference, elsewhere


def graded(grading, student: dict) -> dict[str, TestResult]:
    assignment, inputs, reference, _ = grading
    context = Context(student, reference, inputs, planned=assignment.keys)
    return {result.name: result for result in evaluate_all(assignment.checks, context)}


@pytest.fixture(scope="module")
def replayed(grading) -> dict[str, TestResult]:
    return graded(grading, grading[3])


def hollow(value, empty_lists: bool):
    """The value with its data blanked: tensors zeroed (shapes kept), floats 0, lists
    emptied or blanked item by item; flags, counts and text kept as they were."""
    if isinstance(value, torch.Tensor):
        return torch.zeros_like(value)
    if isinstance(value, list):
        return [] if empty_lists else [hollow(item, empty_lists) for item in value]
    if isinstance(value, dict):
        return {key: hollow(item, empty_lists) for key, item in value.items()}
    return 0.0 if isinstance(value, float) else value


def test_the_reference_earns_every_mark_on_its_own_inputs(grading):
    results = graded(grading, grading[2])
    assert {name: result.message for name, result in results.items()
            if not result.passed and name not in UNTIMED} == {}


@pytest.mark.parametrize("check", scored_checks())
def test_answers_to_other_inputs_earn_nothing(replayed, check):
    """The reference's observations at another seed: right answers, to another question."""
    assert not replayed[check].passed, replayed[check].message


@pytest.mark.parametrize("empty_lists", [True, False], ids=["lists emptied", "zeros"])
def test_constants_earn_nothing(grading, empty_lists):
    student = {key: {"ok": True, "value": hollow(entry["value"], empty_lists)}
               for key, entry in grading[2].items()}
    results = graded(grading, student)
    assert {name: result.message for name, result in results.items()
            if result.passed and name in scored_checks()} == {}
