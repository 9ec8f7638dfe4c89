"""Mutants of a reference solution: each one small plausible bug, the kind a student makes,
made by rewriting ONE node of the syntax tree of one function (stdlib `ast` only).

Only the lines strictly between a `### BEGIN SOLUTION` and a `### END SOLUTION` comment of
the function are mutated (its whole body when it has no markers); docstrings, strings, the
`def` line and imports never are. The statement holding the changed node is rewritten with
`ast.unparse` and spliced into the cell in place of its own lines, so the rest of the cell
(the docstring, the signature, the markers, other code) stays byte-identical. A mutant that
does not compile, or whose code is the same as the original's, is not made; two operators
making the same code make one mutant (the first, in the fixed order).

The operators, by name (the `operator` of a Mutation), each with an example:

- `arith`: `+`<->`-`, `*`<->`/`, `//`->`/`, `**`->`*`, also in augmented assignments:
  `(y_hat - y) ** 2 / 2` -> `(y_hat + y) ** 2 / 2`; `param -= ...` -> `param += ...`.
- `compare`: `<`<->`<=`, `>`<->`>=`, `==`<->`!=`, `<`<->`>`, `is`<->`is not`:
  `predictions == y` -> `predictions != y`.
- `sign`: a unary minus dropped, or a returned value negated: `-torch.log(p)` ->
  `torch.log(p)`; `return e` -> `return -e`.
- `off_by_one`: a bound of `range(...)` or of a slice +-1, and `len(x)` -> `len(x) - 1`
  inside one: `indices[i : i + b]` -> `indices[i : i + b - 1]` and `indices[i + 1 : i + b]`.
- `dim`: `dim=`/`axis=` 0<->1 and -1->0, the positional dim of .sum, .mean, .max, ...
  0<->1, `keepdim=True`<->`False`: `X.sum(dim=1, keepdim=True)` -> `X.sum(dim=0, ...)`.
- `reduction`: `.sum`<->`.mean`, as a method or as `torch.sum`/`torch.mean`.
- `extreme`: `max`<->`min`, `argmax`<->`argmin`, `amax`<->`amin` (method, `torch.*`,
  builtin): `X.max(dim=1)` -> `X.min(dim=1)`.
- `log`: `log` -> `log2` and -> `log10`, `exp` -> `exp2`: `torch.log(p)` -> `torch.log2(p)`.
- `drop`: an expression statement removed (`param.grad.zero_()`, `random.shuffle(indices)`;
  `pass` where the body would be empty), a `with` replaced by its body (`with
  torch.no_grad():` dropped), a returned value dropped (`return e` -> `return`). A `yield`
  is kept.
- `swap_args`: the first two positional arguments of a call swapped: `loss(net(X), y)` ->
  `loss(y, net(X))`.
- `inplace`: an in-place update replaced by a rebinding: `x -= e` -> `x = x - e` (and `+=`,
  `*=`, `/=`); `t.add_(e)` -> `t = t.add(e)` (and `sub_`, `mul_`, `div_`) where t is a name.
- `constant`: an int c (not a range or slice bound, not a dim) -> c + 1 and c - 1 (c != 0);
  a float c -> c * 2 and 0.0; `True`<->`False` (not keepdim, which `dim` flips):
  `normal_(0, 0.01)` -> `normal_(0, 0.02)`.
"""

from __future__ import annotations

import ast
import copy
import io
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

Replacement = ast.AST | list[ast.stmt]  # a node for a node; statements for a statement
Change = tuple[Replacement, str]  # the replacement and what changed, in words

BEGIN = re.compile(r"^\s*###\s*BEGIN SOLUTION")
END = re.compile(r"^\s*###\s*END SOLUTION")
TORCH_MODULES = {"torch", "F", "np", "numpy"}  # dims come second in torch.sum(x, 1)
DIM_METHODS = {"sum", "mean", "max", "min", "argmax", "argmin", "softmax", "log_softmax",
               "cumsum", "amax"}
INPLACE_METHODS = {"add_", "sub_", "mul_", "div_"}


@dataclass(frozen=True)
class Mutation:
    """One mutant: `source` is the whole cell with `function` mutated at `line`."""

    function: str
    operator: str
    line: int  # 1-based line in the cell of the node changed
    description: str
    source: str
    index: int = 1  # the k-th mutant this operator makes on this line

    @property
    def name(self) -> str:
        """Stable and unique in a cell: e.g. "sgd.drop.L21", "data_iter.off_by_one.L22.2"."""
        suffix = f".{self.index}" if self.index > 1 else ""
        return f"{self.function}.{self.operator}.L{self.line}{suffix}"


# --- What each node is, for the operators --------------------------------------------------

@dataclass
class Scope:
    """Facts about the nodes of one function the operators need: parents, and which nodes
    belong to `off_by_one` (range and slice bounds) or to `dim` (dims and keepdims)."""

    parents: dict[int, ast.AST]
    bounds: set[int]  # ids of range(...) arguments and slice bounds
    inside_bounds: set[int]  # ids of every node within one
    dims: dict[int, str]  # id of a dim value or keepdim flag: how it is written
    inside_dims: set[int]  # ids of every node within one

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(id(node))

    def siblings(self, statement: ast.stmt) -> list[ast.stmt]:
        """The statement list holding `statement`."""
        parent = self.parent(statement)
        for _, value in ast.iter_fields(parent):
            if isinstance(value, list) and any(item is statement for item in value):
                return value
        raise AssertionError("a statement outside any body")


def scope_of(function: ast.AST) -> Scope:
    parents = {id(child): node for node in ast.walk(function)
               for child in ast.iter_child_nodes(node)}
    scope = Scope(parents, set(), set(), {}, set())
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "range":
            mark(scope.bounds, scope.inside_bounds, node.args)
        elif isinstance(node, ast.Slice):
            mark(scope.bounds, scope.inside_bounds, [node.lower, node.upper])
        elif isinstance(node, ast.Call):
            for value, how in dims_of(node):
                scope.dims[id(value)] = how
                mark(set(), scope.inside_dims, [value])
    return scope


def mark(roots: set[int], every: set[int], nodes: Iterable[ast.AST | None]) -> None:
    for node in nodes:
        if node is not None:
            roots.add(id(node))
            every.update(id(part) for part in ast.walk(node))


def int_value(node: ast.AST) -> int | None:
    """The int a node spells (`3`, `-1`), or None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = int_value(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def number(value: int | float) -> ast.expr:
    """A number as code: a negative one as a minus applied to its magnitude."""
    return ast.UnaryOp(ast.USub(), ast.Constant(-value)) if value < 0 else ast.Constant(value)


def dims_of(call: ast.Call) -> Iterator[tuple[ast.AST, str]]:
    """The dim arguments of a call and how each is shown: `dim=`, `keepdim=` or a position."""
    for keyword in call.keywords:
        if keyword.arg in ("dim", "axis") and int_value(keyword.value) in (0, 1, -1):
            yield keyword.value, f"{keyword.arg}="
        elif keyword.arg == "keepdim" and isinstance(keyword.value, ast.Constant) \
                and isinstance(keyword.value.value, bool):
            yield keyword.value, "keepdim="
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in DIM_METHODS:
        position = 1 if isinstance(func.value, ast.Name) and func.value.id in TORCH_MODULES \
            else 0
        if len(call.args) > position and int_value(call.args[position]) in (0, 1, -1):
            yield call.args[position], f".{func.attr}(dim)"


# --- The operators ---------------------------------------------------------------------------

ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
         ast.FloorDiv: ast.Div, ast.Pow: ast.Mult}
COMPARE = {ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt,), ast.Gt: (ast.GtE, ast.Lt),
           ast.GtE: (ast.Gt,), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
           ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,)}
SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Pow: "**", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not"}
REDUCTION = {"sum": ("mean",), "mean": ("sum",)}
EXTREME = {"max": ("min",), "min": ("max",), "argmax": ("argmin",), "argmin": ("argmax",),
           "amax": ("amin",), "amin": ("amax",)}
LOG = {"log": ("log2", "log10"), "exp": ("exp2",)}
NOT_NEGATED = (ast.Tuple, ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp,
               ast.SetComp, ast.GeneratorExp, ast.Lambda, ast.Constant, ast.JoinedStr)


def shown(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant)
                                               and isinstance(node.value, str | bytes))


def arith(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if isinstance(node, ast.BinOp) and type(node.op) in ARITH \
            and not (is_text(node.left) or is_text(node.right)):
        new = ARITH[type(node.op)]
        yield (ast.BinOp(node.left, new(), node.right),
               f"`{SYMBOLS[type(node.op)]}` replaced by `{SYMBOLS[new]}`")
    elif isinstance(node, ast.AugAssign) and type(node.op) in ARITH:
        new = ARITH[type(node.op)]
        yield ([ast.AugAssign(node.target, new(), node.value)],
               f"`{SYMBOLS[type(node.op)]}=` replaced by `{SYMBOLS[new]}=`")


def compare(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if not isinstance(node, ast.Compare):
        return
    for position, op in enumerate(node.ops):
        for new in COMPARE.get(type(op), ()):
            ops = [*node.ops[:position], new(), *node.ops[position + 1:]]
            yield (ast.Compare(node.left, ops, node.comparators),
                   f"`{SYMBOLS[type(op)]}` replaced by `{SYMBOLS[new]}`")


def sign(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield node.operand, f"the minus of `{shown(node)}` dropped"
    elif isinstance(node, ast.Return) and node.value is not None \
            and not isinstance(node.value, NOT_NEGATED) \
            and not (isinstance(node.value, ast.UnaryOp) and isinstance(node.value.op, ast.USub)):
        yield [ast.Return(ast.UnaryOp(ast.USub(), node.value))], "the returned value negated"


def off_by_one(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if id(node) in scope.bounds:
        value = int_value(node)
        if value is not None:
            for new in (value - 1, value + 1) if value else (1,):
                yield number(new), f"the bound `{value}` replaced by `{new}`"
            return
        for op, symbol in ((ast.Sub, "-"), (ast.Add, "+")):
            yield (ast.BinOp(node, op(), ast.Constant(1)),
                   f"the bound `{shown(node)}` replaced by `{shown(node)} {symbol} 1`")
    elif id(node) in scope.inside_bounds and isinstance(node, ast.Call) \
            and isinstance(node.func, ast.Name) and node.func.id == "len":
        yield (ast.BinOp(node, ast.Sub(), ast.Constant(1)),
               f"`{shown(node)}` replaced by `{shown(node)} - 1`")


def dim(node: ast.AST, scope: Scope) -> Iterator[Change]:
    how = scope.dims.get(id(node))
    if how == "keepdim=":
        yield ast.Constant(not node.value), \
            f"`keepdim={node.value}` replaced by `keepdim={not node.value}`"
    elif how is not None:
        old = int_value(node)
        new = 1 if old == 0 else 0
        yield ast.Constant(new), f"`{how}` {old} replaced by {new}"


def renamed(table: dict[str, tuple[str, ...]], builtin: bool) -> Callable[..., Iterator[Change]]:
    """An operator renaming the function a call calls (a method, `torch.*`, or a builtin)."""
    def operator(node: ast.AST, scope: Scope) -> Iterator[Change]:
        parent = scope.parent(node)
        if not (isinstance(parent, ast.Call) and parent.func is node):
            return
        if isinstance(node, ast.Attribute):
            for new in table.get(node.attr, ()):
                yield ast.Attribute(node.value, new, ast.Load()), \
                    f"`.{node.attr}` replaced by `.{new}`"
        elif builtin and isinstance(node, ast.Name):
            for new in table.get(node.id, ()):
                yield ast.Name(new, ast.Load()), f"`{node.id}` replaced by `{new}`"
    return operator


def drop(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if isinstance(node, ast.Expr) and not isinstance(
            node.value, ast.Constant | ast.Yield | ast.YieldFrom):
        rest = [] if len(scope.siblings(node)) > 1 else [ast.Pass()]
        yield rest, f"the statement `{shown(node.value)}` dropped"
    elif isinstance(node, ast.With | ast.AsyncWith):
        items = ", ".join(ast.unparse(item) for item in node.items)
        yield node.body, f"`with {items}:` dropped, its body kept"
    elif isinstance(node, ast.Return) and node.value is not None \
            and not (isinstance(node.value, ast.Constant) and node.value.value is None):
        yield [ast.Return(None)], f"the returned value `{shown(node.value)}` dropped"


def swap_args(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if isinstance(node, ast.Call) and len(node.args) >= 2 \
            and not any(isinstance(arg, ast.Starred) for arg in node.args[:2]):
        first, second, *rest = node.args
        yield (ast.Call(node.func, [second, first, *rest], node.keywords),
               f"`{shown(first)}` and `{shown(second)}` swapped in `{shown(node.func)}(...)`")


def inplace(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if isinstance(node, ast.AugAssign) and type(node.op) in ARITH \
            and not isinstance(node.op, ast.FloorDiv | ast.Pow) \
            and isinstance(node.target, ast.Name):
        name, symbol = node.target.id, SYMBOLS[type(node.op)]
        value = ast.BinOp(ast.Name(name, ast.Load()), node.op, node.value)
        yield ([ast.Assign([ast.Name(name, ast.Store())], value)],
               f"`{symbol}=` replaced by a rebinding `= ... {symbol}`")
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        if isinstance(call.func, ast.Attribute) and call.func.attr in INPLACE_METHODS \
                and isinstance(call.func.value, ast.Name):
            name, method = call.func.value.id, call.func.attr
            rebound = ast.Call(ast.Attribute(ast.Name(name, ast.Load()), method[:-1],
                                             ast.Load()), call.args, call.keywords)
            yield ([ast.Assign([ast.Name(name, ast.Store())], rebound)],
                   f"`{name}.{method}(...)` replaced by a rebinding "
                   f"`{name} = {name}.{method[:-1]}(...)`")


def constant(node: ast.AST, scope: Scope) -> Iterator[Change]:
    if id(node) in scope.inside_bounds or id(node) in scope.inside_dims:
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, int | float) \
            and not isinstance(node.operand.value, bool):
        value = -node.operand.value  # `-1` is one number, not a minus and a 1
    elif isinstance(node, ast.Constant) and not is_negated(node, scope):
        value = node.value
    else:
        return
    if isinstance(value, bool):
        news = [not value]
    elif isinstance(value, int):
        news = [value + 1, value - 1] if value else [1]
    elif isinstance(value, float):
        news = [value * 2, 0.0] if value else []
    else:
        return
    for new in news:
        yield number(new), f"the constant `{value!r}` replaced by `{new!r}`"


def is_negated(node: ast.AST, scope: Scope) -> bool:
    parent = scope.parent(node)
    return isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)


OPERATORS: dict[str, Callable[[ast.AST, Scope], Iterator[Change]]] = {
    "arith": arith, "compare": compare, "sign": sign, "off_by_one": off_by_one, "dim": dim,
    "reduction": renamed(REDUCTION, builtin=False), "extreme": renamed(EXTREME, builtin=True),
    "log": renamed(LOG, builtin=False), "drop": drop, "swap_args": swap_args,
    "inplace": inplace, "constant": constant,
}


# --- Where to mutate -------------------------------------------------------------------------

def lines_of(source: str) -> list[str]:
    """The cell's lines, ends kept, split where `ast` counts lines (not at form feeds)."""
    return io.StringIO(source, newline="").readlines()


def regions(function: ast.AST, lines: list[str], stop: int) -> list[range]:
    """The line ranges of the function's solution blocks: strictly between its markers (up
    to line `stop`, where the next top-level statement starts), or its whole body (docstring
    left out) when it has none."""
    found, begin = [], None
    for number in range(function.lineno, stop + 1):
        if BEGIN.match(lines[number - 1]):
            begin = number
        elif END.match(lines[number - 1]) and begin is not None:
            found.append(range(begin + 1, number))
            begin = None
    if found:
        return found
    body = function.body[1:] if docstring_of(function) else function.body
    return [range(body[0].lineno, function.end_lineno + 1)] if body else []


def docstring_of(node: ast.AST) -> ast.Expr | None:
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
            and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        return body[0]
    return None


def candidates(function: ast.AST, allowed: list[range]) -> Iterator[ast.AST]:
    """The nodes of the function that may be mutated: in a solution block, not in a `def`
    line (arguments, decorators, annotations), a docstring or an import."""
    skipped: set[int] = set()
    for node in ast.walk(function):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            header = [*node.decorator_list, *getattr(node, "bases", []),
                      *getattr(node, "keywords", []), getattr(node, "args", None),
                      getattr(node, "returns", None), docstring_of(node)]
            skipped.update(id(part) for item in header if item is not None
                           for part in ast.walk(item))
        elif isinstance(node, ast.Import | ast.ImportFrom | ast.AnnAssign | ast.JoinedStr):
            skipped.update(id(part) for part in ast.walk(node) if part is not node)
            continue
        if node is not function and hasattr(node, "lineno") and any(
                node.lineno in block and node.end_lineno in block for block in allowed):
            yield node


# --- Splicing a change into the cell ---------------------------------------------------------

def rebuilt(container: ast.stmt, target: ast.AST, replacement: Replacement) -> list[ast.stmt]:
    """`container`'s statements with `target` replaced (the original left untouched)."""
    if container is target:
        return replacement if isinstance(replacement, list) else [replacement]
    if not isinstance(replacement, list):
        return [copy.deepcopy(container, {id(target): replacement})]
    marker = ast.Pass()
    copied = copy.deepcopy(container, {id(target): marker})
    for node in ast.walk(copied):
        for _, value in ast.iter_fields(node):
            if isinstance(value, list) and any(item is marker for item in value):
                position = next(i for i, item in enumerate(value) if item is marker)
                value[position:position + 1] = replacement
    return [copied]


HEADERS = {ast.For: ("target", "iter"), ast.AsyncFor: ("target", "iter"), ast.While: ("test",),
           ast.If: ("test",), ast.With: ("items",), ast.AsyncWith: ("items",)}
HEADER_END = re.compile(rb"^[\s)\]]*:\s*(#.*)?$")


def own_lines(node: ast.stmt, lines: list[str]) -> tuple[int, int] | None:
    """The 1-based first and last line of a statement, when no other code shares them (an
    `elif` is not an `if` of its own)."""
    first = start_of(node)
    before = lines[first - 1].encode()[:node.col_offset]
    after = lines[node.end_lineno - 1].encode()[node.end_col_offset:].strip()
    if before.strip() or not (after == b"" or after.startswith(b"#")):
        return None
    if isinstance(node, ast.If) and not lines[first - 1].lstrip().startswith("if"):
        return None
    return first, node.end_lineno


def header_lines(node: ast.stmt, target: ast.AST, lines: list[str]) -> tuple[int, int] | None:
    """The lines of a compound statement's header (`for x in y:`), when `target` is in it
    and no body statement shares them."""
    fields = HEADERS.get(type(node))
    if fields is None or own_lines(node, lines) is None:
        return None
    parts = [part for name in fields for part in
             (getattr(node, name) if name == "items" else [getattr(node, name)])]
    nodes = [inner for part in parts for inner in ast.walk(part)]
    ends = [inner for inner in nodes if hasattr(inner, "end_lineno")]
    if not any(inner is target for inner in nodes) or not ends:
        return None
    last = max(ends, key=lambda inner: (inner.end_lineno, inner.end_col_offset))
    rest = lines[last.end_lineno - 1].encode()[last.end_col_offset:]
    if node.body[0].lineno <= last.end_lineno or not HEADER_END.match(rest):
        return None
    return node.lineno, last.end_lineno


def header_of(node: ast.stmt, target: ast.AST, replacement: ast.AST) -> list[str]:
    """The header of a compound statement with `target` replaced, unparsed."""
    copied = copy.deepcopy(node, {id(target): replacement})
    copied.body = [ast.Pass()]
    if hasattr(copied, "orelse"):
        copied.orelse = []
    return ast.unparse(ast.fix_missing_locations(copied)).split("\n")[:-1]


def spliced(source: str, function: ast.AST, target: ast.AST, replacement: Replacement,
            scope: Scope) -> str:
    """The cell with `target` replaced: the header of the compound statement holding it, or
    the innermost statement holding it that has lines of its own, is unparsed in place of
    its lines."""
    lines = lines_of(source)
    container = target
    while not isinstance(container, ast.stmt):
        container = scope.parent(container)
    header = None if isinstance(replacement, list) else header_lines(container, target, lines)
    if header is not None:
        first, last = header
        text = header_of(container, target, replacement)
    else:
        while container is not function and own_lines(container, lines) is None:
            container = scope.parent(container)
        first, last = own_lines(container, lines) or (start_of(function), function.end_lineno)
        statements = rebuilt(container, target, replacement)
        text = ast.unparse(ast.fix_missing_locations(ast.Module(statements, [])))
        text = text.split("\n") if text else []
    indent = lines[first - 1][:len(lines[first - 1]) - len(lines[first - 1].lstrip())]
    new = [indent + line + "\n" for line in text]
    if last == len(lines) and not lines[-1].endswith("\n") and new:
        new[-1] = new[-1][:-1]
    return "".join(lines[:first - 1] + new + lines[last:])


def compiles(source: str) -> ast.Module | None:
    try:
        tree = ast.parse(source)
        compile(tree, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return None
    return tree


# --- The API ---------------------------------------------------------------------------------

def mutations(source: str, functions: Iterable[str] | None = None) -> list[Mutation]:
    """Every mutant of the functions (and classes) defined at the top level of `source`, a
    notebook cell (only those named, if given), ordered by function, line, column, operator
    and k. Deterministic: the same source gives the same list.

    Raises ValueError when the cell does not parse or a named function is not in it."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"The cell does not parse (line {error.lineno}: {error.msg}): fix "
                         "the reference solution before making mutants of it.") from None
    defined = [node for node in tree.body
               if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    wanted = None if functions is None else list(functions)
    missing = sorted(set(wanted or ()) - {node.name for node in defined})
    if missing:
        raise ValueError(f"The cell defines no {', '.join(missing)} at its top level (it "
                         f"defines {', '.join(node.name for node in defined) or 'nothing'}): "
                         "name only functions the cell defines.")
    original, lines = ast.dump(tree), lines_of(source)
    found: list[Mutation] = []
    for function in defined:
        if wanted is None or function.name in wanted:
            after = tree.body.index(function) + 1
            stop = start_of(tree.body[after]) - 1 if after < len(tree.body) else len(lines)
            blocks = regions(function, lines, stop)
            found.extend(mutants_of(source, function, blocks, original))
    return found


def start_of(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def mutants_of(source: str, function: ast.AST, blocks: list[range],
               original: str) -> list[Mutation]:
    """The mutants of one top-level function, numbered per operator and line."""
    scope = scope_of(function)
    order = list(OPERATORS)
    changes = []
    for node in candidates(function, blocks):
        for operator in order:
            for k, (replacement, description) in enumerate(OPERATORS[operator](node, scope)):
                key = (node.lineno, node.col_offset, order.index(operator), k)
                changes.append((key, operator, node, replacement, description))
    made, seen, per_line = [], {original}, {}
    for (line, *_), operator, target, replacement, description in sorted(
            changes, key=lambda change: change[0]):
        mutant = spliced(source, function, target, replacement, scope)
        tree = compiles(mutant)
        if tree is None or ast.dump(tree) in seen:
            continue
        seen.add(ast.dump(tree))
        index = per_line[(operator, line)] = per_line.get((operator, line), 0) + 1
        made.append(Mutation(function.name, operator, line, description, mutant, index))
    return made


def sample(found: list[Mutation], limit: int, seed: int) -> list[Mutation]:
    """At most `limit` mutants per function, drawn with random.Random(seed), kept in order."""
    if limit < 0:
        raise ValueError(f"The sample's limit is {limit}: give a number of mutants per "
                         "function of 0 or more.")
    rng = random.Random(seed)
    by_function: dict[str, list[int]] = {}
    for position, mutation in enumerate(found):
        by_function.setdefault(mutation.function, []).append(position)
    kept = {position for positions in by_function.values()
            for position in (positions if len(positions) <= limit
                             else rng.sample(positions, limit))}
    return [mutation for position, mutation in enumerate(found) if position in kept]
