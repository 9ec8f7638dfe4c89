"""Leaving a command's process once its work is done, without tearing torch's heap down
object by object (a third of a second and more, after the work, that the user waits out):
the exit code as the interpreter would give it, the output flushed, the exit handlers run
(temporary folders, the kernels' parent), then out."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def run_and_leave(command: Callable[[], object]) -> NoReturn:
    """Run `command`, then leave the process as its exit says."""
    try:
        command()
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # as the interpreter says an exit with a message
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code or 0)
