"""A private cache for what is slow to make and the same on every run: Fashion-MNIST
inflated from its gzip files, the reference solution's observations.

It lies in the temporary directory, in a folder this user owns (one another user made is
refused). An entry is named after a fingerprint of everything it is made from, so a
changed input makes a new entry instead of reading a stale one.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

from grader.paths import REFERENCE

PACKAGE = Path(__file__).resolve().parent


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / f"dl-grader-{os.geteuid()}"


def owned_folder(path: Path, mode: int) -> Path:
    """`path`, made if missing, with `mode`; PermissionError if it is not this user's."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    if path.lstat().st_uid != os.geteuid() or path.is_symlink():
        raise PermissionError(f"{path} belongs to another user")
    path.chmod(mode)
    return path


def fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@cache
def code_fingerprint() -> str:
    """What the reference's observations are computed by: the grader's code, the solution
    notebooks, torch and Python."""
    digest = hashlib.sha256()
    for path in sorted([*PACKAGE.rglob("*.py"), *REFERENCE.glob("*.ipynb")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return fingerprint(digest.hexdigest(), torch.__version__, sys.version)


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
    return folder / f"{name}-{fingerprint(code_fingerprint(), *parts)}.pt"


def write_atomically(target: Path, write: Callable[[Path], None], mode: int = 0o644) -> None:
    """Call write(partial) and move the finished file to `target`: a reader never sees half
    an entry, even with two workers writing the same one."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        write(partial)
        partial.chmod(mode)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
