"""`grade FOLDER` on a class with good, partial and broken work: every output, parsed."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import nbformat
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import BLANK, NOTEBOOK, with_functions, write_notebook

from grader.cli import main
from grader.kernel import data as kernel_data
from grader.sandbox import kernels

NOT_DONE = "def softmax(X):\n    raise NotImplementedError()\n"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade a mixed class once; the tests read what it wrote."""
    root = tmp_path_factory.mktemp("class")
    submissions = root / "submissions"
    write_notebook(with_functions({}), submissions / "alice.ipynb")
    write_notebook(with_functions({"softmax": NOT_DONE}, answer="(c)"),
                   submissions / "bob" / "linear_networks.ipynb")
    (submissions / "carol.ipynb").write_text("{ this is not json")
    (submissions / "dave").mkdir()
    (submissions / "notes.txt").write_text("not a notebook")
    out = root / "out"
    result = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--jobs", "2",
                                       "--json"])
    return result, submissions, out


def scores(out) -> dict[str, float]:
    with open(out / "grades.csv", newline="") as handle:
        return {row["student"]: float(row["score"]) for row in csv.DictReader(handle)
                if row["score"]}  # work not handed in has no score


def test_grading_ran_so_the_exit_code_is_zero(graded):
    result, _, _ = graded
    assert result.exit_code == 0, result.output


def test_every_student_gets_a_report_with_their_total(graded):
    _, _, out = graded
    totals = {}
    for student in ("alice", "bob", "carol", "dave"):
        page = BeautifulSoup((out / student / NOTEBOOK / "report.html").read_text(),
                             "html.parser")
        total = page.select_one("#total")
        totals[student] = total.get_text(" ", strip=True) if total else page.get_text(" ")
        saved = json.loads((out / student / NOTEBOOK / "results.json").read_text())
        assert (saved["student"], saved["assignment"]) == (student, NOTEBOOK)
    assert "97 / 97" in totals["alice"]
    assert totals["carol"].startswith("0 /")  # handed in, unreadable: a 0 with the reason
    assert "No notebook for linear_networks was handed in" in totals["dave"]  # never a 0


def test_the_partial_submission_loses_only_the_blank_function(graded):
    _, _, out = graded
    page = BeautifulSoup((out / "bob" / NOTEBOOK / "report.html").read_text(), "html.parser")
    failed = {row["data-test"] for row in page.select("tr.test.fail")}
    assert failed and all(name.startswith(("softmax.", "softmax_training.")) for name in failed)
    assert page.select_one('tr.test.pass[data-test="quiz.softmax_shift_invariance"]')
    assert page.select_one('tr[data-test="softmax.values_match_the_reference"]') \
        .get_text().count("not implemented")


def test_grades_csv_has_a_row_per_student_and_a_column_per_test(graded):
    _, _, out = graded
    with open(out / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "dave"]
    assert "softmax.values_match_the_reference" in rows[0]
    assert rows[0]["softmax.values_match_the_reference"] == "2"
    assert rows[1]["softmax.values_match_the_reference"] == "0"
    assert 0 < scores(out)["bob"] < scores(out)["alice"]


def test_the_summary_lists_every_student(graded):
    _, _, out = graded
    page = BeautifulSoup((out / "summary.html").read_text(), "html.parser")
    assert [r["data-student"] for r in page.select(".students tr[data-student]")] == [
        "alice", "bob", "carol", "dave"]


def test_broken_and_odd_entries_are_reported_not_skipped(graded):
    result, _, out = graded
    assert "notes.txt" in result.output
    carol = json.loads((out / "carol" / NOTEBOOK / "results.json").read_text())
    assert all("not a readable notebook" in t["message"] for t in carol["tests"])
    dave = json.loads((out / "dave" / NOTEBOOK / "results.json").read_text())
    assert any("holds no notebook" in note for note in dave["notes"])


def test_the_json_summary_is_machine_readable(graded):
    result, _, _ = graded
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert sorted(summary["graded"]) == [f"{s}/{NOTEBOOK}" for s in ("alice", "bob", "carol",
                                                                     "dave")]
    alice = summary["students"]["alice"][NOTEBOOK]
    assert alice["score"] == alice["max_score"]


def test_a_second_run_reuses_results_and_force_regrades(graded):
    _, submissions, out = graded
    again = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--json"])
    assert json.loads(again.stdout[again.stdout.index("{"):])["unchanged"] == [
        f"{s}/{NOTEBOOK}" for s in ("alice", "bob", "carol", "dave")]
    forced = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--force",
                                       "--only", "carol", "--json"])
    summary = json.loads(forced.stdout[forced.stdout.index("{"):])
    assert summary["graded"] == [f"carol/{NOTEBOOK}"]
    assert sorted(summary["students"]) == ["alice", "bob", "carol", "dave"]


def test_no_kernel_boots_after_the_last_submission(graded, monkeypatch):
    """One submission in, one kernel: none booting ahead for a submission that never comes."""
    _, submissions, out = graded
    launched = []

    class Counted(kernels.LaunchedKernel):
        def __init__(self, *args, **kwargs):
            launched.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(kernels, "LaunchedKernel", Counted)
    result = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--force",
                                       "--only", "alice", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{"):])["graded"] == [f"alice/{NOTEBOOK}"]
    assert len(launched) == 1


@pytest.mark.parametrize("arguments, words", [
    (["does-not-exist"], "does not exist"),
    (["{folder}", "--device", "tpu"], "Invalid value"),
    (["{folder}", "--jobs", "0"], "Invalid value"),
    (["{folder}", "--only", "nobody"], "no submission for: nobody"),
    (["{folder}", "--assignment", "mlp"], f"no assignment named mlp; the course has: {NOTEBOOK}"),
])
def test_usage_errors_exit_non_zero_with_a_message(tmp_path, arguments, words):
    write_notebook(with_functions({}, base=BLANK), tmp_path / "s" / "x.ipynb")
    arguments = [a.format(folder=tmp_path / "s") for a in arguments]
    result = CliRunner().invoke(main, arguments + ["--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert words in result.output


def test_a_data_set_the_exercises_read_is_looked_for_before_any_kernel_starts(tmp_path,
                                                                            monkeypatch):
    nowhere = tmp_path / "nowhere"
    monkeypatch.setattr(kernel_data, "candidate_dirs", lambda: [nowhere])
    write_notebook(with_functions({}, base=BLANK), tmp_path / "s" / "x.ipynb")
    result = CliRunner().invoke(main, [str(tmp_path / "s"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Fashion-MNIST not found" in result.output and str(nowhere) in result.output
    assert not (tmp_path / "o").exists()


def test_without_a_terminal_each_finished_submission_prints_a_line(graded):
    result, _, _ = graded
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    lines = [line for line in result.output.splitlines() if line.startswith(f"alice/{NOTEBOOK}:")]
    alice = summary["students"]["alice"][NOTEBOOK]
    assert len(lines) == 1
    assert lines[0].startswith(f"alice/{NOTEBOOK}: {alice['score']:g} / {alice['max_score']:g}")
    assert " ran " in lines[0] and lines[0].endswith(" s")
    for student in ("bob", "carol", "dave"):
        assert f"{student}/{NOTEBOOK}: " in result.output


def test_the_json_summary_writes_every_score_as_a_float(graded):
    result, _, _ = graded
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    numbers = [scores[key] for student in summary["students"].values()
               for scores in student.values() for key in ("score", "max_score")
               if scores[key] is not None]
    assert numbers and all(type(value) is float for value in numbers)
    assert summary["students"]["dave"][NOTEBOOK]["score"] is None  # not handed in: no 0


def test_the_class_outputs_are_written_group_readable(graded):
    _, _, out = graded
    for name in ("grades.csv", "gradebook.csv", "similarity.csv", "summary.html",
                 f"alice/{NOTEBOOK}/report.html", f"alice/{NOTEBOOK}/results.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


@pytest.mark.parametrize("contents", [[], ["notes.txt", "empty/"]])
def test_a_folder_without_notebooks_is_a_usage_error_saying_what_was_looked_for(tmp_path,
                                                                                contents):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name in contents:
        (folder / name.rstrip("/")).mkdir() if name.endswith("/") else \
            (folder / name).write_text("x")
    result = CliRunner().invoke(main, [str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"{folder} holds no notebooks: looked for STUDENT.ipynb files" in result.output
    assert not (tmp_path / "o").exists()


def test_the_end_table_never_cuts_a_student_or_assignment_name_short(tmp_path, monkeypatch):
    """`José_Núñez~df32281c` shown as `José_Núñez~df3…` could be read as another student's
    row, `softmax_regre…` as another assignment: a long name folds onto the next line."""
    import io

    from rich.console import Console

    import grader.cli
    from grader.grading.results import Result
    from grader.scale.batch import BatchReport

    screen = io.StringIO()
    monkeypatch.setattr(grader.cli, "console", Console(file=screen, width=80))
    name = "José_Núñez~df32281c_with_a_long_tail_of_names"
    assignment = "softmax_regression_on_fashion_mnist"
    result = Result(name, assignment, f"{name}.ipynb", "d", "v", "c")
    grader.cli.print_summary(BatchReport(results=[result]), tmp_path)
    rows = [line.split("│") for line in screen.getvalue().splitlines() if line.startswith("│")]
    assert name in "".join(row[1].strip() for row in rows), screen.getvalue()
    assert assignment in "".join(row[2].strip() for row in rows), screen.getvalue()


def test_the_end_table_sorts_names_case_blind_and_reads_missing_work_and_problems_apart(
        tmp_path, monkeypatch):
    """bob before Carol before dave whatever their case; work not handed in says so (never
    0 / N); the notes come in one block after the table."""
    import io

    from rich.console import Console

    import grader.cli
    from grader.grading.results import Result, TestResult
    from grader.scale.batch import BatchReport

    screen = io.StringIO()
    monkeypatch.setattr(grader.cli, "console", Console(file=screen, width=120))
    passed = [TestResult("t", "e", 2, 2, True, "")]
    results = [Result("dave", "hw", "dave.ipynb", "d", "v", "c", tests=passed),
               Result("Carol", "hw", "Carol.ipynb", "d", "v", "c", missing="no notebook",
                      possible=2),
               Result("bob", "hw", "bob.ipynb", "d", "v", "c", tests=passed)]
    grader.cli.print_summary(BatchReport(results=results, problems=["one", "two"]), tmp_path)
    lines = screen.getvalue().splitlines()
    rows = [line for line in lines if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["bob", "Carol", "dave"]
    assert "not handed in" in rows[1] and "0 /" not in rows[1]
    block = lines.index("to read (2):")
    assert lines[block + 1:block + 3] == ["  - one", "  - two"]
    assert "not handed in 1" in screen.getvalue()


def test_a_roster_given_later_names_the_students_without_a_regrade(graded, tmp_path):
    _, submissions, out = graded
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                      "\"Liddell, Alice\",1,,alice,\n", encoding="utf-8")
    again = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--roster",
                                      str(roster), "--json"])
    summary = json.loads(again.stdout[again.stdout.index("{"):])
    assert summary["graded"] == [] and f"alice/{NOTEBOOK}" in summary["unchanged"]
    saved = json.loads((out / "alice" / NOTEBOOK / "results.json").read_text())
    assert saved["name"] == "Liddell, Alice"
    assert "Report for Liddell, Alice" in (out / "alice" / NOTEBOOK / "report.html").read_text()


def test_the_grade_command_leaves_by_its_exit_code_with_its_output_and_cleanup_done(tmp_path):
    """`grade` (cli.entry) leaves without tearing torch down: click's exit codes, the output
    whole on a pipe, and the exit handlers run (the staged copy of a lone notebook removed,
    the kernels' parent started early stopped)."""
    grade = [sys.executable, "-c", "from grader.cli import entry; entry()"]
    shown = subprocess.run([*grade, "--version"], capture_output=True, text=True)
    assert shown.returncode == 0 and "version" in shown.stdout
    notebook = tmp_path / "alice.ipynb"
    notebook.write_text(json.dumps(nbformat.v4.new_notebook()))
    (tmp_path / "tmp").mkdir()
    refused = subprocess.run([*grade, str(notebook), "--assignment", "no_such_assignment"],
                             capture_output=True, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert refused.returncode == 2, refused.stderr
    assert "no_such_assignment" in refused.stderr
    assert not list((tmp_path / "tmp").glob("grade-one-*"))


def test_profile_says_where_a_submissions_seconds_went(graded):
    _, submissions, out = graded
    forced = CliRunner().invoke(main, [str(submissions), "--out", str(out), "--force",
                                       "--only", "alice", "--json", "--profile"])
    assert forced.exit_code == 0, forced.output
    assert "Where the" in forced.stderr
    spans = json.loads(forced.stdout[forced.stdout.index("{"):])["profile"]
    phase = {span["name"]: span for span in spans}
    kernel = phase["the notebook and the probes, in the kernel"]
    timed = phase["the reference's timed steps, beside the kernel's"]
    checks = phase["the checks"]
    report = phase["the report and results.json"]
    assert phase["the reference: read back, or observed"]["start"] < kernel["start"]
    assert kernel["start"] < timed["start"] < kernel["start"] + kernel["seconds"]
    assert kernel["start"] + kernel["seconds"] <= checks["start"]
    assert checks["start"] + checks["seconds"] <= report["start"]
    assert "the grader's imports" in phase and "the class files" in spans[-1]["name"]
    assert all(span["seconds"] >= 0 for span in spans)
