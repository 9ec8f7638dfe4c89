"""Grader side of linear regression from scratch: hidden inputs and checks.

Seeds 000 and 001 disagree on details (sgd zeroing the gradients or not, losses shaped
(n,) or (n, 1)); the notebook states one contract and these checks accept the equivalent
forms, saying so in the feedback.
"""

from __future__ import annotations

import torch

from grader.checks import (
    Context,
    Failed,
    Registry,
    describe,
    expect_close,
    expect_finite,
    expect_shape,
    expect_tensor,
    max_difference,
)
from grader.probing import ProbeStep
from grader.results import Curve

NOTEBOOK = "linear_networks"
PROBES = "grader.exercises.linreg_probes"
PROBE_STEPS = (ProbeStep(),)
CHECKS = Registry()
TRAINING_USES = ("data_iter", "squared_loss", "sgd")
PROBE_USES = {"linreg.train": TRAINING_USES}  # probes that call more than their own function
NO_GRAD = ("leaf Variable", "update the parameters inside `with torch.no_grad():` (or through "
           "param.data), so autograd does not record the step")
HINTS = {"sgd.": [NO_GRAD], "linreg.train": [NO_GRAD]}


def hidden_truth(generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """Weights and bias drawn from the grading seed, as large as the notebook's [2, -3.4] and
    4.2: a training result cannot be written down in advance, only trained."""
    w = (torch.rand(2, generator=generator) * 8 - 4).round(decimals=1)
    b = round(float(torch.rand(1, generator=generator)) * 10 - 5, 1)
    return w, b


def synthetic_data(w: torch.Tensor, b: float, n: int, generator: torch.Generator):
    X = torch.normal(0, 1, (n, len(w)), generator=generator)
    y = X @ w + b + torch.normal(0, 0.01, (n,), generator=generator)
    return X, y.reshape(-1, 1)


def describe_truth(w: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:g}" for v in w.tolist()) + "]"


def labelled_by_id(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An odd-sized dataset whose label i marks example i, so batches can be traced."""
    n = 97 + int(torch.randint(0, 31, (1,), generator=generator))
    return torch.randn(n, 3, generator=generator), \
        torch.arange(n, dtype=torch.float32).reshape(-1, 1)


def make_inputs(generator: torch.Generator, settings: dict, notebook: dict) -> dict:
    """Hidden inputs: an odd-sized dataset for data_iter, fresh values for the rest."""
    ids_features, ids_labels = labelled_by_id(generator)
    true_w, true_b = hidden_truth(generator)
    features, labels = synthetic_data(true_w, true_b, settings["linreg_examples"], generator)
    return {
        "data_iter.features": ids_features,
        "data_iter.labels": ids_labels,
        "data_iter.batch_size": 10,
        "squared_loss.y_hat": torch.randn(13, 1, generator=generator),
        "squared_loss.y": torch.randn(13, 1, generator=generator),
        "sgd.w": torch.randn(3, 1, generator=generator),
        "sgd.b": torch.randn(1, generator=generator),
        "sgd.grad_w": torch.randn(3, 1, generator=generator),
        "sgd.grad_b": torch.randn(1, generator=generator),
        "sgd.lr": 0.05,
        "sgd.batch_size": 8,
        "train.features": features,
        "train.labels": labels,
        "secret.true_w": true_w,
        "train.w0": torch.normal(0, 0.01, (2, 1), generator=generator),
        "train.lr": settings["linreg_lr"],
        "train.batch_size": settings["linreg_batch_size"],
        "train.epochs": settings["linreg_epochs"],
    }


# --- data_iter ---------------------------------------------------------------------------

def epoch_ids(batches, what: str) -> list[list[int]]:
    """The example ids in each batch, read back from the labels (label i marks example i)."""
    if not isinstance(batches, list) or not batches:
        raise Failed(f"{what} yielded no batches", "a non-empty sequence of (X, y)",
                     describe(batches))
    ids = []
    for number, batch in enumerate(batches):
        if not isinstance(batch, list) or len(batch) != 2:
            raise Failed(f"{what}: batch {number} is not a pair (X, y)", "(X, y)",
                         describe(batch))
        y = expect_tensor(batch[1], f"{what}: y of batch {number}")
        ids.append([int(v) for v in y.reshape(-1).tolist()])
    return ids


def got_epochs(ctx: Context) -> dict:
    try:
        return ctx.got("data_iter.epochs")
    except Failed as failure:
        if "out of bounds" in failure.message or "out of range" in failure.message:
            failure.message += (" — data_iter must take n from len(features), not from a "
                                "global such as num_examples")
        raise


def expect_pairs(batches: list, features: torch.Tensor) -> None:
    for number, (X, y) in enumerate(batches):
        X = expect_tensor(X, f"X of batch {number}")
        y = expect_tensor(y, f"y of batch {number}")
        expect_shape(X, [(len(X), features.shape[1])], f"X of batch {number}")
        expect_shape(y, [(len(X), 1)], f"y of batch {number}")


def expect_each_example_once(batches: list, n: int, what: str) -> None:
    seen = sorted(i for batch in epoch_ids(batches, what) for i in batch)
    if seen != list(range(n)):
        missing = sorted(set(range(n)) - set(seen))
        repeated = len(seen) - len(set(seen))
        raise Failed(
            f"{what} visited {len(seen)} examples of {n}: {len(missing)} missing, "
            f"{repeated} repeated; every example must appear exactly once",
            f"each of the {n} examples once", f"{len(seen)} examples, {len(missing)} missing",
        )


def expect_batch_sizes(batches: list, n: int, size: int) -> None:
    sizes = [len(ids) for ids in epoch_ids(batches, "epoch 1")]
    expected = [size] * (n // size) + ([n % size] if n % size else [])
    if sizes != expected:
        raise Failed(f"batch sizes for n={n}, batch_size={size} are wrong; all batches hold "
                     "batch_size examples but the last, which keeps the remainder",
                     str(expected), str(sizes))


def epoch_order(batches: list) -> list[int]:
    return [i for ids in epoch_ids(batches, "epoch") for i in ids]


def expect_shuffled(epochs: list[list], n: int) -> None:
    orders = [epoch_order(batches) for batches in epochs]
    if orders[0] == list(range(n)):
        raise Failed("the examples come in their original order: shuffle the indices",
                     "a random order", str(orders[0][:12]) + " …")
    if orders[0] == orders[1]:
        raise Failed("two epochs came in the same order: shuffle on every call",
                     "a fresh order each epoch", "the same order twice")


def expect_aligned(epochs: list[list], features: torch.Tensor) -> None:
    for batches in epochs:
        for number, (X, y) in enumerate(batches):
            ids = expect_tensor(y, "y").reshape(-1).long()
            X = expect_tensor(X, "X")
            if ids.min() < 0 or ids.max() >= len(features) or X.shape != features[ids].shape \
                    or not torch.equal(X, features[ids]):
                raise Failed(f"in batch {number} the rows of X do not belong to the labels y "
                             "yielded with them: index features and labels with the same "
                             "indices", "X == features[idx] and y == labels[idx]",
                             describe(X))


@CHECKS.add("data_iter", points=1)
def yields_feature_label_pairs(ctx: Context) -> str:
    expect_pairs(got_epochs(ctx)["column"][0], ctx.inputs["data_iter.features"])
    return "Every batch is a pair (X, y) of tensors shaped (b, d) and (b, 1)."


@CHECKS.add("data_iter", points=2)
def covers_every_example_once_per_epoch(ctx: Context) -> str:
    n = len(ctx.inputs["data_iter.features"])
    for epoch, batches in enumerate(got_epochs(ctx)["column"], start=1):
        expect_each_example_once(batches, n, f"epoch {epoch}")
    return f"Each epoch visits all {n} examples exactly once."


@CHECKS.add("data_iter", points=1)
def keeps_the_last_partial_batch(ctx: Context) -> str:
    n = len(ctx.inputs["data_iter.features"])
    size = int(ctx.inputs["data_iter.batch_size"])
    expect_batch_sizes(got_epochs(ctx)["column"][0], n, size)
    return f"Batches of {size} with the last {n % size} examples kept."


@CHECKS.add("data_iter", points=1)
def shuffles_every_epoch(ctx: Context) -> str:
    expect_shuffled(got_epochs(ctx)["column"], len(ctx.inputs["data_iter.features"]))
    return "The order is shuffled afresh every epoch."


@CHECKS.add("data_iter", points=1)
def keeps_features_and_labels_aligned(ctx: Context) -> str:
    expect_aligned(got_epochs(ctx)["column"], ctx.inputs["data_iter.features"])
    return "Every X row is yielded with its own label."


@CHECKS.add("data_iter", points=1)
def handles_flat_labels(ctx: Context) -> str:
    n = len(ctx.inputs["data_iter.features"])
    batches = got_epochs(ctx)["flat"]
    seen = sorted(i for ids in epoch_ids(batches, "the (n,)-label epoch") for i in ids)
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
    loss_output(ctx, "squared_loss.column")
    return "One loss per example."


@CHECKS.add("squared_loss", points=2)
def values_match_the_reference(ctx: Context) -> str:
    got = loss_output(ctx, "squared_loss.column")
    want = ctx.want("squared_loss.column")["out"].reshape(-1)
    expect_finite(got, "the losses")
    if torch.allclose(got, 2 * want, rtol=1e-5, atol=1e-7):
        raise Failed("the losses are twice the reference: halve the squared error",
                     describe(want), describe(got))
    expect_close(got, want, "the losses", rtol=1e-5, atol=1e-7)
    return "Losses match (y_hat - y)² / 2 within rtol 1e-5."


@CHECKS.add("squared_loss", points=1)
def accepts_targets_of_shape_n(ctx: Context) -> str:
    got = loss_output(ctx, "squared_loss.flat")
    expect_close(got, ctx.want("squared_loss.flat")["out"].reshape(-1),
                 "the losses for y of shape (n,)", rtol=1e-5, atol=1e-7)
    return "Targets of shape (n,) give the same losses."


@CHECKS.add("squared_loss", points=1)
def gradient_matches_the_reference(ctx: Context) -> str:
    grad = ctx.got("squared_loss.column")["grad"]
    if grad is None:
        raise Failed("no gradient reached y_hat: build the loss from y_hat with tensor "
                     "operations (no .detach(), .item() or numpy)", "a gradient", "None")
    expect_close(expect_tensor(grad, "the gradient"), ctx.want("squared_loss.column")["grad"],
                 "d(sum of losses)/d(y_hat)", rtol=1e-5, atol=1e-7)
    return "The gradient with respect to y_hat matches."


# --- sgd ---------------------------------------------------------------------------------

def sgd_observed(ctx: Context) -> dict:
    return ctx.got("sgd.step")


def sgd_expected(ctx: Context, scale: float) -> list[torch.Tensor]:
    lr = float(ctx.inputs["sgd.lr"])
    return [ctx.inputs[f"sgd.{n}"] - scale * lr * ctx.inputs[f"sgd.grad_{n}"] for n in "wb"]


@CHECKS.add("sgd", points=1)
def updates_parameters_in_place(ctx: Context) -> str:
    observed = sgd_observed(ctx)
    params = observed["params"]
    before = [ctx.inputs["sgd.w"], ctx.inputs["sgd.b"]]
    unchanged = all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    if unchanged and all(isinstance(g, torch.Tensor) and not g.any() for g in observed["grads"]):
        raise Failed("the parameters did not change and their gradients are zero: the step "
                     "used an already zeroed gradient; call param.grad.zero_() after the "
                     "update, not before", "updated parameters", "unchanged parameters")
    if unchanged:
        raise Failed("the parameters passed in did not change: `param = param - …` makes a new "
                     "tensor; update in place with `param -= …` inside torch.no_grad()",
                     "updated parameters", "unchanged parameters")
    return "The tensors passed in are updated in place."


@CHECKS.add("sgd", points=2)
def divides_by_batch_size(ctx: Context) -> str:
    params = [expect_tensor(p, "parameter") for p in sgd_observed(ctx)["params"]]
    undivided = sgd_expected(ctx, 1.0)
    if all(torch.allclose(p, u, rtol=1e-5, atol=1e-7) for p, u in zip(params, undivided,
                                                                      strict=True)):
        raise Failed("the step is batch_size times too large: divide the gradient by batch_size",
                     describe(sgd_expected(ctx, 1 / ctx.inputs["sgd.batch_size"])[0]),
                     describe(params[0]))
    expected = sgd_expected(ctx, 1 / int(ctx.inputs["sgd.batch_size"]))
    for name, got, want in zip("wb", params, expected, strict=True):
        expect_close(got, want, f"the updated {name}", rtol=1e-5, atol=1e-7)
    return "param - lr * grad / batch_size, as expected."


@CHECKS.add("sgd", points=1)
def builds_no_autograd_graph(ctx: Context) -> str:
    observed = sgd_observed(ctx)
    if not all(observed["leaf"]) or any(observed["graph"]):
        raise Failed("after sgd the parameters are no longer leaf tensors: the update was "
                     "recorded by autograd; wrap it in `with torch.no_grad():`",
                     "leaf tensors without grad_fn", "non-leaf tensors")
    if not all(observed["requires_grad"]):
        raise Failed("sgd turned off requires_grad on the parameters", "requires_grad=True",
                     "requires_grad=False")
    return "The parameters stay leaves that require gradients."


@CHECKS.add("sgd", points=1)
def resets_or_keeps_gradients(ctx: Context) -> str:
    grads = sgd_observed(ctx)["grads"]
    originals = [ctx.inputs["sgd.grad_w"], ctx.inputs["sgd.grad_b"]]
    if all(g is None for g in grads):
        ctx.accept("gradients set to None, as optimizer.zero_grad() does")
    elif all(isinstance(g, torch.Tensor) and not g.any() for g in grads):
        pass
    elif all(isinstance(g, torch.Tensor) and torch.equal(g, o)
             for g, o in zip(grads, originals, strict=True)):
        ctx.accept("gradients left for the caller to zero, as in seed 001's tutorial")
    else:
        raise Failed("sgd changed the gradients to something other than zero",
                     "zeroed (or untouched) gradients", describe(grads[0]))
    return "Gradients are handled correctly."


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
    limit = ref_losses[-1] * ctx.settings["linreg_loss_margin"]
    if not losses[-1] <= limit:
        raise Failed(f"after {len(losses)} epochs the loss is {losses[-1]:.3g}, above "
                     f"{limit:.3g} ({ctx.settings['linreg_loss_margin']:g}× the reference's "
                     f"{ref_losses[-1]:.3g})", f"≤ {limit:.3g}", f"{losses[-1]:.3g}")
    return f"Final loss {losses[-1]:.3g} (reference {ref_losses[-1]:.3g}, limit {limit:.3g})."


@CHECKS.add("linreg_training", points=2, uses=TRAINING_USES)
def recovers_the_true_weights(ctx: Context) -> str:
    _, error, _, ref_error = training_run(ctx)
    limit = max(ref_error * 2, ctx.settings["linreg_weight_tolerance"])
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
    return [Curve("linear regression loss", "epoch", "training loss", epochs, losses,
                  ref_losses)]
