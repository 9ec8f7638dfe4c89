"""The reference functions, taken from the solution notebooks in reference/.

The solution notebook is the single source of the reference: its cells tagged ``setup``
and ``solution`` are run here, in the grader's own process (trusted code), once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import nbformat

from grader.paths import REFERENCE

REFERENCE_TAGS = {"setup", "solution"}


@cache
def reference_functions(notebook: str, folder: Path = REFERENCE) -> dict[str, Any]:
    """Namespace after running the tagged cells of reference/<notebook>.ipynb."""
    path = folder / f"{notebook}.ipynb"
    solution = nbformat.read(path, as_version=4)
    namespace: dict[str, Any] = {"__name__": f"reference.{notebook}"}
    for cell in solution.cells:
        if cell.cell_type == "code" and REFERENCE_TAGS & set(cell.metadata.get("tags", [])):
            exec(compile(cell.source, f"{path}:cell", "exec"), namespace)  # noqa: S102
    return namespace
