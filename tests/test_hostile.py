"""The hostile corpus (tests/hostile/) graded once, mixed with good submissions.

Every case must come back with a result: its honest score (what its untouched functions
earn), and a report whose notes, cell errors or test messages say plainly what went wrong.
The good submissions keep the solution's marks, no exception reaches the batch's faults,
and the batch finishes. Cases marked xfail in tests/hostile/manifest.json are grader
problems not fixed yet; the summary line counts them honestly.

Where bubblewrap works, a notebook of probes checks the sandbox from the inside: each of its
cells tries something the sandbox must stop, and the error the grader recorded for that
cell (not anything the notebook printed) says whether it was stopped.

Outside the kernels, nothing may change: the cases that plant links aim them at canary
folders on the host (a fixed one and one of this run's) and at the Fashion-MNIST cache,
which a kernel cannot reach but a grader following a link would; their digests, and those
of the submissions, are taken before the batch and compared after it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import stat
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
import pytest
from conftest import FAST, grade_file, write_notebook
from hostile import make_corpus

from grader.authoring.course import BUNDLED
from grader.grading.results import Result
from grader.kernel.data import DataNotFound, find_data_dir
from grader.paths import PACKAGE
from grader.sandbox import bwrap as sandbox
from grader.sandbox import cgroups
from grader.sandbox.bwrap import SandboxSettings, bwrap_works, drops_privileges
from grader.scale.batch import grade_folder

CASES = json.loads(make_corpus.MANIFEST.read_text(encoding="utf-8"))
CASE = {case["name"]: case for case in CASES}
# A uid base of its own: each kernel runs as this base plus an offset below KERNEL_UIDS, far
# from the kernels that other tests start, so counting this range counts this file's kernels.
UID = 3_000_000
KERNEL_UIDS = 2_000_000
SANDBOX = SandboxSettings(memory_mb=4096, cpu_seconds=120, max_file_mb=64, max_processes=256,
                          uid=UID)
# Small limits keep the corpus cheap; the timed epoch is generous on a shared two-core box.
SETTINGS = replace(FAST, cell_timeout=20, total_timeout=90, probe_timeout=5, long_timeout=30,
                   sandbox=SANDBOX).with_options("softmax", max_epoch_ratio=50.0,
                                                 batch_size=6000) \
    .with_options("concise_softmax", batch_size=6000)
MAX_SECONDS = 180  # per submission, unless its case says otherwise
GOOD = ("good_1", "good_2")
PROBE = "sandbox_probe"
# Files a grader that wrote through a kernel's link would overwrite, or add to.
CANARY_FILES = {"secret.txt": b"the grader must never write here\n",
                "inputs.pt": b"not the grader's inputs\n",
                "nested/observations.pt": b"not the kernel's observations\n"}
Snapshot = dict[str, tuple]
TMP = Path(tempfile.gettempdir())  # where kernels' folders are made


@dataclass
class Batch:
    folder: Path
    out: Path
    results: dict[str, Result]
    faults: dict[str, str]
    seconds: float
    cases: list[dict]
    probe_cells: dict[str, int] = field(default_factory=dict)
    listener_port: int = 0
    canaries: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)
    before: Snapshot = field(default_factory=dict)
    after: Snapshot = field(default_factory=dict)
    kernel_owned: list[str] = field(default_factory=list)


@dataclass
class Apart:
    """Cases graded in a batch of their own (another epoch-time ratio)."""

    out: Path
    results: dict[str, Result]
    faults: dict[str, str]


@dataclass
class ForkBomb:
    out: Path
    results: dict[str, Result]
    faults: dict[str, str]
    neighbour: Result | None
    neighbour_fault: str | None
    processes_seen: int


# --- expectations --------------------------------------------------------------------------

def expected(test, case: dict) -> bool | None:
    """Must the test pass (True), fail (False), or may it go either way (None)?"""
    for key in (test.name, test.exercise, "*"):
        for verdict_, names in ((False, case["fails"]), (True, case["passes"]),
                                (None, case["may"])):
            if key in names:
                return verdict_
    return False


def report_text(result: Result) -> str:
    parts = [*result.notes, *(e.error for e in result.errors), *(t.message for t in result.tests)]
    return "\n".join(parts).lower()


def verdict(case: dict, result: Result | None, fault: str | None, out: Path) -> list[str]:
    """What is wrong with how the grader handled this case; empty when all is well."""
    if result is None:
        last = fault.strip().splitlines()[-1] if fault else "no fault recorded either"
        return [f"no result (lost); grader fault: {last}"]
    problems = []
    if not (out / result.student / result.assignment / "report.html").exists():
        problems.append("no report.html written")
    if not result.tests:
        problems.append("the result holds no tests")
    for test in result.tests:
        wanted = expected(test, case)
        if wanted and not test.passed:
            problems.append(f"{test.name} should pass: {test.message[:200]}")
        elif wanted is False and test.passed:
            problems.append(f"{test.name} passed: more than the honest score")
    text = report_text(result)
    for words in case["words"]:
        if not any(word.strip().lower() in text for word in words.split("|")):
            problems.append(f"the report never says {words!r}")
    limit = case["max_seconds"] or MAX_SECONDS
    if result.execution_seconds > limit:
        problems.append(f"grading took {result.execution_seconds:.0f} s, over {limit:g} s")
    return problems


def marks(result: Result) -> list[tuple[str, float]]:
    return [(test.name, test.points) for test in result.tests]


# --- the sandbox probe: what a notebook cannot reach, read from its recorded cell errors ----

def probe_notebook(reference: Path, other: Path, port: int) -> tuple[nbformat.NotebookNode,
                                                                      dict[str, int]]:
    cells = {
        "reference": f"open({str(reference)!r}).read()",
        "other_submission": f"open({str(other)!r}).read()",
        "host_port": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)",
        "internet": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)",
        "file_size": f"open('big.bin', 'wb').write(bytes({SANDBOX.max_file_mb + 1} * 2**20))",
        "memory": f"blob = bytearray({SANDBOX.memory_mb + 256} * 2**20)",
        "process_cap": "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_NPROC)\n"
                       "raise RuntimeError(f'RLIMIT_NPROC={soft}')",
        "uid": "import os\nraise RuntimeError(f'uid={os.getuid()}')",
        "control": "open('small.txt', 'w').write('the work folder is writable')",
    }
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells.values()]
    return notebook, {name: index for index, name in enumerate(cells)}


def probe_error(batch: Batch, cell: str) -> str | None:
    result = batch.results.get(PROBE)
    assert result is not None, f"the sandbox probe notebook was not graded: {batch.faults}"
    index = batch.probe_cells[cell]
    errors = [e.error for e in result.errors if e.index == index]
    return errors[0] if errors else None


# --- what lies outside the kernels' folders -----------------------------------------------

def make_canary(folder: Path) -> Path:
    """A folder of known files where a grader following a kernel's link would write."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    for name, data in CANARY_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def aimed(source: Path, target: Path, canaries: list[Path]) -> None:
    """Copy a corpus notebook, its links aimed at every canary of this run."""
    data = source.read_bytes().replace(make_corpus.CANARY_LINE.encode(),
                                       f"CANARIES = {[str(c) for c in canaries]!r}".encode())
    target.write_bytes(data)


def data_folders() -> list[Path]:
    """The Fashion-MNIST files: the folder found and the inflated cache the kernels read."""
    try:
        found = [find_data_dir().resolve()]
    except DataNotFound:
        return []
    return list(dict.fromkeys([*found, *sandbox.data_folders().values()]))


def entry(path: Path) -> tuple:
    """What a path is: kind, owner, mode and, for a file, its sha256 (a link: its target)."""
    status = path.lstat()
    if stat.S_ISREG(status.st_mode):
        content = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        content = os.readlink(path) if stat.S_ISLNK(status.st_mode) else ""
    return stat.S_IFMT(status.st_mode), status.st_uid, stat.S_IMODE(status.st_mode), content


def snapshot(roots: list[Path]) -> Snapshot:
    """Every entry under `roots`, links not followed."""
    entries: Snapshot = {}
    for root in roots:
        if not os.path.lexists(root):
            entries[str(root)] = ("missing",)
            continue
        entries[str(root)] = entry(root)
        for folder, names, files in os.walk(root):
            for name in [*names, *files]:
                entries[os.path.join(folder, name)] = entry(Path(folder, name))
    return entries


def kernel_owned(path: Path, depth: int) -> list[str]:
    """Entries from `path` down `depth` levels that belong to one of this file's kernel uids,
    the kernels' own folders (TMP/grade-*) aside: a grader that chowned through a link would
    have left one."""
    if path.parent == TMP and path.name.startswith("grade-"):
        return []
    try:
        if UID < path.lstat().st_uid < UID + KERNEL_UIDS:
            return [str(path)]
        if depth == 0 or path.is_symlink() or not path.is_dir():
            return []
        return [found for child in path.iterdir() for found in kernel_owned(child, depth - 1)]
    except OSError:  # other processes' entries come and go
        return []


def outside_roots(batch: Batch) -> list[Path]:
    return [*batch.canaries, *batch.data, batch.folder]


def changed(batch: Batch, roots: list[Path]) -> list[str]:
    """Paths under `roots` whose entry differs between before and after the batch."""
    prefixes = tuple(str(root) for root in roots)
    paths = {p for p in (*batch.before, *batch.after) if p.startswith(prefixes)}
    return sorted(p for p in paths if batch.before.get(p) != batch.after.get(p))


# --- grading ---------------------------------------------------------------------------------

def graded_in_main_batch(case: dict) -> bool:
    return not case["separate"] and not case["max_epoch_ratio"] \
        and (bwrap_works() or not case["needs_bwrap"])


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    """The corpus, two good submissions and (with bwrap) the sandbox probe, in one batch."""
    root = tmp_path_factory.mktemp("hostile")
    folder, out = root / "submissions", root / "graded"
    folder.mkdir()
    canaries = [make_canary(Path(make_corpus.CANARY)), make_canary(root / "canary")]
    cases = [c for c in CASES if graded_in_main_batch(c)]
    for case in cases:
        aimed(make_corpus.CORPUS / f"{case['name']}.ipynb", folder / f"{case['name']}.ipynb",
              canaries)
    for name in GOOD:
        write_notebook(make_corpus.solution(), folder / f"{name}.ipynb")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    probe_cells = {}
    if bwrap_works():
        notebook, probe_cells = probe_notebook(BUNDLED.reference / "softmax_regression.ipynb",
                                               folder / f"{GOOD[0]}.ipynb", port)
        write_notebook(notebook, folder / f"{PROBE}.ipynb")
    data = data_folders()
    before = snapshot([*canaries, *data, folder])
    try:
        started = time.monotonic()
        report = grade_folder(folder, out, [SETTINGS], jobs=2)
        seconds = time.monotonic() - started
    finally:
        listener.close()
    after = snapshot([*canaries, *data, folder])
    owned = [found for path, depth in [(TMP, 3), *((d, 3) for d in data), (root, 9),
                                       (PACKAGE, 9)]
             for found in kernel_owned(path, depth)]
    results = {result.student: result for result in report.results}
    print(f"\nhostile batch: {len(results)} results, {len(report.faults)} faults, "
          f"{seconds:.0f} s")
    return Batch(folder, out, results, dict(report.faults), seconds, cases, probe_cells, port,
                 canaries, data, before, after, owned)


@pytest.fixture(scope="module")
def apart(tmp_path_factory) -> dict[float, Apart]:
    """The cases with an epoch-time ratio of their own, one batch per ratio."""
    batches = {}
    for ratio in sorted({c["max_epoch_ratio"] for c in CASES if c["max_epoch_ratio"]}):
        root = tmp_path_factory.mktemp(f"ratio-{ratio:g}")
        folder, out = root / "submissions", root / "graded"
        folder.mkdir()
        for case in CASES:
            if case["max_epoch_ratio"] == ratio:
                shutil.copy(make_corpus.CORPUS / f"{case['name']}.ipynb", folder)
        settings = SETTINGS.with_options("softmax", max_epoch_ratio=ratio)
        report = grade_folder(folder, out, [settings], jobs=2)
        batches[ratio] = Apart(out, {r.student: r for r in report.results}, dict(report.faults))
    return batches


def kernel_processes() -> int:
    """Processes running under one of this file's kernel uids."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = int(status.read_text().split("\nUid:\t", 1)[1].split("\t", 1)[0])
        except (OSError, IndexError, ValueError):
            continue
        count += UID < uid < UID + KERNEL_UIDS
    return count


@pytest.fixture(scope="module")
def fork_bomb(batch, tmp_path_factory) -> ForkBomb:
    """The fork bomb, graded apart; a neighbour is graded while the bomb holds the cap."""
    if not bwrap_works():
        pytest.skip("the fork bomb is only let loose inside the bubblewrap sandbox")
    cap = probe_error(batch, "process_cap") or ""
    if f"RLIMIT_NPROC={SANDBOX.max_processes}" not in cap:
        pytest.skip(f"the sandbox does not cap processes at {SANDBOX.max_processes}: {cap}")
    root = tmp_path_factory.mktemp("fork-bomb")
    folder, out = root / "submissions", root / "graded"
    folder.mkdir()
    shutil.copy(make_corpus.CORPUS / "fork_bomb.ipynb", folder)
    neighbour_path = write_notebook(make_corpus.solution(), root / "neighbour" / "neighbour.ipynb")
    neighbour, neighbour_fault, seen = None, None, 0
    # Spawned, not forked: a child forked after this process used torch's thread pools can hang.
    with ProcessPoolExecutor(max_workers=1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        bombing = pool.submit(grade_folder, folder, out, [SETTINGS], 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not bombing.done():
            seen = max(seen, kernel_processes())
            if seen >= SANDBOX.max_processes // 2:
                break
            time.sleep(0.2)
        try:
            neighbour = grade_file(neighbour_path, SETTINGS)
        except Exception:  # noqa: BLE001 - the neighbour's crash is what this records
            neighbour_fault = traceback.format_exc()
        report = bombing.result(timeout=600)
    return ForkBomb(out, {r.student: r for r in report.results}, dict(report.faults), neighbour,
                    neighbour_fault, seen)


def case_verdict(case: dict, request) -> list[str]:
    if case["max_epoch_ratio"]:
        graded: Apart = request.getfixturevalue("apart")[case["max_epoch_ratio"]]
        return verdict(case, graded.results.get(case["name"]), graded.faults.get(case["name"]),
                       graded.out)
    if case["separate"]:
        bomb: ForkBomb = request.getfixturevalue("fork_bomb")
        problems = verdict(case, bomb.results.get(case["name"]), bomb.faults.get(case["name"]),
                           bomb.out)
        if bomb.neighbour is None:
            last = bomb.neighbour_fault.strip().splitlines()[-1]
            problems.append(f"a neighbour graded during the bomb was lost: {last}")
        elif bomb.neighbour.score != bomb.neighbour.max_score:
            problems.append(f"a neighbour graded during the bomb scored "
                            f"{bomb.neighbour.score}/{bomb.neighbour.max_score}")
        return problems
    batch: Batch = request.getfixturevalue("batch")
    return verdict(case, batch.results.get(case["name"]), batch.faults.get(case["name"]),
                   batch.out)


def known_problem(case: dict) -> str | None:
    """Why the grader may still fall short on this case here, if it may."""
    if case["separate"] and not cgroups.available():
        return ("without control groups (not root, or no cgroup v1 hierarchies here) the fork "
                "bomb's processes compete with the neighbour's kernel as equals")
    return case["xfail"] or None


def case_param(case: dict):
    reason = known_problem(case)
    marks_ = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
    return pytest.param(case, id=case["name"], marks=marks_)


# --- the tests -------------------------------------------------------------------------------

def test_the_corpus_is_large_and_current(tmp_path):
    """At least 30 bad notebooks, and regenerating them from reference/ changes nothing."""
    assert len(CASES) >= 30
    make_corpus.main(tmp_path / "corpus", tmp_path / "manifest.json")
    assert (tmp_path / "manifest.json").read_bytes() == make_corpus.MANIFEST.read_bytes()
    stale = [case["name"] for case in CASES
             if (tmp_path / "corpus" / f"{case['name']}.ipynb").read_bytes()
             != (make_corpus.CORPUS / f"{case['name']}.ipynb").read_bytes()]
    assert stale == [], "run python tests/hostile/make_corpus.py"
    assert sorted(p.stem for p in make_corpus.CORPUS.iterdir()) == sorted(CASE)


@pytest.mark.parametrize("case", [case_param(c) for c in CASES])
def test_hostile_case(case, request):
    if case["needs_bwrap"] and not bwrap_works():
        pytest.skip("only harmless inside the bubblewrap sandbox")
    problems = case_verdict(case, request)
    assert problems == [], f"{case['name']} ({case['what']}): " + "; ".join(problems)


def test_good_submissions_keep_the_solutions_marks(batch, solution_result):
    for name in GOOD:
        result = batch.results.get(name)
        assert result is not None, f"{name} was lost: {batch.faults.get(name)}"
        assert result.score == result.max_score == solution_result.max_score
        assert marks(result) == marks(solution_result)


def test_the_class_files_list_everyone(batch):
    grades = (batch.out / "grades.csv").read_text(encoding="utf-8")
    for student in batch.results:
        assert f"\n{student}," in grades
    assert (batch.out / "summary.html").stat().st_size > 0


def test_summary_line(batch, request, solution_result):
    """One line for the whole corpus; every shortfall in it must be a known grader problem."""
    verdicts, graded = {}, []
    for case in CASES:
        if case["needs_bwrap"] and not bwrap_works():
            continue
        try:
            verdicts[case["name"]] = case_verdict(case, request)
        except pytest.skip.Exception:
            continue
        graded.append(case)
    unclear = {name for name, problems in verdicts.items() if problems}
    lost = [name for name, problems in verdicts.items() if any("lost" in p for p in problems)]
    crashes = dict(batch.faults)
    if any(case["max_epoch_ratio"] for case in graded):
        for graded_apart in request.getfixturevalue("apart").values():
            crashes.update(graded_apart.faults)
    bomb = None
    if any(case["separate"] for case in graded):
        bomb = request.getfixturevalue("fork_bomb")
        crashes.update(bomb.faults)
        if bomb.neighbour_fault:
            crashes["fork_bomb's neighbour"] = bomb.neighbour_fault
    goods = [batch.results.get(name) for name in GOOD]
    changed = [name for name, good in zip(GOOD, goods, strict=True)
               if good is None or marks(good) != marks(solution_result)]
    if bomb is not None and (bomb.neighbour is None
                             or bomb.neighbour.score != bomb.neighbour.max_score):
        changed.append("fork_bomb's neighbour")
    line = (f"{len(graded)} hostile, {len(graded) - len(unclear)} graded with a clear message, "
            f"{len(lost)} lost, {len(crashes)} grader crashes, good scores "
            + (f"changed ({', '.join(changed)})" if changed else "unchanged"))
    known = sorted(name for name in unclear if known_problem(CASE[name]))
    print(f"\n{line}")
    print(f"batch: {batch.seconds:.0f} s for {len(batch.results)} submissions, jobs=2"
          + (f"; fork bomb: {bomb.processes_seen} processes seen" if bomb else ""))
    for name in known:
        print(f"  known grader problem, {name}: {verdicts[name][0][:160]}")
    unexplained = sorted(unclear - set(known))
    crash_owners = {name.split("'")[0] for name in crashes}
    unexplained_crashes = sorted(n for n in crash_owners if n not in CASE
                                 or not known_problem(CASE[n]))
    good_ok = not [name for name in changed if name in GOOD]
    details = {name: verdicts[name] for name in unexplained}
    assert not unexplained and not unexplained_crashes and good_ok, \
        f"{line}; unexplained: {details}; crashes: {unexplained_crashes}"


# --- outside the kernels' folders, nothing changed ------------------------------------------

def test_the_canaries_are_untouched(batch):
    """The links planted by swap_kernel_folder and fifo_and_links point here."""
    assert all((canary / "secret.txt").exists() for canary in batch.canaries)
    assert changed(batch, batch.canaries) == []


def test_the_data_cache_is_untouched(batch):
    """Their links also point at the Fashion-MNIST files the kernels read."""
    assert batch.data, "no Fashion-MNIST data: the batch cannot have trained"
    assert changed(batch, batch.data) == []


def test_nothing_outside_the_kernel_folders_changed(batch):
    """Not the canaries, the data or the submissions, and nothing on the host belongs to a
    kernel's uid (as a chown through a link would leave it)."""
    assert changed(batch, outside_roots(batch)) == []
    assert batch.kernel_owned == []


# --- the sandbox, seen from inside a graded notebook ---------------------------------------

needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work here")


@needs_bwrap
def test_the_reference_is_invisible(batch):
    assert (BUNDLED.reference / "softmax_regression.ipynb").exists()
    assert "FileNotFoundError" in (probe_error(batch, "reference") or "no error")


@needs_bwrap
def test_other_submissions_are_invisible(batch):
    assert (batch.folder / f"{GOOD[0]}.ipynb").exists()
    assert "FileNotFoundError" in (probe_error(batch, "other_submission") or "no error")


@needs_bwrap
def test_there_is_no_network(batch):
    with socket.create_server(("127.0.0.1", 0)) as server:  # the host's loopback answers here
        socket.create_connection(server.getsockname(), timeout=5).close()
    assert "ConnectionRefusedError" in (probe_error(batch, "host_port") or "connected")
    assert "Network is unreachable" in (probe_error(batch, "internet") or "connected")


@needs_bwrap
def test_the_limits_bite(batch):
    assert "File too large" in (probe_error(batch, "file_size") or "no error")
    assert "MemoryError" in (probe_error(batch, "memory") or "no error")
    assert probe_error(batch, "control") is None
    if drops_privileges():  # as root: the kernel's own uid, and a process cap on it
        assert f"RLIMIT_NPROC={SANDBOX.max_processes}" in (probe_error(batch, "process_cap") or "")
        # each kernel runs under a uid of its own, above the configured base
        reported = (probe_error(batch, "uid") or "").rpartition("uid=")[2]
        assert reported.isdigit() and int(reported) > UID
        assert kernel_processes() == 0, "kernels outlived their submissions"
