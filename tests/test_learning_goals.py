"""Learning goals checked, not only values (issue 26): a training_loop whose gradients are
worked out by hand, with no autograd, loses the autograd mark; a show_images that returns
the 2-D grid of axes, where the docstring asks for them flattened, loses the return mark.
The reference functions keep every mark.

The self-check runs the same probes and checks in this process, so most cases are cheap;
one real grading (sandboxed kernel, the test course) shows the hand-written loop through
the whole pipeline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import code, grade_file, messages, outcomes, with_functions, write_notebook

from grader.authoring import course
from grader.cli import main
from grader.grading.reference import reference_functions
from grader.selfcheck import run_check

BUNDLED = course.BUNDLED.root
AUTOGRAD = "autograd_training.gradients_come_from_autograd"
FLATTENED = "show_images.returns_the_axes_flattened"

# Deep Learning with PyTorch, 5.4 (seed 002): the loop before autograd is introduced.
BY_HAND = code("""
    def training_loop(n_epochs, learning_rate, params, x, y):
        for epoch in range(1, n_epochs + 1):
            w, b = params
            t_p = model(x, w, b)
            dloss_dtp = 2 * (t_p - y) / t_p.size(0)
            grad = torch.stack([(dloss_dtp * x).sum(), dloss_dtp.sum()])
            params = params - learning_rate * grad
        return params
    """)
# autograd's other door: torch.autograd.grad, no backward(): still autograd.
AUTOGRAD_GRAD = code("""
    def training_loop(n_epochs, learning_rate, params, x, y):
        for _ in range(n_epochs):
            (grad,) = torch.autograd.grad(mse(model(x, *params), y), params)
            with torch.no_grad():
                params -= learning_rate * grad
        return params
    """)
# d2l's loop over axes.flat: drawn right, but the 2-D grid returned.
GRID_RETURNED = code("""
    def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
        _, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale,
                                                            num_rows * scale))
        for i, (ax, img) in enumerate(zip(axes.flat, imgs)):
            ax.imshow(img.numpy() if torch.is_tensor(img) else img)
            ax.axis("off")
            if titles:
                ax.set_title(titles[i])
        return axes
    """)
NOTHING_RETURNED = GRID_RETURNED.replace("    return axes\n", "")


@pytest.fixture(scope="module")
def bundled_copy(tmp_path_factory) -> Path:
    """A copy of the bundled course with its public tests written again by `grade assign`,
    so that the self-check plans the probes these checks read."""
    root = tmp_path_factory.mktemp("bundled") / "course"
    shutil.copytree(BUNDLED, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(course.ENV_VAR, str(root))
        run = CliRunner().invoke(main, ["--course", str(root), "assign", "--assignment",
                                        "preliminaries", "--assignment", "more_pytorch"])
    assert run.exit_code == 0, run.output
    return root


@pytest.fixture
def bundled(bundled_copy, monkeypatch) -> Path:
    monkeypatch.setenv(course.ENV_VAR, str(bundled_copy))
    return bundled_copy


def with_source(assignment: str, source: str) -> dict:
    """The reference's namespace with one function replaced by `source`."""
    namespace = dict(reference_functions(assignment, BUNDLED / "reference"))
    exec(compile(source, "<student>", "exec"), namespace)  # noqa: S102 - our own test code
    return namespace


def checked(name: str, functions: dict) -> dict:
    return {result.name: result for result in run_check(name, functions)}


@pytest.mark.parametrize("name, assignment", [("autograd_training", "preliminaries"),
                                              ("show_images", "more_pytorch")])
def test_the_reference_keeps_every_mark(bundled, name, assignment):
    results = checked(name, reference_functions(assignment, BUNDLED / "reference"))
    assert {AUTOGRAD, FLATTENED} & set(results)
    assert {n: r.message for n, r in results.items() if not r.passed} == {}


def test_gradients_by_hand_fail_only_the_autograd_goal(bundled):
    results = checked("autograd_training", with_source("preliminaries", BY_HAND))
    assert {n for n, r in results.items() if not r.passed} == {AUTOGRAD}
    message = results[AUTOGRAD].message
    assert "autograd" in message and "loss.backward()" in message and "params.grad" in message


def test_torch_autograd_grad_counts_as_autograd(bundled):
    results = checked("autograd_training", with_source("preliminaries", AUTOGRAD_GRAD))
    assert {n: r.message for n, r in results.items() if not r.passed} == {}


@pytest.mark.parametrize("source, words", [
    (GRID_RETURNED, ("2 × ", "flattened", "axes.flatten()")),
    (NOTHING_RETURNED, ("returned None", "axes.flatten()")),
], ids=["grid", "none"])
def test_show_images_must_return_the_axes_flattened(bundled, source, words):
    results = checked("show_images", with_source("more_pytorch", source))
    assert {n for n, r in results.items() if not r.passed} == {FLATTENED}
    assert [word for word in words if word not in results[FLATTENED].message] == []


@pytest.mark.parametrize("ending", ["list(axes.flatten())", "axes.flat"])
def test_a_flat_sequence_of_the_axes_is_accepted(bundled, ending):
    source = GRID_RETURNED.replace("return axes\n", f"return {ending}\n")
    results = checked("show_images", with_source("more_pytorch", source))
    assert results[FLATTENED].passed
    assert "Accepted" in results[FLATTENED].message


def test_a_graded_hand_written_loop_loses_the_autograd_mark(tmp_path, single_threaded_kernels):
    """Through the sandboxed kernel: only the goal fails, the values still pass."""
    path = write_notebook(with_functions({"training_loop": BY_HAND}), tmp_path / "hand.ipynb")
    result = grade_file(path)
    training = {n: passed for n, passed in outcomes(result).items()
                if n.startswith("autograd_training.")}
    assert training and {n for n, passed in training.items() if not passed} == {AUTOGRAD}
    assert "loss.backward()" in messages(result)[AUTOGRAD]
