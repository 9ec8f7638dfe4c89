"""Finding the submissions in a folder: a notebook per student, or a folder per student.

Nothing is skipped silently: files that are not notebooks, empty folders and names alike
are reported as problems the CLI prints and the summary shows. A student's id is their
entry's own name where it is already a clean id, else one derived from that name alone
(see grader.identity), so no file name can take a classmate's id. A submission that is
a link, or holds one, is refused: the grader runs as root and would follow it anywhere (to
the reference solution, to a file only root may read). Files are read without following
links, only if they are regular files, and only up to MAX_NOTEBOOK_BYTES.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.files import NotRegular, open_regular
from grader.identity import NAMES_ALIKE, identities, shown
from grader.results import Lateness

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


def discover(folder: Path) -> tuple[list[Submission], list[str]]:
    """Submissions in `folder`, sorted by student, and problems that belong to no student."""
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of submissions")
    found: list[tuple[str, Submission]] = []
    problems = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED_DIRS:
            continue
        name = shown(entry.name)
        if entry.is_symlink():
            submission = Submission("", entry)
            submission.refused = (f"{name} is a link, not the work itself: links are "
                                  "refused; hand in the notebook file")
        elif entry.is_dir():
            submission = Submission("", entry, notebooks_in(entry))
            links = links_in(entry)
            if links:
                submission.refused = (f"the folder {name}/ holds links "
                                      f"({', '.join(map(shown, links[:3]))}): links are "
                                      "refused; hand in the files themselves")
                submission.notebooks = []
            elif not submission.notebooks:
                submission.problems.append(f"the folder {name}/ holds no notebook")
        elif entry.suffix == ".ipynb":
            submission = Submission("", entry, [entry])
        else:
            problems.append(f"{name}: not a notebook (.ipynb) nor a folder, not graded")
            continue
        found.append((own_name(entry), submission))
    given = identities([(name, submission.path.name) for name, submission in found])
    for _, submission in found:
        submission.student = given[submission.path.name].student
        submission.problems[:0] = given[submission.path.name].notes
    return sorted((s for _, s in found), key=lambda s: s.student), problems


def own_name(entry: Path) -> str:
    """The name a student is known by: a notebook's (or a link's) stem, a folder's name."""
    notebook = entry.suffix == ".ipynb" and (entry.is_symlink() or not entry.is_dir())
    return entry.stem if notebook else entry.name


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks below `folder`, not looking into linked folders."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        found.extend(Path(root) / name for name in files if name.endswith(".ipynb"))
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
    """The assignment notebook a file claims to be, from metadata the assignment ships."""
    try:
        text = read_submitted(path).decode("utf-8", errors="replace")
        return str(json.loads(text)["metadata"]["grader"]["notebook"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def match_notebooks(submission: Submission, wanted: list[str]) -> dict[str, Path]:
    """Which submitted file is which assignment notebook: by metadata, then file name, and
    a lone file for a one-notebook assignment."""
    matched: dict[str, Path] = {}
    for path in submission.notebooks:
        claimed = notebook_id(path)
        if claimed in wanted and claimed not in matched:
            matched[claimed] = path
    for path in submission.notebooks:
        if path.stem in wanted and path.stem not in matched and path not in matched.values():
            matched[path.stem] = path
    if not matched and len(wanted) == 1 and len(submission.notebooks) == 1:
        matched[wanted[0]] = submission.notebooks[0]
    extra = [p.name for p in submission.notebooks if p not in matched.values()]
    if extra:
        submission.problems.append(f"not graded (the notebook of no assignment graded, "
                                   f"{', '.join(wanted)}): {', '.join(extra)}")
    return matched


def require_notebooks(folder: Path, submissions: list[Submission] | None = None) -> None:
    """LookupError for a folder with nothing to grade, saying what was looked for."""
    found = discover(folder)[0] if submissions is None else submissions
    if not any(s.notebooks or s.refused for s in found):
        raise LookupError(f"{folder} holds no notebooks: looked for STUDENT.ipynb files and "
                          "STUDENT/ folders holding .ipynb files")
