"""Grader side of train (seed 002): full-batch training with a validation set, as the seed's
last loop, returning both losses per epoch. The loop runs on an nn.Linear(1, 1), an
optimizer and a loss the grader builds; its curves are compared with the reference run's
from the same start, and the kernel's counts (steps, gradients, validation passes) count
only beside curves that match.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.exercise import Declaration, Step
from grader.authoring.option_types import Count, Positive
from grader.exercises import validation_training_probes as probes
from grader.exercises._shared import finite_values
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import describe
from grader.grading.results import Curve

CHECKS = Registry()
HINTS = {"train.": [
    ("does not require grad", "backward() reached the validation loss, computed under "
                              "torch.no_grad(): call backward() on the training loss only"),
]}
T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]
VAL_FRACTION = 0.2
CURVES = "train.curves_match_the_reference"


@dataclass(frozen=True)
class Options:
    """[validation_training]: the seed's run and the hidden one, and how close the curves
    must be to the reference's."""

    # The seed's data, SGD and MSELoss: epochs and learning rate.
    epochs: Count = 500
    lr: Positive = 1e-2
    # Other data, Adam and L1Loss: the optimizer and the loss must be those passed in.
    other_epochs: Count = 200
    other_lr: Positive = 0.05
    # Relative tolerance of every loss against the reference run's.
    rtol: Positive = 1e-3


def split(generator: torch.Generator, X: torch.Tensor, y: torch.Tensor, prefix: str) -> dict:
    """A drawn split, VAL_FRACTION held out, and a drawn start for nn.Linear(1, 1)."""
    order = torch.randperm(len(X), generator=generator)
    n_val = int(VAL_FRACTION * len(X))
    start = torch.rand(2, generator=generator) * 2 - 1
    values = {"X_train": X[order[n_val:]], "y_train": y[order[n_val:]],
              "X_val": X[order[:n_val]], "y_val": y[order[:n_val]],
              "w0": float(start[0]), "b0": float(start[1])}
    return {f"train.{prefix}.{name}": value for name, value in values.items()}


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    """The seed's eleven readings in a drawn split; 30 points of another line for the run
    with Adam and L1Loss."""
    x = torch.rand(30, 1, generator=generator) * 5 + 1
    slope, intercept = (float(v) for v in torch.rand(2, generator=generator) * 6 - 3)
    other_y = slope * x + intercept + 0.3 * torch.randn(30, 1, generator=generator)
    return {
        **split(generator, 0.1 * torch.tensor(T_U).unsqueeze(1), torch.tensor(T_C).unsqueeze(1),
                "seed"),
        "train.seed.epochs": options.epochs, "train.seed.lr": options.lr,
        "train.seed.optimizer": "sgd", "train.seed.loss": "mse",
        **split(generator, x, other_y, "other"),
        "train.other.epochs": options.other_epochs, "train.other.lr": options.other_lr,
        "train.other.optimizer": "adam", "train.other.loss": "l1",
    }


def accept_once(ctx: Context, note: str) -> None:
    if note not in ctx.notes:
        ctx.accept(note)


def as_loss(ctx: Context, value, name: str) -> float:
    """One epoch's loss as a number, accepting a 0-d tensor (loss.detach()), as the handout
    does; NaN and inf are kept, for the curves' comparison to say why the training diverged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        accept_once(ctx, "0-d tensors instead of Python floats")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Failed(f"{name} must hold numbers: append loss.item() each epoch",
                     "Python floats", describe(value))
    return float(value)


def loss_lists(ctx: Context, observed: dict) -> tuple[list[float], list[float]]:
    """(train_losses, val_losses) as returned, one number per epoch each."""
    returned, epochs = observed["returned"], observed["epochs"]
    if returned is None:
        raise Failed("train returned None (the seed's loop returns nothing): return "
                     "train_losses, val_losses, the two lists of per-epoch losses",
                     "(train_losses, val_losses)", "None")
    if not isinstance(returned, list) or len(returned) != 2:
        raise Failed("train must return a pair (train_losses, val_losses)",
                     "(train_losses, val_losses)", describe(returned))
    out = []
    for values, name in zip(returned, ("train_losses", "val_losses"), strict=True):
        if isinstance(values, torch.Tensor) and values.dim() == 1:
            accept_once(ctx, f"a 1-D tensor for {name} instead of a list")
            values = values.tolist()
        if not isinstance(values, list):
            raise Failed(f"{name} must be a list of per-epoch losses", "a list",
                         describe(values))
        if len(values) != epochs:
            raise Failed(f"{name} holds {len(values)} values for {epochs} epochs: append one "
                         "loss per epoch", f"{epochs} values", f"{len(values)}")
        out.append([as_loss(ctx, value, name) for value in values])
    return out[0], out[1]


def close(got: list[float], want: list[float], rtol: float) -> bool:
    return len(got) == len(want) and torch.allclose(
        torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
        rtol=rtol, atol=1e-6)


def first_difference(got: list[float], want: list[float], rtol: float) -> str:
    epoch = next(i for i, (g, w) in enumerate(zip(got, want, strict=True))
                 if not close([g], [w], rtol))
    return f"first at epoch {epoch + 1}: {got[epoch]:.6g}, the reference {want[epoch]:.6g}"


def why_the_curves_differ(ctx: Context, prefix: str, observed: dict, got: tuple,
                          want: tuple, rtol: float) -> str:
    """The likeliest cause, from the curves themselves and the kernel's counts."""
    (got_train, got_val), (want_train, want_val) = got, want
    start = torch.tensor([ctx.inputs[f"train.{prefix}.{k}"] for k in ("w0", "b0")])
    params = observed["parameters"]
    unchanged = isinstance(params, list) and all(isinstance(p, torch.Tensor) for p in params) \
        and torch.equal(torch.cat([p.reshape(-1) for p in params]).double(), start.double())
    epochs = observed["epochs"]
    if close(got_train, want_val, rtol) and close(got_val, want_train, rtol):
        return "the two lists are swapped: return (train_losses, val_losses)"
    if unchanged:
        return ("the model's parameters never changed: step the optimizer passed in "
                f"(optimizer.step() was called {observed['steps']} times on it), not one "
                "made elsewhere")
    if observed["cleared"]:
        return (f"at {observed['cleared']} of {observed['steps']} steps the gradient was "
                "already cleared: call optimizer.zero_grad() before backward(), not between "
                "backward() and step()")
    if observed["carried"]:
        return (f"at {observed['carried']} of {observed['steps']} steps the gradient still "
                "held earlier epochs' gradients: call optimizer.zero_grad() before backward() "
                "every epoch")
    if observed["extra_backward"]:
        return (f"at {observed['extra_backward']} steps backward() had run more than once: "
                "backpropagate the training loss only")
    if observed["steps"] != epochs:
        return f"{observed['steps']} optimizer steps for {epochs} epochs: step once per epoch"
    if close(got_train, want_train, rtol) and close(got_val[:-1], want_val[1:], rtol):
        return ("the validation loss was computed after optimizer.step(): compute it before "
                "the step, from the same parameters as the training loss")
    if close(got_train[:-1], want_train[1:], rtol):
        return ("the losses are those after each step: compute both losses before "
                "optimizer.step(), from the parameters the epoch starts with")
    if close(got_train, want_train, rtol):
        return ("the training losses match but not the validation losses "
                f"({first_difference(got_val, want_val, rtol)}): each is "
                "loss_fn(model(X_val), y_val)")
    return (f"the training losses differ from the reference's "
            f"({first_difference(got_train, want_train, rtol)}): each is "
            "loss_fn(model(X_train), y_train) with the loss passed in")


def expect_reference_curves(ctx: Context, prefix: str, what: str) -> tuple[list, list]:
    key = f"train.{prefix}_run"
    observed = ctx.got(key)
    got = loss_lists(ctx, observed)
    want = loss_lists(ctx, ctx.want(key))
    rtol = ctx.options.rtol
    if not (close(got[0], want[0], rtol) and close(got[1], want[1], rtol)):
        raise Failed(f"{what}: {why_the_curves_differ(ctx, prefix, observed, got, want, rtol)}",
                     f"train {want[0][-1]:.4g}, validation {want[1][-1]:.4g} at the end",
                     f"train {got[0][-1]:.4g}, validation {got[1][-1]:.4g}")
    return got


def seed_run(ctx: Context) -> dict:
    return ctx.got("train.seed_run")


@CHECKS.add("train", points=1)
def returns_both_losses_per_epoch(ctx: Context) -> str:
    observed = seed_run(ctx)
    loss_lists(ctx, observed)
    return f"Two lists of {observed['epochs']} losses: training and validation."


@CHECKS.add("train", points=2, reads=("train.seed_run",))
def curves_match_the_reference(ctx: Context) -> str:
    got = expect_reference_curves(ctx, "seed", "the curves differ from the "
                                  "reference run's from the same start")
    return (f"Both curves match the reference run (last epoch: training {got[0][-1]:.4g}, "
            f"validation {got[1][-1]:.4g}).")


@CHECKS.add("train", points=1, requires=(CURVES,))
def steps_once_per_epoch(ctx: Context) -> str:
    observed = seed_run(ctx)
    steps, epochs = observed["steps"], observed["epochs"]
    if steps == 0:
        raise Failed("optimizer.step() was never called on the optimizer passed in",
                     f"{epochs} steps", "0")
    if steps != epochs:
        raise Failed(f"{steps} optimizer steps for {epochs} epochs: one full-batch step per "
                     "epoch", f"{epochs}", f"{steps}")
    return f"One step per epoch ({steps})."


@CHECKS.add("train", points=1, requires=(CURVES,))
def zeroes_the_gradients(ctx: Context) -> str:
    observed = seed_run(ctx)
    if observed["carried"]:
        raise Failed(f"at {observed['carried']} of {observed['steps']} steps the gradient still "
                     "held earlier epochs' gradients: call optimizer.zero_grad() before "
                     "backward() every epoch", "0", f"{observed['carried']}")
    if observed["cleared"]:
        raise Failed(f"at {observed['cleared']} of {observed['steps']} steps the gradient had "
                     "been cleared before the step: zero_grad() belongs before backward()",
                     "0", f"{observed['cleared']}")
    return "Every step uses the epoch's own gradient only."


@CHECKS.add("train", points=1, requires=(CURVES,))
def validation_builds_no_graph(ctx: Context) -> str:
    observed = seed_run(ctx)
    passes, recorded, epochs = observed["val_passes"], observed["val_recorded"], \
        observed["epochs"]
    if passes < epochs:
        raise Failed(f"the model ran on X_val {passes} times in {epochs} epochs: compute the "
                     "validation loss from model(X_val) every epoch", f"≥ {epochs}",
                     f"{passes}")
    if recorded:
        raise Failed(f"{recorded} of {passes} validation passes ran with autograd recording: "
                     "compute the validation loss inside `with torch.no_grad():` (calling "
                     ".item() or .detach() afterwards does not stop the graph being built)",
                     "torch.is_grad_enabled() == False", "True")
    return f"All {passes} validation passes ran without autograd."


@CHECKS.add("train", points=1, hidden=True, reads=("train.other_run",))
def uses_the_optimizer_and_loss_passed_in(ctx: Context) -> str:
    """train steps the optimizer and computes the loss it is given (Adam and L1Loss)."""
    expect_reference_curves(ctx, "other", "with Adam and nn.L1Loss the curves "
                            "differ from the reference run's")
    return "Another optimizer and loss give the reference's curves."


def curves(ctx: Context) -> list[Curve]:
    """Training and validation loss per epoch of the seed's run, beside the reference's."""
    try:
        got = loss_lists(ctx, seed_run(ctx))
        want = loss_lists(ctx, ctx.want("train.seed_run"))
    except Failed:
        return []
    epochs = list(range(1, len(got[0]) + 1))
    return [Curve(f"train: {which} loss", "epoch", f"{which} loss (MSE)", epochs,
                  finite_values(mine), finite_values(theirs))
            for which, mine, theirs in zip(("training", "validation"), got, want, strict=True)]


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),), options=Options,
                       make_inputs=make_inputs, hints=HINTS, curves=curves)
