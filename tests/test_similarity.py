"""Near copies are flagged on the submitted notebooks; given code and blanks are not. What
the comparison needs is kept in the output folder, bounded, and a damaged copy of it pairs
its student with no one, saying so."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from conftest import (
    BLANK,
    LENIENT,
    NOTEBOOK,
    SOLUTION,
    UNUSUAL,
    renamed_copy,
    with_functions,
    write_notebook,
)

from grader.grading.results import Result, TestResult
from grader.outputs.similarity import (
    FOLDER,
    MAX_OWN_CELLS,
    MAX_STORED_BYTES,
    MAX_STORED_TEXT,
    MIN_RARE,
    SHOWN_CELLS,
    SimilarPair,
    failure_marks,
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


# Eight students' own, correct softmax, accuracy, data_iter and evaluate_accuracy, each
# written their own way (as d2l study notes show them).
INDEPENDENT = {
    "ana": {
        "softmax": '''
def softmax(X):
    shifted = X - X.max(dim=1, keepdim=True).values
    e = shifted.exp()
    return e / e.sum(dim=1, keepdim=True)
''',
        "accuracy": '''
def accuracy(y_hat, y):
    hits = 0
    for guess, truth in zip(y_hat.argmax(dim=1).tolist(), y.reshape(-1).tolist()):
        hits += int(guess == truth)
    return hits / len(y_hat)
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    order = torch.randperm(len(features))
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        yield features[chosen], labels[chosen]
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    right = seen = 0
    with torch.no_grad():
        for X, y in data_iter:
            right += (net(X).argmax(1) == y).sum().item()
            seen += y.numel()
    return right / seen
''',
    },
    "ben": {
        "softmax": '''
def softmax(X):
    return torch.softmax(X, dim=1)
''',
        "accuracy": '''
def accuracy(y_hat, y):
    labels = y.view(-1)
    return (torch.argmax(y_hat, 1) == labels).sum().item() / labels.shape[0]
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    n = features.shape[0]
    idx = list(range(n))
    random.shuffle(idx)
    batch = []
    for i in idx:
        batch.append(i)
        if len(batch) == batch_size:
            yield features[batch], labels[batch]
            batch = []
    if batch:
        yield features[batch], labels[batch]
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    results = []
    with torch.no_grad():
        for X, y in data_iter:
            results.append(net(X).argmax(dim=1) == y)
    everything = torch.cat(results)
    return everything.float().mean().item()
''',
    },
    "cai": {
        "softmax": '''
def softmax(X):
    m, _ = torch.max(X, dim=1, keepdim=True)
    num = torch.exp(X - m)
    den = torch.sum(num, dim=1, keepdim=True)
    return num / den
''',
        "accuracy": '''
def accuracy(y_hat, y):
    pred = y_hat.argmax(axis=1)
    y = y.flatten()
    correct = pred.eq(y).sum()
    return float(correct) / float(y.numel())
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    perm = torch.randperm(features.size(0))
    for chunk in torch.split(perm, batch_size):
        yield features[chunk], labels[chunk]
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    good, count = 0.0, 0
    with torch.no_grad():
        for features, target in data_iter:
            guess = torch.argmax(net(features), dim=1)
            good += float(torch.sum(guess == target))
            count += target.shape[0]
    return good / count
''',
    },
    "dan": {
        "softmax": '''
def softmax(X):
    rows = []
    for row in X:
        top = row.max()
        ex = torch.exp(row - top)
        rows.append(ex / ex.sum())
    return torch.stack(rows).to(X.dtype)
''',
        "accuracy": '''
def accuracy(y_hat, y):
    y = y.reshape(-1)
    n = len(y)
    good = sum(1 for i in range(n) if int(y_hat[i].argmax()) == int(y[i]))
    return good / n
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    total = len(features)
    shuffled = random.sample(range(total), total)
    i = 0
    while i < total:
        part = torch.tensor(shuffled[i:i + batch_size])
        yield features[part], labels[part]
        i += batch_size
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    correct = 0
    examples = 0
    for X, y in data_iter:
        with torch.no_grad():
            out = net(X)
        correct += sum(int(a == b) for a, b in zip(out.argmax(1).tolist(), y.tolist()))
        examples += len(y)
    return correct / examples
''',
    },
    "eva": {
        "softmax": '''
def softmax(X):
    return torch.exp(torch.log_softmax(X, dim=-1))
''',
        "accuracy": '''
def accuracy(y_hat, y):
    matches = torch.eq(y_hat.max(dim=1).indices, y.squeeze())
    return matches.to(torch.float32).mean().item()
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    order = np.random.permutation(len(features))
    batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    for b in batches:
        b = torch.from_numpy(b)
        yield features[b], labels[b]
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    with torch.no_grad():
        pairs = [((net(X).argmax(dim=-1) == y).sum().item(), len(y)) for X, y in data_iter]
    return sum(p[0] for p in pairs) / sum(p[1] for p in pairs)
''',
    },
    "fay": {
        "softmax": '''
def softmax(X):
    Z = X.clone()
    Z -= Z.amax(dim=1, keepdim=True)
    torch.exp_(Z)
    Z /= Z.sum(dim=1)[:, None]
    return Z
''',
        "accuracy": '''
def accuracy(y_hat, y):
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    cmp = y_hat.type(y.dtype) == y.reshape(y_hat.shape)
    return float(cmp.type(y.dtype).sum()) / len(cmp)
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    n = len(features)
    ids = torch.randperm(n).tolist()
    for begin in range(0, n, batch_size):
        end = min(begin + batch_size, n)
        take = torch.tensor(ids[begin:end])
        yield features.index_select(0, take), labels.index_select(0, take)
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    if isinstance(net, torch.nn.Module):
        net.eval()
    metric = [0, 0]
    with torch.no_grad():
        for X, y in data_iter:
            metric[0] += accuracy(net(X), y) * y.numel()
            metric[1] += y.numel()
    return metric[0] / metric[1]
''',
    },
    "gus": {
        "softmax": '''
def softmax(X):
    biggest = X.max(1).values.unsqueeze(1)
    powers = (X - biggest).exp()
    totals = powers.sum(1).unsqueeze(1)
    return powers.div(totals)
''',
        "accuracy": '''
def accuracy(y_hat, y):
    import numpy as np
    p = y_hat.detach().numpy().argmax(axis=1)
    t = y.detach().numpy().ravel()
    return float(np.mean(p == t))
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    number = len(labels)
    everything = list(zip(range(number), torch.rand(number).tolist()))
    everything.sort(key=lambda pair: pair[1])
    picked = [index for index, _ in everything]
    for s in range(0, number, batch_size):
        sel = torch.LongTensor(picked[s:s + batch_size])
        yield features[sel], labels[sel]
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.train(False)
    hits = torch.tensor(0)
    size = 0
    with torch.inference_mode():
        for inputs, targets in data_iter:
            hits = hits + (net(inputs).max(1)[1] == targets).long().sum()
            size = size + targets.size(0)
    return hits.item() / size
''',
    },
    "hal": {
        "softmax": '''
def softmax(X):
    c = torch.amax(X, 1, True)
    top = torch.exp(X - c)
    return top * torch.reciprocal(torch.sum(top, 1, True))
''',
        "accuracy": '''
def accuracy(y_hat, y):
    n_right = torch.count_nonzero(torch.argmax(y_hat, dim=1) == y.reshape(-1))
    return n_right.item() / y_hat.shape[0]
''',
        "data_iter": '''
def data_iter(batch_size, features, labels):
    indexes = torch.randperm(len(features))
    count = (len(features) + batch_size - 1) // batch_size
    for part in torch.chunk(indexes, count):
        yield features[part], labels[part]
''',
        "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    tally = {"right": 0, "all": 0}
    with torch.no_grad():
        for X, y in data_iter:
            tally["right"] += (net(X).argmax(dim=1) == y).int().sum().item()
            tally["all"] += len(X)
    return tally["right"] / tally["all"]
''',
    },
}

# A wrong solution (softmax over columns, no shift; accuracy averaged per batch), copied
# below with its names changed and comments added, as is conftest's UNUSUAL.
WRONG = {
    "softmax": '''
def softmax(X):
    exps = torch.exp(X)
    col_totals = exps.sum(dim=0, keepdim=True)
    result = exps / col_totals
    return result
''',
    "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    batch_scores = []
    with torch.no_grad():
        for inputs, targets in data_iter:
            predicted = net(inputs).argmax(dim=1)
            batch_scores.append((predicted == targets).float().mean().item())
    return sum(batch_scores) / len(batch_scores)
''',
}


def disguised(source: str, names: dict[str, str]) -> str:
    """A copier's version of `source`: reformatted, names changed, a comment on each line."""
    text = ast.unparse(ast.parse(source))
    for old, new in names.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return "\n".join(f"{line}  # step {number}" for number, line in
                     enumerate(text.splitlines()))


def copied(functions: dict[str, str]) -> dict[str, str]:
    return {name: disguised(source, COPIER_NAMES) for name, source in functions.items()}


def handed_in(functions: dict[str, str], path: Path) -> Path:
    """The handout with the student's `functions` written in, saved at `path`."""
    return write_notebook(with_functions(functions, base=BLANK), path)


COPIER_NAMES = {"X": "logits", "exps": "e", "result": "out", "inputs": "xb", "targets": "yb",
                "keys": "noise", "ranking": "order", "window": "w", "y_hat": "scores",
                "hits": "n", "order": "perm", "right": "ok", "seen": "total"}


def class_of_my_making(folder: Path) -> dict[str, Path]:
    """Seventeen notebooks: eight written independently (INDEPENDENT), the reference and a
    renamed copy of it, a wrong solution (wil) with a disguised copy (xan), an unusual
    correct one (uma) copied by two (vic, yan), and a copy of an ordinary one (zoe of ana)."""
    work = dict(INDEPENDENT, wil=WRONG, uma=UNUSUAL)
    copies = {"xan": "wil", "vic": "uma", "yan": "uma", "zoe": "ana"}
    work |= {copier: copied(work[original]) for copier, original in copies.items()}
    notebooks = {student: handed_in(functions, folder / f"{student}.ipynb")
                 for student, functions in work.items()}
    notebooks["ref"] = write_notebook(nbformat.read(SOLUTION, as_version=4),
                                      folder / "ref.ipynb")
    notebooks["ref2"] = write_notebook(renamed_copy(nbformat.read(SOLUTION, as_version=4)),
                                       folder / "ref2.ipynb")
    return notebooks


PLANTED = {("wil", "xan"), ("uma", "vic"), ("uma", "yan"), ("vic", "yan"), ("ana", "zoe")}


def test_only_planted_copies_are_flagged_in_a_class_of_my_making(tmp_path):
    """Independently written correct work, and the reference handed in twice, pair no one;
    every planted copy (a wrong solution, an unusual one copied by a trio, an ordinary
    one) is flagged."""
    pairs = pairs_of(tmp_path / "out", class_of_my_making(tmp_path))
    assert {(pair.first, pair.second) for pair in pairs} == PLANTED


def marks(student: str, *wrong: tuple[str, str]) -> set[str]:
    """The failure marks of a result failing the (test, message) `wrong` and passing one."""
    tests = [TestResult(name, "softmax", 1.0, 0.0, False, message) for name, message in wrong]
    tests.append(TestResult("softmax.shape", "softmax", 1.0, 1.0, True, "ok"))
    return failure_marks(Result(student, NOTEBOOK, f"{student}.ipynb", "0" * 64, "1", "0" * 64,
                                tests))


def test_a_rare_wrong_answer_failed_alike_adds_evidence(tmp_path):
    """A short copied cell is too little alone; with the same uncommon failed tests (the
    same wrong values) it is a pair. Failures the whole class shares add nothing."""
    notebooks = {student: handed_in(functions, tmp_path / f"{student}.ipynb")
                 for student, functions in INDEPENDENT.items()}
    short = {"softmax": WRONG["softmax"]}
    notebooks |= {"pat": handed_in(short, tmp_path / "pat.ipynb"),
                  "quin": handed_in(copied(short), tmp_path / "quin.ipynb")}
    stored = write_fingerprints(tmp_path / "out", NOTEBOOK, notebooks, handout_digests(SOLUTION))
    common = ("softmax.stable", "overflows on [1000, 1010, 1020]")
    rare = [("softmax.rows", "row 0 sums to 3.0, not 1"), ("softmax.values", "got 0.25 at [0, 1]")]

    def flagged(failures: dict[str, set[str]]) -> set[tuple[str, str]]:
        return {(pair.first, pair.second)
                for pair in similar_pairs(NOTEBOOK, stored, failures=failures)}

    everyone = {student: marks(student, common) for student in notebooks}
    assert flagged(everyone) == set()
    alike = {student: marks(student, common, *rare) for student in ("pat", "quin")}
    assert flagged(everyone | alike) == {("pat", "quin")}
    assert flagged({student: marks(student, *rare) for student in notebooks}) == set()


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
    alice = handed_in(INDEPENDENT["ana"], tmp_path / "alice.ipynb")
    erin = handed_in(copied(INDEPENDENT["ana"]), tmp_path / "erin.ipynb")
    [pair] = pairs_of(tmp_path / "out", {"alice": alice, "erin": erin})
    assert (pair.first, pair.second) == ("alice", "erin") and pair.share > 0.9
    assert len(pair.shown) == min(pair.shared_cells, SHOWN_CELLS) >= 2
    theirs = [second for _, second in pair.shown]
    assert all("# step" in source for source in theirs)
    own = nbformat.read(alice, as_version=4).cells
    assert [first for first, _ in pair.shown] == \
        [own[index].source for index, _ in pair.cells[:SHOWN_CELLS]]


def test_the_reference_handed_in_twice_is_no_pair(tmp_path):
    """Writing the book's solution makes no one a suspect, renamed or not."""
    notebooks = {"ref": write_notebook(nbformat.read(SOLUTION, as_version=4),
                                       tmp_path / "ref.ipynb"),
                 "ref2": write_notebook(renamed_copy(nbformat.read(SOLUTION, as_version=4)),
                                        tmp_path / "ref2.ipynb")}
    assert pairs_of(tmp_path / "out", notebooks) == []


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


@pytest.fixture(scope="module")
def graded_copiers(tmp_path_factory) -> Path:
    """A class graded through grade_folder: the reference (ref), a renamed copy of it
    (ref2), a student's own work (ana) and a disguised copy of it (zoe). Returns the
    output folder."""
    from grader.scale.batch import grade_folder

    root = tmp_path_factory.mktemp("copiers")
    submissions = root / "submissions"
    submissions.mkdir()
    notebooks = {
        "ref": write_notebook(nbformat.read(SOLUTION, as_version=4), submissions / "ref.ipynb"),
        "ref2": write_notebook(renamed_copy(nbformat.read(SOLUTION, as_version=4)),
                               submissions / "ref2.ipynb"),
        "ana": handed_in(INDEPENDENT["ana"], submissions / "ana.ipynb"),
        "zoe": handed_in(copied(INDEPENDENT["ana"]), submissions / "zoe.ipynb"),
    }
    report = grade_folder(submissions, root / "out", [LENIENT])
    assert sorted(report.graded) == [f"{student}/{NOTEBOOK}" for student in sorted(notebooks)], \
        report.faults
    return root / "out"


def test_the_batch_lists_only_the_copy_in_similarity_csv_and_the_summary(graded_copiers):
    out = graded_copiers
    with open(out / "similarity.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["student"], row["other_student"]) for row in rows] == [("ana", "zoe")]
    assert float(rows[0]["rare_shared"]) >= MIN_RARE
    from bs4 import BeautifulSoup

    summary = BeautifulSoup((out / "summary.html").read_text(), "html.parser")
    [pair] = summary.select(".similarity details.pair")
    assert pair["data-students"] == "ana zoe"
    assert pair["data-shared-cells"] == rows[0]["shared_cells"]
    assert len(pair.select(".side-by-side")) == min(int(rows[0]["shared_cells"]), SHOWN_CELLS)
    looks = {li["data-student"]: li.get_text() for li in summary.select(".needs-a-look li")}
    assert "similar to" in looks["zoe"] and "ana" in looks["zoe"]
    assert not any("similar to" in looks.get(student, "") for student in ("ref", "ref2"))


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
    alice = handed_in(INDEPENDENT["ana"], tmp_path / "alice.ipynb")
    erin = handed_in(copied(INDEPENDENT["ana"]), tmp_path / "erin.ipynb")
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
    """Three copies of one student's work, one student's stored cells damaged: the other two are
    still paired, and a note names the third, who is compared with no one."""
    notebooks = {name: handed_in(INDEPENDENT["ana"], tmp_path / f"{name}.ipynb")
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
