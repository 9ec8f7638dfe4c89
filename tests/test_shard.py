"""Shards of a class (`grade --shard K/N`) and `grade collect`: the shards, collected, are
one unsharded run; outputs that cannot be compared are refused with the reason."""

from __future__ import annotations

import json
import shutil
from itertools import count

import pytest
from click.testing import CliRunner
from conftest import BLANK, NOTEBOOK, with_functions, write_notebook

from grader.cli import main
from grader.shard import KUBERNETES_INDEX, SLURM_INDEX, Shard, ShardError, parse_shard

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
    from grader.results import load_result, save_result

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
