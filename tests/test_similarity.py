"""Near copies are flagged on the submitted notebooks; given code and blanks are not."""

from __future__ import annotations

import csv

import nbformat
from conftest import BLANK, SOLUTION, renamed_copy, with_functions, write_notebook

from grader.similarity import SHOWN_CELLS, handout_digests, normalised, similar_pairs

OWN_SOFTMAX = """
def softmax(X):
    # my way: shift by the row max, then divide by the row sums
    shifted = X - X.max(dim=1, keepdim=True).values
    numerators = torch.exp(shifted)
    denominators = numerators.sum(dim=1, keepdim=True)
    return numerators / denominators
"""
OWN_ACCURACY = """
def accuracy(y_hat, y):
    predictions = torch.argmax(y_hat, dim=1).type(y.dtype)
    hits = 0
    for guess, truth in zip(predictions.tolist(), y.reshape(-1).tolist()):
        hits += int(guess == truth)
    return hits / len(predictions)
"""


def test_names_comments_docstrings_and_layout_do_not_hide_a_copy():
    first = normalised('def f(x):\n    """Doc."""\n    total = x.sum(dim=1)  # rows\n'
                       "    return total\n")
    second = normalised("def g(values):\n\n    s = values.sum(dim=1)\n    return s")
    other = normalised("def f(x):\n    total = x.sum(dim=0)\n    return total\n")
    assert first.digest == second.digest != other.digest
    magic = normalised("%matplotlib inline\nx = 1")  # read as IPython runs it
    assert magic is not None and magic.digest == normalised("%matplotlib inline\ny = 1").digest
    assert normalised("this is not python (") is None
    assert normalised("x = " + "-" * 100_000 + "1") is None  # past the recursion limit
    assert normalised("x = 1\n" * 40_000) is None  # valid, but too long to parse


def test_renamed_copies_are_flagged_with_their_cells_side_by_side(tmp_path):
    alice = write_notebook(nbformat.read(SOLUTION, as_version=4), tmp_path / "alice.ipynb")
    erin = write_notebook(renamed_copy(nbformat.read(SOLUTION, as_version=4)),
                          tmp_path / "erin.ipynb")
    [pair] = similar_pairs("linear_networks", {"alice": alice, "erin": erin},
                           handout_digests(SOLUTION))
    assert (pair.first, pair.second) == ("alice", "erin") and pair.share > 0.9
    assert len(pair.shown) == min(pair.shared_cells, SHOWN_CELLS) >= 2
    theirs = [second for _, second in pair.shown]
    assert all("# my own work" in source for source in theirs)
    solution = nbformat.read(SOLUTION, as_version=4).cells
    assert [first for first, _ in pair.shown] == \
        [solution[index].source for index, _ in pair.cells[:SHOWN_CELLS]]


def test_blank_students_and_own_work_are_not_flagged(tmp_path):
    """Two untouched handouts share every cell, all of them given code; a student who wrote
    two functions their own way shares nothing with the solution."""
    blank = nbformat.read(BLANK, as_version=4)
    notebooks = {
        "bob": write_notebook(blank, tmp_path / "bob.ipynb"),
        "bea": write_notebook(blank, tmp_path / "bea.ipynb"),
        "olga": write_notebook(with_functions({"softmax": OWN_SOFTMAX, "accuracy": OWN_ACCURACY},
                                              base=BLANK), tmp_path / "olga.ipynb"),
        "alice": write_notebook(nbformat.read(SOLUTION, as_version=4), tmp_path / "alice.ipynb"),
    }
    (tmp_path / "dave.ipynb").write_text("{ not json")
    notebooks["dave"] = tmp_path / "dave.ipynb"
    assert similar_pairs("linear_networks", notebooks, handout_digests(SOLUTION)) == []


def test_the_batch_writes_similarity_csv_and_the_summary_lists_the_pair(graded_class):
    _, _, out = graded_class
    with open(out / "similarity.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    pairs = {(row["student"], row["other_student"]) for row in rows}
    assert ("alice", "erin") in pairs
    assert not {student for pair in pairs for student in pair} & {"bob", "dave"}
    from bs4 import BeautifulSoup

    summary = BeautifulSoup((out / "summary.html").read_text(), "html.parser")
    pair = summary.select_one('.similarity details.pair[data-students="alice erin"]')
    row = next(row for row in rows if (row["student"], row["other_student"]) == ("alice", "erin"))
    assert pair is not None and pair["data-shared-cells"] == row["shared_cells"]
    assert len(pair.select(".side-by-side")) == min(int(row["shared_cells"]), SHOWN_CELLS)
    assert len(row["student_cells"].split()) == len(row["other_student_cells"].split()) >= 2
    looks = {li["data-student"]: li.get_text() for li in summary.select(".needs-a-look li")}
    assert "similar to" in looks["erin"] and "alice" in looks["erin"]
