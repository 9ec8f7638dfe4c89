"""Grader side of concise linear regression (seed 000): load_array, and linear regression
with nn.Sequential trained by train_linreg_concise. The net is built by the probes; its loss
and its error in w are computed here from the parameters it returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.exercise import Declaration, Step
from grader.exercises import concise_linreg_probes as probes
from grader.exercises._shared import (
    ID_BATCH_SIZE,
    LinearData,
    describe_truth,
    epoch_order,
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
    describe,
    expect_finite,
    expect_shape,
    expect_tensor,
    max_difference,
)

CHECKS = Registry()
INIT_STD = 0.01


@dataclass(frozen=True)
class Options(LinearData):
    """[concise_linreg]: the data, the training run, and how close it must get, as
    linreg's."""


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    ids_features, ids_labels = labelled_by_id(generator)
    true_w, true_b = hidden_truth(generator)
    features, labels = synthetic_data(true_w, true_b, options.examples, generator)
    return {
        "load_array.features": ids_features,
        "load_array.labels": ids_labels,
        "load_array.batch_size": ID_BATCH_SIZE,
        "concise_linreg.features": features,
        "concise_linreg.labels": labels,
        "secret.concise_linreg.true_w": true_w,
        "concise_linreg.query": torch.randn(16, 2, generator=generator),
        "concise_linreg.lr": options.lr,
        "concise_linreg.batch_size": options.batch_size,
        "concise_linreg.epochs": options.epochs,
    }


# --- load_array --------------------------------------------------------------------------

def loader_epochs(ctx: Context) -> dict:
    return ctx.got("load_array.epochs")


def train_epochs(ctx: Context) -> list:
    return expect_epochs(loader_epochs(ctx)["train"], 2, "load_array(…, is_train=True)")


def loader_data(ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
    return ctx.inputs["load_array.features"], ctx.inputs["load_array.labels"]


# The kernel only reports the type: it counts beside batches verified against the data.
@CHECKS.add("load_array", points=1, requires=("load_array.covers_every_example_once_per_epoch",
                                              "load_array.keeps_features_and_labels_aligned"))
def returns_a_data_loader(ctx: Context) -> str:
    if not loader_epochs(ctx)["is_loader"]:
        raise Failed("load_array must return a torch.utils.data.DataLoader over a "
                     "TensorDataset", "a DataLoader", "another iterable")
    return "A DataLoader."


@CHECKS.add("load_array", points=2)
def covers_every_example_once_per_epoch(ctx: Context) -> str:
    features, labels = loader_data(ctx)
    for number, batches in enumerate([*train_epochs(ctx), loader_epochs(ctx)["eval"]],
                                     start=1):
        expect_pairs(batches, features, labels)
        expect_each_example_once(batches, labels, f"epoch {number}")
    return f"Each epoch visits all {len(labels)} examples exactly once, as (X, y) pairs."


@CHECKS.add("load_array", points=1)
def keeps_the_last_partial_batch(ctx: Context) -> str:
    labels = ctx.inputs["load_array.labels"]
    size = int(ctx.inputs["load_array.batch_size"])
    expect_batch_sizes(train_epochs(ctx)[0], labels, size)
    return f"Batches of {size}, the last {len(labels) % size} examples kept (drop_last=False)."


@CHECKS.add("load_array", points=1)
def shuffles_when_training(ctx: Context) -> str:
    try:
        expect_shuffled(train_epochs(ctx), ctx.inputs["load_array.labels"])
    except Failed as failure:
        failure.message += " — with is_train=True the DataLoader must shuffle: shuffle=is_train"
        raise
    return "With is_train=True every epoch comes in a fresh order."


@CHECKS.add("load_array", points=1)
def keeps_the_order_for_evaluation(ctx: Context) -> str:
    labels = ctx.inputs["load_array.labels"]
    order = epoch_order(loader_epochs(ctx)["eval"], labels)
    if order != list(range(len(labels))):
        raise Failed("with is_train=False the examples must come in the order given, so that "
                     "evaluation is reproducible: pass shuffle=is_train", "the given order",
                     str(order[:12]) + " …")
    return "With is_train=False the order is kept."


@CHECKS.add("load_array", points=1, hidden=True)
def keeps_features_and_labels_aligned(ctx: Context) -> str:
    expect_aligned([*train_epochs(ctx), loader_epochs(ctx)["eval"]], *loader_data(ctx))
    return "Every X row comes with its own label."


# --- concise linear regression -----------------------------------------------------------

def linear_parameters(observed: dict, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of the returned nn.Sequential(nn.Linear(2, 1))."""
    params = observed["parameters"]
    if not isinstance(params, list):
        raise Failed(f"{what}: train_linreg_concise must return the net, an nn.Module",
                     "nn.Sequential(nn.Linear(2, 1))", describe(params))
    if not observed["sequential"] or len(params) != 2:
        raise Failed(f"{what}: the net must be nn.Sequential(nn.Linear(2, 1)), one weight and "
                     "one bias", "nn.Sequential(nn.Linear(2, 1))",
                     f"{len(params)} parameter tensors")
    weight, bias = (expect_tensor(p, f"{what} parameter") for p in params)
    expect_shape(weight, [(1, 2)], f"{what} weight")
    expect_shape(bias, [(1,)], f"{what} bias")
    return weight, bias


def fit(ctx: Context, observed: dict, what: str) -> tuple[float, float]:
    """The MSE on the training data and the error in w, computed here."""
    weight, bias = linear_parameters(observed, what)
    X, y = ctx.inputs["concise_linreg.features"], ctx.inputs["concise_linreg.labels"]
    mse = float(((X @ weight.reshape(2, 1).float() + bias.float() - y) ** 2).mean())
    return mse, max_difference(weight.reshape(-1), ctx.inputs["secret.concise_linreg.true_w"])


def initial_net(ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
    """The initial net's parameters, checked against what the net computed on the grader's
    query batch: the returned parameters are those of a linear map of its inputs."""
    observed = ctx.got("concise_linreg.initial")
    weight, bias = linear_parameters(observed, "the initial net")
    query = ctx.inputs["concise_linreg.query"]
    outputs = expect_tensor(observed["outputs"], "the initial net's outputs")
    expect_shape(outputs, [(len(query), 1)], "the initial net's outputs")
    expect_finite(outputs, "the initial net's outputs")
    if not torch.allclose(outputs.double(), query.double() @ weight.double().T + bias.double(),
                          rtol=1e-4, atol=1e-6):
        raise Failed("the net's outputs are not X @ weight.T + bias of its own parameters: "
                     "return nn.Sequential(nn.Linear(2, 1))", None, describe(outputs))
    if not bool(weight.any()):
        raise Failed("the initial weight is all zeros, so the net ignores its inputs: draw it "
                     f"with net[0].weight.data.normal_(0, {INIT_STD})", f"normal(0, {INIT_STD})",
                     describe(weight))
    return weight, bias


@CHECKS.add("concise_linreg_training", points=1)
def builds_one_linear_layer(ctx: Context) -> str:
    initial_net(ctx)
    return "nn.Sequential(nn.Linear(2, 1)): a (1, 2) weight and a (1,) bias."


@CHECKS.add("concise_linreg_training", points=1)
def initialises_small_weights_and_zero_bias(ctx: Context) -> str:
    weight, bias = initial_net(ctx)
    if bool(bias.any()):
        raise Failed("the initial bias is not 0: set it with net[0].bias.data.fill_(0)", "0",
                     describe(bias))
    largest, limit = float(weight.abs().max()), 5 * INIT_STD
    if not largest <= limit:
        raise Failed(f"an initial weight is {largest:.3g}, far outside normal(0, {INIT_STD}): "
                     f"draw them with net[0].weight.data.normal_(0, {INIT_STD})",
                     f"|w| ≤ {limit:g}", describe(weight))
    expect_normal_spread(ctx.got("concise_linreg.initial").get("draws"))
    return f"Weights drawn from normal(0, {INIT_STD}), bias 0."


def expect_normal_spread(draws) -> None:
    """The weights of many untrained nets have normal(0, INIT_STD)'s mean and spread: 200
    draws put the sample's within ~5% of INIT_STD, the bounds below at 6 standard errors."""
    draws = expect_tensor(draws, "the weights of untrained nets").double()
    mean, std = float(draws.mean()), float(draws.std())
    if not (abs(mean) <= 0.4 * INIT_STD and 0.7 * INIT_STD <= std <= 1.3 * INIT_STD):
        raise Failed(f"over {len(draws)} initial weights of fresh nets the mean is {mean:.3g} "
                     f"and the standard deviation {std:.3g}: draw them from normal(0, "
                     f"{INIT_STD}) with net[0].weight.data.normal_(0, {INIT_STD}) (mean first, "
                     "then std)", f"mean 0, std {INIT_STD}", f"mean {mean:.3g}, std {std:.3g}")


@CHECKS.add("concise_linreg_training", points=2)
def reaches_the_reference_mse(ctx: Context) -> str:
    mse, _ = fit(ctx, ctx.got("concise_linreg.trained"), "the trained net")
    reference, _ = fit(ctx, ctx.want("concise_linreg.trained"), "the reference net")
    limit = reference * ctx.options.loss_margin
    epochs = int(ctx.inputs["concise_linreg.epochs"])
    passes = ctx.got("concise_linreg.trained").get("passes")
    if not isinstance(passes, float) or int(passes) != epochs:
        taken = f"{passes:.3g}" if isinstance(passes, float) else describe(passes)
        raise Failed(f"with num_epochs={epochs} the loop took {taken} passes' worth of "
                     "batches from data_iter: run one pass per epoch, "
                     "for _ in range(num_epochs)", f"{epochs} passes", taken)
    if not mse <= 100 * limit:
        raise Failed(f"training diverged: after {epochs} epochs the MSE is {mse:.3g}; zero the "
                     "gradients before every backward() (trainer.zero_grad()), or they add up "
                     "from batch to batch", f"≤ {limit:.3g}", f"{mse:.3g}")
    if not mse <= limit:
        raise Failed(f"after {epochs} epochs the MSE is {mse:.3g}, above {limit:.3g} "
                     f"({ctx.options.loss_margin:g}× the reference's "
                     f"{reference:.3g})", f"≤ {limit:.3g}", f"{mse:.3g}")
    return f"MSE {mse:.3g} (reference {reference:.3g}, limit {limit:.3g})."


@CHECKS.add("concise_linreg_training", points=1)
def recovers_the_true_weights(ctx: Context) -> str:
    _, error = fit(ctx, ctx.got("concise_linreg.trained"), "the trained net")
    _, ref_error = fit(ctx, ctx.want("concise_linreg.trained"), "the reference net")
    limit = max(ref_error * 2, ctx.options.weight_tolerance)
    if not error <= limit:
        raise Failed(f"the trained weight is off the hidden data's true w "
                     f"{describe_truth(ctx.inputs['secret.concise_linreg.true_w'])} by "
                     f"{error:.3g}, more than {limit:.3g}", f"≤ {limit:.3g}", f"{error:.3g}")
    return f"|w - true_w| = {error:.2g} (reference {ref_error:.2g}, limit {limit:.2g})."


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),), options=Options,
                       make_inputs=make_inputs)
