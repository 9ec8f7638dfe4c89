"""Kernel side, shared by the exercises' probe modules: calling a student's function on
candidate inputs and reading a bounded number of batches from a student's iterator.

Runs inside the student's kernel and, on the reference functions, in the grader. A probe
module imports only grader.kernel, never another exercise's probes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from grader.kernel.probing import Probe

MAX_BATCHES = 500  # an iterator yielding more is endless, or not batching at all
# Datasets from small to large, (examples, batch_size), cut from data_iter's hidden one: the
# first on which a data_iter goes wrong is the counterexample its feedback shows.
SMALL_CASES = ((1, 1), (2, 1), (2, 2), (3, 2), (4, 3), (5, 2), (10, 3), (10, 10))


def collected(batches: Iterable, what: str, keep: Callable[[Any], list] = list) -> list:
    """The batches of a student's iterator (named `what`), each as `keep` makes it, stopped
    with an error once it yields more than MAX_BATCHES."""
    kept = []
    for batch in batches:
        kept.append(keep(batch))
        if len(kept) > MAX_BATCHES:
            raise RuntimeError(f"{what} yielded more than {MAX_BATCHES} batches")
    return kept


def on_each_case(function: Callable, cases: list[list]) -> list[dict]:
    """`function` on each candidate input (a list of arguments, copied: a function that
    changes its arguments changes no later case): what it returned, or the kind of error it
    raised, so that one failing case costs none of the others."""
    outputs = []
    for arguments in cases:
        copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in arguments]
        try:
            outputs.append({"out": function(*copies)})
        except Exception as error:  # noqa: BLE001 - student code may raise anything
            outputs.append({"raised": type(error).__name__})
    return outputs


def on_the_cases(function: str) -> Callable[[Probe], list[dict]]:
    """A probe calling the student's `function` on each of its candidate inputs, kept under
    `<function>.cases`, from small to large."""
    return lambda probe: on_each_case(probe.student(function), probe.inputs[f"{function}.cases"])
