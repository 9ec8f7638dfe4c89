"""Near copies are flagged on the submitted notebooks; given code and blanks are not. What
the comparison needs is kept in the output folder, bounded, and a damaged copy of it pairs
its student with no one, saying so."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
from conftest import BLANK, NOTEBOOK, SOLUTION, renamed_copy, with_functions, write_notebook

from grader.outputs.similarity import (
    FOLDER,
    MAX_OWN_CELLS,
    MAX_STORED_BYTES,
    MAX_STORED_TEXT,
    SHOWN_CELLS,
    SimilarPair,
    fingerprint_path,
    handout_digests,
    normalised,
    read_stored,
    similar_pairs,
    write_fingerprints,
    write_similarity_csv,
)

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


def pairs_of(out: Path, notebooks: dict[str, Path],
             notes: list[str] | None = None) -> list[SimilarPair]:
    """The pairs one run finds: each notebook's cells kept in `out`, then compared."""
    stored = write_fingerprints(out, NOTEBOOK, notebooks, handout_digests(SOLUTION))
    return similar_pairs(NOTEBOOK, stored, notes=notes)


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
    [pair] = pairs_of(tmp_path / "out", {"alice": alice, "erin": erin})
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
    assert pairs_of(tmp_path / "out", notebooks) == []


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


def own_cell(number: int) -> str:
    """A cell of the student's own, long and of the characters JSON writes the longest."""
    return (f"def helper_{number}(a, b):\n    c = a * {number} + b - len('" + "\x01" * 1_200
            + "')\n    return (a - b) / (c + 2 * a * b), max(a, b, c)\n")


def test_only_own_cells_are_kept_clipped_and_within_bounds(tmp_path):
    """More own cells than are compared, each longer than is shown and of characters JSON
    escapes to six bytes: the first MAX_OWN_CELLS are kept, clipped, within the bound the
    reader holds them to; nothing given and nothing that is not code."""
    assert normalised(own_cell(0)).nodes >= 25
    notebook = nbformat.read(SOLUTION, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(own_cell(n)) for n in range(MAX_OWN_CELLS + 50)]
    [stored] = write_fingerprints(tmp_path, NOTEBOOK, {
        "ann": write_notebook(notebook, tmp_path / "ann.ipynb")},
        handout_digests(SOLUTION)).values()
    assert stored == tmp_path / FOLDER / NOTEBOOK / "ann.json"
    assert MAX_STORED_BYTES * 3 / 4 < stored.stat().st_size < MAX_STORED_BYTES
    _, cells = read_stored(stored)
    assert len(cells) == MAX_OWN_CELLS
    assert all(len(cell["text"]) <= MAX_STORED_TEXT for cell in cells)
    assert "more characters" in cells[-1]["text"]
    given = {cell.digest.hex() for cell in map(normalised, (
        c.source for c in nbformat.read(BLANK, as_version=4).cells if c.cell_type == "code"))
        if cell is not None}
    assert not given & {cell["digest"] for cell in cells}
    kinds = {notebook.cells[cell["index"]].cell_type for cell in cells}
    assert kinds == {"code"}


def test_a_student_no_longer_handed_in_is_dropped_and_names_stay_inside(tmp_path):
    alice = write_notebook(nbformat.read(SOLUTION, as_version=4), tmp_path / "alice.ipynb")
    erin = write_notebook(renamed_copy(nbformat.read(SOLUTION, as_version=4)),
                          tmp_path / "erin.ipynb")
    assert len(pairs_of(tmp_path / "out", {"alice": alice, "erin": erin})) == 1
    assert pairs_of(tmp_path / "out", {"alice": alice}) == []
    assert [path.name for path in (tmp_path / "out" / FOLDER / NOTEBOOK).iterdir()] == \
        ["alice.json"]
    for name in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(ValueError, match="cannot name a file of similarity fingerprints"):
            fingerprint_path(tmp_path, NOTEBOOK, name)


def damage(path: Path, how: str, other: Path) -> None:
    """Make the stored file at `path` what no grader wrote."""
    path.unlink()
    if how == "not JSON":
        path.write_text("{ not json")
    elif how == "too large":
        path.write_bytes(b"")
        os.truncate(path, MAX_STORED_BYTES + 1)
    elif how == "a link":
        path.symlink_to(other)
    elif how == "a FIFO":
        os.mkfifo(path)
    elif how == "too many cells":
        cell = {"index": 1, "nodes": 30, "digest": "0" * 32, "text": ""}
        path.write_text(json.dumps({"cells": [cell] * (MAX_OWN_CELLS + 1)}))
    else:
        cell = {"index": 1, "nodes": 30, "digest": "0" * 32, "text": "x" * 10_000}
        path.write_text(json.dumps({"cells": [cell]}))


@pytest.mark.parametrize("how", ["not JSON", "too large", "a link", "a FIFO",
                                 "too many cells", "a text too long"])
def test_a_damaged_store_pairs_its_student_with_no_one_saying_so(tmp_path, how):
    """Three copies of one notebook, one student's stored cells damaged: the other two are
    still paired, and a note names the third, who is compared with no one."""
    solution = nbformat.read(SOLUTION, as_version=4)
    notebooks = {name: write_notebook(solution, tmp_path / f"{name}.ipynb")
                 for name in ("alice", "carol", "erin")}
    stored = write_fingerprints(tmp_path / "out", NOTEBOOK, notebooks,
                                handout_digests(SOLUTION))
    damage(stored["carol"], how, stored["alice"])
    notes: list[str] = []
    [pair] = similar_pairs(NOTEBOOK, stored, notes=notes)
    assert (pair.first, pair.second) == ("alice", "erin")
    [note] = notes
    assert "similarity fingerprints of carol" in note and "cannot be read" in note


def test_similarity_csv_lists_the_pairs_by_assignment(tmp_path):
    pairs = [SimilarPair(assignment, first, "zed", 0.9, 2, ((1, 1), (2, 2)))
             for assignment, first in (("softmax", "bea"), ("linear", "cai"),
                                       ("softmax", "abe"))]
    write_similarity_csv(pairs, tmp_path / "similarity.csv")
    with open(tmp_path / "similarity.csv", newline="") as handle:
        rows = [(row["assignment"], row["student"]) for row in csv.DictReader(handle)]
    assert rows == [("linear", "cai"), ("softmax", "bea"), ("softmax", "abe")]
