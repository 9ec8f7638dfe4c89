"""Shared helpers: build submissions from the solution notebook with some functions swapped.

The tests grade with the test course (tests/course): the bundled course's assignments as
one notebook, so that one kernel run exercises every exercise. Tests of the bundled
course itself name it.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.authoring.config import Settings, load_settings
from grader.authoring.course import ENV_VAR, Course
from grader.authoring.exercise import available, lookup
from grader.cli import main
from grader.grading.checks import HIDDEN_TEXT
from grader.grading.grade import grade_submission
from grader.grading.results import Result
from grader.students.submissions import Submission

TEST_COURSE = Course(Path(__file__).resolve().parent / "course")
os.environ[ENV_VAR] = str(TEST_COURSE.root)
NOTEBOOK = "linear_networks"
SOLUTION = TEST_COURSE.reference / f"{NOTEBOOK}.ipynb"
BLANK = TEST_COURSE.exercises / f"{NOTEBOOK}.ipynb"
SETTINGS = load_settings(TEST_COURSE.assignments / f"{NOTEBOOK}.toml")
EXERCISES = lookup(SETTINGS.exercises)
# Hidden tests say what failed, never the values behind it: no message names the bug.
HIDDEN = frozenset(c.full_name for e in available().values() for c in e.checks if c.hidden)
HIDDEN_FAILURE = "not met on the hidden inputs"


def exercise_words(exercise) -> list[str]:
    """The names a test of `exercise` is named by: the exercise's and its check groups'
    (the student functions it grades, and their trainings)."""
    groups = {check.exercise for check in exercise.checks}
    return sorted({exercise.name, *groups}, key=len, reverse=True)


def pytest_configure(config: pytest.Config) -> None:
    """One marker per exercise, so a maintainer of softmax runs `pytest -m softmax`."""
    for name in available():
        config.addinivalue_line("markers", f"{name}: the tests that name the {name} exercise "
                                           "or a function it grades")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with every exercise whose name, or the name of a function it grades,
    appears in the test's id (its module, name and parameters) as a word of its own."""
    patterns = {name: re.compile(r"(?<![a-z0-9])(" + "|".join(map(re.escape,
                                 exercise_words(exercise))) + r")(?![a-z0-9])")
                for name, exercise in available().items()}
    for item in items:
        said = item.nodeid.lower()
        for name, pattern in patterns.items():
            if pattern.search(said):
                item.add_marker(getattr(pytest.mark, name))


@contextmanager
def course_of_our_own(root: Path, change: Callable[[Path], None],
                      assignment: str) -> Iterator[CliRunner]:
    """A course made by `grade init` in `root`, changed by `change` as an instructor would,
    its `assignment`'s notebooks built: the current folder and course while inside."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv(ENV_VAR, str(root / "course"))  # restored after; use() sets it
        runner = CliRunner()
        assert runner.invoke(main, ["init", "course"]).exit_code == 0
        change(root / "course")
        built = runner.invoke(main, ["--course", "course", "assign", "--assignment", assignment])
        assert built.exit_code == 0, built.output
        yield runner


def class_graded(runner: CliRunner, assignment: str, *options: str) -> dict:
    """`grade class` of that course into out/, and the summary it prints with --json."""
    graded = runner.invoke(main, ["--course", "course", "class", "--out", "out", *options,
                                  "--assignment", assignment, "--json"])
    assert graded.exit_code == 0, graded.output
    return json.loads(graded.stdout[graded.stdout.index("{"):])


def words_missing(name: str, message: str, words: tuple[str, ...]) -> list[str]:
    """The bug's `words` that `message` lacks. A hidden test names a bug by what failed
    alone; where the student's function raised, by the kind of error (and the grader's hint
    where it has one), never the text it raised (which may quote the hidden inputs): the
    words are then not asked for, the kind of error is."""
    if name in HIDDEN and message.endswith(HIDDEN_FAILURE):
        return []
    if name in HIDDEN and HIDDEN_TEXT in message:
        kind = message.split(HIDDEN_TEXT, 1)[0].rstrip(": ").rsplit(" ", 1)[-1]
        return [] if kind.isidentifier() else ["the kind of error"]
    return [word for word in words if word not in message]
FAST = replace(SETTINGS, cell_timeout=60, total_timeout=180, probe_timeout=20, long_timeout=60)
# The timed epoch is compared with the reference's on this machine; on a shared two-core
# box the ratio swings several-fold, so tests of bugs allow it to be generous.
LENIENT = FAST.with_options("softmax", max_epoch_ratio=50.0)
DEMO_EPOCHS = ("num_epochs = 0.1, 256, 3", "num_epochs = 0.1, 256, 1")


def code(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"


@dataclass(frozen=True)
class Bug:
    """One wrong implementation, the checks whose message must name it and the words."""

    notebook: str
    function: str
    what: str
    source: str
    named_by: tuple[str, ...]
    words: tuple[str, ...]
    also_fails: tuple[str, ...] = ()  # consequences, reported in general terms
    may_fail: tuple[str, ...] = ()  # consequences the hidden inputs decide, either verdict honest
    gap: str | None = None  # set where the grader catches the bug but does not name it
    exercise: str = ""  # the checks' group, where it is not named after the function

    @property
    def failing(self) -> set[str]:
        return self.names(self.named_by + self.also_fails)

    @property
    def uncertain(self) -> set[str]:
        return self.names(self.may_fail)

    def names(self, checks: tuple[str, ...]) -> set[str]:
        return {f"{self.exercise or self.function}.{name}" for name in checks}


def with_functions(replacements: dict[str, str], base: Path = SOLUTION,
                   answer: str | None = None) -> nbformat.NotebookNode:
    """The notebook at `base` with the cells defining the named functions replaced."""
    notebook = nbformat.read(base, as_version=4)
    remaining = dict(replacements)
    for cell in notebook.cells:
        match = re.search(r"^def (\w+)\(", cell.source, re.M)
        if cell.cell_type == "code" and match and match[1] in remaining:
            cell.source = remaining.pop(match[1])
        if answer is not None and any(t.startswith("answer:") for t in
                                      cell.metadata.get("tags", [])):
            cell.source = answer
    assert not remaining, f"no cell defines {sorted(remaining)}"
    return notebook


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def grade_file(path: Path, settings: Settings = FAST) -> Result:
    return grade_submission(Submission(path.stem, path, [path]), settings)


def outcomes(result: Result) -> dict[str, bool]:
    return {test.name: test.passed for test in result.tests}


def messages(result: Result) -> dict[str, str]:
    return {test.name: test.message for test in result.tests}


@pytest.fixture(scope="session")
def solution_result(tmp_path_factory) -> Result:
    path = write_notebook(nbformat.read(SOLUTION, as_version=4),
                          tmp_path_factory.mktemp("solution") / "solution.ipynb")
    return grade_file(path)


@pytest.fixture(scope="session")
def blank_result(tmp_path_factory) -> Result:
    path = write_notebook(nbformat.read(BLANK, as_version=4),
                          tmp_path_factory.mktemp("blank") / "blank.ipynb")
    return grade_file(path)


def one_demo_epoch(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook's own Fashion-MNIST demo cut to one epoch: the grader trains with the
    student's functions itself and never reads the demo's output."""
    old, new = DEMO_EPOCHS
    cells = [cell for cell in notebook.cells if old in cell.source]
    assert len(cells) == 1, f"no single demo cell sets {old!r}: update DEMO_EPOCHS"
    cells[0].source = cells[0].source.replace(old, new)
    return notebook


@pytest.fixture(scope="module")
def single_threaded_kernels():
    """One BLAS/OpenMP thread per kernel: beside other busy processes on two cores, spinning
    OpenMP threads slow the notebook's training cell from seconds to past its timeout."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            patch.setenv(name, "1")
        yield


COLUMNS_SOFTMAX = code("""
    def softmax(X):
        X_exp = torch.exp(X)
        return X_exp / X_exp.sum(dim=0, keepdim=True)
    """)


# A student's own work, correct but unusual: what no one else writes, so a copy of it is
# evidence (the reference's code is not: every student who solves the exercise has it).
UNUSUAL = {
    "data_iter": '''
def data_iter(batch_size, features, labels):
    keys = torch.rand(len(features))
    ranking = torch.argsort(keys, descending=True)
    starts = torch.arange(0, len(ranking), batch_size)
    for lo, hi in zip(starts.tolist(), (starts + batch_size).clamp(max=len(ranking)).tolist()):
        window = ranking[lo:hi]
        yield torch.index_select(features, 0, window), torch.index_select(labels, 0, window)
''',
    "accuracy": '''
def accuracy(y_hat, y):
    onehot = torch.nn.functional.one_hot(y.reshape(-1), y_hat.shape[1]).bool()
    best = y_hat == y_hat.max(dim=1, keepdim=True).values
    first = best.cumsum(dim=1).eq(1) & best
    return float((first & onehot).any(dim=1).double().mean())
''',
}


def renamed_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as a copier hands it in: its code reformatted, comments of their own,
    names changed."""
    import ast

    for cell in notebook.cells:
        if cell.cell_type == "code" and "def " in cell.source:
            source = ast.unparse(ast.parse(cell.source))
            source = re.sub(r"\bX\b", "scores", re.sub(r"\bparams\b", "weights", source))
            cell.source = "# my own work\n" + source.replace("\n", "\n\n", 1)
    return notebook


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """A class graded once through grade_folder: the solution (alice), the blank (bob), the
    softmax that normalises columns beside unusual work of carol's own (carol), a file that
    is not JSON (dave) and carol's work renamed and reformatted (erin: a copier, since two
    who hand in the solution copied no one). Returns the batch report, the submissions and
    the output folder."""
    from grader.scale.batch import grade_folder

    root = tmp_path_factory.mktemp("class")
    submissions = root / "submissions"
    write_notebook(nbformat.read(SOLUTION, as_version=4), submissions / "alice.ipynb")
    write_notebook(nbformat.read(BLANK, as_version=4), submissions / "bob.ipynb")
    carol = write_notebook(with_functions({"softmax": COLUMNS_SOFTMAX, **UNUSUAL}),
                           submissions / "carol.ipynb")
    (submissions / "dave.ipynb").write_text("{ not json")
    write_notebook(renamed_copy(nbformat.read(carol, as_version=4)), submissions / "erin.ipynb")
    finished = []
    report = grade_folder(submissions, root / "out", [LENIENT],
                          on_result=lambda label, result: finished.append(label))
    assert sorted(finished) == sorted(report.graded), report.faults
    stuck = [note for r in report.results for note in r.notes if "could not start" in note]
    assert not stuck, f"no kernel started (the machine is too busy?): {stuck[:1]}"
    return report, submissions, root / "out"


def wait_for(condition, seconds: float = 60.0) -> bool:
    """Whether `condition()` holds within `seconds` (a process reaped, a folder removed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()
