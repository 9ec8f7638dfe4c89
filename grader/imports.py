"""Importing what a process keeps for its whole life (torch, torch._dynamo, ipykernel)
without the cyclic garbage collector: it would run hundreds of times over the 600,000
objects they make, none of them garbage it could free, for a quarter of their import time
(the kernels' warm parent's imports: 2.0 s instead of 2.7 s here)."""

from __future__ import annotations

import gc
import importlib
import sys


def import_uncollected(*modules: str) -> None:
    """Import those of `modules` not imported yet with the collector off, then freeze what
    the process holds (gc.freeze): no later collection walks it again, and a forked
    kernel's collections skip it, so their pages stay shared."""
    missing = [name for name in modules if name not in sys.modules]
    if not missing:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in missing:
            importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
