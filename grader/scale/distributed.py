"""Grading on a Dask distributed cluster: the submissions go to the workers as bytes, the
results come back as plain data and are written here, as a local run writes them.

A worker grades only if its grader, course and data are this machine's
(grader/scale/fingerprint.py); it then offers one unit of a resource named after that
fingerprint, which every task asks for, so each worker process grades one submission at a
time, with its own sandbox and kernel pools, and a refused worker gets none. Workers never
see the output folder: a worker lost mid-submission costs nothing but the time, since Dask
runs its task again on another worker, and only this process writes results, once each.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import dask
from distributed import Client, LocalCluster, Worker, WorkerPlugin, as_completed, get_worker

from grader.authoring.config import Settings
from grader.authoring.exercise import available
from grader.grading.grade import grade_submission
from grader.grading.results import Result
from grader.kernel.data import DataNotFound
from grader.sandbox.host import THREAD_VARIABLES, share_of_cores
from grader.scale.fingerprint import Fingerprint, this_machine
from grader.scale.units import KernelPools, Unit, grade_in_turn, save_outputs
from grader.students.submissions import Submission, UnsafeFile, read_submitted

LOCAL = "local"  # --scheduler local: a LocalCluster of --jobs workers on this machine
PRE_SPAWN = "distributed.nanny.pre-spawn-environ"  # what a worker's process starts with
CONNECT_SECONDS = 30
FIRST_WORKER_SECONDS = 120
TASKS_PER_WORKER = 2  # queued per worker, so a worker never waits, and memory stays bounded
logger = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The cluster cannot grade: the scheduler is unreachable, no worker joined, or every
    worker was refused."""


@dataclass(frozen=True)
class Parcel:
    """One unit as it travels: every notebook of the submission as bytes (its digest, which
    seeds the submission's inputs, covers them all), which one is the assignment's, and the
    settings."""

    student: str
    root: str  # the submission's own name: its notebook, or its folder
    files: dict[str, bytes]  # by path below the submission's folder of submissions
    matched: dict[str, str]  # assignment -> its key in files
    problems: list[str]
    settings: Settings


def parcel_of(unit: Unit) -> Parcel | None:
    """The unit as bytes; None when it needs no kernel (refused, no notebook for the
    assignment, a file that cannot be read): it is then graded here, saying why."""
    submission = unit.submission
    if submission.refused or unit.settings.notebook not in unit.matched:
        return None
    base = submission.path.parent
    try:
        files = {str(path.relative_to(base)): read_submitted(path)
                 for path in submission.notebooks}
    except UnsafeFile:
        return None
    return Parcel(submission.student, submission.path.name, files,
                  {name: str(path.relative_to(base)) for name, path in unit.matched.items()},
                  list(submission.problems), unit.settings)


def unpacked(parcel: Parcel, folder: Path) -> tuple[Submission, dict[str, Path]]:
    """The parcel's submission as files in `folder`, and which file is which assignment's."""
    for key, data in parcel.files.items():
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    submission = Submission(parcel.student, folder / parcel.root,
                            [folder / key for key in parcel.files], list(parcel.problems))
    return submission, {name: folder / key for name, key in parcel.matched.items()}


def tag(expected: Fingerprint) -> str:
    """The name of the worker plugin and of the resource a matching worker offers."""
    text = "\0".join(asdict(expected).values())
    return f"dl-grader-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class GradingWorker(WorkerPlugin):
    """A worker's side of grading: refused unless it grades as the client does; else a
    scratch folder (hidden from the kernels) and kernel pools of its own, one at a time."""

    def __init__(self, expected: Fingerprint):
        self.expected = expected
        self.refusal: str | None = None

    async def setup(self, worker: Worker) -> None:
        try:
            self.refusal = await asyncio.to_thread(self.prepare, Path(worker.local_directory))
        except Exception as error:  # noqa: BLE001 - said to the client, not a dead worker
            self.refusal = f"it could not set up grading: {type(error).__name__}: {error}"
        if self.refusal:
            logger.error("dl-grader refuses this worker: %s", self.refusal)
        else:
            await worker.set_resources(**{tag(self.expected): 1})

    def prepare(self, local_directory: Path) -> str | None:
        """Why this worker may not grade, or None once it is ready to (its scratch folder
        in the worker's own, which Dask purges when a dead worker left it)."""
        available()  # the course's own exercise modules, which the settings sent refer to
        try:
            differences = this_machine().differences(self.expected)
        except DataNotFound as error:
            return f"it lacks a data set: {error}"
        if differences:
            return "; ".join(differences)
        self.lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="dl-grader-", dir=local_directory))
        self.kernels = KernelPools((self.scratch,))
        return None

    async def teardown(self, worker: Worker) -> None:
        if not self.refusal:
            await asyncio.to_thread(self.close)

    def close(self) -> None:
        with self.lock:
            self.kernels.close()
            shutil.rmtree(self.scratch, ignore_errors=True)

    def grade(self, parcel: Parcel) -> dict:
        """The result of one parcel, as plain data; its files are removed afterwards."""
        with self.lock:
            folder = Path(tempfile.mkdtemp(dir=self.scratch))
            try:
                submission, matched = unpacked(parcel, folder)
                result = grade_submission(submission, parcel.settings,
                                          self.kernels(parcel.settings), matched)
                return result.to_dict()
            finally:
                shutil.rmtree(folder, ignore_errors=True)


def grade_parcel(name: str, parcel: Parcel) -> dict:
    """The task each worker runs, with the plugin `name` registered on it."""
    return get_worker().plugins[name].grade(parcel)


def refusal_of(name: str, dask_worker: Worker) -> str | None:
    plugin = dask_worker.plugins.get(name)
    return "it has not set up grading" if plugin is None else plugin.refusal


@contextmanager
def environment_kept() -> Iterator[None]:
    """This process's environment as it was before: a Dask nanny leaves what it set for its
    workers (their threads, and more) in the environment of the process that started it."""
    before = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


@contextmanager
def connected(address: str, workers: int) -> Iterator[Client]:
    """A client of the scheduler at `address`, or of a LocalCluster (loopback only) of
    `workers` processes for LOCAL."""
    if address == LOCAL:
        # Each worker's share of the cores, for its own torch and its kernels, as --jobs
        # gives its workers: Dask would start every worker at one thread, set before the
        # worker's process starts (torch sizes its pool when imported).
        threads = share_of_cores(workers)
        with dask.config.set({f"{PRE_SPAWN}.{name}": threads for name in THREAD_VARIABLES}), \
                environment_kept(), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    with client:
        yield client


def admit_workers(client: Client, name: str, expected: Fingerprint, notes: list[str]) -> None:
    """Register the grading plugin on every worker; the refused ones are noted, and if no
    worker remains, nothing is graded."""
    try:
        client.wait_for_workers(1, timeout=FIRST_WORKER_SECONDS)
    except TimeoutError:
        raise ClusterError(f"no worker joined the scheduler in {FIRST_WORKER_SECONDS} s: "
                           "start some with `dask worker ADDRESS --nthreads 1`") from None
    client.register_plugin(GradingWorker(expected), name=name)
    refusals = client.run(refusal_of, name)
    refused = [f"worker {address} refused: {why}" for address, why in refusals.items() if why]
    notes.extend(refused)
    if len(refused) == len(refusals):
        raise ClusterError("no worker grades as this machine does:\n  " + "\n  ".join(refused))


def grade_on_cluster(pending: list[Unit], out: Path, hidden: tuple[Path, ...], address: str,
                     workers: int, notes: list[str],
                     ) -> Iterator[tuple[Unit, Result | None, str | None]]:
    """Yield (unit, result, fault) as each finishes, graded by the cluster's workers and
    written here; units that need no kernel are graded here, after the others."""
    expected = this_machine()
    name = tag(expected)
    with connected(address, workers) as client:
        admit_workers(client, name, expected, notes)
        here: list[Unit] = []
        try:
            yield from results_of(client, name, parcels_of(pending, here), out)
            yield from grade_in_turn(here, out, hidden)
        finally:
            with suppress(OSError, TimeoutError):  # a scheduler gone has no plugin to drop
                client.unregister_worker_plugin(name)


def parcels_of(units: list[Unit], here: list[Unit]) -> Iterator[tuple[Unit, Parcel]]:
    """Each unit's parcel, read only when it is about to be sent; a unit that needs no
    kernel goes to `here` instead."""
    for unit in units:
        parcel = parcel_of(unit)
        if parcel is None:
            here.append(unit)
        else:
            yield unit, parcel


def results_of(client: Client, name: str, parcels: Iterator[tuple[Unit, Parcel]],
               out: Path) -> Iterator[tuple[Unit, Result | None, str | None]]:
    """Submit the parcels a few per worker at a time, and write each result as it comes."""
    owners: dict[str, Unit] = {}
    running = as_completed()

    def top_up() -> None:
        while len(owners) < TASKS_PER_WORKER * max(1, len(client.nthreads())):
            unit, parcel = next(parcels, (None, None))
            if unit is None:
                return
            future = client.submit(grade_parcel, name, parcel, resources={name: 1},
                                   key=f"grade-{unit.label}-{uuid.uuid4().hex[:8]}")
            owners[future.key] = unit
            running.add(future)

    top_up()
    for future in running:
        unit = owners.pop(future.key)
        try:
            result: Result | None = Result.from_dict(future.result())
            fault = None
        except Exception:  # noqa: BLE001 - a grader fault or a task whose workers all died
            result, fault = None, traceback.format_exc()
        if result is not None:
            result.source = str(unit.submission.path)
            save_outputs(result, out)
        top_up()
        yield unit, result, fault
