"""The data sets the students' kernels read from disk, each declared once, here.

The sandbox binds their folders into the kernels, the cache inflates their gzip files, the
fingerprint digests their content and the Gradescope zip carries them: those modules receive
DataSet declarations and never name one. An exercise declares which data sets it reads
(Declaration.data); an assignment needs the union of its exercises'. The code that parses a
data set is its loader, a kernel-side module (grader/kernel/), which finds the files by the
same search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.kernel import data as fashion_mnist_loader
from grader.kernel.data import DataNotFound, find_file

__all__ = ["DataNotFound", "DataSet", "FASHION_MNIST", "needed", "in_use"]


@dataclass(frozen=True)
class DataSet:
    """A data set: `name` for messages, `slug` for its folders (the cache's, the zip's),
    `env_var` to tell a kernel where its files are, `stems` its files (each raw or
    gzipped), `locate` its loader's search (the folder, else DataNotFound) and `loader`
    the kernel-side module that reads it."""

    name: str
    slug: str
    env_var: str
    stems: tuple[str, ...]
    locate: Callable[[], Path]
    loader: str

    def find(self) -> Path:
        """The folder its loader would read; DataNotFound, saying where it looked, if none."""
        return self.locate()

    def files(self, folder: Path) -> list[Path]:
        """Its files in `folder`, raw or gzipped, in `stems` order; DataNotFound if one
        is missing."""
        found = [find_file(folder, stem) for stem in self.stems]
        if None in found:
            raise DataNotFound(f"{folder} lacks some of {self.name}'s files: "
                               f"{', '.join(self.stems)}")
        return found


FASHION_MNIST = DataSet(
    name="Fashion-MNIST",
    slug="fashion-mnist",
    env_var=fashion_mnist_loader.ENV_VAR,
    stems=tuple(fashion_mnist_loader.FILES.values()),
    locate=fashion_mnist_loader.find_data_dir,
    loader=fashion_mnist_loader.__name__,
)

def needed(exercises: Iterable[str]) -> tuple[DataSet, ...]:
    """The data sets the exercises named declare, each once, in the order first read."""
    from grader.authoring.exercise import (
        lookup,  # the exercises import this module, never the reverse
    )

    return tuple(dict.fromkeys(data for exercise in lookup(tuple(exercises))
                               for data in exercise.data))


def in_use() -> tuple[DataSet, ...]:
    """The data sets any exercise of the course in use reads: every kernel may read each
    of them (a kernel starts before anyone knows which notebook it will run)."""
    from grader.authoring.exercise import available

    return needed(available())
