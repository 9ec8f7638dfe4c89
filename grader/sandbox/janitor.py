"""Whatever kernels leave on the machine is removed when the grader ends, however it ends.

A grader killed by a signal (SIGKILL, the OOM killer, a SIGTERM nobody handles) runs no
cleanup of its own: its kernels' control groups, their disk mounts and their folders
would stay behind. So each grading process starts a janitor: a process of its own session
(a terminal's Ctrl-C never reaches it) that reads, on a pipe, what each kernel holds and
what was already cleaned up. When the pipe ends (the grader exited or died), it kills every
process left in those groups, unmounts, removes the folders and the groups, and exits.

Run as a script with only the standard library: it starts in milliseconds and needs no
package path.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

MNT_DETACH = 2
KILL_ROUNDS = 100
ROUND_SECONDS = 0.05
FIRST_LOOK_SECONDS = 0.002  # a killed kernel is gone in a few milliseconds
LIBC = ctypes.CDLL(None, use_errno=True)


def unmount(path: Path) -> None:
    """Detach the file system mounted at `path`, if any (its files go with it)."""
    LIBC.umount2(os.fsencode(path), MNT_DETACH)


def processes(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def clean(entry: dict) -> None:
    """Kill what is left in the kernel's groups, unmount its disk, remove its folder and
    its groups."""
    groups = [Path(path) for path in entry.get("groups", [])]
    kill_all(lambda: [pid for group in groups for pid in processes(group)], KILL_ROUNDS)
    if entry.get("mount"):
        unmount(Path(entry["mount"]))
    shutil.rmtree(entry["folder"], ignore_errors=True)
    remove_groups(groups, KILL_ROUNDS)


def kill_all(left: Callable[[], list[int]], rounds: int) -> None:
    """SIGKILL every process `left()` names until it names none, at most `rounds` times
    (a group's processes may fork while being killed; grader/sandbox/cgroups.py closes with
    this)."""
    for round_ in range(rounds):
        pids = left()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(min(ROUND_SECONDS, FIRST_LOOK_SECONDS * 2**round_))  # soon, then less often


def remove_groups(groups: list[Path], attempts: int = 1) -> None:
    """Remove each group folder, trying `attempts` times: the killed may take a moment to
    be reaped (grader/sandbox/cgroups.py removes its groups with this too)."""
    for group in groups:
        for _ in range(attempts):
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(ROUND_SECONDS)


def serve() -> None:
    """Keep the entries the grader sends, drop those it cleaned itself, clean the rest at
    the end of input."""
    held: dict[str, dict] = {}
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "forget" in message:
            held.pop(message["forget"], None)
        else:
            held[message["folder"]] = message
    for entry in held.values():
        clean(entry)


class Janitor:
    """The grader's end of the pipe."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", __file__], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
            start_new_session=True, close_fds=True)
        self.lock = threading.Lock()

    def send(self, message: dict) -> None:
        with self.lock:
            try:
                self.process.stdin.write(json.dumps(message).encode() + b"\n")
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError):  # it died: the kernel's close still cleans
                pass

    def hold(self, folder: Path, mount: Path | None, groups: list[str]) -> None:
        """Clean `folder` (with the disk mounted in it) and `groups` if the grader dies."""
        self.send({"folder": str(folder), "mount": mount and str(mount), "groups": groups})

    def forget(self, folder: Path) -> None:
        """The grader removed `folder` itself."""
        self.send({"forget": str(folder)})


if __name__ == "__main__":
    serve()
