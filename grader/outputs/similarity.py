"""Pairs of submissions that share rare code: copying, not correctness, for a person to
look at.

Each code cell is read through its syntax tree (comments, docstrings and formatting gone,
every name the same token) and fingerprinted as MOSS does: its runs of GRAM tokens hashed
and winnowed, so renaming, recommenting or reformatting leaves a copy a copy. What every
student has without copying is not evidence: the k-grams of the handout and of the
reference solution are dropped when a student's cells are kept, and those held by many of
the class (more than max(COMMON_MIN, COMMON_SHARE of it), as MOSS's -m) when pairs are
made. A pair's evidence is the rest it shares, each k-gram weighted by its rarity, with
the failed tests it failed alike (same test, same message: the same uncommon bug) counted
the same way; two correct solutions written independently share almost none of it. It
changes no score.

Only the submitted notebooks are read, through grader.grading.notebook's bounded reader (which caps
a notebook's cells and code) and grader.grading.source's reading of each cell; nothing a kernel
wrote. What the comparison needs of each is kept in the output folder, beside the grades
(`OUT/.similarity/ASSIGNMENT/STUDENT.json`, never inside a student's own folder): a
student's first MAX_OWN_CELLS cells of their own, each as its fingerprint, its size, its
k-grams not given (MAX_GRAMS in all) and its text clipped to what the summary shows;
never the whole notebook. Pairs are computed from
these files, so `grade collect` pairs students graded in different shards exactly as one
run over the class does. Whatever a class hands in, the cost stays bounded: one notebook,
then one stored file, is read at a time, students are paired through fingerprints they hold
in common (never by comparing texts), and the few texts the summary shows are read back
afterwards.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from grader.authoring.assign import student_version
from grader.files import open_regular
from grader.grading.notebook import NotebookUnreadable, read_notebook
from grader.grading.results import Result, write_atomically
from grader.grading.source import parse_cell
from grader.outputs.classview import SHOWN_PAIRS
from grader.students.identity import shown

MIN_NODES = 20  # a cell of fewer syntax nodes (a print, one call) is common by chance
GRAM = 24  # syntax tokens per k-gram: about one short line of code
WINDOW = 8  # k-grams per winnowing window
MAX_CELL_GRAMS = 400  # a cell's k-grams kept
MAX_GRAMS = 4_000  # a student's k-grams kept, all cells together
COMMON_SHARE = 0.2  # a k-gram held by more of the class than this is the class's, not copied
COMMON_MIN = 3  # ... or by more students than this, whichever is more (a trio copying is found)
MIN_RARE = 12.0  # rare shared material a pair needs, in k-grams
MIN_SHARED = 0.25  # of the smaller one's rare material
FAILURE_WEIGHT = 4.0  # a rare failed test failed alike, in k-grams
MAX_OWN_CELLS = 300  # a student's own cells compared (an assignment has tens)
SHOWN_CELLS = 3  # per pair shown
SHOWN_CHARS = 1_000  # of each cell shown
LISTED_CELLS = 10  # cell numbers per pair in similarity.csv
FOLDER = ".similarity"  # in an output folder; a student id never starts with '.'
# A student's stored cells: MAX_OWN_CELLS texts of at most SHOWN_CHARS characters and a
# count, each character at most 6 bytes of JSON (an escaped control character): 1.8 MB.
MAX_STORED_BYTES = 2 * 2**20
MAX_STORED_TEXT = SHOWN_CHARS + 40  # the clipped text and its "… N more characters"
UNREAD = "(this cell could not be read again)"

# Fields that say nothing about what the code does; a type comment is a comment.
_DROPPED = frozenset({"annotation", "returns", "type_comment"})
_RENAMED = {ast.Name: "id", ast.arg: "arg", ast.FunctionDef: "name",
            ast.AsyncFunctionDef: "name", ast.ClassDef: "name"}


def _is_docstring(statement: ast.AST) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _tokens(tree: ast.AST, name_of) -> tuple[list[str], int]:
    """The tree's tokens, depth first, each name as `name_of` writes it, docstrings,
    annotations and load/store contexts dropped, and its number of syntax nodes. Iterative,
    and the tree is only read (grader.grading.source shares it)."""
    tokens: list[str] = []
    nodes = 0
    stack: list[object] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.AST):
            if isinstance(item, ast.expr_context):
                continue
            nodes += 1
            tokens.append(type(item).__name__ + "(")
            children = []
            for field in item._fields:
                value = getattr(item, field, None)
                if field in _DROPPED:
                    continue
                if field == _RENAMED.get(type(item)):
                    value = name_of(value)
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
    return tokens, nodes


def _fingerprint(tree: ast.AST) -> tuple[bytes, int]:
    """The tree's digest, names renamed by the order they first appear, and its size."""
    names: dict[str, str] = {}
    tokens, nodes = _tokens(tree, lambda name: names.setdefault(name, f"v{len(names)}"))
    text = "\0".join(tokens).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(text, digest_size=16).digest(), nodes


def _hash(tokens: list[str]) -> str:
    text = "\0".join(tokens).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def _grams(tree: ast.AST) -> tuple[str, ...]:
    """The tree's winnowed k-grams (MOSS's fingerprints): every run of GRAM tokens hashed,
    every name the same token (renaming and reordering names changes none), and of each
    WINDOW consecutive hashes the smallest kept, so any run shared of GRAM + WINDOW - 1
    tokens is found; in order, each once, at most MAX_CELL_GRAMS."""
    tokens, _ = _tokens(tree, lambda name: "_")
    hashes = [_hash(tokens[start:start + GRAM])
              for start in range(max(1, len(tokens) - GRAM + 1))]
    kept = dict.fromkeys(min(hashes[start:start + WINDOW])
                         for start in range(max(1, len(hashes) - WINDOW + 1)))
    return tuple(itertools.islice(kept, MAX_CELL_GRAMS))


@dataclass(frozen=True)
class NormalCell:
    """One code cell, normalised: its fingerprint and its size in syntax nodes."""

    digest: bytes
    nodes: int
    grams: tuple[str, ...]


def normalised(source: str) -> NormalCell | None:
    """The cell's normal form, or None for one grader.grading.source cannot read as Python (too
    long, nested too deep, not Python at all)."""
    tree = parse_cell(0, source).tree
    if tree is None:
        return None
    return NormalCell(*_fingerprint(tree), _grams(tree))


def code_cells(notebook) -> Iterator[tuple[int, NormalCell]]:
    """(index among all cells, normal form) of the notebook's code cells that read as
    Python, one parsed at a time."""
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code":  # a hostile file's cell may have no type
            normal = normalised(cell.source)
            if normal is not None:
                yield index, normal


def clipped(text: str, limit: int = SHOWN_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… {len(text) - limit:,} more characters"


@dataclass(frozen=True)
class Given:
    """What every student has without copying anyone: the cells and k-grams of the
    handout and of the reference solution."""

    digests: frozenset[bytes]
    grams: frozenset[str]


def own_cells(path: Path, given: Given) -> list[dict]:
    """The cells a student wrote in the notebook at `path`, the first of each fingerprint,
    as they are stored: none given, none too short to tell, each with its k-grams not
    given (the first MAX_GRAMS of the notebook), the first MAX_OWN_CELLS, each text
    clipped to what the summary shows; an unreadable notebook has none."""
    try:
        notebook = read_notebook(path)
    except NotebookUnreadable:
        return []
    seen: set[bytes] = set()
    own = []
    room = MAX_GRAMS
    for index, cell in code_cells(notebook):
        if cell.digest in given.digests or cell.nodes < MIN_NODES or cell.digest in seen:
            continue
        seen.add(cell.digest)
        grams = [gram for gram in cell.grams if gram not in given.grams][:room]
        room -= len(grams)
        own.append({"index": index, "nodes": cell.nodes, "digest": cell.digest.hex(),
                    "grams": grams, "text": clipped(notebook.cells[index].source)})
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
    share: float  # of the smaller one's rare material
    shared_cells: int
    cells: tuple[tuple[int, int], ...]  # (index in first's, index in second's notebook)
    shown: tuple[tuple[str, str], ...] = ()  # (first's source, second's source)
    rare: float = 0.0  # rare material shared, in k-grams weighted by rarity: the ranking


def fingerprint_path(out: Path, assignment: str, student: str) -> Path:
    """Where an output folder keeps a student's cells of an assignment; a name that is not
    one plain file name (a `/`, `..`, a leading `.`) is refused, so nothing is written
    outside the folder."""
    for name in (assignment, student):
        if not name or name.startswith(".") or Path(name).name != name or "\0" in name:
            raise ValueError(f"{shown(name)} cannot name a file of similarity fingerprints")
    return out / FOLDER / assignment / f"{student}.json"


def _keep_only(folder: Path, students: Iterable[str]) -> None:
    """Remove the stored cells of students no longer in the output (the folder is the
    grader's own: links and odd entries are removed as they are, never followed)."""
    wanted = {f"{student}.json" for student in students}
    with os.scandir(folder) as entries:
        stale = [entry.path for entry in entries
                 if entry.name.endswith(".json") and entry.name not in wanted]
    for path in stale:
        Path(path).unlink(missing_ok=True)


def write_fingerprints(out: Path, assignment: str, notebooks: dict[str, Path],
                       given: Given) -> dict[str, Path]:
    """Keep in `out` what comparing the students needs of their `notebooks` for
    `assignment` (their own cells: fingerprints, sizes, clipped texts), one notebook read at
    a time, and only theirs: a student no longer handed in is dropped. Returns the stored
    file of each student, for similar_pairs."""
    stored = {student: fingerprint_path(out, assignment, student) for student in notebooks}
    folder = out / FOLDER / assignment
    folder.mkdir(parents=True, exist_ok=True)
    _keep_only(folder, notebooks)
    for student, path in notebooks.items():
        write_atomically(stored[student], json.dumps({"cells": own_cells(path, given)},
                                                     ensure_ascii=False))
    return stored


class StoredUnreadable(ValueError):
    """A file of stored cells that is missing, damaged or not the grader's."""


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length \
        and all(char in "0123456789abcdef" for char in value)


def _valid_cell(cell: object) -> bool:
    if not isinstance(cell, dict):
        return False
    index, nodes, digest, grams, text = (cell.get(key) for key in (
        "index", "nodes", "digest", "grams", "text"))
    return (type(index) is int and 0 <= index and type(nodes) is int and nodes > 0
            and _is_hex(digest, 32) and isinstance(grams, list)
            and len(grams) <= MAX_CELL_GRAMS and all(_is_hex(gram, 16) for gram in grams)
            and isinstance(text, str) and len(text) <= MAX_STORED_TEXT)


def read_stored(path: Path) -> tuple[bytes, list[dict]]:
    """A student's stored cells, and the file's bytes: read as a file the grader may not
    have made (no link, no FIFO, at most MAX_STORED_BYTES) and checked cell by cell."""
    try:
        handle, info = open_regular(path)
    except OSError as error:
        raise StoredUnreadable(error.strerror or str(error)) from None
    with os.fdopen(handle, "rb") as file:
        if info.st_size > MAX_STORED_BYTES:
            raise StoredUnreadable(f"{info.st_size:,} bytes, more than the "
                                   f"{MAX_STORED_BYTES:,} the grader writes")
        data = file.read(MAX_STORED_BYTES + 1)
    if len(data) > MAX_STORED_BYTES:
        raise StoredUnreadable("it grew while it was read")
    try:
        cells = json.loads(data.decode("utf-8"))["cells"]
    except (UnicodeDecodeError, ValueError, TypeError, KeyError):
        raise StoredUnreadable("not the grader's JSON") from None
    if not isinstance(cells, list) or len(cells) > MAX_OWN_CELLS \
            or not all(map(_valid_cell, cells)) \
            or sum(len(cell["grams"]) for cell in cells) > MAX_GRAMS:
        raise StoredUnreadable("its cells are not the grader's")
    return data, cells


def copy_fingerprints(stored: dict[str, Path], out: Path, assignment: str,
                      notes: list[str]) -> dict[str, Path]:
    """The `stored` files (of other output folders) that can be read, copied into `out`
    as `write_fingerprints` keeps them; each that cannot is left out, told in `notes`."""
    copied = {}
    for student, path in stored.items():
        try:
            data, _ = read_stored(path)
        except StoredUnreadable as why:
            notes.append(unread_note(student, assignment, path, why))
            continue
        copied[student] = fingerprint_path(out, assignment, student)
        write_atomically(copied[student], data.decode("utf-8"))
    folder = out / FOLDER / assignment
    folder.mkdir(parents=True, exist_ok=True)
    _keep_only(folder, copied)
    return copied


def unread_note(student: str, assignment: str, path: Path, why: Exception) -> str:
    return (f"The similarity fingerprints of {shown(student)} in {assignment} ({path}) "
            f"cannot be read ({why}): {shown(student)} is compared with no one; run `grade` "
            "into that output again (finished grades are reused, the cells kept anew).")


def _grams_of(student: str, assignment: str, path: Path,
              notes: list[str] | None) -> dict[int, int]:
    """A student's stored k-grams (as numbers: a class's are held at once), each with the
    index of the first cell holding it."""
    try:
        _, cells = read_stored(path)
    except StoredUnreadable as why:
        if notes is not None:
            notes.append(unread_note(student, assignment, path, why))
        return {}
    grams: dict[int, int] = {}
    for cell in cells:
        for gram in cell["grams"]:
            grams.setdefault(int(gram, 16), cell["index"])
    return grams


def _cell_texts(path: Path, indices: set[int]) -> dict[int, str]:
    """The stored texts of the cells at `indices`: one student's file read at a time, so
    only the texts shown are ever held."""
    try:
        _, cells = read_stored(path)
    except StoredUnreadable:
        return {}
    return {cell["index"]: cell["text"] for cell in cells if cell["index"] in indices}


def _with_sources(pairs: list[SimilarPair], stored: dict[str, Path]) -> list[SimilarPair]:
    wanted: dict[str, set[int]] = {}
    for pair in pairs:
        for first, second in pair.cells[:SHOWN_CELLS]:
            wanted.setdefault(pair.first, set()).add(first)
            wanted.setdefault(pair.second, set()).add(second)
    texts = {(student, index): text for student, indices in wanted.items()
             for index, text in _cell_texts(stored[student], indices).items()}
    return [replace(pair, shown=tuple((texts.get((pair.first, a), UNREAD),
                                       texts.get((pair.second, b), UNREAD))
                                      for a, b in pair.cells[:SHOWN_CELLS]))
            for pair in pairs]


def failure_marks(result: Result) -> set[str]:
    """What a student's wrong answers look like: each failed test with its message (the
    same bug gives the same wrong value), hashed, so the stored text is never compared."""
    return {_hash([test.name, test.message]) for test in result.tests if not test.passed}


def _rare_groups(marks: list[dict], common: float) -> dict[tuple[int, ...], int]:
    """The students (by position) holding each mark that is rare (held by 2 to `common`
    of them), grouped: how many marks each group holds. A group copying fifty cells
    costs one pass over its pairs, not fifty."""
    holders: dict[object, list[int]] = {}
    for student, held in enumerate(marks):
        for mark in held:
            holders.setdefault(mark, []).append(student)
    groups: dict[tuple[int, ...], int] = {}
    for group in holders.values():
        if 1 < len(group) <= common:
            groups[tuple(group)] = groups.get(tuple(group), 0) + 1
    return groups


def _shared(groups: dict[tuple[int, ...], int], weight: float) -> dict[tuple, list[float]]:
    """Per pair of students: the marks they share, and the same weighted by rarity (one
    held by two counts 1, by three 1/2...), each mark worth `weight`."""
    shared: dict[tuple[int, int], list[float]] = {}
    for group, count in groups.items():
        for pair in itertools.combinations(group, 2):
            total = shared.setdefault(pair, [0.0, 0.0])
            total[0] += weight * count
            total[1] += weight * count / (len(group) - 1)
    return shared


def _material(marks: list[dict], common: float, weight: float) -> list[float]:
    """Each student's rare material: the marks held by at most `common` students."""
    counts: dict[object, int] = {}
    for held in marks:
        for mark in held:
            counts[mark] = counts.get(mark, 0) + 1
    return [weight * sum(counts[mark] <= common for mark in held) for held in marks]


def similar_pairs(assignment: str, stored: dict[str, Path], *,
                  failures: dict[str, set[str]] | None = None,
                  notes: list[str] | None = None) -> list[SimilarPair]:
    """Pairs of students (their cells of `assignment` as `write_fingerprints` stored them)
    who share rare material: k-grams of code that neither the handout nor the reference
    has and that few of the class hold (as MOSS ignores code in many submissions), and
    failed tests failed alike (`failures`: failure_marks of each). Flagged at MIN_RARE of
    it, when it is MIN_SHARED of the smaller one's (a group copying one source is found
    pair by pair); ranked by it weighted by rarity (what two alone share first), the first
    SHOWN_PAIRS with their shared cells' text. A stored file that cannot be read pairs its
    student with no one, told in `notes`."""
    students = sorted(stored)
    grams = [_grams_of(student, assignment, stored[student], notes) for student in students]
    failed = [dict.fromkeys((failures or {}).get(student, ())) for student in students]
    common = max(COMMON_MIN, COMMON_SHARE * len(students))
    code = _shared(_rare_groups(grams, common), 1.0)
    wrong = _shared(_rare_groups(failed, common), FAILURE_WEIGHT)
    sizes = [a + b for a, b in zip(_material(grams, common, 1.0),
                                   _material(failed, common, FAILURE_WEIGHT), strict=True)]
    pairs = []
    for a, b in code.keys() | wrong.keys():
        amount, rare = (x + y for x, y in zip(code.get((a, b), (0.0, 0.0)),
                                              wrong.get((a, b), (0.0, 0.0)), strict=True))
        share = amount / min(sizes[a], sizes[b])
        if amount >= MIN_RARE and share >= MIN_SHARED:
            common_cells = sorted({(grams[a][g], grams[b][g]) for g in grams[a].keys() & grams[b]})
            pairs.append(SimilarPair(assignment, students[a], students[b],
                                     round(min(share, 1.0), 3), len(common_cells),
                                     tuple(common_cells[:LISTED_CELLS]), rare=round(rare, 1)))
    pairs.sort(key=lambda pair: (-pair.rare, pair.first, pair.second))
    return _with_sources(pairs[:SHOWN_PAIRS], stored) + pairs[SHOWN_PAIRS:]


def handout_digests(solution: Path) -> Given:
    """What students have without copying: the cells and k-grams of the reference
    solution notebook at `solution` and of the student notebook `grade assign` makes of
    it."""
    notebook = read_notebook(solution)
    cells = [cell for _, cell in itertools.chain(code_cells(notebook),
                                                  code_cells(student_version(notebook)))]
    return Given(frozenset(cell.digest for cell in cells),
                 frozenset(gram for cell in cells for gram in cell.grams))


def _numbers(indices: Iterable[int]) -> str:
    return " ".join(str(index + 1) for index in indices)


def write_similarity_csv(pairs: list[SimilarPair], path: Path) -> None:
    """One row per pair, by assignment (in their own order within one: one run and a
    collect of its shards write the same file); its cells named by number (1 = a
    notebook's first cell), the first LISTED_CELLS of them, never by their text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["assignment", "student", "other_student", "shared_share", "shared_cells",
                     "student_cells", "other_student_cells", "rare_shared"])
    for pair in sorted(pairs, key=lambda pair: pair.assignment):
        writer.writerow([pair.assignment, pair.first, pair.second, f"{pair.share:.3f}",
                         pair.shared_cells, _numbers(a for a, _ in pair.cells),
                         _numbers(b for _, b in pair.cells), f"{pair.rare:.1f}"])
    write_atomically(path, buffer.getvalue())
