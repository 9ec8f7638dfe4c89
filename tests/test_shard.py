"""Shards of a class (`grade --shard K/N`) and `grade collect`: the shards, collected, are
one unsharded run; outputs that cannot be compared are refused with the reason."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from itertools import count
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import (
    BLANK,
    NOTEBOOK,
    SOLUTION,
    UNUSUAL,
    renamed_copy,
    with_functions,
    write_notebook,
)

from grader.cli import main
from grader.grading.results import load_result, save_result
from grader.outputs.similarity import (
    FOLDER,
    SHOWN_CELLS,
    failure_marks,
    handout_digests,
    similar_pairs,
    write_fingerprints,
    write_similarity_csv,
)
from grader.scale.collect import CollectError, collect
from grader.scale.shard import KUBERNETES_INDEX, SLURM_INDEX, Shard, ShardError, parse_shard

SPLIT = 3


def names_in(shard: Shard, how_many: int) -> list[str]:
    """The first `how_many` student names of the form sN that fall into `shard`."""
    names = (f"s{number}" for number in count())
    return [name for name, _ in zip((n for n in names if shard.holds(n)), range(how_many),
                                    strict=False)]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A class graded whole, and as three shards each into its own folder; one real
    notebook (the blank student notebook), the others needing no kernel."""
    root = tmp_path_factory.mktemp("shards")
    submissions = root / "submissions"
    shards = [Shard(index, SPLIT) for index in range(1, SPLIT + 1)]
    blank, *others = names_in(shards[0], 2)
    write_notebook(with_functions({}, base=BLANK), submissions / f"{blank}.ipynb")
    for name in [*others, *names_in(shards[1], 2), *names_in(shards[2], 2)]:
        (submissions / f"{name}.ipynb").write_text("{ not a notebook")
    run = CliRunner().invoke
    whole = run(main, [str(submissions), "--out", str(root / "whole")])
    assert whole.exit_code == 0, whole.output
    for shard in shards:
        result = run(main, [str(submissions), "--out", str(root / f"shard{shard.index}"),
                            "--shard", str(shard)])
        assert result.exit_code == 0, result.output
    return root, submissions


def outs(root, *indices):
    return [str(root / f"shard{index}") for index in indices]


def test_shards_collected_are_one_unsharded_run(sharded, tmp_path):
    root, submissions = sharded
    result = CliRunner().invoke(main, ["collect", *outs(root, 1, 2, 3), "--out",
                                       str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    students = sorted(path.stem for path in submissions.glob("*.ipynb"))
    assert f"merged {len(students)} results from 3 outputs" in result.output
    merged = (tmp_path / "merged" / "grades.csv").read_text()
    assert merged == (root / "whole" / "grades.csv").read_text()
    gradebook = (tmp_path / "merged" / "gradebook.csv").read_text()
    assert gradebook == (root / "whole" / "gradebook.csv").read_text()
    similarity = (tmp_path / "merged" / "similarity.csv").read_text()
    assert similarity == (root / "whole" / "similarity.csv").read_text()
    assert sorted(line.split(",")[0] for line in merged.splitlines()[1:]) == students
    summary = (tmp_path / "merged" / "summary.html").read_text()
    assert all(student in summary for student in students)
    for student in students:
        assert (tmp_path / "merged" / student / NOTEBOOK / "report.html").is_file()


def test_each_shard_grades_only_its_students(sharded):
    root, submissions = sharded
    seen = []
    for index in range(1, SPLIT + 1):
        graded = sorted(p.parent.parent.name
                        for p in (root / f"shard{index}").glob("*/*/results.json"))
        assert graded and all(Shard(index, SPLIT).holds(student) for student in graded)
        seen += graded
    assert sorted(seen) == sorted(path.stem for path in submissions.glob("*.ipynb"))


def test_shards_partition_any_class():
    students = [f"student-{number}" for number in range(200)]
    owners = [[i for i in range(1, 8) if Shard(i, 7).holds(name)] for name in students]
    assert all(len(owner) == 1 for owner in owners)
    assert {owner[0] for owner in owners} == set(range(1, 8))


@pytest.mark.parametrize("text, environ, expected", [
    ("2/3", {}, Shard(2, 3)),
    ("1/1", {}, Shard(1, 1)),
    ("auto/4", {SLURM_INDEX: "4"}, Shard(4, 4)),
    ("auto/4", {KUBERNETES_INDEX: "0"}, Shard(1, 4)),
])
def test_shards_are_read_from_the_option_or_the_job_array(text, environ, expected):
    assert parse_shard(text, environ) == expected


@pytest.mark.parametrize("text, environ, words", [
    ("0/3", {}, "shard 0 of 3 does not exist"),
    ("4/3", {}, "shard 4 of 3 does not exist"),
    ("x", {}, "--shard takes K/N"),
    ("1/0", {}, "--shard takes K/N"),
    ("a/3", {}, "--shard takes K/N"),
    ("auto/3", {}, "neither $SLURM_ARRAY_TASK_ID nor $JOB_COMPLETION_INDEX is set"),
    ("auto/3", {SLURM_INDEX: "0"}, "--array=1-N"),
    ("auto/3", {KUBERNETES_INDEX: "3"}, "shard 4 of 3 does not exist"),
])
def test_a_shard_that_names_no_slice_is_refused(text, environ, words):
    with pytest.raises(ShardError) as error:
        parse_shard(text, environ)
    assert words in str(error.value)


def test_a_bad_shard_is_a_usage_error(sharded, tmp_path):
    _, submissions = sharded
    result = CliRunner().invoke(main, [str(submissions), "--out", str(tmp_path / "o"),
                                       "--shard", "4/3"])
    assert result.exit_code == 2
    assert "shard 4 of 3 does not exist" in result.output


def test_only_names_a_student_of_another_shard(sharded, tmp_path):
    _, submissions = sharded
    other = names_in(Shard(2, SPLIT), 1)[0]
    result = CliRunner().invoke(main, [str(submissions), "--out", str(tmp_path / "o"),
                                       "--shard", f"1/{SPLIT}", "--only", other])
    assert result.exit_code == 2
    assert f"not in shard 1/{SPLIT}: {other}" in result.output


def refusal(root, tmp_path, *folders) -> str:
    result = CliRunner().invoke(main, ["collect", *map(str, folders), "--out",
                                       str(tmp_path / "merged")])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "merged" / "grades.csv").exists()
    return result.output


def test_collect_refuses_a_missing_or_repeated_shard(sharded, tmp_path):
    root, _ = sharded
    assert f"shard(s) 3/{SPLIT} missing" in refusal(root, tmp_path, *outs(root, 1, 2))
    twice = tmp_path / "again"
    shutil.copytree(root / "shard2", twice)
    assert "the same shard is given twice" in refusal(root, tmp_path, *outs(root, 1, 2, 3),
                                                      twice)
    assert "holds no shard" in refusal(root, tmp_path, root / "whole", *outs(root, 1, 2, 3))


def test_collect_refuses_outputs_graded_differently(sharded, tmp_path):
    root, submissions = sharded
    other = tmp_path / "shard3-other-settings"
    result = CliRunner().invoke(main, [str(submissions), "--out", str(other), "--shard",
                                       f"3/{SPLIT}", "--timeout", "100"])
    assert result.exit_code == 0, result.output
    said = refusal(root, tmp_path, *outs(root, 1, 2), other)
    assert f"differ in their settings of {NOTEBOOK}" in said and str(other) in said
    older = tmp_path / "shard3-older-grader"
    shutil.copytree(root / "shard3", older)
    for path in older.glob("*/*/results.json"):
        saved = json.loads(path.read_text())
        path.write_text(json.dumps({**saved, "grader_version": "0.0.1"}))
    said = refusal(root, tmp_path, *outs(root, 1, 2), older)
    assert "differ in their grader version" in said and "0.0.1" in said


def test_collect_refuses_merging_into_an_input(sharded):
    root, _ = sharded
    result = CliRunner().invoke(main, ["collect", *outs(root, 1, 2, 3), "--out",
                                       str(root / "shard1")])
    assert result.exit_code == 2
    assert "is one of the outputs collected" in result.output


def test_collect_leaves_a_grader_fault_out_of_the_class_files(sharded, tmp_path):
    """A shard's result that is a grader fault (a kernel that never started) is no score:
    no row in grades.csv or gradebook.csv, and collect says which to grade again."""

    root, submissions = sharded
    copies = [tmp_path / f"shard{index}" for index in range(1, SPLIT + 1)]
    for index, copy in enumerate(copies, start=1):
        shutil.copytree(root / f"shard{index}", copy)
    faulted = next(copies[0].glob(f"*/{NOTEBOOK}/results.json"))
    result = load_result(faulted)
    result.fault = "the kernel could not start: Broken pipe"
    save_result(result, faulted)
    merged = tmp_path / "merged"
    run = CliRunner().invoke(main, ["collect", *map(str, copies), "--out", str(merged)])
    assert run.exit_code == 2 and f"{result.student}/{NOTEBOOK}" in run.output, run.output
    rows = (merged / "grades.csv").read_text().splitlines()[1:]
    assert result.student not in {line.split(",")[0] for line in rows}
    assert f"{result.student}," not in (merged / "gradebook.csv").read_text()


def keep_cells(out: Path, notebooks: dict[str, Path]) -> dict[str, Path]:
    """Keep in `out` the cells of the students it graded, as the batch keeps them."""
    graded = [path.parent.parent.name for path in out.glob(f"*/{NOTEBOOK}/results.json")]
    return write_fingerprints(out, NOTEBOOK, {student: notebooks[student] for student in graded},
                              handout_digests(SOLUTION))


@pytest.fixture(scope="module")
def copying(sharded, tmp_path_factory):
    """The sharded class's outputs, copied, as if a student of shard 1 had handed in work
    of their own and one of shard 2 a renamed copy of it: each output keeps its students'
    cells, and the whole class's similarity.csv is written as the batch writes it. No
    grading: the kept cells are all that pairing reads."""
    root, submissions = sharded
    copy = tmp_path_factory.mktemp("copying")
    notebooks = {path.stem: path for path in submissions.glob("*.ipynb")}
    first, second = names_in(Shard(1, SPLIT), 2)[1], names_in(Shard(2, SPLIT), 1)[0]
    notebooks[first] = write_notebook(with_functions(UNUSUAL, base=BLANK),
                                      copy / "work" / f"{first}.ipynb")
    notebooks[second] = write_notebook(renamed_copy(with_functions(UNUSUAL, base=BLANK)),
                                       copy / "work" / f"{second}.ipynb")
    for name in ("whole", *(f"shard{index}" for index in range(1, SPLIT + 1))):
        shutil.copytree(root / name, copy / name)
        for student in (first, second):
            passed_all(copy / name, student)
        keep_cells(copy / name, notebooks)
    failures = {path.parent.parent.name: failure_marks(load_result(path))
                for path in (copy / "whole").glob(f"*/{NOTEBOOK}/results.json")}
    write_similarity_csv(similar_pairs(NOTEBOOK, keep_cells(copy / "whole", notebooks),
                                       failures=failures),
                         copy / "whole" / "similarity.csv")
    return copy, tuple(sorted((first, second)))


def passed_all(out: Path, student: str) -> None:
    """The student's result in `out`, if it holds one, passing every test: as graded, it
    failed each test with a message naming its unreadable file, rare failures of its own
    that would outweigh what the pair shares."""
    path = out / student / NOTEBOOK / "results.json"
    if path.exists():
        result = load_result(path)
        result.tests = [replace(test, passed=True, points=test.max_points) for test in result.tests]
        save_result(result, path)


def test_students_copying_across_shards_are_paired_as_in_one_run(copying, tmp_path):
    copy, pair = copying
    merged = tmp_path / "merged"
    run = CliRunner().invoke(main, ["collect", *outs(copy, 1, 2, 3), "--out", str(merged)])
    assert run.exit_code == 0, run.output
    similarity = (merged / "similarity.csv").read_text()
    assert similarity == (copy / "whole" / "similarity.csv").read_text()
    rows = list(csv.DictReader(similarity.splitlines()))
    assert [(row["student"], row["other_student"]) for row in rows] == [pair]
    summary = BeautifulSoup((merged / "summary.html").read_text(), "html.parser")
    shown = summary.select_one(f'.similarity details.pair[data-students="{" ".join(pair)}"]')
    assert shown is not None
    assert len(shown.select(".side-by-side")) == min(int(rows[0]["shared_cells"]), SHOWN_CELLS)
    assert "# my own work" in shown.get_text()
    assert {path.stem for path in (merged / FOLDER / NOTEBOOK).iterdir()} >= set(pair)
    again = tmp_path / "again"  # the merged folder is an output like any other
    assert collect([merged], again) and (again / "similarity.csv").read_text() == similarity


def test_collect_says_which_cells_it_could_not_read_and_pairs_the_rest(copying, tmp_path):
    """An output graded before outputs kept cells, a student's cells damaged: each is a
    note; the pair across the other outputs is still found."""
    copy, pair = copying
    copies = [tmp_path / f"shard{index}" for index in range(1, SPLIT + 1)]
    for index, out in enumerate(copies, start=1):
        shutil.copytree(copy / f"shard{index}", out)
    shutil.rmtree(copies[2] / FOLDER)
    damaged = names_in(Shard(2, SPLIT), 2)[1]
    (copies[1] / FOLDER / NOTEBOOK / f"{damaged}.json").write_text("{")
    notes: list[str] = []
    collect(copies, tmp_path / "merged", notes)
    unkept, unread = notes
    assert f"{copies[2]} keeps no similarity fingerprints of {NOTEBOOK}" in unkept
    assert "its 2 student(s) are compared with no one" in unkept
    assert f"similarity fingerprints of {damaged} in {NOTEBOOK}" in unread
    assert not (tmp_path / "merged" / FOLDER / NOTEBOOK / f"{damaged}.json").exists()
    rows = list(csv.DictReader((tmp_path / "merged" / "similarity.csv").open()))
    assert [(row["student"], row["other_student"]) for row in rows] == [pair]


def test_collect_refuses_a_result_in_another_students_folder(sharded, tmp_path):
    root, _ = sharded
    copies = [tmp_path / f"shard{index}" for index in range(1, SPLIT + 1)]
    for index, out in enumerate(copies, start=1):
        shutil.copytree(root / f"shard{index}", out)
    moved = next(copies[0].glob(f"*/{NOTEBOOK}/results.json"))
    saved = json.loads(moved.read_text())
    moved.write_text(json.dumps({**saved, "student": "../../elsewhere"}))
    with pytest.raises(CollectError, match="not of its folder's"):
        collect(copies, tmp_path / "merged")
