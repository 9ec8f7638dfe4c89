"""Grader side of one_hot (seed 002): labels encoded with scatter_ into an (n, num_classes)
float matrix. The seed encodes ten labels of three classes; the hidden inputs draw other
class counts, so that a hard-coded 3 or a class count read off the labels fails.
"""

from __future__ import annotations

import torch

from grader.authoring.exercise import Declaration, Step
from grader.exercises import one_hot_probes as probes
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import describe, expect_shape, expect_tensor

CHECKS = Registry()
HINTS = {"one_hot.": [
    ("same number of dimensions", "scatter_ along dim 1 needs the labels as a column: pass "
                                  "target.unsqueeze(1), of shape (n, 1)"),
    ("out of bounds", "the matrix needs num_classes columns: labels run from 0 to "
                      "num_classes - 1"),
    ("Expected dtype int64", "scatter_ takes int64 indices: keep target's dtype"),
]}
SEED_CLASSES = 3
SEED_LABELS = 10


def labels_with_every_class(generator: torch.Generator, n: int, classes: int) -> torch.Tensor:
    """n labels in [0, classes) holding each class at least once, the last among them, in a
    drawn order."""
    labels = torch.cat([torch.arange(classes),
                        torch.randint(0, classes, (n - classes,), generator=generator)])
    return labels[torch.randperm(n, generator=generator)]


def make_inputs(generator: torch.Generator, options, notebook: dict) -> dict:
    """The seed's ten labels of three classes; more labels of a drawn class count; and
    labels that leave the top classes empty, so that the count must come from num_classes."""
    other_classes = int(torch.randint(5, 13, (1,), generator=generator))
    narrow_classes = int(torch.randint(6, 13, (1,), generator=generator))
    used = narrow_classes - int(torch.randint(2, 4, (1,), generator=generator))
    return {
        "one_hot.seed": labels_with_every_class(generator, SEED_LABELS, SEED_CLASSES),
        "one_hot.seed_classes": SEED_CLASSES,
        "one_hot.other": labels_with_every_class(
            generator, int(torch.randint(20, 41, (1,), generator=generator)), other_classes),
        "one_hot.other_classes": other_classes,
        "one_hot.narrow": labels_with_every_class(
            generator, int(torch.randint(15, 31, (1,), generator=generator)), used),
        "one_hot.narrow_classes": narrow_classes,
    }


def expected(target: torch.Tensor, classes: int) -> torch.Tensor:
    """The encoding, computed here: row i holds 1.0 at column target[i], 0 elsewhere."""
    return (target.reshape(-1, 1) == torch.arange(classes)).float()


def encoding(ctx: Context, key: str) -> torch.Tensor:
    """The student's matrix for the labels under `key`: a float tensor of shape (n, C)."""
    target = ctx.inputs[f"one_hot.{key}"]
    classes = int(ctx.inputs[f"one_hot.{key}_classes"])
    n = len(target)
    out = expect_tensor(ctx.got(f"one_hot.{key}")["out"], "one_hot(target, num_classes)")
    if tuple(out.shape) == (classes, n) and classes != n:
        raise Failed(f"one_hot returned shape {(classes, n)}, the transpose: one row per "
                     "example, one column per class", str((n, classes)), str((classes, n)))
    if out.dim() == 2 and len(out) == n and out.shape[1] == int(target.max()) + 1 \
            and out.shape[1] < classes:
        raise Failed(f"one_hot returned {out.shape[1]} columns, one more than the largest "
                     f"label, not num_classes = {classes}: pass num_classes on "
                     "(torch.zeros(n, num_classes), or F.one_hot(target, num_classes))",
                     str((n, classes)), str(tuple(out.shape)))
    expect_shape(out, [(n, classes)], "one_hot(target, num_classes)")
    if not out.is_floating_point():
        raise Failed(f"one_hot returned {out.dtype}, not a float tensor: F.one_hot gives int64; "
                     "call .float() on it (scatter_ into torch.zeros(...) is float already)",
                     "torch.float32", str(out.dtype))
    return out


def expect_encoded(ctx: Context, key: str) -> torch.Tensor:
    """The student's matrix equals the encoding, or Failed naming the slip."""
    out = encoding(ctx, key)
    target = ctx.inputs[f"one_hot.{key}"]
    want = expected(target, out.shape[1])
    if torch.equal(out, want):
        return out
    column = target.reshape(-1, 1)
    along_rows = torch.zeros_like(want).scatter_(0, column.clamp(max=len(want) - 1), 1.0)
    if torch.equal(out, along_rows):
        raise Failed("the ones were scattered along dim 0, down the columns: scatter along the "
                     "classes, target_onehot.scatter_(1, target.unsqueeze(1), 1.0)",
                     describe(want), describe(out))
    last = target == out.shape[1] - 1
    if bool(last.any()) and not bool(out[last, -1].eq(1).all()) \
            and torch.equal(out[~last], want[~last]):
        raise Failed("the rows of labels of the last class have no 1 in the last column: labels "
                     "run from 0 to num_classes - 1", describe(want[last]), describe(out[last]))
    sums = out.double().sum(dim=1)
    if not torch.equal(sums, torch.ones_like(sums)):
        raise Failed("a row of one_hot does not hold exactly one 1.0 (and zeros elsewhere)",
                     "one 1.0 per row", describe(sums))
    raise Failed("the 1.0 of a row is not in the column of its label: row i must hold it at "
                 "column target[i]", describe(want), describe(out))


@CHECKS.add("one_hot", points=1, reads=("one_hot.seed",))
def returns_a_float_matrix(ctx: Context) -> str:
    out = encoding(ctx, "seed")
    return f"A {out.dtype} tensor of shape {tuple(out.shape)} for (n,) int64 labels."


@CHECKS.add("one_hot", points=2, reads=("one_hot.seed",))
def encodes_the_seed_labels(ctx: Context) -> str:
    expect_encoded(ctx, "seed")
    return "Ten labels of three classes, each a row with its 1.0 at its label's column."


@CHECKS.add("one_hot", points=1)
def leaves_the_target_unchanged(ctx: Context) -> str:
    """Counts only beside a float matrix: any non-answer leaves target alone."""
    ctx.judged_only_if("one_hot.returns_a_float_matrix",
                       "no one-hot matrix was returned, so leaving target alone says nothing yet")
    target = ctx.inputs["one_hot.seed"]
    after = expect_tensor(ctx.got("one_hot.seed")["target_after"], "target after one_hot")
    if tuple(after.shape) == (len(target), 1):
        raise Failed("one_hot reshaped target in place (target.unsqueeze_(1)): use "
                     "target.unsqueeze(1), which returns a new view",
                     f"shape {tuple(target.shape)}", f"shape {tuple(after.shape)}")
    if after.shape != target.shape or not torch.equal(after, target):
        raise Failed("one_hot modified target: leave the labels passed in as they were",
                     describe(target), describe(after))
    return "target is left untouched."


@CHECKS.add("one_hot", points=1, hidden=True, reads=("one_hot.other",))
def encodes_other_class_counts(ctx: Context) -> str:
    """one_hot encodes labels of any number of classes, the last one included."""
    expect_encoded(ctx, "other")
    return "Labels of another class count are encoded, the last class included."


@CHECKS.add("one_hot", points=1, hidden=True, reads=("one_hot.narrow",))
def takes_the_class_count_from_num_classes(ctx: Context) -> str:
    """one_hot has num_classes columns even when the top classes hold no label."""
    expect_encoded(ctx, "narrow")
    return "num_classes columns, whatever the largest label."


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),),
                       make_inputs=make_inputs, hints=HINTS)
