"""The exercises the grader knows: each module holds its hidden inputs, probes and checks.

Adding an exercise adds a module here; the pipeline reads only these attributes:
NOTEBOOK (which assignment notebook it lives in), CHECKS, make_inputs(generator, settings,
notebook), and optionally PROBES (the kernel-side module), PROBE_STEPS and curves(context).
"""

from grader.exercises import linreg, quiz, softmax

MODULES = (linreg, softmax, quiz)


def notebooks() -> list[str]:
    """Assignment notebooks in the order their exercises are listed."""
    return list(dict.fromkeys(module.NOTEBOOK for module in MODULES))


def modules_for(notebook: str) -> list:
    return [module for module in MODULES if module.NOTEBOOK == notebook]
