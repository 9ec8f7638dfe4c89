"""(Re)generate the hostile corpus: `python tests/hostile/make_corpus.py`.

Every case is one bad submission, written to corpus/<name>.ipynb, and one row of
manifest.json saying what it does, what the grader must conclude, and which words the
report must contain for the message to count as clear.

Most cases are the solution notebook with one cell added or replaced, so that the honest
score is known: what the untouched functions earn. The base is reference/ with its demo
softmax training cut to one epoch of large batches (only the notebook's own demo cell; the
grader trains with its own settings), which keeps each case cheap. Cases that must earn
nothing start from the blank exercises/ notebook instead. A few are raw bytes.

Expected outcomes, checked by tests/test_hostile.py on the grader's Result. Each test is
looked up by its full name ("softmax.rows_sum_to_one"), then its exercise ("softmax"), then
"*" (every test), the first hit deciding:
  fails   it must fail,
  passes  it must pass,
  may     it may go either way (where either verdict is honest: the timed epoch of a
          broken but fast softmax, or exercises probed after the kernel died),
  and a test that none of them names must fail. So passes=["*"], fails=["softmax"] reads
  "the honest score is everything but softmax", and stays true as exercises are added.
  words   each must appear (case-insensitive) in the report: notes, cell errors, test
          messages; "a | b" accepts either,
  xfail   set where the current grader does not yet do the right thing: the reason,
  needs_bwrap  the case is only harmless inside the bubblewrap sandbox,
  separate  graded apart from the main batch, beside a neighbour started mid-bomb (the
          fork bomb: it would make the main batch's outcome depend on timing),
  max_seconds  the grading of this case must not take longer (wedged kernels).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
MANIFEST = HERE / "manifest.json"
REPO = HERE.parent.parent
SOLUTION = REPO / "reference" / "linear_networks.ipynb"
BLANK = REPO / "exercises" / "linear_networks.ipynb"
# The notebook's own demo trainings, cut to one epoch of large batches.
DEMO_CUTS = [("lr, batch_size, num_epochs = 0.1, 256, 3",
              "lr, batch_size, num_epochs = 0.1, 6000, 1"),
             ("batches(data.train_images, data.train_labels, 256, True, generator)",
              "batches(data.train_images, data.train_labels, 6000, True, generator)")]

SOFTMAX = ["softmax", "softmax_training"]  # softmax and what trains with it
QUIZ = ["quiz"]  # read from the notebook's text: it needs no kernel
ALL = ["*"]

@dataclass
class Case:
    name: str
    what: str
    build: Callable[[], bytes | nbformat.NotebookNode] = field(repr=False)
    passes: list[str] = field(default_factory=list)
    fails: list[str] = field(default_factory=list)
    may: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    xfail: str | None = None
    needs_bwrap: bool = False
    separate: bool = False
    max_seconds: float | None = None

    @property
    def outcome(self) -> str:
        if self.passes == ALL and not self.fails:
            return "full score"
        if not self.passes and not self.may:
            return "zero"
        return "honest partial"

    def row(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if k != "build"}
        return {"name": row.pop("name"), "outcome": self.outcome, **row}


# --- building blocks ---------------------------------------------------------------------

def code(source: str) -> str:
    return source.strip("\n") + "\n"


def solution() -> nbformat.NotebookNode:
    notebook = nbformat.read(SOLUTION, as_version=4)
    assert any(DEMO_CUTS[0][0] in c.source for c in notebook.cells), \
        "the solution's demo training changed: update DEMO_CUTS"
    for cell in notebook.cells:
        for old, new in DEMO_CUTS:
            cell.source = cell.source.replace(old, new)
    return notebook


def blank() -> nbformat.NotebookNode:
    return nbformat.read(BLANK, as_version=4)


def setup_index(notebook: nbformat.NotebookNode) -> int:
    for index, cell in enumerate(notebook.cells):
        if "setup" in cell.metadata.get("tags", []):
            return index
    raise AssertionError("no cell tagged setup")


def new_cell(source: str) -> nbformat.NotebookNode:
    """A code cell with a fixed id, so that regenerating the corpus changes no file."""
    cell = nbformat.v4.new_code_cell(code(source))
    cell.id = "hostile-cell"
    return cell


def after_setup(source: str, base: Callable[[], nbformat.NotebookNode] = solution):
    """The base notebook with one more code cell right after its setup cell."""
    def build() -> nbformat.NotebookNode:
        notebook = base()
        notebook.cells.insert(setup_index(notebook) + 1, new_cell(source))
        return notebook
    return build


def at_end(source: str, base: Callable[[], nbformat.NotebookNode] = solution):
    """The base notebook with one more code cell after its last code cell."""
    def build() -> nbformat.NotebookNode:
        notebook = base()
        last = max(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
        notebook.cells.insert(last + 1, new_cell(source))
        return notebook
    return build


def replacing(name: str, source: str, base: Callable[[], nbformat.NotebookNode] = solution):
    """The base notebook with the cell that defines `name` replaced by `source`."""
    def build() -> nbformat.NotebookNode:
        notebook = base()
        cells = [c for c in notebook.cells
                 if c.cell_type == "code" and re.search(rf"^def {name}\(", c.source, re.M)]
        assert len(cells) == 1, f"one cell must define {name}"
        cells[0].source = code(source)
        return notebook
    return build


def raw(data: bytes):
    return lambda: data


def solution_json() -> str:
    return nbformat.writes(solution())


# --- the sources of the hostile cells ------------------------------------------------------

SOFTMAX_OK = """
def softmax(X):
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(dim=1, keepdim=True)
"""

FORK_BOMB = """
import os
import resource

# The bomb is real only under a process cap; without one it refuses, so that a machine
# without the sandbox's limits is not taken down by its own test suite.
soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
if soft == resource.RLIM_INFINITY or soft > 4096:
    raise RuntimeError(f"refusing to fork-bomb: no process cap here (RLIMIT_NPROC={soft})")
while True:
    os.fork()
"""

FAKE_PRINTS = """
print("Running the autograder tests...")
for name in ["data_iter", "squared_loss", "sgd", "softmax", "cross_entropy", "accuracy"]:
    print(f"  {name}: PASSED")
print("All tests passed. Score: 44 / 44")
"""

FAKE_FILES = """
import glob
import json
import os

fake = {"student": "me", "score": 44, "max_score": 44, "tests": [], "errors": []}
targets = ["results.json", "../results.json", os.path.expanduser("~/results.json"),
           "/tmp/results.json"]
for pattern in ["/tmp/**/results.json", "/work/**/results.json", "/root/**/results.json",
                "/home/**/results.json"]:
    targets += glob.glob(pattern, recursive=True)
written = []
for target in targets:
    try:
        with open(target, "w") as handle:
            json.dump(fake, handle)
        written.append(target)
    except OSError:
        pass
for target in ["grades.csv", "../grades.csv"]:
    try:
        with open(target, "w") as handle:
            handle.write("student,score\\nme,44\\n")
    except OSError:
        pass
print("wrote", written)
"""

FORGED_OBSERVATIONS = """
# Forge what the grader's probes record: a trained linear regression with the true weights
# the notebook states, and the reference's softmax parameters that the self-check ships.
import grader.probing as probing
import torch

_record = probing.Probe.record


def _forged(key):
    if key == "linreg.train":
        snapshot = [torch.tensor([[2.0], [-3.4]]), torch.tensor([4.2])]
        return lambda probe: {"snapshots": [snapshot] * 3}
    if key in ("epoch.prepare", "epoch.run"):
        return lambda probe: None
    if key == "epoch.collect":
        import glob
        import os
        for path in glob.glob(os.path.join(os.path.dirname(probing.__file__), "public", "*.pt")):
            public = torch.load(path, weights_only=True)
            reference = public["reference"]["epoch.collect"]["value"]
            return lambda probe: reference
    return None


def record(self, key, probe, seed=0):
    return _record(self, key, _forged(key) or probe, seed)


probing.Probe.record = record
"""

GRADIENT_ASCENT = """
def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param += lr * param.grad / batch_size
            param.grad.zero_()
"""

ZERO_LOSS = """
def cross_entropy(y_hat, y):
    return torch.zeros(len(y_hat))
"""

READ_REFERENCE = """
import glob

from grader import paths

candidates = [str(paths.REFERENCE / "linear_networks.ipynb")]
for root in ["/work", "/root", "/home", "/srv", "/opt", "/usr/src", "/tmp"]:
    candidates += glob.glob(f"{root}/**/reference/*.ipynb", recursive=True)
stolen = None
for path in candidates:
    try:
        stolen = open(path).read()
        break
    except OSError as error:
        last_error = error
if stolen is None:
    raise FileNotFoundError(f"no reference solution readable; tried {candidates}: {last_error}")
import nbformat

for cell in nbformat.reads(stolen, as_version=4).cells:
    if "solution" in cell.metadata.get("tags", []):
        exec(cell.source)
"""

READ_REFERENCE_FROM_GRADER = """
from grader.reference import reference_functions

globals().update(reference_functions("linear_networks"))
"""

READ_OTHERS = """
import glob
import json

found = []
for root in ["/tmp", "/work", "/root", "/home", "/srv", "/mnt", "/var/tmp"]:
    found += glob.glob(f"{root}/**/*.ipynb", recursive=True)
solutions = []
for path in found:
    try:
        cells = json.load(open(path))["cells"]
    except Exception:
        continue
    for cell in cells:
        text = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "code" and "def softmax" in text \\
                and "NotImplementedError" not in text:
            solutions.append(path)
            exec(text)
if not solutions:
    raise FileNotFoundError(f"no other submission to copy: looked at {found}")
"""

TAMPER_GRADER = """
import grader
import os

folder = os.path.dirname(grader.__file__)
for name in ["checks.py", "grade.py", "observations.py", "exercises/softmax.py"]:
    with open(os.path.join(folder, name), "a") as handle:
        handle.write("\\n# all tests pass\\n")
"""

PATCH_ALLCLOSE = """
import math

import torch

import grader.checks

torch.allclose = lambda *args, **kwargs: True
torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
math.isclose = lambda *args, **kwargs: True
for name in dir(grader.checks):
    if name.startswith("expect_"):
        setattr(grader.checks, name, lambda *args, **kwargs: None)


def softmax(X):
    return X
"""

PATCH_EQUAL = """
import torch

torch.equal = lambda *args, **kwargs: True


def softmax(X):
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    out = X_exp / X_exp.sum(dim=1, keepdim=True)
    with torch.no_grad():
        X.zero_()  # wrecks the caller's tensor: the check that X is left unchanged must fail
    return out
"""

KILL_MID_GRADING = """
import os

import torch


def softmax(X):
    if X.dtype == torch.float64:
        os._exit(1)  # the grader's float64 probe: the kernel dies in the middle of grading
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(dim=1, keepdim=True)
"""

BLOCK_SIGNALS = """
import signal
import time


def softmax(X):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGINT})
    time.sleep(10**6)
"""

WIPE_WORKDIR = """
import glob
import os
import shutil

for path in glob.glob(os.path.expanduser("~/.*")) + glob.glob(os.path.expanduser("~/*")):
    try:
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) \\
            else os.remove(path)
    except OSError:
        pass
print(os.listdir(os.path.expanduser("~")))
"""

SURROGATE_ERROR = """
raise ValueError("bad bytes from a file: \\udcff\\udcfe and a NUL \\x00")
"""

SURROGATE_IN_PROBE = """
def accuracy(y_hat, y):
    raise ValueError("undecodable \\udcff in the labels")
"""

MALFORMED_CELL = json.dumps({
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [{"cell_type": "code", "source": 5, "metadata": {}, "outputs": [],
               "execution_count": None}]}).encode()


def not_utf8() -> bytes:
    """The solution saved in Windows-1252: its em dashes become byte 0x97."""
    return solution_json().encode("cp1252", errors="replace")


def old_nbformat() -> bytes:
    return nbformat.writes(nbformat.convert(solution(), 3), version=3).encode()


def markdown_only() -> nbformat.NotebookNode:
    notebook = solution()
    notebook.cells = [c for c in notebook.cells if c.cell_type != "code"]
    return notebook


# --- the cases -----------------------------------------------------------------------------

DIED = "kernel died"
RERUN = "again in a fresh kernel without it"  # a cell that stopped the kernel is passed over
NOT_READABLE = "not a readable notebook"

CASES = [
    # Files the grader cannot read: every test fails, saying why.
    Case("invalid_json", "the solution cut off half-way: not valid JSON",
         raw(solution_json()[:4000].encode()), words=[NOT_READABLE]),
    Case("not_a_notebook", "valid JSON that is not a notebook",
         raw(json.dumps({"student": "alice", "answers": {"softmax": "C"}}).encode()),
         words=[NOT_READABLE]),
    Case("python_script", "a Python script saved as .ipynb",
         raw(b"import torch\n\ndef softmax(X):\n    return X.softmax(1)\n"),
         words=[NOT_READABLE]),
    Case("empty", "an empty file", raw(b""), words=[NOT_READABLE]),
    Case("not_utf8", "the solution saved as Windows-1252, not UTF-8", not_utf8,
         words=["not UTF-8"]),
    Case("future_nbformat", "a notebook claiming nbformat 5",
         raw(json.dumps({"nbformat": 5, "nbformat_minor": 0, "metadata": {},
                         "cells": []}).encode()), words=["Unsupported nbformat version 5"]),
    Case("malformed_cell", "a code cell whose source is a number, not text",
         raw(MALFORMED_CELL), words=["defines no function | not a readable notebook"]),
    # Readable notebooks that define nothing or the wrong things.
    Case("old_nbformat", "the solution saved as nbformat 3 (upgraded and graded normally)",
         old_nbformat, passes=ALL),
    Case("no_code_cells", "the solution's markdown only: no code cells (the quiz answer is "
         "markdown, so it still counts)", markdown_only, passes=QUIZ,
         words=["defines no function named 'softmax'"]),
    Case("syntax_error", "softmax's cell does not parse",
         replacing("softmax", "def softmax(X)\n    return X.exp() / X.exp().sum(1)\n"),
         passes=ALL, fails=SOFTMAX,
         words=["SyntaxError", "defines no function named 'softmax'"]),
    Case("blank_left", "softmax left as the exercise gave it",
         replacing("softmax", "def softmax(X):\n    raise NotImplementedError()\n"),
         passes=ALL, fails=SOFTMAX, words=["not implemented"]),
    Case("renamed_function", "cross_entropy renamed to cross_entropy_loss",
         replacing("cross_entropy", "def cross_entropy_loss(y_hat, y):\n"
                   "    return -torch.log(y_hat[range(len(y_hat)), y])\n"),
         passes=ALL, fails=["cross_entropy", "softmax_training"],
         words=["defines no function named 'cross_entropy'"]),
    Case("wrong_signature", "squared_loss takes one argument instead of two",
         replacing("squared_loss", "def squared_loss(y_hat):\n    return y_hat ** 2 / 2\n"),
         passes=ALL, fails=["squared_loss", "linreg_training"], words=["positional argument"]),
    Case("wrong_type", "accuracy returns a string",
         replacing("accuracy", "def accuracy(y_hat, y):\n"
                   "    return str(float((y_hat.argmax(1) == y.reshape(-1)).float().mean()))\n"),
         passes=ALL, fails=["accuracy"], words=["must be a number"]),
    Case("wrong_shape", "softmax returns its result transposed",
         replacing("softmax", SOFTMAX_OK + "\n\n_softmax = softmax\n\n\n"
                   "def softmax(X):\n    return _softmax(X).T\n"),
         passes=[*ALL, "softmax.leaves_its_input_unchanged"], fails=SOFTMAX,
         words=["has shape"]),
    Case("returns_nan", "squared_loss returns NaN of the right shape",
         replacing("squared_loss", "def squared_loss(y_hat, y):\n"
                   "    return y_hat * float('nan')\n"),
         passes=[*ALL, "squared_loss.returns_per_example_losses"],
         fails=["squared_loss", "linreg_training"], words=["NaN"]),
    Case("huge_tensor", "softmax returns a 2 GB tensor",
         replacing("softmax", "def softmax(X):\n    return torch.ones(2**29)\n"),
         passes=ALL, fails=SOFTMAX, words=["too large | can't allocate memory"]),
    Case("huge_view", "softmax returns a 2 GB tensor that is a view of one number (expand)",
         replacing("softmax", "def softmax(X):\n    return torch.zeros(1).expand(2**29)\n"),
         passes=[*ALL, "softmax.leaves_its_input_unchanged"], fails=SOFTMAX,
         words=["too large"]),
    Case("sys_exit_in_blank", "accuracy calls sys.exit()",
         replacing("accuracy", "import sys\n\n\ndef accuracy(y_hat, y):\n    sys.exit(1)\n"),
         passes=ALL, fails=["accuracy", "softmax_training"], words=["SystemExit"]),
    Case("surrogate_in_probe", "accuracy raises an error whose text is not valid Unicode",
         replacing("accuracy", SURROGATE_IN_PROBE),
         passes=ALL, fails=["accuracy", "softmax_training"], words=["undecodable"]),
    # Code that never ends, or ends the kernel.
    Case("infinite_loop_top", "`while True: pass` at top level", after_setup("while True:\n"
         "    pass\n"), passes=ALL, words=["ran longer than"]),
    Case("infinite_loop_in_blank", "softmax loops forever",
         replacing("softmax", "def softmax(X):\n    while True:\n        pass\n"),
         passes=ALL, fails=SOFTMAX, words=["did not return within"]),
    Case("sleep_forever", "time.sleep(10**6) at top level",
         after_setup("import time\n\ntime.sleep(10**6)\n"), passes=ALL,
         words=["ran longer than"]),
    Case("blocks_signals_in_blank", "softmax blocks SIGALRM and SIGINT, then sleeps forever",
         replacing("softmax", BLOCK_SIGNALS), passes=ALL, fails=SOFTMAX,
         words=["ignored the interrupt", "fresh kernel"], max_seconds=240),
    Case("sys_exit", "sys.exit() at top level", after_setup("import sys\n\nsys.exit()\n"),
         passes=ALL, words=["SystemExit"]),
    Case("os_exit", "os._exit(0) at top level", after_setup("import os\n\nos._exit(0)\n"),
         passes=ALL, words=[DIED, RERUN]),
    Case("kill_parent", "kills its parent process",
         after_setup("import os\nimport signal\n\nos.kill(os.getppid(), signal.SIGKILL)\n"),
         passes=ALL, words=[DIED, RERUN], needs_bwrap=True),
    Case("kill_everything", "kill -9 -1: every process it may signal",
         after_setup("import os\nimport signal\n\nos.kill(-1, signal.SIGKILL)\n"),
         passes=ALL, words=[DIED, RERUN], needs_bwrap=True),
    Case("segfault", "a segfault through ctypes", after_setup("import ctypes\n\n"
         "ctypes.string_at(0)\n"), passes=ALL, words=[DIED, RERUN]),
    Case("kernel_dies_mid_grading", "softmax kills the kernel on the grader's float64 probe",
         replacing("softmax", KILL_MID_GRADING),
         # softmax's later probes, and the epoch that calls softmax, are not run again; the
         # rest run in a fresh kernel.
         passes=ALL, fails=["softmax.keeps_shape_and_dtype", "softmax.softmax_gradient_matches",
                            "softmax_training"],
         words=[DIED, "fresh kernel"]),
    # Resources.
    Case("memory_bomb", "a top-level loop that allocates until it cannot",
         after_setup("hog = []\nwhile True:\n    hog.append(bytearray(2**26))\n"),
         passes=QUIZ, may=["*"], words=["MemoryError | kernel died"]),
    Case("memory_bomb_in_blank", "softmax allocates until it cannot",
         replacing("softmax", "def softmax(X):\n    hog = []\n    while True:\n"
                   "        hog.append(bytearray(2**26))\n"),
         passes=ALL, fails=SOFTMAX, words=["MemoryError"]),
    Case("fork_bomb", "while True: os.fork() (refuses to run without a process cap)",
         after_setup(FORK_BOMB), passes=QUIZ, may=["*"],
         words=["ran longer than | kernel died | BlockingIOError"], needs_bwrap=True,
         separate=True),
    Case("huge_file", "writes a file until the file-size limit stops it",
         after_setup("with open('big.bin', 'wb') as handle:\n    while True:\n"
                     "        handle.write(bytes(2**20))\n"),
         passes=ALL, words=["File too large"]),
    Case("output_100mb", "prints 100 MB", after_setup("for _ in range(100):\n"
         "    print('x' * 2**20)\n"), passes=ALL, words=["more output than the grader keeps"]),
    Case("surrogate_error", "a cell raises an error whose text is not valid Unicode",
         after_setup(SURROGATE_ERROR), passes=ALL, words=["ValueError"]),
    # Cheating and escaping.
    Case("fake_prints", "the blank notebook printing that every test passed",
         at_end(FAKE_PRINTS, blank), words=["not implemented"]),
    Case("fake_results_files", "the blank notebook writing results.json and grades.csv "
         "wherever it can", at_end(FAKE_FILES, blank), words=["not implemented"]),
    Case("forged_observations", "the blank notebook patching the grader's probe recorder to "
         "report a perfect training", after_setup(FORGED_OBSERVATIONS, blank),
         words=["not implemented"]),
    Case("forged_training", "sgd climbing the gradient and cross_entropy returning zeros, "
         "with the probe recorder patched as in forged_observations",
         after_setup(FORGED_OBSERVATIONS, replacing("sgd", GRADIENT_ASCENT,
                                                    replacing("cross_entropy", ZERO_LOSS))),
         passes=ALL, fails=["linreg_training", "softmax_training"], may=["sgd", "cross_entropy"],
         words=["hidden data's true w", "KeyError"]),
    Case("read_reference", "the blank notebook reading reference/ and running its solution",
         at_end(READ_REFERENCE, blank), words=["no reference solution readable"],
         needs_bwrap=True),
    Case("reference_via_grader", "the blank notebook calling grader.reference for the solution",
         at_end(READ_REFERENCE_FROM_GRADER, blank), words=["No such file"], needs_bwrap=True),
    Case("read_other_submissions", "the blank notebook searching the disk for other students' "
         "notebooks to copy", at_end(READ_OTHERS, blank), words=["no other submission to copy"],
         needs_bwrap=True),
    Case("tamper_grader", "the blank notebook appending to the grader's own source files",
         at_end(TAMPER_GRADER, blank), words=["Read-only file system | Permission denied"]),
    Case("network", "opens a socket to the internet",
         after_setup("import socket\n\nsocket.create_connection(('1.1.1.1', 53), timeout=5)\n"),
         passes=ALL, words=["Network is unreachable"], needs_bwrap=True),
    Case("patch_allclose", "torch.allclose = lambda *a, **k: True and similar patches, "
         "with softmax returning its input", replacing("softmax", PATCH_ALLCLOSE),
         passes=[*ALL, "softmax.leaves_its_input_unchanged"],
         fails=["softmax", "softmax_training.reaches_the_test_accuracy"],
         may=["softmax_training.epoch_is_fast_enough"], words=["differs from the reference"]),
    Case("patch_equal", "torch.equal patched to hide that softmax overwrites its input",
         replacing("softmax", PATCH_EQUAL),
         passes=ALL, fails=["softmax.leaves_its_input_unchanged"],
         may=["softmax.softmax_gradient_matches"], words=["modified X in place"]),
    Case("pip_install", "%pip install d2l, then imports it",
         after_setup("%pip install d2l\nimport d2l\n"), passes=ALL,
         words=["No module named 'd2l' | ran longer than"], needs_bwrap=True),
    Case("shell_lines", "`!` shell lines poking around the system",
         after_setup("!id\n!ls / /work /root\n!cat /etc/hostname\n!ls ~\n"), passes=ALL,
         needs_bwrap=True),
    Case("wipe_workdir", "deletes everything in its work folder: kernel connection file, "
         "sockets, IPython's folder", at_end(WIPE_WORKDIR), passes=ALL),
]


def write(case: Case, folder: Path) -> Path:
    made = case.build()
    data = made if isinstance(made, bytes) else nbformat.writes(made).encode()
    path = folder / f"{case.name}.ipynb"
    path.write_bytes(data)
    return path


def main(folder: Path = CORPUS, manifest: Path = MANIFEST) -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for case in CASES:
        write(case, folder)
    manifest.write_text(json.dumps([case.row() for case in CASES], indent=1,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(CASES)} cases written to {folder}")


if __name__ == "__main__":
    main()
