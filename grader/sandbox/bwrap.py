"""The cage around a student's kernel: bubblewrap, resource limits, an unprivileged user.

With bwrap the kernel sees a read-only system, no network, a private /tmp and /dev, and
one writable folder: its own work folder. Hidden from it: the source checkout (only the
package stays visible), every course's solutions, settings and shipped observations (the
course's own exercise modules stay visible, read-only), the submissions and the reports
(wherever they are: the batch adds them to `hidden`), home folders and the grader's private
cache (the reference's observations). Its environment is built from an allow-list
(grader/sandbox/host.py), not copied from the grader's.
prlimit caps memory, CPU time, file size and, under a dedicated uid, processes. The work
folder is a tmpfs of its own, capped in size and inodes (the sandbox's /tmp in size), so a
kernel that fills its disk fails only itself. Without bwrap the limits still apply and every
report says the kernel ran unsandboxed; what is not bounded where, describe() says.
"""

from __future__ import annotations

import ctypes
import glob
import importlib
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from grader.authoring import course
from grader.authoring.datasets import DataNotFound, DataSet, in_use
from grader.grading.cache import private_root
from grader.paths import PACKAGE
from grader.sandbox.datacache import unpacked_dir
from grader.sandbox.host import bwrap_works, drops_privileges
from grader.sandbox.janitor import unmount

HOLDER = "sleep"  # the placeholder's program, which the grader waits to see it become
HIDDEN_ALWAYS = ("/root", "/home", "/work", "/srv", "/mnt", "/media", "/var/tmp")


@dataclass(frozen=True)
class SandboxSettings:
    __pydantic_config__ = ConfigDict(extra="forbid")

    mode: Literal["auto", "bwrap", "none"] = "auto"  # auto: bwrap where it works here
    memory_mb: Annotated[int, Field(ge=256)] = 8192
    cpu_seconds: Annotated[int, Field(ge=10)] = 1800
    max_processes: Annotated[int, Field(ge=16)] = 1024
    max_file_mb: Annotated[int, Field(ge=1)] = 1024
    disk_mb: Annotated[int, Field(ge=16)] = 512  # the work folder's, and /tmp's
    disk_inodes: Annotated[int, Field(ge=1000)] = 20_000  # the work folder's files
    uid: Annotated[int, Field(ge=1)] = 65534
    network: bool = False
    hidden: tuple[str, ...] = ()


@cache
def mounts_disk() -> bool:
    """The grader may mount a tmpfs of its own for each work folder (root, and a machine
    that allows mounts)."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory(prefix="grade-probe-") as probe:
        if not mount_tmpfs(Path(probe), "size=1m,nr_inodes=16"):
            return False
        unmount(Path(probe))
    return True


def mount_tmpfs(path: Path, options: str) -> bool:
    nosuid_nodev = 2 | 4
    return ctypes.CDLL(None, use_errno=True).mount(
        b"tmpfs", os.fsencode(path), b"tmpfs", nosuid_nodev, options.encode()) == 0


def mount_disk(workdir: Path, settings: SandboxSettings) -> bool:
    """Put the work folder on a tmpfs capped at the sandbox's size and inodes, owned by the
    kernel's uid; False where the grader cannot mount (bwrap then caps the size alone)."""
    owner = settings.uid if drops_privileges() else os.getuid()
    return mounts_disk() and mount_tmpfs(workdir, (
        f"size={settings.disk_mb}m,nr_inodes={settings.disk_inodes},mode=0700,"
        f"uid={owner},gid={owner}"))


def hiding(settings: SandboxSettings, *folders: Path) -> SandboxSettings:
    """The sandbox with `folders` hidden from the kernels too (the submissions, the
    reports: wherever they are on the disk)."""
    extra = tuple(str(Path(folder).resolve()) for folder in folders)
    return replace(settings, hidden=tuple(dict.fromkeys((*settings.hidden, *extra))))


def use_bwrap(settings: SandboxSettings) -> bool:
    if settings.mode == "none":
        return False
    if settings.mode == "bwrap" and not bwrap_works():
        raise RuntimeError("sandbox mode 'bwrap' was asked for, but bwrap does not work here")
    return bwrap_works()


def kernels_isolated(settings: SandboxSettings) -> bool:
    """Whether kernels are kept out of the grader's own files: by bwrap or by a uid of
    their own."""
    return use_bwrap(settings) or drops_privileges()


def forks_kernels(settings: SandboxSettings) -> bool:
    """Kernels are forked from a warm parent (grader/sandbox/forkserver.py) where the grader may
    enter a sandbox's namespaces and drop to a uid: as root, with bwrap."""
    return drops_privileges() and use_bwrap(settings)


def limits(settings: SandboxSettings) -> dict[str, int]:
    """The rlimits of a kernel, by prlimit's names; the process cap only under a uid of its
    own (it counts per uid)."""
    caps = {"data": settings.memory_mb * 2**20, "cpu": settings.cpu_seconds,
            "fsize": settings.max_file_mb * 2**20, "core": 0}
    if drops_privileges():
        caps["nproc"] = settings.max_processes
    return caps


def limits_command(settings: SandboxSettings) -> list[str]:
    return ["prlimit", *(f"--{name}={value}" for name, value in limits(settings).items()), "--"]


def drop_command(settings: SandboxSettings) -> list[str]:
    if not drops_privileges():
        return []
    return ["setpriv", f"--reuid={settings.uid}", f"--regid={settings.uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"]


def interpreter_paths() -> list[str]:
    """Folders the kernel's Python needs, made visible again inside hidden trees."""
    paths = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)}
    return sorted(p for p in paths if Path(p).exists())


def data_folders(sets: Iterable[DataSet] | None = None) -> dict[str, Path]:
    """The folders of the data sets the kernels read (`sets`, else the course's), by the
    variable that tells a kernel where: each the grader's, inflated once if gzipped. One not
    found is left out; a kernel that reads it gets its loader's message."""
    return {data.env_var: copy for data, (_, copy) in data_copies(sets).items()}


def data_copies(sets: Iterable[DataSet] | None = None) -> dict[DataSet, tuple[Path, Path]]:
    """Each data set found: the folder its loader finds, and the one the kernels read (the
    grader's copy, inflated; the same folder where none is gzipped or no cache is
    writable, and each kernel then inflates the files itself)."""
    copies = {}
    for data in in_use() if sets is None else sets:
        try:
            source = data.find().resolve()
        except DataNotFound:
            continue
        try:
            copies[data] = source, unpacked_dir(data, source)
        except OSError:
            copies[data] = source, source
    return copies


def read_copies_here() -> None:
    """Have this process's loaders read the copies the kernels read, where they offer to (a
    `read_copy(source, copy)` function): the grader's own probes then parse raw files."""
    for data, (source, copy) in data_copies().items():
        read_copy = getattr(importlib.import_module(data.loader), "read_copy", None)
        if read_copy is not None and copy != source:
            read_copy(source, copy)


def bwrap_command(folder: Path, workdir: Path, settings: SandboxSettings, gpu: bool,
                  data: Mapping[str, Path]) -> list[str]:
    """`folder` is the kernel's own (its work folder and its channel's folder inside)."""
    # As root, no user namespace: the kernel then drops to a real uid of its own.
    namespaces = ["--unshare-all"] if os.geteuid() else [
        "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not settings.network:
        namespaces.append("--unshare-net")
    disk = ["--size", str(settings.disk_mb * 2**20), "--tmpfs"]
    command = ["bwrap", "--die-with-parent", *namespaces, "--ro-bind", "/", "/",
               "--proc", "/proc", "--dev", "/dev", *disk, "/tmp"]
    if settings.network and os.geteuid():
        command.append("--share-net")
    hidden = [Path(h) for h in (*HIDDEN_ALWAYS, *source_checkout(), str(private_root()),
                                *settings.hidden)
              if Path(h).is_dir()]
    for path in hidden:
        command += ["--tmpfs", str(path)]
    plugins = course.current().plugins
    visible = [*interpreter_paths(), str(PACKAGE), *map(str, data.values()),
               *([str(plugins.resolve())] if plugins.is_dir() else [])]
    for path in visible:  # /tmp is a fresh tmpfs too: the data cache may lie below it
        command += reopen(Path(path), [*hidden, Path("/tmp")])
    for path in course_secrets():  # hidden again inside the folders just made visible
        command += ["--tmpfs", str(path)]
    if gpu:
        for device in sorted(glob.glob("/dev/nvidia*")):
            command += ["--dev-bind", device, device]
    command += ["--bind", str(folder), str(folder)]
    if not mounts_disk() and os.geteuid():  # the sandbox's own, capped in size alone
        command += [*disk, str(workdir)]
    return [*command, "--chdir", str(workdir)]


def source_checkout() -> list[str]:
    """The repository the package is installed from in editable mode (its tests and notes
    are no kernel's business); nothing for a wheel in site-packages."""
    root = PACKAGE.parent
    return [str(root)] if (root / "pyproject.toml").is_file() else []


def course_secrets() -> list[Path]:
    """The solutions and settings of the course in use and of the bundled one."""
    folders = [*course.current().secrets, *course.BUNDLED.secrets]
    return [path for path in dict.fromkeys(p.resolve() for p in folders) if path.is_dir()]


def reopen(path: Path, hidden: list[Path]) -> list[str]:
    """Bind `path` read-only, first making its parents inside hidden trees traversable
    (bwrap would create them 0700, and the kernel's uid could not pass)."""
    arguments = []
    for parent in reversed(path.parents):
        if any(parent != h and parent.is_relative_to(h) for h in hidden):
            arguments += ["--perms", "0755", "--dir", str(parent)]
    return [*arguments, "--ro-bind", str(path), str(path)]


def kernel_prefix(folder: Path, workdir: Path, settings: SandboxSettings, gpu: bool,
                  data: Mapping[str, Path]) -> list[str]:
    """What goes before the kernel's own command line.

    The shell stays the kernel's parent: under a new pid namespace the kernel's parent would
    otherwise be pid 1, and ipykernel takes that as its parent having died. `data` holds the
    data sets' folders (data_folders()) bound into the sandbox.
    """
    cage = bwrap_command(folder, workdir, settings, gpu, data) if use_bwrap(settings) else []
    keep_parent = ["sh", "-c", '"$@"; true', "sh"]
    return [*cage, *limits_command(settings), *drop_command(settings), *keep_parent]


def holder_command(folder: Path, workdir: Path, settings: SandboxSettings, gpu: bool,
                   data: Mapping[str, Path]) -> list[str]:
    """A sandbox like a kernel's, holding only a placeholder (pid 1 of its namespace),
    for a kernel forked from the warm parent to enter (grader/sandbox/forkserver.py)."""
    return [*bwrap_command(folder, workdir, settings, gpu, data), *limits_command(settings),
            *drop_command(settings), HOLDER, "infinity"]


def prepare_workdir(workdir: Path, settings: SandboxSettings) -> None:
    """Hand the work folder to the kernel's uid, so it can write there and nowhere else."""
    if drops_privileges():
        os.chown(workdir, settings.uid, settings.uid)


def take_back(folder: Path) -> None:
    """Make `folder` the grader's again: the kernel can no longer add, rename or remove
    what lies in it (a socket swapped for a link would send the grader elsewhere)."""
    if drops_privileges():
        os.chown(folder, 0, 0)
        folder.chmod(0o755)


def describe(settings: SandboxSettings) -> str | None:
    """A line for each report when the kernel was not isolated or its disk not bounded, or
    None when it was both."""
    if not use_bwrap(settings):
        disk = "" if mounts_disk() else " and no bound on its disk use"
        return ("The notebook ran without a sandbox (bubblewrap unavailable or turned off): "
                f"resource limits applied, but no file-system or network isolation{disk}.")
    if mounts_disk():
        return None
    return ("The notebook's disk use was bounded in size but not in files: the grader could "
            "not mount a file system for its work folder (it runs without root).")
