"""Mutants of the reference solutions (grader.audit.mutate): the bugs students make are among
them, each mutant compiles, differs from the reference, and changes only solution lines.
AST only: nothing here grades."""

from __future__ import annotations

import difflib
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from grader.audit.mutate import OPERATORS, Mutation, mutations, sample

REFERENCE = Path(__file__).resolve().parent.parent / "grader" / "course" / "reference"


def solution_cells(notebook: str) -> list[str]:
    cells = nbformat.read(REFERENCE / f"{notebook}.ipynb", as_version=4).cells
    return [cell.source for cell in cells if "solution" in cell.metadata.get("tags", [])]


ALL_CELLS = [source for path in sorted(REFERENCE.glob("*.ipynb"))
             for source in solution_cells(path.stem)]


def cell_defining(name: str) -> str:
    return next(source for source in ALL_CELLS
                if re.search(rf"^(def|class) {name}\b", source, re.M))


def changes(source: str, mutation: Mutation) -> list[str]:
    """The lines the mutant adds or removes, stripped."""
    diff = difflib.unified_diff(source.splitlines(), mutation.source.splitlines(), n=0,
                                lineterm="")
    return [line[1:].strip() for line in diff
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def find(name: str, operator: str, removed: str, added: str | None) -> Mutation:
    """The mutant of `name` by `operator` that replaces the line `removed` by `added`
    (None: the line is removed)."""
    source = cell_defining(name)
    for mutation in mutations(source, [name]):
        changed = changes(source, mutation)
        if mutation.operator == operator and changed == [removed] + ([added] if added else []):
            return mutation
    raise AssertionError(f"no {operator} mutant of {name} turns {removed!r} into {added!r}")


@pytest.mark.parametrize("name, operator, removed, added", [
    ("sgd", "drop", "param.grad.zero_()", None),
    ("sgd", "inplace", "param -= lr * param.grad / batch_size",
     "param = param - lr * param.grad / batch_size"),
    ("sgd", "arith", "param -= lr * param.grad / batch_size",
     "param -= lr * param.grad * batch_size"),
    ("data_iter", "drop", "random.shuffle(indices)", None),
    ("data_iter", "off_by_one", "batch_indices = torch.tensor(indices[i : i + batch_size])",
     "batch_indices = torch.tensor(indices[i:i + batch_size - 1])"),
    ("data_iter", "off_by_one", "batch_indices = torch.tensor(indices[i : i + batch_size])",
     "batch_indices = torch.tensor(indices[i + 1:i + batch_size])"),
    ("data_iter", "off_by_one", "for i in range(0, num_examples, batch_size):",
     "for i in range(0, num_examples - 1, batch_size):"),
    ("softmax", "dim", "return X_exp / X_exp.sum(dim=1, keepdim=True)",
     "return X_exp / X_exp.sum(dim=0, keepdim=True)"),
    ("softmax", "dim", "return X_exp / X_exp.sum(dim=1, keepdim=True)",
     "return X_exp / X_exp.sum(dim=1, keepdim=False)"),
    ("softmax", "extreme", "X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)",
     "X_exp = torch.exp(X - X.min(dim=1, keepdim=True).values)"),
    ("softmax", "reduction", "return X_exp / X_exp.sum(dim=1, keepdim=True)",
     "return X_exp / X_exp.mean(dim=1, keepdim=True)"),
    ("cross_entropy", "log", "return -torch.log(y_hat[range(len(y_hat)), y])",
     "return -torch.log2(y_hat[range(len(y_hat)), y])"),
    ("cross_entropy", "sign", "return -torch.log(y_hat[range(len(y_hat)), y])",
     "return torch.log(y_hat[range(len(y_hat)), y])"),
    ("cross_entropy", "off_by_one", "return -torch.log(y_hat[range(len(y_hat)), y])",
     "return -torch.log(y_hat[range(len(y_hat) - 1), y])"),
    ("accuracy", "compare", "return float((predictions == y.reshape(-1)).float().mean())",
     "return float((predictions != y.reshape(-1)).float().mean())"),
    ("accuracy", "extreme", "predictions = y_hat.argmax(dim=1)",
     "predictions = y_hat.argmin(dim=1)"),
    ("train_epoch", "swap_args", "loss(net(X), y).backward()", "loss(y, net(X)).backward()"),
    ("train_linreg_concise", "drop", "trainer.zero_grad()", None),
    ("train_linreg_concise", "constant", "net[0].weight.data.normal_(0, 0.01)",
     "net[0].weight.data.normal_(0, 0.02)"),
    ("evaluate_accuracy", "inplace", "correct += int((net(X).argmax(dim=1) == y).sum())",
     "correct = correct + int((net(X).argmax(dim=1) == y).sum())"),
    ("split_indices", "off_by_one", "return shuffled[n_val:], shuffled[:n_val]",
     "return (shuffled[n_val + 1:], shuffled[:n_val])"),
    ("training_loop", "compare", "if params.grad is not None:", "if params.grad is None:"),
    ("estimate_probabilities", "dim", "cum_counts = counts.cumsum(dim=0)",
     "cum_counts = counts.cumsum(dim=1)"),
    ("FlattenLayer", "constant", "return x.view(x.shape[0], -1)",
     "return x.view(x.shape[0], -2)"),
])
def test_the_bugs_students_make_are_among_the_mutants(name, operator, removed, added):
    mutation = find(name, operator, removed, added)
    assert mutation.function == name and mutation.description


def test_a_dropped_with_keeps_its_body_one_level_up():
    mutation = next(m for m in mutations(cell_defining("sgd"), ["sgd"])
                    if m.operator == "drop" and "no_grad" in m.description)
    assert "with torch.no_grad()" not in mutation.source
    assert "\n        param -= lr * param.grad / batch_size\n" in mutation.source


def test_dropping_the_only_statement_of_a_body_leaves_pass():
    mutation = find("training_loop", "drop", "params.grad.zero_()", "pass")
    assert mutation.name == "training_loop.drop.L19"


def test_a_return_value_dropped_and_negated():
    names = {m.description for m in mutations(cell_defining("squared_loss"))}
    assert "the returned value negated" in names
    assert any(d.startswith("the returned value `") and d.endswith("dropped") for d in names)


def solution_lines(source: str) -> set[int]:
    """The 0-based line numbers strictly inside a solution block."""
    inside, found = False, set()
    for number, line in enumerate(source.splitlines()):
        if "### END SOLUTION" in line:
            inside = False
        if inside:
            found.add(number)
        if "### BEGIN SOLUTION" in line:
            inside = True
    return found


@pytest.mark.parametrize("source", ALL_CELLS, ids=lambda s: re.search(r"\w+(?=\()", s)[0])
def test_every_mutant_compiles_differs_and_changes_only_solution_lines(source):
    found = mutations(source)
    assert found, "every reference function has mutants"
    allowed = solution_lines(source)
    original = source.splitlines()
    for mutation in found:
        compile(mutation.source, mutation.name, "exec")
        assert mutation.source != source
        assert mutation.operator in OPERATORS
        matcher = difflib.SequenceMatcher(None, original, mutation.source.splitlines(),
                                          autojunk=False)
        for tag, first, last, _, _ in matcher.get_opcodes():
            if tag != "equal":
                changed = set(range(first, last)) or {first}
                assert changed <= allowed, (mutation.name, tag, first, last)
        assert 0 <= mutation.line - 1 < len(original) and mutation.line - 1 in allowed


def test_names_are_unique_and_stable():
    for source in ALL_CELLS:
        first, second = mutations(source), mutations(source)
        assert first == second
        names = [mutation.name for mutation in first]
        assert len(names) == len(set(names))
        assert all(re.fullmatch(r"\w+\.\w+\.L\d+(\.\d+)?", name) for name in names)


def test_the_order_is_by_function_then_line():
    source = TWO_FUNCTIONS
    found = mutations(source)
    functions = [mutation.function for mutation in found]
    assert functions == sorted(functions, key=["first", "second"].index)
    for name in ("first", "second"):
        lines = [mutation.line for mutation in found if mutation.function == name]
        assert lines == sorted(lines)


TWO_FUNCTIONS = textwrap.dedent('''\
    import torch


    def first(x):
        """Doubled: a docstring with a 2 in it."""
        ### BEGIN SOLUTION
        return x * 2
        ### END SOLUTION


    @torch.no_grad()
    def second(x, k=3):
        ### BEGIN SOLUTION
        y = x.sum(dim=0)  # a comment kept
        return y - k
        ### END SOLUTION

    print(first(1), second(torch.ones(2)))
    ''')


def test_a_cell_with_two_functions_mutates_each_and_only_the_one_named():
    found = mutations(TWO_FUNCTIONS)
    assert {mutation.function for mutation in found} == {"first", "second"}
    assert {m.function for m in mutations(TWO_FUNCTIONS, ["second"])} == {"second"}
    for mutation in found:
        kept = [line for line in mutation.source.splitlines()
                if "def " in line or '"""' in line or "import" in line or "print(" in line]
        assert kept == [line for line in TWO_FUNCTIONS.splitlines()
                        if "def " in line or '"""' in line or "import" in line
                        or "print(" in line]
        assert "@torch.no_grad()" in mutation.source


def test_the_docstring_the_signature_and_defaults_are_never_mutated():
    for source in ALL_CELLS:
        docstrings = re.findall(r'""".*?"""', source, re.S)
        signatures = re.findall(r"^\s*(?:def|class) .*$", source, re.M)
        for mutation in mutations(source):
            assert re.findall(r'""".*?"""', mutation.source, re.S) == docstrings
            assert re.findall(r"^\s*(?:def|class) .*$", mutation.source, re.M) == signatures


def test_a_function_without_markers_mutates_its_whole_body():
    source = textwrap.dedent('''\
        def halve(x):
            """Half of x."""
            y = x / 2
            return y
        ''')
    found = mutations(source)
    assert {mutation.line for mutation in found} == {3, 4}
    assert any("y = x * 2" in mutation.source for mutation in found)
    assert all('"""Half of x."""' in mutation.source for mutation in found)


def test_a_class_mutates_its_methods_solution_blocks():
    found = mutations(cell_defining("LinearNet"), ["LinearNet"])
    assert any("nn.Linear(num_outputs, num_inputs)" in m.source for m in found)
    assert any(m.operator == "drop" and "super().__init__()" in m.description for m in found)


def test_a_mutant_that_does_not_compile_or_changes_nothing_is_not_made():
    source = "def f(x):\n    return g(x, x)\n"  # swapping x and x changes nothing
    assert not [mutation for mutation in mutations(source) if mutation.operator == "swap_args"]
    source = "def f(n):\n    return [i for i in range(n)]\n"
    assert all(mutation.operator != "sign" for mutation in mutations(source))


def test_strings_and_imports_are_never_mutated():
    source = 'def f(x):\n    import math\n    s = "a" + "b"\n    return math.pi * 3\n'
    found = mutations(source)
    assert found
    for mutation in found:
        assert mutation.source.splitlines()[1:3] == source.splitlines()[1:3]


def test_a_syntax_error_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"does not parse \(line 1: .*fix the reference"):
        mutations("def f(x:\n    return x\n")


def test_naming_a_function_the_cell_does_not_define_is_a_clear_value_error():
    with pytest.raises(ValueError, match="defines no nowhere at its top level .*first, second"):
        mutations(TWO_FUNCTIONS, ["first", "nowhere"])


def test_a_cell_without_functions_has_no_mutants():
    assert mutations("x = 1 + 2\nprint(x)\n") == []


def test_sample_is_deterministic_bounded_and_keeps_the_order():
    found = [mutation for source in ALL_CELLS for mutation in mutations(source)]
    drawn = sample(found, 3, seed=7)
    assert drawn == sample(found, 3, seed=7)
    assert drawn != sample(found, 3, seed=8)
    per_function = {}
    for mutation in drawn:
        per_function[mutation.function] = per_function.get(mutation.function, 0) + 1
    assert max(per_function.values()) == 3
    assert set(per_function) == {mutation.function for mutation in found}
    positions = [found.index(mutation) for mutation in drawn]
    assert positions == sorted(positions)
    assert sample(found, 10_000, seed=1) == found
    assert sample(found, 0, seed=1) == []


def test_a_negative_sample_limit_is_a_clear_value_error():
    with pytest.raises(ValueError, match="limit is -1: give a number of mutants"):
        sample([], -1, seed=0)
