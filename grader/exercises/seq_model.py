"""Grader side of make_seq_model (seed 002): nn.Sequential(nn.Linear(1, 13), nn.Tanh(),
nn.Linear(13, 1)), checked layer by layer and trained by the grader's loop on thermometer
readings whose scale bends, where a straight line cannot follow them. The validation loss is
computed here, from the parameters the kernel returns, against the best straight line
through the training points.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.exercise import Declaration, Step
from grader.authoring.option_types import Count, Fraction, Positive
from grader.exercises import seq_model_probes as probes
from grader.grading.checks import Context, Failed, NotJudged, Registry
from grader.grading.expect import describe, expect_tensor

CHECKS = Registry()
HIDDEN_UNITS = 13
SEED_LAYERS = [("Linear", 1, HIDDEN_UNITS), ("Tanh", None, None), ("Linear", HIDDEN_UNITS, 1)]
SHAPES = [(HIDDEN_UNITS, 1), (HIDDEN_UNITS,), (1, HIDDEN_UNITS), (1,)]
PARAMETERS = 3 * HIDDEN_UNITS + 1  # 13 + 13 weights and biases, then 13 + 1
READINGS, VAL_FRACTION = 40, 0.2


@dataclass(frozen=True)
class Options:
    """[seq_model]: the grader's training of the net, and the margin it must show."""

    epochs: Count = 5000
    lr: Positive = 1e-3
    # The net's validation MSE must fall below the best straight line's by at least this
    # share of the margin the reference net shows.
    improvement_share: Fraction = 0.5


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    """Readings x = 0.1 * t_u over the seed's range, and temperatures on the seed's line
    (t_c ≈ 5.35 x - 17.2) bent by a drawn curvature, with noise; a drawn split."""
    x = torch.rand(READINGS, 1, generator=generator) * 6.5 + 2.0
    sign = 1.0 if float(torch.rand(1, generator=generator)) < 0.5 else -1.0
    curvature = sign * (1.0 + float(torch.rand(1, generator=generator)))
    y = 5.35 * x - 17.2 + curvature * (x - 5) ** 2 \
        + torch.randn(READINGS, 1, generator=generator)
    order = torch.randperm(READINGS, generator=generator)
    n_val = int(VAL_FRACTION * READINGS)
    return {
        "make_seq_model.query": torch.rand(16, 1, generator=generator) * 7 + 2,
        "make_seq_model.X_train": x[order[n_val:]], "make_seq_model.y_train": y[order[n_val:]],
        "make_seq_model.X_val": x[order[:n_val]], "make_seq_model.y_val": y[order[:n_val]],
        "make_seq_model.epochs": options.epochs, "make_seq_model.lr": options.lr,
    }


def seed_net(params: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """Linear(1, 13), Tanh, Linear(13, 1) of the parameters given, computed here."""
    W1, b1, W2, b2 = (p.double() for p in params)
    return torch.tanh(X.double() @ W1.T + b1) @ W2.T + b2


def expect_seed_parameters(params, what: str) -> list[torch.Tensor]:
    if not isinstance(params, list) or len(params) != len(SHAPES):
        raise Failed(f"{what} must hold the weight and bias of two Linear layers",
                     str(SHAPES), describe(params))
    for param, shape in zip(params, SHAPES, strict=True):
        if not isinstance(param, torch.Tensor) or tuple(param.shape) != shape:
            raise Failed(f"{what} are not those of Linear(1, 13) and Linear(13, 1)",
                         str(SHAPES), describe(param))
    return params


def expect_outputs_of(params: list[torch.Tensor], X: torch.Tensor, outputs, what: str) -> None:
    """The net computed Linear → Tanh → Linear of its own parameters."""
    outputs = expect_tensor(outputs, what)
    want = seed_net(params, X)
    if tuple(outputs.shape) != tuple(want.shape) or not torch.allclose(
            outputs.double(), want, rtol=1e-4, atol=1e-5):
        W1, b1, W2, b2 = (p.double() for p in params)
        straight = (X.double() @ W1.T + b1) @ W2.T + b2
        if tuple(outputs.shape) == tuple(straight.shape) and torch.allclose(
                outputs.double(), straight, rtol=1e-4, atol=1e-5):
            raise Failed(f"{what} are those of the two Linear layers with no activation "
                         "between them, a straight line: put nn.Tanh() between them",
                         describe(want), describe(outputs))
        raise Failed(f"{what} are not tanh(x W1ᵀ + b1) W2ᵀ + b2 of the net's own parameters: "
                     "the net must run its layers in the order Linear, Tanh, Linear",
                     describe(want), describe(outputs))


def built(ctx: Context) -> dict:
    observed = ctx.got("make_seq_model.built")
    if not observed["module"]:
        raise Failed(f"make_seq_model returned a {observed['type']}, not the net: return the "
                     "nn.Sequential", "an nn.Sequential", observed["type"])
    return observed


def describe_layers(layers: list) -> str:
    return ", ".join(f"{layer['type']}({layer['in_features']}, {layer['out_features']})"
                     if layer["in_features"] is not None else layer["type"] for layer in layers)


@CHECKS.add("seq_model", points=1)
def has_the_seed_layers(ctx: Context) -> str:
    observed = built(ctx)
    layers = observed["layers"]
    got = [(layer["type"], layer["in_features"], layer["out_features"]) for layer in layers]
    wanted = "Linear(1, 13), Tanh, Linear(13, 1)"
    if not observed["sequential"]:
        raise Failed(f"make_seq_model returned a {observed['type']}: build the net with "
                     f"nn.Sequential({wanted})", "nn.Sequential", observed["type"])
    if len(got) == 2 and all(kind == "Linear" for kind, _, _ in got):
        raise Failed("there is no activation between the two Linear layers, so the net is a "
                     "straight line however it trains: put nn.Tanh() between them", wanted,
                     describe_layers(layers))
    if len(got) == 3 and got[0] == SEED_LAYERS[0] and got[2] == SEED_LAYERS[2] \
            and got[1][0] != "Tanh":
        raise Failed(f"layer 1 is nn.{got[1][0]}: the seed's net uses nn.Tanh() (its text "
                     "calls it a relu layer, its code builds Tanh)", wanted,
                     describe_layers(layers))
    if got != SEED_LAYERS:
        raise Failed(f"the layers are {describe_layers(layers)}, not {wanted}", wanted,
                     describe_layers(layers))
    params = expect_seed_parameters(observed["parameters"], "the net's parameters")
    expect_outputs_of(params, ctx.inputs["make_seq_model.query"], observed["outputs"],
                      "the net's outputs")
    return f"nn.Sequential({wanted})."


@CHECKS.add("seq_model", points=1)
def has_40_parameters(ctx: Context) -> str:
    params = built(ctx)["parameters"]
    if not isinstance(params, list) or not all(isinstance(p, torch.Tensor) for p in params):
        raise Failed("the net's parameters could not be read", None, describe(params))
    count = sum(p.numel() for p in params)
    if count != PARAMETERS:
        raise Failed(f"the net has {count} parameters, not {PARAMETERS}: 13 weights and 13 "
                     "biases in Linear(1, 13), 13 weights and 1 bias in Linear(13, 1)",
                     f"{PARAMETERS}", f"{count}")
    return f"{PARAMETERS} parameters: 13 + 13 in the hidden layer, 13 + 1 in the output layer."


@CHECKS.add("seq_model", points=1)
def returns_a_new_net_each_call(ctx: Context) -> str:
    """Counts only for a net with parameters: a net with none shares none either."""
    observed = built(ctx)
    if not observed["parameters"]:
        raise NotJudged("not judged: the net has no parameters, so it shares none whatever "
                        "make_seq_model does, see seq_model.has_40_parameters")
    if observed["shared"]:
        raise Failed("two calls of make_seq_model returned nets that share parameters: build "
                     "a new nn.Sequential inside the function on every call, not a global net "
                     "(a second training would start where the first ended)",
                     "independent nets", "shared parameters")
    return "Every call builds a fresh net."


def validation_mse(ctx: Context, observed: dict, what: str) -> float:
    """The validation MSE of the trained net, computed here from its parameters."""
    params = expect_seed_parameters(observed["parameters"], f"{what}'s parameters")
    X_val, y_val = ctx.inputs["make_seq_model.X_val"], ctx.inputs["make_seq_model.y_val"]
    expect_outputs_of(params, X_val, observed["outputs"], f"{what}'s outputs")
    return float(((seed_net(params, X_val) - y_val.double()) ** 2).mean())


def straight_line_mse(ctx: Context) -> float:
    """The validation MSE of the least-squares line through the training points: the best
    any linear model, nn.Linear(1, 1) included, fits the training set."""
    X, y = ctx.inputs["make_seq_model.X_train"].double(), \
        ctx.inputs["make_seq_model.y_train"].double()
    solution = torch.linalg.lstsq(torch.cat([X, torch.ones_like(X)], dim=1), y).solution
    X_val = ctx.inputs["make_seq_model.X_val"].double()
    predicted = torch.cat([X_val, torch.ones_like(X_val)], dim=1) @ solution
    return float(((predicted - ctx.inputs["make_seq_model.y_val"].double()) ** 2).mean())


@CHECKS.add("seq_model", points=2)
def beats_the_linear_model(ctx: Context) -> str:
    got = validation_mse(ctx, ctx.got("make_seq_model.trained"), "the trained net")
    reference = validation_mse(ctx, ctx.want("make_seq_model.trained"), "the reference net")
    line = straight_line_mse(ctx)
    share = ctx.options.improvement_share
    limit = line - share * (line - reference)
    epochs = int(ctx.inputs["make_seq_model.epochs"])
    if not got <= limit:
        raise Failed(f"after {epochs} epochs the validation MSE is {got:.3g}: the best straight "
                     f"line through the training points gives {line:.3g}, the reference net "
                     f"{reference:.3g}; the net must gain at least {share:.0%} of that margin "
                     f"(≤ {limit:.3g})", f"≤ {limit:.3g}", f"{got:.3g}")
    return (f"Validation MSE {got:.3g} against {line:.3g} for the best straight line "
            f"(reference net {reference:.3g}).")


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),), options=Options,
                       make_inputs=make_inputs)
