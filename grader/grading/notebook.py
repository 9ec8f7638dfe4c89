"""Reading a submitted notebook: a file read as a file, upgraded to nbformat 4, every cell
in the shape nbclient needs, or a message saying what is wrong."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.reader import get_version, parse_json

from grader.students.submissions import UnsafeFile, read_submitted

# The longest cell whose code the grader parses (for names, calls, similarity): longer, it
# is treated as unreadable, so a hostile cell cannot make the grader spend seconds or
# gigabytes in `ast.parse`.
MAX_PARSED_CHARS = 200_000
# A notebook's cells, and the code the grader parses in all of them together: a real one
# has tens of cells and under 20,000 characters; without a cap, 400,000 tiny cells cost the
# grader minutes and gigabytes before the kernel starts (at this one, about 10 s of parsing).
MAX_CELLS = 2_000
MAX_NOTEBOOK_CODE_CHARS = 1_000_000


class NotebookUnreadable(Exception):
    """The submitted file is not a notebook the grader can run."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path` upgraded to nbformat 4, or a message saying what is wrong."""
    try:
        data = parse_json(read_submitted(path).decode("utf-8"))
        cells = count_cells(data)
        if cells > MAX_CELLS:  # refused before nbformat converts them one by one
            raise NotebookUnreadable(f"{path.name} is not a readable notebook: it has "
                                     f"{cells:,} cells, more than the {MAX_CELLS:,} the "
                                     "grader reads in one")
        major, minor = get_version(data)  # as nbformat.reads does, from the JSON parsed once
        if major not in nbformat.versions:
            raise NotebookUnreadable(f"{path.name} is not a readable notebook: Unsupported "
                                     f"nbformat version {major}")
        notebook = nbformat.convert(nbformat.versions[major].to_notebook_json(data, minor=minor),
                                    4)
    except NotebookUnreadable:
        raise
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
    code = sum(len(cell.source) for cell in notebook.cells if cell.get("cell_type") == "code")
    if code > MAX_NOTEBOOK_CODE_CHARS:
        raise NotebookUnreadable(f"{path.name} is not a readable notebook: its code cells "
                                 f"hold {code:,} characters, more than the "
                                 f"{MAX_NOTEBOOK_CODE_CHARS:,} the grader reads in one")
    return notebook


def count_cells(data: object) -> int:
    """How many cells a notebook's JSON holds (nbformat 4's list, or 3's worksheets)."""
    if not isinstance(data, dict):
        return 0
    if isinstance(data.get("cells"), list):
        return len(data["cells"])
    sheets = data.get("worksheets") if isinstance(data.get("worksheets"), list) else []
    return sum(len(sheet["cells"]) for sheet in sheets
               if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list))

