"""Kernel side of the concise softmax regression: call init_weights, evaluate_accuracy and
train_epoch on modules and data the grader builds.

The modules are built here, by the grader's code, from the grader's inputs; what comes
back is their parameters, what they computed and a few counts, as plain data.
"""

from __future__ import annotations

import torch
from torch import nn

from grader.kernel.data import as_float, blanked_batches
from grader.kernel.probing import Probe

INIT_KEYS = ("init_weights.weight", "init_weights.bias", "init_weights.norm_weight",
             "init_weights.norm_bias")


def init_weights_applied(probe: Probe) -> dict:
    """net.apply(init_weights) on Flatten, Linear and LayerNorm, every parameter holding the
    grader's values beforehand."""
    out_features, in_features = probe.inputs["init_weights.weight"].shape
    net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, out_features),
                        nn.LayerNorm(out_features))
    with torch.no_grad():
        for param, key in zip([*net[1].parameters(), *net[2].parameters()], INIT_KEYS,
                              strict=True):
            param.copy_(probe.inputs[key])
    net.apply(probe.student("init_weights"))
    return {"weight": net[1].weight.detach(), "bias": net[1].bias.detach(),
            "norm": [p.detach() for p in net[2].parameters()]}


class ModeShift(nn.Module):
    """Moves every prediction by one class while autograd records and by two in training
    mode, as dropout would change them: the accuracy returned tells the grader the modes."""

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.roll(int(torch.is_grad_enabled()) + 2 * int(self.training), dims=1)


def watched(net: nn.Module) -> list:
    """Record, at every forward pass, whether the net was training and autograd recording."""
    seen = []
    net.register_forward_hook(
        lambda module, args, out: seen.append([module.training, torch.is_grad_enabled()]))
    return seen


def evaluate_accuracy_call(probe: Probe):
    """A net left in training mode, on batches whose last one is smaller."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), ModeShift())
    with torch.no_grad():
        net[1].weight.copy_(probe.inputs["evaluate_accuracy.W"])
        net[1].bias.copy_(probe.inputs["evaluate_accuracy.b"])
    net.train()
    X, y = as_float(probe.inputs["evaluate_accuracy.images"]), probe.inputs["evaluate_accuracy.y"]
    size = int(probe.inputs["evaluate_accuracy.batch_size"])
    data_iter = [(X[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]
    return probe.student("evaluate_accuracy")(net, data_iter)


def fashion_batches(probe: Probe):
    """The grader's epoch of blanked Fashion-MNIST batches, counted as they are taken."""
    inputs = probe.inputs
    for batch in blanked_batches(int(inputs["concise_softmax.order_seed"]),
                                 int(inputs["concise_softmax.batch_size"]),
                                 inputs["concise_softmax.blank_pixels"]):
        probe.state["concise_softmax.batches"] += 1
        yield batch


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
    probe.state["concise_softmax.batches"] = 0
    probe.student("train_epoch")(net, fashion_batches(probe), nn.CrossEntropyLoss(), updater)
    return {"W": net[1].weight.detach().T, "b": net[1].bias.detach(),  # W as (784, 10)
            "batches": probe.state["concise_softmax.batches"], "passes": len(seen),
            "eval_passes": sum(not training for training, _ in seen), **counts}



PROBES = {
    "init_weights.applied": init_weights_applied,
    "evaluate_accuracy.call": evaluate_accuracy_call,
}
EPOCH_STEPS = {"concise_softmax.epoch": train_softmax_epoch}
