"""Exercises stand apart: none imports another (what they share is in grader/grading/expect.py, the
assertion library, grader/exercises/_shared.py and, on the kernel side,
grader/kernel/probe_helpers.py), and the checks module holds only the check framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import grader
import grader.exercises
import grader.grading.checks
from grader.grading.checks import Failed
from grader.grading.expect import expect_gradient
from grader.kernel.probe_helpers import MAX_BATCHES, collected

EXERCISES = Path(grader.exercises.__file__).parent
PACKAGE = "grader.exercises"
SHARED = f"{PACKAGE}._shared"  # not an exercise: discovery skips names starting with _


def imported(path: Path) -> set[str]:
    """The modules `path` imports, relative imports resolved within grader.exercises."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = PACKAGE if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            if module == PACKAGE:  # `from . import linreg` names modules, not attributes
                names.update(f"{PACKAGE}.{alias.name}" for alias in node.names)
    return names


def borrowing() -> dict[str, list[str]]:
    """Each module of grader/exercises that imports another, with what it imports: its own
    kernel-side module (declared as its probes) and the shared helpers are not another."""
    found = {}
    for path in sorted(EXERCISES.glob("*.py")):
        own = {f"{PACKAGE}.{path.stem}", f"{PACKAGE}.{path.stem}_probes", SHARED}
        others = sorted(name for name in imported(path)
                        if name.startswith(f"{PACKAGE}.") and name not in own)
        if others:
            found[path.name] = others
    return found


def test_no_exercise_imports_another():
    assert (EXERCISES / "softmax.py").is_file()  # the folder read is the exercises'
    offenders = borrowing()
    assert not offenders, ("these exercise modules import other exercise modules; move what "
                           "they share to grader/grading/expect.py, grader/exercises/_shared.py "
                           f"or grader/kernel/probe_helpers.py: {offenders}")


def test_the_probe_modules_import_only_the_kernel_side_of_the_grader():
    offenders = {path.name: sorted(name for name in imported(path) if name.startswith("grader")
                                   and not name.startswith("grader.kernel"))
                 for path in sorted(EXERCISES.glob("*_probes.py"))}
    assert not {name: bad for name, bad in offenders.items() if bad}


def test_the_no_gradient_check_is_written_once():
    sources = [*Path(grader.__file__).parent.rglob("*.py")]
    written = [path.name for path in sources
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)
               and node.value.startswith("no gradient ")]
    assert written == ["expect.py"]


def test_checks_holds_the_framework_and_no_assertions():
    assert not [name for name in dir(grader.grading.checks)
                if name.startswith(("expect_", "describe", "told_with", "WrongForm"))]


def test_a_missing_gradient_says_where_it_should_have_reached_and_what_to_do():
    with pytest.raises(Failed) as failed:
        expect_gradient(None, "reached y_hat", "build the loss with tensor operations")
    assert failed.value.message == ("no gradient reached y_hat: build the loss with tensor "
                                    "operations")
    assert (failed.value.expected, failed.value.got) == ("a gradient", "None")
    assert expect_gradient([1.0], "reached x", "any") == [1.0]


def test_an_endless_iterator_is_stopped_with_its_name():
    def endless():
        while True:
            yield (1, 2)

    with pytest.raises(RuntimeError, match=f"data_iter yielded more than {MAX_BATCHES} batches"):
        collected(endless(), "data_iter")
    assert collected(iter([(1, 2), (3, 4)]), "load_array's iterator") == [[1, 2], [3, 4]]
