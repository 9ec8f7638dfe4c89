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
  max_seconds  the grading of this case must not take longer (wedged kernels),
  max_epoch_ratio  graded apart, in a batch of its own with this epoch-time ratio (the main
          batch's 50x, generous for a shared two-core box, would let a slowed epoch pass).
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
# The test course: every exercise of the bundled course in one notebook (tests/course).
SOLUTION = REPO / "tests" / "course" / "reference" / "linear_networks.ipynb"
BLANK = REPO / "tests" / "course" / "exercises" / "linear_networks.ipynb"
# The notebook's own demo trainings, cut to one epoch of large batches.
DEMO_CUTS = [("lr, batch_size, num_epochs = 0.1, 256, 3",
              "lr, batch_size, num_epochs = 0.1, 6000, 1"),
             ("batches(fashion.train_images, fashion.train_labels, 256, True, generator)",
              "batches(fashion.train_images, fashion.train_labels, 6000, True, generator)")]

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
    max_epoch_ratio: float | None = None

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


def new_cell(source: str, cell_id: str = "hostile-cell") -> nbformat.NotebookNode:
    """A code cell with a fixed id, so that regenerating the corpus changes no file."""
    cell = nbformat.v4.new_code_cell(code(source))
    cell.id = cell_id
    return cell


def after_setup(source: str, base: Callable[[], nbformat.NotebookNode] = solution,
                cell_id: str = "hostile-cell"):
    """The base notebook with one more code cell right after its setup cell (`cell_id`
    another id where the base already has a hostile cell)."""
    def build() -> nbformat.NotebookNode:
        notebook = base()
        notebook.cells.insert(setup_index(notebook) + 1, new_cell(source, cell_id))
        return notebook
    return build


def at_end(source: str, base: Callable[[], nbformat.NotebookNode] = solution,
           cell_id: str = "hostile-cell"):
    """The base notebook with one more code cell after its last code cell."""
    def build() -> nbformat.NotebookNode:
        notebook = base()
        last = max(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
        notebook.cells.insert(last + 1, new_cell(source, cell_id))
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
import grader.kernel.probing as probing
import torch

_record = probing.Probe.record


def _forged(key):
    if key == "linreg.train":
        snapshot = [torch.tensor([[2.0], [-3.4]]), torch.tensor([4.2])]
        return lambda probe: {"snapshots": [snapshot] * 3}
    if key == "epoch.prepare":
        return lambda probe: None
    if key == "epoch.run":
        import glob
        import os
        package = os.path.dirname(os.path.dirname(probing.__file__))
        for path in glob.glob(os.path.join(package, "course", "public", "*.pt")):
            public = torch.load(path, weights_only=True)
            if "epoch.run" in public["reference"]:
                reference = public["reference"]["epoch.run"]["value"]
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

from grader.authoring import course

names = ["preliminaries", "linear_regression", "softmax_regression", "linear_networks"]
candidates = [str(folder / f"{name}.ipynb") for name in names
              for folder in (course.BUNDLED.reference, course.current().reference)]
for root in ["/work", "/root", "/home", "/srv", "/opt", "/usr/src", "/tmp", "/usr/local/lib",
             str(course.BUNDLED.root.parent)]:
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
from grader.grading.reference import reference_functions

from grader.authoring import course

for name in ("preliminaries", "linear_regression", "softmax_regression"):
    globals().update(reference_functions(name, course.BUNDLED.reference))
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

import grader.grading.checks
import grader.grading.expect

torch.allclose = lambda *args, **kwargs: True
torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
math.isclose = lambda *args, **kwargs: True
for module in (grader.grading.checks, grader.grading.expect):  # the framework and its assertions
    for name in dir(module):
        if name.startswith("expect_"):
            setattr(module, name, lambda *args, **kwargs: None)


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


# --- attacks on the boundary: the kernel's folder, its channel, the probes' code ------------
# Where a link planted by a kernel points: a canary folder on the host that the test makes
# (kernels see a private /tmp, so only a grader following the link could reach it). The test
# adds a canary of its own to this line in the copies it grades.
CANARY = "/tmp/dl-grader-canary"
CANARY_LINE = f"CANARIES = [{CANARY!r}]"

SWAP_KERNEL_FOLDER = CANARY_LINE + r'''
# A thread watches the work folder and its parent with inotify and swaps, atomically, every
# entry the grader might make there for a link: folders to a canary folder on the host,
# files to the Fashion-MNIST cache. Links and FIFOs wait under the names a grader used to
# read and write, and the channel's folder (../ipc) and its sockets are renamed if they can be.
import ctypes
import os
import struct
import threading

libc = ctypes.CDLL(None, use_errno=True)
HOME = os.path.realpath(os.path.expanduser("~"))
PARENT = os.path.dirname(HOME)
IPC = os.path.join(PARENT, "ipc")
DATA = os.environ.get("FASHION_MNIST_DIR", "/nonexistent")
DATA_FILE = os.path.join(DATA, "train-images-idx3-ubyte")
IN_CREATE, IN_MOVED_TO, IN_ISDIR = 0x100, 0x80, 0x40000000
SYS_RENAMEAT2, AT_FDCWD, RENAME_EXCHANGE = 316, -100, 2  # x86_64
OWN = (".ipython", ".matplotlib", ".cache", ".config", ".local", ".torchinductor", ".triton",
       ".swap-")
done, refused, mine = [], [], set()


def exchange(new, old):
    """renameat2(RENAME_EXCHANGE): both names stay, their entries trade places at once."""
    result = libc.syscall(ctypes.c_long(SYS_RENAMEAT2), ctypes.c_int(AT_FDCWD), new.encode(),
                          ctypes.c_int(AT_FDCWD), old.encode(), ctypes.c_uint(RENAME_EXCHANGE))
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), old)


def swap(folder, name, is_dir):
    path = os.path.join(folder, name)
    link = os.path.join(HOME, f".swap-{len(mine)}")
    mine.add(name)
    try:
        os.symlink(CANARIES[len(done) % len(CANARIES)] if is_dir else DATA_FILE, link)
        try:
            exchange(link, path)
        except OSError:
            os.rename(link, path)
        done.append(f"swapped {path}")
    except OSError as error:
        refused.append(f"swap {path}: {error}")


def watch(fd, folders):
    """Swap every new entry that is not this notebook's own (its swaps make events too)."""
    while True:
        events = os.read(fd, 65536)
        offset = 0
        while offset < len(events):
            wd, mask, _, length = struct.unpack_from("iIII", events, offset)
            name = events[offset + 16 : offset + 16 + length].split(b"\0")[0]
            offset += 16 + length
            name = name.decode(errors="replace")
            if name and name not in mine and not (folders[wd] == HOME and name.startswith(OWN)):
                swap(folders[wd], name, bool(mask & IN_ISDIR))


def watched():
    fd, folders = libc.inotify_init1(0), {}
    for folder in (HOME, PARENT, IPC):
        wd = libc.inotify_add_watch(fd, folder.encode(), IN_CREATE | IN_MOVED_TO)
        if wd < 0:
            refused.append(f"watch {folder}: {os.strerror(ctypes.get_errno())}")
        else:
            folders[wd] = folder
    return fd, folders


def attempt(what, action, *args):
    try:
        action(*args)
        done.append(what)
    except OSError as error:
        refused.append(f"{what}: {error}")


mine.update(["inputs.pt", "observations.pt", ".grader-y", "observations.pt.partial",
             ".grader-x", "results.json", "ipc-link", "ipc-moved"])
threading.Thread(target=watch, args=watched(), daemon=True).start()
for name, target in [("inputs.pt", CANARIES[0] + "/inputs.pt"), ("observations.pt", DATA_FILE),
                     (".grader-y", CANARIES[-1])]:
    attempt(f"link {name}", os.symlink, target, os.path.join(HOME, name))
for name in ["observations.pt.partial", ".grader-x", "results.json"]:
    attempt(f"fifo {name}", os.mkfifo, os.path.join(HOME, name))
for name in ["inputs.pt", "observations.pt"]:
    attempt(f"fifo ../{name}", os.mkfifo, os.path.join(PARENT, name))
attempt("rename ../ipc", os.rename, IPC, IPC + "-moved")
attempt("link for ../ipc", os.symlink, CANARIES[0], os.path.join(HOME, "ipc-link"))
attempt("swap ../ipc for the link", exchange, os.path.join(HOME, "ipc-link"), IPC)
for name in sorted(os.listdir(IPC)) if os.path.isdir(IPC) else []:
    attempt(f"rename ../ipc/{name}", os.rename, os.path.join(IPC, name),
            os.path.join(HOME, name))
print("done:", done)
if refused:
    raise PermissionError("refused: " + "; ".join(refused))
'''

FIFO_AND_LINKS = CANARY_LINE + r'''
# The cheap variant: FIFOs, links and hard links at every path a grader could read back, in
# the work folder, a folder named like the grader's old probe folder, the kernel's folder
# and the channel's folder.
import os

HOME = os.path.realpath(os.path.expanduser("~"))
PARENT = os.path.dirname(HOME)
DATA = os.environ.get("FASHION_MNIST_DIR", "/nonexistent")
NAMES = ["inputs.pt", "observations.pt", "observations.pt.partial", "results.json",
         "report.html", "grades.csv", "kernel.json"]
done, refused = [], []


def attempt(what, action, *args):
    try:
        action(*args)
        done.append(what)
    except OSError as error:
        refused.append(f"{what}: {error}")


os.makedirs(os.path.join(HOME, ".grader-trap"), exist_ok=True)
for folder in (HOME, os.path.join(HOME, ".grader-trap"), PARENT, os.path.join(PARENT, "ipc")):
    for name in NAMES:
        attempt(f"fifo {folder}/{name}", os.mkfifo, os.path.join(folder, name))
data_files = sorted(os.listdir(DATA)) if os.path.isdir(DATA) else []
for number, target in enumerate([*CANARIES, DATA, *(os.path.join(DATA, n) for n in data_files)]):
    attempt(f"link to {target}", os.symlink, target, os.path.join(HOME, f"link-{number}"))
    attempt(f"hard link to {target}", os.link, target, os.path.join(HOME, f"hard-{number}"))
print("done:", done)
raise PermissionError("refused: " + "; ".join(refused))
'''

# Observations as the grader must not read them: each message replaced by one built by the
# notebook. The patches also cover the previous grader's Probe.save (one file at the end).
DAG_OBSERVATION = r'''
# Every observation goes back as a pickled DAG of shared lists: 3.9 KB that stand for
# 216**6 (about 100**7) leaves to whoever walks them as a tree; six levels, so that the
# leaves lie within the grader's depth cap and only the sharing gives it away.
import base64
import io

import torch
from IPython.display import publish_display_data

import grader.kernel.probing as probing


def dag(levels=6, width=216):
    node = [0] * width
    for _ in range(levels - 1):
        node = [node] * width
    return node


def forged(keys):
    buffer = io.BytesIO()
    torch.save({key: {"ok": True, "value": dag()} for key in keys}, buffer)
    return buffer.getvalue()


def publish(key, entry):
    message = base64.b64encode(forged([key])).decode()
    publish_display_data({probing.OBSERVATION_MIME: message})


probing.publish_observation = publish
if hasattr(probing.Probe, "save"):  # the previous grader read one file at the end
    probing.Probe.save = lambda self: open(self.output, "wb").write(forged(self.observations))
print(len(forged(["softmax.values"])), "bytes for", 216**6, "leaves")
'''

ZIP_BOMB_OBSERVATION = r'''
# Every observation goes back as a torch file whose records are deflated: its tensor record,
# 2 GiB of zeros, takes 2 MB. The deflate stream repeats one block, so making it is cheap.
import base64
import io
import struct
import zipfile
import zlib

import torch
from IPython.display import publish_display_data

import grader.kernel.probing as probing

SMALL, CHUNK, CHUNKS = 7_777_777, 2**24, 128  # 128 chunks of 16 MiB: 2 GiB inflated


def deflated_zeros():
    """A raw deflate stream of CHUNKS * CHUNK zero bytes, and its CRC."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(CHUNK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = 0, bytes(CHUNK)
    for _ in range(CHUNKS):
        crc = zlib.crc32(zeros, crc)
    return block * CHUNKS + compressor.flush(), crc


def records(key):
    """The records of a torch file holding one tensor of SMALL elements, its pickle patched
    to claim the bomb's 2 GiB."""
    buffer = io.BytesIO()
    torch.save({key: {"ok": True, "value": torch.zeros(SMALL)}}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith("data.pkl"):
                big = struct.pack("<i", CHUNKS * CHUNK // 4)
                data = data.replace(struct.pack("<i", SMALL), big)
            yield info.filename, data


def deflated(data):
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


def bomb(key):
    """A zip written by hand: every record deflated, the tensor's one the bomb."""
    out, central = io.BytesIO(), []
    for name, data in records(key):
        if name.endswith("/data/0"):
            (stream, crc), size = deflated_zeros(), CHUNKS * CHUNK
        else:
            stream, crc, size = deflated(data)
        offset, encoded = out.tell(), name.encode()
        fields = struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0, crc, len(stream), size,
                             len(encoded), 0)
        out.write(b"PK\x03\x04" + fields + encoded + stream)
        central.append(b"PK\x01\x02" + struct.pack("<H", 20) + fields
                       + struct.pack("<HHHII", 0, 0, 0, 0, offset) + encoded)
    start = out.tell()
    out.write(b"".join(central))
    count, size = len(central), out.tell() - start
    out.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, size, start, 0))
    return out.getvalue()


BOMB = bomb("softmax.values")
MESSAGE = base64.b64encode(BOMB).decode()


def publish(key, entry):
    publish_display_data({probing.OBSERVATION_MIME: MESSAGE})


probing.publish_observation = publish
if hasattr(probing.Probe, "save"):  # the previous grader read one file at the end
    probing.Probe.save = lambda self: open(self.output, "wb").write(BOMB)
print(len(BOMB), "bytes that inflate to", CHUNKS * CHUNK)
'''

STRIDE_ZERO_VIEW = r'''
# Every tensor in every observation becomes torch.zeros(1).expand(50_000_000): 4 bytes on
# the wire, 50 million elements (200 MB) to whoever reads it as dense.
import torch

import grader.kernel.probing as probing


def views(value):
    if isinstance(value, dict):
        return {key: views(item) for key, item in value.items()}
    if isinstance(value, list):
        return [views(item) for item in value]
    return torch.zeros(1).expand(50_000_000)


def forged(entry):
    return {"ok": True, "value": views(entry.get("value"))}


_publish = getattr(probing, "publish_observation", None)
probing.publish_observation = lambda key, entry: _publish(key, forged(entry))
if hasattr(probing.Probe, "save"):  # the previous grader read one file at the end
    probing.Probe.save = lambda self: torch.save(
        {key: forged(entry) for key, entry in self.observations.items()}, self.output)
'''

HUGE_MESSAGE = r'''
# One display message of 256 MB of base64 text and 200 of 1 MB, in this cell; in the
# grader's cells 40 junk messages of 1 MB go ahead of the real observations.
from IPython.display import publish_display_data

import grader.kernel.probing as probing


def junk(megabytes):
    return "A" * (megabytes * 2**20)


publish_display_data({probing.OBSERVATION_MIME: junk(256)})
for _ in range(200):
    publish_display_data({probing.OBSERVATION_MIME: junk(1)})
_publish, _sent = getattr(probing, "publish_observation", None), []


def publish(key, entry):
    if not _sent:
        _sent.append(key)
        for _ in range(40):
            publish_display_data({probing.OBSERVATION_MIME: junk(1)})
    _publish(key, entry)


probing.publish_observation = publish
'''

# The reference's answers to the public inputs, shipped for the self-check, give the shape of
# every good answer: the two cases below read them from the grader package.
PUBLIC_ANSWERS = r'''
import glob
import importlib
import os

import torch

import grader


def public_answers():
    folder = os.path.join(os.path.dirname(grader.__file__), "course", "public")
    answers = {}
    for path in glob.glob(os.path.join(folder, "*.pt")):
        answers.update(torch.load(path, weights_only=True)["reference"])
    return {key: entry["value"] for key, entry in answers.items() if entry["ok"]}


def trained(value):
    """The epochs' parameters are shipped as their test accuracy: put parameters back."""
    if isinstance(value, dict) and "test_accuracy" in value:
        value = {**value, "W": torch.zeros(784, 10), "b": torch.zeros(10)}
    return value


def answer_every_probe(answers):
    """Every probe of every table returns its entry of `answers`, or True."""
    for name in ["probability", "autograd", "linreg", "softmax", "concise_linreg",
                 "concise_softmax"]:
        module = importlib.import_module(f"grader.exercises.{name}_probes")
        for table in ("PROBES", "EPOCH_STEPS"):
            probes = getattr(module, table, {})
            for key in probes:
                probes[key] = lambda probe, key=key: answers.get(key, True)
'''

BAD_SIGNATURE = r'''
# One message on the kernel's iopub channel signed with a wrong key: the grader's client can
# only drop it, and must go on grading.
kernel = get_ipython().kernel
pack = kernel.session.pack
frames = [b"<IDS|MSG>", b"0" * 64, pack(kernel.session.msg_header("stream")),
          pack(kernel.get_parent("shell").get("header", {})), pack({}),
          pack({"name": "stdout", "text": "a message the grader cannot verify"})]
kernel.iopub_socket.send_multipart(frames)
'''

CONSTANT_ANSWERS = PUBLIC_ANSWERS + r'''

# Every probe answers a constant shaped like a good answer, the public answer's form with
# its values taken out: flags and counts kept (steps = batches, forward passes in eval
# mode, no carried gradients), every number 0.5, every tensor filled with one value of its
# own (float tensors their mean: rows of 1/k, say). The notebook's functions stay blank.


def constant(value):
    if isinstance(value, torch.Tensor):
        if not value.numel():
            return value.clone()
        fill = value.double().mean() if value.is_floating_point() else value.flatten()[0]
        return torch.full_like(value, fill.item())
    if isinstance(value, dict):
        return {key: constant(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [constant(item) for item in value]
    if isinstance(value, float):
        return 0.5
    return value  # flags, counts, strings, None


answer_every_probe({key: constant(trained(value)) for key, value in public_answers().items()})
'''

PUBLIC_ANSWERS_VERBATIM = PUBLIC_ANSWERS + r'''

# Every probe answers the reference's answer to the public inputs, word for word: right
# wherever a probe's hidden inputs are the public ones. The notebook's functions stay blank.
answer_every_probe({key: trained(value) for key, value in public_answers().items()})
'''

SKIP_BLANK_PROBES = r'''
# No probe of a blank function runs (so no NotImplementedError is ever recorded); the
# training probes are replaced by training done by other means: least squares for linear
# regression's snapshots, torch's own softmax and loss for the timed epoch, nn and optim for
# the concise epoch.
import importlib

import torch
from torch import nn

from grader.kernel.data import as_float, load_fashion_mnist

tables = {}
for name in ["probability", "autograd", "linreg", "softmax", "concise_linreg",
             "concise_softmax"]:
    module = importlib.import_module(f"grader.exercises.{name}_probes")
    for table in ("PROBES", "EPOCH_STEPS"):
        if hasattr(module, table):
            getattr(module, table).clear()
            tables[f"{name}.{table}"] = getattr(module, table)


def least_squares(probe):
    X, y = probe.inputs["train.features"], probe.inputs["train.labels"]
    solution = torch.linalg.lstsq(torch.cat([X, torch.ones(len(X), 1)], 1), y).solution
    w, b = solution[:2].clone(), solution[2].clone()
    return {"snapshots": [[w.clone(), b.clone()] for _ in range(int(probe.inputs["train.epochs"]))]}


def fashion(probe, key):
    data = load_fashion_mnist()
    X, y = as_float(data.train_images).reshape(len(data.train_labels), -1), data.train_labels
    seed = int(probe.inputs[key])
    return X, y, torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))


def prepare(probe):
    load_fashion_mnist()
    return "cpu"


def run(probe):
    """The tutorial's loop with torch.softmax and torch's log in place of the blanks."""
    X, y, order = fashion(probe, "epoch.order_seed")
    W = probe.inputs["epoch.W0"].clone().requires_grad_(True)
    b = torch.zeros(10, requires_grad=True)
    size, lr = int(probe.inputs["epoch.batch_size"]), float(probe.inputs["epoch.lr"])
    losses, accuracies = [], []
    for start in range(0, len(order), size):
        index = order[start : start + size]
        y_hat = torch.softmax(X[index] @ W + b, dim=1)
        loss = -torch.log(y_hat[range(len(index)), y[index]])
        loss.sum().backward()
        with torch.no_grad():
            for param in (W, b):
                param -= lr * param.grad / len(index)
                param.grad.zero_()
        losses.append(loss.detach().mean())
        accuracies.append(float((y_hat.argmax(1) == y[index]).float().mean()))
    return {"W": W.detach(), "b": b.detach(), "losses": torch.stack(losses),
            "accuracies": accuracies}


def concise_epoch(probe):
    X, y, order = fashion(probe, "concise_softmax.order_seed")
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        net[1].weight.copy_(probe.inputs["concise_softmax.W0"])
        net[1].bias.zero_()
    updater = torch.optim.SGD(net.parameters(), lr=float(probe.inputs["concise_softmax.lr"]))
    size, steps = int(probe.inputs["concise_softmax.batch_size"]), 0
    for start in range(0, len(order), size):
        index = order[start : start + size]
        updater.zero_grad()
        nn.CrossEntropyLoss()(net(X[index]), y[index]).backward()
        updater.step()
        steps += 1
    return {"W": net[1].weight.detach().T, "b": net[1].bias.detach(), "batches": steps,
            "passes": steps, "eval_passes": 0, "steps": steps, "carried": 0}


tables["linreg.PROBES"]["linreg.train"] = least_squares
tables["softmax.EPOCH_STEPS"].update({"epoch.prepare": prepare, "epoch.run": run})
tables["concise_softmax.EPOCH_STEPS"]["concise_softmax.epoch"] = concise_epoch
'''

SLOW_HOOK = r'''
# A hook on every cell (pre_run_cell and post_run_cell) that sleeps in the grader's cells,
# longest in a cell of just `None`, the baseline the previous grader subtracted from the
# timed epoch; it also turns on the slow softmax below.
import time

SLOW = []


def before(info):
    source = (info.raw_cell or "").strip()
    if source == "None":
        time.sleep(12)
    elif "_grader_prob" in source:
        SLOW.append(True)
        time.sleep(1)


def after(result):
    if "_grader_prob" in (result.info.raw_cell or ""):
        time.sleep(0.5)


get_ipython().events.register("pre_run_cell", before)
get_ipython().events.register("post_run_cell", after)
'''

SLOW_SOFTMAX = r'''
import time


def softmax(X):
    if SLOW and X.shape[0] >= 1000:
        time.sleep(0.8)  # deliberately slow on the grader's epoch batches
    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)
    return X_exp / X_exp.sum(dim=1, keepdim=True)
'''

FLAG_HOOK = r'''
# Turns on the slow softmax below once the grader's cells run, and sleeps nowhere.
SLOW = []


def before(info):
    if "_grader_prob" in (info.raw_cell or ""):
        SLOW.append(True)


get_ipython().events.register("pre_run_cell", before)
'''

EPOCH_BY_TORCH = r'''
# The slow softmax is left out of the timed epoch: its loop (train_batches) is wrapped to
# run with torch.softmax instead, which trains the same weights, fast.
import grader.exercises.softmax_probes as softmax_probes

_train_batches = softmax_probes.train_batches


def fast_batches(probe, *args, **kwargs):
    saved = probe.functions
    probe.functions = {**saved, "softmax": lambda X: torch.softmax(X, dim=1)}
    try:
        return _train_batches(probe, *args, **kwargs)
    finally:
        probe.functions = saved


softmax_probes.train_batches = fast_batches
'''

EPOCH_IN_PREPARE = r'''
# The whole timed epoch runs in the untimed epoch.prepare, in an order of its own (the
# grader's comes only with the timed cell); epoch.run hands back the cached result at once.
# (The previous grader put the real order in the inputs and collected in a third step.)
import grader.exercises.softmax_probes as softmax_probes

_prepare = softmax_probes.EPOCH_STEPS["epoch.prepare"]
_run = softmax_probes.EPOCH_STEPS["epoch.run"]


def prepare(probe):
    device = _prepare(probe)
    probe.inputs.setdefault("epoch.order_seed", 0)
    probe.state["cached"] = _run(probe)
    return device


softmax_probes.EPOCH_STEPS["epoch.prepare"] = prepare
softmax_probes.EPOCH_STEPS["epoch.run"] = lambda probe: probe.state["cached"]
'''


# --- the cases -----------------------------------------------------------------------------

DIED = "kernel died"
# Known grader problems that several cases run into.
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
         passes=ALL, fails=SOFTMAX,  # leaving X alone counts only beside a value of its shape
         words=["has shape"]),
    Case("returns_nan", "squared_loss returns NaN of the right shape",
         replacing("squared_loss", "def squared_loss(y_hat, y):\n"
                   "    return y_hat * float('nan')\n"),
         passes=ALL, fails=["squared_loss", "linreg_training"],
         may=["squared_loss.returns_per_example_losses"], words=["NaN"]),
    Case("huge_tensor", "softmax returns a 2 GB tensor",
         replacing("softmax", "def softmax(X):\n    return torch.ones(2**29)\n"),
         passes=ALL, fails=SOFTMAX, words=["too large | can't allocate memory"]),
    Case("huge_view", "softmax returns a 2 GB tensor that is a view of one number (expand)",
         replacing("softmax", "def softmax(X):\n    return torch.zeros(1).expand(2**29)\n"),
         passes=ALL, fails=SOFTMAX,  # leaving X alone counts only beside a value of its shape
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
         passes=QUIZ, may=["*"], words=["MemoryError | kernel died | could not authenticate"]),
    Case("memory_bomb_in_blank", "softmax allocates until it cannot",
         replacing("softmax", "def softmax(X):\n    hog = []\n    while True:\n"
                   "        hog.append(bytearray(2**26))\n"),
         passes=ALL, fails=SOFTMAX, words=["MemoryError | kernel died | could not authenticate"]),
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
         words=["hidden data's true w", "KeyError | could not check the value returned"]),
    Case("read_reference", "the blank notebook reading reference/ and running its solution",
         at_end(READ_REFERENCE, blank), words=["no reference solution readable"],
         needs_bwrap=True),
    Case("reference_via_grader",
         "the blank notebook calling grader.grading.reference for the solution",
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
    # The kernel's folder and channel: links, FIFOs and swaps aimed at the host's canaries.
    Case("swap_kernel_folder", "a thread swaps (renameat2 RENAME_EXCHANGE) every entry made "
         "in its work folder or the kernel's folder for a link to a host canary or the "
         "Fashion-MNIST cache; links and FIFOs named inputs.pt, observations.pt(.partial), "
         ".grader-x; renames ../ipc and its sockets", at_end(SWAP_KERNEL_FOLDER), passes=ALL,
         words=["Permission denied"], needs_bwrap=True),
    Case("fifo_and_links", "FIFOs, links and hard links at every path a grader could read "
         "back, aimed at the host's canaries and the Fashion-MNIST cache",
         at_end(FIFO_AND_LINKS), passes=ALL, words=["Permission denied"], needs_bwrap=True),
    # Messages on the kernel's channel that must be refused within bounds.
    Case("dag_observation", "every observation sent as a pickled DAG of shared lists: "
         "3.9 KB standing for 216**6 (about 100**7) leaves", at_end(DAG_OBSERVATION), passes=QUIZ,
         words=["reuses one container"], max_seconds=150),
    Case("zip_bomb_observation", "every observation sent as a 2.8 MB torch file whose "
         "deflated record inflates to 2 GiB", at_end(ZIP_BOMB_OBSERVATION), passes=QUIZ,
         words=["is compressed"], max_seconds=150),
    Case("stride_zero_view", "every tensor sent as torch.zeros(1).expand(50_000_000), past "
         "the probe's own copy", at_end(STRIDE_ZERO_VIEW), passes=QUIZ,
         words=["a view, not dense data"], max_seconds=150),
    Case("huge_message", "a 256 MB display message and 200 of 1 MB in its own cell, 40 junk "
         "messages of 1 MB ahead of the observations in the grader's",
         at_end(HUGE_MESSAGE), passes=ALL, words=["not a torch file"]),
    Case("bad_signature", "one iopub message signed with a wrong key, from a notebook cell",
         at_end(BAD_SIGNATURE), passes=ALL, words=["could not authenticate", RERUN]),
    # The probes' code is the kernel's to patch: what it reports must not earn marks.
    Case("constant_answers", "the blank notebook with every probe of every table answering "
         "constants shaped like good answers: the shipped public answers' flags and counts, "
         "0.5 for every number, tensors filled with one value", at_end(CONSTANT_ANSWERS, blank),
         words=["NotImplementedError"]),
    Case("public_answers", "the blank notebook with every probe answering the reference's "
         "answer to the public inputs, shipped for the self-check",
         at_end(PUBLIC_ANSWERS_VERBATIM, blank), words=["NotImplementedError"]),
    Case("skip_blank_probes", "the blank notebook deleting its blank functions' probes and "
         "training by other means: least squares, torch's softmax, nn and optim",
         at_end(SKIP_BLANK_PROBES, blank), words=["did not all return | never returned it"]),
    Case("epoch_in_prepare", "the timed epoch trained in the untimed epoch.prepare, in an "
         "order of its own; epoch.run returns the cached result at once",
         at_end(EPOCH_IN_PREPARE), passes=ALL, fails=["softmax_training.epoch_is_fast_enough"],
         words=["speed counts only for the epoch the grader timed"]),
    Case("hook_slows_nothing", "pre/post_run_cell hooks that sleep in the grader's cells "
         "(longest in a bare `None`, the previous grader's baseline) and a softmax that "
         "sleeps on the epoch's batches", after_setup(SLOW_HOOK, replacing("softmax",
                                                                           SLOW_SOFTMAX)),
         passes=ALL, fails=["softmax_training.epoch_is_fast_enough"],
         words=["the reference's"], max_epoch_ratio=8.0),
    Case("epoch_without_the_slow_softmax", "a softmax that sleeps on the epoch's batches, and "
         "the epoch's loop patched to train with torch.softmax instead",
         at_end(EPOCH_BY_TORCH, after_setup(FLAG_HOOK, replacing("softmax", SLOW_SOFTMAX)),
                "hostile-cell-2"),
         passes=ALL, fails=["softmax_training.epoch_is_fast_enough"],
         max_epoch_ratio=8.0,
         xfail="the probe code runs in the kernel: an epoch trained by other code than the "
               "student's functions gives the same weights, and the grader can time only the "
               "cell, not whose code ran in it"),
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
