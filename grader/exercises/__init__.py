"""The exercises the grader knows: each module holds its hidden inputs, probes and checks.

Adding an exercise adds a module here; the pipeline reads only these attributes:
NOTEBOOK (which assignment notebook it lives in), CHECKS, make_inputs(generator, settings,
notebook), and optionally PROBES (the kernel-side module), PROBE_STEPS, PROBE_USES (probe
keys that call functions besides their own) and curves(context).
"""

from __future__ import annotations

from dataclasses import replace

from grader.checks import Check
from grader.exercises import autograd, concise, linreg, probability, quiz, softmax

MODULES = (probability, autograd, linreg, softmax, quiz, concise)  # the notebook's order


def notebooks() -> list[str]:
    """Assignment notebooks in the order their exercises are listed."""
    return list(dict.fromkeys(module.NOTEBOOK for module in MODULES))


def modules_for(notebook: str) -> list:
    return [module for module in MODULES if module.NOTEBOOK == notebook]


def all_test_names() -> set[str]:
    return {check.full_name for module in MODULES for check in module.CHECKS}


def hints_for(modules: list) -> dict[str, list[tuple[str, str]]]:
    """Error-message hints of the modules, by probe-key prefix."""
    return {key: pairs for m in modules for key, pairs in getattr(m, "HINTS", {}).items()}


def configured(module, points: dict[str, float], hidden: tuple[str, ...]) -> list[Check]:
    """The module's checks with the assignment's points and hidden flags applied."""
    return [replace(check, points=points.get(check.full_name, check.points),
                    hidden=check.hidden or check.full_name in hidden)
            for check in module.CHECKS]
