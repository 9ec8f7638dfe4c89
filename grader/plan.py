"""The probes a notebook is asked for, as steps of cells in the order the kernel runs them,
and what is left to run when a kernel stops."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace

from grader.config import Settings
from grader.kernel.probing import ProbeStep, failure, function_of


def probe_steps(modules: list) -> list[tuple[str, ProbeStep]]:
    return [(m.PROBES, step) for m in modules if hasattr(m, "PROBES") for step in m.PROBE_STEPS]


def step_timeout(step: ProbeStep, settings: Settings) -> float:
    return settings.epoch_timeout if step.long else settings.probe_timeout


@dataclass
class StepWork:
    """One probe step with its keys spelled out, so a rerun can start after any of them."""

    module: str
    step: ProbeStep
    keys: list[str]

    @property
    def name(self) -> str:
        """The step as reports name it: its probe keys."""
        return "+".join(self.keys)


def planned_work(modules: list) -> list[StepWork]:
    """Every probe step with its keys spelled out, in the order the kernel runs them."""
    work = []
    for module, step in probe_steps(modules):
        table = getattr(importlib.import_module(module), step.table)
        work.append(StepWork(module, step, [k for k in table
                                            if step.keys is None or k in step.keys]))
    return work


def left_to_run(work: list[StepWork], observed: dict) -> list[StepWork]:
    left = [replace(w, keys=[k for k in w.keys if k not in observed]) for w in work]
    return [w for w in left if w.keys]


def stopped_by(culprit: str, work: list[StepWork], why: str, uses: dict) -> dict:
    """The probe that stopped the kernel fails, and so do the other probes of its function
    and those that call it (`uses`): run again, they would most likely stop the fresh kernel
    too."""
    function = function_of(culprit)
    return {key: failure("KernelStopped", f"the kernel stopped while running this probe: {why}"
                         if key == culprit else f"not run: the probe {culprit} stopped the kernel")
            for item in work for key in item.keys
            if function_of(key) == function or function in uses.get(key, ())}


def planned_keys(modules: list) -> frozenset[str]:
    return frozenset(key for work in planned_work(modules) for key in work.keys)


def timed_work(modules: list) -> list[StepWork]:
    return [work for work in planned_work(modules) if work.step.timed]
