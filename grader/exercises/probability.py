"""Grader side of the probability exercises (seed 000): running estimates of a die's face
probabilities, and the normal density, checked against the reference and against
torch.distributions computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch.nn.functional import one_hot

from grader.authoring.exercise import Declaration, Step
from grader.authoring.option_types import Fraction
from grader.exercises import probability_probes as probes
from grader.exercises._shared import finite_values
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import (
    describe,
    expect_close,
    expect_gradient,
    expect_shape,
    expect_tensor,
    max_difference,
)
from grader.grading.results import Curve

CHECKS = Registry()
HINTS = {"normal.": [
    ("numpy()", "use torch.exp, not np.exp: NumPy cannot follow autograd's graph"),
    ("must be Tensor", "convert x with torch.as_tensor(x) first, so that numbers and NumPy "
                       "arrays work too"),
]}
ROLLS_PER_GROUP = 10
FAIR_DIE = torch.ones(6) / 6
LOADED_DIE = torch.tensor([0.1, 0.2, 0.3, 0.4])
DICE_INPUTS = {"estimate_probabilities.seeded": "dice.counts",
               "estimate_probabilities.many": "dice.many",
               "estimate_probabilities.loaded": "dice.loaded"}
SEED_PAIRS = [(0.0, 1.0), (0.0, 2.0), (3.0, 1.0)]


@dataclass(frozen=True)
class Options:
    """[probability]: the dice's long run."""

    # Groups of 10 rolls, and how close to 1/6 the last estimates must be.
    dice_groups: Annotated[int, Field(ge=100)] = 5000
    dice_tolerance: Fraction = 0.01


def roll(generator: torch.Generator, probs: torch.Tensor, groups: int) -> torch.Tensor:
    """Counts per face of `groups` groups of rolls, int64 of shape (groups, faces)."""
    faces = torch.multinomial(probs, groups * ROLLS_PER_GROUP, replacement=True,
                              generator=generator)
    return one_hot(faces.reshape(groups, ROLLS_PER_GROUP), len(probs)).sum(dim=1)


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    """The seed's 500 groups of a fair die, many more groups, and a loaded four-sided die."""
    mu = float(torch.empty(1).uniform_(-2, 2, generator=generator))
    sigma = float(torch.empty(1).uniform_(0.5, 3, generator=generator))
    return {  # counts of at most 10 fit in uint8: the shipped public inputs stay small
        "dice.counts": roll(generator, FAIR_DIE, 500).to(torch.uint8),
        "dice.many": roll(generator, FAIR_DIE, options.dice_groups).to(torch.uint8),
        "dice.loaded": roll(generator, LOADED_DIE, 50).to(torch.uint8),
        "normal.grid": torch.arange(-7, 7, 0.01),
        "normal.pairs": torch.tensor([*SEED_PAIRS, (mu, sigma)]),
        "normal.params": torch.tensor([-mu, sigma + 0.5]),
        "normal.matrix": torch.randn(6, 7, generator=generator) * 3,
        "normal.number": 0.5,
        "normal.array": torch.randn(3, 4, generator=generator, dtype=torch.float64),
    }


# --- estimate_probabilities --------------------------------------------------------------

def estimates_output(ctx: Context, key: str) -> torch.Tensor:
    counts = ctx.inputs[DICE_INPUTS[key]]
    out = expect_tensor(ctx.got(key)["out"], "estimate_probabilities's result")
    expect_shape(out, [tuple(counts.shape)], "estimate_probabilities's result")
    return out


def name_the_slip(counts: torch.Tensor, out: torch.Tensor) -> None:
    """Fail naming the mistake when the estimates follow a known wrong recipe."""
    counts = counts.double()
    cum = counts.cumsum(dim=0)
    by_faces = counts.cumsum(dim=1)
    recipes = {
        "the estimates are normalised by the grand total of all cumulative counts "
        "(cum_counts.sum()) instead of each row's own total: divide by "
        "cum_counts.sum(dim=1, keepdim=True)": cum / cum.sum(),
        "each row uses its own group only: accumulate over the groups with "
        "counts.cumsum(dim=0) first": counts / counts.sum(dim=1, keepdim=True),
        "the counts were accumulated over the faces (dim=1) instead of over the groups "
        "(dim=0)": by_faces / by_faces.sum(dim=1, keepdim=True),
        "each column was divided by its own total (dim=0): divide each row by its total, "
        "cum_counts.sum(dim=1, keepdim=True)": cum / cum.sum(dim=0, keepdim=True),
    }
    for message, wrong in recipes.items():
        if torch.allclose(out.double(), wrong, rtol=1e-4, atol=1e-7):
            raise Failed(message, None, describe(out))


def expect_estimates(ctx: Context, key: str, what: str) -> torch.Tensor:
    out = estimates_output(ctx, key)
    want = ctx.want(key)["out"]
    if not torch.allclose(out.double(), want.double(), rtol=1e-5, atol=1e-7):
        name_the_slip(ctx.inputs[DICE_INPUTS[key]], out)
    expect_close(out, want, what, rtol=1e-5, atol=1e-7)
    return out


def expect_rows_from_the_counts(counts: torch.Tensor, out: torch.Tensor) -> None:
    """Each row is proportional to its group's counts, accumulated or alone: the row belongs
    to its group of these counts, as neither a constant nor other rolls' rows do."""
    for basis in (counts.double().cumsum(dim=0), counts.double()):
        scale = out.double().sum(dim=1, keepdim=True) / basis.sum(dim=1, keepdim=True)
        if bool((scale > 0).all()) and torch.allclose(out.double() / scale, basis, rtol=1e-4,
                                                      atol=1e-3):
            return
    raise Failed("the rows do not follow the counts: row i must be the counts of the first i "
                 "groups (counts.cumsum(dim=0)) divided by their total", None, describe(out))


@CHECKS.add("estimate_probabilities", points=1)
def returns_one_row_per_group(ctx: Context) -> str:
    out = estimates_output(ctx, "estimate_probabilities.seeded")
    expect_rows_from_the_counts(ctx.inputs["dice.counts"], out)
    return "One row of estimates per group, one column per face."


@CHECKS.add("estimate_probabilities", points=1)
def rows_sum_to_one(ctx: Context) -> str:
    out = estimates_output(ctx, "estimate_probabilities.seeded")
    sums = out.double().sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        name_the_slip(ctx.inputs["dice.counts"], out)
        raise Failed("the rows do not sum to 1: divide each row of the cumulative counts by "
                     "its own total", "rows summing to 1", describe(sums))
    expect_rows_from_the_counts(ctx.inputs["dice.counts"], out)
    return "Every row is a probability distribution."


@CHECKS.add("estimate_probabilities", points=2)
def estimates_match_the_reference(ctx: Context) -> str:
    expect_estimates(ctx, "estimate_probabilities.seeded", "the estimates")
    return "The running estimates match the reference within rtol 1e-5."


@CHECKS.add("estimate_probabilities", points=2)
def approaches_the_true_probabilities(ctx: Context) -> str:
    out = expect_estimates(ctx, "estimate_probabilities.many",
                           f"the estimates over {len(ctx.inputs['dice.many'])} groups")
    tolerance = ctx.options.dice_tolerance
    first, last = (max_difference(out[row], FAIR_DIE) for row in (0, -1))
    if not last <= tolerance:
        raise Failed(f"after {len(out)} groups of {ROLLS_PER_GROUP} rolls of a fair die the "
                     f"estimates are off 1/6 by up to {last:.3g}, more than {tolerance:g}",
                     f"within {tolerance:g} of 1/6", describe(out[-1]))
    return (f"Off 1/6 by {first:.3g} after one group and by {last:.3g} after {len(out)} "
            f"(tolerance {tolerance:g}).")


@CHECKS.add("estimate_probabilities", points=1, hidden=True)
def handles_integer_counts_and_other_dice(ctx: Context) -> str:
    expect_estimates(ctx, "estimate_probabilities.loaded",
                     "the estimates for int64 counts of a four-sided die")
    return "int64 counts and a four-sided die work too."


@CHECKS.add("estimate_probabilities", points=1)
def leaves_counts_unchanged(ctx: Context) -> str:
    """Counts only beside rows that follow the counts: any non-answer leaves them alone."""
    ctx.judged_only_if("estimate_probabilities.returns_one_row_per_group",
                       "no estimates were returned, so leaving counts alone says nothing yet")
    after = expect_tensor(ctx.got("estimate_probabilities.seeded")["counts_after"],
                          "counts after the call")
    if after.shape != ctx.inputs["dice.counts"].shape \
            or not torch.equal(after, ctx.inputs["dice.counts"].float()):
        raise Failed("estimate_probabilities modified counts in place (e.g. cumsum_): use "
                     "counts.cumsum(dim=0), which returns a new tensor", "counts untouched",
                     "counts changed")
    return "counts is left untouched."


def curves(ctx: Context) -> list[Curve]:
    """The running estimate of each face against the number of groups, as in the seed."""
    try:
        out = estimates_output(ctx, "estimate_probabilities.seeded")
    except Failed:
        return []
    groups = list(range(1, len(out) + 1))
    faces = {f"P(die={face + 1})": finite_values(out[:, face].tolist())
             for face in range(out.shape[1])}
    return [Curve("estimate_probabilities: running estimates", "groups of experiments",
                  "estimated probability", groups, [], [1 / 6] * len(groups), faces)]


# --- normal ------------------------------------------------------------------------------

def true_density(x, params: torch.Tensor) -> torch.Tensor:
    """The density from torch.distributions, in float64, computed here."""
    mu, sigma = (float(v) for v in params)
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.distributions.Normal(mu, sigma).log_prob(x).exp()


def expect_density_tensor(value, what: str) -> torch.Tensor:
    """The returned density as a tensor, naming np.exp and math.exp when it is not one."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        raise Failed(f"{what} returned a Python number, not a tensor: np.exp and math.exp "
                     "give NumPy or Python numbers; use torch.exp on torch.as_tensor(x)",
                     "a 0-d tensor", describe(value))
    if isinstance(value, dict) and str(value.get("type", "")).startswith("numpy"):
        raise Failed(f"{what} returned a NumPy array, not a tensor: convert x with "
                     "torch.as_tensor(x) and use torch.exp, not np.exp", "a tensor",
                     describe(value))
    return expect_tensor(value, what)


@CHECKS.add("normal", points=2)
def values_match_the_reference(ctx: Context) -> str:
    got = ctx.got("normal.grid")
    want = ctx.want("normal.grid")
    pairs = ctx.inputs["normal.pairs"].tolist()
    if not isinstance(got, list) or len(got) != len(pairs):
        raise Failed("normal did not return one result per call", None, describe(got))
    wrong = []
    for (mu, sigma), out, expected in zip(pairs, got, want, strict=True):
        out = expect_density_tensor(out, f"normal(x, {mu:g}, {sigma:.3g})")
        expect_shape(out, [tuple(expected.shape)], f"normal(x, {mu:g}, {sigma:.3g})")
        if not torch.allclose(out.double(), expected.double(), rtol=1e-5, atol=1e-7):
            wrong.append((mu, sigma, out, expected))
    if wrong and all(sigma != 1 for _, sigma, _, _ in wrong):
        _, sigma, out, expected = wrong[0]
        raise Failed(f"the density is right for σ = 1 but not for σ = {sigma:.3g}: σ is the "
                     "standard deviation; use the variance σ² in both 1/sqrt(2πσ²) and "
                     "exp(−(x − μ)² / (2σ²))", describe(expected), describe(out))
    for mu, sigma, out, expected in wrong:
        expect_close(out, expected, f"normal(x, {mu:g}, {sigma:.3g})", rtol=1e-5, atol=1e-7)
    return "The density matches the reference on the seed's grid, σ = 1 and σ ≠ 1."


@CHECKS.add("normal", points=1)
def matches_torch_distributions(ctx: Context) -> str:
    out = expect_density_tensor(ctx.got("normal.matrix"), "normal on a (6, 7) tensor")
    want = true_density(ctx.inputs["normal.matrix"], ctx.inputs["normal.params"])
    expect_close(out, want, "normal on a (6, 7) tensor", rtol=1e-5, atol=1e-7)
    return "Equal to torch.distributions.Normal(mu, sigma).log_prob(x).exp()."


@CHECKS.add("normal", points=1)
def accepts_numbers_and_numpy_arrays(ctx: Context) -> str:
    params = ctx.inputs["normal.params"]
    number = expect_density_tensor(ctx.got("normal.number"), "normal(0.5, mu, sigma)")
    if number.numel() != 1:
        raise Failed("normal of a number must be a single value", "a 0-d tensor",
                     describe(number))
    if number.dim():
        ctx.accept("a one-element tensor instead of a 0-d one for a number")
    expect_close(number.reshape(()), true_density(ctx.inputs["normal.number"], params),
                 "normal(0.5, mu, sigma)", rtol=1e-5, atol=1e-7)
    array = expect_density_tensor(ctx.got("normal.array"), "normal of a NumPy array")
    expect_close(array, true_density(ctx.inputs["normal.array"], params),
                 "normal of a NumPy array", rtol=1e-5, atol=1e-7)
    return "Python numbers and NumPy arrays give tensors of the right values."


@CHECKS.add("normal", points=1, hidden=True)
def keeps_the_graph(ctx: Context) -> str:
    grad = expect_gradient(ctx.got("normal.gradient"), "reached x", "compute with torch "
                           "operations only (torch.exp, not np.exp or math.exp)")
    expect_close(expect_tensor(grad, "the gradient"), ctx.want("normal.gradient"),
                 "d(sum of densities)/dx", rtol=1e-4, atol=1e-7)
    return "Autograd differentiates the density with respect to x."


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),), options=Options,
                       make_inputs=make_inputs, hints=HINTS, curves=curves)
