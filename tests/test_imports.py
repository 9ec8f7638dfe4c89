"""No module of the grader imports itself back, even from inside a function: a cycle
(batch and distributed importing each other) ties modules that should change apart, and
hides what a module needs. The class outputs are declared once
(grader/outputs/class_files.py), and no student id may take their names."""

from __future__ import annotations

import ast
from pathlib import Path

import grader
from grader.outputs.class_files import OUTPUTS
from grader.students.identity import RESERVED, is_clean

PACKAGE = Path(grader.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the grader package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    """`if TYPE_CHECKING:` guards imports for the type checker alone: never run."""
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_in(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """The dotted names a module imports anywhere in it (functions included, the type
    checker's alone left out), `from a import b` as both a and a.b."""
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, name, is_package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))
    return found


def absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The module a `from ... import` names, relative ones resolved against `name`."""
    if not node.level:
        return node.module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    parts = parts[:len(parts) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def with_packages(name: str) -> list[str]:
    """A module and the packages above it, which importing it runs first."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def import_graph() -> dict[str, set[str]]:
    """Each grader module and the grader modules it imports (not itself)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported = imports_in(tree, name, path.name == "__init__.py")
        graph[name] = {target for dotted in imported for target in with_packages(dotted)
                       if target in known and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as the modules along it (the first again at the end)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                stack.pop()
                continue
            if step in on_path:
                return path[path.index(step):] + [step]
            if step not in done:
                path.append(step)
                on_path.add(step)
                stack.append(iter(sorted(graph[step])))
    return None


def test_the_grader_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "an import cycle: " + " -> ".join(cycle or [])


# Data flows one way: submissions in, grading, then outputs and the scale-out around it.
UPSTREAM = ("grader.kernel", "grader.sandbox", "grader.students", "grader.authoring",
            "grader.grading", "grader.exercises")
DOWNSTREAM = ("grader.outputs", "grader.scale")


def test_nothing_upstream_imports_the_outputs_or_the_scale_out():
    backwards = {module: sorted(m for m in imported if m.startswith(DOWNSTREAM))
                 for module, imported in import_graph().items() if module.startswith(UPSTREAM)}
    assert not {m: bad for m, bad in backwards.items() if bad}


def test_a_cycle_through_a_function_local_import_is_found():
    tree = ast.parse("def run():\n    from grader.scale.distributed import grade_on_cluster\n")
    batch, cluster = "grader.scale.batch", "grader.scale.distributed"
    graph = {batch: {m for m in imports_in(tree, batch, False) if m.startswith("grader.")},
             cluster: {batch}}
    assert find_cycle(graph) == [batch, cluster, batch]


def test_relative_imports_resolve_against_the_importing_module():
    tree = ast.parse("from . import data\nfrom ..results import Result\n")
    assert imports_in(tree, "grader.kernel.probing", False) == {
        "grader.kernel", "grader.kernel.data", "grader.results", "grader.results.Result"}


def test_an_import_only_the_type_checker_reads_is_no_edge():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from grader.scale.batch import Unit\n")
    assert "grader.scale.batch" not in imports_in(tree, "grader.outputs.class_files", False)


def test_no_student_id_takes_the_name_of_a_class_output():
    names = {name for output in OUTPUTS for name in output.names}
    assert names <= RESERVED, f"add {sorted(names - RESERVED)} to grader.students.identity.RESERVED"
    assert not any(is_clean(name) for name in names)
