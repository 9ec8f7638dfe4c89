"""Grader side of FlattenLayer and LinearNet (seed 004): modules written as nn.Module
subclasses, checked on batches of images and of other shapes, then trained one Fashion-MNIST
epoch each by the grader's loop (LinearNet alone; FlattenLayer in the seed's nn.Sequential
before an nn.Linear). The test accuracy is computed here from the parameters returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.datasets import FASHION_MNIST
from grader.authoring.exercise import Declaration, Step
from grader.exercises import module_classes_probes as probes
from grader.exercises._shared import (
    BLANK_PIXELS,
    Training,
    expect_test_accuracy,
    shareable,
)
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import (
    describe,
    expect_close,
    expect_gradient,
    expect_shape,
    expect_tensor,
)

CHECKS = Registry()
SUPER_INIT = ("before Module.__init__() call", "call super().__init__() first in __init__, "
              "before assigning any layer to self")
DETACHED = ("does not require grad", "FlattenLayer cut the graph: reshape x with x.view or "
            "x.reshape, without .detach() or .data")
HINTS = {"LinearNet.": [SUPER_INIT], "FlattenLayer.": [SUPER_INIT, DETACHED]}
IMAGE_FEATURES, CLASSES = 784, 10


@dataclass(frozen=True)
class Options(Training):
    """[module_classes]: one Fashion-MNIST epoch per module, and how far below the
    reference's test accuracy its own may land."""


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    """Batches of drawn sizes: images, (b, 3, 5, 7) blocks, one image, flat rows; an input
    size and class count of LinearNet's own; the epoch's hidden start and batch order."""
    def size(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    cubes = size(3, 6)
    other_batch = size(4, 9)
    return {
        "FlattenLayer.images": torch.rand(size(5, 12), 1, 28, 28, generator=generator),
        "FlattenLayer.cubes": torch.randn(cubes, 3, 5, 7, generator=generator),
        "FlattenLayer.single": torch.rand(1, 1, 28, 28, generator=generator),
        "FlattenLayer.flat": torch.randn(size(3, 8), 10, generator=generator),
        "FlattenLayer.upstream": torch.randn(cubes, 3 * 5 * 7, generator=generator),
        "LinearNet.other_X": torch.randn(other_batch, 4, size(3, 6), generator=generator),
        "LinearNet.other_outputs": size(3, 6),
        "module_classes.W0": torch.normal(0, 0.01, (IMAGE_FEATURES, CLASSES),
                                          generator=generator),
        "module_classes.blank_pixels": torch.tensor(BLANK_PIXELS),
        "module_classes.order_seed": int(torch.randint(0, 2**31 - 1, (1,),
                                                       generator=generator)),
        "module_classes.batch_size": options.batch_size,
        "module_classes.lr": options.lr,
    }


# --- FlattenLayer ------------------------------------------------------------------------

def expect_flattened(out, X: torch.Tensor, what: str) -> None:
    """(b, ...) flattened to (b, features), each example's values in their order."""
    out = expect_tensor(out, what)
    n = len(X)
    if tuple(out.shape) == (X.numel(),) and n > 1:
        raise Failed(f"{what} is one vector of the whole batch: keep the batch dimension, "
                     "x.view(x.shape[0], -1)", str((n, X[0].numel())), str(tuple(out.shape)))
    if n == 1 and tuple(out.shape) == (X.numel(),):
        raise Failed(f"{what} lost the batch dimension of a batch of one (x.squeeze()?): keep "
                     "it, x.view(x.shape[0], -1)", str((1, X.numel())), str(tuple(out.shape)))
    if out.shape == X.shape and X.dim() > 2:
        raise Failed(f"{what} has the input's shape: flatten every dimension after the first",
                     str((n, X[0].numel())), str(tuple(out.shape)))
    expect_close(out, X.reshape(n, -1), what, rtol=0, atol=0)


@CHECKS.add("FlattenLayer", points=2)
def flattens_each_image(ctx: Context) -> str:
    observed = ctx.got("FlattenLayer.images")
    if not observed["module"]:
        raise Failed("FlattenLayer() must be an nn.Module: subclass nn.Module",
                     "an nn.Module", describe(observed))
    X = ctx.inputs["FlattenLayer.images"]
    expect_flattened(observed["out"], X, "FlattenLayer()(x) for x of shape (b, 1, 28, 28)")
    return f"(b, 1, 28, 28) becomes (b, 784), b = {len(X)}."


@CHECKS.add("FlattenLayer", points=1, hidden=True)
def flattens_any_shape(ctx: Context) -> str:
    """FlattenLayer keeps the batch dimension and flattens the rest, whatever the shape."""
    outs = ctx.got("FlattenLayer.other_shapes")
    if not isinstance(outs, list) or len(outs) != 3:
        raise Failed("FlattenLayer did not return a tensor for each shape", None, describe(outs))
    for out, key in zip(outs, ("cubes", "single", "flat"), strict=True):
        X = ctx.inputs[f"FlattenLayer.{key}"]
        expect_flattened(out, X, f"FlattenLayer()(x) for x of shape {tuple(X.shape)}")
    return "(b, 3, 5, 7), one image and flat rows are flattened per example."


@CHECKS.add("FlattenLayer", points=1, hidden=True)
def passes_the_gradient_back(ctx: Context) -> str:
    """Gradients flow back through FlattenLayer to its input."""
    grad = expect_gradient(ctx.got("FlattenLayer.gradient"), "reached x through FlattenLayer",
                           "reshape with view or reshape, without .detach() or .data")
    X = ctx.inputs["FlattenLayer.cubes"]
    expect_close(expect_tensor(grad, "x.grad"),
                 ctx.inputs["FlattenLayer.upstream"].reshape(X.shape), "x.grad", rtol=0, atol=0)
    return "The gradient reaches the input, reshaped back."


# --- LinearNet ---------------------------------------------------------------------------

def linear_net(ctx: Context, key: str, inputs: int, outputs: int) -> dict:
    """The net's parameters, checked: one (outputs, inputs) weight and one (outputs,) bias,
    as nn.Linear(inputs, outputs) holds them."""
    observed = ctx.got(key)
    what = f"LinearNet({inputs}, {outputs})"
    if not observed["module"]:
        raise Failed(f"{what} must be an nn.Module: subclass nn.Module", "an nn.Module",
                     observed["type"])
    params = observed["parameters"]
    count = sum(p.numel() for _, p in params)
    wanted = inputs * outputs + outputs
    if count == 0:
        raise Failed(f"{what} registers no parameters: assign an nn.Linear(num_inputs, "
                     "num_outputs) to self in __init__ (plain tensors kept as attributes are "
                     "not registered)", f"{wanted}", "0")
    if count != wanted:
        raise Failed(f"{what} registers {count} parameters, not {inputs} × {outputs} + "
                     f"{outputs} = {wanted}: build its layer from num_inputs and num_outputs",
                     f"{wanted}", f"{count}")
    shapes = sorted(tuple(p.shape) for _, p in params)
    if shapes != sorted([(outputs, inputs), (outputs,)]):
        raise Failed(f"{what} must hold an nn.Linear(num_inputs, num_outputs): a weight of "
                     f"shape {(outputs, inputs)} and a bias of shape {(outputs,)}",
                     str([(outputs, inputs), (outputs,)]), str(shapes))
    return observed


def expect_scores(observed: dict, X: torch.Tensor, outputs: int, what: str) -> None:
    """The net's output is flatten(X) @ Wᵀ + b of its own parameters."""
    params = {tuple(p.shape): p for _, p in observed["parameters"]}
    W, b = params[(outputs, X[0].numel())], params[(outputs,)]
    out = expect_tensor(observed["out"], what)
    expect_shape(out, [(len(X), outputs)], what)
    want = X.reshape(len(X), -1).double() @ W.double().T + b.double()
    if not torch.allclose(out.double(), want, rtol=1e-4, atol=1e-5):
        sums = out.double().sum(dim=1)
        if bool((out >= 0).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            raise Failed(f"{what} returns probabilities (a softmax): return the scores, "
                         "nn.CrossEntropyLoss applies the softmax itself", describe(want),
                         describe(out))
        raise Failed(f"{what} is not the linear layer's output on the flattened input, "
                     "self.linear(x.view(x.shape[0], -1))", describe(want), describe(out))


@CHECKS.add("LinearNet", points=2)
def registers_its_parameters(ctx: Context) -> str:
    observed = linear_net(ctx, "LinearNet.images", IMAGE_FEATURES, CLASSES)
    names = ", ".join(name for name, _ in observed["parameters"])
    return f"784 × 10 + 10 = 7850 parameters, registered as {names}."


@CHECKS.add("LinearNet", points=1)
def computes_scores_per_image(ctx: Context) -> str:
    observed = linear_net(ctx, "LinearNet.images", IMAGE_FEATURES, CLASSES)
    X = ctx.inputs["FlattenLayer.images"]
    expect_scores(observed, X, CLASSES, "LinearNet(784, 10)(x) for x of shape (b, 1, 28, 28)")
    return "(b, 1, 28, 28) images give (b, 10) scores, x.view(b, -1) @ Wᵀ + b."


@CHECKS.add("LinearNet", points=1, hidden=True)
def handles_other_sizes(ctx: Context) -> str:
    """LinearNet builds its layer from num_inputs and num_outputs, whatever they are."""
    X = ctx.inputs["LinearNet.other_X"]
    outputs = int(ctx.inputs["LinearNet.other_outputs"])
    observed = linear_net(ctx, "LinearNet.other_sizes", X[0].numel(), outputs)
    expect_scores(observed, X, outputs, f"LinearNet({X[0].numel()}, {outputs})(x)")
    return "Other input sizes and class counts work too."


# --- one epoch on Fashion-MNIST ----------------------------------------------------------

def expect_trained(ctx: Context, key: str, what: str) -> str:
    """The epoch trained the weights the grader copied in (the pixels blank in every batch
    keep theirs), to the reference's test accuracy less the margin."""
    observed = ctx.got(key)
    W = expect_tensor(observed["W"], f"the trained weight of {what}")
    expect_shape(W, [(IMAGE_FEATURES, CLASSES)], f"the trained weight of {what}")
    blank, W0 = ctx.inputs["module_classes.blank_pixels"], ctx.inputs["module_classes.W0"]
    if not torch.equal(W[blank], W0[blank]):
        raise Failed(f"the weights of pixels that are 0 in every batch changed during the "
                     f"epoch, which no gradient does: {what} must not redraw its weights "
                     "after __init__ (in forward, say)", "their initial values",
                     describe(W[blank]))
    return expect_test_accuracy(ctx, observed, ctx.want(key), f"of {what}")


@CHECKS.add("module_classes_training", points=2, uses=("LinearNet.images",))
def linear_net_reaches_the_test_accuracy(ctx: Context) -> str:
    return expect_trained(ctx, "LinearNet.epoch", "LinearNet(784, 10)")


@CHECKS.add("module_classes_training", points=1, uses=("FlattenLayer.images",))
def flatten_layer_net_reaches_the_test_accuracy(ctx: Context) -> str:
    return expect_trained(ctx, "FlattenLayer.epoch", "nn.Sequential(FlattenLayer(), "
                          "nn.Linear(784, 10))")


EXERCISE = Declaration(checks=CHECKS, probes=probes,
                       steps=(Step(probes.PROBES), Step(probes.EPOCH_STEPS, long=True)),
                       options=Options, make_inputs=make_inputs, data=(FASHION_MNIST,), hints=HINTS,
                       shareable=shareable)
