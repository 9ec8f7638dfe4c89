"""Class outputs stay bounded whatever a group of students hands in: summary.html and
similarity.csv have caps, building them a fixed memory bound, and the copying is still
found."""

from __future__ import annotations

import csv
import itertools
import json
import tracemalloc
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from conftest import BLANK, NOTEBOOK, SOLUTION, write_notebook

from grader.grading.notebook import MAX_NOTEBOOK_CODE_CHARS
from grader.grading.results import Result, TestResult, Timing
from grader.outputs.classview import SHOWN_MESSAGE, SHOWN_NAMES, SHOWN_PAIRS
from grader.outputs.report import write_summary
from grader.outputs.similarity import (
    LISTED_CELLS,
    SHOWN_CELLS,
    SHOWN_CHARS,
    SimilarPair,
    clipped,
    handout_digests,
    similar_pairs,
    write_fingerprints,
    write_similarity_csv,
)

CELLS = 50
CELL_CHARS = MAX_NOTEBOOK_CODE_CHARS * 3 // 4 // CELLS  # most of what a notebook may hold
SUMMARY_CAP = 5_000_000  # bytes, for a class of 500
# One notebook is read at a time, into a buffer of its own size: a fixed bound, well under
# what a single notebook at the 64 MiB size cap would take.
MEMORY_CAP = 64 * 2**20


def large_cell(number: int) -> str:
    """A cell of CELL_CHARS characters, most of them ones HTML escapes to five."""
    code = (f"def helper_{number}(values):\n    total = 0\n"
            "    for value in values:\n        total = total + value * value - 1\n"
            f"    return total / len(values), {number}\n")
    return code + f'NOTE_{number} = "' + "&" * (CELL_CHARS - len(code) - 12) + '"\n'


@pytest.fixture(scope="module")
def colluders(tmp_path_factory) -> dict[str, Path]:
    """Eight students handing in the blank notebook with the same 50 large cells added."""
    notebook = nbformat.read(BLANK, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(large_cell(n)) for n in range(CELLS)]
    root = tmp_path_factory.mktemp("colluders")
    return {f"c{n}": write_notebook(notebook, root / f"c{n}.ipynb") for n in range(8)}


def with_honest_classmates(colluding: dict[str, Path], folder: Path) -> dict[str, Path]:
    """`colluding` in a class of five times their number, the others handing in the blank:
    code held by more than a fifth of a class is the class's, not evidence of copying."""
    blank = write_notebook(nbformat.read(BLANK, as_version=4), folder / "blank.ipynb")
    honest = {f"h{n}": blank for n in range(4 * len(colluding))}
    return colluding | honest


def result(student: str, assignment: str = NOTEBOOK) -> Result:
    tests = [TestResult(f"ex{e}.t{t}", f"ex{e}", 1.0, float(t % 2), t % 2 == 1,
                        "ok" if t % 2 else f"wrong by {t} on row {e}: " + "x" * 150)
             for e in range(8) for t in range(5)]
    return Result(student, assignment, f"{student}.ipynb", "0" * 64, "1", "0" * 64, tests,
                  timings=[Timing("epoch.run", "cpu", 1.5, 1.0, 3.0)])


@pytest.mark.parametrize("count", [4, 8])
def test_colluders_with_large_cells_are_found_within_fixed_bounds(colluders, tmp_path, count):
    colluding = dict(itertools.islice(colluders.items(), count))
    notebooks = with_honest_classmates(colluding, tmp_path)
    handout = handout_digests(SOLUTION)
    tracemalloc.start()
    try:
        pairs = similar_pairs(NOTEBOOK, write_fingerprints(tmp_path, NOTEBOOK, notebooks,
                                                           handout))
        write_similarity_csv(pairs, tmp_path / "similarity.csv")
        write_summary([result(student) for student in notebooks], tmp_path / "summary.html",
                      pairs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < MEMORY_CAP, f"{peak / 2**20:.0f} MiB"
    assert len(pairs) == count * (count - 1) // 2  # every pair of them is still found
    assert all(pair.share == 1.0 and pair.shared_cells == CELLS for pair in pairs)
    csv_text = (tmp_path / "similarity.csv").read_text()
    assert "&" not in csv_text and len(csv_text) < 200 * (len(pairs) + 1)
    rows = list(csv.DictReader(csv_text.splitlines()))
    assert len(rows[0]["student_cells"].split()) == LISTED_CELLS
    summary_path = tmp_path / "summary.html"
    assert summary_path.stat().st_size < 1_000_000  # all 50 cells of a pair: 7 MB
    summary = BeautifulSoup(summary_path.read_text(), "html.parser")
    shown = summary.select(".similarity details.pair")
    assert len(shown) == len(pairs)
    sources = shown[0].select("pre.source")
    assert len(sources) == 2 * SHOWN_CELLS
    assert all(len(pre.get_text()) < SHOWN_CHARS + 40 for pre in sources)
    assert f"{len(large_cell(0)) - SHOWN_CHARS:,} more characters" in sources[0].get_text()
    assert f"and {CELLS - SHOWN_CELLS} more shared cells" in shown[0].get_text()
    looks = {li["data-student"]: li.get_text() for li in summary.select(".needs-a-look li")}
    assert set(colluding) <= set(looks) and "similar to" in looks["c0"]
    honest = notebooks.keys() - colluding
    assert not any("similar to" in looks.get(student, "") for student in honest)


def test_a_class_of_500_copying_each_other_keeps_the_summary_small(tmp_path):
    """Every pair of 500 students alike, each pair's cells at the most the similarity shows,
    of characters HTML escapes the longest: the summary names the most similar pairs, counts
    the rest and stays under its cap."""
    students = [f"s{n:03d}" for n in range(500)]
    text = clipped("&" * 10**6)
    pairs = [SimilarPair(NOTEBOOK, first, second, 1.0, CELLS,
                         tuple((n, n) for n in range(LISTED_CELLS)),
                         ((text, text),) * SHOWN_CELLS if rank < SHOWN_PAIRS else ())
             for rank, (first, second) in enumerate(itertools.combinations(students, 2))]
    write_summary([result(student) for student in students], tmp_path / "summary.html", pairs)

    assert (tmp_path / "summary.html").stat().st_size < SUMMARY_CAP
    summary = BeautifulSoup((tmp_path / "summary.html").read_text(), "html.parser")
    assert len(summary.select(".similarity details.pair")) == SHOWN_PAIRS
    assert summary.select_one(".more-pairs").get_text() == \
        f"and {len(pairs) - SHOWN_PAIRS} more pairs, in similarity.csv"
    looks = {li["data-student"]: li.get_text() for li in summary.select(".needs-a-look li")}
    assert len(looks) == 500
    assert f"and {499 - SHOWN_NAMES} more" in looks["s250"]


def test_cells_past_the_readers_limits_never_crash_the_comparison(tmp_path):
    """Chains nest without bound (`a.b.b…`, `- - x`): such a cell is left out of the
    comparison; a hex literal too long to write in decimal is compared as any other; the
    cells beside them (one the two share, not the reference's) still count."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(large_cell(0)),
                       nbformat.v4.new_code_cell("_x = a" + ".b" * 3_000),
                       nbformat.v4.new_code_cell("y = " + "-" * 100_000 + "1"),
                       nbformat.v4.new_code_cell("z = " + "(" * 5_000 + ")" * 5_000),
                       nbformat.v4.new_code_cell("def f(x):\n    return x + 0x" + "f" * 5_000)]
    notebooks = {name: write_notebook(notebook, tmp_path / f"{name}.ipynb")
                 for name in ("ann", "ben")}
    [pair] = similar_pairs(NOTEBOOK, write_fingerprints(tmp_path, NOTEBOOK, notebooks,
                                                        handout_digests(SOLUTION)))
    assert (pair.first, pair.second, pair.share) == ("ann", "ben", 1.0)


def test_a_cell_without_a_type_does_not_stop_the_comparison(colluders, tmp_path):
    """The reader takes a cell with no `cell_type` (it is not code); one such notebook
    beside a copying pair used to raise AttributeError and stop the class files."""
    typeless = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                "cells": [{"source": large_cell(0), "metadata": {}}]}
    (tmp_path / "odd.ipynb").write_text(json.dumps(typeless))
    notebooks = {"c0": colluders["c0"], "c1": colluders["c1"], "odd": tmp_path / "odd.ipynb"}
    [pair] = similar_pairs(NOTEBOOK, write_fingerprints(tmp_path, NOTEBOOK, notebooks,
                                                        handout_digests(SOLUTION)))
    assert (pair.first, pair.second) == ("c0", "c1")


def test_a_shared_failure_is_shown_shortened_at_a_word_boundary(tmp_path):
    """A check's message may quote a student's huge value: the summary shows one example,
    cut between words within SHOWN_MESSAGE characters, however many students share it."""
    words = " ".join(f"value{n}" for n in range(20_000))
    results = []
    for student in ("ann", "ben"):
        graded = result(student)
        for test in graded.tests:
            test.message = words if not test.passed else test.message
        results.append(graded)
    write_summary(results, tmp_path / "summary.html")
    summary = BeautifulSoup((tmp_path / "summary.html").read_text(), "html.parser")
    [shown] = {li.select_one(".message").get_text()
               for li in summary.select(".common-failures li")}
    assert len(shown) <= SHOWN_MESSAGE and shown.endswith("…")
    assert words.startswith(shown[:-1]) and words[len(shown) - 1] == " "
