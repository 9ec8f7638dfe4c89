"""Kernel side of the gradient exercises (seed 002): gradients by hand and by central
differences, the train/validation split, and the training loop with autograd.
"""

from __future__ import annotations

import torch

from grader.kernel.probing import TORCH_CALLS, Probe, recording_torch_calls


def gradients(probe: Probe, name: str, *extra) -> list:
    """The student's gradient at the seed's start (1, 0) and at the grader's points."""
    function = probe.student(name)
    x, y = probe.inputs["gradients.x"], probe.inputs["gradients.y"]
    return [function(x.clone(), y.clone(), w, b, *extra)
            for w, b in probe.inputs["gradients.points"].tolist()]


def analytic_values(probe: Probe) -> list:
    return gradients(probe, "analytic_grad")


def numerical_values(probe: Probe) -> list:
    return gradients(probe, "numerical_grad", float(probe.inputs["gradients.eps"]))


def seeded_split(probe: Probe, n: int, fraction: float, seed: int):
    torch.manual_seed(seed)
    return probe.student("split_indices")(n, fraction)


def split_cases(probe: Probe) -> list:
    """Per case: a split, the same seed again, and another seed."""
    first, second = (int(s) for s in probe.inputs["split.seeds"])
    return [[seeded_split(probe, int(n), fraction, seed) for seed in (first, first, second)]
            for n, fraction in probe.inputs["split.cases"]]


def split_edges(probe: Probe) -> list:
    return [probe.student("split_indices")(int(n), fraction)
            for n, fraction in probe.inputs["split.edges"]]


def train(probe: Probe, prefix: str, epochs: int):
    x, y = probe.inputs[f"{prefix}.x"], probe.inputs[f"{prefix}.y"]
    params = probe.inputs[f"{prefix}.start"].clone().requires_grad_(True)
    return probe.student("training_loop")(epochs, float(probe.inputs[f"{prefix}.lr"]), params,
                                          x.clone(), y.clone())


def seed_run(probe: Probe):
    return train(probe, "training", int(probe.inputs["training.epochs"]))


def two_steps(probe: Probe):
    """Two steps on the grader's data: the second shows whether the first's gradient stayed."""
    return train(probe, "training_other", 2)


def autograd_use(probe: Probe) -> dict:
    """Two steps on the grader's data, watching autograd: how many gradients a backward()
    (or torch.autograd.grad) sent into params, and the torch functions the call reached."""
    x, y = probe.inputs["training_other.x"], probe.inputs["training_other.y"]
    params = probe.inputs["training_other.start"].clone().requires_grad_(True)
    arrivals: list[int] = []
    params.register_hook(lambda grad: arrivals.append(1) if len(arrivals) < 100 else None)
    out, reached = recording_torch_calls(probe.student("training_loop"), 2,
                                         float(probe.inputs["training_other.lr"]), params,
                                         x.clone(), y.clone())
    return {"out": out, "gradients": len(arrivals), TORCH_CALLS: reached}


def other_data(probe: Probe):
    return train(probe, "training_other", int(probe.inputs["training_other.epochs"]))


PROBES = {
    "analytic_grad.values": analytic_values,
    "numerical_grad.values": numerical_values,
    "split_indices.cases": split_cases,
    "split_indices.edges": split_edges,
    "training_loop.seed_run": seed_run,
    "training_loop.two_steps": two_steps,
    "training_loop.other_data": other_data,
    "training_loop.autograd": autograd_use,
}
