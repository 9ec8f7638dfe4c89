"""Assignment settings: the shipped defaults load, and every bad file gets a clear error."""

from __future__ import annotations

import pytest

from grader.config import ConfigError, Settings, load_settings
from grader.course import BUNDLED
from grader.exercises import MODULES, all_test_names, configured, linreg


def write(tmp_path, text: str):
    path = tmp_path / "assignment.toml"
    path.write_text(text)
    return path


def test_the_shipped_defaults_load():
    settings = load_settings(BUNDLED.default_config, all_test_names())
    assert settings.seed == Settings().seed
    assert set(settings.hidden) <= all_test_names()


def hidden_tests(settings: Settings) -> set[str]:
    return {check.full_name for module in MODULES
            for check in configured(module, settings.points, settings.hidden) if check.hidden}


def test_hidden_tests_stay_hidden_when_the_file_names_none(tmp_path):
    """The exercises declare which tests are hidden: an assignment file that leaves `hidden`
    out must not make them public (their values would show in feedback and self-check)."""
    declared = hidden_tests(load_settings(write(tmp_path, "seed = 3"), all_test_names()))
    assert "linreg_training.recovers_the_true_weights" not in declared
    assert {"data_iter.handles_flat_labels", "softmax.softmax_gradient_matches"} <= declared
    more = load_settings(write(tmp_path, "hidden = ['softmax.rows_sum_to_one']"),
                         all_test_names())
    assert hidden_tests(more) == declared | {"softmax.rows_sum_to_one"}


@pytest.mark.parametrize("text, words", [
    ("seed = -1", "seed: Input should be greater than or equal to 0"),
    ("cell_timeout = 'soon'", "cell_timeout: Input should be a valid number"),
    ("bogus = 3", "bogus: Unexpected keyword argument"),
    ("device = 'tpu'", "device: Input should be 'auto', 'cpu' or 'cuda'"),
    ("[sandbox]\nmemory_mb = 1", "sandbox.memory_mb"),
    ("hidden = ['softmax.nope']", "unknown test name(s) softmax.nope"),
    ("[points]\n'quiz.typo' = 2", "unknown test name(s) quiz.typo"),
    ("seed = ", "cannot read"),
])
def test_a_bad_file_names_the_problem(tmp_path, text, words):
    with pytest.raises(ConfigError, match="assignment.toml") as caught:
        load_settings(write(tmp_path, text), all_test_names())
    assert words in str(caught.value)


def test_points_and_hidden_apply_to_the_checks(tmp_path):
    settings = load_settings(write(tmp_path, (
        "hidden = ['sgd.divides_by_batch_size']\n"
        "[points]\n'sgd.builds_no_autograd_graph' = 7\n")), all_test_names())
    checks = {c.full_name: c for c in configured(linreg, settings.points, settings.hidden)}
    assert checks["sgd.divides_by_batch_size"].hidden
    assert checks["sgd.builds_no_autograd_graph"].points == 7
    assert not checks["sgd.updates_parameters_in_place"].hidden


def test_changing_a_setting_changes_the_digest():
    assert Settings().digest() != Settings(softmax_lr=0.2).digest()
    assert Settings().digest() == Settings().digest()
