"""A private cache for what is slow to make and the same on every run: the data sets' files
inflated from their gzip files, the reference solution's observations.

It lies in the temporary directory, in a folder this user owns (one another user made is
refused). An entry is named after a fingerprint of everything it is made from, so a
changed input makes a new entry instead of reading a stale one. An entry is checked when it
is used, not trusted because it exists: opened without following links, refused unless it
is a regular file of this user's that nobody else may write, and compared with the digest
recorded when it was written.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import BinaryIO, TypeVar

import torch

from grader.authoring import course
from grader.files import NotRegular, open_regular
from grader.paths import PACKAGE

PRIVATE_MAGIC = b"dl-grader verified 1\n"
PRIVATE_HEADER = len(PRIVATE_MAGIC) + 8 + hashlib.sha256().digest_size  # magic, length, digest
Written = TypeVar("Written")


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / f"dl-grader-{os.geteuid()}"


def owned_folder(path: Path, mode: int) -> Path:
    """`path`, made if missing, with `mode`; PermissionError if it is a link, not a folder,
    or not this user's: whoever owns a folder can swap the entries in it."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    status = path.lstat()
    if not stat.S_ISDIR(status.st_mode):
        raise PermissionError(f"{path} is a link or not a folder")
    if status.st_uid != os.geteuid():
        raise PermissionError(f"{path} belongs to another user")
    path.chmod(mode)
    return path


def open_owned(path: Path, max_bytes: int) -> tuple[int, os.stat_result]:
    """A descriptor on `path` and its status, for reading (see grader.files); PermissionError
    unless it is a regular file of this user's, writable by nobody else, of at most
    `max_bytes`."""
    try:
        fd, status = open_regular(path)
    except NotRegular as error:
        raise PermissionError(str(error)) from None
    try:
        if status.st_uid != os.geteuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError(f"{path} is not this user's alone")
        if status.st_size > max_bytes:
            raise PermissionError(f"{path} holds {status.st_size} bytes, over {max_bytes}")
    except BaseException:
        os.close(fd)
        raise
    return fd, status


def create_file(path: Path, mode: int = 0o600) -> BinaryIO:
    """`path` truncated or made with `mode`, for writing, without following a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, mode), "wb")


def fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@cache
def code_fingerprint(plugins: Path) -> str:
    """What computes whatever is kept here: the grader's code (not the course bundled in
    it), the course's exercise modules, torch's release and Python's. Files count by their
    place in their folder, not where the folder lies, so an entry made here is the same
    where `grade gradescope` ships it."""
    digest = hashlib.sha256()
    package = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "course"]
    for folder, paths in ((PACKAGE, package), (plugins, list(plugins.glob("*.py")))):
        for path in sorted(paths, key=lambda p: p.relative_to(folder).as_posix()):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
        digest.update(b"\0\0")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return fingerprint(digest.hexdigest(), torch.__version__.split("+")[0], python)


def private_root() -> Path:
    """Entries for the grader's eyes only: 0700 against other uids, and hidden from the
    kernels by the sandbox wherever the temporary directory is."""
    return default_root() / "private"


def private_entry(name: str, *parts: str) -> Path | None:
    """Where to keep a private entry, named after code_fingerprint() and `parts`; None
    where no cache folder can be had."""
    try:
        owned_folder(default_root(), 0o755)
        folder = owned_folder(private_root(), 0o700)
    except OSError:
        return None
    code = code_fingerprint(course.current().plugins)
    return folder / f"{name}-{fingerprint(code, *parts)}.pt"


def write_atomically(target: Path, write: Callable[[Path], Written],
                     mode: int = 0o644) -> Written:
    """Call write(partial) and move the finished file to `target`: a reader never sees half
    an entry, even with two workers writing the same one. Returns what write returned (what
    was written, for the caller to record)."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        written = write(partial)
        partial.chmod(mode)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written


def store_verified(target: Path, payload: bytes, mode: int = 0o600) -> None:
    """Write `payload` to `target` atomically behind a header with its length and sha256,
    so that load_verified can tell a damaged or swapped entry from the one written."""
    header = PRIVATE_MAGIC + len(payload).to_bytes(8, "big") + hashlib.sha256(payload).digest()

    def write(partial: Path) -> None:
        with create_file(partial) as handle:
            handle.write(header + payload)

    write_atomically(target, write, mode)


def load_verified(target: Path, max_bytes: int) -> bytes | None:
    """The payload store_verified wrote to `target`, or None if it is missing, a link, a
    FIFO or not a regular file, another user's or writable by others, over `max_bytes`,
    or not the bytes written (length or digest): a bad entry is made again, never used."""
    try:
        fd, status = open_owned(target, max_bytes + PRIVATE_HEADER)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(status.st_size + 1)
    except OSError:
        return None
    header, payload = raw[:PRIVATE_HEADER], raw[PRIVATE_HEADER:]
    magic, rest = header[:len(PRIVATE_MAGIC)], header[len(PRIVATE_MAGIC):]
    length, digest = int.from_bytes(rest[:8], "big"), rest[8:]
    if magic != PRIVATE_MAGIC or length != len(payload) or len(payload) > max_bytes:
        return None
    return payload if hashlib.sha256(payload).digest() == digest else None
