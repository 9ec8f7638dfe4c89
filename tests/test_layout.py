"""The trust boundary is visible in the tree: what runs in the student's kernel lives in
grader/kernel/ (with the exercises' probe modules) and pulls in nothing that drives
kernels, so the student's side never holds the grader's machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grader
from grader.exercise import available

KERNEL_SIDE = ["grader.kernel.probing", "grader.kernel.data", "grader.kernel.selfcheck",
               *(e.probes for e in available().values() if e.probes)]
GRADER_ONLY = ["nbclient", "jupyter_client", "zmq", "grader.kernels", "grader.cgroups",
               "grader.execute", "grader.observe", "grader.batch", "grader.grade",
               "grader.reference", "grader.public", "grader.observations"]


def imported_by(modules: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    code = (f"import importlib, json, sys\nfor name in {modules!r}:\n"
            "    importlib.import_module(name)\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(grader.__file__).parent.parent)
    return set(json.loads(out.stdout))


def test_the_kernel_side_imports_nothing_that_drives_kernels():
    loaded = imported_by(KERNEL_SIDE)
    assert set(KERNEL_SIDE) <= loaded
    assert sorted(loaded & set(GRADER_ONLY)) == []


def test_building_student_notebooks_needs_neither_the_reference_nor_the_self_check():
    """assign → selfcheck → grade → exercises → quiz → assign was a loop."""
    loaded = imported_by(["grader.assign"])
    assert not loaded & {"grader.kernel.selfcheck", "grader.public", "grader.grade",
                         "grader.exercises", "grader.exercise"}
