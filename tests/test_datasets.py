"""The data sets are declared once (grader/authoring/datasets.py) and handed to the generic modules:
the sandbox binds and names each one's folder, the fingerprint digests its content, the
Gradescope zip carries its files; none of them names a data set of its own."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from grader.authoring import autograder, exercise
from grader.authoring.datasets import FASHION_MNIST, DataNotFound, DataSet, in_use, needed
from grader.authoring.exercise import Declaration, from_declaration
from grader.paths import PACKAGE
from grader.sandbox import bwrap as sandbox
from grader.sandbox import datacache, host
from grader.scale import fingerprint

# Modules that may name a data set besides the exercises and the kernel side (its loader):
# its declaration and the softmax exercise's benchmark (against torchvision's reader of the
# same files).
MAY_NAME = {"authoring/datasets.py", "bench.py"}
NOT_GENERIC = ("exercises", "kernel")
NAMES = re.compile(r"fashion|mnist", re.IGNORECASE)


def toy(folder: Path, slug: str = "toy") -> DataSet:
    """A data set of two small files, found in `folder`."""
    return DataSet(name=f"The {slug} set", slug=slug, env_var=f"{slug.upper()}_DIR",
                   stems=("images", "labels"), locate=lambda: folder, loader="toy_loader")


def write_toy(folder: Path, compress: bool, content: bytes = b"0123456789") -> None:
    folder.mkdir(parents=True)
    for stem in ("images", "labels"):
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(stem.encode() + content))
        else:
            (folder / stem).write_bytes(stem.encode() + content)


def test_no_generic_module_names_a_data_set():
    generic = [path.relative_to(PACKAGE) for path in sorted(PACKAGE.rglob("*.py"))
               if path.relative_to(PACKAGE).parts[0] not in NOT_GENERIC]
    naming = [f"{path}:{number}" for path in generic if path.as_posix() not in MAY_NAME
              for number, line in enumerate((PACKAGE / path).read_text().splitlines(), 1)
              if NAMES.search(line)]
    assert naming == []


def test_an_assignment_needs_the_data_sets_of_its_exercises():
    assert needed(["softmax", "quiz", "concise_softmax"]) == (FASHION_MNIST,)
    assert needed(["one_hot", "module_classes", "show_images"]) == (FASHION_MNIST,)
    assert needed(["linreg", "concise_linreg"]) == ()
    assert FASHION_MNIST in in_use()  # the course's kernels may all read it, as before


def test_the_data_sets_needed_are_those_the_exercises_declare(tmp_path, monkeypatch):
    own = toy(tmp_path)
    declared = Declaration(checks=(), data=(own, FASHION_MNIST))
    exercises = {"reader": from_declaration(declared, "reader", "reader.py"),
                 "quiz": exercise.available()["quiz"]}
    monkeypatch.setattr(exercise, "available", lambda: exercises)
    assert needed(["quiz", "reader"]) == (own, FASHION_MNIST)
    assert in_use() == (own, FASHION_MNIST)
    with pytest.raises(ValueError, match="no exercise named nobody"):
        needed(["nobody"])


def test_fashion_mnist_is_declared_as_its_loader_finds_it():
    assert FASHION_MNIST.env_var == "FASHION_MNIST_DIR"
    assert len(FASHION_MNIST.stems) == 4
    assert FASHION_MNIST.loader == "grader.kernel.data"


def test_a_missing_file_names_the_data_set_and_its_files(tmp_path):
    write_toy(tmp_path / "toy", compress=False)
    (tmp_path / "toy" / "labels").unlink()
    with pytest.raises(DataNotFound, match="lacks some of The toy set's files: images, labels"):
        toy(tmp_path / "toy").files(tmp_path / "toy")


def test_the_sandbox_binds_and_names_each_data_set(tmp_path, monkeypatch):
    monkeypatch.setattr(datacache, "default_root", lambda: tmp_path / "cache")
    write_toy(tmp_path / "gz", compress=True)
    write_toy(tmp_path / "raw", compress=False)
    sets = (toy(tmp_path / "gz"), toy(tmp_path / "raw", "other"))
    folders = sandbox.data_folders(sets)
    assert folders["OTHER_DIR"] == (tmp_path / "raw").resolve()
    inflated = folders["TOY_DIR"]
    assert inflated.parent == tmp_path / "cache" and inflated.name.startswith("toy-")
    assert (inflated / "images").read_bytes() == b"images0123456789"
    environment = host.kernel_environment(tmp_path, folders)
    assert environment["TOY_DIR"] == str(inflated)
    assert environment["OTHER_DIR"] == str(folders["OTHER_DIR"])
    command = sandbox.bwrap_command(tmp_path / "k", tmp_path / "k", sandbox.SandboxSettings(),
                                    gpu=False, data=folders)
    bound = {command[i + 1] for i, word in enumerate(command) if word == "--ro-bind"}
    assert {str(inflated), str(folders["OTHER_DIR"])} <= bound


def test_a_data_set_not_found_is_left_out_of_the_sandbox(tmp_path):
    def nowhere() -> Path:
        raise DataNotFound("The toy set not found")

    missing = DataSet("The toy set", "toy", "TOY_DIR", ("images",), nowhere, "toy_loader")
    assert sandbox.data_folders((missing,)) == {}
    assert "TOY_DIR" not in host.kernel_environment(tmp_path, {})


def test_the_fingerprint_digests_the_content_gzipped_or_not(tmp_path):
    write_toy(tmp_path / "gz", compress=True)
    write_toy(tmp_path / "raw", compress=False)
    write_toy(tmp_path / "changed", compress=False, content=b"9876543210")
    digest = fingerprint.data_digest((toy(tmp_path / "gz"),))
    assert fingerprint.data_digest((toy(tmp_path / "raw"),)) == digest
    assert fingerprint.data_digest((toy(tmp_path / "changed"),)) != digest


def test_a_fingerprint_difference_says_which_variables_to_align():
    here = fingerprint.Fingerprint("g", "c", "data-1")
    [said] = here.differences(fingerprint.Fingerprint("g", "c", "data-2"))
    assert said.startswith("its data differs") and FASHION_MNIST.env_var in said


def test_the_autograder_carries_each_data_set_and_says_where_it_lies(tmp_path):
    write_toy(tmp_path / "gz", compress=True)
    write_toy(tmp_path / "raw", compress=False)
    sets = (toy(tmp_path / "gz"), toy(tmp_path / "raw", "other"))
    assert autograder.data_files(sets) == {
        "data/toy/images.gz": tmp_path / "gz/images.gz",
        "data/toy/labels.gz": tmp_path / "gz/labels.gz",
        "data/other/images": tmp_path / "raw/images",
        "data/other/labels": tmp_path / "raw/labels"}
    assert autograder.data_variables(sets) == (
        'export TOY_DIR="$root/source/data/toy"\n'
        'export OTHER_DIR="$root/source/data/other"\n')
    assert autograder.data_variables(()) == ""


@pytest.mark.parametrize(("variable", "expected"), [
    ("3", 2),  # a pool worker's share of the cores, less the worker's own
    ("1", 1),
    ("0", 1),
    ("many", None),  # not a number: every core this process may use, less its own
    (None, None),
])
def test_a_kernel_gets_the_threads_of_the_process_that_grades_it_less_its_own(
        monkeypatch, variable, expected):
    if variable is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", variable)
    threads = expected or max(1, len(os.sched_getaffinity(0)) - 1)
    assert host.kernel_threads() == threads
    environment = host.kernel_environment(Path("/work"), {})
    assert environment["OMP_NUM_THREADS"] == environment["MKL_NUM_THREADS"] == str(threads)
