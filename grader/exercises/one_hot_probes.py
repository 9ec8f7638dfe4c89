"""Kernel side of one_hot: call it on the grader's labels, and keep the labels as the call
left them."""

from __future__ import annotations

from grader.kernel.probing import Probe


def encoded(probe: Probe, key: str) -> dict:
    """one_hot of a copy of the labels under `key`, and that copy after the call."""
    target = probe.inputs[f"one_hot.{key}"].clone()
    out = probe.student("one_hot")(target, int(probe.inputs[f"one_hot.{key}_classes"]))
    return {"out": out, "target_after": target}


PROBES = {
    "one_hot.seed": lambda probe: encoded(probe, "seed"),
    "one_hot.other": lambda probe: encoded(probe, "other"),
    "one_hot.narrow": lambda probe: encoded(probe, "narrow"),
}
