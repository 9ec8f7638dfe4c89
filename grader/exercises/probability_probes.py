"""Kernel side of the probability exercises: call estimate_probabilities and normal.

Runs inside the student's kernel and, on the reference functions, in the grader.
"""

from __future__ import annotations

import torch

from grader.kernel.probing import Probe


def estimates(probe: Probe, counts: torch.Tensor) -> dict:
    return {"out": probe.student("estimate_probabilities")(counts)}


def estimates_seeded(probe: Probe) -> dict:
    """The estimates, and the counts passed in as the call left them."""
    counts = probe.inputs["dice.counts"].float()
    return {**estimates(probe, counts), "counts_after": counts}


def estimates_many_groups(probe: Probe) -> dict:
    return estimates(probe, probe.inputs["dice.many"].float())


def estimates_loaded_die(probe: Probe) -> dict:
    """int64 counts, as one_hot(...).sum() gives them, of a loaded four-sided die."""
    return estimates(probe, probe.inputs["dice.loaded"].long())


def density(probe: Probe, x, key: str):
    mu, sigma = (float(v) for v in probe.inputs[key])
    return probe.student("normal")(x, mu, sigma)


def normal_grid(probe: Probe) -> list:
    """The seed's grid and (mean, std) pairs, and one pair of the grader's."""
    grid = probe.inputs["normal.grid"]
    normal = probe.student("normal")
    return [normal(grid.clone(), float(mu), float(sigma))
            for mu, sigma in probe.inputs["normal.pairs"].tolist()]


def normal_matrix(probe: Probe):
    return density(probe, probe.inputs["normal.matrix"].clone(), "normal.params")


def normal_number(probe: Probe):
    return density(probe, float(probe.inputs["normal.number"]), "normal.params")


def normal_array(probe: Probe):
    return density(probe, probe.inputs["normal.array"].numpy().copy(), "normal.params")


def normal_gradient(probe: Probe):
    x = probe.inputs["normal.matrix"].clone().requires_grad_(True)
    density(probe, x, "normal.params").sum().backward()
    return x.grad


PROBES = {
    "estimate_probabilities.seeded": estimates_seeded,
    "estimate_probabilities.many": estimates_many_groups,
    "estimate_probabilities.loaded": estimates_loaded_die,
    "normal.grid": normal_grid,
    "normal.matrix": normal_matrix,
    "normal.number": normal_number,
    "normal.array": normal_array,
    "normal.gradient": normal_gradient,
}
