"""Assignment settings: the shipped ones load, each exercise's table is checked by its own
model, and every bad file gets a clear error."""

from __future__ import annotations

import pytest

from grader.authoring.config import ConfigError, Settings, load_assignments, load_settings
from grader.authoring.course import BUNDLED
from grader.authoring.exercise import lookup

BASE = 'exercises = ["linreg", "softmax"]\n'


def write(tmp_path, text: str, name: str = "assignment"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_the_shipped_assignments_load():
    loaded = load_assignments(BUNDLED.assignment_files())
    assert [s.notebook for s in loaded] == ["linear_regression", "more_pytorch",
                                            "preliminaries", "softmax_regression"]
    for settings in loaded:
        names = {name for e in lookup(settings.exercises) for name in e.test_names}
        assert set(settings.hidden) <= names
        assert set(settings.options) == set(settings.exercises)


def hidden_tests(settings: Settings) -> set[str]:
    return {check.full_name for exercise in lookup(settings.exercises)
            for check in exercise.configured(settings.options[exercise.name], settings.points,
                                             settings.hidden) if check.hidden}


def test_hidden_tests_stay_hidden_when_the_file_names_none(tmp_path):
    """The exercises declare which tests are hidden: an assignment file that leaves `hidden`
    out must not make them public (their values would show in feedback and self-check)."""
    declared = hidden_tests(load_settings(write(tmp_path, BASE + "seed = 3")))
    assert "linreg_training.recovers_the_true_weights" not in declared
    assert {"data_iter.handles_flat_labels", "softmax.softmax_gradient_matches"} <= declared
    more = load_settings(write(tmp_path, BASE + "hidden = ['softmax.rows_sum_to_one']"))
    assert hidden_tests(more) == declared | {"softmax.rows_sum_to_one"}


def test_an_exercise_table_is_read_by_the_exercise_and_only_changes_it(tmp_path):
    settings = load_settings(write(tmp_path, BASE + "[softmax]\nlr = 0.2\n", "hw"))
    assert settings.notebook == "hw"  # the file's name, unless `notebook` says otherwise
    assert settings.options["softmax"].lr == 0.2
    assert settings.options["linreg"].lr == 0.03
    assert settings.digest() != load_settings(write(tmp_path, BASE, "hw")).digest()


@pytest.mark.parametrize("text, words", [
    ("seed = -1", "seed: Input should be greater than or equal to 0"),
    ("cell_timeout = 'soon'", "cell_timeout: Input should be a valid number"),
    ("bogus = 3", "bogus: Unexpected keyword argument"),
    ("device = 'tpu'", "device: Input should be 'auto', 'cpu' or 'cuda'"),
    ("[sandbox]\nmemory_mb = 1", "sandbox.memory_mb"),
    ("hidden = ['softmax.nope']", "unknown test name(s) softmax.nope"),
    ("[points]\n'quiz.typo' = 2", "unknown test name(s) quiz.typo"),
    ("[softmax]\nlr = -1", "softmax.lr: Input should be greater than 0"),
    ("[softmax]\nlearning_rate = 0.1", "softmax.learning_rate: not a setting of softmax"),
    ("softmax = 3", "softmax: must be a table"),
    ("[quiz]\nx = 1", "quiz: Unexpected keyword argument"),  # not an exercise listed
    ("seed = ", "cannot read"),
])
def test_a_bad_file_names_the_problem(tmp_path, text, words):
    with pytest.raises(ConfigError, match="assignment.toml") as caught:
        load_settings(write(tmp_path, BASE + text))
    assert words in str(caught.value)


@pytest.mark.parametrize("text, words", [
    ("seed = 1", "exercises: a list of exercise names is required"),
    ("exercises = ['linreg', 'mlp']", "no exercise named mlp; known exercises: autograd"),
    ("exercises = []", "exercises: Tuple should have at least 1 item"),
])
def test_the_exercises_must_be_named_and_known(tmp_path, text, words):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert words in str(caught.value)


def test_asking_for_an_assignment_the_course_lacks_names_those_it_has():
    with pytest.raises(ConfigError, match="no assignment named mlp; the course has: "
                                          "linear_regression, more_pytorch"):
        load_assignments(BUNDLED.assignment_files(), ("mlp",))
    with pytest.raises(ConfigError, match="holds no settings file"):
        load_assignments([])


def test_points_and_hidden_apply_to_the_checks(tmp_path):
    settings = load_settings(write(tmp_path, BASE + (
        "hidden = ['sgd.divides_by_batch_size']\n"
        "[points]\n'sgd.builds_no_autograd_graph' = 7\n")))
    [linreg] = lookup(("linreg",))
    checks = {c.full_name: c for c in linreg.configured(settings.options["linreg"],
                                                         settings.points, settings.hidden)}
    assert checks["sgd.divides_by_batch_size"].hidden
    assert checks["sgd.builds_no_autograd_graph"].points == 7
    assert not checks["sgd.updates_parameters_in_place"].hidden
