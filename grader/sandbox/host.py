"""What this machine gives the sandbox, told without importing torch: whether bubblewrap
works, whether the grader can drop a kernel to a uid of its own, how many threads a kernel
may use, and the environment a kernel starts from.

Kept apart from grader/sandbox/bwrap.py so that `grade` can start the warm parent of its
kernels (grader/sandbox/forkserver.py) before it imports torch itself: one submission's
wait for its kernel then overlaps the grader's own imports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path

# What the kernel may inherit of the grader's environment: locale, paths to programs and
# libraries, the GPUs it may use. Anything else (tokens, the grader's own settings) stays out.
INHERITED_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH",
                 "CUDA_HOME", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # what sizes torch's thread pools


@cache
def bwrap_works() -> bool:
    """bwrap exists and can build a namespace here (containers may forbid it)."""
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def drops_privileges() -> bool:
    """As root the kernel runs as a dedicated uid, which also makes the process cap bite."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def share_of_cores(processes: int) -> int:
    """The threads each of `processes` grading processes on this machine may use: --jobs
    workers, or a local Dask cluster's."""
    return max(1, len(os.sched_getaffinity(0)) // processes)


def kernel_threads() -> int:
    """The threads a kernel's torch may use: this grading process's share of the cores (a
    worker's, whose OMP_NUM_THREADS says it, else every core this process may run on) less
    the one the grading process works on beside its kernel (the reference's timed steps,
    the next kernel's boot), and at least one. Kernels never oversubscribe the cores: on
    two, a kernel's second thread doubled the CPU time of its concise epoch (0.49 s against
    0.24 s) without shortening it, and took that core from the grader's own work."""
    try:
        share = max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        share = share_of_cores(1)
    return max(1, share - 1)


def kernel_environment(workdir: Path, data: Mapping[str, Path]) -> dict[str, str]:
    """An allow-list of the grader's environment, HOME and IPython's folders inside the
    work folder (the rest of the system is read-only) and where each data set in `data`
    lies."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update(HOME=str(workdir), IPYTHONDIR=str(workdir / ".ipython"),
               MPLCONFIGDIR=str(workdir / ".matplotlib"), TMPDIR="/tmp",
               PYTHONDONTWRITEBYTECODE="1",
               # torch's compile caches: the grader's own (set once it imports
               # torch._dynamo) lie under a /tmp the kernel cannot see or write.
               TORCHINDUCTOR_CACHE_DIR=str(workdir / ".torchinductor"),
               TRITON_CACHE_DIR=str(workdir / ".triton"))
    env.update(dict.fromkeys(THREAD_VARIABLES, str(kernel_threads())))
    env.update({variable: str(folder) for variable, folder in data.items()})
    return env
