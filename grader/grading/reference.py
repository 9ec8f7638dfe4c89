"""The reference side: the solution notebook's functions and what the same probes observe
on them, in the grader's own process (trusted code).

The solution notebook is the single source of the reference: its cells tagged ``setup``
and ``solution`` are run here, once. Their observations take seconds (the probes train
models), so they are kept on disk between processes, behind a digest, where no kernel can
write; only a timed step runs again per submission, beside the student's, on that
submission's late inputs.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import nbformat

from grader import timeline
from grader.authoring import course
from grader.authoring.config import Settings
from grader.authoring.datasets import DataNotFound, in_use
from grader.authoring.exercise import text_observations
from grader.grading.assignment import Assignment
from grader.grading.cache import load_verified, private_entry, store_verified
from grader.grading.inputs import build_inputs
from grader.grading.notebook import read_notebook
from grader.grading.plan import StepWork, step_timeout
from grader.grading.results import cpu_key
from grader.kernel.probing import Probe, run_table, to_bytes
from grader.sandbox import cgroups
from grader.sandbox.bwrap import kernels_isolated, read_copies_here
from grader.sandbox.datacache import data_digest
from grader.sandbox.kernels import FOREGROUND_SHARES
from grader.sandbox.observations import BadObservations, load_bounded, validated

REFERENCE_TAGS = {"setup", "solution"}
MAX_REFERENCE_BYTES = 512 * 2**20  # the reference's observations kept between runs
READ_SPAN = "the reference: read back, or observed"  # for --profile
TIMED_SPAN = "the reference's timed steps, beside the kernel's"  # for --profile
ALONE_SPAN = "the reference's timed steps, after the kernel"
JOIN_GRACE_SECONDS = 15.0  # past their timeouts, the timed steps are the grader's fault


@cache
def reference_functions(notebook: str, folder: Path) -> dict[str, Any]:
    """Namespace after running the tagged cells of reference/<notebook>.ipynb in `folder`."""
    path = folder / f"{notebook}.ipynb"
    return namespace_of(nbformat.read(path, as_version=4), f"reference.{notebook}")


def namespace_of(solution: nbformat.NotebookNode, name: str) -> dict[str, Any]:
    """Namespace after running a solution notebook's tagged cells (trusted code: the
    reference, or a mutant of it that `grade audit` made)."""
    namespace: dict[str, Any] = {"__name__": name}
    for cell in solution.cells:
        if cell.cell_type == "code" and REFERENCE_TAGS & set(cell.metadata.get("tags", [])):
            exec(compile(cell.source, f"{name}:cell", "exec"), namespace)  # noqa: S102
    return namespace


_REFERENCE_PROBES: dict[tuple[str, str], Probe] = {}
_READING = threading.Lock()  # one thread reads a reference: its probes seed torch's generator


def reference_probe(assignment: Assignment) -> Probe:
    """The reference run through the same probes: once per process and settings, its
    observations kept on disk for the next process (the probes train models: seconds)."""
    settings, notebook = assignment.settings, assignment.notebook
    key = (str(course.current().root), notebook, settings.digest())
    with _READING:
        if key not in _REFERENCE_PROBES:
            _REFERENCE_PROBES[key] = read_reference(assignment)
    return _REFERENCE_PROBES[key]


def read_reference(assignment: Assignment) -> Probe:
    """The reference's probe, its observations read back where an earlier run stored them
    (its setup steps run again), else observed here and stored."""
    settings, notebook = assignment.settings, assignment.notebook
    solution = read_notebook(course.current().reference / f"{notebook}.ipynb")
    inputs = build_inputs(assignment, solution)
    probe = Probe(reference_functions(notebook, course.current().reference), inputs, None,
                  settings.long_timeout)
    stored = stored_reference(notebook, settings)
    observed = (stored_observations(stored, assignment.keys)
                or stored_observations(shipped(stored), assignment.keys))
    read_copies_here()  # the probes below read the data sets as the kernels do
    for work in assignment.work:
        if work.step.setup or not observed:
            run_table(probe, work.module, work.table, work.step.keys,
                      step_timeout(work.step, settings))
    failed = [k for k, v in probe.observations.items() if not v["ok"]]
    if failed:
        raise RuntimeError(f"the reference failed its own probes: {failed}")
    if stored and not observed:
        store_verified(stored, to_bytes(probe.observations))
    probe.observations = {**observed, **probe.observations,
                          **text_observations(assignment.exercises, solution)}
    return probe


def stored_reference(notebook: str, settings: Settings) -> Path | None:
    """Where the reference's observations are kept between runs; None where a kernel could
    rewrite them (no sandbox, the grader's own uid) or a data set in use or the cache folder
    is not found. The key stamps every data set the kernels may read: new data, new entry."""
    if not kernels_isolated(settings.sandbox):
        return None
    try:
        data = "".join(data_digest(d.files(d.find())) for d in in_use())
    except DataNotFound:
        return None
    solution = (course.current().reference / f"{notebook}.ipynb").read_bytes()
    return private_entry(f"reference-{notebook}", settings.digest(), data,
                         hashlib.sha256(solution).hexdigest())


def shipped(stored: Path | None) -> Path | None:
    """The same entry in the course's observations, where `grade gradescope` puts it in the
    zip: made where the grader's code, the course, the data and torch's release were the
    same, so no container computes it again. Trusted as the private one is: where kernels
    are isolated, in a folder of the grader's user that the sandbox hides (a secret of the
    course's, as its solutions are)."""
    return None if stored is None else course.current().observations / stored.name


def stored_observations(path: Path | None, planned: frozenset[str]) -> dict:
    """The reference's observations from an earlier run, if the entry is intact, every
    probe `planned` is there and passed; {} otherwise."""
    raw = load_verified(path, MAX_REFERENCE_BYTES) if path is not None else None
    if raw is None:
        return {}
    try:
        loaded = load_bounded(raw, max_tensor_bytes=MAX_REFERENCE_BYTES)
    except BadObservations:
        return {}
    if not isinstance(loaded, dict):
        return {}
    observations = {str(key): validated(entry) for key, entry in loaded.items()}
    complete = set(observations) == planned and all(
        v["ok"] for v in observations.values())
    return observations if complete else {}


def read_limit(assignment: Assignment) -> float:
    """How long reading the reference may take: each of its probes to its timeout."""
    settings = assignment.settings
    return JOIN_GRACE_SECONDS + sum(step_timeout(work.step, settings) * len(work.keys)
                                    for work in assignment.work)


class ReferenceTiming:
    """The reference's timed steps on one submission's late inputs, run in a thread of their
    own from the moment the kernel starts the student's first (`start`), or else by
    `finish`: both meet the same load on the machine, and the reference's seconds leave the
    submission's path.

    The reference itself is read back (or observed) in a thread from the start, while the
    kernel boots and runs the notebook; the kernel's first timed step waits for that, so
    that no step of the student's is timed beside it.

    The steps compete for the cores as the kernel's do: in a cpu group of their own with the
    graded kernel's weight. Their CPU time is their thread's own clock: each step runs on the
    one thread its probes allow (the kernel's step likewise), while the process's clock also
    counts the grading worker's other threads (the kernel's channels, the next kernel's
    launch). They run on a probe of their own (the reference's inputs with the late ones,
    its own observations), sharing only the state its untimed steps built.

    The parts of a step (each function over the epoch's batches) only word a slow step's
    message: the kernel decides, once it has both figures of the step, whether its verdict
    may need them (`explain`), and the parts are timed on both sides only then. Timed
    again alone, the reference times the parts the kernel asked for (`explained`)."""

    def __init__(self, assignment: Assignment, late: dict[str, int],
                 explained: frozenset[str] | None = None):
        self.assignment, self.late = assignment, late
        self.source: Probe | None = None  # the reference's probe, once read
        self.probe: Probe | None = None  # the copy its timed steps run on
        self.seconds: dict[str, float] = {}
        self.error: Exception | None = None
        wholes = {work.step.part_of for work in assignment.timed if work.step.part_of}
        self.undecided = wholes if explained is None else set()
        self.explained = set(explained or ())  # the steps whose parts are timed
        self.ended = False  # the timed steps' thread is done
        self.changed = threading.Condition()  # a figure, a decision or the end
        self.thread: threading.Thread | None = None
        self.reading = threading.Thread(target=self.read, daemon=True, name="the reference")
        self.reading.start()

    def read(self) -> None:
        try:
            with timeline.span(READ_SPAN):
                self.source = reference_probe(self.assignment)
        except Exception as error:  # noqa: BLE001 - raised again by observed, in the grader
            self.error = error
            return
        self.probe = copy.copy(self.source)
        self.probe.inputs = {**self.source.inputs, **self.late}
        self.probe.observations = {}

    def observed(self) -> Probe:
        """The reference's probe, once read (its failure is the grader's fault)."""
        self.reading.join(read_limit(self.assignment))
        if self.reading.is_alive():
            raise RuntimeError("the reference's probes did not return")
        if self.error is not None:
            raise self.error
        return self.source

    def start(self) -> None:
        """Run the timed steps beside the kernel's, once (a later call does nothing), when
        the reference is read."""
        if self.thread is None:
            self.reading.join(read_limit(self.assignment))
            self.thread = threading.Thread(target=self.run, daemon=True,
                                           name="the reference's timed steps")
            self.thread.start()

    def run(self) -> None:
        try:
            self.observed()
            span = TIMED_SPAN if self.beside else ALONE_SPAN
            with timeline.span(span), cgroups.thread_apart(FOREGROUND_SHARES):
                for work in self.assignment.timed:
                    if work.step.part_of and not self.wanted(work.step.part_of):
                        continue
                    started, started_cpu = time.perf_counter(), time.thread_time()
                    run_table(self.probe, work.module, work.table, work.keys,
                              step_timeout(work.step, self.assignment.settings))
                    with self.changed:
                        self.seconds[work.name] = time.perf_counter() - started
                        self.seconds[cpu_key(work.name)] = time.thread_time() - started_cpu
                        self.changed.notify_all()
        except Exception as error:  # noqa: BLE001 - raised again by finish, in the grader
            self.error = error
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def wanted(self, whole: str) -> bool:
        """Whether to time the parts of `whole`, once the kernel has said (or the grader is
        done with the kernels: `wait` and `finish` say no for it)."""
        with self.changed:
            if not self.changed.wait_for(lambda: whole not in self.undecided,
                                         read_limit(self.assignment)):
                self.undecided.discard(whole)  # never left waiting: no kernel will say
            return whole in self.explained

    def figures_of(self, whole: str) -> dict[str, float]:
        """The reference's seconds of the step `whole` once it is timed here (the grader
        waits for them beside the kernel); none where it failed or never ran."""
        with self.changed:
            self.changed.wait_for(lambda: whole in self.seconds or self.ended,
                                  read_limit(self.assignment))
            return {key: self.seconds[key] for key in (whole, cpu_key(whole))
                    if key in self.seconds}

    def explain(self, whole: str, wanted: bool) -> None:
        """The kernel's word on the step `whole`: time its parts (its verdict may need
        them) or not. The first word stands."""
        with self.changed:
            if whole in self.undecided:
                self.undecided.discard(whole)
                if wanted:
                    self.explained.add(whole)
            self.changed.notify_all()

    def decided(self, whole: str) -> bool | None:
        """Whether the parts of `whole` are timed; None while undecided."""
        with self.changed:
            return None if whole in self.undecided else whole in self.explained

    def timed_steps(self) -> list[StepWork]:
        """The timed steps, less the parts not timed (after `finish`)."""
        return [work for work in self.assignment.timed
                if not work.step.part_of or work.step.part_of in self.explained]

    def no_more_words(self) -> None:
        """No kernel will decide any more: the parts still undecided are not timed."""
        for whole in list(self.undecided):
            self.explain(whole, False)

    @property
    def beside(self) -> bool:
        """Whether the steps ran beside the kernel's (not after it, here)."""
        return self.thread is not None

    def wait(self) -> bool:
        """Let the reading and the timed steps end, if they started (an attempt judged no
        further must not leave them running beside the next one's); whether they did, in
        their timeouts."""
        self.no_more_words()
        self.reading.join(read_limit(self.assignment))
        if self.thread is not None:
            settings = self.assignment.settings
            self.thread.join(JOIN_GRACE_SECONDS + sum(
                step_timeout(work.step, settings) for work in self.assignment.timed))
        return not self.reading.is_alive() and (self.thread is None
                                                 or not self.thread.is_alive())

    def finish(self) -> tuple[dict[str, float], dict]:
        """Every timed step's seconds and observations (timed here if the kernel ran none);
        a step that failed is the grader's fault, never a ratio."""
        self.no_more_words()
        if self.thread is None:
            self.run()
        if not self.wait():
            raise RuntimeError("the reference's timed steps did not return")
        if self.error is not None:
            raise self.error
        keys = [key for work in self.timed_steps() for key in work.keys]
        observed = self.probe.observations
        failed = [key for key in keys if not observed.get(key, {}).get("ok")]
        if failed:  # its seconds would time an error: the grader's fault, never a ratio
            raise RuntimeError(f"the reference failed its own timed probes: {failed}")
        return self.seconds, {key: observed[key] for key in keys}
