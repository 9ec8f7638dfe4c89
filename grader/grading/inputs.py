"""The hidden inputs: drawn from one recorded seed, the same for every submission and every
run; what of them the kernel may see, and when.

The kernel gets no seed: each probe's seed is derived from the grading seed by a one-way
hash, so the hidden inputs and the secrets drawn with them cannot be recomputed there.
"""

from __future__ import annotations

import hashlib

import nbformat
import torch

from grader.grading.assignment import Assignment
from grader.kernel.probing import DEVICE, PROBE_SEEDS

SECRET = "secret."


def derived_seed(seed: int, *parts: str) -> int:
    """A seed drawn from the grading seed and `parts` by a one-way hash: knowing it tells
    nothing of the grading seed."""
    text = ":".join([str(seed), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") % 2**31


def build_inputs(assignment: Assignment, notebook: nbformat.NotebookNode) -> dict:
    """Hidden inputs from one recorded seed: the same for every submission and every run,
    each exercise's drawn from a generator of its own (they do not change with the other
    exercises of the assignment), with a seed of its own for each probe."""
    settings = assignment.settings
    inputs: dict = {DEVICE: settings.device}
    for exercise in assignment.exercises:
        generator = torch.Generator().manual_seed(derived_seed(settings.seed, exercise.name))
        inputs.update(exercise.make_inputs(generator, settings.options[exercise.name],
                                           notebook))
    inputs[PROBE_SEEDS] = {key: derived_seed(settings.seed, key)
                           for work in assignment.work for key in work.keys}
    return inputs


def late_inputs(assignment: Assignment, digest: str) -> dict[str, int]:
    """The steps' late inputs for one submission: seeds the kernel cannot know before the
    step that uses them, the same on every regrade of the same notebook."""
    return {key: derived_seed(assignment.settings.seed, digest, key)
            for work in assignment.work for key in work.step.late}


def kernel_inputs(inputs: dict, late: dict) -> dict:
    """What the kernel may see from the start: neither the checks' secrets (the true
    weights, say) nor the late inputs."""
    return {k: v for k, v in inputs.items() if not k.startswith(SECRET) and k not in late}
