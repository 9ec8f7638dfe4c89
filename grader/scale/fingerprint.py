"""What a grading machine must share with the one that hands out the work: the grader, the
course and the data, each as a digest of its content (never of its paths, which differ
between machines).

A worker whose grader, course or data sets differ would grade against another
reference or other settings, and its results would not be comparable with the others'.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import torch

import grader
from grader.authoring import course
from grader.authoring.datasets import DataSet, in_use
from grader.paths import PACKAGE

COURSE_FILES = ("reference/*.ipynb", "exercises/*.ipynb", "assignments/*.toml",
                "plugins/*.py", "public/*")
GRADER_FILES = ("**/*.py", "**/*.j2")
WHAT_TO_ALIGN = {
    "grader": "install the same grader version (and torch) on every machine",
    "course": "grade with the same course everywhere (DL_GRADER_COURSE, or the course "
              "folder the worker starts in)",
    "data": "give every machine the same files of each data set ({variables})",
}


@dataclass(frozen=True)
class Fingerprint:
    """The grader (version, code, torch, Python), the course's files and the data."""

    grader: str
    course: str
    data: str

    def differences(self, expected: Fingerprint) -> list[str]:
        """What differs from `expected`, each with what to do about it; [] when all agree."""
        variables = ", ".join(data.env_var for data in in_use())
        return [f"its {part.name} differs ({getattr(self, part.name)}, expected "
                f"{getattr(expected, part.name)}): "
                f"{WHAT_TO_ALIGN[part.name].format(variables=variables)}"
                for part in fields(self) if getattr(self, part.name) != getattr(expected,
                                                                                part.name)]


def files_digest(root: Path, patterns: Iterable[str]) -> str:
    """A digest of the files below `root` matching `patterns`, by relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()}):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def data_digest(sets: Iterable[DataSet]) -> str:
    """A digest of the data sets' files, found where their loaders find them (DataNotFound
    if one is missing)."""
    return content_digest(tuple(path for data in sets for path in data.files(data.find())))


@cache
def content_digest(paths: tuple[Path, ...]) -> str:
    """A digest of the files' content, inflated: gzipped or not, the same data."""
    digest = hashlib.sha256()
    for path in paths:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def grader_identity() -> str:
    code = files_digest(PACKAGE, GRADER_FILES)
    return (f"{grader.__version__} (code {code}, torch {torch.__version__}, "
            f"Python {sys.version_info.major}.{sys.version_info.minor})")


def this_machine() -> Fingerprint:
    """This process's grader, course and data sets (DataNotFound when one is missing)."""
    return Fingerprint(grader_identity(), files_digest(course.current().root, COURSE_FILES),
                       data_digest(in_use()))
