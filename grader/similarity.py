"""Pairs of submissions whose solution cells are near copies, for a person to look at.

Each code cell is normalised through its syntax tree: comments, docstrings and formatting
are gone and every name is renamed by the order it first appears, so renaming variables or
rewording comments leaves a copy a copy. A cell counts only if it differs from every cell
of the handout (the given code, and a blank solution's `raise NotImplementedError()`,
are in every notebook) and is long enough to say something. It changes no score.

Only the submitted notebooks are read, through grader.notebook's bounded reader (which caps
a notebook's cells and code) and grader.source's reading of each cell; nothing a kernel
wrote. Whatever a class hands in, the cost stays bounded: one notebook is read at a time and
one cell's tree held at a time, a student's first MAX_OWN_CELLS cells of their own are
kept as fingerprints only (students are paired through cells they hold in common, never by
comparing texts), and the few cells the summary shows are read back afterwards, clipped.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from grader.assign import student_version
from grader.classview import SHOWN_PAIRS
from grader.notebook import NotebookUnreadable, read_notebook
from grader.results import write_atomically
from grader.source import parse_cell

MIN_NODES = 25  # a cell of fewer syntax nodes (a print, one call) is common by chance
MIN_SHARED = 0.5  # of the smaller submission's own solution code, by syntax nodes
MIN_SHARED_CELLS = 2
MAX_OWN_CELLS = 300  # a student's own cells compared (an assignment has tens)
SHOWN_CELLS = 3  # per pair shown
SHOWN_CHARS = 1_000  # of each cell shown
LISTED_CELLS = 10  # cell numbers per pair in similarity.csv

# Fields that say nothing about what the code does; a type comment is a comment.
_DROPPED = frozenset({"annotation", "returns", "type_comment"})
_RENAMED = {ast.Name: "id", ast.arg: "arg", ast.FunctionDef: "name",
            ast.AsyncFunctionDef: "name", ast.ClassDef: "name"}


def _is_docstring(statement: ast.AST) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _fingerprint(tree: ast.AST) -> tuple[bytes, int]:
    """The tree's digest, names renamed by the order they first appear (depth first),
    docstrings and annotations dropped, and its number of syntax nodes. Iterative, and the
    tree is only read (grader.source shares it)."""
    tokens: list[str] = []
    names: dict[str, str] = {}
    nodes = 0
    stack: list[object] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.AST):
            nodes += 1
            tokens.append(type(item).__name__ + "(")
            children = []
            for field in item._fields:
                value = getattr(item, field, None)
                if field in _DROPPED:
                    continue
                if field == _RENAMED.get(type(item)):
                    value = names.setdefault(value, f"v{len(names)}")
                elif field == "body" and isinstance(value, list) and value \
                        and _is_docstring(value[0]):
                    value = value[1:] or [ast.Pass()]
                children.append(value)
            stack.extend(reversed(children))
        elif isinstance(item, list):
            tokens.append(f"[{len(item)}")
            stack.extend(reversed(item))
        elif type(item) is int:  # a hex literal's value may be too long to write in decimal
            tokens.append(hex(item))
        else:
            tokens.append(repr(item))
    text = "\0".join(tokens).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(text, digest_size=16).digest(), nodes


@dataclass(frozen=True)
class NormalCell:
    """One code cell, normalised: its fingerprint and its size in syntax nodes."""

    digest: bytes
    nodes: int


def normalised(source: str) -> NormalCell | None:
    """The cell's normal form, or None for one grader.source cannot read as Python (too
    long, nested too deep, not Python at all)."""
    tree = parse_cell(0, source).tree
    if tree is None:
        return None
    return NormalCell(*_fingerprint(tree))


def code_cells(notebook) -> Iterator[tuple[int, NormalCell]]:
    """(index among all cells, normal form) of the notebook's code cells that read as
    Python, one parsed at a time."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code":  # a hostile file's cell may have no type
            normal = normalised(cell.source)
            if normal is not None:
                yield index, normal


class OwnCell(NamedTuple):
    index: int  # among the notebook's cells
    nodes: int


def own_cells(path: Path, handout: set[bytes]) -> dict[bytes, OwnCell]:
    """The cells a student wrote in the notebook at `path`, by fingerprint, the first of
    each: none of the handout's, none too short to tell; an unreadable notebook has none."""
    try:
        notebook = read_notebook(path)
    except NotebookUnreadable:
        return {}
    own: dict[bytes, OwnCell] = {}
    for index, cell in code_cells(notebook):
        if cell.digest not in handout and cell.nodes >= MIN_NODES:
            own.setdefault(cell.digest, OwnCell(index, cell.nodes))
            if len(own) == MAX_OWN_CELLS:
                break
    return own


@dataclass(frozen=True, slots=True)
class SimilarPair:
    """Two students whose solution cells coincide: how much, which cells (the first
    LISTED_CELLS, by index in each notebook) and, for the pairs the summary shows, the
    first SHOWN_CELLS of them side by side, clipped."""

    assignment: str
    first: str
    second: str
    share: float  # of the smaller one's solution code, by syntax nodes
    shared_cells: int
    cells: tuple[tuple[int, int], ...]  # (index in first's, index in second's notebook)
    shown: tuple[tuple[str, str], ...] = ()  # (first's source, second's source)


def _overlaps(own: list[dict[bytes, OwnCell]]) -> dict[tuple[int, int], list[int]]:
    """Per pair of students (by position) sharing a cell: how many cells and syntax nodes
    they share. Cells held by the same students count together, so a group copying fifty
    cells costs one pass over its pairs, not fifty."""
    holders: dict[bytes, list[int]] = {}
    for student, cells in enumerate(own):
        for digest in cells:
            holders.setdefault(digest, []).append(student)
    groups: dict[tuple[int, ...], list[int]] = {}
    for digest, group in holders.items():
        if len(group) > 1:
            total = groups.setdefault(tuple(group), [0, 0])
            total[0] += 1
            total[1] += own[group[0]][digest].nodes
    shared: dict[tuple[int, int], list[int]] = {}
    for group, (cells, nodes) in groups.items():
        for pair in itertools.combinations(group, 2):
            total = shared.setdefault(pair, [0, 0])
            total[0] += cells
            total[1] += nodes
    return shared


def clipped(text: str, limit: int = SHOWN_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… {len(text) - limit:,} more characters"


def _cell_texts(path: Path, indices: set[int]) -> dict[int, str]:
    """The cells at `indices` of the notebook at `path`, clipped: one notebook read at a
    time, so only the texts shown are ever held."""
    try:
        cells = read_notebook(path).cells
    except NotebookUnreadable:
        return {}
    return {index: clipped(cells[index].source) for index in indices if index < len(cells)}


def _with_sources(pairs: list[SimilarPair], notebooks: dict[str, Path]) -> list[SimilarPair]:
    wanted: dict[str, set[int]] = {}
    for pair in pairs:
        for first, second in pair.cells[:SHOWN_CELLS]:
            wanted.setdefault(pair.first, set()).add(first)
            wanted.setdefault(pair.second, set()).add(second)
    texts = {(student, index): text for student, indices in wanted.items()
             for index, text in _cell_texts(notebooks[student], indices).items()}
    missing = "(this cell could not be read again)"
    return [replace(pair, shown=tuple((texts.get((pair.first, a), missing),
                                       texts.get((pair.second, b), missing))
                                      for a, b in pair.cells[:SHOWN_CELLS]))
            for pair in pairs]


def similar_pairs(assignment: str, notebooks: dict[str, Path],
                  handout: Iterable[bytes]) -> list[SimilarPair]:
    """Pairs of students (their notebooks for `assignment`) that share most of their own
    code after normalisation, the most similar first; the first SHOWN_PAIRS with their
    shared cells' text."""
    given = set(handout)
    students = sorted(notebooks)
    own = [own_cells(notebooks[student], given) for student in students]
    sizes = [sum(cell.nodes for cell in cells.values()) for cells in own]
    pairs = []
    for (a, b), (count, nodes) in _overlaps(own).items():
        share = nodes / min(sizes[a], sizes[b])
        if count >= MIN_SHARED_CELLS and share >= MIN_SHARED:
            common = sorted((own[a][d].index, own[b][d].index) for d in own[a].keys() & own[b])
            pairs.append(SimilarPair(assignment, students[a], students[b], round(share, 3),
                                     count, tuple(common[:LISTED_CELLS])))
    pairs.sort(key=lambda pair: (-pair.share, pair.first, pair.second))
    return _with_sources(pairs[:SHOWN_PAIRS], notebooks) + pairs[SHOWN_PAIRS:]


def handout_digests(solution: Path) -> set[bytes]:
    """Fingerprints of the cells students were given: the student notebook `grade assign`
    makes of the solution notebook at `solution`."""
    return {cell.digest for _, cell in code_cells(student_version(read_notebook(solution)))}


def _numbers(indices: Iterable[int]) -> str:
    return " ".join(str(index + 1) for index in indices)


def write_similarity_csv(pairs: list[SimilarPair], path: Path) -> None:
    """One row per pair; its cells named by number (1 = a notebook's first cell), the first
    LISTED_CELLS of them, never by their text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["assignment", "student", "other_student", "shared_share", "shared_cells",
                     "student_cells", "other_student_cells"])
    for pair in pairs:
        writer.writerow([pair.assignment, pair.first, pair.second, f"{pair.share:.3f}",
                         pair.shared_cells, _numbers(a for a, _ in pair.cells),
                         _numbers(b for _, b in pair.cells)])
    write_atomically(path, buffer.getvalue())
