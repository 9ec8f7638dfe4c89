"""Sandboxed kernels, launched ahead of need.

Starting a kernel and importing torch in it costs seconds before any student code runs.
A kernel is therefore launched with torch imported at boot, and `KernelPool` launches the
next one while the current submission is graded. Every kernel serves exactly one
submission, in a work folder of its own, so students stay isolated from each other.

A kernel's folder belongs to the grader: inside it, `work/` is the kernel's (its HOME and
current folder) and `ipc/` holds its channel's sockets and connection file, the kernel's
only while it boots (it binds the sockets there), the grader's again before any student
code runs. `work/` is a capped tmpfs where the grader may mount one (grader/sandbox/bwrap.py), and
`output` the FIFO the kernel's processes write their stdout and stderr into
(grader/sandbox/kernel_output.py). Kernels run in sessions of their own, out of reach of a
terminal's Ctrl-C, and what they leave is cleaned up by the janitor however the grader
ends (grader/sandbox/janitor.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import replace
from functools import cache
from pathlib import Path
from queue import Empty

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from grader import timeline
from grader.authoring.datasets import in_use
from grader.grading.cache import private_root
from grader.sandbox import cgroups
from grader.sandbox.bwrap import (
    HOLDER,
    SandboxSettings,
    data_folders,
    forks_kernels,
    holder_command,
    kernel_prefix,
    limits,
    mount_disk,
    prepare_workdir,
    take_back,
)
from grader.sandbox.forkserver import ForkServer, warm_parent
from grader.sandbox.host import kernel_environment
from grader.sandbox.janitor import Janitor, unmount
from grader.sandbox.kernel_output import KernelOutput

# torch._dynamo (pulled in by the first optimizer) is imported at boot too: a student's
# memory bomb must not leave that lazy import half done for the probes that follow.
# PR_SET_PDEATHSIG (1): the kernel dies the moment its parent shell is killed, in the cell
# that did it; ipykernel's own parent poller would end it a second later, in another cell,
# and the rerun would pass over the wrong one.
WARM_IMPORTS = ("import ctypes, signal; ctypes.CDLL(None).prctl(1, signal.SIGKILL)",
                "import torch", "import torch._dynamo", "import grader.kernel.data")
# cpu.shares of a kernel booting ahead of need and of the one being graded: a boot that
# competed as an equal made the graded kernel's two-thread cells up to 4× slower.
BACKGROUND_SHARES = 2
FOREGROUND_SHARES = 1024
# Kernels' uids: a block of UIDS_PER_BLOCK per grading process, held by a lock for its
# life, so two workers never hand one uid to two kernels; within a block, in turn.
UID_BLOCKS = 1000
UIDS_PER_BLOCK = 1000
_KERNELS = itertools.count()
# The largest frame the grader accepts from a kernel: a larger one drops the connection for
# good (libzmq ends the session) instead of filling the grader's memory. Far above what
# the grader keeps (an observation is at most MAX_MESSAGE_CHARS, printed output 2 MB), as
# ipykernel sends a burst of prints as one message: 100 MB printed at once must still
# leave the probes after it their channel.
MAX_FRAME_BYTES = 512 * 2**20
HOLDER_SECONDS = 120.0  # for bwrap to build a forked kernel's sandbox, in the background
KILL_SECONDS, KILL_POLL_SECONDS = 5.0, 0.005  # for a killed kernel to be gone, how often
SETTLE_SECONDS = 0.1  # for a killed sandbox's last processes to end on their own
# Signals whose default action is to be ignored or to stop, as a /proc signal mask: any
# other pending on the placeholder (which handles none) ends it, and its sandbox with it.
SPARING = sum(1 << (number - 1) for number in (
    signal.SIGCHLD, signal.SIGCONT, signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGURG, signal.SIGWINCH))


@cache
def uid_block() -> int:
    """The first uid block no other grading process holds (its lock dies with it)."""
    folder = private_root() / "uid-blocks"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for block in range(UID_BLOCKS):
        handle = os.open(folder / f"{block}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        return block  # the descriptor stays open: the lock is held until this process ends
    raise RuntimeError(f"all {UID_BLOCKS} blocks of kernel uids are in use")


@cache
def janitor(pid: int) -> Janitor:
    """This grading process's janitor (by pid: a forked child needs one of its own)."""
    return Janitor()


def next_uid(base: int) -> int:
    return base + 1 + uid_block() * UIDS_PER_BLOCK + next(_KERNELS) % UIDS_PER_BLOCK


class PromptKernelClient(AsyncKernelClient):
    """A client that is ready as soon as its kernel is."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """jupyter_client's, less the wait for IOPub to fall silent for 0.2 s that ends it,
        on every kernel: a fifth of a second a submission. nbclient takes from IOPub only
        the messages of the request it waits on, so one still on its way is passed over."""
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
                if reply["msg_type"] == "kernel_info_reply":
                    await self.iopub_channel.get_msg(timeout=0.2)  # IOPub is connected
                    self._handle_kernel_info_reply(reply)
                    return
            except Empty:
                pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel behind the sandbox's command prefix, with its connection file
    readable by the kernel's unprivileged uid."""

    client_factory = PromptKernelClient
    prefix: list[str] = []
    on_connection_file = None
    forked = False  # the command is a sandbox's placeholder; the kernel is forked into it
    kernel_arguments: list[str] = []

    @property
    def kernel_spec(self):
        """Interrupt by message: a SIGINT to the process group would also hit bwrap, its
        leader, and bwrap dies of it, taking the kernel along."""
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    async def _async_interrupt_kernel(self) -> None:
        """No interrupt on the way to a kill (shutting down): the message would stay unsent
        to the dead kernel, and closing its socket waits 0.1 s on it."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()

    async def _async_kill_kernel(self, restart: bool = False) -> None:
        """jupyter_client's kill, looking again every few milliseconds, not every tenth of a
        second, for the kernel to be gone (it takes a few): a tenth of a second a kernel."""
        if not self.has_kernel:
            return
        await self.provisioner.kill(restart=restart)
        deadline = time.monotonic() + KILL_SECONDS
        while await self.provisioner.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(KILL_POLL_SECONDS)
        if await self.provisioner.poll() is not None:
            await self.provisioner.wait()

    def client(self, **kwargs):
        """A client whose sockets refuse oversized frames from the kernel."""
        client = super().client(**kwargs)
        client.context.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        return client

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if self.on_connection_file is not None:
            self.on_connection_file(Path(self.connection_file))
        if self.forked:
            self.kernel_arguments = command[command.index("ipykernel_launcher") + 1:]
            return list(self.prefix)
        return [*self.prefix, *command]


class LaunchedKernel:
    """A kernel process already started (and booting) in its own work folder."""

    def __init__(self, sandbox: SandboxSettings, gpu: bool, background: bool = False,
                 forks: ForkServer | None = None):
        # A uid per kernel: the process cap counts per uid, so one student's fork bomb
        # cannot starve the kernels of the others.
        self.sandbox = sandbox = replace(sandbox, uid=next_uid(sandbox.uid))
        self.folder = Path(tempfile.mkdtemp(prefix="grade-"))
        self.folder.chmod(0o711)  # the kernel may pass through, not list or change it
        self.workdir, self.ipc = self.folder / "work", self.folder / "ipc"
        for path in (self.workdir, self.ipc):
            path.mkdir(mode=0o700)
            prepare_workdir(path, sandbox)
        self.disk = mount_disk(self.workdir, sandbox)
        self.output = KernelOutput(self.folder / "output")
        # IPC sockets are files: no TCP port is opened, and they keep working inside a
        # network namespace.
        self.manager = SandboxedKernelManager(
            kernel_name="python3", transport="ipc", ip=str(self.ipc / "kernel"),
            connection_file=str(self.ipc / "kernel.json"))
        # A control group of its own, where the machine allows: everything the kernel
        # forks shares its caps, and closing it kills every process in it.
        self.group = cgroups.for_kernel(f"grader-{os.getpid()}-{sandbox.uid}",
                                        sandbox.memory_mb, sandbox.max_processes)
        if self.group and background:
            self.group.set_cpu_weight(BACKGROUND_SHARES)
        groups = [str(Path(f).parent) for f in self.group.procs_files()] if self.group else []
        janitor(os.getpid()).hold(self.folder, self.workdir if self.disk else None, groups)
        enter = self.group.enter_command() if self.group else []
        # One lookup of the data folders, so the bind mounts and the env vars name the same.
        data = data_folders()
        cage = holder_command if forks else kernel_prefix
        self.manager.prefix = [*enter, *cage(self.folder, self.workdir, sandbox, gpu, data)]
        self.manager.forked = forks is not None
        self.manager.on_connection_file = lambda path: prepare_workdir(path, sandbox)
        warm = [f"--IPKernelApp.exec_lines={line}" for line in WARM_IMPORTS]
        # No input history: no thread of IPython's writes an SQLite file into the work folder
        # beside the notebook's cells (a notebook that filled its disk got that thread's
        # error in its output).
        warm.append("--HistoryManager.enabled=False")
        env = kernel_environment(self.workdir, data)
        run_sync(self.manager.start_kernel)(env=env, extra_arguments=warm,
                                            stdout=self.output.writer,
                                            stderr=self.output.writer)
        self.fork_error: str | None = None
        self.holder_pid = 0  # a forked kernel's placeholder, and a handle on it, once forked
        self.holder_fd: int | None = None
        self.forking: threading.Thread | None = None
        if forks:
            # In the background, as a kernel started from scratch boots: a sandbox built at
            # cpu.shares 2 on a busy machine takes its time.
            request = {"uid": sandbox.uid, "cwd": str(self.workdir), "env": env,
                       "argv": self.manager.kernel_arguments, "limits": limits(sandbox),
                       "output": str(self.output.path),
                       "cgroups": self.group.procs_files() if self.group else [],
                       "preload": {d.loader: str(data[d.env_var]) for d in in_use()
                                   if d.env_var in data}}
            self.forking = threading.Thread(target=self.fork_in, args=(forks, request),
                                            daemon=True)
            self.forking.start()

    def fork_in(self, forks: ForkServer, request: dict) -> None:
        """Fork the kernel into its sandbox once bwrap has built it (a thread)."""
        try:
            holder = self.holder()
            handle = os.pidfd_open(holder)
            try:
                forks.fork({**request, "holder": holder,
                            "sandbox": self.manager.provisioner.process.pid})
                # Alive still, after the fork server found it was the placeholder: then it
                # was the placeholder when the handle was opened too (a pid is reused only
                # once its process is gone).
                signal.pidfd_send_signal(handle, 0)
            except BaseException:
                os.close(handle)
                raise
            self.holder_pid, self.holder_fd = holder, handle
        except (OSError, RuntimeError, ValueError) as error:
            self.fork_error = str(error)

    def holder(self) -> int:
        """The pid of the sandbox's placeholder, once bwrap has built the sandbox around it
        and it runs the placeholder's program."""
        process = self.manager.provisioner.process
        deadline = time.monotonic() + HOLDER_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            for pid in descendants(process.pid):
                try:
                    if Path(f"/proc/{pid}/comm").read_text().strip() == HOLDER:
                        return pid
                except OSError:
                    continue
            time.sleep(0.005)
        raise RuntimeError(f"its sandbox did not start within {HOLDER_SECONDS:g} s")

    def started(self) -> None:
        """Wait until a forked kernel is in its sandbox; RuntimeError if it never got there."""
        if self.forking is not None:
            with timeline.span("waiting for the kernel's fork"):
                self.forking.join()
        if self.fork_error:
            raise RuntimeError(f"the kernel could not be forked: {self.fork_error}")

    def sandbox_lost(self) -> bool:
        """Whether a forked kernel's sandbox is gone or going: its placeholder ended, or a
        signal that ends it is pending. The kernel dies with the sandbox's pid namespace,
        but only once the namespace's first process sees the placeholder go: a cell that
        killed it (`kill -9 -1`) may still reply first, and on a busy machine the kernel
        would die in a later cell, which would be blamed and passed over instead."""
        if self.holder_fd is None:
            return False
        poll = select.poll()
        poll.register(self.holder_fd, select.POLLIN)
        try:
            status = Path(f"/proc/{self.holder_pid}/status").read_text()
        except OSError:
            return True
        if poll.poll(0):  # ended (then the status read may be another process's)
            return True
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
        spared = int(fields["SigBlk"], 16) | int(fields["SigIgn"], 16) | SPARING
        return bool(pending & ~spared)

    def terminal_output(self) -> str:
        """What the kernel's processes wrote to their stdout and stderr so far (not cell
        outputs): the first MAX_KEPT_BYTES (grader/sandbox/kernel_output.py), escaped."""
        return self.output.text()

    def lock_channels(self) -> None:
        """Once the kernel is up, its sockets' folder is the grader's (see the module)."""
        take_back(self.ipc)

    def foreground(self) -> None:
        """Full CPU weight again, now that this kernel is the one being graded."""
        if self.group:
            self.group.set_cpu_weight(FOREGROUND_SHARES)

    def kill(self) -> None:
        """Kill the kernel, its sandbox and, with a control group, every process in it. The
        sandbox first: a forked kernel then dies with its pid namespace and the process that
        forked it sees it end, so its CPU time is counted up the tree as it is reaped."""
        try:
            if self.manager.has_kernel:
                run_sync(self.manager.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001 - a kernel that will not die is killed with its group
            pass
        if self.group is not None:
            self.group.close(settle=SETTLE_SECONDS)

    def close(self) -> None:
        """Kill the kernel and remove its folder and its disk."""
        self.kill()
        if self.forking is not None:  # quick once killed: it opens the placeholder's handle
            self.forking.join()
        self.output.close()
        if self.holder_fd is not None:
            os.close(self.holder_fd)
            self.holder_fd = None
        if self.disk:
            unmount(self.workdir)
        shutil.rmtree(self.folder, ignore_errors=True)
        janitor(os.getpid()).forget(self.folder)


def descendants(pid: int) -> dict[int, int]:
    """The live processes below `pid`, nearest first, each mapped to its parent (bwrap
    forks the sandbox's first process as root, which forks the placeholder)."""
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop(0)
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                below = [int(child) for child in children.read_text().split()]
            except (OSError, ValueError):
                continue
            found.update(dict.fromkeys(below, parent))
            frontier += below
    return found


class KernelPool:
    """Hands out fresh kernels, keeping the next one booting in the background; forked
    from a warm parent where the sandbox allows (grader/sandbox/forkserver.py)."""

    def __init__(self, sandbox: SandboxSettings, gpu: bool, ahead: bool = True):
        self.sandbox = sandbox
        self.gpu = gpu
        self.ahead = ahead
        self.forks = warm_parent() if forks_kernels(sandbox) else None
        self.next: LaunchedKernel | None = None
        try:  # the first kernel boots at once, while the grader reads the notebook and
            self.next = self.launch()  # loads the reference
        except BaseException:  # a signal, say: the warm parent is this pool's to stop
            self.close()
            raise

    def launch(self, background: bool = False) -> LaunchedKernel:
        return LaunchedKernel(self.sandbox, self.gpu, background, self.forks)

    def take(self) -> LaunchedKernel:
        kernel = self.next or self.launch()
        kernel.foreground()
        self.next = self.launch(background=True) if self.ahead else None
        return kernel

    def close(self) -> None:
        if self.next is not None:
            self.next.close()
            self.next = None
        if self.forks is not None:
            self.forks.close()
