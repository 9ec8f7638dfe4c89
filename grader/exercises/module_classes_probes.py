"""Kernel side of FlattenLayer and LinearNet (seed 004): build them, run them on the
grader's batches, and train one Fashion-MNIST epoch with each, by the grader's loop.

What comes back is outputs, parameters (by name and shape) and gradients, as plain data;
the trained parameters start from the grader's hidden weights, copied in here.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from grader.kernel.data import blanked_batches
from grader.kernel.probing import Probe


def flattened(probe: Probe, X: torch.Tensor) -> dict:
    layer = probe.student("FlattenLayer")()
    return {"module": isinstance(layer, nn.Module), "out": layer(X.clone())}


def flatten_images(probe: Probe) -> dict:
    return flattened(probe, probe.inputs["FlattenLayer.images"])


def flatten_other_shapes(probe: Probe) -> list:
    """Other shapes: (b, 3, 5, 7), a batch of one image, and rows already flat."""
    return [flattened(probe, probe.inputs[f"FlattenLayer.{key}"])["out"]
            for key in ("cubes", "single", "flat")]


def flatten_gradient(probe: Probe):
    """x.grad after backward() of sum(FlattenLayer()(x) * R)."""
    X = probe.inputs["FlattenLayer.cubes"].clone().requires_grad_(True)
    out = probe.student("FlattenLayer")()(X)
    (out * probe.inputs["FlattenLayer.upstream"]).sum().backward()
    return X.grad


def linear_net(probe: Probe, inputs: int, outputs: int, X: torch.Tensor) -> dict:
    """LinearNet(inputs, outputs): its parameters by name and what it computes on X."""
    net = probe.student("LinearNet")(inputs, outputs)
    if not isinstance(net, nn.Module):
        return {"module": False, "type": type(net).__name__}
    with torch.no_grad():
        out = net(X.clone())
    return {"module": True, "type": type(net).__name__,
            "parameters": [[name, p.detach().clone()] for name, p in net.named_parameters()],
            "out": out}


def linear_net_images(probe: Probe) -> dict:
    return linear_net(probe, 784, 10, probe.inputs["FlattenLayer.images"])


def linear_net_other_sizes(probe: Probe) -> dict:
    X = probe.inputs["LinearNet.other_X"]
    return linear_net(probe, X[0].numel(), int(probe.inputs["LinearNet.other_outputs"]), X)


def weight_and_bias(net: nn.Module) -> tuple[nn.Parameter, nn.Parameter]:
    """The net's (10, 784) weight and (10,) bias: what LinearNet(784, 10) must hold."""
    params = list(net.parameters())
    weights = [p for p in params if tuple(p.shape) == (10, 784)]
    biases = [p for p in params if tuple(p.shape) == (10,)]
    if len(params) != 2 or len(weights) != 1 or len(biases) != 1:
        raise ValueError("the net must hold exactly a (10, 784) weight and a (10,) bias, as "
                         f"nn.Linear(784, 10) does; it holds {[tuple(p.shape) for p in params]}")
    return weights[0], biases[0]


def fashion_batches(probe: Probe):
    """The grader's epoch of blanked Fashion-MNIST batches."""
    inputs = probe.inputs
    return blanked_batches(int(inputs["module_classes.order_seed"]),
                           int(inputs["module_classes.batch_size"]),
                           inputs["module_classes.blank_pixels"])


def one_epoch(probe: Probe, net: nn.Module) -> dict:
    """One epoch of SGD on CrossEntropyLoss from the grader's W0 and a zero bias."""
    weight, bias = weight_and_bias(net)
    with torch.no_grad():
        weight.copy_(probe.inputs["module_classes.W0"].T)
        bias.zero_()
    optimizer = torch.optim.SGD(net.parameters(), lr=float(probe.inputs["module_classes.lr"]))
    loss = nn.CrossEntropyLoss()
    net.train()
    steps = 0
    for X, y in fashion_batches(probe):
        optimizer.zero_grad()
        loss(net(X), y).backward()
        optimizer.step()
        steps += 1
    return {"W": weight.detach().T.clone(), "b": bias.detach().clone(), "steps": steps}


def train_linear_net(probe: Probe) -> dict:
    return one_epoch(probe, probe.student("LinearNet")(784, 10))


def train_flatten_net(probe: Probe) -> dict:
    """The seed's net: nn.Sequential of FlattenLayer and nn.Linear(784, 10), by name."""
    return one_epoch(probe, nn.Sequential(OrderedDict([
        ("flatten", probe.student("FlattenLayer")()), ("linear", nn.Linear(784, 10))])))


PROBES = {
    "FlattenLayer.images": flatten_images,
    "FlattenLayer.other_shapes": flatten_other_shapes,
    "FlattenLayer.gradient": flatten_gradient,
    "LinearNet.images": linear_net_images,
    "LinearNet.other_sizes": linear_net_other_sizes,
}
EPOCH_STEPS = {
    "LinearNet.epoch": train_linear_net,
    "FlattenLayer.epoch": train_flatten_net,
}
