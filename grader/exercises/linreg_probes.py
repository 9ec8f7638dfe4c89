"""Kernel side of the linear-regression exercises: call data_iter, squared_loss and sgd.

Runs inside the student's kernel and, on the reference functions, in the grader.
Probes return raw values; `Probe.record` turns them into plain data.
"""

from __future__ import annotations

import torch

from grader.kernel.probe_helpers import SMALL_CASES, collected, on_each_case, on_the_cases
from grader.kernel.probing import TORCH_CALLS, Probe, recording_torch_calls


def pair(batch) -> list:
    """A batch data_iter yielded, as the pair (X, y) it must be."""
    X, y = batch
    return [X, y]


def one_epoch(probe: Probe, batch_size: int, features, labels) -> list:
    return collected(probe.student("data_iter")(batch_size, features, labels), "data_iter",
                     pair)


def data_iter_epochs(probe: Probe) -> dict:
    """Two epochs with (n, 1) labels and one with (n,) labels, on an odd-sized dataset, and
    one on each of the SMALL_CASES."""
    features, labels = probe.inputs["data_iter.features"], probe.inputs["data_iter.labels"]
    batch_size = int(probe.inputs["data_iter.batch_size"])
    return {
        "column": [one_epoch(probe, batch_size, features, labels) for _ in range(2)],
        "flat": one_epoch(probe, batch_size, features, labels.reshape(-1)),
        "small": [one_epoch(probe, size, features[:n], labels[:n]) for n, size in SMALL_CASES],
    }


def squared_loss_call(probe: Probe, y: torch.Tensor) -> dict:
    y_hat = probe.inputs["squared_loss.y_hat"].clone().requires_grad_(True)
    out, reached = recording_torch_calls(probe.student("squared_loss"), y_hat, y.clone())
    grad = None
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.sum().backward()
        grad = y_hat.grad
    return {"out": out, "grad": grad, TORCH_CALLS: reached}


def squared_loss_column(probe: Probe) -> dict:
    return squared_loss_call(probe, probe.inputs["squared_loss.y"])


def squared_loss_flat(probe: Probe) -> dict:
    return squared_loss_call(probe, probe.inputs["squared_loss.y"].reshape(-1))


def next_backward(param: torch.Tensor, weights: torch.Tensor) -> torch.Tensor | None:
    """.grad after one more backward pass, of sum(param * weights): weights added to what sgd
    left there, or None where autograd no longer tracks the parameter as a leaf."""
    if not (param.requires_grad and param.is_leaf):
        return None
    (param * weights).sum().backward()
    return param.grad


def sgd_step(probe: Probe) -> dict:
    """One step on leaf tensors whose gradients the grader set by hand, then the next backward
    pass, whose gradients tell the grader what sgd left in .grad and whether autograd still
    reaches the parameters. requires_grad only words the feedback."""
    params = [probe.inputs[f"sgd.{name}"].clone().requires_grad_(True) for name in ("w", "b")]
    for param, name in zip(params, ("w", "b"), strict=True):
        param.grad = probe.inputs[f"sgd.grad_{name}"].clone()
    probe.student("sgd")(params, float(probe.inputs["sgd.lr"]),
                         int(probe.inputs["sgd.batch_size"]))
    left = [None if param.grad is None else param.grad.detach().clone() for param in params]
    requires_grad = [bool(param.requires_grad) for param in params]
    return {
        "params": [param.detach().clone() for param in params],
        "grads": left,
        "after": [next_backward(param, probe.inputs[f"sgd.next_grad_{name}"])
                  for param, name in zip(params, ("w", "b"), strict=True)],
        "requires_grad": requires_grad,
    }


def sgd_cases(probe: Probe) -> list[dict]:
    """One step on each candidate input: (w, b, w.grad, b.grad, lr, batch_size)."""
    sgd = probe.student("sgd")

    def step(w, b, grad_w, grad_b, lr: float, batch_size: int) -> list[torch.Tensor]:
        params = [w.requires_grad_(True), b.requires_grad_(True)]
        w.grad, b.grad = grad_w, grad_b
        sgd(params, lr, batch_size)
        return [param.detach().clone() for param in params]

    return on_each_case(step, probe.inputs["sgd.cases"])


def train(probe: Probe) -> dict:
    """The handout's loop, with the student's three functions and a snapshot per epoch. Like
    the handout's, it never zeroes the gradients itself: sgd does, so a submission that trains
    here trains in the student's notebook too."""
    data_iter, loss, sgd = (probe.student(n) for n in ("data_iter", "squared_loss", "sgd"))
    features, labels = probe.inputs["train.features"], probe.inputs["train.labels"]
    w = probe.inputs["train.w0"].clone().requires_grad_(True)
    b = torch.zeros(1, requires_grad=True)
    lr, batch_size = float(probe.inputs["train.lr"]), int(probe.inputs["train.batch_size"])
    snapshots = []
    for _ in range(int(probe.inputs["train.epochs"])):
        for X, y in data_iter(batch_size, features, labels):
            loss(torch.matmul(X, w) + b, y).sum().backward()
            sgd([w, b], lr, batch_size)
        snapshots.append([w.detach().clone(), b.detach().clone()])
    return {"snapshots": snapshots}


PROBES = {
    "data_iter.epochs": data_iter_epochs,
    "squared_loss.column": squared_loss_column,
    "squared_loss.flat": squared_loss_flat,
    "squared_loss.cases": on_the_cases("squared_loss"),
    "sgd.step": sgd_step,
    "sgd.cases": sgd_cases,
    "linreg.train": train,
}
