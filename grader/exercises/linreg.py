"""Grader side of linear regression from scratch: hidden inputs and checks.

Seeds 000 and 001 disagree on details (sgd zeroing the gradients or not, losses shaped
(n,) or (n, 1)); the notebook states one contract, seed 000's (the book's: sgd zeroes, the
training loop does not), and these checks accept only the forms it states, saying so in the
feedback.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.exercise import Declaration, Step
from grader.exercises import linreg_probes as probes
from grader.exercises._shared import (
    ID_BATCH_SIZE,
    NO_GRAD,
    LinearData,
    describe_truth,
    epoch_ids,
    expect_aligned,
    expect_batch_sizes,
    expect_each_example_once,
    expect_epochs,
    expect_pairs,
    expect_shuffled,
    hidden_truth,
    labelled_by_id,
    synthetic_data,
)
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import (
    WrongForm,
    describe,
    expect_close,
    expect_close_naming,
    expect_finite,
    expect_gradient,
    expect_per_example,
    expect_shape,
    expect_tensor,
    max_difference,
    same_losses,
    same_value,
    small_values,
    told_with,
    with_counterexample,
)
from grader.grading.forbidden import Forbidden
from grader.grading.results import Curve
from grader.kernel.probe_helpers import SMALL_CASES
from grader.kernel.probing import functions_of

CHECKS = Registry()
# The probes on the training's own kind of input ((n, 1) labels, a step on leaf tensors); a
# squared_loss raising on flat labels, or sgd on a candidate case, loses that test only.
TRAINING_USES = ("data_iter.epochs", "squared_loss.column", "sgd.step")
USES = {"linreg.train": functions_of(TRAINING_USES)}  # probes calling more than one
HINTS = {"sgd.": [NO_GRAD], "linreg.train": [NO_GRAD]}
# The library calls that would do a from-scratch function's work (PrairieLearn's not_allowed).
FORBIDDEN = {
    "data_iter": Forbidden(("torch.utils.data.DataLoader", "torch.utils.data.TensorDataset",
                            "torch.utils.data.random_split"),
                           "Shuffle a list of indices and yield features[j], labels[j] for "
                           "each slice j of batch_size of them."),
    "squared_loss": Forbidden(("torch.nn.functional.mse_loss", "torch.nn.MSELoss"),
                              "Write (y_hat - y.reshape(y_hat.shape)) ** 2 / 2."),
    "sgd": Forbidden(("torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW",
                      "torch.optim.Optimizer"),
                     "Update each parameter yourself inside torch.no_grad(): "
                     "param -= lr * param.grad / batch_size, then param.grad.zero_()."),
}
# Candidate inputs from small to large, on which a failed value check shows the first where
# the student's function and the reference's disagree: examples of squared_loss, and
# (rows of w, batch_size) of sgd (batch_size 1 first: a step not divided by it agrees there).
LOSS_CASES = (1, 2, 3)
SGD_CASES = ((1, 1), (2, 2), (3, 4))
SGD_CASE_LR = 0.1
SGD_ARGUMENTS = ("w", "b", "w.grad", "b.grad", "lr", "batch_size")


@dataclass(frozen=True)
class Options(LinearData):
    """[linreg]: the data, the training run, and how close it must get."""


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    """Hidden inputs: an odd-sized dataset for data_iter, fresh values for the rest."""
    ids_features, ids_labels = labelled_by_id(generator)
    true_w, true_b = hidden_truth(generator)
    features, labels = synthetic_data(true_w, true_b, options.examples, generator)
    return {
        "data_iter.features": ids_features,
        "data_iter.labels": ids_labels,
        "data_iter.batch_size": ID_BATCH_SIZE,
        "squared_loss.y_hat": torch.randn(13, 1, generator=generator),
        "squared_loss.y": torch.randn(13, 1, generator=generator),
        "sgd.w": torch.randn(3, 1, generator=generator),
        "sgd.b": torch.randn(1, generator=generator),
        "sgd.grad_w": torch.randn(3, 1, generator=generator),
        "sgd.grad_b": torch.randn(1, generator=generator),
        "sgd.next_grad_w": torch.randn(3, 1, generator=generator),
        "sgd.next_grad_b": torch.randn(1, generator=generator),
        "sgd.lr": 0.05,
        "sgd.batch_size": 8,
        "train.features": features,
        "train.labels": labels,
        "secret.true_w": true_w,
        "train.w0": torch.normal(0, 0.01, (2, 1), generator=generator),
        "train.lr": options.lr,
        "train.batch_size": options.batch_size,
        "train.epochs": options.epochs,
        "squared_loss.cases": [[small_values(generator, n, 1), small_values(generator, n, 1)]
                               for n in LOSS_CASES],
        "sgd.cases": [[*(small_values(generator, *shape) for shape in
                         ((rows, 1), (1,), (rows, 1), (1,))), SGD_CASE_LR, batch_size]
                      for rows, batch_size in SGD_CASES],
    }


# --- data_iter ---------------------------------------------------------------------------

def got_epochs(ctx: Context) -> dict:
    try:
        return ctx.got("data_iter.epochs")
    except Failed as failure:
        if "out of bounds" in failure.message or "out of range" in failure.message:
            failure.message += (" — data_iter must take n from len(features), not from a "
                                "global such as num_examples")
        raise


def column_epochs(ctx: Context) -> list:
    return expect_epochs(got_epochs(ctx)["column"], 2, "data_iter")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def what_went_wrong(batches, labels: torch.Tensor, size: int) -> str | None:
    """How one epoch on `labels` with `size` went wrong, in words; None if it did not."""
    n = len(labels)
    try:
        ids = epoch_ids(batches, labels, "the epoch")
    except Failed as failure:
        return failure.message
    sizes, seen = [len(batch) for batch in ids], sorted(i for batch in ids for i in batch)
    expected = [size] * (n // size) + ([n % size] if n % size else [])
    if seen == list(range(n)) and sizes == expected:
        return None
    if n % size and sorted(sizes) == [size] * (n // size) and len(seen) == n - n % size:
        return f"the last batch of {plural(n % size, 'example')} was never yielded"
    missing, repeated = len(set(range(n)) - set(seen)), len(seen) - len(set(seen))
    return (f"the batches held {sizes} examples (expected {expected}), "
            f"{missing} missing and {repeated} repeated")


def smallest_failing_case(ctx: Context) -> str:
    """The first of the probes' small datasets on which data_iter goes wrong, in words."""
    small = got_epochs(ctx).get("small")
    labels = ctx.inputs["data_iter.labels"]
    if not isinstance(small, list) or len(small) != len(SMALL_CASES):
        return ""
    for (n, size), batches in zip(SMALL_CASES, small, strict=True):
        wrong = what_went_wrong(batches, labels[:n], size)
        if wrong:
            return f" — the smallest case: with {plural(n, 'example')} and batch_size {size}, " \
                f"{wrong}"
    return ""


def with_smallest_dataset(ctx: Context):
    """A data_iter failure, told with the smallest dataset it also fails on."""
    return told_with(lambda: smallest_failing_case(ctx))


def data_iter_data(ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
    return ctx.inputs["data_iter.features"], ctx.inputs["data_iter.labels"]


@CHECKS.add("data_iter", points=1)
def yields_feature_label_pairs(ctx: Context) -> str:
    expect_pairs(column_epochs(ctx)[0], *data_iter_data(ctx))
    return "Every batch is a pair (X, y) of tensors shaped (b, d) and (b, 1)."


@CHECKS.add("data_iter", points=2)
def covers_every_example_once_per_epoch(ctx: Context) -> str:
    labels = ctx.inputs["data_iter.labels"]
    for epoch, batches in enumerate(column_epochs(ctx), start=1):
        with with_smallest_dataset(ctx):
            expect_each_example_once(batches, labels, f"epoch {epoch}")
    small = smallest_failing_case(ctx)  # e.g. a range(0, n - 1, b) loses n = k·b + 1's last
    if small:
        raise Failed(f"data_iter covers the grader's dataset, not every small one{small}",
                     "every example once, whatever n and batch_size", "see the smallest case")
    return f"Each epoch visits all {len(labels)} examples exactly once, and every small dataset."


@CHECKS.add("data_iter", points=1)
def keeps_the_last_partial_batch(ctx: Context) -> str:
    labels = ctx.inputs["data_iter.labels"]
    size = int(ctx.inputs["data_iter.batch_size"])
    with with_smallest_dataset(ctx):
        expect_batch_sizes(column_epochs(ctx)[0], labels, size)
    return f"Batches of {size} with the last {len(labels) % size} examples kept."


@CHECKS.add("data_iter", points=1)
def shuffles_every_epoch(ctx: Context) -> str:
    expect_shuffled(column_epochs(ctx), ctx.inputs["data_iter.labels"])
    return "The order is shuffled afresh every epoch."


@CHECKS.add("data_iter", points=1)
def keeps_features_and_labels_aligned(ctx: Context) -> str:
    expect_aligned(column_epochs(ctx), *data_iter_data(ctx))
    return "Every X row is yielded with its own label."


@CHECKS.add("data_iter", points=1, hidden=True)
def handles_flat_labels(ctx: Context) -> str:
    labels = ctx.inputs["data_iter.labels"]
    n = len(labels)
    batches = got_epochs(ctx)["flat"]
    seen = sorted(i for ids in epoch_ids(batches, labels, "the (n,)-label epoch") for i in ids)
    for X, y in batches:
        expect_shape(expect_tensor(y, "y"), [(len(X),)], "y for labels of shape (n,)")
    if seen != list(range(n)):
        raise Failed("with labels of shape (n,) not every example came exactly once",
                     f"{n} examples", f"{len(seen)}")
    return "Labels of shape (n,) work too."


# --- squared_loss ------------------------------------------------------------------------

def loss_output(ctx: Context, key: str) -> torch.Tensor:
    """The student's losses, flattened, after the shape rules every squared_loss check shares."""
    out = expect_tensor(ctx.got(key)["out"], "squared_loss's result")
    n = len(ctx.inputs["squared_loss.y_hat"])
    if tuple(out.shape) == (n, n):
        raise Failed(f"squared_loss returned shape {(n, n)}: y was broadcast against y_hat; "
                     "reshape y to y_hat's shape before subtracting", f"({n}, 1)", str((n, n)))
    if out.dim() == 0:
        raise Failed("squared_loss returned a single number: return the per-example losses, "
                     "not their sum or mean", f"shape ({n}, 1)", describe(out))
    expect_shape(out, [(n, 1), (n,)], "squared_loss's result")
    if out.shape == (n,):
        ctx.accept("losses of shape (n,) instead of (n, 1)")
    return out.reshape(-1)


@CHECKS.add("squared_loss", points=1)
def returns_per_example_losses(ctx: Context) -> str:
    expect_per_example(loss_output(ctx, "squared_loss.column"),
                       ctx.want("squared_loss.column")["out"], "the losses")
    return "One loss per example."


LOSS_VALUES = "squared_loss.values_match_the_reference"
WRONG_VALUES = "the values are wrong"


def squared_loss_wrong_forms(y_hat: torch.Tensor, y: torch.Tensor) -> list[WrongForm]:
    """The usual wrong squared losses of (y_hat, y), one per example."""
    error = (y_hat - y.reshape(y_hat.shape)).reshape(-1)
    return [
        WrongForm("the losses are twice the reference: halve the squared error", error ** 2),
        WrongForm("the losses are the absolute errors: square the difference, "
                  "(y_hat - y) ** 2 / 2", error.abs() / 2),
        WrongForm("the losses are the absolute errors: square the difference, "
                  "(y_hat - y) ** 2 / 2", error.abs()),
        WrongForm("the difference is not squared: (y_hat - y) ** 2 / 2", error / 2),
        WrongForm("the losses are halved twice: (y_hat - y) ** 2 / 2", error ** 2 / 4),
    ]


@CHECKS.add("squared_loss", points=2)
def values_match_the_reference(ctx: Context) -> str:
    with with_counterexample(ctx, "squared_loss.cases", ("y_hat", "y"), same_losses(1e-5, 1e-7)):
        got = loss_output(ctx, "squared_loss.column")
        want = ctx.want("squared_loss.column")["out"].reshape(-1)
        expect_finite(got, "the losses")
        forms = squared_loss_wrong_forms(ctx.inputs["squared_loss.y_hat"],
                                         ctx.inputs["squared_loss.y"])
        expect_close_naming(got, want, "the losses", forms, rtol=1e-5, atol=1e-7)
    return "Losses match (y_hat - y)² / 2 within rtol 1e-5."


@CHECKS.add("squared_loss", points=1)
def accepts_targets_of_shape_n(ctx: Context) -> str:
    got = loss_output(ctx, "squared_loss.flat")
    with ctx.judged_after(LOSS_VALUES, WRONG_VALUES):
        expect_close(got, ctx.want("squared_loss.flat")["out"].reshape(-1),
                     "the losses for y of shape (n,)", rtol=1e-5, atol=1e-7)
    return "Targets of shape (n,) give the same losses."


@CHECKS.add("squared_loss", points=1, hidden=True)
def gradient_matches_the_reference(ctx: Context) -> str:
    grad = expect_gradient(ctx.got("squared_loss.column")["grad"], "reached y_hat",
                           "build the loss from y_hat with tensor operations (no .detach(), "
                           ".item() or numpy)")
    with ctx.judged_after(LOSS_VALUES, WRONG_VALUES):
        expect_close(expect_tensor(grad, "the gradient"),
                     ctx.want("squared_loss.column")["grad"], "d(sum of losses)/d(y_hat)",
                     rtol=1e-5, atol=1e-7)
    return "The gradient with respect to y_hat matches."


# --- sgd ---------------------------------------------------------------------------------

def sgd_observed(ctx: Context) -> dict:
    return ctx.got("sgd.step")


def sgd_inputs(ctx: Context, prefix: str) -> list[torch.Tensor]:
    """The inputs for w and b under `prefix`: sgd.w and sgd.b, sgd.grad_w and sgd.grad_b…"""
    return [ctx.inputs[f"sgd.{prefix}{name}"] for name in "wb"]


def sgd_expected(ctx: Context, scale: float) -> list[torch.Tensor]:
    lr = float(ctx.inputs["sgd.lr"])
    return [p - scale * lr * g for p, g in zip(sgd_inputs(ctx, ""), sgd_inputs(ctx, "grad_"),
                                               strict=True)]


def updated_parameters(ctx: Context) -> list[torch.Tensor]:
    params = sgd_observed(ctx)["params"]
    if not isinstance(params, list) or len(params) != 2:
        raise Failed("sgd.step did not return the two parameters", "[w, b]", describe(params))
    for param, before, name in zip(params, sgd_inputs(ctx, ""), "wb", strict=True):
        expect_shape(expect_tensor(param, f"the updated {name}"), [tuple(before.shape)],
                     f"the updated {name}")
    return params


def expect_step_against_gradient(params: list, before: list, grads: list) -> None:
    """The parameters moved by a positive multiple of their gradients, the same for all."""
    step = torch.cat([(b.double() - p.double()).reshape(-1) for p, b in zip(params, before,
                                                                             strict=True)])
    grad = torch.cat([g.double().reshape(-1) for g in grads])
    scale = float(step @ grad / (grad @ grad))
    if scale < 0 and torch.allclose(step, scale * grad, rtol=1e-3, atol=1e-6):
        raise Failed("your update moves the parameters up the gradient, which makes the loss "
                     "grow: subtract the step, param -= lr * param.grad / batch_size",
                     "param - lr * grad / batch_size", describe(params[0]))
    if not (scale > 0 and torch.allclose(step, scale * grad, rtol=1e-3, atol=1e-6)):
        raise Failed("the parameters changed, but not by a step against their gradients: "
                     "update each with param -= lr * param.grad / batch_size",
                     "param - lr * grad / batch_size", describe(params[0]))


def next_gradients(ctx: Context) -> list[torch.Tensor]:
    """.grad after the probe's next backward pass, whose own gradient is sgd.next_grad_*:
    present only while autograd still tracks the parameters as leaves."""
    observed = sgd_observed(ctx)
    after = observed["after"]
    if not isinstance(after, list) or len(after) != 2:
        raise Failed("sgd.step did not return the gradients of the next backward pass",
                     "two gradients", describe(after))
    if any(g is None for g in after):
        if not all(observed["requires_grad"]):
            raise Failed("sgd turned off requires_grad on the parameters: the next backward "
                         "pass cannot reach them", "requires_grad=True", "requires_grad=False")
        raise Failed("after sgd the parameters are no longer leaf tensors: the update was "
                     "recorded by autograd; wrap it in `with torch.no_grad():`",
                     "leaf tensors without grad_fn", "non-leaf tensors")
    for grad, want, name in zip(after, sgd_inputs(ctx, "next_grad_"), "wb", strict=True):
        expect_shape(expect_tensor(grad, f"the gradient of {name}"), [tuple(want.shape)],
                     f"the gradient of {name}")
    return after


def same_step(_, got, want: list) -> bool:
    """The parameters after one step on a candidate input agree with the reference's."""
    return isinstance(got, list) and len(got) == len(want) and all(
        same_value(g, w, rtol=1e-5, atol=1e-7) for g, w in zip(got, want, strict=True))


def with_smallest_step(ctx: Context):
    """An sgd failure, told with the smallest candidate step on which it also goes wrong."""
    return with_counterexample(ctx, "sgd.cases", SGD_ARGUMENTS, same_step)


@CHECKS.add("sgd", points=1)
def updates_parameters_in_place(ctx: Context) -> str:
    with with_smallest_step(ctx):
        params = updated_parameters(ctx)
        before = sgd_inputs(ctx, "")
        if all(torch.equal(p, b) for p, b in zip(params, before, strict=True)):
            grads = sgd_observed(ctx)["grads"]
            if all(isinstance(g, torch.Tensor) and not g.any() for g in grads):
                raise Failed("the parameters did not change and their gradients are zero: the "
                             "step used an already zeroed gradient; call param.grad.zero_() "
                             "after the update, not before", "updated parameters",
                             "unchanged parameters")
            raise Failed("the parameters passed in did not change: `param = param - …` makes "
                         "a new tensor; update in place with `param -= …` inside "
                         "torch.no_grad()", "updated parameters", "unchanged parameters")
        expect_step_against_gradient(params, before, sgd_inputs(ctx, "grad_"))
    return "The tensors passed in are updated in place."


def sgd_step_forms(ctx: Context) -> list[tuple[str | None, float]]:
    """The scales of lr * grad a step may take: the right one first, then the usual wrong
    ones with what to tell a student whose step takes them."""
    lr, size = float(ctx.inputs["sgd.lr"]), int(ctx.inputs["sgd.batch_size"])
    return [
        (None, 1 / size),
        ("the step is batch_size times too large: divide the gradient by batch_size", 1.0),
        ("the step is multiplied by batch_size instead of divided by it: "
         "lr * param.grad / batch_size", float(size)),
        ("the step leaves out the learning rate: lr * param.grad / batch_size", 1 / (lr * size)),
        ("the step divides by batch_size twice: lr * param.grad / batch_size", 1 / size ** 2),
    ]


def step_size_matches(params: list, before: list, expected: list) -> bool:
    """Each parameter moved by `expected` (its direction aside: updates_parameters_in_place
    judges that)."""
    return all(torch.allclose((p - b).abs(), (e - b).abs(), rtol=1e-5, atol=1e-7)
               for p, b, e in zip(params, before, expected, strict=True))


@CHECKS.add("sgd", points=2)
def divides_by_batch_size(ctx: Context) -> str:
    params = updated_parameters(ctx)
    before = sgd_inputs(ctx, "")
    (_, right), *wrong = sgd_step_forms(ctx)
    expected = sgd_expected(ctx, right)
    with with_smallest_step(ctx), ctx.judged_after("sgd.updates_parameters_in_place",
                                                   "the parameters did not move along their "
                                                   "gradients"):
        if step_size_matches(params, before, expected):
            return "A step of lr * grad / batch_size, as expected."
        for feedback, scale in wrong:
            if step_size_matches(params, before, sgd_expected(ctx, scale)):
                raise Failed(feedback, describe(expected[0]), describe(params[0]))
        for name, got, want in zip("wb", params, expected, strict=True):
            expect_close(got, want, f"the updated {name}", rtol=1e-5, atol=1e-7)
    return "param - lr * grad / batch_size, as expected."


@CHECKS.add("sgd", points=1)
def builds_no_autograd_graph(ctx: Context) -> str:
    left = [g if isinstance(g, torch.Tensor) else 0.0 for g in sgd_observed(ctx)["grads"]]
    for got, kept, fresh, name in zip(next_gradients(ctx), left, sgd_inputs(ctx, "next_grad_"),
                                      "wb", strict=True):
        expect_close(got, fresh + kept, f"the gradient of {name} after the next backward pass",
                     rtol=1e-6, atol=1e-7)
    return "The parameters stay leaves that require gradients."


@CHECKS.add("sgd", points=1)
def zeroes_the_gradients(ctx: Context) -> str:
    """sgd zeroes the gradients, as the handout's docstring asks: its training loop never
    does, so gradients left in .grad add up over the batches and the training diverges."""
    after = next_gradients(ctx)
    fresh, originals = sgd_inputs(ctx, "next_grad_"), sgd_inputs(ctx, "grad_")
    if all(torch.equal(a, f) for a, f in zip(after, fresh, strict=True)):
        if all(g is None for g in sgd_observed(ctx)["grads"]):
            ctx.accept("gradients set to None, as optimizer.zero_grad() does")
        return "Gradients are zeroed after the step."
    if all(torch.allclose(a, f + o, rtol=1e-6, atol=1e-7)
           for a, f, o in zip(after, fresh, originals, strict=True)):
        raise Failed("sgd left the gradients in .grad: the handout's training loop never "
                     "zeroes them, so they add up over the batches and the training diverges; "
                     "zero them in sgd with param.grad.zero_(), as the docstring says",
                     "zeroed gradients", "the step's gradients, kept")
    raise Failed("sgd changed the gradients to something other than zero: the next "
                 "backward pass added to what it left", "zeroed gradients",
                 describe(sgd_observed(ctx)["grads"][0]))


# --- training ----------------------------------------------------------------------------

def training_losses(ctx: Context, snapshots: list, what: str) -> tuple[list[float], float]:
    """Mean halved squared loss after each epoch and the final error in w, computed here."""
    features, labels = ctx.inputs["train.features"], ctx.inputs["train.labels"]
    losses = []
    w = None
    for snapshot in snapshots:
        w = expect_tensor(snapshot[0], f"{what} w").reshape(2, 1)
        b = expect_tensor(snapshot[1], f"{what} b").reshape(1)
        losses.append(float(((features @ w + b - labels) ** 2 / 2).mean()))
    error = max_difference(w.reshape(-1), ctx.inputs["secret.true_w"])
    return losses, error


def training_run(ctx: Context) -> tuple[list[float], float, list[float], float]:
    student = training_losses(ctx, ctx.got("linreg.train")["snapshots"], "trained")
    reference = training_losses(ctx, ctx.want("linreg.train")["snapshots"], "reference")
    return (*student, *reference)


@CHECKS.add("linreg_training", points=2, uses=TRAINING_USES)
def reaches_the_reference_loss(ctx: Context) -> str:
    losses, _, ref_losses, _ = training_run(ctx)
    limit = ref_losses[-1] * ctx.options.loss_margin
    if not losses[-1] <= limit:
        raise Failed(f"after {len(losses)} epochs the loss is {losses[-1]:.3g}, above "
                     f"{limit:.3g} ({ctx.options.loss_margin:g}× the reference's "
                     f"{ref_losses[-1]:.3g})", f"≤ {limit:.3g}", f"{losses[-1]:.3g}")
    return f"Final loss {losses[-1]:.3g} (reference {ref_losses[-1]:.3g}, limit {limit:.3g})."


@CHECKS.add("linreg_training", points=2, uses=TRAINING_USES)
def recovers_the_true_weights(ctx: Context) -> str:
    _, error, _, ref_error = training_run(ctx)
    limit = max(ref_error * 2, ctx.options.weight_tolerance)
    if not error <= limit:
        raise Failed(f"the trained w is off the hidden data's true w "
                     f"{describe_truth(ctx.inputs['secret.true_w'])} by {error:.3g}, more than "
                     f"{limit:.3g}", f"≤ {limit:.3g}", f"{error:.3g}")
    return f"|w - true_w| = {error:.2g} (reference {ref_error:.2g}, limit {limit:.2g})."


def curves(ctx: Context) -> list[Curve]:
    """The loss per epoch for the report's chart; empty when training gave nothing to plot."""
    try:
        losses, _, ref_losses, _ = training_run(ctx)
    except Failed:
        return []
    epochs = list(range(1, len(losses) + 1))
    return [Curve("linreg_training: training loss", "epoch", "training loss", epochs, losses,
                  ref_losses)]


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),), options=Options,
                       make_inputs=make_inputs, uses=USES, hints=HINTS, forbidden=FORBIDDEN,
                       curves=curves)
