"""One submission end to end: the solution scores full marks, the blank scores zero."""

from __future__ import annotations

import pytest
from conftest import EXERCISES, FAST, grade_file, with_functions, write_notebook

from grader.grading.assignment import Assignment
from grader.grading.results import NOT_JUDGED, Result, load_result, save_result


def test_the_solution_scores_full_marks(solution_result):
    failed = {t.name: t.message for t in solution_result.tests if not t.passed}
    assert failed == {}
    assert solution_result.score == solution_result.max_score > 0
    assert solution_result.errors == []


def test_the_blank_notebook_scores_zero_saying_not_implemented(blank_result):
    assert blank_result.score == 0
    probed = [t for t in blank_result.tests  # a property with no value is not judged
              if not t.name.startswith("quiz.") and t.state != NOT_JUDGED]
    assert all("not implemented" in t.message for t in probed), [
        t.message for t in probed if "not implemented" not in t.message]
    # The given demos that would call the blanks are not run; a note names the blanks.
    assert {e.error for e in blank_result.errors} <= {"NotImplementedError"}
    [note] = [n for n in blank_result.notes if n.startswith("Not written yet")]
    assert all(name in note for name in ("softmax", "data_iter", "sgd", "estimate_probabilities"))
    quiz = [t for t in blank_result.tests if t.name.startswith("quiz.")]
    assert quiz and "no answer" in quiz[0].message


def test_every_test_of_every_exercise_is_graded(solution_result):
    """Each exercise's checks, the questions its settings declare (the quiz's) included."""
    planned = [check.full_name for check in Assignment.of(FAST).checks]
    assert [t.name for t in solution_result.tests] == planned
    assert {c.full_name for e in EXERCISES for c in e.checks} < set(planned)
    assert "quiz.softmax_shift_invariance" in planned
    assert {t.assignment for t in [solution_result]} == {FAST.notebook}


def test_each_timed_step_names_itself_its_device_and_the_reference(solution_result):
    [timing] = solution_result.timings
    assert timing.step == "epoch.run" and timing.device == "cpu"
    assert timing.student_seconds > 0 and timing.reference_seconds > 0
    assert timing.max_ratio == FAST.options["softmax"].max_epoch_ratio


def test_curves_come_from_both_trainings(solution_result):
    names = [c.name for c in solution_result.curves]
    assert "linreg_training: training loss" in names
    loss = next(c for c in solution_result.curves if c.name == "linreg_training: training loss")
    assert len(loss.y) == FAST.options["linreg"].epochs and loss.y[-1] < 1e-4
    assert loss.reference_y is not None


def test_the_same_submission_gets_the_same_score(solution_result, tmp_path):
    again = grade_file(write_notebook(with_functions({}), tmp_path / "again.ipynb"))
    first = {t.name: (t.points, t.message) for t in solution_result.tests}
    second = {t.name: (t.points, t.message) for t in again.tests}
    assert first.keys() == second.keys()
    differing = {name: (first[name], second[name]) for name in first
                 if first[name][0] != second[name][0]}
    assert differing == {}
    assert again.seeds == solution_result.seeds == {"inputs": FAST.seed}


def test_results_round_trip_through_json(solution_result, tmp_path):
    save_result(solution_result, tmp_path / "results.json")
    loaded = load_result(tmp_path / "results.json")
    assert isinstance(loaded, Result)
    assert loaded.to_dict() == solution_result.to_dict()


def test_a_cell_error_is_recorded_and_grading_goes_on(tmp_path):
    notebook = with_functions({"linreg": "def linreg(X, w, b):\n    return X @ w + b\n"
                                         "1 / 0\n"})
    result = grade_file(write_notebook(notebook, tmp_path / "error.ipynb"))
    assert [e.error for e in result.errors] == ["ZeroDivisionError: division by zero"]
    assert "1 / 0" in result.errors[0].source and "ZeroDivisionError" in result.errors[0].traceback
    assert result.score == result.max_score


@pytest.mark.parametrize("content, words", [
    (b"{not json", "not a readable notebook"),
    (b"", "not a readable notebook"),
    (b"\xff\xfe\x00garbage", "not"),
])
def test_an_unreadable_notebook_fails_every_test_with_the_reason(tmp_path, content, words):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    result = grade_file(path)
    assert result.score == 0 and result.tests
    assert all(words in t.message for t in result.tests)


def test_an_unreadable_file_keeps_its_reason_when_no_assignment_can_be_told(tmp_path):
    """Two assignments and one corrupt file: neither is graded from it, and both say why,
    never a bare "no notebook was handed in"."""
    from grader.grading.grade import grade_submission
    from grader.students.submissions import Submission

    broken = tmp_path / "ann" / "homework.ipynb"
    broken.parent.mkdir()
    broken.write_text("{ not json")
    submission = Submission("ann", broken.parent, [broken],
                            unreadable={broken: "is not JSON"})
    result = grade_submission(submission, FAST, matched={})
    assert result.tests == [] and result.score == 0 and result.max_score > 0
    assert result.missing == ("no notebook linear_networks.ipynb was handed in; what was "
                              "handed in could not be read, so which assignment it is cannot "
                              "be told: homework.ipynb is not JSON")
