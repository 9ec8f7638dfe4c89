"""A control group per kernel: whatever a student's code forks shares one CPU weight, one
memory cap and one process cap, and closing the kernel kills every process in the group.

rlimits bind one process (memory) or one uid (processes); a fork bomb's hundreds of
processes would still crowd out the kernels of other students, and a process that left the
kernel's process group would outlive it. cgroup v1 hierarchies (cpu, memory, pids) are used
where this process, as root, may create groups below its own; elsewhere the rlimits alone
apply, and `available()` says so.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from grader.sandbox.janitor import FIRST_LOOK_SECONDS, kill_all, remove_groups

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpu", "memory", "pids")
# Where the machine has it, a cpuacct group too: the kernel's CPU time, read from outside,
# which neither load on the machine inflates several-fold nor the kernel can forge.
ACCOUNTING = "cpuacct"
MAX_TASKS_CHARS = 1 << 20  # of a group's thread list (the process cap bounds it anyway)
# Writes this shell's pid into each cgroup.procs given before "--", then becomes the command.
ENTER = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'


def own_group(controller: str) -> Path:
    """This process's group in a v1 hierarchy (a container's may be below the root)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return ROOT / controller / path.lstrip("/")
    raise FileNotFoundError(f"no {controller} cgroup hierarchy")


@cache
def available() -> bool:
    """Root, and a group can be made below ours in every controller."""
    if os.geteuid() != 0:
        return False
    try:
        for controller in CONTROLLERS:
            probe = own_group(controller) / f"grader-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
    except OSError:
        return False
    return True


def for_kernel(name: str, memory_mb: int, max_processes: int) -> KernelGroup | None:
    """The kernel's groups, or None where they cannot be made (the rlimits still apply)."""
    if not available():
        return None
    try:
        return KernelGroup(name, memory_mb, max_processes)
    except OSError:
        remove_groups(group_paths(name))
        return None


def group_paths(name: str) -> list[Path]:
    """The kernel's group folder in each hierarchy, in CONTROLLERS order."""
    return [own_group(controller) / name for controller in CONTROLLERS]


def accounts_cpu() -> bool:
    """The machine has a cpuacct hierarchy: the kernels' CPU time can be read."""
    try:
        return (own_group(ACCOUNTING) / "cpuacct.usage").exists()
    except OSError:
        return False


def cpu_time_unread() -> str:
    """Why a kernel's CPU time is missing, as a student reads it: the machine's reason, or
    this kernel's own where the machine could count it."""
    if not available():
        return ("the kernel ran without a control group of its own (the grader is not root, "
                "or cannot make cgroup v1 groups here), so its CPU time could not be read")
    if not accounts_cpu():
        return ("this machine has no cpuacct cgroup hierarchy, so the kernel's CPU time "
                "could not be read")
    return "the kernel's control group could not be made or read, so its CPU time is missing"


@contextmanager
def thread_apart(shares: int) -> Iterator[None]:
    """This thread alone in a cpu group of its own with `shares`, for the block, where groups
    can be made: it then competes for the cores as a kernel in its group does. Left among
    every other process of the grader's group, a reference step was slowed several times
    more than the kernel's beside the same load, and each of its CPU seconds did less."""
    tid = threading.get_native_id()
    group = thread_group(tid, shares)
    try:
        yield
    finally:
        if group is not None:
            (group.parent / "tasks").write_text(str(tid))
            remove_groups([group])


def thread_group(tid: int, shares: int) -> Path | None:
    """Thread `tid` moved into a new cpu group with `shares`; None where none can be made."""
    if not available():
        return None
    group = own_group("cpu") / f"grader-{os.getpid()}-thread-{tid}"
    try:
        group.mkdir(exist_ok=True)
        (group / "cpu.shares").write_text(str(shares))
        (group / "tasks").write_text(str(tid))
    except OSError:
        remove_groups([group])
        return None
    return group


def accounting_group(name: str) -> Path | None:
    """The kernel's cpuacct group, or None where the machine has no such hierarchy (where it
    shares cpu's, this is the cpu group's folder)."""
    try:
        path = own_group(ACCOUNTING) / name
        path.mkdir(exist_ok=True)
    except OSError:
        return None
    return path if (path / "cpuacct.usage").exists() else None


class KernelGroup:
    """The groups of one kernel, named after it, with the sandbox's caps written in."""

    def __init__(self, name: str, memory_mb: int, max_processes: int):
        self.paths = group_paths(name)
        for path in self.paths:
            path.mkdir(exist_ok=True)
        _, memory, pids = self.paths
        (memory / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
        (pids / "pids.max").write_text(str(max_processes))
        self.accounting = accounting_group(name)

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process of the group so far; None without cpuacct."""
        if self.accounting is None:
            return None
        try:
            return int((self.accounting / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def runnable(self) -> dict[int, int]:
        """Nanoseconds each thread of the group has run or waited to run (schedstat): a
        thread that sleeps or blocks does neither, one a busy machine starves waits."""
        threads = {}
        try:
            tids = (self.paths[0] / "tasks").read_text()[:MAX_TASKS_CHARS].split()
        except OSError:
            return {}
        for tid in tids:
            try:
                run, wait, _ = Path(f"/proc/{int(tid)}/schedstat").read_text().split()
                threads[int(tid)] = int(run) + int(wait)
            except (OSError, ValueError):
                continue
        return threads

    def set_cpu_weight(self, shares: int) -> None:
        """cpu.shares: a kernel booting ahead of need yields the cores to the one at work."""
        (self.paths[0] / "cpu.shares").write_text(str(shares))

    def procs_files(self) -> list[str]:
        """The cgroup.procs of every group of the kernel's: a process joins them all."""
        return [str(path / "cgroup.procs") for path in [*self.paths, *filter(None, [
            self.accounting])]]

    def enter_command(self) -> list[str]:
        """A prefix that moves the command into the groups before it runs a line."""
        return ["sh", "-c", ENTER, "sh", *self.procs_files(), "--"]

    def processes(self) -> list[int]:
        try:
            text = (self.paths[-1] / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def close(self, attempts: int = 50, settle: float = 0.0) -> None:
        """Kill every process in the group, however it detached, then remove the groups;
        those already dying are given `settle` seconds to end on their own first (reaped by
        their parents, their CPU time is counted up the tree)."""
        deadline = time.monotonic() + settle
        while self.processes() and time.monotonic() < deadline:
            time.sleep(FIRST_LOOK_SECONDS)
        kill_all(self.processes, attempts)
        remove_groups([*self.paths, *filter(None, [self.accounting])], attempts)
