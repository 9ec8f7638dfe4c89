"""Whether a surviving mutant is likely equivalent to the reference.

Both run as the reference always runs: in the grader's own process (trusted code: the
instructor's solution with one node changed), through the exercise's own probes, on inputs
its own generators draw from other seeds than the assignment's. Where every observation
matches the reference's on every seed, no input the tests could draw tells the two apart:
the mutant is likely equivalent, and left out of the score. Where one differs, the mutant
is a real survivor, and the first difference is its evidence.

Each comparison runs in a spawned process with a time limit: a mutant may loop.
"""

from __future__ import annotations

import math
import multiprocessing
from dataclasses import replace
from typing import Any

import nbformat
import torch

from grader.authoring.config import Settings
from grader.authoring.exercise import available
from grader.grading.assignment import Assignment
from grader.grading.inputs import build_inputs, derived_seed, late_inputs
from grader.grading.plan import step_timeout
from grader.grading.reference import namespace_of
from grader.kernel.probing import TORCH_CALLS, Probe, run_table

SEEDS = 3  # other seeds each survivor is compared on
RTOL, ATOL = 1e-5, 1e-7  # a float rewritten in another order still matches
TIME_LIMIT = 300.0  # seconds for one survivor's comparison, all seeds


def observed(notebook: nbformat.NotebookNode, settings: Settings) -> dict[str, dict]:
    """Every probe of the settings' exercises on the functions its cells define."""
    assignment = Assignment.of(settings)
    inputs = {**build_inputs(assignment, notebook), **late_inputs(assignment, "audit")}
    probe = Probe(namespace_of(notebook, f"audit.{settings.notebook}"), inputs, None,
                  settings.long_timeout)
    for work in assignment.work:
        run_table(probe, work.module, work.table, work.keys, step_timeout(work.step, settings))
    return probe.observations


def first_difference(reference: nbformat.NotebookNode, mutant: nbformat.NotebookNode,
                     settings: Settings, seeds: int = SEEDS) -> str | None:
    """Where the mutant's observations first differ from the reference's, in words; None
    where they match on every seed."""
    for round_ in range(seeds):
        seeded = replace(settings, seed=derived_seed(settings.seed, "audit", str(round_)))
        want, got = observed(reference, seeded), observed(mutant, seeded)
        for key, entry in want.items():
            if not same_entry(entry, got.get(key)):
                return f"it differs from the reference at {key} on seed {seeded.seed}"
    return None


def same_entry(want: dict, got: dict | None) -> bool:
    """Both returned alike, or both raised the same kind of error."""
    if got is None or want["ok"] != got["ok"]:
        return False
    return same(want["value"], got["value"]) if want["ok"] else want["error"] == got["error"]


def same(want: Any, got: Any) -> bool:
    """Equal values, floats within RTOL/ATOL, NaN equal to NaN; what torch functions were
    reached is how, not what, so it is not compared."""
    if isinstance(want, torch.Tensor):
        return isinstance(got, torch.Tensor) and want.shape == got.shape \
            and want.dtype == got.dtype and (
                torch.allclose(want.double(), got.double(), RTOL, ATOL, equal_nan=True)
                if want.is_floating_point() or want.is_complex() else torch.equal(want, got))
    if isinstance(want, dict):
        keys = set(want) - {TORCH_CALLS}
        return isinstance(got, dict) and keys == set(got) - {TORCH_CALLS} and all(
            same(want[key], got[key]) for key in keys)
    if isinstance(want, list | tuple):
        return isinstance(got, list | tuple) and len(want) == len(got) and all(
            same(a, b) for a, b in zip(want, got, strict=True))
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(want, got, rel_tol=RTOL, abs_tol=ATOL) or (
            math.isnan(want) and math.isnan(got))
    return type(want) is type(got) and want == got


def start_child() -> None:
    """Before a task comes: one thread, and the course's own exercise modules importable
    (the settings sent refer to their Options)."""
    torch.set_num_threads(1)
    available()


def compared(reference: str, mutant: str, settings: Settings) -> str | None:
    """first_difference of two notebooks given as JSON text (what a spawned process gets)."""
    return first_difference(nbformat.reads(reference, as_version=4),
                            nbformat.reads(mutant, as_version=4), settings)


def verdict(reference: nbformat.NotebookNode, mutant: nbformat.NotebookNode,
            settings: Settings) -> tuple[bool, str]:
    """(likely equivalent, the evidence in words), the comparison run apart, in time."""
    with multiprocessing.get_context("spawn").Pool(1, initializer=start_child) as pool:
        pending = pool.apply_async(compared, (nbformat.writes(reference),
                                              nbformat.writes(mutant), settings))
        try:
            difference = pending.get(TIME_LIMIT)
        except multiprocessing.TimeoutError:
            return False, f"its comparison with the reference ran past {TIME_LIMIT:g} s"
        except Exception as error:  # noqa: BLE001 - the mutant broke the comparison
            return False, f"its comparison with the reference failed: {type(error).__name__}"
    if difference is None:
        return True, (f"every probe observed the same as the reference's on {SEEDS} other "
                      "seeds")
    return False, difference
