"""What a kernel can do around the sandbox's edges, with real kernels: fill its disk, write
into the instructor's terminal, and outlive (or be killed by) the grader's own end.

A full disk fails only that kernel's cells; what it writes to fd 1 and 2 is kept, bounded
and escaped, for its own report; a terminal's Ctrl-C to the grader's process group reaches
neither the fork server nor the kernels, and a grader killed outright leaves no process,
control group, mount or folder behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from conftest import wait_for

from grader.grading.results import Result
from grader.outputs.report import render_report
from grader.sandbox import cgroups
from grader.sandbox.bwrap import SandboxSettings, bwrap_works, mounts_disk
from grader.sandbox.execute import KernelRun
from grader.sandbox.kernel_output import MAX_KEPT_BYTES, escaped
from grader.sandbox.kernels import KernelPool, LaunchedKernel

needs_cage = pytest.mark.skipif(not (bwrap_works() and mounts_disk() and cgroups.available()),
                                reason="bounded disks and groups take root with bubblewrap")
DISK = SandboxSettings(disk_mb=16, disk_inodes=1000)
FILL = """
import errno, os
written = 0
try:
    with open("fill.bin", "wb") as f:
        for _ in range(2 * {mb}):
            f.write(bytes(2**20)); f.flush(); written += 2**20
except OSError as error:
    print("ERRNO", errno.errorcode[error.errno], written)
"""
INODES = """
import errno, os
made = 0
try:
    for n in range(2 * {inodes}):
        open(f"f{{n}}", "w").close(); made += 1
except OSError as error:
    print("ERRNO", errno.errorcode[error.errno], made)
"""
TERMINAL = """
import os
os.write(2, b"\\x1b]0;pwned\\x07\\x1b[31mzz_victim 0/97 -> a00_blank 97/97\\r\\n")
os.write(1, b"on stdout\\n")
os.write(2, b"x" * (4 * 2**20))
"""


def printed(kernel: LaunchedKernel, *cells: str, on_the_way=lambda: None) -> list[str]:
    """Run `cells` in `kernel` (closing it, after calling `on_the_way`); what each printed."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    with KernelRun(notebook, kernel, cell_timeout=120, total_timeout=240) as run:
        run.run_notebook()
        on_the_way()
    assert not run.errors, run.errors
    return ["".join(o.get("text", "") for o in cell.outputs) for cell in run.notebook.cells]


def on_host(folder: Path) -> int:
    """Bytes under `folder` on its own file system (what a kernel put on the host's disk)."""
    device = folder.stat().st_dev
    return sum(path.lstat().st_size for path in folder.rglob("*")
               if path.lstat().st_dev == device)


@needs_cage
@pytest.mark.parametrize("forked", [True, False], ids=["forked", "from-scratch"])
def test_a_kernel_that_fills_its_disk_fails_only_itself(forked):
    pool = KernelPool(DISK, gpu=False, ahead=False)
    try:
        kernel = pool.take() if forked else LaunchedKernel(DISK, gpu=False)
        host = []
        fill = FILL.format(mb=DISK.disk_mb)
        output = printed(kernel, fill, "print(sum(1 for _ in open('fill.bin', 'rb')))",
                         on_the_way=lambda: host.append(on_host(kernel.folder)))[0]
    finally:
        pool.close()
    error, written = output.split()[1:]
    assert error == "ENOSPC" and int(written) <= DISK.disk_mb * 2**20
    assert host and max(host) < 2**20  # none of it on the host's $TMPDIR
    assert not kernel.folder.exists()


@needs_cage
def test_an_inode_bomb_hits_the_inode_cap():
    pool = KernelPool(DISK, gpu=False, ahead=False)
    try:
        output = printed(pool.take(), INODES.format(inodes=DISK.disk_inodes))[0]
    finally:
        pool.close()
    error, made = output.split()[1:]
    assert error == "ENOSPC" and int(made) < DISK.disk_inodes


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "from-scratch"])
def test_a_kernels_terminal_writes_are_kept_bounded_and_escaped_never_shown(forked, capfd):
    if forked and not (bwrap_works() and os.geteuid() == 0):
        pytest.skip("kernels are forked as root with bubblewrap")
    pool = KernelPool(SandboxSettings(), gpu=False, ahead=False)
    try:
        kernel = pool.take() if forked else LaunchedKernel(SandboxSettings(), gpu=False)
        printed(kernel, TERMINAL)
    finally:
        pool.close()
    seen = capfd.readouterr()
    assert "pwned" not in seen.err + seen.out and "on stdout" not in seen.out
    text = kernel.terminal_output()
    assert "\\x1b]0;pwned\\x07\\x1b[31mzz_victim 0/97 -> a00_blank 97/97\\r\n" in text
    assert "\x1b" not in text and "\x07" not in text
    # Nothing of ipykernel's before; fd 1 and fd 2 reach the FIFO through ipykernel's own
    # forwarding threads, so the line on stdout may come first.
    assert not forked or text.replace("on stdout\n", "", 1).startswith("\\x1b]0;pwned")
    assert len(text) < 2 * MAX_KEPT_BYTES and "more bytes not kept" in text


def test_escaping_makes_every_control_character_visible():
    assert escaped("a\x1b[2J\x07\r\x9b\u202eb\n\tc") == "a\\x1b[2J\\x07\\r\\x9b\\u202eb\n\tc"


# The grader's stand-in: a pool with a kernel at work and the next booting ahead. A
# terminal's Ctrl-C (SIGINT to the process group) must reach only it; then both kernels
# still run cells. It says what it holds, and waits to be killed.
GRADER = """
import json, sys, time
import nbformat
from grader.sandbox.execute import KernelRun
from grader.sandbox.kernels import KernelPool
from grader.sandbox.bwrap import SandboxSettings

open_runs = []  # held: a run collected as garbage shuts its kernel down, whenever gc runs

def works(kernel):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    run = KernelRun(notebook, kernel, cell_timeout=120, total_timeout=240)
    run.__enter__()  # kept open: the kernel must be alive when the grader is killed
    open_runs.append(run)
    run.run_notebook()
    return run.notebook.cells[0].outputs[0]["text"].strip() == "42"

pool = KernelPool(SandboxSettings(), gpu=False)
first = pool.take()
ready = works(first)
try:  # the Ctrl-C may come as soon as the line is out, before print() has returned
    print(json.dumps({"ready": ready}), flush=True)
    time.sleep(600)
except KeyboardInterrupt:
    pass
ahead = pool.take()  # forked before the Ctrl-C, the next one after it
pool.ahead = False
after = pool.take()
held = [first, ahead, after]
print(json.dumps({
    "first_alive": bool(first.group.processes()),
    "survived": works(ahead) and works(after),
    "forkserver": pool.forks.process.pid,
    "folders": [str(k.folder) for k in held],
    "groups": [str(p) for k in held for p in k.group.paths],
    "processes": [p for k in held for p in k.group.processes()],
}), flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Alive, not a zombie its new parent has yet to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone(path: str) -> bool:
    return not Path(path).exists()


@needs_cage
def test_ctrl_c_spares_the_kernels_and_a_killed_grader_leaves_nothing_behind():
    grader = subprocess.Popen([sys.executable, "-c", GRADER], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)  # a terminal's foreground group
    try:
        assert json.loads(grader.stdout.readline()) == {"ready": True}
        os.killpg(grader.pid, signal.SIGINT)
        held = json.loads(grader.stdout.readline())
        assert held["first_alive"] and held["survived"]
        assert len(held["processes"]) >= 3 and all(Path(f).is_dir() for f in held["folders"])
        os.killpg(grader.pid, signal.SIGKILL)
        grader.wait()
        assert wait_for(lambda: all(map(gone, held["folders"] + held["groups"])))
        assert wait_for(lambda: not any(map(running, [held["forkserver"], *held["processes"]])))
        mounts = Path("/proc/self/mountinfo").read_text()
        assert not any(folder in mounts for folder in held["folders"])
    finally:
        if grader.poll() is None:
            os.killpg(grader.pid, signal.SIGKILL)
            grader.wait()


def test_the_students_report_shows_the_kernels_terminal_output_escaped():
    written = "<script>alert(1)</script>\x1b]0;pwned\x07 in /tmp/grade-x/work\n"
    result = Result(student="ann", assignment="a", source="ann.ipynb", digest="0" * 64,
                    grader_version="9", config_digest="0" * 64, tests=[],
                    kernel_output=escaped(written))
    html = render_report(result)
    shown = BeautifulSoup(html, "html.parser").select_one("#kernel-output pre").get_text()
    assert shown.startswith("<script>alert(1)</script>\\x1b]0;pwned\\x07 in ")
    assert "<script>" not in html and "\x1b" not in html and "\x07" not in html
    assert "kernel-output" not in render_report(replace(result, kernel_output=""))
