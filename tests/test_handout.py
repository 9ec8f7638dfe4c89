"""Given demo cells left as given are not run while grading; everything else is.

The grader's probes train with the student's functions themselves, so a demo's training
run only costs time. These tests show the verdict stays that of a full run: an edited demo
runs as written, a demo whose names another cell reads runs, and a name looked up at run
time (which no reading of the source sees) makes the notebook run whole.
"""

from __future__ import annotations

import nbformat
import pytest
from conftest import (
    BLANK,
    FAST,
    NOTEBOOK,
    SOLUTION,
    TEST_COURSE,
    code,
    grade_file,
    outcomes,
    with_functions,
    write_notebook,
)

from grader.authoring.assign import student_version
from grader.authoring.course import BUNDLED
from grader.grading.handout import (
    DEMO_TAG,
    demo_digests,
    digest,
    left_out,
    names,
    read_handout,
    recorded_demos,
    unwritten,
)
from grader.grading.observe import RUN_WHOLE
from grader.grading.source import parse_notebook

# A cross-entropy that returns nothing: the softmax demo's `batch_loss.sum()` raises.
NO_LOSS = code('''
    def cross_entropy(y_hat, y):
        loss = -torch.log(y_hat[range(len(y_hat)), y])
''')


def demo_cells(notebook: nbformat.NotebookNode) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells)
            if DEMO_TAG in cell.metadata.get("tags", [])]


def softmax_demo(notebook: nbformat.NotebookNode) -> int:
    """The demo that trains softmax regression from scratch (it calls cross_entropy)."""
    return next(i for i in demo_cells(notebook) if "cross_entropy(" in notebook.cells[i].source)


@pytest.mark.parametrize("course", [BUNDLED, TEST_COURSE], ids=["bundled", "test"])
def test_assign_records_every_demo_and_all_can_be_left_out(course):
    for path in sorted(course.exercises.glob("*.ipynb")):
        given = nbformat.read(path, as_version=4)
        recorded = recorded_demos(read_handout(path))
        assert recorded == frozenset(digest(given.cells[i].source) for i in demo_cells(given))
        assert recorded, f"{path.name} records no demo"
        assert left_out(parse_notebook(given), recorded) == set(demo_cells(given))


def test_record_is_made_from_the_solution_and_ignores_whitespace_at_the_ends():
    solution = nbformat.read(SOLUTION, as_version=4)
    assert demo_digests(student_version(solution)) == demo_digests(solution)
    source = solution.cells[softmax_demo(solution)].source
    assert digest(source) == digest(f"\n{source}\n\n")
    assert digest(source) != digest(source.replace("0.1", "0.2", 1))


def test_a_course_without_a_record_leaves_nothing_out(tmp_path):
    for text in ("", "{", '{"metadata": {"grader": {"demos": "x"}}}', '{"metadata": []}'):
        path = tmp_path / "nb.ipynb"
        path.write_text(text)
        assert recorded_demos(read_handout(path)) == frozenset()
    assert read_handout(tmp_path / "absent.ipynb") == {}


def test_functions_left_blank_as_handed_out_are_named():
    handout = read_handout(TEST_COURSE.exercises / f"{NOTEBOOK}.ipynb")
    blank = unwritten(parse_notebook(nbformat.read(BLANK, as_version=4)), handout)
    assert {"softmax", "cross_entropy", "accuracy", "data_iter", "sgd"} <= set(blank)
    assert unwritten(parse_notebook(nbformat.read(SOLUTION, as_version=4)), handout) == []
    half = with_functions({"softmax": code("""
        def softmax(X):
            X_exp = X.exp()
            return X_exp / X_exp.sum(1, keepdim=True)
    """)}, base=BLANK)
    blank = unwritten(parse_notebook(half), handout)
    assert "softmax" not in blank and "accuracy" in blank


def test_a_demo_whose_name_a_running_cell_reads_runs():
    notebook = with_functions({"accuracy": code('''
        def accuracy(y_hat, y):
            return float((y_hat.reshape(-1, num_outputs).argmax(1) == y).float().mean())
    ''')})
    recorded = recorded_demos(read_handout(TEST_COURSE.exercises / f"{NOTEBOOK}.ipynb"))
    kept = set(demo_cells(notebook)) - left_out(parse_notebook(notebook), recorded)
    assert kept == {softmax_demo(notebook)}  # it binds num_outputs


def test_a_cell_too_long_or_deep_to_read_leaves_every_demo_in():
    notebook = nbformat.read(SOLUTION, as_version=4)
    recorded = recorded_demos(read_handout(TEST_COURSE.exercises / f"{NOTEBOOK}.ipynb"))
    for source in ("-" * 100_000 + "1", "x = 1\n" * 50_000):
        notebook.cells.append(nbformat.v4.new_code_cell(source))
        assert names(source)[0] is None
        assert left_out(parse_notebook(notebook), recorded) == set()
        notebook.cells.pop()
    notebook.cells.append(nbformat.v4.new_code_cell("%matplotlib inline\n!ls\nprint(lr)"))
    assert "lr" in names(notebook.cells[-1].source)[0]  # magics are read, not a SyntaxError


@pytest.fixture(scope="module")
def no_loss(tmp_path_factory):
    """The same bug graded with the demos as given, and with the softmax demo edited."""
    notebook = with_functions({"cross_entropy": NO_LOSS})
    demo = softmax_demo(notebook)
    folder = tmp_path_factory.mktemp("demos")
    given = grade_file(write_notebook(notebook, folder / "given.ipynb"))
    notebook.cells[demo].source += "\nprint('my own line')"
    edited = grade_file(write_notebook(notebook, folder / "edited.ipynb"))
    return demo, given, edited


def test_a_given_demo_is_not_run_and_an_edited_one_is(no_loss):
    demo, given, edited = no_loss
    assert demo not in {error.index for error in given.errors}
    assert [e.error.split(":")[0] for e in edited.errors if e.index == demo] == ["AttributeError"]


def test_leaving_demos_out_changes_no_verdict(no_loss, blank_result, tmp_path):
    _, given, edited = no_loss
    assert outcomes(given) == outcomes(edited)
    assert not outcomes(given)["cross_entropy.returns_per_example_cross_entropy"]
    # The blank notebook's demos raise NotImplementedError when run; left out, they say nothing.
    assert all(e.index not in demo_cells(nbformat.read(BLANK, as_version=4))
               for e in blank_result.errors)


def test_a_name_looked_up_at_run_time_makes_the_notebook_run_whole(tmp_path):
    notebook = with_functions({"accuracy": code('''
        def accuracy(y_hat, y):
            assert eval("num_inputs") == 784  # bound only by the softmax demo
            return float((y_hat.argmax(dim=1) == y.reshape(-1)).float().mean())
    ''')})
    result = grade_file(write_notebook(notebook, tmp_path / "eval.ipynb"), FAST)
    assert RUN_WHOLE in result.notes
    accuracy = {name: ok for name, ok in outcomes(result).items() if name.startswith("accuracy.")}
    assert accuracy and all(accuracy.values()), accuracy
