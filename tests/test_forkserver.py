"""Kernels forked from the warm parent keep the cage of a kernel started from scratch, and
share nothing with each other: no files, no memory, no state one of them changed.

The hostile corpus and the sandbox tests run on forked kernels too (a pool forks wherever
the grader is root with bubblewrap); these check what forking itself could change.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import nbformat
import pytest
import torch

from grader.paths import PACKAGE
from grader.sandbox import forkserver
from grader.sandbox.bwrap import SandboxSettings, bwrap_works
from grader.sandbox.execute import KernelRun
from grader.sandbox.forkserver import enter_namespaces
from grader.sandbox.host import kernel_threads
from grader.sandbox.kernels import KernelPool

pytestmark = pytest.mark.skipif(not bwrap_works() or os.geteuid() != 0,
                                reason="kernels are forked as root with bubblewrap")

# What a kernel sees of itself and its surroundings, printed as one JSON line.
LOOK = """
import json, os, socket, torch
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({
    "uid": os.getuid(), "groups": os.getgroups(), "ppid": os.getppid(),
    "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
    "no_new_privs": status["NoNewPrivs"].strip(),
    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "interfaces": sorted(line.split(":")[0].strip()
                         for line in open("/proc/net/dev").read().splitlines()[2:]),
    "checkout": os.path.exists(CHECKOUT),
    "tmp": sorted(os.listdir("/tmp")), "cwd": os.getcwd(), "files": os.listdir(),
    "namespaces": {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in ("mnt", "net", "pid", "ipc")},
    "softmax_is_torchs": torch.softmax.__module__ == "torch" if callable(torch.softmax) else False,
    "left_behind": "LEFT_BEHIND" in globals(),
    "threads": torch.get_num_threads(),
}))
"""
LOOK = LOOK.replace("CHECKOUT", repr(str(PACKAGE.parent / "pyproject.toml")))
# What a student could do to the next kernel, were anything shared.
LEAVE = """
import torch
open("secret", "w").write("mine")
torch.softmax = None
LEFT_BEHIND = bytearray(50 * 2**20)
"""


def run_cells(pool: KernelPool, *cells: str) -> tuple[dict, int]:
    """Run `cells` in a fresh kernel of `pool`; what the LOOK cell printed, and its uid."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    kernel = pool.take()
    with KernelRun(notebook, kernel, cell_timeout=60, total_timeout=120) as run:
        run.run_notebook()
    assert not run.errors, run.errors
    printed = [output["text"] for cell in run.notebook.cells for output in cell.outputs
               if output.get("name") == "stdout"]
    return json.loads(printed[-1].splitlines()[-1]), kernel.sandbox.uid


def own_tmp(seen: dict) -> set[str]:
    """What a kernel's /tmp may hold: its own folder and the Fashion-MNIST cache, bound in,
    and the folder above the package where the checkout lies under /tmp (a fresh clone)."""
    package = PACKAGE.resolve().parts
    checkout = {package[2]} if package[1] == "tmp" else set()
    return {seen["cwd"].split("/")[2], *checkout,
            *(n for n in seen["tmp"] if n.startswith("dl-grader-"))}


@pytest.fixture(scope="module")
def pool():
    pool = KernelPool(SandboxSettings(), gpu=False, ahead=False)
    assert pool.forks is not None
    yield pool
    pool.close()


def test_a_forked_kernel_is_caged_like_one_started_from_scratch(pool):
    seen, uid = run_cells(pool, LOOK)
    assert seen["uid"] == uid and seen["uid"] != 0 and seen["groups"] == []
    assert seen["caps"] == ["0000000000000000"] * 5
    assert seen["no_new_privs"] == "1"
    assert seen["ppid"] == 0  # its parent is outside its pid namespace
    assert len(seen["processes"]) <= 4, seen["processes"]  # bwrap's init, the placeholder, it
    assert seen["interfaces"] == ["lo"]
    assert not seen["checkout"]
    assert set(seen["tmp"]) <= own_tmp(seen)
    ours = {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in ("mnt", "net", "pid", "ipc")}
    assert all(seen["namespaces"][n] != ours[n] for n in ours)
    assert seen["threads"] == kernel_threads()  # this grading process's share, no more


def test_nothing_one_child_leaves_reaches_the_next(pool):
    first, first_uid = run_cells(pool, LEAVE, LOOK)
    assert "secret" in first["files"] and first["left_behind"] and not first["softmax_is_torchs"]
    second, second_uid = run_cells(pool, LOOK)
    assert second_uid != first_uid
    assert set(second["tmp"]) <= own_tmp(second)  # not the first's folder
    assert "secret" not in second["files"]
    assert second["softmax_is_torchs"] and not second["left_behind"]
    assert second["cwd"] != first["cwd"]


def test_a_pool_without_bubblewrap_starts_each_kernel_from_scratch():
    pool = KernelPool(SandboxSettings(mode="none"), gpu=False, ahead=False)
    try:
        assert pool.forks is None
    finally:
        pool.close()


def test_a_kernel_is_forked_only_into_the_sandbox_it_was_asked_for():
    """The placeholder must be the sandbox's own (not a pid reused meanwhile), and its
    namespaces the sandbox's: a process of the host's is refused before any is entered."""
    shell = subprocess.Popen(["sh", "-c", "sleep 30; true"])
    try:
        deadline = time.monotonic() + 10
        while not (below := open(f"/proc/{shell.pid}/task/{shell.pid}/children").read().split()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sleeper = int(below[0])
        pidfd = os.pidfd_open(sleeper)
        ours = os.stat("/proc/self/ns/mnt").st_ino
        with pytest.raises(RuntimeError, match="is not the placeholder"):
            enter_namespaces(sleeper, pidfd, sandbox=shell.pid)  # its grandparent is us
        with pytest.raises(RuntimeError, match="shares the grader's ipc namespace"):
            enter_namespaces(sleeper, pidfd, sandbox=os.getpid())
        os.close(pidfd)
        assert os.stat("/proc/self/ns/mnt").st_ino == ours  # nothing was entered
    finally:
        shell.kill()
        shell.wait()


def test_the_parent_started_early_is_the_first_pools_and_exits_when_done():
    """`grade` starts the warm parent before importing torch: the first pool forks from it
    (its first kernel booting at once), and once closed it has exited by itself."""
    forkserver.start_early()
    early = forkserver._EARLY[0]
    pool = KernelPool(SandboxSettings(), gpu=False, ahead=False)
    try:
        assert pool.forks is early and not forkserver._EARLY
        assert pool.next is not None  # booting before anyone asked
        seen, uid = run_cells(pool, LOOK)
        assert seen["uid"] == uid != 0
    finally:
        pool.close()
    assert early.process.returncode == 0


def test_a_parent_started_early_that_no_pool_took_is_stopped_at_once():
    forkserver.start_early()
    unused = forkserver.warm_parent()
    unused.close()  # still importing torch: killed, not waited for
    assert unused.process.returncode == -signal.SIGKILL


# What a kernel finds of Fashion-MNIST before it asks, and then makes of its own copy.
SPOIL = """
import json, torch
from grader.kernel import data
found = data.parsed.cache_info().currsize
pixels = data.blanked_rows.cache_info().currsize
images = data.load_fashion_mnist().train_images
rows = data.blanked_pixels(torch.tensor(data.BLANKED))
print(json.dumps({"found": found, "first": int(images[0].sum()), "sum": int(images.sum()),
                  "pixels": pixels, "rows": float(rows.sum())}))
images.zero_()
rows.zero_()
"""


def test_a_forked_kernel_finds_the_data_parsed_and_what_it_changes_stays_its_own():
    from grader.kernel.data import BLANKED, blanked_pixels, load_fashion_mnist

    on_disk = load_fashion_mnist().train_images
    rows = float(blanked_pixels(torch.tensor(BLANKED)).sum())
    looks = []
    pool = KernelPool(SandboxSettings(), gpu=False, ahead=False)  # its parent's first kernel
    try:
        for _ in range(3):
            notebook = nbformat.v4.new_notebook()
            notebook.cells = [nbformat.v4.new_code_cell(SPOIL)]
            with KernelRun(notebook, pool.take(), cell_timeout=60, total_timeout=120) as run:
                run.run_notebook()
            assert not run.errors, run.errors
            looks.append(json.loads(run.notebook.cells[0].outputs[0]["text"]))
    finally:
        pool.close()
    expected = {"found": 1, "first": int(on_disk[0].sum()), "sum": int(on_disk.sum()),
                "rows": pytest.approx(rows)}
    # Parsed by the parent; the epoch's pixels made there too, for every kernel but the
    # first (one submission alone does not wait for them); what each zeroed stayed its own.
    assert looks == [{**expected, "pixels": 0}, {**expected, "pixels": 1},
                     {**expected, "pixels": 1}]



COUNT_HASHES = """
import ipykernel.compiler
hashed = []
_murmur2 = ipykernel.compiler.murmur2_x86
ipykernel.compiler.murmur2_x86 = lambda *args: hashed.append(1) or _murmur2(*args)
"""


def test_a_forked_kernel_names_its_cells_without_hashing_them_in_python(pool):
    """ipykernel hashes each cell's source in pure Python to name its file (0.2 ms a
    kilobyte: 80 ms for the grader's inputs); the warm parent names them by a hash in C,
    and a traceback still shows each frame's line from its own cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        COUNT_HASHES, "def f():\n    return 1 / 0",
        "# " + "x" * 400_000 + "\nf()", "print(len(hashed))")]
    with KernelRun(notebook, pool.take(), cell_timeout=60, total_timeout=120) as run:
        run.run_notebook()
    [error] = run.errors
    assert error.index == 2 and error.error.startswith("ZeroDivisionError"), error.error
    shown = re.sub(r"\x1b\[[0-9;]*m", "", error.traceback)[-400:]  # less the colours
    assert "In[2], line 2" in shown and "return 1 / 0" in shown, shown
    assert run.notebook.cells[3].outputs[0]["text"] == "0\n"

BURN = """
import time
started = time.process_time()
while time.process_time() - started < 1.0:
    pass
"""


def reaped_cpu_seconds(pid: int) -> float:
    """The CPU time of the children `pid` waited for (cutime and cstime, /proc/PID/stat)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def test_a_killed_kernels_cpu_time_is_counted_by_the_parent_that_forked_it():
    """Killed (through its sandbox, then its group), a kernel ends before the process that
    forked it, which sees it end and is reaped by the warm parent: its CPU time reaches the
    parent's children's, and up the tree, so what grading costs is measured from outside
    (the bench does). Killing the group first lost it: the forking process died first."""
    pool = KernelPool(SandboxSettings(), gpu=False, ahead=False)
    try:
        run_cells(pool, BURN, LOOK)
        pool.take().started()  # the parent reaps what ended before it forks again
        assert reaped_cpu_seconds(pool.forks.process.pid) >= 1.0
    finally:
        pool.close()


KILL_EVERYTHING = "import os, signal\nos.kill(-1, signal.SIGKILL)"


def test_a_cell_that_kills_its_sandbox_is_blamed_even_if_the_kernel_outlives_it(pool):
    """`kill -9 -1` kills the placeholder; the kernel dies once the sandbox's first process
    sees that, which a busy machine can delay past the cell's reply. Stopping that process
    makes the delay as long as the test likes: the cell must still be the one blamed, and
    no later cell run in a kernel whose sandbox is gone."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in ("x = 1", KILL_EVERYTHING, "x = 2")]
    kernel = pool.take()
    with KernelRun(notebook, kernel, cell_timeout=60, total_timeout=120) as run:
        init = forkserver.parent_of(kernel.holder_pid)
        os.kill(init, signal.SIGSTOP)
        try:
            run.run_notebook()
        finally:
            os.kill(init, signal.SIGCONT)
    assert run.stopped_cell == 1, run.errors
    assert [e.index for e in run.errors] == [1] and "DeadKernel" in run.errors[0].error
    assert run.notebook.cells[2].get("execution_count") is None  # never run


def placeholder(kernel) -> str:
    """The placeholder's state and signals, for a failing assertion to show."""
    try:
        status = open(f"/proc/{kernel.holder_pid}/status").read().splitlines()
    except OSError as error:
        return str(error)
    return " ".join(line for line in status if line.startswith(("State", "Sig", "ShdPnd")))


def test_a_sandbox_is_lost_only_once_its_placeholder_is_ending(pool):
    kernel = pool.take()
    kernel.started()
    try:
        assert not kernel.sandbox_lost(), placeholder(kernel)
        os.kill(kernel.holder_pid, signal.SIGSTOP)  # stopped is not ending
        assert not kernel.sandbox_lost(), placeholder(kernel)
        os.kill(kernel.holder_pid, signal.SIGCONT)
        init = forkserver.parent_of(kernel.holder_pid)
        os.kill(init, signal.SIGSTOP)  # so the sandbox stays until the test looks
        os.kill(kernel.holder_pid, signal.SIGTERM)
        assert kernel.sandbox_lost(), placeholder(kernel)
        os.kill(init, signal.SIGCONT)
    finally:
        kernel.close()
    assert kernel.holder_fd is None  # its handle closed with it
