"""Grader side of the concise softmax regression (seeds 002 and 004): init_weights for
net.apply, evaluate_accuracy and one Fashion-MNIST epoch of train_epoch. The modules are
built by the probes; the test accuracy is computed here from the parameters they return.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.datasets import FASHION_MNIST
from grader.authoring.exercise import Declaration, Step
from grader.authoring.option_types import Fraction
from grader.exercises import concise_softmax_probes as probes
from grader.exercises._shared import (
    BLANK_PIXELS,
    Training,
    as_number,
    expect_started_from,
    expect_test_accuracy,
    shareable,
)
from grader.grading.checks import Context, Failed, NotJudged, Registry
from grader.grading.expect import describe, expect_finite, expect_shape, expect_tensor
from grader.kernel.data import as_float

CHECKS = Registry()
HINTS = {"init_weights.": [
    ("has no attribute 'weight'", "net.apply calls init_weights on every module, nn.Flatten "
                                  "included: initialise only nn.Linear modules "
                                  "(isinstance(m, nn.Linear))"),
]}
INIT_STD = 0.01
EVAL_BATCH = 64


@dataclass(frozen=True)
class Options(Training):
    # init_weights: the weights' standard deviation may be this fraction off INIT_STD.
    init_std_tolerance: Fraction = 0.1


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    return {
        **init_inputs(generator),
        **evaluation_inputs(generator),
        "concise_softmax.W0": torch.normal(0, INIT_STD, (10, 784), generator=generator),
        "concise_softmax.blank_pixels": torch.tensor(BLANK_PIXELS),
        "concise_softmax.order_seed": int(torch.randint(0, 2**31 - 1, (1,),
                                                        generator=generator)),
        "concise_softmax.batch_size": options.batch_size,
        "concise_softmax.lr": options.lr,
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
    tolerance = ctx.options.init_std_tolerance
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


MATCHES = "evaluate_accuracy.matches_the_accuracy_computed_here"


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
    NotJudged, ending with `untold`, when it is an accuracy the net gives in none of them:
    a wrong value says nothing of the mode it ran in."""
    got, _, run = evaluation_run(ctx)
    if run is None:
        raise NotJudged(f"not judged: the accuracy {got:.4f} is none this net gives {untold}, "
                        f"see {MATCHES}")
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


# Trained parameters give way to their test accuracy in the public data.
EXERCISE = Declaration(checks=CHECKS, probes=probes,
                       steps=(Step(probes.PROBES), Step(probes.EPOCH_STEPS, long=True)),
                       options=Options, make_inputs=make_inputs, data=(FASHION_MNIST,), hints=HINTS,
                       shareable=shareable)
