"""The trust boundary from the grader's side: what a kernel is given, what it can see, and
what the grader refuses to open.

tests/test_hostile.py grades attacks through real kernels beside good work; these tests
pin the rules those attacks rely on, one rule a test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from conftest import FAST, NOTEBOOK, SOLUTION, write_notebook

from grader.grading import inputs as grade_inputs
from grader.grading.assignment import Assignment
from grader.grading.checks import Check, Context, Failed
from grader.grading.notebook import read_notebook
from grader.kernel.probing import PROBE_SEEDS
from grader.sandbox.bwrap import bwrap_works
from grader.scale.batch import grade_folder
from grader.students.intake import discover
from grader.students.submissions import UnsafeFile, read_submitted

CANARY_ENV = "DL_GRADER_TEST_CANARY"


# --- what the kernel is given ------------------------------------------------------------

def test_the_kernel_gets_no_seed_no_secret_and_no_late_input():
    """With the grading seed (and the grader's own make_inputs) a kernel could draw the
    secret true weights again; with a late input it could run the timed epoch ahead."""
    assignment = Assignment.of(FAST)
    settings = assignment.settings
    inputs = grade_inputs.build_inputs(assignment, read_notebook(SOLUTION))
    late = grade_inputs.late_inputs(assignment, "digest-of-a-submission")
    given = grade_inputs.kernel_inputs(inputs, late)
    assert late and not set(late) & set(given)
    assert not [key for key in given if key.startswith(grade_inputs.SECRET)]
    assert [key for key in inputs if key.startswith(grade_inputs.SECRET)]
    assert "seed" not in given
    assert settings.seed not in given[PROBE_SEEDS].values()
    assert len(set(given[PROBE_SEEDS].values())) == len(given[PROBE_SEEDS])


def test_late_inputs_are_fixed_per_submission_and_differ_between_them():
    assignment = Assignment.of(FAST)
    one = grade_inputs.late_inputs(assignment, "a")
    assert one == grade_inputs.late_inputs(assignment, "a")
    assert one != grade_inputs.late_inputs(assignment, "b")
    reseeded = Assignment.of(replace(FAST, seed=FAST.seed + 1))
    assert one != grade_inputs.late_inputs(reseeded, "a")


# --- hidden tests keep their values ------------------------------------------------------

def failing_check(hidden: bool) -> Check:
    def reaches_the_reference_loss(ctx: Context) -> str:
        """The final loss is at most the limit."""
        raise Failed("the loss is 0.31, above 0.0123 (the reference's 0.0082)", "≤ 0.0123", "0.31")

    return Check("linreg_training", "reaches_the_reference_loss", 2, reaches_the_reference_loss,
                 hidden=hidden)


def test_a_hidden_test_says_what_failed_but_not_the_values():
    context = Context({}, {}, {})
    public, hidden = (failing_check(h).evaluate(context) for h in (False, True))
    assert "0.0082" in public.message and public.expected
    assert hidden.message == "The final loss is at most the limit: not met on the hidden inputs"
    assert hidden.expected is None and hidden.got is None


# --- what the grader refuses to open -----------------------------------------------------

@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "submissions"
    write_notebook(nbformat.read(SOLUTION, as_version=4), folder / "honest.ipynb")
    return folder


def test_a_submission_that_is_a_link_is_refused(class_folder: Path, tmp_path: Path):
    (class_folder / "linked.ipynb").symlink_to(SOLUTION)
    secret = tmp_path / "root-only.ipynb"
    secret.write_text("only root may read this")
    secret.chmod(0o600)
    (class_folder / "peeker").mkdir()
    (class_folder / "peeker" / "linear_networks.ipynb").symlink_to(secret)
    submissions = {s.student: s for s in discover(class_folder)[0]}
    assert submissions["honest"].refused is None
    assert "is a link" in submissions["linked"].refused
    assert "holds links" in submissions["peeker"].refused
    assert not submissions["peeker"].notebooks


def test_a_refused_submission_is_graded_zero_with_the_reason_and_no_content(
        class_folder: Path, tmp_path: Path):
    (class_folder / "linked.ipynb").symlink_to(SOLUTION)
    (class_folder / "honest.ipynb").unlink()
    report = grade_folder(class_folder, tmp_path / "graded", [FAST])
    [result] = report.results
    assert result.score == 0 and result.tests
    assert all("links are refused" in test.message for test in result.tests)
    assert any("Not graded" in note for note in result.notes)
    report_page = tmp_path / "graded" / "linked" / NOTEBOOK / "report.html"
    assert "BEGIN SOLUTION" not in report_page.read_text()


@pytest.mark.parametrize("make", ["fifo", "hard link", "oversized"])
def test_files_the_grader_will_not_read(tmp_path: Path, make: str):
    path = tmp_path / "odd.ipynb"
    if make == "fifo":
        os.mkfifo(path)  # opening it for reading would block for good
    elif make == "hard link":
        (tmp_path / "elsewhere").write_text("{}")
        os.link(tmp_path / "elsewhere", path)
    else:
        path.write_bytes(b" " * 2048)
    with pytest.raises(UnsafeFile):
        read_submitted(path, max_bytes=1024)


def test_a_small_file_is_read_into_a_buffer_of_its_size(tmp_path: Path):
    """Reading reserved the 64 MiB cap for every file: eight small notebooks read at once
    would hold half a gigabyte."""
    import tracemalloc

    path = tmp_path / "small.ipynb"
    path.write_text("{}")
    tracemalloc.start()
    try:
        assert read_submitted(path) == b"{}"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak / 2**20:.0f} MiB"


# --- what a kernel can see ---------------------------------------------------------------

SEEN = ("import os\ntry:\n    seen = {probe}\nexcept OSError:\n    seen = False\n"
        "raise RuntimeError('visible' if seen else 'hidden')")


def probe_cells(folder: Path, out: Path) -> dict[str, str]:
    """Cells that each raise 'hidden' or 'visible': the error the grader recorded for the
    cell, not anything the notebook printed, says which."""
    return {
        "submissions": SEEN.format(probe=f"os.listdir({str(folder)!r})"),
        "classmate": SEEN.format(probe=f"open({str(folder / 'classmate.ipynb')!r}).read()"),
        "reports": SEEN.format(probe=f"os.listdir({str(out)!r})"),
        "environment": SEEN.format(probe=f"{CANARY_ENV!r} in os.environ"),
    }


@pytest.mark.skipif(not bwrap_works() or os.geteuid() != 0,
                    reason="needs bubblewrap and root (a class folder outside /tmp)")
def test_kernels_see_neither_the_class_nor_the_reports_nor_the_graders_environment(
        monkeypatch: pytest.MonkeyPatch):
    """Wherever the class folder lies (here under /var/lib, which the sandbox shows), the
    submissions and reports are hidden, and the grader's environment stays its own."""
    root = Path("/var/lib") / f"dl-grader-test-{uuid.uuid4().hex[:8]}"
    folder, out = root / "class" / "submissions", root / "class" / "graded"
    monkeypatch.setenv(CANARY_ENV, "a token of the grader's")
    try:
        write_notebook(nbformat.read(SOLUTION, as_version=4), folder / "classmate.ipynb")
        notebook = nbformat.v4.new_notebook()
        cells = probe_cells(folder, out)
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells.values()]
        write_notebook(notebook, folder / "prober.ipynb")
        report = grade_folder(folder, out, [replace(FAST, total_timeout=60)], only={"prober"})
        [result] = report.results
        errors = {record.index: record.error for record in result.errors}
        assert {name: errors.get(index) for index, name in enumerate(cells)} == \
            dict.fromkeys(cells, "RuntimeError: hidden")
    finally:
        shutil.rmtree(root, ignore_errors=True)
