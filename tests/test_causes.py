"""A failure carries a typed cause, set where it arises; the banner, the flags and the class
summary read the cause, never a message's words, so rewording a message changes nothing
else. The generic words are said once, in grader/grading/wording.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from grader.grading import wording
from grader.grading.checks import Check, Context, Failed, NotJudged, ProbeFailed, evaluate_all
from grader.grading.results import NOT_JUDGED, Cause, Result, TestResult, load_result, save_result
from grader.outputs.classview import common_failures, needing_a_look
from grader.outputs.diagnosis import common_cause, flags
from grader.outputs.report import render_markdown, render_report, render_summary

REWORDED = "something else entirely, in words no code looks for"


def a_test(name: str, message: str = REWORDED, cause: Cause | None = None,
           passed: bool = False) -> TestResult:
    exercise = name.split(".")[0]
    return TestResult(name, exercise, 1.0, float(passed), passed, message, cause=cause)


def a_result(tests: list[TestResult], student: str = "ann", **kw) -> Result:
    return Result(student=student, assignment="linear_networks", source="ann.ipynb",
                  digest="0" * 64, grader_version="9.9.9", config_digest="f" * 64,
                  tests=tests, **kw)


def banner(result: Result):
    return BeautifulSoup(render_report(result), "html.parser").select_one("#banner")


WHOLE = [Cause.UNREADABLE, Cause.KERNEL, Cause.MISSING, Cause.REFUSED]


@pytest.mark.parametrize("cause", WHOLE)
def test_a_cause_that_failed_every_test_is_the_banner_whatever_its_words(cause: Cause):
    result = a_result([a_test("softmax.values", cause=cause), a_test("loss.value", cause=cause)])
    shown = banner(result)
    assert shown["data-cause"] == cause.value
    assert wording.CAUSE_TITLES[cause] in shown.get_text()
    assert REWORDED in shown.get_text() and wording.BANNER_REASON in shown.get_text()
    assert flags(result)[0] == wording.CAUSE_TITLES[cause]


def test_blank_is_read_from_the_causes_of_tests_that_say_different_things():
    result = a_result([a_test("softmax.values", "one wording", Cause.BLANK),
                       a_test("quiz.answer", "another wording", Cause.BLANK)])
    shown = banner(result)
    assert shown["data-cause"] == "blank" and wording.BLANK_MESSAGE in shown.get_text()
    assert common_failures([result]) == []  # listed to look at, not among the failures


def test_a_blank_notebook_keeps_its_banner_beside_tests_its_blanks_left_unjudged():
    """A property that says nothing without a value (the input left alone) is not judged
    on a blank function: that consequence does not hide the blank."""
    unjudged = a_test("softmax.leaves_its_input_unchanged", "not judged: no value yet",
                      Cause.NOT_JUDGED)
    unjudged.state = NOT_JUDGED
    result = a_result([a_test("softmax.values", cause=Cause.BLANK), unjudged])
    assert banner(result)["data-cause"] == "blank"


def test_the_words_of_a_blank_notebook_without_its_cause_make_no_banner():
    """What the diagnosis once matched ("NotImplementedError", "no answer given", "not
    graded:") is only text now: a test must say its cause."""
    result = a_result([a_test("softmax.values", "NotImplementedError: not implemented yet"),
                       a_test("quiz.answer", "no answer given", Cause.RAISED)])
    assert common_cause(result) is None and banner(result) is None
    alone = a_result([a_test("softmax.values", "not graded: is a link", Cause.RAISED)])
    assert common_cause(alone).kind == wording.OTHER_CAUSE  # one message: said once


def test_causes_of_different_kinds_are_no_common_cause():
    result = a_result([a_test("a.x", cause=Cause.BLANK), a_test("b.y", "other", Cause.KERNEL)])
    assert common_cause(result) is None


def test_unsandboxed_is_a_field_not_a_note_to_search():
    noted = a_result([a_test("a.x", passed=True)],
                     notes=["The notebook ran without a sandbox (reworded or not)."])
    assert wording.RAN_UNSANDBOXED not in flags(noted)
    flagged = a_result([a_test("a.x", passed=True)], unsandboxed=True)
    assert flags(flagged) == [wording.RAN_UNSANDBOXED]
    assert needing_a_look([noted, flagged], {}) == [(flagged, [wording.RAN_UNSANDBOXED])]


def test_results_json_keeps_the_causes_and_the_sandbox_fact(tmp_path: Path):
    result = a_result([a_test("a.x", cause=Cause.BLANK), a_test("b.y", passed=True)],
                      unsandboxed=True)
    save_result(result, tmp_path / "results.json")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [t["cause"] for t in saved["tests"]] == ["blank", None]
    loaded = load_result(tmp_path / "results.json")
    assert [t.cause for t in loaded.tests] == [Cause.BLANK, None] and loaded.unsandboxed
    assert loaded.tests[0].cause is Cause.BLANK


def test_an_old_results_json_without_causes_loads(tmp_path: Path):
    data = a_result([a_test("a.x"), a_test("b.y", passed=True)]).to_dict()
    for test in data["tests"]:
        del test["cause"]
    del data["unsandboxed"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    loaded = load_result(tmp_path / "results.json")
    assert [t.cause for t in loaded.tests] == [None, None] and not loaded.unsandboxed


def test_a_cause_no_grader_knows_is_refused_so_the_result_is_graded_again():
    with pytest.raises(ValueError):
        TestResult("a.x", "a", 1.0, 0.0, False, "m", cause="from the future")


# The checks set the cause where the failure arises.

def probe(error: str) -> dict:
    return {"ok": False, "error": error, "message": "said", "traceback": ""}


def context(student: dict, **kw) -> Context:
    return Context(student, {}, {}, **kw)


def check(run, exercise: str = "ex", name: str = "it", **kw) -> Check:
    run.__name__ = name
    return Check(exercise, name, 1.0, run, **kw)


@pytest.mark.parametrize(("error", "cause"), [
    ("NotImplementedError", Cause.BLANK), ("Missing", Cause.NO_FUNCTION),
    ("Timeout", Cause.TIMEOUT), ("ValueError", Cause.RAISED)])
@pytest.mark.parametrize("hidden", [False, True])
def test_a_failed_probe_carries_its_kind_of_error_as_the_cause(error, cause, hidden):
    test = check(lambda ctx: ctx.got("f.values"), hidden=hidden).evaluate(
        context({"f.values": probe(error)}))
    assert (test.passed, test.cause) == (False, cause)


def test_an_unobserved_probe_a_forbidden_call_and_an_unreadable_value_say_so():
    assert check(lambda ctx: ctx.got("f.values")).evaluate(context({})).cause \
        == Cause.UNOBSERVED
    forbidden = check(lambda ctx: "fine").evaluate(context({}, forbidden={"ex": "no numpy"}))
    assert (forbidden.message, forbidden.cause) == ("no numpy", Cause.FORBIDDEN)
    broken = check(lambda ctx: ctx.student["f"]["value"] + 1).evaluate(
        context({"f": {"ok": True, "value": None}}))
    assert broken.cause == Cause.UNCHECKABLE


def test_a_failure_says_the_cause_its_check_gives_and_a_wrong_value_none():
    def unanswered(ctx):
        raise Failed("reworded at will", cause=Cause.BLANK)

    def wrong(ctx):
        raise Failed("the sum is off")

    def unjudged(ctx):
        raise NotJudged("not judged: see ex.first")

    assert check(unanswered).evaluate(context({})).cause == Cause.BLANK
    assert check(wrong).evaluate(context({})).cause is None
    judged = check(unjudged).evaluate(context({}))
    assert (judged.state, judged.cause) == ("not_judged", Cause.NOT_JUDGED)
    assert ProbeFailed("x").cause == Cause.RAISED


def test_a_training_on_blank_functions_is_blank_and_names_no_root_cause():
    """The cause, not the message's first words, tells evaluate_all that the training's
    failure is its functions' already."""
    blank_f = check(lambda ctx: ctx.got("f.values"), exercise="f", name="values")
    training = check(lambda ctx: "trained", exercise="train", name="run", uses=("f.values",))
    failing = check(lambda ctx: ctx.got("g.values"), exercise="g", name="values")
    retrained = check(lambda ctx: "trained", exercise="train2", name="run", uses=("g.values",))
    students = {"f.values": probe("NotImplementedError"), "g.values": probe("ValueError")}
    results = evaluate_all([blank_f, training, failing, retrained],
                           context(students, planned=frozenset(students)))
    assert [r.cause for r in results] == [Cause.BLANK, Cause.BLANK, Cause.RAISED,
                                          Cause.USES_FAILED]
    assert "likely because" not in results[1].message + results[3].message


def test_a_check_whose_required_check_failed_says_so_as_its_cause():
    first = check(lambda ctx: ctx.got("f.values"), exercise="f", name="values")
    flag = check(lambda ctx: "reported", exercise="f", name="flag", requires=("f.values",))
    results = evaluate_all([first, flag], context({"f.values": probe("ValueError")}))
    assert results[1].cause == Cause.REQUIRES


# The generic words are wording's, wherever they are shown.

def test_the_pages_take_their_fixed_phrases_from_wording(monkeypatch):
    monkeypatch.setattr(wording, "FIX_FIRST", "Start here")
    monkeypatch.setattr(wording, "NOT_HANDED_IN", "nothing came")
    failed = a_result([a_test("a.x", "wrong", passed=False), a_test("b.y", passed=True)])
    assert "Start here" in render_report(failed)
    assert "**Start here**" in render_markdown(failed, with_hidden=True)
    absent = a_result([], student="bo", missing="no notebook")
    assert "nothing came" in render_summary([failed, absent])
