"""Reading a submitted notebook: a file read as a file, upgraded to nbformat 4, every cell
in the shape nbclient needs, or a message saying what is wrong."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from grader.submissions import UnsafeFile, read_submitted

# The longest cell whose code the grader parses (for names, calls, similarity): longer, it
# is treated as unreadable, so a hostile cell cannot make the grader spend seconds or
# gigabytes in `ast.parse`.
MAX_PARSED_CHARS = 200_000


class NotebookUnreadable(Exception):
    """The submitted file is not a notebook the grader can run."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path` upgraded to nbformat 4, or a message saying what is wrong."""
    try:
        notebook = nbformat.reads(read_submitted(path).decode("utf-8"), as_version=4)
    except UnsafeFile as error:
        raise NotebookUnreadable(str(error)) from None
    except UnicodeDecodeError:
        raise NotebookUnreadable(f"{path.name} is not UTF-8 text") from None
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for bad files
        raise NotebookUnreadable(f"{path.name} is not a readable notebook: "
                                 f"{type(error).__name__}: {str(error)[:300]}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookUnreadable(f"{path.name} has no cells")
    for number, cell in enumerate(notebook.cells, start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("source"), str):
            raise NotebookUnreadable(f"{path.name} is not a readable notebook: cell {number} "
                                     "has no text as its source")
        cell.setdefault("metadata", {})
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
    return notebook


def without_cells(notebook: nbformat.NotebookNode,
                  left_out: dict[int, str]) -> nbformat.NotebookNode:
    """A copy to run with some cells left out, each replaced by a comment saying why
    (indices kept)."""
    copy_ = copy.deepcopy(notebook)
    for index, why in left_out.items():
        copy_.cells[index].source = f"# {why}"
    return copy_
