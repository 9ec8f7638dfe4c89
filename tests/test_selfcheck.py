"""Students' self-check: public tests only, friendly output, no reference and no network."""

from __future__ import annotations

import nbformat
import pytest
import torch
from conftest import SOLUTION, with_functions

import grader.kernel.selfcheck as selfcheck
from grader.config import load_assignments
from grader.course import BUNDLED, ENV_VAR
from grader.execute import KernelRun
from grader.exercise import lookup
from grader.inputs import build_inputs
from grader.kernel.selfcheck import check, run_check
from grader.kernels import LaunchedKernel
from grader.reference import reference_functions
from grader.sandbox import SandboxSettings

NO_KEEPDIM = "def softmax(X):\n    e = torch.exp(X - X.max(dim=1, keepdim=True).values)\n" \
             "    return e / e.sum(dim=1)\n"


ASSIGNMENTS = load_assignments(BUNDLED.assignment_files())


@pytest.fixture(autouse=True)
def bundled_course(monkeypatch):
    """The bundled course ships the self-check's data (the test course does not)."""
    monkeypatch.setenv(ENV_VAR, str(BUNDLED.root))


@pytest.mark.parametrize("settings", ASSIGNMENTS, ids=lambda s: s.notebook)
def test_the_reference_passes_every_public_test_of_its_assignment(settings):
    functions = reference_functions(settings.notebook, BUNDLED.reference)
    names = {check.exercise for e in lookup(settings.exercises) for check in e.checks} - {"quiz"}
    for name in sorted(names):
        results = run_check(name, functions)
        assert results and all(r.passed for r in results), (name, results)


def test_hidden_tests_are_not_run_and_public_inputs_differ_from_hidden_ones():
    [settings] = [s for s in ASSIGNMENTS if s.notebook == "softmax_regression"]
    public = torch.load(BUNDLED.public / "softmax_regression.pt", weights_only=True)
    assert public["hidden"] == list(settings.hidden)
    hidden = {check.full_name for e in lookup(settings.exercises)
              for check in e.configured(settings.options[e.name], settings.points,
                                        settings.hidden) if check.hidden}
    names = {r.name for r in run_check("accuracy", reference_functions("softmax_regression",
                                                                       BUNDLED.reference))}
    assert "accuracy.breaks_ties_like_argmax" in hidden
    assert names and not names & hidden
    hidden_inputs = build_inputs(lookup(settings.exercises), settings, nbformat.v4.new_notebook())
    assert not torch.equal(public["inputs"]["softmax.X"], hidden_inputs["softmax.X"])


def test_an_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="no exercise named 'sofmax'; try one of: .*softmax, "):
        run_check("sofmax", {})


def test_a_bug_prints_the_first_failing_expectation(capsys, monkeypatch):
    namespace = {"softmax": lambda X: torch.exp(X) / torch.exp(X).sum(dim=0)}
    monkeypatch.setattr(selfcheck, "caller_namespace", lambda: namespace)
    check("softmax")
    printed = capsys.readouterr().out
    assert printed.startswith("softmax: 2/5 public tests passed")  # shape and dtype hold
    assert "✗ values_match_the_reference" in printed
    assert "First problem:" in printed and "columns sum to 1" in printed


def test_check_runs_in_the_sandbox_without_reference_or_network():
    """The notebook's own check cells, run in a sandboxed kernel that sees no reference/."""
    notebook = with_functions({"softmax": NO_KEEPDIM}, base=SOLUTION)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        f"import os\nprint(os.path.exists({str(SOLUTION)!r}))"))
    kernel = LaunchedKernel(SandboxSettings(), gpu=False)
    with KernelRun(notebook, kernel, 120, 400, skip_tag=None) as run:
        run.run_notebook()
    outputs = {cell.source: "".join(o.get("text", "") for o in cell.get("outputs", []))
               for cell in notebook.cells if cell.cell_type == "code"}
    assert outputs[notebook.cells[0].source].strip() == "False"
    assert "softmax: 0/5 public tests passed" in outputs['check("softmax")']
    assert "keepdim=True" in outputs['check("softmax")']
    assert "accuracy: 2/2 public tests passed" in outputs['check("accuracy")']
