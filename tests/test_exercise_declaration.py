"""An exercise is declared as one object whose parts refer to each other as Python objects
or as names checked once, when the exercises are discovered: a misspelt probe key, a step
key its table lacks, a missing `requires` target or an unknown bound stops `grade` before it
grades anything (exit 2), with a message naming the file and the name. A key read at run
time that no step planned is the grader's fault, never the student's failure; a module without
EXERCISE (module globals alone) is told what to write.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from test_plugins import ASSIGNMENT, EXERCISE, add_exercise

from grader.authoring import course
from grader.cli import main
from grader.grading.checks import Context, GraderFault, ProbeFailed

PLUGIN = textwrap.dedent(EXERCISE).lstrip()


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Path:
    """One course made by `grade init`, copied by each test."""
    root = tmp_path_factory.mktemp("declared")
    result = CliRunner().invoke(main, ["init", str(root / "course")])
    assert result.exit_code == 0, result.output
    return root / "course"


def grade_with(plugin: str, initialised: Path, root: Path,
               monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """`grade class` on a course whose MLP plug-in reads `plugin`: exit code and output."""
    shutil.copytree(initialised, root / "course")
    add_exercise(root / "course")
    (root / "course" / "plugins" / "mlp.py").write_text(plugin)
    (root / "class").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), root / "class" / "alice.ipynb")
    monkeypatch.chdir(root)
    monkeypatch.setenv(course.ENV_VAR, str(root / "course"))
    result = CliRunner().invoke(main, ["--course", "course", "class", "--out", "out",
                                       "--assignment", ASSIGNMENT])
    assert not (root / "out").exists() or not any((root / "out").iterdir())
    return result.exit_code, result.output


def changed(old: str, new: str) -> str:
    assert PLUGIN.count(old) == 1, old
    return PLUGIN.replace(old, new)


@pytest.mark.parametrize(("plugin", "named"), [
    (changed('ctx.got("relu.values"), "relu(X)")\n    expect_close',
             'ctx.got("relu.valuse"), "relu(X)")\n    expect_close'),
     ["mlp.py:", "'relu.valuse'", "did you mean 'relu.values'?"]),
    (changed("reads=(\"relu.values\",)", "reads=(\"relu.value\",)"),
     ["mlp.py:", "keeps_the_positive_values", "'relu.value'"]),
    (changed('uses=("relu.values",)', 'uses=("relu",)'),
     ["mlp.py:", "forward_matches_the_reference uses the probe key 'relu'",
      "'relu' is a function: name the probe keys it must answer, of relu.values"]),
    (changed("Step(probes.PROBES)", "Step(probes.PROBES, keys=(\"mlp.forwrd\",))"),
     ["mlp.py:", "'mlp.forwrd'", "PROBES lacks"]),
    (changed('requires=("mlp.forward_matches_the_reference",)',
             'requires=("mlp.forward_matches_reference",)'),
     ["mlp.py:", "'mlp.forward_matches_reference'", "mlp.forward_is_fast_enough"]),
    (changed("options.max_ratio)", "options.max_ration)"),
     ["mlp.py:", "'max_ration'", "not a field of its Options", "did you mean 'max_ratio'?"]),
    (changed('ctx.timings["mlp.timed"]', 'ctx.timings["mlp.time"]'),
     ["mlp.py:", "the timed step 'mlp.time'"]),
    (changed(", bound=lambda options: options.max_ratio", ""),
     ["mlp.py:", "the timed step of TIMED has no bound"]),
    (changed("Step(probes.PROBES)", "Step(dict(probes.PROBES))"),
     ["mlp.py:", "not a global of dl_course.mlp_probes"]),
    (changed("Step(probes.PROBES)", 'Step(probes.PROBES, part_of="mlp.timed")'),
     ["mlp.py:", "the step of PROBES is part_of 'mlp.timed'", "a part is timed"]),
    (changed("timed=True, bound", 'timed=True, part_of="mlp.time", bound'),
     ["mlp.py:", "part_of 'mlp.time', which is no timed step of its own"]),
], ids=["probe-key", "reads", "uses", "step-key", "requires", "bound", "timing", "no-bound",
        "table", "untimed-part", "part-of-nothing"])
def test_a_declaration_mistake_stops_grade_before_grading(plugin, named, initialised, tmp_path,
                                                          monkeypatch):
    code, output = grade_with(plugin, initialised, tmp_path, monkeypatch)
    assert code == 2, output
    flat = " ".join(output.split())  # click may wrap a long message
    for words in named:
        assert words in flat, output


@pytest.mark.parametrize(("instead", "found"), [("", "absent"), ('EXERCISE = "mlp"\n', "a str")],
                         ids=["globals-only", "a-name"])
def test_a_module_without_exercise_stops_grade_with_a_clear_message(instead, found, initialised,
                                                                    tmp_path, monkeypatch):
    """Module globals (CHECKS, PROBE_STEPS, ...) are no declaration: they are not read."""
    legacy = PLUGIN[:PLUGIN.index("EXERCISE = ")] + instead
    code, output = grade_with(legacy, initialised, tmp_path, monkeypatch)
    assert code == 2, output
    flat = " ".join(output.split())
    assert "mlp.py: an exercise module must declare its exercise as one object" in flat, output
    assert "EXERCISE = Declaration(" in flat and f"its EXERCISE is {found}" in flat, output


def test_a_key_no_step_planned_is_the_graders_fault_not_the_students():
    answer = {"quiz.q1": {"ok": True, "value": "A"}}  # read from the text: not a probe
    context = Context(answer, answer, {}, planned=frozenset({"relu.values"}))
    with pytest.raises(GraderFault, match="'relu.valuse'"):
        context.got("relu.valuse")
    with pytest.raises(ProbeFailed, match="could not run it"):  # planned, not observed
        context.got("relu.values")
    assert context.got("quiz.q1") == "A"
