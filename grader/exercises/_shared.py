"""Helpers that several exercises share, so that no exercise imports another: the linear
data of linreg and concise_linreg and the checks of their batches (data_iter, load_array),
the Fashion-MNIST classifiers of softmax, concise_softmax and module_classes, and the
hints and curves that more than one exercise gives. The assertions that any check may use
are in grader/grading/expect.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated

import torch
from pydantic import Field

from grader.authoring.option_types import Count, Positive
from grader.grading.checks import Context, Failed
from grader.grading.expect import describe, expect_finite, expect_shape, expect_tensor
from grader.kernel.data import BLANKED, as_float, load_fashion_mnist

# A hint for the error autograd raises where a parameter is updated with autograd on.
NO_GRAD = ("leaf Variable", "update the parameters inside `with torch.no_grad():` (or through "
           "param.data), so autograd does not record the step")
ID_BATCH_SIZE = 10  # the batch size of the traced datasets of data_iter and load_array


@dataclass(frozen=True)
class LinearData:
    """The settings of the linear-regression exercises ([linreg], [concise_linreg]): the
    data, the training run, and how close it must get."""

    examples: Annotated[int, Field(ge=100)] = 1000
    lr: Positive = 0.03
    batch_size: Count = 10
    epochs: Count = 3
    # The final loss must be at most this times the reference run's.
    loss_margin: Annotated[float, Field(ge=1)] = 1.5
    # |w - true_w| must be at most max(2 x the reference run's error, this).
    weight_tolerance: Positive = 2e-3


# --- linear data -------------------------------------------------------------------------

def hidden_truth(generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """Weights and bias drawn from the grading seed, as large as the notebook's [2, -3.4] and
    4.2: a training result cannot be written down in advance, only trained."""
    w = (torch.rand(2, generator=generator) * 8 - 4).round(decimals=1)
    b = round(float(torch.rand(1, generator=generator)) * 10 - 5, 1)
    return w, b


def synthetic_data(w: torch.Tensor, b: float, n: int, generator: torch.Generator):
    X = torch.normal(0, 1, (n, len(w)), generator=generator)
    y = X @ w + b + torch.normal(0, 0.01, (n,), generator=generator)
    return X, y.reshape(-1, 1)


def describe_truth(w: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:g}" for v in w.tolist()) + "]"


def labelled_by_id(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset of n examples, n no multiple of ID_BATCH_SIZE so that the last batch is
    partial, whose labels count up from a random start: label start + i marks example i, so
    batches can be traced, and only this dataset's batches carry these labels."""
    n = ID_BATCH_SIZE * int(torch.randint(10, 13, (1,), generator=generator)) \
        + int(torch.randint(1, ID_BATCH_SIZE, (1,), generator=generator))
    start = int(torch.randint(1_000, 1_000_000, (1,), generator=generator))
    return torch.randn(n, 3, generator=generator), \
        (start + torch.arange(n, dtype=torch.float32)).reshape(-1, 1)


# --- batches of a dataset (data_iter, load_array) ----------------------------------------

def example_ids(y: torch.Tensor, labels: torch.Tensor, what: str) -> list[int]:
    """The examples a batch's labels mark (label start + i marks example i); a label that is
    none of the dataset's fails, so only batches drawn from the hidden data can be traced."""
    index = {value: i for i, value in enumerate(labels.reshape(-1).tolist())}
    ids = [index.get(value, -1) for value in y.reshape(-1).tolist()]
    if -1 in ids:
        raise Failed(f"{what} holds labels that are not in the labels passed in: yield "
                     "labels[idx] beside features[idx]", "labels of the data", describe(y))
    return ids


def epoch_ids(batches, labels: torch.Tensor, what: str) -> list[list[int]]:
    """The example ids in each batch of an epoch, read back from the labels."""
    if not isinstance(batches, list) or not batches:
        raise Failed(f"{what} yielded no batches", "a non-empty sequence of (X, y)",
                     describe(batches))
    ids = []
    for number, batch in enumerate(batches):
        if not isinstance(batch, list) or len(batch) != 2:
            raise Failed(f"{what}: batch {number} is not a pair (X, y)", "(X, y)",
                         describe(batch))
        y = expect_tensor(batch[1], f"{what}: y of batch {number}")
        ids.append(example_ids(y, labels, f"{what}: y of batch {number}"))
    return ids


def expect_epochs(epochs, count: int, what: str) -> list:
    """The epochs the probe ran, as many as it asked for: no epochs would prove nothing."""
    if not isinstance(epochs, list) or len(epochs) != count:
        raise Failed(f"{what}: expected {count} epochs of batches", f"{count} epochs",
                     describe(epochs))
    return epochs


def expect_pairs(batches: list, features: torch.Tensor, labels: torch.Tensor) -> None:
    """(X, y) pairs shaped (b, d) and (b, 1), whose rows and labels are the data's own."""
    rows = {tuple(row) for row in features.tolist()}
    epoch_ids(batches, labels, "the epoch")
    for number, (X, y) in enumerate(batches):
        X = expect_tensor(X, f"X of batch {number}")
        y = expect_tensor(y, f"y of batch {number}")
        expect_shape(X, [(len(X), features.shape[1])], f"X of batch {number}")
        expect_shape(y, [(len(X), 1)], f"y of batch {number}")
        if not all(tuple(row) in rows for row in X.tolist()):
            raise Failed(f"the rows of X in batch {number} are not rows of the features "
                         "passed in: yield features[idx]", "rows of features", describe(X))


def expect_each_example_once(batches: list, labels: torch.Tensor, what: str) -> None:
    n = len(labels)
    seen = sorted(i for batch in epoch_ids(batches, labels, what) for i in batch)
    if seen != list(range(n)):
        missing = sorted(set(range(n)) - set(seen))
        repeated = len(seen) - len(set(seen))
        raise Failed(
            f"{what} visited {len(seen)} examples of {n}: {len(missing)} missing, "
            f"{repeated} repeated; every example must appear exactly once",
            f"each of the {n} examples once", f"{len(seen)} examples, {len(missing)} missing",
        )


def expect_batch_sizes(batches: list, labels: torch.Tensor, size: int) -> None:
    n = len(labels)
    sizes = [len(ids) for ids in epoch_ids(batches, labels, "epoch 1")]
    expected = [size] * (n // size) + ([n % size] if n % size else [])
    if sizes != expected:
        raise Failed(f"batch sizes for n={n}, batch_size={size} are wrong; all batches hold "
                     "batch_size examples but the last, which keeps the remainder",
                     str(expected), str(sizes))


def epoch_order(batches: list, labels: torch.Tensor) -> list[int]:
    return [i for ids in epoch_ids(batches, labels, "epoch") for i in ids]


def expect_shuffled(epochs: list[list], labels: torch.Tensor) -> None:
    orders = [epoch_order(batches, labels) for batches in epochs]
    if orders[0] == list(range(len(labels))):
        raise Failed("the examples come in their original order: shuffle the indices",
                     "a random order", str(orders[0][:12]) + " …")
    if orders[0] == orders[1]:
        raise Failed("two epochs came in the same order: shuffle on every call",
                     "a fresh order each epoch", "the same order twice")


def expect_aligned(epochs: list[list], features: torch.Tensor, labels: torch.Tensor) -> None:
    """Each batch's X holds the rows its labels mark; an epoch without batches fails."""
    for epoch in epochs:
        for number, ids in enumerate(epoch_ids(epoch, labels, "the epoch")):
            X = expect_tensor(epoch[number][0], "X")
            if X.shape != features[ids].shape or not torch.equal(X, features[ids]):
                raise Failed(f"in batch {number} the rows of X do not belong to the labels y "
                             "yielded with them: index features and labels with the same "
                             "indices", "X == features[idx] and y == labels[idx]",
                             describe(X))


# --- classifiers trained on Fashion-MNIST ------------------------------------------------

# The corners of the images (grader/kernel/data.py), blanked in every batch of an epoch.
BLANK_PIXELS = list(BLANKED)


@dataclass(frozen=True)
class Training:
    """One epoch on Fashion-MNIST, and how far below the reference's test accuracy its
    own may land."""

    batch_size: Count = 256
    lr: Positive = 0.1
    accuracy_margin: Annotated[float, Field(ge=0, le=1)] = 0.02


def as_number(ctx: Context, value, what: str) -> float:
    """The returned accuracy as a number, accepting a 0-d tensor, as the handout does; not a
    shape-(1,) one, which its demo's f"{acc:.3f}" refuses."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        ctx.accept("a 0-d tensor instead of a Python float")
        value = value.item()
    elif isinstance(value, torch.Tensor) and value.numel() == 1:
        raise Failed(f"{what} must be a number, and a tensor of shape {tuple(value.shape)} is "
                     "none: the handout's demo formats it with :.3f, which such a tensor "
                     "refuses; return .item() or a 0-d tensor", "a float in [0, 1]",
                     describe(value))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Failed(f"{what} must be a number", "a float in [0, 1]", describe(value))
    return value


@cache
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    """The test images as float rows, and their labels: converted once per process."""
    data = load_fashion_mnist()
    return as_float(data.test_images).reshape(len(data.test_labels), -1), data.test_labels


def test_accuracy(W: torch.Tensor, b: torch.Tensor) -> float:
    """Accuracy of the trained parameters on the real test set, computed in the grader."""
    X, labels = test_set()
    predictions = (X @ W.float().cpu() + b.float().cpu()).argmax(dim=1)
    return float((predictions == labels).float().mean())


def trained_accuracy(ctx: Context, observed: dict, what: str) -> float:
    W = expect_tensor(observed["W"], f"{what} W")
    b = expect_tensor(observed["b"], f"{what} b")
    expect_shape(W, [(784, 10)], f"{what} W")
    expect_shape(b, [(10,)], f"{what} b")
    expect_finite(W, f"{what} W")
    return test_accuracy(W, b)


def shareable(observations: dict) -> dict:
    """The reference's observations as the self-check may ship them: trained parameters give
    way to their test accuracy, so no notebook can hand in the reference's training as its own
    (the grader reads `test_accuracy` only from the reference's side)."""
    shared = {}
    for key, entry in observations.items():
        value = entry.get("value") if entry else None
        if isinstance(value, dict) and {"W", "b"} <= value.keys():
            kept = {k: v for k, v in value.items() if k not in ("W", "b")}
            entry = {**entry, "value": {**kept, "test_accuracy": test_accuracy(value["W"],
                                                                                value["b"])}}
        shared[key] = entry
    return shared


def expect_started_from(observed: dict, W0: torch.Tensor, blank: torch.Tensor,
                        trainer: str) -> None:
    """The pixels blanked in every batch get no gradient, so their weights end as they began:
    the model trained is the one handed over, from the grader's hidden W0, not weights
    trained elsewhere (or on other inputs)."""
    W = expect_tensor(observed["W"], "the trained W")
    expect_shape(W, [(784, 10)], "the trained W")
    if not torch.equal(W[blank], W0[blank]):
        raise Failed("the weights of pixels that are 0 in every batch changed, so the model "
                     f"was not trained from the weights it was given: {trainer} must train "
                     "the parameters passed in, without re-initialising them",
                     "their initial values", describe(W[blank]))


def expect_test_accuracy(ctx: Context, observed: dict, reference: dict, how: str) -> str:
    """One epoch's test accuracy against the reference run's, less the allowed margin."""
    got = trained_accuracy(ctx, observed, "the trained")
    wanted = reference["test_accuracy"] if "test_accuracy" in reference \
        else trained_accuracy(ctx, reference, "the reference")
    threshold = wanted - ctx.options.accuracy_margin
    if not got >= threshold:
        raise Failed(f"after one epoch {how} the test accuracy is {got:.3f}, below "
                     f"{threshold:.3f} (reference {wanted:.3f})", f"≥ {threshold:.3f}",
                     f"{got:.3f}")
    return f"Test accuracy {got:.3f} after one epoch (reference {wanted:.3f})."


# --- curves ------------------------------------------------------------------------------

def finite_values(values) -> list[float | None]:
    """Reported values as a chart plots them: numbers as floats, anything else None."""
    out = []
    for value in values:
        number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 \
            else value
        ok = isinstance(number, int | float) and number == number and abs(number) != float("inf")
        out.append(float(number) if ok else None)
    return out
