"""The trust boundary is visible in the tree: what the grading kernel runs lives in
grader/kernel/ (with the exercises' probe modules) and imports nothing of the grader side,
so the student's side never holds the grader's machinery. The students' self-check
(grader/selfcheck.py) evaluates the grader's public checks, but never loads its sandbox or
settings: what it runs comes with the course's public data."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import grader
import grader.kernel
from grader.authoring.exercise import available

KERNEL_MODULES = [f"grader.kernel.{info.name}"
                  for info in pkgutil.iter_modules(grader.kernel.__path__)]
PROBES = sorted(e.probes for e in available().values()
                if e.probes and e.probes.startswith("grader."))
KERNEL_SIDE = [*KERNEL_MODULES, *PROBES]
GRADER_ONLY = ["nbclient", "jupyter_client", "zmq", "grader.sandbox.kernels",
               "grader.sandbox.cgroups", "grader.sandbox.execute", "grader.grading.observe",
               "grader.scale.batch", "grader.scale.units", "grader.grading.grade",
               "grader.grading.reference", "grader.authoring.public",
               "grader.sandbox.observations", "grader.outputs.class_files"]
# What the self-check must not load: the grader's sandbox, its settings and its plan (the
# public data says what to run), besides what drives kernels.
NOT_FOR_THE_SELF_CHECK = ["grader.sandbox.bwrap", "grader.authoring.config",
                          "grader.grading.plan", *GRADER_ONLY]


def run_fresh(code: str) -> object:
    """What `code`, run in a fresh interpreter, prints as JSON."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(grader.__file__).parent.parent)
    return json.loads(out.stdout)


def imported_by(modules: list[str], then: str = "") -> set[str]:
    """The modules a fresh interpreter holds after importing `modules` (and running
    `then`)."""
    return set(run_fresh(f"import importlib, json, sys\nfor name in {modules!r}:\n"
                         f"    importlib.import_module(name)\n{then}\n"
                         "print(json.dumps(sorted(sys.modules)))"))


def grader_modules_loaded_by_each(modules: list[str]) -> dict[str, list[str]]:
    """The grader modules each of `modules` brings in, imported one after the other in a
    fresh interpreter (a module is named by the first that brings it)."""
    return run_fresh(
        "import importlib, json, sys\nloaded, seen = {}, set(sys.modules)\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "    loaded[name] = sorted(m for m in set(sys.modules) - seen "
        "if m.split('.')[0] == 'grader')\n    seen = set(sys.modules)\n"
        "print(json.dumps(loaded))")


def is_kernel_side(module: str) -> bool:
    return (module in ("grader", "grader.exercises", *PROBES)
            or module.split(".")[:2] == ["grader", "kernel"])


def test_the_kernel_side_imports_nothing_that_drives_kernels():
    loaded = imported_by(KERNEL_SIDE)
    assert set(KERNEL_SIDE) <= loaded
    assert sorted(loaded & set(GRADER_ONLY)) == []


def test_the_kernel_side_imports_nothing_of_the_grader_side():
    """grader/kernel/ and the probe modules are what the grading kernel imports: the
    grader's checks, settings and sandbox have no business there."""
    assert "grader.kernel.probing" in KERNEL_SIDE and "grader.exercises.softmax_probes" in PROBES
    offending = {module: outside for module, loaded in
                 grader_modules_loaded_by_each(KERNEL_SIDE).items()
                 if (outside := [m for m in loaded if not is_kernel_side(m)])}
    assert offending == {}, f"kernel-side modules import the grader side: {offending}"


def test_importing_the_self_check_loads_neither_the_sandbox_nor_the_settings():
    """Neither the self-check nor the name notebooks handed out earlier import."""
    for name in ("grader.selfcheck", "grader.kernel.selfcheck"):
        loaded = imported_by([name])
        assert sorted(loaded & set(NOT_FOR_THE_SELF_CHECK)) == [], name


def test_the_self_check_in_use_loads_neither_the_sandbox_nor_the_settings():
    """check() loads the exercises, whose checks it evaluates."""
    loaded = imported_by(["grader.selfcheck"], then="sys.modules['grader.selfcheck']"
                                                    ".exercise_of('softmax')")
    assert "grader.exercises.softmax" in loaded
    offending = sorted(loaded & set(NOT_FOR_THE_SELF_CHECK))
    assert offending == [], f"the self-check in use loads {offending}"


def test_notebooks_handed_out_earlier_still_find_the_self_check():
    from grader import selfcheck
    from grader.kernel.selfcheck import check, check_all, run_check

    assert (check, check_all, run_check) == (selfcheck.check, selfcheck.check_all,
                                             selfcheck.run_check)


def test_building_student_notebooks_needs_neither_the_reference_nor_the_self_check():
    """assign → selfcheck → grade → exercises → quiz → assign was a loop."""
    loaded = imported_by(["grader.authoring.assign"])
    assert not loaded & {"grader.kernel.selfcheck", "grader.selfcheck", "grader.authoring.public",
                         "grader.grading.grade", "grader.exercises", "grader.authoring.exercise"}


def test_an_exercise_s_tests_are_found_by_its_name():
    """A maintainer of one exercise runs `pytest -m NAME`: the tests naming the exercise or a
    function it grades, and none naming only another's."""
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                             "-p", "no:cacheprovider", "-m", "one_hot"],
                            capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parent.parent).stdout.splitlines()
    tests = [line for line in listed if "::" in line]
    assert tests and all("one_hot" in test for test in tests), listed[-5:]


def test_the_wheel_lists_every_package_of_the_grader():
    """A package missing from pyproject's list is missing from the wheel: `grade audit`
    would fail on a fresh install though every test here passed from the checkout."""
    import tomllib

    listed = set(tomllib.loads((Path(grader.__file__).parents[1] / "pyproject.toml")
                               .read_text())["tool"]["setuptools"]["packages"])
    found = {"grader"} | {f"grader.{module.name}" for module in
                          pkgutil.iter_modules(grader.__path__) if module.ispkg}
    assert found - {"grader.course"} <= listed, sorted(found - listed)
