"""Kernel side of the concise implementations: call load_array, train_linreg_concise,
init_weights, evaluate_accuracy and train_epoch on modules and data the grader builds.

The modules are built here, by the grader's code, from the grader's inputs; what comes
back is their parameters and a few counts, as plain data.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.data import as_float, load_fashion_mnist
from grader.exercises.linreg_probes import MAX_BATCHES
from grader.probing import Probe


def loader_epoch(loader) -> list:
    batches = []
    for batch in loader:
        batches.append(list(batch))
        if len(batches) > MAX_BATCHES:
            raise RuntimeError(f"load_array's iterator yielded more than {MAX_BATCHES} batches")
    return batches


def load_array_epochs(probe: Probe) -> dict:
    """Two epochs of one training iterator, and one epoch of an evaluation iterator."""
    arrays = (probe.inputs["load_array.features"], probe.inputs["load_array.labels"])
    batch_size = int(probe.inputs["load_array.batch_size"])
    load_array = probe.student("load_array")
    train = load_array(arrays, batch_size, True)
    return {
        "is_loader": isinstance(train, DataLoader),
        "train": [loader_epoch(train) for _ in range(2)],
        "eval": loader_epoch(load_array(arrays, batch_size, False)),
    }


def linear_parameters(net) -> dict:
    return {"sequential": isinstance(net, nn.Sequential),
            "parameters": [p.detach() for p in net.parameters()] if isinstance(net, nn.Module)
            else None}


def train_linreg(probe: Probe, epochs: int) -> dict:
    dataset = TensorDataset(probe.inputs["concise_linreg.features"],
                            probe.inputs["concise_linreg.labels"])
    data_iter = DataLoader(dataset, int(probe.inputs["concise_linreg.batch_size"]), shuffle=True)
    net = probe.student("train_linreg_concise")(data_iter, epochs,
                                                float(probe.inputs["concise_linreg.lr"]))
    return linear_parameters(net)


def linreg_initial(probe: Probe) -> dict:
    return train_linreg(probe, 0)


def linreg_trained(probe: Probe) -> dict:
    return train_linreg(probe, int(probe.inputs["concise_linreg.epochs"]))


def init_weights_applied(probe: Probe) -> dict:
    """net.apply(init_weights) on Flatten, Linear and LayerNorm; the Linear's bias kept aside."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LayerNorm(10))
    bias = net[1].bias.detach().clone()
    net.apply(probe.student("init_weights"))
    return {"weight": net[1].weight.detach(), "bias_before": bias,
            "bias": net[1].bias.detach(), "norm": [p.detach() for p in net[2].parameters()]}


def watched(net: nn.Module) -> list:
    """Record, at every forward pass, whether the net was training and autograd recording."""
    seen = []
    net.register_forward_hook(
        lambda module, args, out: seen.append([module.training, torch.is_grad_enabled()]))
    return seen


def evaluate_accuracy_call(probe: Probe) -> dict:
    """A net with dropout, left in training mode, on batches whose last one is smaller."""
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10))
    with torch.no_grad():
        net[2].weight.copy_(probe.inputs["evaluate_accuracy.W"])
        net[2].bias.copy_(probe.inputs["evaluate_accuracy.b"])
    net.train()
    seen = watched(net)
    X, y = as_float(probe.inputs["evaluate_accuracy.images"]), probe.inputs["evaluate_accuracy.y"]
    size = int(probe.inputs["evaluate_accuracy.batch_size"])
    data_iter = [(X[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]
    value = probe.student("evaluate_accuracy")(net, data_iter)
    return {"value": value, "seen": seen}


def fashion_batches(probe: Probe):
    """One epoch of Fashion-MNIST batches sliced from the tensors in memory, in the grader's
    order; the images are converted batch by batch."""
    data = load_fashion_mnist()
    generator = torch.Generator().manual_seed(int(probe.inputs["concise_softmax.order_seed"]))
    order = torch.randperm(len(data.train_labels), generator=generator)
    size = int(probe.inputs["concise_softmax.batch_size"])
    for start in range(0, len(order), size):
        index = order[start : start + size]
        probe.state["batches"] += 1
        yield as_float(data.train_images[index]), data.train_labels[index]


def train_softmax_epoch(probe: Probe) -> dict:
    """One epoch of train_epoch on nn.Flatten + nn.Linear(784, 10), started in eval mode.

    A hook on the bias sees each backward pass's own gradient; at every step the optimizer
    compares it with the accumulated .grad, so gradients carried over are counted.
    """
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        net[1].weight.copy_(probe.inputs["concise_softmax.W0"])
        net[1].bias.zero_()
    net.eval()
    seen = watched(net)
    fresh = []
    net[1].bias.register_hook(lambda grad: fresh.append(grad.detach().clone()))
    counts = {"steps": 0, "carried": 0}
    updater = torch.optim.SGD(net.parameters(), lr=float(probe.inputs["concise_softmax.lr"]))

    def count_step(optimizer, args, kwargs) -> None:
        counts["steps"] += 1
        grad = net[1].bias.grad
        if fresh and grad is not None and not torch.equal(grad, fresh[-1]):
            counts["carried"] += 1

    updater.register_step_pre_hook(count_step)
    probe.state["batches"] = 0
    probe.student("train_epoch")(net, fashion_batches(probe), nn.CrossEntropyLoss(), updater)
    return {"W": net[1].weight.detach().T, "b": net[1].bias.detach(),  # W as (784, 10)
            "batches": probe.state["batches"], "passes": len(seen),
            "eval_passes": sum(not training for training, _ in seen), **counts}


PROBES = {
    "load_array.epochs": load_array_epochs,
    "concise_linreg.initial": linreg_initial,
    "concise_linreg.trained": linreg_trained,
    "init_weights.applied": init_weights_applied,
    "evaluate_accuracy.call": evaluate_accuracy_call,
}
EPOCH_STEPS = {"concise_softmax.epoch": train_softmax_epoch}
