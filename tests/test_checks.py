"""A check's verdicts: the student's values decide pass or fail, the grader's own mistakes
stop the grader instead of costing a student a mark."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from grader.authoring.exercise import available
from grader.grading.checks import Check, Context, Failed, GraderFault, evaluate_all


@dataclass(frozen=True)
class Options:
    margin: float = 0.5


def check(run, name: str = "reads", **fields) -> Check:
    return Check("ex", name, 1.0, run, options=Options(), **fields)


def context(student_value) -> Context:
    return Context({"ex.probe": {"ok": True, "value": student_value}},
                   {"ex.probe": {"ok": True, "value": 1}}, {"size": 3})


def test_a_key_the_grader_never_made_is_a_grader_fault():
    with pytest.raises(GraderFault, match="'sise'"):
        check(lambda ctx: ctx.inputs["sise"]).evaluate(context(1))
    with pytest.raises(GraderFault, match="'ex.other'"):
        check(lambda ctx: ctx.want("ex.other")).evaluate(context(1))
    with pytest.raises(GraderFault, match="the setting 'marjin'"):
        check(lambda ctx: ctx.options.marjin).evaluate(context(1))
    assert check(lambda ctx: f"{ctx.options.margin}").evaluate(context(1)).message == "0.5"


def test_a_malformed_student_value_fails_only_the_test():
    result = check(lambda ctx: ctx.got("ex.probe")["missing"]).evaluate(context({"a": 1}))
    assert not result.passed and "could not check the value returned" in result.message


def test_every_check_required_exists():
    for exercise in available().values():
        assert {name for check in exercise.checks for name in check.requires} \
            <= exercise.test_names, exercise.name


def test_a_check_that_requires_another_counts_only_beside_it():
    verified = check(lambda ctx: (_ for _ in ()).throw(AssertionError("wrong value")),
                     name="verified")
    reported = check(lambda ctx: "the flag is set", name="reported", requires=("ex.verified",))
    results = {r.name: r for r in evaluate_all([verified, reported], context(1))}
    assert not results["ex.reported"].passed
    assert "counts only with ex.verified passing" in results["ex.reported"].message


def raised(message: str) -> Context:
    """A probe on which the student's function raised `message`."""
    return Context({"ex.probe": {"ok": False, "error": "ValueError", "message": message,
                                 "traceback": f"ValueError: {message}"}},
                   {"ex.probe": {"ok": True, "value": 1}}, {"size": 3})


def test_a_hidden_test_never_echoes_what_the_student_raised():
    """`raise ValueError(str(X))` on the hidden inputs would hand them out whole."""
    secret = "tensor([[0.4963, 0.7682, 0.0885]])"
    hidden = check(lambda ctx: ctx.got("ex.probe"), hidden=True).evaluate(raised(secret))
    assert not hidden.passed and "ValueError" in hidden.message
    assert secret not in hidden.message and "0.4963" not in hidden.message
    assert hidden.got is None and hidden.expected is None
    visible = check(lambda ctx: ctx.got("ex.probe")).evaluate(raised(secret))
    assert secret in visible.message and secret in visible.got


def test_a_hidden_test_does_not_quote_a_value_that_tripped_the_check():
    def reads(ctx):
        return float(ctx.got("ex.probe"))  # a string that quotes the hidden inputs
    leaked = check(reads, hidden=True).evaluate(context("0.4963, 0.7682"))
    assert not leaked.passed and "0.4963" not in leaked.message
    assert "0.4963" in check(reads).evaluate(context("0.4963, 0.7682")).message


def test_a_hidden_message_keeps_the_graders_own_words():
    """Only the raised text goes: a student's text that also occurs in the grader's words
    ('ex') takes nothing else with it, and a hint the check adds afterwards stays."""
    def hinted(ctx):
        try:
            return ctx.got("ex.probe")
        except Failed as failure:
            failure.message += " — take n from len(features)"
            raise
    result = check(hinted, hidden=True).evaluate(raised("ex"))
    assert result.message.startswith("ex.probe failed — ValueError: [what it said")
    assert result.message.endswith("take n from len(features)")


def test_a_probe_the_spent_budget_left_unrun_says_what_to_do():
    from grader.sandbox.budget import OUT_OF_TIME

    spent = Context({"ex.probe": {"ok": False, "error": OUT_OF_TIME, "message": "used 1200 s",
                                  "traceback": ""}}, {"ex.probe": {"ok": True, "value": 1}}, {})
    message = check(lambda ctx: ctx.got("ex.probe")).evaluate(spent).message
    assert "whole time budget" in message and "notes" in message, message
