"""The reference's observations are computed once and read back from the cache alike; a
cache entry that is damaged, incomplete or reachable by student code is not used, and
load_verified gives back only what store_verified wrote, or None at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import FAST

from grader.authoring.course import Course
from grader.grading import cache, reference
from grader.grading.assignment import Assignment
from grader.grading.inputs import late_inputs
from grader.grading.results import cpu_key
from grader.kernel.data import ENV_VAR, data_files, find_data_dir
from grader.sandbox import bwrap as sandbox

NOTEBOOK = FAST.notebook
SETTINGS = FAST.resolved()


@pytest.fixture
def steps_run(tmp_path, monkeypatch) -> list[str]:
    """A fresh cache and process memo; the probe keys each reference_probe call ran."""
    monkeypatch.setattr(cache, "default_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(reference, "_REFERENCE_PROBES", {})
    ran: list[str] = []
    run_table = reference.run_table

    def counting(probe, module, table, keys=None, timeout=None):
        ran.append(f"{table}:{','.join(keys or ['*'])}")
        run_table(probe, module, table, keys, timeout)

    monkeypatch.setattr(reference, "run_table", counting)
    return ran


def observe_reference(monkeypatch) -> reference.Probe:
    monkeypatch.setattr(reference, "_REFERENCE_PROBES", {})
    return reference.reference_probe(Assignment.of(SETTINGS))


def alike(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(alike(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(alike(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def stored_path() -> Path:
    path = reference.stored_reference(NOTEBOOK, SETTINGS)
    assert path is not None
    return path


def test_the_reference_is_read_back_alike_and_only_its_setup_runs_again(steps_run, monkeypatch):
    fresh = observe_reference(monkeypatch)
    assert stored_path().is_file()
    assert stored_path().stat().st_mode & 0o777 == 0o600  # kernels may not read it
    assert stored_path().parent.stat().st_mode & 0o777 == 0o700
    steps_run.clear()
    again = observe_reference(monkeypatch)
    assert steps_run == ["EPOCH_STEPS:epoch.prepare"]  # the timed epoch's data and warm-up
    assert alike(dict(again.observations), dict(fresh.observations))
    late = late_inputs(Assignment.of(SETTINGS), "a submission's digest")
    # Timed again alone for a step whose parts the kernel asked for: the epoch and its parts.
    seconds, _ = reference.ReferenceTiming(Assignment.of(SETTINGS), late,
                                           frozenset({"epoch.run"})).finish()
    timed = [work.name for work in Assignment.of(SETTINGS).timed]
    assert timed[0] == "epoch.run" and "cross_entropy.in_epoch" in timed
    assert list(seconds) == [name for step in timed for name in (step, cpu_key(step))]
    assert all(seconds[name] > 0 for name in seconds)  # wall clock and CPU time, each
    # With no kernel to ask for them (it never reached a timed step): the epoch alone.
    seconds, _ = reference.ReferenceTiming(Assignment.of(SETTINGS), late).finish()
    assert list(seconds) == ["epoch.run", cpu_key("epoch.run")]


def test_the_references_timed_steps_return_after_every_step_ran(steps_run, monkeypatch):
    """Observed afresh, every step of every exercise ran before the timed ones run again:
    one exercise's kernel state must not undo another's (concise_softmax's count of
    batches once replaced the list the epoch's parts loop over, which then timed an
    error in 0.3 ms)."""
    fresh = observe_reference(monkeypatch)
    assignment = Assignment.of(SETTINGS)
    late = late_inputs(assignment, "a digest")
    explained = frozenset({"epoch.run"})  # the epoch's parts timed too
    _, observed = reference.ReferenceTiming(assignment, late, explained).finish()
    assert {key: entry["ok"] for key, entry in observed.items()} == {
        key: True for work in assignment.timed for key in work.keys}
    fresh.state["epoch.batches"] = 0  # as the collision left it: timing an error is a fault
    with pytest.raises(RuntimeError, match="failed its own timed probes.*softmax.in_epoch"):
        reference.ReferenceTiming(assignment, late, explained).finish()


@pytest.mark.parametrize("damage", ["garbage", "incomplete", "a failed probe"])
def test_a_damaged_entry_is_observed_again_and_replaced(steps_run, monkeypatch, damage):
    fresh = observe_reference(monkeypatch)
    observations = dict(fresh.observations)
    if damage == "garbage":
        stored_path().write_bytes(b"not a torch file")
    elif damage == "incomplete":
        torch.save({"softmax.values": observations["softmax.values"]}, stored_path())
    else:
        observations["softmax.values"] = {"ok": False, "error": "E", "message": "",
                                          "traceback": ""}
        torch.save(observations, stored_path())
    steps_run.clear()
    again = observe_reference(monkeypatch)
    assert "PROBES:*" in steps_run
    assert alike(dict(again.observations), dict(fresh.observations))
    assert reference.stored_observations(stored_path(), Assignment.of(SETTINGS).keys)


def test_the_entry_is_named_after_the_settings_and_the_data_not_where_it_lies(
        steps_run, monkeypatch, tmp_path):
    first = stored_path()
    other_seed = reference.stored_reference(NOTEBOOK, replace(SETTINGS, seed=SETTINGS.seed + 1))
    assert other_seed not in (None, first)
    copied = tmp_path / "data"
    copied.mkdir()
    for source in data_files(find_data_dir()):
        shutil.copyfile(source, copied / source.name)
    monkeypatch.setenv(ENV_VAR, str(copied))
    assert reference.stored_reference(NOTEBOOK, SETTINGS) == first  # as the zip's copy
    labels = next(copied.glob("t10k-labels*"))
    labels.write_bytes(labels.read_bytes() + b"\0")
    assert reference.stored_reference(NOTEBOOK, SETTINGS) not in (None, first)


def test_an_entry_shipped_with_the_course_is_read_and_a_damaged_one_is_not(
        steps_run, monkeypatch, tmp_path):
    """What `grade gradescope` puts in the zip beside the course: read where this machine
    keeps no entry of its own (a fresh container), and no entry is made; one damaged on the
    way is observed again."""
    fresh = observe_reference(monkeypatch)
    monkeypatch.setattr(Course, "observations", tmp_path / "shipped")  # not the real course's
    shipped = reference.shipped(stored_path())
    shipped.parent.mkdir()
    shutil.move(stored_path(), shipped)
    steps_run.clear()
    again = observe_reference(monkeypatch)
    assert steps_run == ["EPOCH_STEPS:epoch.prepare"]
    assert alike(dict(again.observations), dict(fresh.observations))
    assert not stored_path().exists()
    shipped.write_bytes(shipped.read_bytes()[:-1] + b"?")
    steps_run.clear()
    observe_reference(monkeypatch)
    assert "PROBES:*" in steps_run and stored_path().is_file()


def test_no_entry_where_student_code_could_rewrite_it(steps_run, monkeypatch):
    monkeypatch.setattr(reference, "kernels_isolated", lambda sandbox: False)
    assert reference.stored_reference(NOTEBOOK, SETTINGS) is None
    assert observe_reference(monkeypatch).observations
    assert not list(cache.default_root().rglob("*.pt"))


def test_a_cache_folder_of_another_user_is_not_used(steps_run, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("making a folder another user owns needs root")
    folder = cache.private_root()
    folder.mkdir(parents=True)
    os.chown(folder, 12345, 12345)
    assert reference.stored_reference(NOTEBOOK, SETTINGS) is None
    assert observe_reference(monkeypatch).observations  # graded all the same


@pytest.fixture
def visible_folder() -> Iterator[Path]:
    """A folder the sandbox shows read-only: not in /tmp nor in a tree it always hides."""
    if not os.access("/var/cache", os.W_OK):
        pytest.skip("needs a writable /var/cache")
    folder = Path(tempfile.mkdtemp(dir="/var/cache", prefix="dl-grader-test-"))
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(not sandbox.bwrap_works(), reason="needs bubblewrap")
def test_a_sandboxed_kernel_cannot_see_the_private_entries(visible_folder, tmp_path,
                                                           monkeypatch):
    monkeypatch.setattr(cache, "default_root", lambda: visible_folder)
    entry = cache.private_entry("reference-secret")
    entry.write_text("the expected outputs")
    (visible_folder / "public").write_text("the data")
    command = sandbox.bwrap_command(tmp_path, tmp_path, sandbox.SandboxSettings(), gpu=False,
                                    data=sandbox.data_folders())
    seen = subprocess.run([*command, "cat", str(visible_folder / "public"), str(entry)],
                          capture_output=True, text=True)
    assert "the data" in seen.stdout  # the control: the folder itself is visible
    assert "the expected outputs" not in seen.stdout and "No such file" in seen.stderr


@pytest.mark.skipif(not sandbox.bwrap_works(), reason="needs bubblewrap")
def test_a_sandboxed_kernel_cannot_see_the_observations_a_course_ships(visible_folder,
                                                                       tmp_path, monkeypatch):
    """The zip's course/observations/ holds every test's expected answers: a secret of the
    course's, hidden as its solutions are, wherever the course lies (/autograder/source)."""
    shipped = visible_folder / "observations"
    shipped.mkdir()
    (shipped / "reference-x.pt").write_text("the expected answers")
    (visible_folder / "public").write_text("the data")
    monkeypatch.setattr(Course, "observations", shipped)
    command = sandbox.bwrap_command(tmp_path, tmp_path, sandbox.SandboxSettings(), gpu=False,
                                    data=sandbox.data_folders())
    seen = subprocess.run([*command, "cat", str(visible_folder / "public"),
                           str(shipped / "reference-x.pt")], capture_output=True, text=True)
    assert "the data" in seen.stdout  # the control: the folder itself is visible
    assert "the expected answers" not in seen.stdout and "No such file" in seen.stderr


PAYLOAD = b"the reference's observations" * 100


def entry(tmp_path: Path) -> Path:
    """An entry store_verified wrote, in a folder of the test's own."""
    target = tmp_path / "entry"
    cache.store_verified(target, PAYLOAD)
    return target


def test_an_entry_is_read_back_as_stored_and_only_this_user_may_read_it(tmp_path):
    target = entry(tmp_path)
    assert cache.load_verified(target, len(PAYLOAD)) == PAYLOAD
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]  # no partial file left
    cache.store_verified(target, b"", mode=0o644)
    assert cache.load_verified(target, 0) == b""
    assert target.stat().st_mode & 0o777 == 0o644


def test_storing_over_a_link_replaces_the_link_not_what_it_points_to(tmp_path):
    (tmp_path / "elsewhere").write_bytes(b"kept")
    (tmp_path / "entry").symlink_to(tmp_path / "elsewhere")
    assert entry(tmp_path).is_file() and not entry(tmp_path).is_symlink()
    assert (tmp_path / "elsewhere").read_bytes() == b"kept"


def flip_last_byte(target: Path) -> None:
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 1
    target.write_bytes(bytes(raw))


def link_to_a_good_entry(target: Path) -> None:
    target.rename(target.with_name("good"))
    target.symlink_to(target.with_name("good"))


def fifo(target: Path) -> None:
    target.unlink()
    os.mkfifo(target)


def given_away(target: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(target, 12345, 12345)


def folder(target: Path) -> None:
    target.unlink()
    target.mkdir()


ENTRY_DAMAGES: dict[str, Callable[[Path], None]] = {
    "a changed byte": flip_last_byte,
    "truncated": lambda target: os.truncate(target, target.stat().st_size - 1),
    "cut inside the header": lambda target: os.truncate(target, 10),
    "extended": lambda target: target.write_bytes(target.read_bytes() + b"!"),
    "not written by store_verified": lambda target: target.write_bytes(PAYLOAD),
    "empty": lambda target: target.write_bytes(b""),
    "missing": Path.unlink,
    "a link to a good entry": link_to_a_good_entry,
    "a FIFO": fifo,
    "a folder": folder,
    "writable by others": lambda target: target.chmod(0o606),
    "another user's": given_away,
    "a gigabyte long": lambda target: os.truncate(target, 1 << 30),  # sparse: not read
}


@pytest.mark.timeout(10)  # opening a FIFO for reading waits for a writer: it must not
@pytest.mark.parametrize("damage", ENTRY_DAMAGES)
def test_a_bad_entry_reads_as_none_at_once(tmp_path, damage):
    target = entry(tmp_path)
    ENTRY_DAMAGES[damage](target)
    started = time.perf_counter()
    assert cache.load_verified(target, len(PAYLOAD)) is None
    assert time.perf_counter() - started < 1


def test_an_entry_over_the_caller_s_limit_reads_as_none(tmp_path):
    target = entry(tmp_path)
    assert cache.load_verified(target, len(PAYLOAD) - 1) is None
    assert cache.load_verified(target, len(PAYLOAD)) == PAYLOAD
