"""Every step that reads a student's source is bounded and total: a cell nested past what the
grader reads is unreadable (it costs the from-scratch marks, with a message), never a
RecursionError that takes the whole submission down; a notebook past the caps on cells and
code is refused with the reason before the grader spends anything on it; and each cell is
parsed once for every step."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc

import nbformat
import pytest
from conftest import LENIENT, NOTEBOOK, SOLUTION, TEST_COURSE, grade_file, write_notebook

import grader.grading.source
from grader.exercises import linreg, softmax
from grader.grading.forbidden import forbidden_uses
from grader.grading.handout import left_out, read_handout, recorded_demos, unwritten
from grader.grading.notebook import (
    MAX_CELLS,
    MAX_NOTEBOOK_CODE_CHARS,
    MAX_PARSED_CHARS,
    NotebookUnreadable,
    read_notebook,
)
from grader.grading.source import MAX_DEPTH, parse_notebook
from grader.scale.batch import grade_folder

RULES = [softmax.FORBIDDEN, linreg.FORBIDDEN]
FROM_SCRATCH = {name for rules in RULES for name in rules}
DEEP_CHAIN = "_x = a" + ".b" * 3000  # 6 KB: a RecursionError in forbidden.dotted before
UNREADABLE = "the grader cannot check which library calls it makes"


def solution_with(*cells: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(SOLUTION, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    return notebook


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """Every cell grader.grading.source parses, as it parses it."""
    seen: list[str] = []

    cells = grader.grading.source.ipython_cells()

    class Counting(cells.TransformerManager):
        def transform_cell(self, cell: str) -> str:
            seen.append(cell)
            return super().transform_cell(cell)

    monkeypatch.setattr(cells, "TransformerManager", Counting)
    return seen


@pytest.mark.parametrize("source", [
    DEEP_CHAIN,
    "_x = a" + ".b" * 20_000,  # past what ast.parse itself builds
    "x = " + "[" * 150 + "]" * 150,  # nested lists, within the tokenizer's 200 brackets
    "x = " + "-" * 5_000 + "1",
    "x = " + "lambda: " * 3_000 + "1",
    "x = f" + "(0)" * 3_000,
    "x = " + " + ".join(["a"] * 5_000),
])
def test_a_cell_nested_past_what_the_grader_reads_costs_the_from_scratch_marks(source):
    recorded = recorded_demos(read_handout(TEST_COURSE.exercises / f"{NOTEBOOK}.ipynb"))
    parsed = parse_notebook(solution_with(source))
    cell = parsed.cells[-1]
    assert cell.tree is None and cell.unreadable and cell.names[0] is None
    found = forbidden_uses(RULES, parsed, {})
    assert set(found) == FROM_SCRATCH
    assert all(UNREADABLE in message and f"cell {cell.index + 1} " in message
               for message in found.values())
    assert left_out(parsed, recorded) == set()  # it may read any name: every demo runs


def test_trees_handed_out_nest_no_deeper_than_the_bound():
    """A consumer that recurses (ast.dump, a NodeVisitor) stays far from the limit."""
    for depth in (MAX_DEPTH - 10, MAX_DEPTH + 10):
        cell = parse_notebook(solution_with("x = " + "-" * depth + "1")).cells[-1]
        assert (cell.tree is not None) == (depth < MAX_DEPTH)


def test_brackets_past_pythons_own_limit_are_not_python():
    """The kernel cannot run it either: it defines nothing and costs nothing."""
    parsed = parse_notebook(solution_with("x = " + "(" * 5_000 + ")" * 5_000))
    assert (parsed.cells[-1].tree, parsed.cells[-1].unreadable) == (None, None)
    assert forbidden_uses(RULES, parsed, {}) == {}


def test_each_cell_is_parsed_once_for_every_step(parses):
    notebook = solution_with(DEEP_CHAIN[:200])
    handout = read_handout(TEST_COURSE.exercises / f"{NOTEBOOK}.ipynb")
    parsed = parse_notebook(notebook)
    left_out(parsed, recorded_demos(handout))
    unwritten(parsed, handout)
    forbidden_uses(RULES, parsed, {})
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert sorted(parses) == sorted(code)


def write_json(path, cells: list[dict]) -> None:
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": [],
            "execution_count": None}


def test_a_notebook_past_the_caps_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "many.ipynb"
    write_json(path, [code_cell("x = 1")] * (MAX_CELLS + 1))
    with pytest.raises(NotebookUnreadable, match=f"{MAX_CELLS + 1:,} cells"):
        read_notebook(path)
    count = MAX_NOTEBOOK_CODE_CHARS // MAX_PARSED_CHARS + 1
    write_json(path, [code_cell("#" * MAX_PARSED_CHARS)] * count)
    with pytest.raises(NotebookUnreadable, match="characters, more than the"):
        read_notebook(path)
    write_json(path, [code_cell("x = 1")] * MAX_CELLS)
    assert len(read_notebook(path).cells) == MAX_CELLS


def test_400_000_tiny_cells_are_refused_before_any_parse(tmp_path, parses):
    """Before: 94 s and 2.1 GB in the grader before the kernel started. Now refused as it
    is read: every test fails with the reason, and no cell is parsed."""
    path = tmp_path / "huge.ipynb"
    write_json(path, [code_cell("x = 1")] * 400_000)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(NotebookUnreadable, match="400,000 cells"):
        read_notebook(path)
    seconds, (_, peak) = time.perf_counter() - started, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{path.stat().st_size / 2**20:.0f} MiB, 400,000 cells: refused in {seconds:.1f} s, "
          f"peak {peak / 2**20:.0f} MiB traced")
    assert peak < 1024 * 2**20  # the JSON alone: nothing per cell beyond it
    result = grade_file(path, LENIENT)
    assert result.tests and all(not test.passed and "400,000 cells" in test.message
                                for test in result.tests)
    assert parses == []


def test_a_deep_cell_is_graded_with_a_message_and_the_class_with_it(tmp_path):
    """The issue's 6 KB cell, never run: before, no results.json, no report, exit 2 on every
    rerun. Now its from-scratch functions lose their marks, saying why, its other work
    keeps them, and the classmate beside it is graded as ever."""
    submissions = tmp_path / "submissions"
    deep = solution_with(f"if False:\n    {DEEP_CHAIN}\n")
    write_notebook(deep, submissions / "deep.ipynb")
    write_notebook(nbformat.read(SOLUTION, as_version=4), submissions / "good.ipynb")
    report = grade_folder(submissions, tmp_path / "out", [LENIENT])
    assert not report.faults
    results = {result.student: result for result in report.results}
    assert set(results) == {"deep", "good"}
    graded = results["deep"].tests
    scratch = [test for test in graded if test.exercise in FROM_SCRATCH]
    assert scratch and all(not test.passed and UNREADABLE in test.message for test in scratch)
    others = [test for test in graded if test.exercise not in FROM_SCRATCH]
    assert others and all(test.passed for test in others if test.exercise.startswith("concise"))
    assert all(test.passed for test in results["good"].tests)
    assert (tmp_path / "out" / "deep" / NOTEBOOK / "results.json").is_file()


def test_a_step_reading_the_students_text_that_raises_fails_only_that_notebook(
        tmp_path, monkeypatch):
    """Were a reading step to raise all the same (a bound missed, a parser's bug), the
    student gets every test failed with the reason, and no grader fault stops the batch."""
    import grader.grading.grade

    def gives_up(notebook):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(grader.grading.grade, "parse_notebook", gives_up)
    path = write_notebook(nbformat.read(SOLUTION, as_version=4), tmp_path / "deep.ipynb")
    result = grade_file(path, LENIENT)
    assert result.fault is None and result.tests
    assert all(not test.passed and "RecursionError while reading its code" in test.message
               for test in result.tests), result.tests[0].message


MAGICS_IN_A_FRESH_PROCESS = """
import ast, json, sys
import nbformat
from grader.grading.source import parse_notebook
cell = nbformat.v4.new_code_cell("%matplotlib inline\\nfiles = !ls\\nimport torch")
[parsed] = parse_notebook(nbformat.v4.new_notebook(cells=[cell])).cells
calls = [node.func.attr for node in ast.walk(parsed.tree) if isinstance(node, ast.Call)
         and isinstance(node.func, ast.Attribute)]
print(json.dumps({"calls": calls, "ipython": sorted(m for m in sys.modules
                                                    if m.split(".")[0] == "IPython")}))
"""


def test_magics_are_read_without_importing_the_ipython_package():
    """IPython's cell transformer is loaded from its file alone: the IPython package's own
    import (its terminal, its debugger, jedi) cost every grading process 0.3 s before its
    first kernel. The magics still read as the calls the kernel runs."""
    ran = subprocess.run([sys.executable, "-c", MAGICS_IN_A_FRESH_PROCESS],
                         capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(ran.stdout)
    assert found == {"calls": ["run_line_magic", "getoutput"], "ipython": []}, found
