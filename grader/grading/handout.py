"""What a submission left as handed out: given demo cells (not run) and blanks (named).

The handout is the course's own copy of the student notebook (exercises/, written by
`grade assign`), never the submission's idea of it. Given demo cells (training runs,
plots) that the student left as given are not run. The probes train again with the
student's functions, so what a demo computes is never graded; running it only costs
seconds. `grade assign` records a digest of each cell the
solution tags ``demo`` in the student notebook's metadata, as nbgrader checksums its
locked cells. The grader reads that record from the course's own copy of the student
notebook, never from the submission: a cell is left out only if its source is one the
course gave. An edited demo runs as the student wrote it, and so does a given one that
binds a name another cell that runs reads (a function of the student's that reads
`num_outputs`, say): the verdict must be the one a full run gives. Names looked up at run
time escape that reading; grader/grading/observe.py runs the notebook whole when a NameError says
one was missed. A solution cell left as handed out is named in a note, so a blank
function says "not written yet" even where no cell that runs calls it.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

import nbformat

from grader.grading.source import ParsedNotebook, parse_cell

DEMO_TAG = "demo"
BLANK = "raise NotImplementedError"  # what `grade assign` puts in place of a solution
DEFINED = re.compile(r"^(?:def|class) (\w+)", re.M)
MAX_RECORD_BYTES = 16 * 2**20  # the course's student notebook, read to find the record


def digest(source: str) -> str:
    """A cell's digest; the whitespace Jupyter adds or trims at either end does not count."""
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()


def demo_digests(notebook: nbformat.NotebookNode) -> list[str]:
    """The digests of the cells tagged as demos, in order: what `grade assign` records."""
    return [digest(cell.source) for cell in notebook.cells
            if cell.cell_type == "code" and DEMO_TAG in cell.metadata.get("tags", [])]


def read_handout(path: Path) -> dict:
    """The course's student notebook as plain data; {} if `grade assign` has not written
    it (or it is no notebook)."""
    try:
        with path.open("rb") as handle:
            handout = json.loads(handle.read(MAX_RECORD_BYTES))
    except (OSError, ValueError):
        return {}
    return handout if isinstance(handout, dict) else {}


def recorded_demos(handout: dict) -> frozenset[str]:
    """The demo digests `grade assign` recorded in the handout; none if it was written
    before demos were recorded."""
    try:
        record = handout["metadata"]["grader"]["demos"]
    except (LookupError, TypeError):
        return frozenset()
    return frozenset(d for d in record if isinstance(d, str)) if isinstance(record, list) \
        else frozenset()


def unwritten(parsed: ParsedNotebook, handout: dict) -> list[str]:
    """The functions and classes whose cell the submission left as handed out, blank."""
    cells = handout.get("cells") if isinstance(handout.get("cells"), list) else []
    blanks = {digest(text) for text in (cell_text(cell) for cell in cells)
              if BLANK in text}
    return [name for cell in parsed.cells if digest(cell.source) in blanks
            for name in DEFINED.findall(cell.source)]


def cell_text(cell) -> str:
    """A handout cell's source, which nbformat keeps as a string or a list of lines."""
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source)


def left_out(parsed: ParsedNotebook, recorded: frozenset[str]) -> set[int]:
    """The indices of the submission's cells to leave out: its given demos, unchanged,
    that bind no name a cell that runs reads."""
    code = {cell.index: cell for cell in parsed.cells}
    demos = {index for index, cell in code.items() if digest(cell.source) in recorded}
    while demos:
        reads = [cell.names[0] for index, cell in code.items() if index not in demos]
        if None in reads:
            return set()
        read = set().union(*reads)
        needed = {index for index in demos if code[index].names[1] & read}
        if not needed:
            return demos
        demos -= needed
    return demos


@lru_cache(maxsize=4096)
def names(source: str) -> tuple[frozenset[str] | None, frozenset[str]]:
    """The global names a cell of the course's own reads and binds (grader/grading/source.py's
    CodeCell.names); a submission's cells are read through its ParsedNotebook instead."""
    return parse_cell(0, source).names
