"""Finding the submissions in a folder: a notebook per student, or a folder per student.

Nothing is skipped silently: files that are not notebooks, empty folders and clashing
names are reported as problems the CLI prints and the summary shows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

IGNORED_DIRS = {".ipynb_checkpoints", "__pycache__", ".git"}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Submission:
    """One student's work: the notebooks found for them, and what was odd about it."""

    student: str
    path: Path
    notebooks: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def digest(self) -> str:
        """Content hash of the submitted notebooks, to tell whether a regrade is due."""
        hasher = hashlib.sha256()
        for notebook in self.notebooks:
            hasher.update(notebook.name.encode())
            try:
                hasher.update(notebook.read_bytes())
            except OSError as error:
                hasher.update(str(error).encode())
        return hasher.hexdigest()[:16]


def student_id(name: str) -> str:
    """A name safe as a folder and a CSV cell: no path separators, no leading '=' or '-'."""
    cleaned = SAFE_NAME.sub("_", name).strip("._-")
    return cleaned or "unnamed"


def discover(folder: Path) -> tuple[list[Submission], list[str]]:
    """Submissions in `folder`, sorted by student, and problems that belong to no student."""
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of submissions")
    submissions: dict[str, Submission] = {}
    problems = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED_DIRS:
            continue
        if entry.is_dir():
            submission = Submission(student_id(entry.name), entry, notebooks_in(entry))
            if not submission.notebooks:
                submission.problems.append(f"the folder {entry.name}/ holds no notebook")
        elif entry.suffix == ".ipynb":
            submission = Submission(student_id(entry.stem), entry, [entry])
        else:
            problems.append(f"{entry.name}: not a notebook (.ipynb) nor a folder, not graded")
            continue
        add_unique(submissions, submission)
    return sorted(submissions.values(), key=lambda s: s.student), problems


def notebooks_in(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        if not IGNORED_DIRS & set(path.relative_to(folder).parts):
            found.append(path)
    return found


def add_unique(submissions: dict[str, Submission], submission: Submission) -> None:
    """Two entries that map to one student id are both kept, the second renamed."""
    base, number = submission.student, 2
    while submission.student in submissions:
        submission.student = f"{base}-{number}"
        number += 1
    if submission.student != base:
        submission.problems.append(
            f"{submission.path.name} has the same student name as another entry "
            f"({base}); graded as {submission.student}")
    submissions[submission.student] = submission


def notebook_id(path: Path) -> str | None:
    """The assignment notebook a file claims to be, from metadata the assignment ships."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8", errors="replace"))["metadata"]
        return str(metadata["grader"]["notebook"])
    except (OSError, ValueError, KeyError, TypeError):
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
        submission.problems.append(f"not graded (not an assignment notebook): {', '.join(extra)}")
    return matched
