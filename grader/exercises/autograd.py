"""Grader side of the gradient exercises (seed 002): the gradient of the mean squared loss
of w * x + b by hand and by central differences, both against autograd run here; the
train/validation split; and the seed's training run reproduced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from grader.authoring.exercise import Declaration, Step
from grader.authoring.option_types import Count, Positive
from grader.exercises import autograd_probes as probes
from grader.exercises._shared import NO_GRAD
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import (
    describe,
    expect_close,
    expect_shape,
    expect_tensor,
    max_difference,
)
from grader.kernel.probing import TORCH_CALLS

CHECKS = Registry()
HINTS = {"training_loop.": [NO_GRAD]}
T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]
SEED_START = (1.0, 0.0)
# The split's sizes, (lowest n, highest n + 1, val_fraction): n is drawn from the grader's
# generator, so that only a split of the hidden n passes.
SPLIT_CASES = [(11, 41, 0.2), (900, 1101, 0.2), (50, 81, 0.3)]
SPLIT_EDGES = [(2, 12, 0.2), (10, 30, 0.5), (1, 2, 0.0)]
OTHER_EPOCHS = 500
Slip = tuple[str, torch.Tensor]
Slips = Callable[[torch.Tensor, torch.Tensor, float, float], list[Slip]]


@dataclass(frozen=True)
class Options:
    """[autograd]: the central differences and the training with autograd."""

    # The step eps, and how far from autograd's gradient the differences may be (float32
    # rounding of the loss, divided by 2 eps).
    gradient_eps: Positive = 1e-2
    gradient_atol: Positive = 0.05
    # Training w * x + b on the seed's 11 points: steps, learning rate, and how far the
    # trained [w, b] may be from the reference run's (about [5.35, -17.2]).
    epochs: Count = 3000
    lr: Positive = 1e-2
    tolerance: Positive = 0.01


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    """The seed's eleven points, the grader's own (w, b) points and a second dataset."""
    x = 0.1 * torch.tensor(T_U)
    points = torch.rand(4, 2, generator=generator) * torch.tensor([10.0, 25.0]) \
        - torch.tensor([2.0, 20.0])
    other_x = torch.rand(20, generator=generator) * 6 + 2
    return {
        "gradients.x": x,
        "gradients.y": torch.tensor(T_C),
        "gradients.points": torch.cat([torch.tensor([SEED_START]), points]),
        "gradients.eps": options.gradient_eps,
        "split.cases": split_sizes(generator, SPLIT_CASES),
        "split.edges": split_sizes(generator, SPLIT_EDGES),
        "split.seeds": torch.randint(0, 2**31 - 1, (2,), generator=generator).tolist(),
        "training.x": x,
        "training.y": torch.tensor(T_C),
        "training.start": torch.tensor(SEED_START),
        "training.lr": options.lr,
        "training.epochs": options.epochs,
        "training_other.x": other_x,
        "training_other.y": 4 * other_x - 10 + torch.randn(20, generator=generator),
        "training_other.start": torch.randn(2, generator=generator),
        "training_other.lr": options.lr,
        "training_other.epochs": OTHER_EPOCHS,
    }


def split_sizes(generator: torch.Generator, ranges: list) -> list[list]:
    """[n, val_fraction] pairs, each n drawn from its range."""
    return [[int(torch.randint(low, high, (1,), generator=generator)), fraction]
            for low, high, fraction in ranges]


# --- gradients ---------------------------------------------------------------------------

def loss(x: torch.Tensor, y: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    return ((params[0] * x.double() + params[1] - y.double()) ** 2).mean()


def autograd_gradient(x: torch.Tensor, y: torch.Tensor, w: float, b: float) -> torch.Tensor:
    """[dL/dw, dL/db] from autograd, in float64, computed here."""
    params = torch.tensor([w, b], dtype=torch.float64, requires_grad=True)
    loss(x, y, params).backward()
    return params.grad


def analytic_slips(x, y, w, b) -> list[Slip]:
    """Known wrong answers, each with the message that names it."""
    true = autograd_gradient(x, y, w, b)
    return [
        ("the gradient is half of autograd's: the derivative of (p − y)² is 2(p − y)",
         true / 2),
        ("the sign is flipped: the derivative of (p − y)² is 2(p − y), prediction minus "
         "target", -true),
        ("the gradient is n times autograd's: the loss is a mean, so average over the "
         "examples instead of summing", true * len(x)),
    ]


def numerical_slips(x, y, w, b, eps: float) -> list[Slip]:
    def at(dw: float, db: float) -> float:
        return float(loss(x, y, torch.tensor([w + dw, b + db], dtype=torch.float64)))

    centre = at(0, 0)
    true = autograd_gradient(x, y, w, b)
    one_sided = ("a one-sided difference: use the central difference "
                 "(L(w + eps) − L(w − eps)) / (2 * eps), exact for this quadratic loss")
    return [
        ("twice the gradient: divide by 2 * eps, the distance between w − eps and w + eps",
         true * 2),
        ("the difference was not divided by 2 * eps", true * 2 * eps),
        (one_sided, torch.tensor([(at(eps, 0) - centre) / eps, (at(0, eps) - centre) / eps])),
        (one_sided, torch.tensor([(centre - at(-eps, 0)) / eps, (centre - at(0, -eps)) / eps])),
    ]


def expect_gradients(ctx: Context, name: str, rows: slice, slips: Slips, atol: float) -> int:
    """Each returned gradient against autograd's, naming a known slip when one fits."""
    x, y = ctx.inputs["gradients.x"], ctx.inputs["gradients.y"]
    points = ctx.inputs["gradients.points"].tolist()
    got = ctx.got(f"{name}.values")
    if not isinstance(got, list) or len(got) != len(points):
        raise Failed(f"{name} did not return one gradient per call", None, describe(got))
    for (w, b), value in list(zip(points, got, strict=True))[rows]:
        what = f"{name}(x, y, w={w:.3g}, b={b:.3g})"
        out = expect_tensor(value, what)
        expect_shape(out, [(2,)], what)
        want = autograd_gradient(x, y, w, b)
        if not torch.allclose(out.double(), want, rtol=1e-3, atol=atol):
            for message, wrong in slips(x, y, w, b):
                if torch.allclose(out.double(), wrong.double(), rtol=1e-3, atol=atol):
                    raise Failed(message, describe(want), describe(out))
        expect_close(out, want, f"{what}, against autograd", rtol=1e-3, atol=atol)
    return len(points[rows])


def numerical(ctx: Context) -> Slips:
    eps = float(ctx.inputs["gradients.eps"])
    return lambda x, y, w, b: numerical_slips(x, y, w, b, eps)


# The seed's start and data are the tutorial's, the same for every grading: the value there
# counts only beside the grader's own points.
@CHECKS.add("analytic_grad", points=2, requires=("analytic_grad.matches_autograd_elsewhere",),
            reads=("analytic_grad.values",))
def matches_autograd_at_the_start(ctx: Context) -> str:
    expect_gradients(ctx, "analytic_grad", slice(0, 1), analytic_slips, 1e-4)
    return "At w = 1, b = 0 the gradient by hand equals autograd's."


@CHECKS.add("analytic_grad", points=1, hidden=True, reads=("analytic_grad.values",))
def matches_autograd_elsewhere(ctx: Context) -> str:
    count = expect_gradients(ctx, "analytic_grad", slice(1, None), analytic_slips, 1e-4)
    return f"At {count} more (w, b) points the gradient by hand equals autograd's."


@CHECKS.add("numerical_grad", points=2,
            requires=("numerical_grad.matches_autograd_elsewhere_too",),
            reads=("numerical_grad.values",))
def central_difference_matches_autograd(ctx: Context) -> str:
    atol = ctx.options.gradient_atol
    expect_gradients(ctx, "numerical_grad", slice(0, 1), numerical(ctx), atol)
    return f"At w = 1, b = 0 the central difference is within {atol:g} of autograd."


@CHECKS.add("numerical_grad", points=1, hidden=True, reads=("numerical_grad.values",))
def matches_autograd_elsewhere_too(ctx: Context) -> str:
    atol = ctx.options.gradient_atol
    count = expect_gradients(ctx, "numerical_grad", slice(1, None), numerical(ctx), atol)
    return f"At {count} more (w, b) points the central difference is within {atol:g}."


# --- split_indices -----------------------------------------------------------------------

def split_parts(value, n: int) -> tuple[list[int], list[int]]:
    what = f"split_indices({n}, …)"
    if not isinstance(value, list) or len(value) != 2:
        raise Failed(f"{what} must return a pair (train_indices, val_indices)",
                     "(train_indices, val_indices)", describe(value))
    train, val = (expect_tensor(part, f"{what}'s {name}")
                  for part, name in zip(value, ("train_indices", "val_indices"), strict=True))
    for part in (train, val):
        if part.dtype != torch.int64:
            raise Failed(f"{what} must return int64 index tensors", "torch.int64",
                         str(part.dtype))
    return train.reshape(-1).tolist(), val.reshape(-1).tolist()


def expect_indices(train: list[int], val: list[int], n: int) -> None:
    """Each set holds distinct indices of range(n): the indices of this n, not another's."""
    for part, name in ((train, "training"), (val, "validation")):
        if len(set(part)) != len(part) or not set(part) <= set(range(n)):
            raise Failed(f"for n = {n} the {name} set is not made of distinct indices of "
                         "range(n): slice one torch.randperm(n)", f"distinct indices < {n}",
                         str(part[:10]))


def expect_validation_size(val: list[int], n: int, fraction: float) -> None:
    if len(val) != int(fraction * n):
        raise Failed(f"for n = {n} and val_fraction = {fraction:g} the validation set holds "
                     f"{len(val)} indices, not int(val_fraction * n) = {int(fraction * n)}",
                     f"{int(fraction * n)}", f"{len(val)}")


def expect_sizes(train: list[int], val: list[int], n: int, fraction: float) -> None:
    n_val = int(fraction * n)
    if (len(train), len(val)) == (n - n_val - 1, n_val):
        raise Failed(f"for n = {n} the training set misses one index: shuffled[n_val:-1] "
                     "drops the last one; take shuffled[n_val:]",
                     f"{n - n_val} training indices", f"{len(train)}")
    if (len(train), len(val)) == (n_val, n - n_val) and n_val != n - n_val:
        raise Failed(f"for n = {n} the two sets are swapped: return (train_indices, "
                     "val_indices), the validation set holding int(val_fraction * n)",
                     f"{n - n_val} and {n_val}", f"{len(train)} and {len(val)}")
    if (len(train), len(val)) != (n - n_val, n_val):
        raise Failed(f"for n = {n} and val_fraction = {fraction:g} the sets hold "
                     f"{len(train)} and {len(val)} indices; the validation set holds "
                     f"int(val_fraction * n) = {n_val}, the training set the rest",
                     f"{n - n_val} and {n_val}", f"{len(train)} and {len(val)}")


def expect_partition(train: list[int], val: list[int], n: int) -> None:
    both = set(train) & set(val)
    if both:
        raise Failed(f"for n = {n}, {len(both)} indices are in both the training and the "
                     "validation set: slice one permutation, train = shuffled[n_val:] and "
                     "val = shuffled[:n_val]", "disjoint sets", f"{len(both)} shared")
    missing = set(range(n)) - set(train) - set(val)
    if missing or sorted(train + val) != list(range(n)):
        raise Failed(f"for n = {n} the two sets do not cover range(n) exactly once: "
                     f"{len(missing)} indices are in neither, and every index must be in one",
                     f"each of the {n} indices once", f"{len(set(train + val))} distinct")


def split_cases(ctx: Context) -> list[tuple[int, float, list]]:
    return [(int(n), fraction, runs) for (n, fraction), runs
            in zip(ctx.inputs["split.cases"], ctx.got("split_indices.cases"), strict=True)]


@CHECKS.add("split_indices", points=1)
def sizes_follow_the_fraction(ctx: Context) -> str:
    for n, fraction, runs in split_cases(ctx):
        train, val = split_parts(runs[0], n)
        expect_sizes(train, val, n, fraction)
        expect_indices(train, val, n)
    return "int(val_fraction * n) validation indices, the rest for training."


@CHECKS.add("split_indices", points=2)
def covers_every_index_once(ctx: Context) -> str:
    for n, _, runs in split_cases(ctx):
        expect_partition(*split_parts(runs[0], n), n)
    return "Disjoint sets that together cover range(n)."


@CHECKS.add("split_indices", points=1)
def random_and_reproducible(ctx: Context) -> str:
    for n, fraction, runs in split_cases(ctx):
        first, again, other = (split_parts(run, n) for run in runs)
        for train, val in (first, again, other):
            expect_indices(train, val, n)
            expect_validation_size(val, n, fraction)
        if n >= 50 and first[1] + first[0] == list(range(n)):
            raise Failed(f"for n = {n} the indices come in order: shuffle them with "
                         "torch.randperm", "a random order", str(first[1][:10]))
        if first != again:
            raise Failed("the same torch.manual_seed gave two different splits: draw the "
                         "order with torch.randperm (not random or NumPy), so that "
                         "torch.manual_seed makes it reproducible", "the same split",
                         "a different split")
        if n >= 50 and first == other:
            raise Failed("two different seeds gave the same split: draw a fresh "
                         "torch.randperm on every call", "different splits", "the same")
    return "Shuffled by torch.randperm: the same seed gives the same split."


@CHECKS.add("split_indices", points=1, hidden=True)
def handles_small_sets(ctx: Context) -> str:
    for (n, fraction), value in zip(ctx.inputs["split.edges"], ctx.got("split_indices.edges"),
                                    strict=True):
        train, val = split_parts(value, int(n))
        expect_sizes(train, val, int(n), fraction)
        expect_partition(train, val, int(n))
    return "Small sets and an empty validation set work too."


# --- training_loop -----------------------------------------------------------------------

def trained(ctx: Context, key: str, what: str) -> torch.Tensor:
    out = expect_tensor(ctx.got(key), what)
    expect_shape(out, [(2,)], what)
    return out


def expect_reference_run(ctx: Context, key: str, prefix: str) -> str:
    epochs = int(ctx.inputs[f"{prefix}.epochs"])
    got = trained(ctx, key, f"[w, b] after {epochs} steps")
    want = ctx.want(key)
    x, y = ctx.inputs[f"{prefix}.x"], ctx.inputs[f"{prefix}.y"]
    got_loss, want_loss = (float(loss(x, y, p.double())) for p in (got, want))
    tolerance = ctx.options.tolerance
    if not max_difference(got, want) <= tolerance:
        raise Failed(f"after {epochs} steps at lr {ctx.inputs[f'{prefix}.lr']:g} w, b = "
                     f"{got.tolist()} with loss {got_loss:.4g}; the reference reaches "
                     f"{[round(v, 4) for v in want.tolist()]} with loss {want_loss:.4g}",
                     describe(want), describe(got))
    return (f"w = {float(got[0]):.4f}, b = {float(got[1]):.4f}, loss {got_loss:.4g} "
            f"(reference loss {want_loss:.4g}).")


# The seed's run is the same for every grading: it counts only beside a run on hidden data.
@CHECKS.add("autograd_training", points=1, requires=("autograd_training.trains_on_other_data",))
def reproduces_the_seed_run(ctx: Context) -> str:
    return expect_reference_run(ctx, "training_loop.seed_run", "training")


@CHECKS.add("autograd_training", points=1)
def zeroes_the_gradient_every_step(ctx: Context) -> str:
    got = trained(ctx, "training_loop.two_steps", "[w, b] after 2 steps")
    x, y = ctx.inputs["training_other.x"], ctx.inputs["training_other.y"]
    lr = float(ctx.inputs["training_other.lr"])
    start = ctx.inputs["training_other.start"].double()
    first = autograd_gradient(x, y, *start.tolist())
    middle = start - lr * first
    second = autograd_gradient(x, y, *middle.tolist())
    if torch.allclose(got.double(), middle - lr * (first + second), rtol=1e-4, atol=1e-5):
        raise Failed("the second step used the sum of both steps' gradients: autograd adds "
                     "each new gradient to params.grad, so zero it every step "
                     "(params.grad.zero_())", describe(middle - lr * second), describe(got))
    expect_close(got, middle - lr * second, "[w, b] after 2 steps", rtol=1e-4, atol=1e-5)
    return "Two steps give exactly two plain gradient-descent steps."


AUTOGRAD_CALLS = ("torch.Tensor.backward", "torch.autograd.backward", "torch.autograd.grad")


# The exercise's goal is autograd: the kernel's report of it counts only beside the two
# steps' values verified here, so a forged report earns nothing on its own.
@CHECKS.add("autograd_training", points=1,
            requires=("autograd_training.zeroes_the_gradient_every_step",),
            reads=("training_loop.autograd",))
def gradients_come_from_autograd(ctx: Context) -> str:
    seen = ctx.got("training_loop.autograd")
    if not isinstance(seen, dict):
        raise Failed("the grader could not watch training_loop's gradients", "a report",
                     describe(seen))
    gradients = seen.get("gradients")
    reached = seen.get(TORCH_CALLS) if isinstance(seen.get(TORCH_CALLS), list) else []
    if gradients == 0 and not set(reached) & set(AUTOGRAD_CALLS):
        raise Failed("training_loop computed its gradients without autograd: the exercise "
                     "is autograd, so call loss.backward() and read params.grad instead of "
                     "working the gradient out by hand", "gradients from loss.backward()",
                     "no backward() call")
    return "The gradients come from autograd: backward() fills params.grad."


@CHECKS.add("autograd_training", points=1, hidden=True)
def trains_on_other_data(ctx: Context) -> str:
    return expect_reference_run(ctx, "training_loop.other_data", "training_other")


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),), options=Options,
                       make_inputs=make_inputs, hints=HINTS)
