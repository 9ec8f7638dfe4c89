"""One time budget per submission: every kernel run of a unit draws on it.

A notebook once got a fresh total_timeout for each kernel run: the run without the given
demos, the whole rerun after any NameError, two fresh kernels after a death in each. One
notebook with two kernel-killing cells and a NameError made six runs. These tests count the
kernels a unit takes and check that only a name a left-out demo binds reruns the notebook.
"""

from __future__ import annotations

import time
from dataclasses import replace

import nbformat
import pytest
from conftest import FAST, SOLUTION, grade_file, outcomes, write_notebook

from grader.grading.observe import MAX_RESTARTS, RUN_WHOLE
from grader.sandbox.budget import BUDGET_RUNS, Budget
from grader.sandbox.kernels import KernelPool, LaunchedKernel

# Bound only by the softmax-from-scratch demo, looked up where no reading of the source sees it.
DEMO_NAME = 'assert eval("num_inputs") == 784'
TOO_MUCH_OUTPUT = 'print("x" * 2_100_000)'  # past execute.MAX_OUTPUT_CHARS: a note in every run
TO_TERMINAL = 'import os\nos.write(2, b"\\x1b]0;owned\\x07from the kernel\\n")'  # its own fd 2
KILL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
# The function probed first, each probe of it waiting out probe_timeout: past any budget.
SLOW = "def estimate_probabilities(counts):\n    import time\n    time.sleep(10**6)"


@pytest.fixture
def kernel_runs(monkeypatch):
    """When each kernel a grading takes was taken, and when the last was closed."""
    taken: list[float] = []
    closed: list[float] = []
    take, close = KernelPool.take, LaunchedKernel.close

    def counted(pool: KernelPool) -> LaunchedKernel:
        taken.append(time.monotonic())
        return take(pool)

    def timed(kernel: LaunchedKernel) -> None:
        close(kernel)
        closed.append(time.monotonic())

    monkeypatch.setattr(KernelPool, "take", counted)
    monkeypatch.setattr(LaunchedKernel, "close", timed)
    return taken, closed


def solution_with(first: list[str], last: list[str] = ()) -> nbformat.NotebookNode:
    """The solution with code cells of its own before and after the course's."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    notebook.cells = ([nbformat.v4.new_code_cell(source) for source in first] + notebook.cells
                      + [nbformat.v4.new_code_cell(source) for source in last])
    return notebook


def test_a_failed_import_and_its_name_errors_take_one_kernel(tmp_path, kernel_runs):
    notebook = solution_with(["import d2l_helpers_of_mine", "d2l_helpers_of_mine.show()"])
    result = grade_file(write_notebook(notebook, tmp_path / "import.ipynb"))
    assert len(kernel_runs[0]) == 1
    assert RUN_WHOLE not in result.notes
    assert [e.error.split(":")[0] for e in result.errors[:2]] == ["ModuleNotFoundError",
                                                                  "NameError"]
    assert all(outcomes(result).values())


def test_a_name_only_a_left_out_demo_binds_reruns_once_keeping_both_runs_notes(
        tmp_path, kernel_runs):
    notebook = solution_with([TOO_MUCH_OUTPUT, TO_TERMINAL], [DEMO_NAME])
    result = grade_file(write_notebook(notebook, tmp_path / "demo_name.ipynb"))
    assert len(kernel_runs[0]) == 2
    assert RUN_WHOLE in result.notes
    dropped = [note for note in result.notes if "more output than the grader keeps" in note]
    assert [note.split(":")[0] for note in dropped] == [
        "Kernel run 1 (given demos left out)", "Kernel run 2 (with the given demos)"]
    assert not [e for e in result.errors if e.error.startswith("NameError")]
    assert all(outcomes(result).values())
    # Each kernel's own terminal output is kept, labelled, escaped.
    output = result.kernel_output
    first, second = output.find("Kernel run 1 (given demos left out): "), output.find(
        "Kernel run 2 (with the given demos): ")
    assert 0 <= first < second, output[:2000]
    written = "\\x1b]0;owned\\x07from the kernel"
    assert written in output[first:second] and written in output[second:]
    assert "\x1b" not in output


def test_kernel_deaths_and_a_demo_name_stay_within_one_budget(tmp_path, kernel_runs):
    settings = replace(FAST, cell_timeout=8, total_timeout=15)
    notebook = solution_with([DEMO_NAME, KILL, KILL], [SLOW])  # dying before any demo runs
    result = grade_file(write_notebook(notebook, tmp_path / "six.ipynb"), settings)
    taken, closed = kernel_runs
    print(f"{len(taken)} kernel runs, {closed[-1] - taken[0]:.1f} s from the first kernel "
          "taken to the last closed")
    assert len(taken) <= MAX_RESTARTS + 2  # the first pass, the demo pass, the restarts
    budget = f"used its whole time budget of {BUDGET_RUNS * settings.total_timeout:g} s"
    assert any(budget in note for note in result.notes), result.notes
    assert any(budget in test.message for test in result.tests), [t.message for t in result.tests]
    assert not result.fault, result.fault


def test_the_graders_own_wait_between_cells_is_given_back_to_the_budget():
    """The kernel's first timed step waits for the reference to be read (seconds, where it
    is observed afresh): that wait is the grader's, not the submission's."""
    budget = Budget.start(60)
    ends = budget.ends
    with budget.paused():
        time.sleep(0.2)
    assert budget.ends >= ends + 0.2
    assert budget.left() > 59.5
