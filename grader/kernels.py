"""Sandboxed kernels, launched ahead of need.

Starting a kernel and importing torch in it costs seconds before any student code runs.
A kernel is therefore launched with torch imported at boot, and `KernelPool` launches the
next one while the current submission is graded. Every kernel serves exactly one
submission, in a work folder of its own, so students stay isolated from each other.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from grader import cgroups
from grader.sandbox import (
    SandboxSettings,
    data_dir,
    kernel_environment,
    kernel_prefix,
    prepare_workdir,
)

# torch._dynamo (pulled in by the first optimizer) is imported at boot too: a student's
# memory bomb must not leave that lazy import half done for the probes that follow.
# PR_SET_PDEATHSIG (1): the kernel dies the moment its parent shell is killed, in the cell
# that did it; ipykernel's own parent poller would end it a second later, in another cell,
# and the rerun would pass over the wrong one.
WARM_IMPORTS = ("import ctypes, signal; ctypes.CDLL(None).prctl(1, signal.SIGKILL)",
                "import torch", "import torch._dynamo", "import grader.data")
# cpu.shares of a kernel booting ahead of need and of the one being graded: a boot that
# competed as an equal made the graded kernel's two-thread cells up to 4× slower.
BACKGROUND_SHARES = 2
FOREGROUND_SHARES = 1024
# Offsets of the kernels' uids: distinct between the workers (pid) and within one (count).
_UIDS = itertools.count(1 + (os.getpid() % 1000) * 1000)


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel behind the sandbox's command prefix, with its connection file
    readable by the kernel's unprivileged uid."""

    prefix: list[str] = []
    on_connection_file = None

    @property
    def kernel_spec(self):
        """Interrupt by message: a SIGINT to the process group would also hit bwrap, its
        leader, and bwrap dies of it, taking the kernel along."""
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if self.on_connection_file is not None:
            self.on_connection_file(Path(self.connection_file))
        return [*self.prefix, *command]


class LaunchedKernel:
    """A kernel process already started (and booting) in its own work folder."""

    def __init__(self, sandbox: SandboxSettings, gpu: bool, background: bool = False):
        # A uid per kernel: the process cap counts per uid, so one student's fork bomb
        # cannot starve the kernels of the others.
        self.sandbox = sandbox = replace(sandbox, uid=sandbox.uid + next(_UIDS))
        self.workdir = Path(tempfile.mkdtemp(prefix="grade-"))
        prepare_workdir(self.workdir, sandbox)
        # IPC sockets are files in the work folder: no TCP port is opened, and they keep
        # working inside a network namespace.
        self.manager = SandboxedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(self.workdir / "kernel"),
            connection_file=str(self.workdir / "kernel.json"))
        # A control group of its own, where the machine allows: everything the kernel
        # forks shares its caps, and closing it kills every process in it.
        self.group = cgroups.for_kernel(f"grader-{os.getpid()}-{sandbox.uid}",
                                        sandbox.memory_mb, sandbox.max_processes)
        if self.group and background:
            self.group.set_cpu_weight(BACKGROUND_SHARES)
        enter = self.group.enter_command() if self.group else []
        # One lookup of the data folder, so the bind mount and the env var name the same.
        data = data_dir()
        self.manager.prefix = [*enter, *kernel_prefix(self.workdir, sandbox, gpu, data)]
        self.manager.on_connection_file = lambda path: prepare_workdir(path, sandbox)
        warm = [f"--IPKernelApp.exec_lines={line}" for line in WARM_IMPORTS]
        run_sync(self.manager.start_kernel)(env=kernel_environment(self.workdir, data),
                                           extra_arguments=warm)

    def foreground(self) -> None:
        """Full CPU weight again, now that this kernel is the one being graded."""
        if self.group:
            self.group.set_cpu_weight(FOREGROUND_SHARES)

    def kill(self) -> None:
        """Kill the kernel, its sandbox and, with a control group, every process in it."""
        try:
            if self.manager.has_kernel:
                run_sync(self.manager.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - a kernel that will not die is killed with its group
            pass
        if self.group is not None:
            self.group.close()

    def close(self) -> None:
        """Kill the kernel and remove its work folder."""
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


class KernelPool:
    """Hands out fresh kernels, keeping the next one booting in the background."""

    def __init__(self, sandbox: SandboxSettings, gpu: bool, ahead: bool = True):
        self.sandbox = sandbox
        self.gpu = gpu
        self.ahead = ahead
        self.next: LaunchedKernel | None = None

    def take(self) -> LaunchedKernel:
        kernel = self.next or LaunchedKernel(self.sandbox, self.gpu)
        kernel.foreground()
        self.next = LaunchedKernel(self.sandbox, self.gpu, background=True) \
            if self.ahead else None
        return kernel

    def close(self) -> None:
        if self.next is not None:
            self.next.close()
            self.next = None
