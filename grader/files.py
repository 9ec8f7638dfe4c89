"""Opening a file the grader did not make itself (a submission, a cache entry a kernel
might have reached): without following a link, without blocking on a FIFO put in its
place, and checked on the open descriptor, so that the file checked is the file read."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegular(OSError):
    """The path names a FIFO, a device or a folder, not a regular file."""


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor on the regular file at `path`, for reading, and its status; OSError
    (ELOOP) for a link, NotRegular for anything else that is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise NotRegular(f"{path} is not a regular file")
    return fd, status
