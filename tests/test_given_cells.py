"""Given code never clobbers a name students import.

A given cell that binds `data = load_fashion_mnist()` overwrites `from torch.utils import
data`, the d2l way to write data_iter with `data.TensorDataset`: a correct data_iter written
so then fails every mark that uses it. Each given cell (not a solution, not a self-check) of
each solution notebook may bind the usual names only to what they usually are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from grader.authoring.course import BUNDLED

# The usual idioms, and the imports that give each name its usual meaning.
IDIOMS = {
    "data": {"torch.utils.data"},
    "nn": {"torch.nn"},
    "F": {"torch.nn.functional"},
    "torch": {"torch"},
    "np": {"numpy"},
    "random": {"random"},
    "math": {"math"},
    "d2l": {"d2l.torch"},
}
SOLUTION_MARK = "### BEGIN SOLUTION"
SELF_CHECK_TAG = "selfcheck"


def bindings(tree: ast.AST) -> list[tuple[str, str | None]]:
    """Every top-level name a cell binds, with the module it imports for it (None for any
    other binding: an assignment, a loop, a def)."""
    bound: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name if alias.asname else alias.name.split(".")[0]
                bound.append((alias.asname or alias.name.split(".")[0], top))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound.append((alias.asname or alias.name, f"{node.module}.{alias.name}"))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.append((node.id, None))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.append((node.name, None))
    return bound


def globals_used_by_solutions(cells: list) -> set[str]:
    """Names the solution functions read from the notebook's globals."""
    used: set[str] = set()
    for cell in cells:
        tree = ast.parse(cell.source)
        local = {name for name, _ in bindings(tree)} | {
            node.arg for node in ast.walk(tree) if isinstance(node, ast.arg)}
        used |= {node.id for node in ast.walk(tree)
                 if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)} - local
    return used


def clashes(notebook: nbformat.NotebookNode) -> list[str]:
    """Given cells that bind a usual name to something else, or bind again a name the
    solutions read that an earlier cell had bound (a helper they call, say)."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    solutions = [cell for cell in code if SOLUTION_MARK in cell.source]
    used = globals_used_by_solutions(solutions)
    bound: set[str] = set()
    found = []
    for cell in code:
        names = bindings(ast.parse(cell.source))
        given = cell not in solutions and SELF_CHECK_TAG not in cell.metadata.get("tags", [])
        for name, module in names if given else ():
            usual = IDIOMS.get(name)
            unusual = usual is not None and module not in usual
            if unusual or (name in used and name in bound and usual is None):
                found.append(f"{name!r} in: {cell.source.splitlines()[0][:70]}")
        bound |= {name for name, _ in names}
    return found


@pytest.mark.parametrize("path", sorted(BUNDLED.reference.glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_given_cell_rebinds_a_name_students_use(path: Path):
    assert clashes(nbformat.read(path, as_version=4)) == []


def test_the_rule_catches_the_clash_it_is_for():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("from torch.utils import data\nimport torch.nn.functional as F"),
        nbformat.v4.new_code_cell("def data_iter(n):\n    ### BEGIN SOLUTION\n"
                                  "    return data.DataLoader(n, features)\n"),
        nbformat.v4.new_code_cell("features = 1"),
        nbformat.v4.new_code_cell("data = load_fashion_mnist()\nfeatures = 3"),
    ]
    assert [clash.split(" in:")[0] for clash in clashes(notebook)] == ["'data'", "'features'"]
