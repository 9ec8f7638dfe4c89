"""Pairs of submissions whose solution cells are near copies, for a person to look at.

Each code cell is normalised through its syntax tree: comments, docstrings and formatting
are gone and every name is renamed by the order it first appears, so renaming variables or
rewording comments leaves a copy a copy. A cell counts only if it differs from every cell
of the handout (the given code, and a blank solution's `raise NotImplementedError()`,
are in every notebook) and is long enough to say something. It changes no score.

Only the submitted notebooks are read, through grader.notebook's bounded reader; nothing
a kernel wrote.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.assign import student_version
from grader.notebook import MAX_PARSED_CHARS, NotebookUnreadable, read_notebook
from grader.results import write_atomically

MIN_NODES = 25  # a cell of fewer syntax nodes (a print, one call) is common by chance
MIN_SHARED = 0.5  # of the smaller submission's own solution code, by syntax nodes
MIN_SHARED_CELLS = 2


class _Renamer(ast.NodeTransformer):
    """Names replaced by their order of first appearance: `x` and `inputs` read alike."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.rename(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.rename(node.name)
        node.returns = None
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.rename(node.name)
        return self.generic_visit(node)


def _drop_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]


@dataclass(frozen=True)
class NormalCell:
    """One code cell, normalised: its fingerprint, its size and its text as handed in."""

    digest: str
    nodes: int
    source: str


def normalised(source: str) -> NormalCell | None:
    """The cell's normal form, or None for one that is not Python (magics aside) or too long
    to parse."""
    if len(source) > MAX_PARSED_CHARS:
        return None
    code = "\n".join(line for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    try:  # a hostile cell may nest past the recursion limit, or be no Python at all
        tree = ast.parse(code)
        _drop_docstrings(tree)
        tree = _Renamer().visit(tree)
        dump = ast.dump(tree, annotate_fields=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    nodes = sum(1 for _ in ast.walk(tree))
    return NormalCell(hashlib.sha256(dump.encode()).hexdigest(), nodes, source)


def code_cells(notebook) -> list[NormalCell]:
    cells = (normalised(cell.source) for cell in notebook.cells if cell.cell_type == "code")
    return [cell for cell in cells if cell is not None]


def solution_cells(path: Path, handout: set[str]) -> dict[str, NormalCell]:
    """The cells a student wrote in the notebook at `path`, by fingerprint: none of the
    handout's, none too short to tell; an unreadable notebook has none."""
    try:
        cells = code_cells(read_notebook(path))
    except NotebookUnreadable:
        return {}
    return {cell.digest: cell for cell in cells
            if cell.digest not in handout and cell.nodes >= MIN_NODES}


@dataclass(frozen=True)
class SimilarPair:
    """Two students whose solution cells coincide, with the cells side by side."""

    assignment: str
    first: str
    second: str
    share: float  # of the smaller one's solution code, by syntax nodes
    shared: list[tuple[str, str]]  # (first's source, second's source) per shared cell


def similar_pairs(assignment: str, notebooks: dict[str, Path],
                  handout: Iterable[str]) -> list[SimilarPair]:
    """Pairs of students (their notebooks for `assignment`) that share most of their own
    code after normalisation, the most similar first."""
    given = set(handout)
    cells = {student: solution_cells(path, given) for student, path in sorted(notebooks.items())}
    sizes = {student: sum(cell.nodes for cell in own.values()) for student, own in cells.items()}
    pairs = []
    for (a, a_cells), (b, b_cells) in itertools.combinations(cells.items(), 2):
        common = [digest for digest in a_cells if digest in b_cells]
        smaller = min(sizes[a], sizes[b])
        if len(common) < MIN_SHARED_CELLS or not smaller:
            continue
        share = sum(a_cells[digest].nodes for digest in common) / smaller
        if share >= MIN_SHARED:
            pairs.append(SimilarPair(assignment, a, b, round(share, 3),
                                     [(a_cells[d].source, b_cells[d].source) for d in common]))
    return sorted(pairs, key=lambda pair: (-pair.share, pair.first, pair.second))


def handout_digests(solution: Path) -> set[str]:
    """Fingerprints of the cells students were given: the student notebook `grade assign`
    makes of the solution notebook at `solution`."""
    return {cell.digest for cell in code_cells(student_version(read_notebook(solution)))}


def write_similarity_csv(pairs: list[SimilarPair], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["assignment", "student", "other_student", "shared_share", "shared_cells"])
    for pair in pairs:
        writer.writerow([pair.assignment, pair.first, pair.second, f"{pair.share:.3f}",
                         len(pair.shared)])
    write_atomically(path, buffer.getvalue())
