"""Kernels forked from a warm parent: torch, torch._dynamo, ipykernel and the data loader
are imported once per grading process, not once per submission.

The parent (`serve`, run as a process of its own by `ForkServer`) imports them and
then only forks: it runs no student code and holds no secret, so every child starts
from the same untouched state, and nothing one child does reaches the next. The cage is
the one a kernel started from scratch gets: bubblewrap builds it for each kernel around a
placeholder process (grader/sandbox/kernels.py), and the child enters its namespaces (mount,
network, IPC, UTS, cgroup, and a fork later the pid namespace), joins the kernel's control
groups, takes the sandbox's rlimits, drops to the kernel's uid with no capabilities, no
bounding set and no new privileges, and only then becomes the ipykernel. Used where the
grader runs as root with bubblewrap (entering namespaces takes root); elsewhere each
kernel starts from scratch.

The parent runs in a session of its own, so a terminal's Ctrl-C to the grader's process
group reaches neither it nor its kernels, and dies with the grading process (the thread
that started it, in fact: PR_SET_PDEATHSIG), taking its kernels along. `grade` starts it
before importing torch itself (`start_early`), so that one submission's first kernel is
ready about when the grader is. A kernel's stdout and stderr are the FIFO the grader reads
them from (grader/sandbox/kernel_output.py), never the grader's own.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from grader import timeline
from grader.imports import import_uncollected
from grader.paths import PACKAGE
from grader.sandbox.host import bwrap_works, drops_privileges, kernel_environment

# Entered in this order: the mount namespace last, as /proc/PID/ns is read through the
# current one (the fds are opened before any is entered).
NAMESPACES = ("ipc", "uts", "net", "cgroup", "pid", "mnt")
ISOLATING = ("ipc", "uts", "net", "pid", "mnt")  # must differ from the host's, or no cage
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
LIMITS = {"data": resource.RLIMIT_DATA, "cpu": resource.RLIMIT_CPU,
          "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE,
          "nproc": resource.RLIMIT_NPROC}
MAX_LINE = 1 << 20  # a request or a reply
CLOSE_SECONDS = 10.0
# ipykernel's debugger (debugpy) and completer are what a kernel's start imported itself:
# 45 ms a kernel.
WARM = ("torch", "torch._dynamo", "grader.kernel.data", "ipykernel.kernelapp",
        "ipykernel.debugger", "IPython.core.completerlib")
LIBC = ctypes.CDLL(None, use_errno=True)
# The parent imports the package the grader runs (a clone's, not the one installed), then
# serves; isolated mode keeps the rest of the environment's paths out.
SERVE = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from grader.sandbox.forkserver import serve; serve(int(sys.argv[2]))")


def checked(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def prctl(option: int, value: int) -> None:
    checked(LIBC.prctl(option, value, 0, 0, 0), f"prctl({option})")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def enter_namespaces(holder: int, pidfd: int, sandbox: int) -> None:
    """Enter the namespaces of the sandbox's placeholder; refuse one that is the host's,
    and a process that is not the placeholder (a pid reused in the meantime): it must be
    the grandchild of the sandbox's bwrap, and still alive once its namespaces are open."""
    if parent_of(parent_of(holder)) != sandbox:
        raise RuntimeError(f"process {holder} is not the placeholder of sandbox {sandbox}")
    fds = {}
    for name in NAMESPACES:
        theirs, ours = f"/proc/{holder}/ns/{name}", f"/proc/self/ns/{name}"
        if os.stat(theirs).st_ino == os.stat(ours).st_ino:
            if name in ISOLATING:
                raise RuntimeError(f"the sandbox shares the grader's {name} namespace")
            continue
        fds[name] = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
    signal.pidfd_send_signal(pidfd, 0)  # ProcessLookupError: it died, its pid is no proof
    for name, fd in fds.items():
        checked(LIBC.setns(fd, 0), f"setns({name})")
        os.close(fd)


def drop_privileges(uid: int) -> None:
    """The kernel's uid and nothing more: no groups, no capabilities (a setuid program
    gains none either), no new privileges."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for capability in range(last + 1):
        prctl(PR_CAPBSET_DROP, capability)
    os.setresuid(uid, uid, uid)
    status = Path("/proc/self/status").read_text()
    if os.getuid() != uid or "CapEff:\t0000000000000000" not in status:
        raise RuntimeError("the kernel kept privileges it must not have")


def become_kernel(request: dict) -> None:
    """In the kernel's pid namespace: drop to its uid and run ipykernel (never returns)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # its parent outside is the only one it has
    drop_privileges(request["uid"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # Without a parent to poll (it is outside the pid namespace) ipykernel would print its
    # `ipython kernel` banner into every kernel's output: only critical logs, as before.
    argv = [*request["argv"], "--IPKernelApp.log_level=CRITICAL"]
    sys.argv = ["ipykernel_launcher", *argv]
    sys.path.insert(0, "")  # as `python -m ipykernel_launcher` has it
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=argv)
    os._exit(0)


def child(request: dict) -> None:
    """Forked per kernel, as root on the host: join the kernel's groups and limits, enter
    its sandbox, fork the kernel into its pid namespace, and stop the sandbox when the
    kernel ends (so the grader sees it die)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    output = os.open(request["output"], os.O_WRONLY | os.O_NOFOLLOW)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.closerange(3, 1 << 16)
    for procs in request["cgroups"]:
        Path(procs).write_text(str(os.getpid()))
    for name, value in request["limits"].items():
        resource.setrlimit(LIMITS[name], (value, value))
    holder = os.pidfd_open(request["holder"])
    try:
        enter_namespaces(request["holder"], holder, request["sandbox"])
        kernel = os.fork()
        if kernel == 0:
            try:
                os.close(holder)  # the kernel keeps no handle of the grader's
                become_kernel(request)
            finally:
                os._exit(71)  # never back into the parent's code, whatever happened
        _, status = os.waitpid(kernel, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the grader may have stopped it
            signal.pidfd_send_signal(holder, signal.SIGKILL)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def serve(grader: int) -> None:
    """Import what every kernel needs, then fork a child per request line on stdin,
    answering each with the child's pid; die with the process `grader`."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != grader:  # it died before the line above
        os._exit(1)
    # debugpy warns on stderr, at import, of the frozen modules a debugger could miss: no
    # kernel is debugged, and the parent's stderr is the grader's terminal.
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    import_uncollected(*WARM)  # frozen: a kernel's collections skip them, its pages shared
    quick_cell_names()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    forked = False
    replies.write(b'{"ready": true}\n')
    replies.flush()
    while line := requests.readline(MAX_LINE):
        reap()
        request = json.loads(line)
        for hook in ("preload", "preload_later") if forked else ("preload",):
            preload(request["preload"], hook)
        forked = True
        pid = os.fork()
        if pid == 0:
            try:
                child(request)
            except BaseException as error:  # noqa: BLE001 - the grader sees the kernel not start
                os.write(2, f"grader fork server: {error!r}\n".encode())
            os._exit(70)
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        replies.flush()
    reap(0)  # the grader is done: wait for the last kernels
    os._exit(0)  # without tearing torch down: a second at exit, which the grader would wait out


def quick_cell_names() -> None:
    """Name each cell's file by a hash computed in C. ipykernel names it (for a debugger,
    which no graded kernel runs) by a murmur2 hash of the cell's source in pure Python,
    twice a cell: 0.2 ms a kilobyte, 80 ms for the cell that brings the grader's inputs."""
    import ipykernel.compiler

    def cell_file_name(code: str) -> str:
        digest = hashlib.blake2b(code.encode("utf-8", "surrogatepass"), digest_size=8)
        return os.path.join(ipykernel.compiler.get_tmp_directory(),
                            f"{int.from_bytes(digest.digest(), 'big')}.py")

    ipykernel.compiler.get_file_name = cell_file_name


def preload(folders: dict[str, str], hook: str = "preload") -> None:
    """Have each data loader this parent imported (`folders` maps a loader module to the
    folder of its data set, the grader's copy, which no kernel can write) read its files
    here, once, where it offers to (a `preload(folder)` function, before the first kernel;
    `preload_later`, before the others, for what one submission alone should not wait
    for): every kernel forked after shares what it read, copy on write, instead of reading
    it again (the bundled course's images: 0.2 s of CPU and 55 MB a kernel). One that
    cannot be read is left for the kernel to fail on, with its loader's message."""
    import torch  # imported by now: this module stays light for `grade`

    # On one thread: a parallel op here would start OpenMP's pool, which no forked child
    # can use (its first parallel op hangs).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, folder in folders.items():
            loader = getattr(sys.modules.get(name), hook, None)
            if loader is not None:
                with contextlib.suppress(OSError, ValueError):
                    loader(Path(folder))
    finally:
        torch.set_num_threads(threads)


def reap(options: int = os.WNOHANG) -> None:
    """Collect the children whose kernels ended (with 0: wait for every one), so their
    CPU time counts as this process's children's."""
    try:
        while os.waitpid(-1, options)[0]:
            pass
    except ChildProcessError:
        pass


class ForkServer:
    """The grader's end: starts the parent and asks it for kernels."""

    def __init__(self):
        # The kernels' environment but for their folders: each kernel's own comes with its
        # request. Its threads are this grading process's share of the cores, as torch's
        # pool is sized when the parent imports it and every kernel inherits that pool.
        env = kernel_environment(Path("/"), {})
        self.created = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", SERVE, str(PACKAGE.parent), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/", close_fds=True,
            start_new_session=True)
        self.ready = False
        self.lock = threading.Lock()  # kernels are forked from threads, one at a time

    def fork(self, request: dict) -> int:
        """Fork a kernel into the sandbox around `request['holder']`; the child's pid."""
        with self.lock:
            if not self.ready:
                self.ready = self.answer().get("ready") is True
                timeline.record("the kernels' warm parent: its imports", self.created)
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            return int(self.answer()["pid"])

    def answer(self) -> dict:
        line = self.process.stdout.readline(MAX_LINE)
        if not line:
            raise RuntimeError(f"the fork server stopped (exit code {self.process.poll()})")
        return json.loads(line)

    def close(self) -> None:
        """End of input: the server waits for its last children and exits (killed if it
        takes longer than CLOSE_SECONDS)."""
        with self.lock:
            self.process.stdin.close()
            if not self.ready:  # it forked no kernel, and may still be importing
                self.process.kill()
        try:
            self.process.wait(CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_EARLY: list[ForkServer] = []


def start_early() -> None:
    """Start the warm parent now, where kernels will be forked (as root, with bwrap), before
    this process imports torch: its imports and the grader's then run side by side. The
    first kernel pool takes it (warm_parent); one left untaken is stopped by stop_untaken, at
    the latest at exit."""
    if not _EARLY and drops_privileges() and bwrap_works():
        _EARLY.append(ForkServer())
        atexit.register(stop_untaken)


def stop_untaken() -> None:
    """Close the parent started early if no pool took it (still importing: killed)."""
    while _EARLY:
        _EARLY.pop().close()


def warm_parent() -> ForkServer:
    """The warm parent started early, if one is waiting, else a new one."""
    return _EARLY.pop() if _EARLY else ForkServer()
