"""Where notebooks handed out before the self-check moved import it from: it forwards every
name to grader.selfcheck, which students' notebooks now import.

The self-check evaluates the grader's public checks, so it is not kernel-side code; this
module loads it only when a name is asked for, and importing it alone loads nothing of the
grader side (tests/test_layout.py keeps the kernel side so).
"""

from __future__ import annotations

import importlib
from typing import Any

HOME = "grader.selfcheck"


def __getattr__(name: str) -> Any:
    """`from grader.kernel.selfcheck import check` gives grader.selfcheck's `check`."""
    return getattr(importlib.import_module(HOME), name)
