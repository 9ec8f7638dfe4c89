"""One bounded reading of a submission's code cells, shared by every step that reads student
source (forbidden calls, the handout comparison, similarity).

Each code cell is parsed once (IPython's magics turned into Python first). The student
controls the text, so the reading is total: a cell too long, or nesting deeper than any
real code does, or one the parser itself gives up on (RecursionError, MemoryError), is kept
as *unreadable* with the reason, never raised; a cell that is not Python (a SyntaxError) has
no tree, as it defines nothing when it runs. Trees handed out nest at most MAX_DEPTH deep,
so a consumer that recurses (ast.dump, a NodeVisitor) stays far from the recursion limit;
the walks here are iterative all the same. The trees are shared: no step may change them.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from types import ModuleType

import nbformat

from grader.grading.notebook import MAX_PARSED_CHARS

TRANSFORMER = "grader.grading._ipython_inputtransformer2"  # IPython's module, loaded alone
# Real cells nest about 16 levels (the course's deepest); Python's own tokenizer stops at 200
# nested brackets, but chains (`a.b.b…`, `-‑‑x`, `a+b+…`) nest without bound.
MAX_DEPTH = 100


@dataclass(frozen=True)
class Scope:
    """A function, class or comprehension body (or the cell itself): the names it binds
    and those it reads."""

    kind: str  # "module", "function", "class", "comprehension"
    parent: Scope | None
    bound: set[str] = field(default_factory=set)
    loads: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)

    def reads_global(self, name: str) -> bool:
        """Whether `name`, read here, is a global of the notebook's."""
        if self.kind == "module" or name in self.declared_global:
            return True
        if name in self.bound or name in self.declared_nonlocal:
            return False
        scope = self.parent
        while scope is not None and scope.kind != "module":
            if scope.kind != "class" and name in scope.bound \
                    and name not in scope.declared_global:
                return False
            scope = scope.parent
        return True


@dataclass(frozen=True)
class CodeCell:
    """One code cell as read: its tree (None if it is not Python or is unreadable) and,
    for an unreadable one, why."""

    index: int  # in notebook.cells
    source: str
    tree: ast.Module | None
    unreadable: str | None = None
    nodes: int = 0  # syntax nodes in the tree

    @cached_property
    def names(self) -> tuple[frozenset[str] | None, frozenset[str]]:
        """The global names the cell reads from other cells (None: it may read any) and
        those it binds. A cell that is not Python reads and binds nothing: it raises
        SyntaxError before a line runs."""
        if self.unreadable:
            return None, frozenset()
        if self.tree is None:
            return frozenset(), frozenset()
        return cell_names(self.tree)


@dataclass(frozen=True)
class ParsedNotebook:
    """A submission's code cells, each parsed once."""

    cells: tuple[CodeCell, ...]

    def trees(self) -> list[ast.Module]:
        """The trees of the cells that parse, in order."""
        return [cell.tree for cell in self.cells if cell.tree is not None]

    def first_unreadable(self) -> CodeCell | None:
        return next((cell for cell in self.cells if cell.unreadable), None)


def parse_notebook(notebook: nbformat.NotebookNode) -> ParsedNotebook:
    """Every code cell of `notebook`, parsed once (read_notebook has bounded their number
    and their length)."""
    return ParsedNotebook(tuple(parse_cell(index, cell.source)
                                for index, cell in enumerate(notebook.cells)
                                if cell.get("cell_type") == "code"))


def parse_cell(index: int, source: str) -> CodeCell:
    """One cell, read within bounds; never raises."""
    if len(source) > MAX_PARSED_CHARS:
        return CodeCell(index, source, None, f"is {len(source):,} characters long (the "
                        f"grader reads cells of up to {MAX_PARSED_CHARS:,})")
    try:
        tree = ast.parse(ipython_cells().TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):  # not Python (or a NUL byte): it defines nothing
        return CodeCell(index, source, None)
    except (RecursionError, MemoryError):
        return CodeCell(index, source, None, "nests too deeply for the grader to read")
    except Exception as error:  # noqa: BLE001 - IPython's transformers on hostile text
        return CodeCell(index, source, None, f"could not be read ({type(error).__name__})")
    depth, nodes = shape(tree)
    if depth > MAX_DEPTH:
        return CodeCell(index, source, None, f"nests deeper than the {MAX_DEPTH} levels the "
                        "grader reads")
    return CodeCell(index, source, tree, nodes=nodes)


@cache
def ipython_cells() -> ModuleType:
    """IPython's cell transformer (magics and shell escapes into the Python the kernel runs),
    loaded from its file alone: it imports only the standard library, where importing the
    IPython package first (its terminal, its debugger, jedi) costs 0.3 s of every grading
    process's start, on the path to the first kernel."""
    package = importlib.util.find_spec("IPython")  # found, not imported
    path = Path(package.origin).parent / "core" / "inputtransformer2.py"
    spec = importlib.util.spec_from_file_location(TRANSFORMER, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[TRANSFORMER] = module
    spec.loader.exec_module(module)
    return module


def shape(tree: ast.AST) -> tuple[int, int]:
    """How deep the tree nests and how many nodes it has, walked without recursion."""
    deepest, nodes, todo = 0, 0, [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        deepest, nodes = max(deepest, depth), nodes + 1
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest, nodes


FUNCTIONS = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
COMPREHENSIONS = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


def cell_names(tree: ast.Module) -> tuple[frozenset[str], frozenset[str]]:
    """The global names a cell reads and those it binds, as Python's scoping rules resolve
    them (symtable's answer, without parsing the cell a second time). A name the cell binds
    itself counts as its own: `x = x + 1` on an unbound `x` shows as a NameError instead."""
    module = Scope("module", None)
    scopes = [module]
    for node, scope in scoped_nodes(tree, module, scopes):
        if isinstance(node, ast.Name):
            (scope.loads if isinstance(node.ctx, ast.Load) else scope.bound).add(node.id)
        elif isinstance(node, ast.arg):
            scope.bound.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            scope.bound.update(alias.asname or alias.name.split(".")[0]
                               for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Global):
            scope.declared_global.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            scope.declared_nonlocal.update(node.names)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            scope.bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            scope.bound.add(node.rest)
    bound = set(module.bound)
    for scope in scopes:
        bound |= scope.bound & scope.declared_global
    read = {name for scope in scopes for name in scope.loads if scope.reads_global(name)}
    return frozenset(read - bound), frozenset(bound)


def scoped_nodes(tree: ast.AST, module: Scope,
                 scopes: list[Scope]) -> Iterator[tuple[ast.AST, Scope]]:
    """Every node with the scope it is evaluated in (new scopes appended to `scopes`): a
    function's defaults and decorators in the enclosing scope, its body in its own; a
    comprehension's first iterable outside it, the rest inside."""
    todo: list[tuple[ast.AST, Scope]] = [(tree, module)]
    while todo:
        node, scope = todo.pop()
        yield node, scope
        if isinstance(node, FUNCTIONS | ast.ClassDef):
            if not isinstance(node, ast.Lambda):
                scope.bound.add(node.name)
            inner = Scope("class" if isinstance(node, ast.ClassDef) else "function", scope)
            scopes.append(inner)
            outside, inside = split_definition(node)
            todo += [(child, scope) for child in outside]
            todo += [(child, inner) for child in inside]
        elif isinstance(node, COMPREHENSIONS):
            inner = Scope("comprehension", scope)
            scopes.append(inner)
            first = node.generators[0]
            todo.append((first.iter, scope))
            todo += [(child, inner) for child in ast.iter_child_nodes(node)
                     if child is not first]
            todo += [(child, inner) for child in ast.iter_child_nodes(first)
                     if child is not first.iter]
        elif isinstance(node, ast.NamedExpr):  # binds outside any comprehension it is in
            target = scope
            while target.kind == "comprehension" and target.parent is not None:
                target = target.parent
            target.bound.add(node.target.id)
            todo.append((node.value, scope))
        elif not isinstance(node, ast.arg):  # an argument's annotation is read outside
            todo += [(child, scope) for child in ast.iter_child_nodes(node)]


def split_definition(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """A def's, lambda's or class's parts evaluated where it is defined, and its body."""
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords], list(node.body)
    arguments = node.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
             *filter(None, [arguments.vararg, arguments.kwarg])]
    outside = [*arguments.defaults, *filter(None, arguments.kw_defaults),
               *filter(None, (arg.annotation for arg in every))]
    if isinstance(node, ast.Lambda):
        return outside, [*every, node.body]
    return [*node.decorator_list, *outside, *filter(None, [node.returns])], [*every, *node.body]
