"""Grader side of softmax regression from scratch: hidden inputs and checks, the trained
model's test accuracy (computed here, on the real Fashion-MNIST test set) and the timed epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grader.authoring.datasets import FASHION_MNIST
from grader.authoring.exercise import Declaration, Step
from grader.authoring.option_types import Positive
from grader.exercises import softmax_probes as probes
from grader.exercises._shared import (
    BLANK_PIXELS,
    Training,
    as_number,
    expect_started_from,
    expect_test_accuracy,
    finite_values,
    shareable,
)
from grader.grading.checks import Context, Failed, NotJudged, Registry
from grader.grading.expect import (
    WrongForm,
    describe,
    expect_close,
    expect_close_naming,
    expect_fast_enough,
    expect_finite,
    expect_gradient,
    expect_per_example,
    expect_shape,
    expect_tensor,
    name_the_wrong_form,
    same_losses,
    same_value,
    slowest_part,
    small_values,
    with_counterexample,
)
from grader.grading.forbidden import Forbidden
from grader.grading.results import Curve
from grader.kernel.probing import function_of, functions_of

CHECKS = Registry()
# The probes on the training's own kind of input (a float batch, int64 labels of shape (n,),
# backward through both): a function raising on another input (a float64 one, ties, a
# candidate case) loses that test only, not the training's.
TRAINING_USES = ("softmax.values", "softmax.gradient", "cross_entropy.values", "accuracy.values")
USES = {key: functions_of(TRAINING_USES) for key in ("epoch.prepare", "epoch.run")}
# How far the timed epoch's weights may be from the reference's trained on the same batches:
# equivalent forms of the three functions land within 1e-6 (relative), another batch order
# 3e-2 away.
SAME_TRAINING = 1e-3
KEEPDIM = ("must match the size", "divide by the row sums taken with keepdim=True, e.g. "
           "X_exp.sum(dim=1, keepdim=True): without it they broadcast along the wrong axis")
ARGMAX = ("must match the size", "take the argmax over dim=1, the classes, not dim=0")
HINTS = {"softmax.": [KEEPDIM], "accuracy.": [ARGMAX], "epoch.": [KEEPDIM]}
SOFTMAX_CALLS = ("softmax", "log_softmax", "special.softmax", "special.log_softmax",
                 "nn.functional.softmax", "nn.functional.log_softmax", "nn.Softmax",
                 "nn.LogSoftmax", "Tensor.softmax", "Tensor.log_softmax")
LOSS_CALLS = ("nn.functional.cross_entropy", "nn.functional.nll_loss", "nn.CrossEntropyLoss",
              "nn.NLLLoss")
# The library calls that would do a from-scratch function's work (PrairieLearn's not_allowed).
FORBIDDEN = {
    "softmax": Forbidden(tuple(f"torch.{call}" for call in SOFTMAX_CALLS),
                         "Write it with exp, sum and a division: subtract each row's max, "
                         "then X_exp / X_exp.sum(dim=1, keepdim=True)."),
    "cross_entropy": Forbidden(tuple(f"torch.{call}" for call in LOSS_CALLS),
                               "Pick each example's probability and take its log: "
                               "-torch.log(y_hat[range(len(y_hat)), y])."),
    "accuracy": Forbidden(("sklearn.metrics.accuracy_score",
                           "torchmetrics.functional.accuracy", "torchmetrics.Accuracy"),
                          "Compare y_hat.argmax(dim=1) with y and average the hits."),
}
# The last row spreads over 100: shifted by its minimum instead of its maximum, exp(100)
# overflows float32.
LARGE_ROWS = [[1000.0, 1010.0, 1020.0], [100.0, 101.0, 102.0], [-2.0, -1.0, 0.0],
              [0.0, 0.0, 0.0], [-50.0, 0.0, 50.0]]
# Rows with tied maxima, ahead of the generator's own: torch.argmax takes the first maximal
# class, so the accuracy of these four is 0.75 where a tie counted for every class gives 1.
TIED_ROWS = [[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0], [0.5, 0.0, 0.5]]
TIED_LABELS = [0, 1, 0, 2]
# Candidate inputs from small to large, on which a failed value check shows the first where
# the student's function and the reference's disagree: (rows, columns, an offset added to
# the first row: exp overflows float32 above ~88) of softmax; (examples, classes) of
# cross_entropy; (examples, classes, hits) of accuracy (all hits first: a floor division
# agrees there).
SOFTMAX_CASES = ((1, 2, 0.0), (2, 3, 0.0), (2, 3, 100.0), (3, 4, 1000.0))
CROSS_ENTROPY_CASES = ((1, 2), (2, 3), (3, 4))
ACCURACY_CASES = ((1, 2, 1), (2, 2, 1), (3, 3, 2), (4, 3, 1))


@dataclass(frozen=True)
class Options(Training):
    """[softmax]: the training, and the timed epoch's bound."""

    # Full points when the student's epoch takes at most this many times the reference's.
    max_epoch_ratio: Positive = 5.0


def make_inputs(generator: torch.Generator, options: Options, notebook: dict) -> dict:
    y_hat = torch.softmax(torch.randn(32, 10, generator=generator) * 2, dim=1)
    offsets = torch.randint(500, 3000, (4, 1), generator=generator).float()
    large = torch.cat([torch.tensor(LARGE_ROWS),
                       torch.randn(4, 3, generator=generator) * 5 + offsets])
    return {
        "softmax.X": torch.randn(64, 10, generator=generator) * 3,
        "softmax.large": large,
        "softmax.X64": torch.randn(8, 6, generator=generator, dtype=torch.float64),
        "softmax.grad_X": torch.randn(16, 10, generator=generator),
        "softmax.grad_R": torch.randn(16, 10, generator=generator),
        "cross_entropy.y_hat": y_hat,
        "cross_entropy.y": torch.randint(0, 10, (32,), generator=generator),
        **accuracy_inputs(generator),
        "epoch.W0": torch.normal(0, 0.01, (784, 10), generator=generator),
        "epoch.blank_pixels": torch.tensor(BLANK_PIXELS),
        # Stands in for the grader's own: grading draws one per submission (late_inputs).
        "epoch.order_seed": int(torch.randint(0, 2**31 - 1, (1,), generator=generator)),
        "epoch.batch_size": options.batch_size,
        "epoch.lr": options.lr,
        **candidate_inputs(generator),
    }


def candidate_inputs(generator: torch.Generator) -> dict:
    """The candidate inputs of the value checks' counterexamples, each a list of arguments
    made of small numbers a student can follow by hand."""
    return {"softmax.cases": [[softmax_case(generator, *case)] for case in SOFTMAX_CASES],
            "cross_entropy.cases": [cross_entropy_case(generator, *case)
                                    for case in CROSS_ENTROPY_CASES],
            "accuracy.cases": [accuracy_case(generator, *case) for case in ACCURACY_CASES]}


def softmax_case(generator: torch.Generator, rows: int, columns: int,
                 offset: float) -> torch.Tensor:
    X = small_values(generator, rows, columns)
    X[0] += offset
    return X


def cross_entropy_case(generator: torch.Generator, n: int, classes: int) -> list[torch.Tensor]:
    """Probabilities from small integer weights, and labels."""
    weights = torch.randint(1, 10, (n, classes), generator=generator).float()
    return [weights / weights.sum(dim=1, keepdim=True),
            torch.randint(0, classes, (n,), generator=generator)]


def accuracy_case(generator: torch.Generator, n: int, classes: int,
                  hits: int) -> list[torch.Tensor]:
    """Scores without ties (0, 0.1, 0.2, … in some order), and labels with `hits` hits."""
    y_hat = torch.stack([torch.randperm(classes, generator=generator)
                         for _ in range(n)]).float() / 10
    return [y_hat, labels_with_hits(generator, y_hat.argmax(dim=1), hits, classes)]


def labels_with_hits(generator: torch.Generator, predicted: torch.Tensor, hits: int,
                     classes: int) -> torch.Tensor:
    """Labels that `hits` of the predictions, drawn at random, get right and the others
    miss."""
    n = len(predicted)
    hit = torch.zeros(n, dtype=torch.bool)
    hit[torch.randperm(n, generator=generator)[:hits]] = True
    missed = (predicted + torch.randint(1, classes, (n,), generator=generator)) % classes
    return torch.where(hit, predicted, missed)


def accuracy_inputs(generator: torch.Generator) -> dict:
    """Scores and labels with a drawn number of hits, so that the accuracy itself is hidden,
    and rows of small integers, full of tied maxima, after the four of TIED_ROWS."""
    n = int(torch.randint(40, 81, (1,), generator=generator))
    y_hat = torch.randn(n, 10, generator=generator)
    hits = int(torch.randint(n // 5, 4 * n // 5 + 1, (1,), generator=generator))
    y = labels_with_hits(generator, y_hat.argmax(dim=1), hits, 10)
    tied = int(torch.randint(16, 33, (1,), generator=generator))
    return {
        "accuracy.y_hat": y_hat,
        "accuracy.y": y,
        "accuracy.ties_y_hat": torch.cat([torch.tensor(TIED_ROWS), torch.randint(
            0, 3, (tied, 3), generator=generator).float()]),
        "accuracy.ties_y": torch.cat([torch.tensor(TIED_LABELS),
                                      torch.randint(0, 3, (tied,), generator=generator)]),
    }


# --- softmax -----------------------------------------------------------------------------

VALUES = "softmax.values_match_the_reference"
WRONG_VALUES = "the values are wrong"


def softmax_output(ctx: Context, value, what: str, like: torch.Tensor) -> torch.Tensor:
    out = expect_tensor(value, what)
    if like.shape[0] != like.shape[1] and tuple(out.shape) == tuple(like.T.shape):
        raise Failed(f"{what} has shape {tuple(out.shape)}: it is transposed; return one row "
                     "of probabilities per row of X",
                     str(tuple(like.shape)), str(tuple(out.shape)))
    expect_shape(out, [tuple(like.shape)], what)
    return out


def softmax_wrong_forms(X: torch.Tensor) -> list[WrongForm]:
    """The usual wrong softmaxes of X, as a student's float32 code computes them."""
    shifted = X - X.max(dim=1, keepdim=True).values
    return [
        WrongForm("softmax(X) returns exp(X) without dividing by the row sums: divide by "
                  "X_exp.sum(dim=1, keepdim=True)", value)
        for value in (X.exp(), shifted.exp())
    ] + [
        WrongForm("softmax(X) returns log-probabilities, X - logsumexp(X): take their exp",
                  X - X.logsumexp(dim=1, keepdim=True)),
        WrongForm("softmax(X) divides X by its row sums without taking exp first: "
                  "X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)",
                  X / X.sum(dim=1, keepdim=True)),
    ]


def expect_rows_normalised(out: torch.Tensor) -> None:
    """The usual wrong normalisations, told apart by what sums to 1 (whatever the shift)."""
    out = out.double()
    if torch.allclose(out.sum(dim=0), torch.ones(out.shape[1], dtype=torch.float64), atol=1e-4):
        raise Failed("the columns sum to 1 instead of the rows: softmax normalises the wrong "
                     "dim; normalise over dim=1 with keepdim=True", "rows summing to 1",
                     "the row sums: " + describe(out.sum(dim=1)))
    if abs(float(out.sum()) - 1) < 1e-4:
        raise Failed("the whole matrix sums to 1: divide each row by its own sum, "
                     "X_exp.sum(dim=1, keepdim=True), not by X_exp.sum()", "rows summing to 1",
                     "the row sums: " + describe(out.sum(dim=1)))


def with_smallest_X(ctx: Context):
    """A softmax failure, told with the smallest candidate X on which it also goes wrong
    (float32 near 1000 keeps ~1e-4: the large cases' tolerance)."""
    return with_counterexample(ctx, "softmax.cases", ("X",), lambda _, got, want: same_value(
        got, want, rtol=1e-3, atol=1e-5))


@CHECKS.add("softmax", points=2)
def values_match_the_reference(ctx: Context) -> str:
    X = ctx.inputs["softmax.X"]
    with with_smallest_X(ctx):
        out = softmax_output(ctx, ctx.got("softmax.values")["out"], "softmax(X)", X)
        expect_finite(out, "softmax(X)")
        want = ctx.want("softmax.values")["out"]
        if not torch.allclose(out.double(), want.double(), rtol=1e-5, atol=1e-6):
            expect_rows_normalised(out)
        expect_close_naming(out, want, "softmax(X)", softmax_wrong_forms(X), rtol=1e-5,
                            atol=1e-6)
    return "softmax(X) matches the reference within rtol 1e-5, atol 1e-6."


def expect_ranked_like(out: torch.Tensor, X: torch.Tensor) -> None:
    """Each row ranks the classes as its row of X does: softmax keeps the order of the
    scores, which neither a constant nor the rows of another X do."""
    steps = out.double().gather(1, X.argsort(dim=1)).diff(dim=1)
    if bool((steps < 0).any()) or not torch.equal(out.argmax(dim=1), X.argmax(dim=1)):
        raise Failed("the rows of softmax(X) do not rank the classes as the rows of X do: "
                     "the largest score must get the largest probability",
                     "the order of X in every row", describe(out))


@CHECKS.add("softmax", points=1)
def rows_sum_to_one(ctx: Context) -> str:
    X = ctx.inputs["softmax.X"]
    out = softmax_output(ctx, ctx.got("softmax.values")["out"], "softmax(X)", X)
    sums = out.double().sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5) or bool((out < 0).any()):
        raise Failed("the rows of softmax(X) are not probability distributions",
                     "non-negative rows summing to 1", describe(sums))
    expect_ranked_like(out, X)
    return "Every row is a probability distribution over X's classes, in X's order."


@CHECKS.add("softmax", points=2)
def stays_finite_on_large_inputs(ctx: Context) -> str:
    large = ctx.inputs["softmax.large"]
    with with_smallest_X(ctx):
        out = softmax_output(ctx, ctx.got("softmax.large"), "softmax on [1000, 1010, 1020]",
                             large)
        if not bool(torch.isfinite(out).all()):
            raise Failed("softmax gives NaN or inf on inputs like [1000, 1010, 1020] or "
                         "[-50, 0, 50]: exp overflows above ~88 in float32; subtract each "
                         "row's max first (its maximum, not its minimum)",
                         describe(ctx.want("softmax.large")[0]), describe(out[0]))
        # float32 carries ~7 digits: inputs in the thousands leave ~1e-4 of rounding after
        # the shift
        with ctx.judged_after(VALUES, WRONG_VALUES):
            expect_close(out, ctx.want("softmax.large"), "softmax on large inputs",
                         rtol=1e-3, atol=1e-5)
    return "Large inputs such as [1000, 1010, 1020] give finite, correct results."


@CHECKS.add("softmax", points=1)
def keeps_shape_and_dtype(ctx: Context) -> str:
    X64 = ctx.inputs["softmax.X64"]
    out = softmax_output(ctx, ctx.got("softmax.float64"), "softmax of a float64 X", X64)
    if out.dtype != X64.dtype:
        raise Failed("softmax changed the dtype: keep X's dtype", str(X64.dtype), str(out.dtype))
    if not scaled_exp_of(out, X64):  # a shape alone is no softmax: constants have one too
        raise NotJudged(f"not judged: the output is not exp(X) normalised along either dim, "
                        f"see {VALUES}")
    return "Shape and dtype are kept (float64 in, float64 out); the values are judged by " \
        "values_match_the_reference."


def scaled_exp_of(out: torch.Tensor, X: torch.Tensor) -> bool:
    """Whether `out` is exp(X) scaled row by row and column by column (log(out) - X a sum
    of a row term and a column term): a softmax over either dim, shifted or not, is; forged
    constants and another input's answer are not. Only then do its shape and dtype say
    anything of the student's function."""
    residual = out.double().log() - X.double()
    if not bool(torch.isfinite(residual).all()):
        return False
    residual = (residual - residual.mean(dim=1, keepdim=True)
                - residual.mean(dim=0, keepdim=True) + residual.mean())
    return float(residual.abs().max()) < 1e-6


@CHECKS.add("softmax", points=1)
def leaves_its_input_unchanged(ctx: Context) -> str:
    """Counts only beside a tensor of X's shape that varies with X: any non-answer (None, a
    constant, a forged object) leaves X alone too."""
    X = ctx.inputs["softmax.X"]
    out = softmax_output(ctx, ctx.got("softmax.values")["out"], "softmax(X)", X)
    if not (bool(torch.isfinite(out).all()) and bool((out != out.flatten()[0]).any())):
        raise NotJudged(f"not judged: softmax(X) returned a constant or non-finite tensor, so "
                        f"leaving X alone says nothing yet, see {VALUES}")
    after = expect_tensor(ctx.got("softmax.values")["input_after"], "X after softmax(X)")
    if not torch.equal(after, ctx.inputs["softmax.X"]):
        raise Failed("softmax modified X in place (e.g. X.exp_() or X -= …): return a new "
                     "tensor", "X untouched", "X changed")
    return "X is left untouched."


@CHECKS.add("softmax", points=1, hidden=True)
def softmax_gradient_matches(ctx: Context) -> str:
    grad = expect_gradient(ctx.got("softmax.gradient"), "flows back through softmax",
                           "use tensor operations only")
    with ctx.judged_after(VALUES, WRONG_VALUES):
        expect_close(expect_tensor(grad, "the gradient"), ctx.want("softmax.gradient"),
                     "the gradient through softmax", rtol=1e-4, atol=1e-6)
    return "Gradients flow through softmax as through the reference."


# --- cross_entropy -----------------------------------------------------------------------

def cross_entropy_output(ctx: Context) -> torch.Tensor:
    out = expect_tensor(ctx.got("cross_entropy.values")["out"], "cross_entropy's result")
    n = len(ctx.inputs["cross_entropy.y"])
    if tuple(out.shape) == (n, n):
        raise Failed("cross_entropy returned an (n, n) matrix: y_hat[:, y] picks a whole "
                     "column per label; pick one entry per row with y_hat[range(n), y]",
                     f"({n},)", str((n, n)))
    if out.dim() == 0:
        raise Failed("cross_entropy returned a single number: return the per-example losses, "
                     "not their sum or mean", f"shape ({n},)", describe(out))
    expect_shape(out, [(n,), (n, 1)], "cross_entropy's result")
    if out.dim() == 2:
        ctx.accept("losses of shape (n, 1), as y_hat.gather(1, y.view(-1, 1)) gives")
    return out.reshape(-1)


def with_smallest_losses(ctx: Context):
    """A cross_entropy failure, told with the smallest candidate on which it also goes
    wrong."""
    return with_counterexample(ctx, "cross_entropy.cases", ("y_hat", "y"),
                               same_losses(rtol=1e-5, atol=1e-6))


@CHECKS.add("cross_entropy", points=1)
def returns_per_example_cross_entropy(ctx: Context) -> str:
    with with_smallest_losses(ctx):
        expect_per_example(cross_entropy_output(ctx),
                           ctx.want("cross_entropy.values")["out"], "the losses")
    return "One loss per example."


def cross_entropy_wrong_forms(y_hat: torch.Tensor, y: torch.Tensor) -> list[WrongForm]:
    """The usual wrong cross-entropies of (y_hat, y), one loss per example."""
    picked = y_hat[torch.arange(len(y)), y]
    return [
        WrongForm("the losses are negative: the minus is missing; cross-entropy is "
                  "-log(y_hat[i, y[i]])", picked.log()),
        WrongForm("the log is missing: cross-entropy is -log(y_hat[i, y[i]]), not "
                  "-y_hat[i, y[i]]", -picked),
        WrongForm("the losses are the picked probabilities themselves: take -log of them",
                  picked),
        WrongForm("the losses use log10: cross-entropy takes the natural log, torch.log",
                  -picked.log10()),
        WrongForm("the losses use log2: cross-entropy takes the natural log, torch.log",
                  -picked.log2()),
        WrongForm("each loss sums -log over every class: pick only the label's entry, "
                  "y_hat[range(n), y]", -y_hat.log().sum(dim=1)),
    ]


@CHECKS.add("cross_entropy", points=2)
def picks_the_label_entries(ctx: Context) -> str:
    with with_smallest_losses(ctx):
        out = cross_entropy_output(ctx)
        want = ctx.want("cross_entropy.values")["out"]
        expect_finite(out, "the losses")
        forms = cross_entropy_wrong_forms(ctx.inputs["cross_entropy.y_hat"],
                                          ctx.inputs["cross_entropy.y"])
        expect_close_naming(out, want, "the losses", forms, rtol=1e-5, atol=1e-6)
    return "-log y_hat[i, y_i] for every example, within rtol 1e-5."


@CHECKS.add("cross_entropy", points=1, hidden=True)
def cross_entropy_gradient_matches(ctx: Context) -> str:
    grad = expect_gradient(ctx.got("cross_entropy.values")["grad"], "reached y_hat",
                           "build the loss with tensor operations")
    with ctx.judged_after("cross_entropy.picks_the_label_entries", WRONG_VALUES):
        expect_close(expect_tensor(grad, "the gradient"),
                     ctx.want("cross_entropy.values")["grad"], "d(sum of losses)/d(y_hat)",
                     rtol=1e-5, atol=1e-6)
    return "The gradient with respect to y_hat matches."


# --- accuracy ----------------------------------------------------------------------------

def as_fraction(ctx: Context, value, n: int, what: str) -> float:
    """The returned accuracy, a number or a one-element tensor; a count of hits is refused,
    since the handout's loop multiplies the fraction by the batch size."""
    value = as_number(ctx, value, what)
    if 1 < value <= n and float(value).is_integer():
        raise Failed(f"{what} returned {value:g}, the count of correct predictions: return "
                     "the fraction in [0, 1], as the docstring says (divide by len(y)); the "
                     "training loop multiplies it by the batch size", "a fraction in [0, 1]",
                     f"{value:g}")
    return float(value)


def accuracy_wrong_forms(y_hat: torch.Tensor, y: torch.Tensor) -> list[WrongForm]:
    """The usual wrong accuracies of (y_hat, y), as the function returns them."""
    hits = int((y_hat.argmax(dim=1) == y.reshape(-1)).sum())
    n, classes = len(y), y_hat.shape[1]
    return [
        WrongForm(f"integer division: {hits} // {n} rounds down to {hits // n}; divide "
                  "with / (or take .float().mean())", float(hits // n)),
        WrongForm(f"the count of hits is divided by the number of classes ({classes}) "
                  f"instead of the number of examples ({n}): divide by len(y)",
                  hits / classes),
        WrongForm("a percentage: return the fraction of correct predictions, in [0, 1]",
                  100 * hits / n),
        WrongForm("the error rate: return the fraction of correct predictions, not of "
                  "wrong ones", 1 - hits / n),
    ]


ACCURACY = "accuracy.accuracy_matches_the_reference"


def same_accuracy(arguments: list, got, want) -> bool:
    """An accuracy on a candidate input agrees as the check accepts it: the fraction of
    hits, as a number or a one-element tensor."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    return abs(got - float(want)) <= 1e-6


# 3 points: accuracy keeps its 4, since the (n, 1)-labels check (no seed's accuracy takes
# them) was dropped.
@CHECKS.add("accuracy", points=3)
def accuracy_matches_the_reference(ctx: Context) -> str:
    n = len(ctx.inputs["accuracy.y"])
    with with_counterexample(ctx, "accuracy.cases", ("y_hat", "y"), same_accuracy):
        value = ctx.got("accuracy.values")
        got = as_fraction(ctx, value, n, "accuracy")
        want = float(ctx.want("accuracy.values"))
        if abs(got - want) > 1e-6:
            name_the_wrong_form(as_number(ctx, value, "accuracy"), accuracy_wrong_forms(
                ctx.inputs["accuracy.y_hat"], ctx.inputs["accuracy.y"]), f"{want:.4g}")
        expect_same_accuracy(got, want, "accuracy")
    return f"accuracy = {got:.3f}, as the reference."


def expect_same_accuracy(got: float, want: float, what: str) -> None:
    if abs(got - want) > 1e-6:
        raise Failed(f"{what} is {got:.4g}, the reference gives {want:.4g}", f"{want:.4g}",
                     f"{got:.4g}")


def every_maximum_counted(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """The accuracy where a tie counts as a hit for each of its maximal classes."""
    maximal = y_hat == y_hat.max(dim=1, keepdim=True).values
    return float(maximal[torch.arange(len(y)), y].double().mean())


@CHECKS.add("accuracy", points=1, hidden=True)
def breaks_ties_like_argmax(ctx: Context) -> str:
    y_hat, y = ctx.inputs["accuracy.ties_y_hat"], ctx.inputs["accuracy.ties_y"]
    what = "accuracy on rows with tied maxima"
    with ctx.judged_after(ACCURACY, WRONG_VALUES):  # a count is refused there already
        got = as_fraction(ctx, ctx.got("accuracy.ties"), len(y), what)
    want = float(ctx.want("accuracy.ties"))
    if abs(got - want) > 1e-6 and abs(got - every_maximum_counted(y_hat, y)) <= 1e-6:
        raise Failed(f"{what}: a tie counted as a hit for every maximal class; compare y with "
                     f"torch.argmax, which takes the first (on the rows {TIED_ROWS} with "
                     f"labels {TIED_LABELS}: 0.75, not 1)", f"{want:.4g}", f"{got:.4g}")
    with ctx.judged_after(ACCURACY, WRONG_VALUES):
        expect_same_accuracy(got, want, what)
    return "Ties go to the first maximal class, as torch.argmax does."


# --- training on Fashion-MNIST -----------------------------------------------------------

def epoch_observed(ctx: Context) -> dict:
    """The trained parameters, or the first failure among the epoch's two steps."""
    ctx.got("epoch.prepare")
    return ctx.got("epoch.run")


def expect_same_training(ctx: Context) -> None:
    """The timed epoch trained on the batches it was handed: its weights are the reference's
    from the same order (no epoch run ahead, or with other batches, comes close)."""
    W = expect_tensor(epoch_observed(ctx)["W"], "the trained W")
    want = ctx.want("epoch.run")["W"]
    expect_shape(W, [tuple(want.shape)], "the trained W")
    distance = float((W.double() - want.double()).norm() / want.double().norm())
    if not distance <= SAME_TRAINING:
        raise Failed(f"the timed epoch's weights are {distance:.2g} (relative) away from the "
                     "reference's trained on the same batches: speed counts only for the "
                     "epoch the grader timed, trained as the tutorial's loop trains",
                     f"≤ {SAME_TRAINING:g}", f"{distance:.2g}")


@CHECKS.add("softmax_training", points=3, uses=TRAINING_USES)
def reaches_the_test_accuracy(ctx: Context) -> str:
    observed = epoch_observed(ctx)
    expect_started_from(observed, ctx.inputs["epoch.W0"], ctx.inputs["epoch.blank_pixels"],
                        "the training loop")
    return expect_test_accuracy(ctx, observed, ctx.want("epoch.run"), "with your functions")


@CHECKS.add("softmax_training", points=2, uses=TRAINING_USES, timed=True)
def epoch_is_fast_enough(ctx: Context) -> str:
    try:
        reaches_the_test_accuracy(ctx)
    except Failed as failure:  # an epoch that does not train proves nothing by its speed
        raise NotJudged(f"not judged: speed counts only for an epoch that trains "
                        f"({failure.message.rstrip('.')}), see "
                        "softmax_training.reaches_the_test_accuracy") from None
    expect_same_training(ctx)
    return expect_fast_enough(ctx.timings.get("epoch.run"), "one epoch", epoch_advice(ctx))


SLOW_ADVICE = {
    "softmax": "a loop over rows? exponentiate and sum whole rows at once "
               "(.sum(dim=1, keepdim=True))",
    "cross_entropy": "a loop over examples? pick every row's entry at once: "
                     "y_hat[range(len(y_hat)), y]",
    "accuracy": "a loop over examples? compare y_hat.argmax(dim=1) with y in one operation",
}


def epoch_advice(ctx: Context) -> str:
    """What a slow epoch's message advises: the function measured to take its time, or
    the general advice where none stands out."""
    parts = {function_of(key): ctx.timings.get(key) for key in probes.IN_EPOCH}
    slow = slowest_part(ctx.timings.get("epoch.run"), parts)
    if slow is None:
        return "avoid Python loops over examples"
    function, figures = slow
    return f"{figures}: {SLOW_ADVICE[function]}"


def curves(ctx: Context) -> list[Curve]:
    """Per-batch training loss and accuracy, as the student's functions reported them."""
    try:
        got, want = epoch_observed(ctx), ctx.want("epoch.run")
        series = []
        for key, label in (("losses", "training loss"), ("accuracies", "training accuracy")):
            y = finite_values(got[key] if got[key] is not None else [])
            x = list(range(1, len(y) + 1))
            series.append(Curve(f"softmax_training: {label}", "batch", label, x, y,
                                finite_values(want[key])))
        return series
    except (Failed, KeyError, TypeError):
        return []


PREPARE = Step(probes.EPOCH_STEPS, keys=("epoch.prepare",), long=True, setup=True)
EPOCH = Step(probes.EPOCH_STEPS, keys=("epoch.run",), timed=True, long=True,
             late=("epoch.order_seed",), bound=lambda options: options.max_epoch_ratio)
# Each function alone over the epoch's batches, timed as the epoch is: which takes its time.
IN_EPOCH = tuple(Step(probes.IN_EPOCH, keys=(key,), timed=True, long=True, part_of="epoch.run",
                      bound=lambda options: options.max_epoch_ratio) for key in probes.IN_EPOCH)
EXERCISE = Declaration(checks=CHECKS, probes=probes,
                       steps=(Step(probes.PROBES), PREPARE, EPOCH, *IN_EPOCH),
                       options=Options, make_inputs=make_inputs, data=(FASHION_MNIST,), uses=USES,
                       hints=HINTS, forbidden=FORBIDDEN, curves=curves, shareable=shareable)
