"""From scratch means from scratch: the library calls an exercise forbids, found in the
submitted function's source and in what the probes saw it reach.

The verdict is the grader's, read from the notebook's text: the student's function and
the notebook's functions it calls, with the aliases the notebook's imports and plain
assignments make (`import torch.nn.functional as F`, `from torch import softmax`,
`sm = torch.softmax`, `getattr(torch, "softmax")`), and method calls such as
`X.softmax(1)`. A name built at run time (`getattr(torch, "soft" + "max")`, `eval`) cannot
be read there; the probes record the torch functions a call reached (a TorchFunctionMode
in the kernel, grader/kernel/probing.py), which a student can switch off, so that record
can only cost marks, never grant them. PrairieLearn's `not_allowed` is the anchor; it is
decided inside the student's process, where it can be bypassed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from grader.kernel.probing import TORCH_CALLS, function_of
from grader.notebook import MAX_PARSED_CHARS

TENSOR = "torch.Tensor."  # forbidden methods: `X.softmax(1)` on any value but a module


@dataclass(frozen=True)
class Forbidden:
    """The calls that would do an exercise's work for it, and what to write instead."""

    calls: tuple[str, ...]  # qualified names: "torch.softmax", "torch.Tensor.softmax"
    instead: str


def cell_trees(notebook: nbformat.NotebookNode) -> list[ast.Module]:
    """The code cells that parse, in order (IPython's magics turned into Python first)."""
    trees = []
    for cell in notebook.cells:
        if cell.get("cell_type") != "code" or len(cell.source) > MAX_PARSED_CHARS:
            continue
        try:
            trees.append(ast.parse(TransformerManager().transform_cell(cell.source)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return trees


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The qualified name an expression such as `F.softmax` stands for, or None."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    if is_constant_getattr(node):
        base = dotted(node.args[0], aliases)
        return f"{base}.{node.args[1].value}" if base else None
    return None


def is_constant_getattr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "getattr" and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))


def import_aliases(trees: list[ast.Module]) -> dict[str, str]:
    """Every name the notebook's imports and plain assignments bind to a module path, in
    any cell or function: over-approximated, since a name may be rebound later."""
    aliases: dict[str, str] = {}
    nodes = [node for tree in trees for node in ast.walk(tree)]
    for node in nodes:
        if isinstance(node, ast.Import):
            for name in node.names:
                top = name.name.split(".")[0]
                aliases[name.asname or top] = name.name if name.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for name in node.names:
                if name.name != "*":
                    aliases[name.asname or name.name] = f"{node.module}.{name.name}"
    for _ in range(3):  # `F = torch.nn.functional` then `sm = F.softmax`
        for node in nodes:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                target = dotted(node.value, aliases)
                if target:
                    aliases[node.targets[0].id] = target
    return aliases


def star_modules(trees: list[ast.Module]) -> list[str]:
    """Modules imported with `from M import *`: a bare name may be any of theirs."""
    return [node.module for tree in trees for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            and any(name.name == "*" for name in node.names)]


def top_level_functions(trees: list[ast.Module]) -> dict[str, ast.AST]:
    """Each name's last top-level binding to a function (a def, a lambda or another name):
    the one the grader calls once the notebook has run."""
    functions: dict[str, ast.AST] = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[node.name] = node
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        functions[target.id] = node.value
    return functions


def local_names(definition: ast.AST) -> set[str]:
    """The names a function binds itself (its parameters, its assignments): a local `loss`
    is not the notebook's `loss = nn.CrossEntropyLoss()`."""
    if not isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return set()
    arguments = definition.args
    names = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                             *filter(None, [arguments.vararg, arguments.kwarg])]}
    for node in ast.walk(definition):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node is not definition:
            names.add(node.name)
    return names


def reached_nodes(name: str, functions: dict[str, ast.AST]) -> Iterator[ast.AST]:
    """The nodes of `name`'s definition and of the notebook's functions it names (as globals),
    in turn."""
    seen, todo = {name}, [name]
    while todo:
        definition = functions[todo.pop()]
        own = local_names(definition)
        for node in ast.walk(definition):
            yield node
            if isinstance(node, ast.Name) and node.id in functions and node.id not in seen \
                    and node.id not in own:
                seen.add(node.id)
                todo.append(node.id)


def calls_in_source(name: str, forbidden: Forbidden, trees: list[ast.Module]) -> list[str]:
    """The forbidden calls `name` makes, as its source shows them, in order of appearance."""
    functions = top_level_functions(trees)
    if name not in functions:
        return []
    aliases = import_aliases(trees)
    stars = star_modules(trees)
    methods = {call.removeprefix(TENSOR) for call in forbidden.calls if call.startswith(TENSOR)}
    found: list[str] = []
    for node in reached_nodes(name, functions):
        qualified = dotted(node, aliases)
        if qualified is None and isinstance(node, ast.Name):
            qualified = next((f"{module}.{node.id}" for module in stars
                              if f"{module}.{node.id}" in forbidden.calls), None)
        if qualified in forbidden.calls:
            found.append(qualified)
        elif qualified is None and method_name(node) in methods:
            found.append(TENSOR + method_name(node))
    return list(dict.fromkeys(found))


def method_name(node: ast.AST) -> str | None:
    """`softmax` in `X.softmax(1)` or `getattr(X, "softmax")`."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if is_constant_getattr(node):
        return node.args[1].value
    return None


def calls_at_run_time(name: str, forbidden: Forbidden, observations: dict) -> list[str]:
    """The forbidden torch functions the probes saw `name` reach, from the TORCH_CALLS field
    of its probes' values (what the kernel reports: evidence against it only)."""
    reached: list[str] = []
    for key, entry in observations.items():
        value = entry.get("value") if function_of(key) == name and entry.get("ok") else None
        if isinstance(value, dict) and isinstance(value.get(TORCH_CALLS), list):
            reached.extend(call for call in value[TORCH_CALLS] if isinstance(call, str))
    return [call for call in dict.fromkeys(reached) if call in forbidden.calls]


def message(name: str, forbidden: Forbidden, in_source: list[str], at_run_time: list[str]) -> str:
    if in_source:
        how = f"{name} calls {', '.join(f'`{call}`' for call in in_source)}"
    else:
        how = (f"{name} reached {', '.join(f'`{call}`' for call in at_run_time)} while the "
               "grader ran it (seen at run time, not in its source)")
    return (f"{how}, which does this exercise's work for it: it is to be written from "
            f"scratch. {forbidden.instead}")


def forbidden_uses(rules: Iterable[dict[str, Forbidden]], notebook: nbformat.NotebookNode,
                   observations: dict) -> dict[str, str]:
    """A message for each function that makes a forbidden call, by function name."""
    trees = cell_trees(notebook)
    unread = too_long(notebook)
    verdicts = {}
    for table in rules:
        for name, forbidden in table.items():
            if unread:  # it could hide any call: padding must not buy a pass
                verdicts[name] = unread
                continue
            in_source = calls_in_source(name, forbidden, trees)
            at_run_time = calls_at_run_time(name, forbidden, observations)
            if in_source or at_run_time:
                verdicts[name] = message(name, forbidden, in_source, at_run_time)
    return verdicts


def too_long(notebook: nbformat.NotebookNode) -> str | None:
    """What to tell a student whose notebook has a code cell too long to read for calls."""
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") == "code" and len(cell.source) > MAX_PARSED_CHARS:
            return (f"cell {number} is {len(cell.source):,} characters long, too long for the "
                    f"grader to check which library calls it makes: keep each code cell under "
                    f"{MAX_PARSED_CHARS:,} characters")
    return None
