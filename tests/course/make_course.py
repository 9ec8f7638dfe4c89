"""(Re)build the test course: `python tests/course/make_course.py`.

The bundled course's assignments as one notebook, `linear_networks`, graded as a single
assignment of every exercise: the hostile corpus and most tests run on it, so that one
kernel run exercises them all. tests/test_course.py checks that it is up to date.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import nbformat

from grader.authoring.assign import assign, render
from grader.authoring.course import BUNDLED

HERE = Path(__file__).resolve().parent
NAME = "linear_networks"
ORDER = ("preliminaries", "linear_regression", "softmax_regression")
# The cells of check_all() (the call and its heading, by id): it runs the public tests of
# one assignment of the bundled course, which the combined notebook is not.
CHECK_ALL = ("self-check", "check-all")
# The self-check's import, made the one notebooks handed out before it moved still have: the
# test course's kernels then run the forwarder (grader/kernel/selfcheck.py), and without the
# check_all() cells check_all would be imported for nothing (a lint error).
SELFCHECK_IMPORT = ("from grader.selfcheck import check, check_all",
                    "from grader.kernel.selfcheck import check")


def combined_notebook() -> nbformat.NotebookNode:
    """The bundled solution notebooks one after the other, a code cell that repeats an
    earlier one (the imports) and the check_all() cells left out."""
    parts = [nbformat.read(BUNDLED.reference / f"{name}.ipynb", as_version=4) for name in ORDER]
    notebook = copy.deepcopy(parts[0])
    cells, seen = [], set()
    for cell in (cell for part in parts for cell in part.cells):
        if cell.get("id") in CHECK_ALL:
            continue
        if cell.cell_type != "code" or cell.source not in seen:
            seen.add(cell.source)
            cells.append(copy.deepcopy(cell))
            cells[-1].source = cell.source.replace(*SELFCHECK_IMPORT)
    notebook.cells = cells
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    notebook.metadata["grader"] = {"notebook": NAME}
    return notebook


def combined_settings() -> str:
    """The last assignment's settings file, with every exercise and every table."""
    files = [BUNDLED.assignments / f"{name}.toml" for name in ORDER]
    exercises = [e for path in files for e in tomllib.loads(path.read_text())["exercises"]]
    body = files[-1].read_text().split("\n[softmax]")[0]
    body = body[body.index("# Checked on load"):]
    head, _, rest = body.partition("exercises = ")
    text = ("# Every exercise of the bundled course in one notebook: tests/course/make_course.py "
            f"writes it.\n{head}exercises = {json.dumps(exercises)}{rest[rest.index(chr(10)):]}")
    for path in files:
        tables = path.read_text().split("\n[points]\n", 1)[1].split("\n\n", 1)
        # Each file's closing [late] example, once per file, would only repeat itself.
        text += "\n" + (tables[1].split("\n# Late work")[0] if len(tables) > 1 else "")
    return text.rstrip("\n") + "\n"


def write(target: Path = HERE) -> None:
    (target / "reference").mkdir(parents=True, exist_ok=True)
    (target / "assignments").mkdir(exist_ok=True)
    (target / "reference" / f"{NAME}.ipynb").write_text(render(combined_notebook()),
                                                         encoding="utf-8")
    (target / "assignments" / f"{NAME}.toml").write_text(combined_settings(), encoding="utf-8")
    assign(target / "reference", target / "exercises", NAME)


if __name__ == "__main__":
    write()
