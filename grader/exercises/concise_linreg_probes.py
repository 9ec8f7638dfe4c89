"""Kernel side of concise linear regression: call load_array and train_linreg_concise on
data the grader builds; what comes back is the batches and the net's parameters, as plain
data.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.kernel.probe_helpers import collected
from grader.kernel.probing import Probe


def loader_epoch(loader) -> list:
    return collected(loader, "load_array's iterator")


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


def train_linreg(probe: Probe, epochs: int):
    dataset = TensorDataset(probe.inputs["concise_linreg.features"],
                            probe.inputs["concise_linreg.labels"])
    data_iter = DataLoader(dataset, int(probe.inputs["concise_linreg.batch_size"]), shuffle=True)
    return probe.student("train_linreg_concise")(data_iter, epochs,
                                                 float(probe.inputs["concise_linreg.lr"]))


def linreg_initial(probe: Probe) -> dict:
    """The untrained net's parameters, and what it computes on the grader's query batch."""
    net = train_linreg(probe, 0)
    outputs = None
    if isinstance(net, nn.Module):
        with torch.no_grad():
            outputs = net(probe.inputs["concise_linreg.query"].clone())
    return {**linear_parameters(net), "outputs": outputs}


def linreg_trained(probe: Probe) -> dict:
    return linear_parameters(train_linreg(probe, int(probe.inputs["concise_linreg.epochs"])))


PROBES = {
    "load_array.epochs": load_array_epochs,
    "concise_linreg.initial": linreg_initial,
    "concise_linreg.trained": linreg_trained,
}
