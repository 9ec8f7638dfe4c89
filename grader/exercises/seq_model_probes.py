"""Kernel side of make_seq_model: the net it builds, described layer by layer, and the same
net trained by the grader's own loop (full-batch SGD on MSELoss, as the seed trains it).
"""

from __future__ import annotations

import torch
from torch import nn

from grader.kernel.probing import Probe


def parameters(net: nn.Module) -> list:
    return [p.detach().clone() for p in net.parameters()]


def layer(module: nn.Module) -> dict:
    return {"type": type(module).__name__,
            "in_features": getattr(module, "in_features", None),
            "out_features": getattr(module, "out_features", None)}


def built(probe: Probe) -> dict:
    """Two nets from two calls: the first's layers, parameters and outputs on the grader's
    query points, and whether the second shares any of its parameters."""
    make = probe.student("make_seq_model")
    net, other = make(), make()
    if not isinstance(net, nn.Module):
        return {"module": False, "type": type(net).__name__}
    with torch.no_grad():
        outputs = net(probe.inputs["make_seq_model.query"].clone())
    shared = isinstance(other, nn.Module) and (
        other is net or bool({id(p) for p in net.parameters()}
                             & {id(p) for p in other.parameters()}))
    return {"module": True, "type": type(net).__name__,
            "sequential": isinstance(net, nn.Sequential),
            "layers": [layer(m) for m in net.children()],
            "parameters": parameters(net), "outputs": outputs, "shared": shared}


def trained(probe: Probe) -> dict:
    """The net after the grader's loop, with its outputs on the validation points."""
    inputs = probe.inputs
    net = probe.student("make_seq_model")()
    optimizer = torch.optim.SGD(net.parameters(), lr=float(inputs["make_seq_model.lr"]))
    loss = nn.MSELoss()
    X, y = inputs["make_seq_model.X_train"], inputs["make_seq_model.y_train"]
    for _ in range(int(inputs["make_seq_model.epochs"])):
        optimizer.zero_grad()
        loss(net(X), y).backward()
        optimizer.step()
    with torch.no_grad():
        outputs = net(inputs["make_seq_model.X_val"].clone())
    return {"parameters": parameters(net), "outputs": outputs}


PROBES = {
    "make_seq_model.built": built,
    "make_seq_model.trained": trained,
}
