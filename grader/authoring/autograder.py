"""The Gradescope autograder zip, as Gradescope's specification lays it out.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` there once to build
the image, copies `run_autograder` to /autograder/ and runs it for each submission (in
/autograder/submission, results to /autograder/results/results.json). The zip holds:

  setup.sh, run_autograder   at its root;
  package/                   the grader (no bundled course), installed by setup.sh;
  course/                    the course's assignments graded: their solutions, settings,
                             student notebooks (which record the given demo cells),
                             self-check data and the course's own exercise modules;
  course/observations/       the reference's observations, made here (where kernels are
                             sandboxed), so no container computes them again per student;
  data/<slug>/               the files of each data set the exercises read
                             (grader/authoring/datasets.py), so grading needs no download;
  README.md                  what to set in Gradescope: the memory the grading needs.

Grading one submission holds the grader (torch, the reference's run), the fork server and
the student's kernel (torch each) at once: more than Gradescope's default 768 MB, which
ends the run with "Killed". MEMORY_GB is what the instructor must set; a test measures the
peak of a run as Gradescope makes it and fails if it outgrows what this says.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import torch
import torchvision

from grader.authoring.config import Settings
from grader.authoring.course import ENV_VAR, Course
from grader.authoring.datasets import DataSet, needed
from grader.grading.assignment import Assignment
from grader.grading.cache import load_verified
from grader.grading.reference import MAX_REFERENCE_BYTES, reference_probe, stored_reference
from grader.paths import PACKAGE

DISTRIBUTION = "dl-grader"
SKIPPED = ("__pycache__", "course")  # bytecode, and the bundled course: the zip has its own
# The peak of the autograder's whole process tree (grader, fork server, kernel) grading the
# solution of softmax_regression, its cgroup's peak, measured by tests/test_gradescope.py
# (torch 2.14 CUDA build, bubblewrap, as root); MEMORY_GB leaves room for a student's
# heavier code.
MEASURED_PEAK_MIB = 1193
MEMORY_GB = 2


def memory_advice() -> str:
    """The sentence `grade gradescope` and the zip's README tell the instructor."""
    return (f"set the autograder's memory to at least {MEMORY_GB} GB in Gradescope's "
            f"settings (measured peak {MEASURED_PEAK_MIB:,} MiB; the default, 768 MB, ends "
            "grading with 'Killed')")


README = """# The autograder of {names}

Built by `grade gradescope`. Upload this zip as the assignment's autograder (Ubuntu 22.04
image or later), then {advice}.

The student's kernel may use up to {kernel_mb:,} MB (`memory_mb` in the assignment's
`[sandbox]` settings): where that is more than the memory you set less about 1 GB for the
grader, a notebook that fills its memory kills the whole autograder ('Killed') instead of
failing its own tests. Lower `memory_mb`, or set more memory.

A submission that could not be graded through the grader's fault (a kernel that could not
start, a failed check of the sandbox before grading) gets no score: Gradescope shows that
the autograder failed, and its log says why. Fix the cause and regrade; never is it a 0.
"""
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, in /autograder/source, when it builds the autograder image.
# Grading needs more memory than Gradescope's default: {advice}.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends bubblewrap ca-certificates
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python="$candidate"; break
    fi
done
if [ -z "$python" ]; then  # Ubuntu 22.04, Gradescope's default image, has Python 3.10
    apt-get install -y -q --no-install-recommends software-properties-common gpg-agent
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3.11 python3.11-venv
    python=python3.11
fi
"$python" -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
/autograder/venv/bin/pip install -q --extra-index-url https://download.pytorch.org/whl/cpu \\
    torch=={torch} torchvision=={torchvision}
/autograder/venv/bin/pip install -q ./package
"""
RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission, from /autograder; AUTOGRADER_ROOT points it at
# another folder laid out the same way, AUTOGRADER_PYTHON at another interpreter. Before
# grading, the grader checks the sandbox and the kernel's interpreter; a fault writes no
# results.json (Gradescope then says the autograder failed) and exits non-zero.
set -euo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
python="${AUTOGRADER_PYTHON:-/autograder/venv/bin/python}"
{data}exec "$python" -m grader.outputs.run_autograder --root "$root" --course "$root/source/course"
"""
PROJECT = """[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
requires-python = ">=3.11"
dependencies = {dependencies}

[project.scripts]
grade = "grader.cli:entry"

[tool.setuptools.packages.find]
include = ["grader*"]

[tool.setuptools.package-data]
"grader.outputs" = ["templates/*.j2"]
"""


def project_file() -> str:
    """A pyproject.toml for the grader as installed here: its version and its runtime
    dependencies (the test extras left out)."""
    requires = importlib.metadata.requires(DISTRIBUTION) or []
    runtime = [r for r in requires if "extra ==" not in r]
    return PROJECT.format(name=DISTRIBUTION, version=importlib.metadata.version(DISTRIBUTION),
                          dependencies=json.dumps(runtime))


def package_files() -> list[Path]:
    """The grader's own files, bytecode and the bundled course left out."""
    return sorted(path for path in PACKAGE.rglob("*") if path.is_file()
                  and not any(part in SKIPPED for part in path.relative_to(PACKAGE).parts))


def course_files(source: Course, assignments: list[Settings]) -> dict[str, Path]:
    """The course's files the assignments need, by their name in the zip."""
    names = [settings.notebook for settings in assignments]
    files = {}
    for name in names:
        for part, suffix in (("reference", ".ipynb"), ("assignments", ".toml"),
                             ("exercises", ".ipynb"), ("public", ".pt")):
            path = getattr(source, part) / f"{name}{suffix}"
            if not path.is_file():
                writer = " (`grade assign` writes it)" if part in {"exercises", "public"} else ""
                raise FileNotFoundError(f"{path} is missing{writer}")
            files[f"course/{part}/{path.name}"] = path
    if source.plugins.is_dir():
        for path in sorted(source.plugins.glob("*.py")):
            files[f"course/plugins/{path.name}"] = path
    return files


def reference_files(source: Course, assignments: list[Settings]) -> dict[str, Path]:
    """The reference's observations of each assignment, made here if not yet kept, by their
    name in the zip: the key they are kept under is the same in the container (same code,
    course, data and torch release), so its grader reads them instead of computing them.
    None where this machine keeps none (kernels not sandboxed): the container makes its own."""
    files = {}
    for settings in assignments:
        assignment = Assignment.of(settings)
        reference_probe(assignment)
        stored = stored_reference(assignment.notebook, assignment.settings)
        if stored is not None and load_verified(stored, MAX_REFERENCE_BYTES) is not None:
            files[f"course/{source.observations.name}/{stored.name}"] = stored
    return files


def data_files(sets: tuple[DataSet, ...]) -> dict[str, Path]:
    """The data sets' files, found here, by their name in the zip: one folder per set."""
    return {f"data/{data.slug}/{path.name}": path
            for data in sets for path in data.files(data.find())}


def data_variables(sets: tuple[DataSet, ...]) -> str:
    """The lines of run_autograder that tell the kernels where each data set lies."""
    return "".join(f'export {data.env_var}="$root/source/data/{data.slug}"\n' for data in sets)


def add(archive: zipfile.ZipFile, name: str, data: bytes | str, executable: bool = False) -> None:
    """One member, dated and moded alike in every build: the same inputs, the same zip."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_autograder(source: Course, assignments: list[Settings], out: Path) -> Path:
    """Write the zip to upload as the autograder of `assignments` (a Gradescope assignment
    may take one notebook or several): its run_autograder grades each of them."""
    data = needed(name for settings in assignments for name in settings.exercises)
    torch_version = torch.__version__.split("+")[0]
    vision_version = torchvision.__version__.split("+")[0]
    files = {**{f"package/grader/{p.relative_to(PACKAGE)}": p for p in package_files()},
             **course_files(source, assignments),
             **reference_files(source, assignments),
             **data_files(data)}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        add(archive, "setup.sh", SETUP.replace("{torch}", torch_version)
            .replace("{torchvision}", vision_version).replace("{advice}", memory_advice()),
            executable=True)
        add(archive, "run_autograder", RUN.replace("{data}", data_variables(data)),
            executable=True)
        add(archive, "README.md", README.format(
            names=", ".join(settings.notebook for settings in assignments),
            advice=memory_advice(),
            kernel_mb=max(settings.sandbox.memory_mb for settings in assignments)))
        add(archive, "package/pyproject.toml", project_file())
        for name, path in files.items():
            add(archive, name, path.read_bytes())
    partial.replace(out)
    return out


def lay_out(built: Path, root: Path) -> dict[str, int]:
    """Unpack the zip `built` into `root` as Gradescope lays out /autograder: its members in
    source/ with their modes, run_autograder copied beside it. The members' modes."""
    with zipfile.ZipFile(built) as archive:
        archive.extractall(root / "source")
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(modes[script])
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return modes


def install_offline(root: Path) -> Path:
    """What setup.sh does, without its downloads: the zip's package built and installed into
    root/venv, which sees this interpreter's torch. The venv's interpreter."""
    venv = root / "venv"
    quiet = {"check": True, "capture_output": True}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "--wheel-dir", str(root / "dist"), str(root / "source" / "package")],
                   **quiet)
    [wheel] = (root / "dist").glob("dl_grader-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], **quiet)
    # --ignore-installed: the zip's package, even where the grader is installed system-wide
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--no-deps",
                    "--no-index", "-q", "--ignore-installed", str(wheel)], **quiet)
    return venv / "bin/python"


def container_environment(root: Path, python: Path) -> dict[str, str]:
    """run_autograder's environment for a root laid out here: this process's, less the
    course it names (the zip's own counts) and PYTHONPATH, with a temporary folder of its
    own, as a fresh container's, where no reference was ever observed."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "PYTHONPATH")}
    (root / "tmp").mkdir(exist_ok=True)
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=str(python),
               TMPDIR=str(root / "tmp"))
    return env
