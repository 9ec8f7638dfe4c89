"""Kernel side of softmax regression: call softmax, cross_entropy and accuracy, and run the
timed Fashion-MNIST epoch in two steps (prepare, run) so that the grader can time the second
alone from outside the kernel. Each function then runs alone over the epoch's batches, in a
step of its own the grader times the same way (IN_EPOCH), to say which one takes the time.

The batch order of the timed epoch reaches the kernel only with the timed step, and the
trained parameters go back within it: the epoch cannot be run ahead in the untimed step,
nor finished after the timed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from grader.kernel.data import blanked_pixels, load_fashion_mnist
from grader.kernel.probe_helpers import on_the_cases
from grader.kernel.probing import DEVICE, TORCH_CALLS, Probe, recording_torch_calls

WARMUP_BATCHES = 3
# One CPU thread for the timed epoch, student's and reference's alike: on a loaded 2-core
# machine two threads ran 7-11x slower and swung the ratio, one thread held steady.
EPOCH_THREADS = 1


def softmax_values(probe: Probe) -> dict:
    X = probe.inputs["softmax.X"].clone()
    out, reached = recording_torch_calls(probe.student("softmax"), X)
    return {"out": out, "input_after": X, TORCH_CALLS: reached}


def softmax_large(probe: Probe) -> torch.Tensor:
    return probe.student("softmax")(probe.inputs["softmax.large"].clone())


def softmax_float64(probe: Probe) -> torch.Tensor:
    return probe.student("softmax")(probe.inputs["softmax.X64"].clone())


def softmax_gradient(probe: Probe) -> torch.Tensor:
    X = probe.inputs["softmax.grad_X"].clone().requires_grad_(True)
    (probe.student("softmax")(X) * probe.inputs["softmax.grad_R"]).sum().backward()
    return X.grad


def cross_entropy_values(probe: Probe) -> dict:
    y_hat = probe.inputs["cross_entropy.y_hat"].clone().requires_grad_(True)
    out, reached = recording_torch_calls(probe.student("cross_entropy"), y_hat,
                                         probe.inputs["cross_entropy.y"].clone())
    grad = None
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.sum().backward()
        grad = y_hat.grad
    return {"out": out, "grad": grad, TORCH_CALLS: reached}


def accuracy_call(probe: Probe, y_hat_key: str, y: torch.Tensor):
    return probe.student("accuracy")(probe.inputs[y_hat_key].clone(), y.clone())


def accuracy_values(probe: Probe):
    return accuracy_call(probe, "accuracy.y_hat", probe.inputs["accuracy.y"])


def accuracy_ties(probe: Probe):
    return accuracy_call(probe, "accuracy.ties_y_hat", probe.inputs["accuracy.ties_y"])


def train_batches(probe: Probe, W, b, order: torch.Tensor) -> dict:
    """The from-scratch training loop of the tutorial, with the student's three functions."""
    functions = tuple(probe.student(n) for n in ("softmax", "cross_entropy", "accuracy"))
    X_all, y_all = probe.state["X"], probe.state["y"]
    batch_size, lr = int(probe.inputs["epoch.batch_size"]), float(probe.inputs["epoch.lr"])
    losses, accuracies = [], []
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        loss, hits = training_step(functions, W, b, X_all[index], y_all[index], lr)
        losses.append(loss)
        accuracies.append(hits)
    return {"losses": losses, "accuracies": accuracies}


def training_step(functions: tuple, W, b, X, y, lr: float) -> tuple:
    """One minibatch of the tutorial's loop: forward, summed loss, backward, SGD step."""
    softmax, cross_entropy, accuracy = functions
    y_hat = softmax(X @ W + b)
    loss = cross_entropy(y_hat, y)
    loss.sum().backward()
    with torch.no_grad():
        for param in (W, b):
            param -= lr * param.grad / len(y)
            param.grad.zero_()
    return loss.detach().mean(), accuracy(y_hat.detach(), y)


def initial_parameters(probe: Probe) -> tuple[torch.Tensor, torch.Tensor]:
    device = probe.state["device"]
    W = probe.inputs["epoch.W0"].to(device, copy=True).requires_grad_(True)
    b = torch.zeros(W.shape[1], device=device, requires_grad=True)
    return W, b


def epoch_order(seed: int, n: int, device: str) -> torch.Tensor:
    """The timed epoch's batch order, drawn from the seed the timed step brings."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(device)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def prepare_epoch(probe: Probe) -> str:
    """Put the data on the device and warm up, so the timed step is the epoch alone."""
    device = str(probe.inputs[DEVICE])
    X = blanked_pixels(probe.inputs["epoch.blank_pixels"])  # their weights end as W0 began
    probe.state.update(device=device, X=X.to(device),
                       y=load_fashion_mnist().train_labels.to(device))
    probe.state["epoch.batches"] = epoch_batches(probe)
    warmup = torch.arange(WARMUP_BATCHES * int(probe.inputs["epoch.batch_size"]), device=device)
    with epoch_threads():
        train_batches(probe, *initial_parameters(probe), warmup)
        synchronize(device)
    return device


def epoch_batches(probe: Probe) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The epoch's batches as the training's functions get them (softmax the logits,
    cross_entropy and accuracy the probabilities and labels), made in this untimed step
    so that a function's own step times that function alone."""
    X, y = probe.state["X"], probe.state["y"]
    W = probe.inputs["epoch.W0"].to(probe.state["device"])
    size = int(probe.inputs["epoch.batch_size"])
    batches = []
    with torch.no_grad():
        for start in range(0, len(y), size):
            logits = X[start : start + size] @ W
            batches.append((logits, torch.softmax(logits, dim=1), y[start : start + size]))
    return batches


def in_epoch(function: str, *parts: int, backward: bool):
    """A probe calling one function on each of the epoch's batches (the parts of it named),
    and where the training differentiates it, back through it as the training does: a
    per-example loop costs most in its backward pass."""
    def run(probe: Probe) -> int:
        student = probe.student(function)
        with epoch_threads():
            for batch in probe.state["epoch.batches"]:
                first, *rest = (batch[part] for part in parts)
                first = first.detach().requires_grad_(backward)
                out = student(first, *rest)
                if backward:
                    out.sum().backward()
            synchronize(probe.state["device"])
        return len(probe.state["epoch.batches"])
    return run


@contextmanager
def epoch_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(EPOCH_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_epoch(probe: Probe) -> dict:
    """One epoch in the order the timed step brings; its parameters go back with it."""
    W, b = initial_parameters(probe)
    order = epoch_order(int(probe.inputs["epoch.order_seed"]), len(probe.state["y"]),
                        probe.state["device"])
    with epoch_threads():
        trained = train_batches(probe, W, b, order)
        synchronize(probe.state["device"])
    return {
        "W": W.detach().cpu(),
        "b": b.detach().cpu(),
        "losses": torch.stack(trained["losses"]).cpu() if trained["losses"] else None,
        "accuracies": trained["accuracies"],
    }


PROBES = {
    "softmax.values": softmax_values,
    "softmax.large": softmax_large,
    "softmax.float64": softmax_float64,
    "softmax.gradient": softmax_gradient,
    "softmax.cases": on_the_cases("softmax"),
    "cross_entropy.values": cross_entropy_values,
    "cross_entropy.cases": on_the_cases("cross_entropy"),
    "accuracy.values": accuracy_values,
    "accuracy.ties": accuracy_ties,
    "accuracy.cases": on_the_cases("accuracy"),
}
EPOCH_STEPS = {
    "epoch.prepare": prepare_epoch,
    "epoch.run": run_epoch,
}
IN_EPOCH = {
    "softmax.in_epoch": in_epoch("softmax", 0, backward=True),
    "cross_entropy.in_epoch": in_epoch("cross_entropy", 1, 2, backward=True),
    "accuracy.in_epoch": in_epoch("accuracy", 1, 2, backward=False),
}
