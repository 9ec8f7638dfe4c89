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


INIT_DRAWS = 100  # untrained nets: 200 weights tell normal(0, 0.01) from another spread


class CountedBatches:
    """The DataLoader handed to the student, counting the batches taken from it: over its
    length, the epochs the loop really ran (a batch peeked at for its shape is no epoch)."""

    def __init__(self, loader: DataLoader):
        self.loader, self.batches = loader, 0

    def __iter__(self):
        for batch in self.loader:
            self.batches += 1
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


def train_linreg(probe: Probe, epochs: int) -> tuple[object, float]:
    """The student's net after `epochs`, and how many passes over the data it made."""
    dataset = TensorDataset(probe.inputs["concise_linreg.features"],
                            probe.inputs["concise_linreg.labels"])
    data_iter = CountedBatches(DataLoader(dataset, int(probe.inputs["concise_linreg.batch_size"]),
                                          shuffle=True))
    net = probe.student("train_linreg_concise")(data_iter, epochs,
                                                float(probe.inputs["concise_linreg.lr"]))
    return net, data_iter.batches / len(data_iter)


def initial_weights(probe: Probe) -> torch.Tensor | None:
    """The weights of INIT_DRAWS untrained nets, one after the other, as one tensor."""
    drawn = [linear_parameters(train_linreg(probe, 0)[0])["parameters"]
             for _ in range(INIT_DRAWS)]
    if not all(isinstance(p, list) and p for p in drawn):
        return None
    return torch.cat([p[0].reshape(-1) for p in drawn])


def linreg_initial(probe: Probe) -> dict:
    """The untrained net's parameters, what it computes on the grader's query batch, and
    the weights of many more untrained nets (their spread)."""
    net, _ = train_linreg(probe, 0)
    outputs = None
    if isinstance(net, nn.Module):
        with torch.no_grad():
            outputs = net(probe.inputs["concise_linreg.query"].clone())
    return {**linear_parameters(net), "outputs": outputs, "draws": initial_weights(probe)}


def linreg_trained(probe: Probe) -> dict:
    net, passes = train_linreg(probe, int(probe.inputs["concise_linreg.epochs"]))
    return {**linear_parameters(net), "passes": passes}


PROBES = {
    "load_array.epochs": load_array_epochs,
    "concise_linreg.initial": linreg_initial,
    "concise_linreg.trained": linreg_trained,
}
