"""The handout is the contract: what a check accepts, the handout says, and it runs there.

A check that accepts an equivalent form calls ctx.accept("note") (or a helper forwarding a
note to it), and the student reads "Accepted: note". Each such call must be stated in the
docstring of its function in the blank handout (grader/course/exercises/), and each
accepted form, like the solution itself, must run in the handout's own demo cells: a
submission that passes also works in the student's notebook.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from grader.authoring import course

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ROOT / "grader" / "exercises"
COURSE = course.BUNDLED.root


@dataclass(frozen=True)
class Stated:
    """Where the handout states an accepted form: a phrase of a function's docstring."""

    notebook: str
    function: str
    phrase: str


# Every accept call, by (module, the note's constant text, "{}" for each formatted value),
# and where the handout states it. A new accept call fails test_every_accept_is_stated.
ACCEPTED: dict[tuple[str, str], tuple[Stated, ...]] = {
    ("_shared", "a 0-d tensor instead of a Python float"): (
        Stated("softmax_regression", "accuracy", "a 0-d tensor holding it, as .mean() gives"),
        Stated("softmax_regression", "evaluate_accuracy", "a 0-d tensor holding it is accepted"),
    ),
    ("linreg", "losses of shape (n,) instead of (n, 1)"): (
        Stated("linear_regression", "squared_loss", "shape (n,) is accepted too"),
    ),
    ("linreg", "gradients set to None, as optimizer.zero_grad() does"): (
        Stated("linear_regression", "sgd",
               "set param.grad = None, as optimizer.zero_grad() does"),
    ),
    ("probability", "a one-element tensor instead of a 0-d one for a number"): (
        Stated("preliminaries", "normal", "0-d for a number; a one-element tensor is accepted too"),
    ),
    ("show_images", "ticks removed instead of the axes hidden"): (
        Stated("more_pytorch", "show_images", "removing their ticks instead is accepted too"),
    ),
    ("show_images", "a {} of the axes instead of the array axes.flatten()"): (
        Stated("more_pytorch", "show_images", "a list of them or axes.flat will do too"),
    ),
    ("softmax", "losses of shape (n, 1), as y_hat.gather(1, y.view(-1, 1)) gives"): (
        Stated("softmax_regression", "cross_entropy", "shape (n, 1) is accepted too"),
    ),
    ("validation_training", "0-d tensors instead of Python floats"): (
        Stated("more_pytorch", "train", "0-d tensors (loss.detach()) instead of the floats"),
    ),
    ("validation_training", "a 1-D tensor for {} instead of a list"): (
        Stated("more_pytorch", "train", "a 1-D tensor of the losses instead of a list"),
    ),
}


# --- the walk: every accept call of the checks ------------------------------------------

def parameters(function: ast.FunctionDef) -> list[str]:
    return [arg.arg for arg in function.args.args]


def is_accept(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr == "accept"


def forwarders(trees: dict[str, ast.Module]) -> dict[str, int]:
    """Helpers that pass one of their parameters on to ctx.accept (accept_once): the
    position of that parameter, so that their callers' notes are walked instead."""
    found = {}
    for tree in trees.values():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for call in ast.walk(function):
                if (isinstance(call, ast.Call) and is_accept(call) and call.args
                        and isinstance(call.args[0], ast.Name)
                        and call.args[0].id in parameters(function)):
                    found[function.name] = parameters(function).index(call.args[0].id)
    return found


def note_text(node: ast.expr) -> str | None:
    """The note's constant text, "{}" for each formatted value; None for a variable."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}"
                       for part in node.values)
    return None


def accept_calls() -> list[tuple[str, str | None, int]]:
    """(module, note text, line) of every accept call in grader/exercises/*.py, a
    forwarding helper's own call left out (its callers are walked)."""
    trees = {path.stem: ast.parse(path.read_text(encoding="utf-8"))
             for path in sorted(CHECKS.glob("*.py"))}
    helpers = forwarders(trees)
    calls = []
    for module, tree in trees.items():
        forwarding = {id(c) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                      and f.name in helpers for c in ast.walk(f) if isinstance(c, ast.Call)
                      and is_accept(c)}
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or id(call) in forwarding:
                continue
            if is_accept(call) and call.args:
                calls.append((module, note_text(call.args[0]), call.lineno))
            elif isinstance(call.func, ast.Name) and call.func.id in helpers:
                calls.append((module, note_text(call.args[helpers[call.func.id]]),
                              call.lineno))
    return calls


def docstrings(notebook: str) -> dict[str, str]:
    """The docstring of every function and class of the blank handout's code cells, its
    whitespace collapsed (the handout wraps its lines)."""
    found = {}
    for cell in nbformat.read(COURSE / "exercises" / f"{notebook}.ipynb", as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                found[node.name] = " ".join((ast.get_docstring(node) or "").split())
    return found


def unstated(table: dict[tuple[str, str], tuple[Stated, ...]]) -> list[str]:
    """What the walk finds wrong: accept calls the table lacks, stale rows, phrases the
    handout's docstrings no longer hold."""
    problems, seen = [], set()
    for module, note, line in accept_calls():
        where = f"grader/exercises/{module}.py:{line}"
        if note is None:
            problems.append(f"{where} accepts a note that is not a string literal: write the "
                            "note in the call, so the handout's contract can be checked")
        elif (module, note) not in table:
            problems.append(f"{where} accepts {note!r}: state the variant in its function's "
                            "docstring in grader/course/reference/, run grade assign, and add "
                            "a row to ACCEPTED in tests/test_handout_contract.py")
        seen.add((module, note))
    problems += [f"ACCEPTED's row {key} matches no accept call: remove it" for key in table
                 if key not in seen]
    for key, places in table.items():
        for place in places:
            text = docstrings(place.notebook).get(place.function)
            if text is None:
                problems.append(f"{place.notebook}.ipynb defines no {place.function}")
            elif " ".join(place.phrase.split()) not in text:
                problems.append(f"{place.notebook}.ipynb's {place.function} docstring does "
                                f"not state {key[1]!r} ({key[0]}): it lacks "
                                f"{place.phrase!r}")
    return problems


def test_every_accept_is_stated_in_the_handout():
    assert unstated(ACCEPTED) == []


def test_the_walk_finds_every_accept_call():
    """Eight call sites, nine notes: accept_once's own ctx.accept(note) forwards its
    callers' notes, which are walked instead."""
    calls = accept_calls()
    assert len(calls) == len(ACCEPTED) == 9
    assert all(note is not None for _, note, _ in calls)


def test_a_lost_phrase_or_a_new_accept_fails_the_walk():
    key = ("linreg", "gradients set to None, as optimizer.zero_grad() does")
    lost = {**ACCEPTED, key: (Stated("linear_regression", "sgd", "sgd may leave the "
                                     "gradients for the caller"),)}
    assert [p for p in unstated(lost) if "lacks" in p and "sgd" in p]
    missing = {k: v for k, v in ACCEPTED.items() if k != key}
    assert [p for p in unstated(missing) if "linreg.py" in p and "add a row" in p]
    stale = {**ACCEPTED, ("linreg", "an old note"): ACCEPTED[key]}
    assert [p for p in unstated(stale) if "matches no accept call" in p]


# --- the solution and every accepted form, run in the handout's own demo cells ----------

# Each notebook's accepted forms, written as a student would: the checks accept every one.
VARIANTS: dict[str, dict[str, str]] = {
    "preliminaries": {"normal": '''
def normal(x, mu, sigma):
    x = torch.atleast_1d(torch.as_tensor(x))
    return torch.exp(-0.5 / sigma**2 * (x - mu) ** 2) / math.sqrt(2 * math.pi * sigma**2)
'''},
    "linear_regression": {"squared_loss": '''
def squared_loss(y_hat, y):
    return (y_hat.reshape(-1) - y.reshape(-1)) ** 2 / 2
''', "sgd": '''
def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad = None
'''},
    "softmax_regression": {"cross_entropy": '''
def cross_entropy(y_hat, y):
    return -torch.log(y_hat.gather(1, y.view(-1, 1)))
''', "accuracy": '''
def accuracy(y_hat, y):
    return (y_hat.argmax(dim=1) == y).float().mean()
''', "evaluate_accuracy": '''
def evaluate_accuracy(net, data_iter):
    net.eval()
    hits, total = torch.tensor(0.0), 0
    with torch.no_grad():
        for X, y in data_iter:
            hits += (net(X).argmax(dim=1) == y).sum()
            total += len(y)
    return hits / total
'''},
    "more_pytorch": {"train": '''
def train(n_epochs, optimizer, model, loss_fn, X_train, y_train, X_val, y_val):
    train_losses, val_losses = [], []
    for _ in range(n_epochs):
        loss_train = loss_fn(model(X_train), y_train)
        with torch.no_grad():
            val_losses.append(loss_fn(model(X_val), y_val))
        optimizer.zero_grad()
        loss_train.backward()
        optimizer.step()
        train_losses.append(loss_train.detach())
    return train_losses, torch.stack(val_losses)
''', "show_images": '''
def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    _, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale))
    axes = list(axes.flat)
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        ax.imshow(img.numpy() if torch.is_tensor(img) else img)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(titles[i])
    return axes
'''},
}


def defined(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}


def handout_with(notebook: str, functions: dict[str, str]) -> nbformat.NotebookNode:
    """The blank handout, its blanks (the cells tagged solution) filled with the reference's
    code, those defining `functions` with the sources given; the self-check cells left out
    (they grade: this runs what the student's notebook runs around them)."""
    handout = nbformat.read(COURSE / "exercises" / f"{notebook}.ipynb", as_version=4)
    reference = {cell.id: cell.source for cell in
                 nbformat.read(COURSE / "reference" / f"{notebook}.ipynb", as_version=4).cells}
    cells, remaining = [], dict(functions)
    for cell in handout.cells:
        if cell.cell_type != "code" or "selfcheck" in cell.metadata.get("tags", []):
            continue
        if "solution" in cell.metadata.get("tags", []):
            cell.source = reference[cell.id]
            for name in defined(cell.source) & remaining.keys():
                cell.source = remaining.pop(name).strip()
        cells.append(cell)
    assert not remaining, f"{notebook}.ipynb defines no {sorted(remaining)}"
    handout.cells = cells
    return handout


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells
                   for output in cell.get("outputs", []) if output.output_type == "stream")


def numbers(pattern: str, text: str) -> list[tuple[float, ...]]:
    """Each match of `pattern` in the printed text, its groups as numbers."""
    return [tuple(float(group) for group in match.groups())
            for match in re.finditer(pattern, text, re.M)]


def going_down(losses: list[float]) -> bool:
    return all(b < a for a, b in zip(losses, losses[1:], strict=False))


def sane_preliminaries(text: str, notebook: nbformat.NotebookNode) -> None:
    """Each face's estimate near 1/6, the density's peaks where and as high as N(mu,
    sigma)'s, the trained line's loss below the seed's 2.93 or so."""
    estimates = re.search(r"after 500 groups: tensor\(\[([^\]]*)\]", text)
    assert estimates, text
    assert all(abs(float(v) - 1 / 6) < 0.03 for v in estimates[1].split(","))
    peaks = numbers(r"peak (\S+) at x = (\S+)", text)
    want = [(1 / math.sqrt(2 * math.pi) / sigma, mu) for mu, sigma in ((0, 1), (0, 2), (3, 1))]
    assert len(peaks) == 3, text
    assert all(abs(p - q) < 1e-3 and abs(x - mu) < 0.02
               for (p, x), (q, mu) in zip(peaks, want, strict=True)), text
    (loss,), = numbers(r"loss: (\S+)$", text)
    assert loss < 3.0


def sane_linear_regression(text: str, notebook: nbformat.NotebookNode) -> None:
    """The loss falls every epoch to about the noise's, from scratch and concise."""
    losses = [loss for _, loss in numbers(r"^epoch (\d+), loss (\S+)$", text)]
    assert len(losses) == 3 and going_down(losses) and losses[-1] < 1e-3, text
    (concise,), = numbers(r"^loss: (\S+)$", text)
    assert concise < 1e-3


def sane_softmax_regression(text: str, notebook: nbformat.NotebookNode) -> None:
    """The from-scratch epochs' loss falls, their accuracies are fractions (a count would
    print about 200), and the test accuracies reach softmax regression's."""
    epochs = numbers(r"^epoch \d+, loss (\S+), train acc (\S+), test acc (\S+)$", text)
    assert len(epochs) == 3 and going_down([loss for loss, _, _ in epochs]), text
    assert all(0.7 < acc <= 1 for _, train, test in epochs for acc in (train, test)), text
    (concise,), = numbers(r"^test acc (\S+)$", text)
    assert 0.7 < concise <= 1


def sane_more_pytorch(text: str, notebook: nbformat.NotebookNode) -> None:
    """Both validation trainings end with small losses, both Fashion-MNIST epochs reach
    softmax regression's accuracy, and the grid of images is drawn."""
    losses = numbers(r"model: training loss (\S+), validation loss (\S+)$", text)
    assert len(losses) == 2 and all(0 <= loss < 10 for pair in losses for loss in pair), text
    accuracies = numbers(r"test acc (\S+)$", text)
    assert len(accuracies) == 2 and all(0.7 < acc <= 1 for acc, in accuracies), text
    assert any("image/png" in output.get("data", {}) for output in notebook.cells[-1].outputs)


SANE = {"preliminaries": sane_preliminaries, "linear_regression": sane_linear_regression,
        "softmax_regression": sane_softmax_regression, "more_pytorch": sane_more_pytorch}


def demo_problem(notebook: str, functions: dict[str, str], folder: Path) -> str | None:
    """Why the handout's demos fail with `functions` in its blanks, or None when every cell
    runs and prints what the solution's do."""
    handout = handout_with(notebook, functions)
    client = NotebookClient(handout, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
        SANE[notebook](printed(handout), handout)
    except CellExecutionError as error:
        return f"a cell fails: {error}"
    except AssertionError as error:
        return f"the demo prints what the solution's does not: {error}"
    return None


@pytest.mark.parametrize("variants", [False, True], ids=["solution", "accepted_forms"])
@pytest.mark.parametrize("notebook", sorted(VARIANTS))
def test_runs_in_the_handouts_demo_cells(notebook: str, variants: bool, tmp_path,
                                         single_threaded_kernels):
    """The reference's functions, or every accepted form at once, in the blank handout: no
    cell fails and the demos print what the solution's do (every demo cell, Fashion-MNIST
    epochs included: 5 to 11 s a notebook)."""
    assert demo_problem(notebook, VARIANTS[notebook] if variants else {}, tmp_path) is None


# Forms the handout does not allow, that its demos catch: sgd leaving the gradients to add
# up (the training diverges), an accuracy of shape (1,) (":.3f" refuses it).
NOT_ALLOWED = [
    ("linear_regression", "sgd", '''
def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
'''),
    ("softmax_regression", "accuracy", '''
def accuracy(y_hat, y):
    return (y_hat.argmax(dim=1) == y).float().mean().reshape(1)
'''),
]


@pytest.mark.parametrize(("notebook", "function", "source"), NOT_ALLOWED,
                         ids=[f"{n}-{f}" for n, f, _ in NOT_ALLOWED])
def test_the_demos_catch_a_form_the_handout_does_not_allow(
        notebook: str, function: str, source: str, tmp_path, single_threaded_kernels):
    assert demo_problem(notebook, {function: source}, tmp_path)
