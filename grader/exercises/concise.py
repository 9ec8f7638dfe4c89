"""Grader side of the concise implementations (seeds 000, 002 and 004): load_array, linear
regression with nn.Sequential, init_weights for net.apply, evaluate_accuracy and one
Fashion-MNIST epoch of train_epoch. The modules are built by the probes; losses and the
test accuracy are computed here from the parameters they return.
"""

from __future__ import annotations

import torch

from grader.checks import (
    Context,
    Failed,
    Registry,
    describe,
    expect_finite,
    expect_shape,
    expect_tensor,
    max_difference,
)
from grader.exercises.linreg import (
    ID_BATCH_SIZE,
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
from grader.exercises.softmax import (
    BLANK_PIXELS,
    as_number,
    expect_started_from,
    expect_test_accuracy,
)
from grader.kernel.data import as_float
from grader.kernel.probing import ProbeStep

NOTEBOOK = "linear_networks"
PROBES = "grader.exercises.concise_probes"
PROBE_STEPS = (ProbeStep(), ProbeStep("EPOCH_STEPS", long=True))
CHECKS = Registry()
HINTS = {"init_weights.": [
    ("has no attribute 'weight'", "net.apply calls init_weights on every module, nn.Flatten "
                                  "included: initialise only nn.Linear modules "
                                  "(isinstance(m, nn.Linear))"),
]}
INIT_STD = 0.01
EVAL_BATCH = 64


def make_inputs(generator: torch.Generator, settings: dict, notebook: dict) -> dict:
    ids_features, ids_labels = labelled_by_id(generator)
    true_w, true_b = hidden_truth(generator)
    features, labels = synthetic_data(true_w, true_b, settings["linreg_examples"], generator)
    return {
        "load_array.features": ids_features,
        "load_array.labels": ids_labels,
        "load_array.batch_size": ID_BATCH_SIZE,
        "concise_linreg.features": features,
        "concise_linreg.labels": labels,
        "secret.concise_linreg.true_w": true_w,
        "concise_linreg.query": torch.randn(16, 2, generator=generator),
        "concise_linreg.lr": settings["linreg_lr"],
        "concise_linreg.batch_size": settings["linreg_batch_size"],
        "concise_linreg.epochs": settings["linreg_epochs"],
        **init_inputs(generator),
        **evaluation_inputs(generator),
        "concise_softmax.W0": torch.normal(0, INIT_STD, (10, 784), generator=generator),
        "concise_softmax.blank_pixels": torch.tensor(BLANK_PIXELS),
        "concise_softmax.order_seed": int(torch.randint(0, 2**31 - 1, (1,),
                                                        generator=generator)),
        "concise_softmax.batch_size": settings["softmax_batch_size"],
        "concise_softmax.lr": settings["softmax_lr"],
    }


def init_inputs(generator: torch.Generator) -> dict:
    """A Linear of a drawn size holding values like nn.Linear's default, and a LayerNorm's
    parameters off their defaults: what init_weights must redraw, or keep, is the grader's."""
    out_features = int(torch.randint(8, 13, (1,), generator=generator))
    in_features = int(torch.randint(600, 1000, (1,), generator=generator))
    bound = in_features ** -0.5
    return {
        "init_weights.weight": (torch.rand(out_features, in_features, generator=generator) * 2
                                - 1) * bound,
        "init_weights.bias": (torch.rand(out_features, generator=generator) * 2 - 1) * bound,
        "init_weights.norm_weight": 1 + 0.1 * torch.randn(out_features, generator=generator),
        "init_weights.norm_bias": 0.1 * torch.randn(out_features, generator=generator),
    }


def evaluation_inputs(generator: torch.Generator) -> dict:
    """Images (uint8, as Fashion-MNIST's), weights, and labels (prediction + offset) % 10.

    The probe's net moves its predictions by one class while autograd records and by two in
    training mode, so an example is a hit only in the modes whose shift is its offset. The
    smaller last batch holds offset 0 only, and offsets are drawn again until every mode's
    accuracy, counted or averaged per batch, is its own: the value returned tells the grader
    how the net ran."""
    n = 3 * EVAL_BATCH + int(torch.randint(1, EVAL_BATCH - 5, (1,), generator=generator))
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    W = torch.randn(10, 784, generator=generator) * 0.05
    b = torch.zeros(10)
    predicted = predictions(images, W, b)
    for _ in range(1_000):
        offsets = torch.randint(0, 3, (n,), generator=generator)
        offsets[n // EVAL_BATCH * EVAL_BATCH:] = 0
        y = (predicted + offsets) % 10
        values = sorted(mode_accuracies(predicted, y).values())
        if all(high - low > 1e-6 for low, high in zip(values, values[1:], strict=False)):
            return {"evaluate_accuracy.images": images, "evaluate_accuracy.W": W,
                    "evaluate_accuracy.b": b, "evaluate_accuracy.y": y,
                    "evaluate_accuracy.batch_size": EVAL_BATCH}
    raise RuntimeError("no labels found whose accuracies tell the net's modes apart")


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
    return f"Weights drawn near 0 (std {INIT_STD}), bias 0."


@CHECKS.add("concise_linreg_training", points=2)
def reaches_the_reference_mse(ctx: Context) -> str:
    mse, _ = fit(ctx, ctx.got("concise_linreg.trained"), "the trained net")
    reference, _ = fit(ctx, ctx.want("concise_linreg.trained"), "the reference net")
    limit = reference * ctx.settings["linreg_loss_margin"]
    epochs = int(ctx.inputs["concise_linreg.epochs"])
    if not mse <= 100 * limit:
        raise Failed(f"training diverged: after {epochs} epochs the MSE is {mse:.3g}; zero the "
                     "gradients before every backward() (trainer.zero_grad()), or they add up "
                     "from batch to batch", f"≤ {limit:.3g}", f"{mse:.3g}")
    if not mse <= limit:
        raise Failed(f"after {epochs} epochs the MSE is {mse:.3g}, above {limit:.3g} "
                     f"({ctx.settings['linreg_loss_margin']:g}× the reference's "
                     f"{reference:.3g})", f"≤ {limit:.3g}", f"{mse:.3g}")
    return f"MSE {mse:.3g} (reference {reference:.3g}, limit {limit:.3g})."


@CHECKS.add("concise_linreg_training", points=1)
def recovers_the_true_weights(ctx: Context) -> str:
    _, error = fit(ctx, ctx.got("concise_linreg.trained"), "the trained net")
    _, ref_error = fit(ctx, ctx.want("concise_linreg.trained"), "the reference net")
    limit = max(ref_error * 2, ctx.settings["linreg_weight_tolerance"])
    if not error <= limit:
        raise Failed(f"the trained weight is off the hidden data's true w "
                     f"{describe_truth(ctx.inputs['secret.concise_linreg.true_w'])} by "
                     f"{error:.3g}, more than {limit:.3g}", f"≤ {limit:.3g}", f"{error:.3g}")
    return f"|w - true_w| = {error:.2g} (reference {ref_error:.2g}, limit {limit:.2g})."


# --- init_weights ------------------------------------------------------------------------

def applied(ctx: Context) -> dict:
    return ctx.got("init_weights.applied")


@CHECKS.add("init_weights", points=2)
def draws_linear_weights_from_normal(ctx: Context) -> str:
    before = ctx.inputs["init_weights.weight"]
    weight = expect_tensor(applied(ctx)["weight"], "the Linear's weight")
    expect_shape(weight, [tuple(before.shape)], "the Linear's weight")
    expect_finite(weight, "the Linear's weight")
    if torch.equal(weight, before):
        raise Failed("the Linear's weight still holds the values it had: redraw the weight of "
                     f"each nn.Linear with nn.init.normal_(m.weight, std={INIT_STD})",
                     f"mean 0, std {INIT_STD}", describe(weight))
    mean, std = float(weight.mean()), float(weight.std())
    tolerance = ctx.settings["init_std_tolerance"]
    if abs(std / INIT_STD - 1) <= tolerance and abs(mean) <= tolerance * INIT_STD:
        return f"Mean {mean:.2g}, standard deviation {std:.3g}: normal(0, {INIT_STD})."
    got = f"mean {mean:.3g}, std {std:.3g}"
    if abs(std - 1) <= tolerance:
        raise Failed(f"the weights have standard deviation 1, not {INIT_STD}: "
                     f"nn.init.normal_(m.weight, {INIT_STD}) sets the mean and keeps std 1; "
                     f"pass std={INIT_STD} by name", f"mean 0, std {INIT_STD}", got)
    raise Failed(f"the weights have {got}; init_weights must draw them from normal(0, "
                 f"{INIT_STD}): nn.init.normal_(m.weight, std={INIT_STD})",
                 f"mean 0, std {INIT_STD}", got)


@CHECKS.add("init_weights", points=1)
def leaves_the_bias_and_other_modules_alone(ctx: Context) -> str:
    observed = applied(ctx)
    bias, before = expect_tensor(observed["bias"], "the Linear's bias"), \
        ctx.inputs["init_weights.bias"]
    if bias.shape != before.shape or not torch.equal(bias, before):
        raise Failed("init_weights changed the Linear's bias: redraw only its weight",
                     describe(before), describe(bias))
    norm = observed["norm"]
    kept = [ctx.inputs["init_weights.norm_weight"], ctx.inputs["init_weights.norm_bias"]]
    if not isinstance(norm, list) or len(norm) != 2 or not all(
            isinstance(p, torch.Tensor) and p.shape == k.shape and torch.equal(p, k)
            for p, k in zip(norm, kept, strict=True)):
        raise Failed("init_weights changed a LayerNorm: initialise only nn.Linear modules "
                     "(isinstance(m, nn.Linear)), not every module with a weight",
                     "the LayerNorm's weight and bias as they were", describe(norm))
    return "The bias and the other modules are left as they were."


# --- evaluate_accuracy -------------------------------------------------------------------
# The probe's net moves its predictions by RECORDING classes while autograd records and by
# TRAINING in training mode; the labels make every such shift, counted over the examples or
# averaged per batch, give an accuracy of its own, so the value returned tells the modes.

RECORDING, TRAINING = 1, 2


def predictions(images: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (as_float(images).flatten(1) @ W.T + b).argmax(dim=1)


def mode_accuracies(predicted: torch.Tensor, y: torch.Tensor) -> dict[tuple[int, bool], float]:
    """(shift, averaged per batch) -> accuracy, for shifts 0 to 3 (3: training and
    recording, which no label gets right, counted once)."""
    accuracies = {}
    for shift in range(4):
        hits = ((predicted + shift) % 10 == y).double()
        per_batch = [float(part.mean()) for part in hits.split(EVAL_BATCH)]
        accuracies[shift, False] = float(hits.mean())
        if shift < TRAINING + RECORDING:
            accuracies[shift, True] = sum(per_batch) / len(per_batch)
    return accuracies


def evaluation_run(ctx: Context) -> tuple[float, float, tuple[int, bool] | None]:
    """The accuracy returned, the accuracy of eval mode without autograd, and the run of the
    net, (shift, averaged), that gives the value returned, if any does (at most one can)."""
    got = as_number(ctx, ctx.got("evaluate_accuracy.call"), "evaluate_accuracy")
    inputs = ctx.inputs
    predicted = predictions(inputs["evaluate_accuracy.images"], inputs["evaluate_accuracy.W"],
                            inputs["evaluate_accuracy.b"])
    accuracies = mode_accuracies(predicted, inputs["evaluate_accuracy.y"])
    run = next((mode for mode, value in accuracies.items() if abs(got - value) <= 1e-6), None)
    return got, accuracies[0, False], run


@CHECKS.add("evaluate_accuracy", points=2)
def matches_the_accuracy_computed_here(ctx: Context) -> str:
    got, want, run = evaluation_run(ctx)
    if run in ((0, False), (RECORDING, False)):
        return f"Accuracy {got:.4f}, counted over every example."
    if run is not None and run[1]:
        raise Failed("the per-batch accuracies were averaged: the last batch is smaller, so "
                     "count the correct predictions over all batches and divide by the number "
                     "of examples", f"{want:.4f}", f"{got:.4f}")
    if run is not None and run[0] & TRAINING:
        raise Failed(f"the accuracy is {got:.4f}, not {want:.4f}: the net ran in training "
                     "mode, where this net predicts otherwise (as dropout would make it); call "
                     "net.eval() first", f"{want:.4f}", f"{got:.4f}")
    raise Failed(f"the accuracy is {got:.4f}, not {want:.4f}", f"{want:.4f}", f"{got:.4f}")


def revealed_run(ctx: Context, untold: str) -> int:
    """The mode and autograd state the returned accuracy gives away (TRAINING, RECORDING);
    Failed, ending with `untold`, when it is an accuracy the net gives in none of them."""
    got, _, run = evaluation_run(ctx)
    if run is None:
        raise Failed(f"the accuracy {got:.4f} is none this net gives {untold}: fix the "
                     "accuracy first", None, f"{got:.4f}")
    return run[0]


@CHECKS.add("evaluate_accuracy", points=1)
def runs_in_eval_mode(ctx: Context) -> str:
    if revealed_run(ctx, "in any mode, so its mode cannot be told") & TRAINING:
        raise Failed("the net ran in training mode (where dropout would be on): call "
                     "net.eval() before the loop", "net.training == False",
                     "net.training == True")
    return "The net runs in evaluation mode."


@CHECKS.add("evaluate_accuracy", points=1, hidden=True)
def runs_without_gradients(ctx: Context) -> str:
    if revealed_run(ctx, "with autograd on or off, so it cannot be told") & RECORDING:
        raise Failed("autograd recorded the evaluation: wrap the loop in torch.no_grad(), "
                     "evaluation needs no gradients", "torch.is_grad_enabled() == False",
                     "True")
    return "No autograd graph is recorded."


# --- concise softmax regression ----------------------------------------------------------

def epoch(ctx: Context) -> dict:
    return ctx.got("concise_softmax.epoch")


@CHECKS.add("concise_softmax_training", points=3)
def reaches_the_test_accuracy(ctx: Context) -> str:
    observed = epoch(ctx)
    expect_started_from(observed, ctx.inputs["concise_softmax.W0"].T,
                        ctx.inputs["concise_softmax.blank_pixels"], "train_epoch")
    return expect_test_accuracy(ctx, observed, ctx.want("concise_softmax.epoch"),
                                "of train_epoch")


# What the kernel counts during the epoch counts only beside an epoch that trained.
TRAINED = ("concise_softmax_training.reaches_the_test_accuracy",)


@CHECKS.add("concise_softmax_training", points=1, requires=TRAINED)
def steps_once_per_batch(ctx: Context) -> str:
    observed = epoch(ctx)
    steps, batches = observed["steps"], observed["batches"]
    if steps == 0:
        raise Failed("updater.step() was never called: the parameters never change",
                     f"{batches} steps", "0")
    if steps != batches:
        raise Failed(f"{steps} optimizer steps for {batches} batches: call updater.step() "
                     "once per batch, inside the loop", f"{batches}", f"{steps}")
    return f"One step per batch ({steps})."


@CHECKS.add("concise_softmax_training", points=1, requires=TRAINED)
def zeroes_the_gradients(ctx: Context) -> str:
    observed = epoch(ctx)
    if observed["carried"]:
        raise Failed(f"at {observed['carried']} of {observed['steps']} steps the gradient "
                     "still held earlier batches' gradients: call updater.zero_grad() before "
                     "backward() for every batch", "0", f"{observed['carried']}")
    return "Every step uses its own batch's gradient only."


@CHECKS.add("concise_softmax_training", points=1, requires=TRAINED)
def trains_in_training_mode(ctx: Context) -> str:
    observed = epoch(ctx)
    if observed["eval_passes"]:
        raise Failed(f"{observed['eval_passes']} of {observed['passes']} forward passes ran "
                     "in evaluation mode: call net.train() first, since evaluate_accuracy "
                     "leaves the net in eval mode", "net.train()", "net.eval()")
    return "The net trains in training mode."
