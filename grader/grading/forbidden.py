"""From scratch means from scratch: the library calls an exercise forbids, found in the
submitted function's source and in what the probes saw it reach.

The verdict is the grader's, read from the notebook's text (parsed once, grader/grading/source.py):
the student's function and the notebook's functions it calls, with the aliases the
notebook's imports and plain assignments make (`import torch.nn.functional as F`,
`from torch import softmax`, `sm = torch.softmax`, `getattr(torch, "softmax")`,
`importlib.import_module("torch.special")`). Every route into torch's kernels counts: a
torch path that names a forbidden op anywhere in it (`torch.ops.aten._softmax`,
`torch._C._nn.log_softmax`, `torch._VF`, `torch.special`, `torch.nn.modules…Softmax`), a
method of that name on any value (`X.softmax(1)`), and any lookup by a name built at run
time (`getattr(X, "soft" + "max")`, `eval`, `__dict__`), which the reading cannot follow.
The probes also record the torch functions a call reached (a TorchFunctionMode in the
kernel, grader/kernel/probing.py); a student's own code can switch that record off, so it
can only cost marks, never grant them. A cell too long or too deep to read could hide any
call: it costs every from-scratch function. PrairieLearn's `not_allowed` is the anchor; it is
decided inside the student's process, where it can be bypassed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from grader.grading.source import CodeCell, ParsedNotebook
from grader.kernel.probing import TORCH_CALLS, function_of

TENSOR = "torch.Tensor."  # forbidden methods: `X.softmax(1)` on any value but a module
# Lookups by a name the source does not spell: any use in a function whose rule forbids
# torch calls is a route the reading cannot follow.
RUN_TIME_CODE = frozenset({"eval", "exec", "compile", "vars", "globals", "locals"})
REFLECTION = frozenset({"__dict__", "__getattribute__", "__getattr__", "__builtins__"})
# Calls that look a name up: the argument positions holding the names.
NAME_LOOKUPS = {"getattr": (1,), "__import__": (0,), "importlib.import_module": (0,),
                "operator.attrgetter": None, "operator.methodcaller": (0,),
                "inspect.getattr_static": (1,)}


def normal(name: str) -> str:
    """`_log_softmax`, `LogSoftmax` and `log_softmax` alike: the op a name stands for."""
    return name.replace("_", "").lower()


@dataclass(frozen=True)
class Forbidden:
    """The calls that would do an exercise's work for it, and what to write instead."""

    calls: tuple[str, ...]  # qualified names: "torch.softmax", "torch.Tensor.softmax"
    instead: str

    @cached_property
    def torch_ops(self) -> frozenset[str]:
        """The ops its torch calls name (`softmax`, `logsoftmax`), whatever the route."""
        return frozenset(normal(call.rsplit(".", 1)[-1]) for call in self.calls
                         if call.startswith("torch."))

    def names(self, qualified: str) -> bool:
        """Whether the qualified name is one of its calls, or a torch path naming one of
        its ops anywhere in it (`torch.ops.aten._softmax.default`)."""
        if qualified in self.calls:
            return True
        parts = qualified.split(".")
        return parts[0] == "torch" and any(op in normal(part) for part in parts[1:]
                                           for op in self.torch_ops)


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The qualified name an expression such as `F.softmax` stands for, or None (walked
    without recursion: a cell may chain thousands of attributes)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute) or is_constant_getattr(node):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        else:
            parts.append(node.args[1].value)
            node = node.args[0]
    base = aliases.get(node.id) if isinstance(node, ast.Name) else imported(node, aliases)
    return ".".join([base, *reversed(parts)]) if base else None


def imported(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The module `__import__("torch.nn")` (torch) or `importlib.import_module("torch.nn")`
    (torch.nn) returns, or None."""
    if not isinstance(node, ast.Call) or not node.args or not is_text(node.args[0]):
        return None
    name, callee = node.args[0].value, called(node, aliases)
    if callee == "importlib.import_module" and not name.startswith("."):
        return name
    if callee == "__import__":
        fromlist = [k.value for k in node.keywords if k.arg == "fromlist"] + node.args[3:4]
        return name if any(not is_empty(value) for value in fromlist) else name.split(".")[0]
    return None


def called(node: ast.Call, aliases: dict[str, str]) -> str | None:
    """The function a call names: a qualified name, or a builtin's own (`getattr`)."""
    func = node.func
    if isinstance(func, ast.Name) and func.id not in aliases:
        return func.id
    name = dotted(func, aliases) if isinstance(func, ast.Attribute | ast.Name) else None
    return name.removeprefix("builtins.") if name else None


def is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def is_empty(node: ast.AST) -> bool:
    return isinstance(node, ast.List | ast.Tuple) and not node.elts or \
        isinstance(node, ast.Constant) and not node.value


def is_constant_getattr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "getattr" and len(node.args) >= 2 and is_text(node.args[1]))


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


@dataclass(frozen=True)
class Reading:
    """What every rule reads of the notebook's source, gathered once."""

    functions: dict[str, ast.AST]
    aliases: dict[str, str]
    stars: list[str]

    @classmethod
    def of(cls, trees: list[ast.Module]) -> Reading:
        return cls(top_level_functions(trees), import_aliases(trees), star_modules(trees))


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


def calls_in_source(name: str, forbidden: Forbidden,
                    reading: Reading) -> tuple[list[str], list[str]]:
    """The forbidden calls `name` makes as its source shows them, and its lookups by a name
    built at run time (which could reach any), each in order of appearance."""
    if name not in reading.functions:
        return [], []
    calls: list[str] = []
    lookups: list[str] = []
    for node in reached_nodes(name, reading.functions):
        qualified = dotted(node, reading.aliases)
        if qualified is None and isinstance(node, ast.Name):
            qualified = next((f"{module}.{node.id}" for module in reading.stars
                              if forbidden.names(f"{module}.{node.id}")), None)
        if qualified is not None:
            calls += [qualified] if forbidden.names(qualified) else []
        else:
            calls += [TENSOR + method for method in method_names(node, reading.aliases)
                      if normal(method) in forbidden.torch_ops]
        lookup = run_time_lookup(node, reading.aliases) if forbidden.torch_ops else None
        lookups += [lookup] if lookup else []
    calls = list(dict.fromkeys(calls))  # `torch.ops.aten._softmax` within `….default`: once
    return ([call for call in calls if not any(other.startswith(f"{call}.") for other in calls)],
            list(dict.fromkeys(lookups)))


def method_names(node: ast.AST, aliases: dict[str, str]) -> list[str]:
    """`softmax` in `X.softmax(1)`, `getattr(X, "softmax")` or
    `operator.methodcaller("softmax")`."""
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if is_constant_getattr(node):
        return [node.args[1].value]
    if isinstance(node, ast.Call) and called(node, aliases) in ("operator.attrgetter",
                                                                "operator.methodcaller"):
        return [part for arg in node.args if is_text(arg) for part in arg.value.split(".")]
    return []


def run_time_lookup(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """How `node` looks a callable up by a name the source does not spell (`getattr` with
    a computed name, `eval`, `__dict__`), or None."""
    if isinstance(node, ast.Attribute) and node.attr in REFLECTION:
        return node.attr
    if not isinstance(node, ast.Call):
        return None
    callee = called(node, aliases)
    if callee in RUN_TIME_CODE:
        return callee
    if callee not in NAME_LOOKUPS:
        return None
    positions = NAME_LOOKUPS[callee]
    names = node.args if positions is None else \
        [node.args[i] for i in positions if i < len(node.args)]
    spelled = names and all(is_text(arg) for arg in names) and \
        not any(isinstance(arg, ast.Starred) for arg in node.args)
    return None if spelled else callee


def calls_at_run_time(name: str, forbidden: Forbidden, observations: dict) -> list[str]:
    """The forbidden torch functions the probes saw `name` reach, from the TORCH_CALLS field
    of its probes' values (what the kernel reports: evidence against it only)."""
    reached: list[str] = []
    for key, entry in observations.items():
        value = entry.get("value") if function_of(key) == name and entry.get("ok") else None
        if isinstance(value, dict) and isinstance(value.get(TORCH_CALLS), list):
            reached.extend(call for call in value[TORCH_CALLS] if isinstance(call, str))
    return [call for call in dict.fromkeys(reached) if forbidden.names(call)]


def ticks(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def message(name: str, forbidden: Forbidden, in_source: list[str], lookups: list[str],
            at_run_time: list[str]) -> str:
    if in_source:
        how = (f"{name} calls {ticks(in_source)}, which does this exercise's work for it: "
               "it is to be written from scratch.")
    elif lookups:
        how = (f"{name} looks up what it calls by a name built at run time "
               f"({ticks(lookups)}), which the grader cannot check: a from-scratch function "
               "names each call it makes.")
    else:
        return (f"{name} reached {ticks(at_run_time)} while the grader ran it (seen at run "
                "time, not in its source), which does this exercise's work for it: it is to "
                f"be written from scratch. {forbidden.instead}")
    also = [call for call in at_run_time if call not in in_source]
    seen = f" It reached {ticks(also)} while the grader ran it." if also else ""
    return f"{how}{seen} {forbidden.instead}"


def unreadable(cell: CodeCell) -> str:
    """What to tell a student whose notebook has a code cell the grader could not read."""
    return (f"cell {cell.index + 1} {cell.unreadable}, so the grader cannot check which "
            "library calls it makes: every from-scratch function loses its marks until that "
            "cell is shorter and plainly nested")


def forbidden_uses(rules: Iterable[dict[str, Forbidden]], parsed: ParsedNotebook,
                   observations: dict) -> dict[str, str]:
    """A message for each function that makes a forbidden call, by function name. A cell
    the grader could not read could hide any call: padding or nesting must not buy a pass."""
    unread = parsed.first_unreadable()
    if unread:
        return {name: unreadable(unread) for table in rules for name in table}
    reading = Reading.of(parsed.trees())
    verdicts = {}
    for table in rules:
        for name, forbidden in table.items():
            in_source, lookups = calls_in_source(name, forbidden, reading)
            at_run_time = calls_at_run_time(name, forbidden, observations)
            if in_source or lookups or at_run_time:
                verdicts[name] = message(name, forbidden, in_source, lookups, at_run_time)
    return verdicts
