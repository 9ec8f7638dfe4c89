"""A student's submission as the grader holds it, how its files are read, and which file
is which assignment's notebook.

grader.students.intake finds the submissions (the layouts, the LMS exports, the zips). A
submission that is a link, or holds one, is refused: the grader runs as root and would
follow it anywhere (to the reference solution, to a file only root may read). Files are
read without following links, only if they are regular files, and only up to
MAX_NOTEBOOK_BYTES. A file that cannot be read is matched by its name like any other, its
reason kept in `Submission.unreadable`, so the report says why rather than "missing".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.files import NotRegular, open_regular
from grader.grading.results import Lateness
from grader.students.identity import NAMES_ALIKE, shown

IGNORED_DIRS = {".ipynb_checkpoints", "__pycache__", ".git"}
MAX_NOTEBOOK_BYTES = 64 * 2**20


class UnsafeFile(OSError):
    """A file the grader will not read: a link, not a regular file, or too large."""


def read_submitted(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a submitted file, opened as grader.files opens what it did not make."""
    try:
        handle, info = open_regular(path)
    except NotRegular:
        raise UnsafeFile(f"{path.name} is not a regular file") from None
    except OSError as error:
        if os.path.islink(path):
            raise UnsafeFile(f"{path.name} is a link: hand in the file itself") from None
        raise UnsafeFile(f"{path.name} cannot be read: {error.strerror}") from None
    with os.fdopen(handle, "rb") as file:
        if info.st_nlink > 1:  # a hard link may name a file its submitter could not read
            raise UnsafeFile(f"{path.name} is a hard link: hand in a copy of the file")
        if info.st_size > max_bytes:
            raise UnsafeFile(f"{path.name} is {info.st_size / 2**20:.0f} MiB, over the "
                             f"{max_bytes / 2**20:.0f} MiB a notebook may be")
        # As much as the file holds, not the cap: each read would reserve 64 MiB otherwise.
        data = file.read(info.st_size + 1)
    if len(data) > info.st_size:
        raise UnsafeFile(f"{path.name} grew while it was read: hand in a finished file")
    return data


@dataclass(frozen=True)
class Handed:
    """What an LMS's export says of one submitted file: the name the student gave it (the
    export's prefix taken off) and when it came in."""

    original: str
    lateness: Lateness | None = None
    via: Path | None = None  # the zip it was unpacked from, where it was


@dataclass
class Submission:
    """One student's work: the notebooks found for them, and what was odd about it."""

    student: str
    path: Path
    notebooks: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: str | None = None  # why nothing of it is graded (a link, say)
    name: str = ""  # as people read it: Unicode, from the roster or the file's own name
    lms_id: str | None = None  # the LMS's id for the student, from its export's names
    handed: dict[Path, Handed] = field(default_factory=dict)  # by notebook, where known
    unreadable: dict[Path, str] = field(default_factory=dict)  # a file, and why it cannot be

    def digest(self) -> str:
        """Content hash of the submitted notebooks, to tell whether a regrade is due."""
        hasher = hashlib.sha256()
        hasher.update(str(self.refused).encode())
        # A name like another's is noted in the results: a new namesake regrades both.
        hasher.update(repr([p for p in self.problems if p.startswith(NAMES_ALIKE)]).encode())
        for notebook in self.notebooks:
            hasher.update(notebook.name.encode())
            try:
                hasher.update(read_submitted(notebook))
            except OSError as error:
                hasher.update(str(error).encode())
        return hasher.hexdigest()[:16]


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks below `folder`, not looking into linked folders."""
    return files_in(folder, ".ipynb")


def files_in(folder: Path, suffix: str) -> list[Path]:
    """The files below `folder` whose name ends in `suffix`, not looking into linked
    folders nor into the folders the grader ignores."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        found.extend(Path(root) / name for name in files if name.lower().endswith(suffix))
    return sorted(found)


def links_in(folder: Path) -> list[str]:
    """Links anywhere below `folder` (not followed), by their path inside it."""
    links = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            if (Path(root) / name).is_symlink():
                links.append(str((Path(root) / name).relative_to(folder)))
    return sorted(links)


def notebook_id(path: Path) -> str | None:
    """The assignment notebook a file claims to be, from metadata the assignment ships;
    UnsafeFile, UnicodeDecodeError or ValueError where the file cannot be read as JSON."""
    data = json.loads(read_submitted(path).decode("utf-8"))
    try:
        return str(data["metadata"]["grader"]["notebook"])
    except (KeyError, TypeError):
        return None


def unreadable_reason(path: Path, error: Exception) -> str:
    """Why notebook_id could not read a file, said after its name: "is not UTF-8 text"."""
    if isinstance(error, UnsafeFile):
        return str(error).removeprefix(f"{path.name} ")
    if isinstance(error, UnicodeDecodeError):
        return "is not UTF-8 text"
    return f"is not a notebook's JSON ({str(error)[:200]})"


def original_name(submission: Submission, path: Path) -> str:
    """The name the student gave a file (an LMS export prefixes its own), for messages."""
    handed = submission.handed.get(path)
    return handed.original if handed else path.name


def stem_of(name: str) -> str:
    """A file name's stem without an LMS's or a browser's copy marker: Canvas's
    `softmax_regression-1.ipynb`, a download's `softmax_regression (1).ipynb`."""
    return re.sub(r"(-\d+| \(\d+\))$", "", Path(name).stem)


def match_notebooks(submission: Submission, wanted: list[str]) -> dict[str, Path]:
    """Which submitted file is which assignment notebook: by metadata, then the name the
    student gave it, then a lone file for a one-notebook assignment; a file that cannot be
    read goes to the one assignment left, if just one is, and its reason is kept in
    `submission.unreadable` either way."""
    matched: dict[str, Path] = {}
    for path in submission.notebooks:
        try:
            claimed = notebook_id(path)
        except (OSError, ValueError, RecursionError) as error:
            submission.unreadable[path] = unreadable_reason(path, error)
            continue
        if claimed in wanted and claimed not in matched:
            matched[claimed] = path
    for path in submission.notebooks:
        original = Path(original_name(submission, path)).stem
        stem = original if original in wanted else stem_of(original)
        if stem in wanted and stem not in matched and path not in matched.values():
            matched[stem] = path
    open_ = [name for name in wanted if name not in matched]
    unread = [p for p in submission.notebooks
              if p in submission.unreadable and p not in matched.values()]
    if not matched and len(wanted) == 1 and len(submission.notebooks) == 1:
        matched[wanted[0]] = submission.notebooks[0]
    elif len(open_) == 1 and len(unread) == 1:
        matched[open_[0]] = unread[0]
    extra = [shown(original_name(submission, p)) + unread_note(submission, p)
             for p in submission.notebooks if p not in matched.values()]
    if extra:
        submission.problems.append(f"not graded (the notebook of no assignment graded, "
                                   f"{', '.join(wanted)}): {', '.join(extra)}")
    return matched


def unread_note(submission: Submission, path: Path) -> str:
    """`(why it cannot be read)` after an unreadable file's name, else nothing."""
    reason = submission.unreadable.get(path)
    return f" (unreadable: it {reason})" if reason else ""
