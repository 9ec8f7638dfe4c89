"""Grading one submission: execute, probe, check, score.

notebook → execution (student kernel) → observations (plain data) → checks (here) → Result.
The reference side runs the same probes on the solution's functions in this process.

The kernel gets its inputs in the source of the grader's cells and hands observations back
on its channel (grader/observations.py reads them within bounds); the grader writes nothing
into, and reads nothing from, the kernel's folder. It gets no seed either: each probe's seed
is derived from the grading seed by a one-way hash, so the hidden inputs and the secrets
drawn with them cannot be recomputed in the kernel.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import time
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import torch

from grader import __version__
from grader.cache import load_verified, private_entry, store_verified
from grader.checks import Check, Context, evaluate_all
from grader.config import Settings
from grader.data import DataNotFound, data_files, data_stamp, find_data_dir
from grader.execute import KernelRun
from grader.exercises import configured, hints_for, modules_for, notebooks
from grader.kernels import KernelPool, LaunchedKernel
from grader.observations import BadObservations, load_bounded, validated
from grader.paths import REFERENCE
from grader.probing import PROBE_SEEDS, Probe, ProbeStep, encode, failure, function_of, run_table
from grader.reference import reference_functions
from grader.results import CellRecord, Result, TestResult, Timing
from grader.sandbox import describe as describe_sandbox
from grader.sandbox import hiding, kernels_isolated
from grader.submissions import Submission, UnsafeFile, match_notebooks, read_submitted

# A failed cell's traceback (sys.last_*) can pin gigabytes: freed in a cell of its own, as
# the next one's source (the inputs, a megabyte) is compiled before any of its lines run.
FREE_MEMORY = ("import gc, sys\nsys.last_type = sys.last_value = sys.last_traceback = None\n"
               "gc.collect()")
OPEN_PROBE = (
    "import grader.probing as _grader_probing\n"
    "_grader_probe = _grader_probing.open_probe(get_ipython().user_ns, {inputs!r}, {timeout!r})"
)
RUN_STEP = ("_grader_probing.run_table(_grader_probe, {module!r}, {table!r}, {keys!r}, "
            "{timeout!r}, {late!r})")
GRACE_SECONDS = 15.0
MAX_RESTARTS = 2  # fresh kernels after a cell or probe stops one; each reruns the notebook
SECRET = "secret."
MAX_REFERENCE_BYTES = 512 * 2**20  # the reference's observations kept between runs


class NotebookUnreadable(Exception):
    """The submitted file is not a notebook the grader can run."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at `path` upgraded to nbformat 4, or a message saying what is wrong."""
    try:
        notebook = nbformat.reads(read_submitted(path).decode("utf-8"), as_version=4)
    except UnsafeFile as error:
        raise NotebookUnreadable(str(error)) from None
    except UnicodeDecodeError:
        raise NotebookUnreadable(f"{path.name} is not UTF-8 text") from None
    except Exception as error:  # noqa: BLE001 - nbformat raises many kinds for bad files
        raise NotebookUnreadable(f"{path.name} is not a readable notebook: "
                                 f"{type(error).__name__}: {str(error)[:300]}") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookUnreadable(f"{path.name} has no cells")
    for number, cell in enumerate(notebook.cells, start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("source"), str):
            raise NotebookUnreadable(f"{path.name} is not a readable notebook: cell {number} "
                                     "has no text as its source")
        cell.setdefault("metadata", {})
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
    return notebook


def derived_seed(seed: int, *parts: str) -> int:
    """A seed drawn from the grading seed and `parts` by a one-way hash: knowing it tells
    nothing of the grading seed."""
    text = ":".join([str(seed), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") % 2**31


def build_inputs(modules: list, settings: Settings, notebook: nbformat.NotebookNode) -> dict:
    """Hidden inputs from one recorded seed: the same for every submission and every run,
    with a seed of its own for each probe."""
    generator = torch.Generator().manual_seed(settings.seed)
    inputs: dict = {}
    for module in modules:
        inputs.update(module.make_inputs(generator, settings.as_dict(), notebook))
    inputs[PROBE_SEEDS] = {key: derived_seed(settings.seed, key)
                           for work in planned_work(modules) for key in work.keys}
    return inputs


def late_inputs(modules: list, settings: Settings, digest: str) -> dict[str, int]:
    """The steps' late inputs for one submission: seeds the kernel cannot know before the
    step that uses them, the same on every regrade of the same notebook."""
    return {key: derived_seed(settings.seed, digest, key)
            for _, step in probe_steps(modules) for key in step.late}


def kernel_inputs(inputs: dict, late: dict) -> dict:
    """What the kernel may see from the start: neither the checks' secrets (the true
    weights, say) nor the late inputs."""
    return {k: v for k, v in inputs.items() if not k.startswith(SECRET) and k not in late}


def probe_steps(modules: list) -> list[tuple[str, ProbeStep]]:
    return [(m.PROBES, step) for m in modules if hasattr(m, "PROBES") for step in m.PROBE_STEPS]


def step_timeout(step: ProbeStep, settings: Settings) -> float:
    return settings.epoch_timeout if step.long else settings.probe_timeout


_REFERENCE_PROBES: dict[tuple[str, str], Probe] = {}


def reference_probe(notebook: str, modules: list, settings: Settings) -> Probe:
    """The reference run through the same probes: once per process and settings, its
    observations kept on disk for the next process (the probes train models: seconds)."""
    key = (notebook, settings.digest())
    if key not in _REFERENCE_PROBES:
        solution = read_notebook(REFERENCE / f"{notebook}.ipynb")
        inputs = build_inputs(modules, settings, solution)
        probe = Probe(reference_functions(notebook), inputs, None, settings.epoch_timeout)
        stored = stored_reference(notebook, settings)
        observed = stored_observations(stored, modules)
        for module, step in probe_steps(modules):
            if step.setup or not observed:
                run_table(probe, module, step.table, step.keys, step_timeout(step, settings))
        failed = [k for k, v in probe.observations.items() if not v["ok"]]
        if failed:
            raise RuntimeError(f"the reference failed its own probes: {failed}")
        if stored and not observed:
            store_verified(stored, plain_bytes(probe.observations))
        probe.observations = {**observed, **probe.observations}
        _REFERENCE_PROBES[key] = probe
    return _REFERENCE_PROBES[key]


def stored_reference(notebook: str, settings: Settings) -> Path | None:
    """Where the reference's observations are kept between runs; None where a kernel could
    rewrite them (no sandbox, the grader's own uid) or no data or cache folder is found."""
    if not kernels_isolated(settings.sandbox):
        return None
    try:
        data = data_stamp(data_files(find_data_dir()))
    except DataNotFound:
        return None
    return private_entry(f"reference-{notebook}", settings.digest(), data)


def plain_bytes(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def stored_observations(path: Path | None, modules: list) -> dict:
    """The reference's observations from an earlier run, if the entry is intact, every
    probe is there and passed; {} otherwise."""
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
    expected = {key for work in planned_work(modules) for key in work.keys}
    complete = set(observations) == expected and all(v["ok"] for v in observations.values())
    return observations if complete else {}


def time_reference(probe: Probe, modules: list, settings: Settings,
                   late: dict[str, int]) -> tuple[float | None, dict]:
    """Run the reference's timed steps now, beside the student's, in the same conditions
    and with the submission's late inputs; their seconds and observations."""
    seconds, observed, kept = None, {}, dict(probe.observations)
    probe.inputs.update(late)
    for work in planned_work(modules):
        if work.step.timed:
            started = time.perf_counter()
            run_table(probe, work.module, work.step.table, work.keys,
                      step_timeout(work.step, settings))
            seconds = time.perf_counter() - started
            observed.update({key: probe.observations[key] for key in work.keys})
    probe.observations = kept
    return seconds, observed


@dataclass
class StepWork:
    """One probe step with its keys spelled out, so a rerun can start after any of them."""

    module: str
    step: ProbeStep
    keys: list[str]


@dataclass
class KernelProbing:
    """What one kernel gave back and, if something killed it (`dead` says how), where: in a
    notebook cell (`stopped_cell`) or in a probe (`stopped_probing`)."""

    observations: dict
    seconds: float | None
    errors: list[CellRecord]
    notes: list[str]
    dead: str | None
    stopped_cell: int | None
    stopped_probing: bool


def planned_work(modules: list) -> list[StepWork]:
    """Every probe step with its keys spelled out, in the order the kernel runs them."""
    work = []
    for module, step in probe_steps(modules):
        table = getattr(importlib.import_module(module), step.table)
        work.append(StepWork(module, step, [k for k in table
                                            if step.keys is None or k in step.keys]))
    return work


def left_to_run(work: list[StepWork], observed: dict) -> list[StepWork]:
    left = [replace(w, keys=[k for k in w.keys if k not in observed]) for w in work]
    return [w for w in left if w.keys]


def probe_in_kernel(notebook: nbformat.NotebookNode, work: list[StepWork], inputs: dict,
                    late: dict[str, int], settings: Settings,
                    kernel: LaunchedKernel) -> KernelProbing:
    """Run the notebook and then the probes of `work` in one fresh kernel.

    A timed step is timed from outside, as the whole cell: a hook the notebook set on
    cells can only add to its time, and its observations count only if they come back
    within that cell."""
    seconds, notes = None, []
    with KernelRun(notebook, kernel, settings.cell_timeout, settings.total_timeout) as run:
        run.run_notebook()
        run.run_code(FREE_MEMORY, GRACE_SECONDS)
        opened = run.run_code(OPEN_PROBE.format(inputs=encode(kernel_inputs(inputs, late)),
                                                timeout=settings.probe_timeout),
                              GRACE_SECONDS + 30)
        if opened.error:
            notes.append(f"The grader could not start its probes: {opened.error}")
        for item in work:
            timeout = step_timeout(item.step, settings)
            step_late = {key: late[key] for key in item.step.late}
            outcome = run.run_code(
                RUN_STEP.format(module=item.module, table=item.step.table, keys=item.keys,
                                timeout=timeout, late=encode(step_late) if step_late else None),
                timeout * len(item.keys) + GRACE_SECONDS, expect=item.keys)
            if item.step.timed and outcome.error is None:
                seconds = outcome.seconds
        if run.dead:
            notes.append(f"Grading stopped early: {run.dead}.")
        if run.client.output_dropped:
            notes.append("The notebook printed more output than the grader keeps; "
                         "the rest was dropped.")
        notes.extend(dict.fromkeys(run.reader.problems))
    return KernelProbing(run.reader.observations, seconds, run.errors, notes, run.dead,
                         run.stopped_cell, stopped_probing=bool(run.dead) and not opened.error)


def without_cells(notebook: nbformat.NotebookNode, skipped: set[int]) -> nbformat.NotebookNode:
    """A copy to run again, the cells that stopped the kernel left out (indices kept)."""
    copy_ = copy.deepcopy(notebook)
    for index in skipped:
        copy_.cells[index].source = "# not run again: this cell stopped the kernel"
    return copy_


def stopped_by(culprit: str, work: list[StepWork], why: str, uses: dict) -> dict:
    """The probe that stopped the kernel fails, and so do the other probes of its function
    and those that call it (`uses`): run again, they would most likely stop the fresh kernel
    too."""
    function = function_of(culprit)
    return {key: failure("KernelStopped", f"the kernel stopped while running this probe: {why}"
                         if key == culprit else f"not run: the probe {culprit} stopped the kernel")
            for item in work for key in item.keys
            if function_of(key) == function or function in uses.get(key, ())}


def observe(notebook: nbformat.NotebookNode, modules: list, inputs: dict, late: dict[str, int],
            settings: Settings, result: Result,
            kernels: KernelPool) -> tuple[dict, float | None]:
    """Run the notebook and the probes in a fresh kernel; return what came back.

    A notebook cell that kills the kernel (or hangs it past an interrupt) is left out of a
    rerun in a fresh kernel, as a cell that times out is passed over; a probe that does so
    fails with the probes that depend on its function, and a fresh kernel runs the rest. At
    most MAX_RESTARTS reruns: one bad cell or function does not cost every later mark.
    """
    work, observations, seconds, skipped = planned_work(modules), {}, None, set()
    uses = {key: functions for m in modules for key, functions in
            getattr(m, "PROBE_USES", {}).items()}
    for attempt in range(MAX_RESTARTS + 1):
        try:
            run = probe_in_kernel(without_cells(notebook, skipped), work, inputs, late,
                                  settings, kernels.take())
        except RuntimeError as error:
            if attempt == 0:
                raise
            result.notes.append(f"The fresh kernel could not start: {error}")
            break
        known = {record.index for record in result.errors}
        result.errors.extend(e for e in run.errors if e.index not in known)
        observations.update(run.observations)
        seconds = seconds if seconds is not None else run.seconds
        work = left_to_run(work, observations)
        rerun = None
        if work and attempt < MAX_RESTARTS and run.stopped_cell is not None:
            skipped.add(run.stopped_cell)
            rerun = (f"Cell {run.stopped_cell} stopped the kernel ({run.dead}); the grader ran "
                     f"the notebook again in a fresh kernel without it.")
        elif work and attempt < MAX_RESTARTS and run.stopped_probing:
            culprit = work[0].keys[0]
            observations.update(stopped_by(culprit, work, run.dead, uses))
            work = left_to_run(work, observations)
            rerun = (f"The probe {culprit} stopped the kernel; the grader ran the notebook "
                     f"again in a fresh kernel for the probes after it.") if work else None
        if rerun is None:  # the last run's notes stand; a rerun's replace its predecessor's
            result.notes.extend(run.notes)
            break
        result.notes.append(rerun)
    return observations, seconds


def checks_of(modules: list, settings: Settings) -> list[Check]:
    return [c for m in modules for c in configured(m, settings.points, settings.hidden)]


def fail_all(modules: list, settings: Settings, message: str) -> list[TestResult]:
    return [check.result(False, message) for check in checks_of(modules, settings)]


def timed_keys(modules: list) -> list[str]:
    return [key for work in planned_work(modules) if work.step.timed for key in work.keys]


def grade_notebook(path: Path | None, name: str, settings: Settings, result: Result,
                   kernels: KernelPool) -> None:
    modules = modules_for(name)
    if path is None:
        missing = f"no notebook {name}.ipynb in the submission"
        result.tests.extend(fail_all(modules, settings, missing))
        return
    try:
        notebook = read_notebook(path)
    except NotebookUnreadable as error:
        result.tests.extend(fail_all(modules, settings, str(error)))
        return
    inputs = build_inputs(modules, settings, notebook)
    late = late_inputs(modules, settings, result.digest)
    started = time.perf_counter()
    try:
        observations, seconds = observe(notebook, modules, inputs, late, settings, result,
                                        kernels)
    except RuntimeError as error:  # the kernel died before it ran a line of the notebook
        result.notes.append(f"The kernel could not start: {error}")
        result.tests.extend(fail_all(modules, settings, f"not graded: the kernel could not "
                                                        f"start ({error})"))
        return
    result.execution_seconds += time.perf_counter() - started
    reference = reference_probe(name, modules, settings)
    reference_seconds, timed_reference = time_reference(reference, modules, settings, late)
    timing = None
    if reference_seconds is not None:
        trained = all(observations.get(key, {}).get("ok") for key in timed_keys(modules))
        timing = Timing(settings.device, seconds if trained else None, reference_seconds,
                        settings.max_epoch_ratio)
        result.timing = timing
    planned = frozenset(key for work in planned_work(modules) for key in work.keys)
    context = Context(observations, {**reference.observations, **timed_reference},
                      {**inputs, **late}, settings.as_dict(), timing, hints_for(modules),
                      planned=planned)
    result.tests.extend(evaluate_all(checks_of(modules, settings), context))
    for module in modules:
        if hasattr(module, "curves"):
            result.curves.extend(module.curves(context))


def grade_submission(submission: Submission, settings: Settings,
                     kernels: KernelPool | None = None) -> Result:
    """The full verdict on one student's submission; never raises for bad student input.

    `kernels` hands out a kernel per notebook; a batch passes one pool for all its
    submissions, so the next kernel boots while this one is graded.
    """
    settings = settings.resolved()
    result = Result(
        student=submission.student,
        source=str(submission.path),
        digest=submission.digest(),
        grader_version=__version__,
        config_digest=settings.digest(),
        seeds={"inputs": settings.seed},
        notes=list(submission.problems),
    )
    wanted = notebooks()
    matched = match_notebooks(submission, wanted)
    result.notes = list(submission.problems)
    unsandboxed = describe_sandbox(settings.sandbox)
    if unsandboxed:
        result.notes.append(unsandboxed)
    if submission.refused:
        result.notes.append(f"Not graded: {submission.refused}.")
        for name in wanted:
            result.tests.extend(fail_all(modules_for(name), settings,
                                         f"not graded: {submission.refused}"))
        return result
    pool = kernels or KernelPool(hiding(settings.sandbox, submission.path.parent),
                                 settings.device.startswith("cuda"), ahead=False)
    try:
        for name in wanted:
            grade_notebook(matched.get(name), name, settings, result, pool)
    finally:
        if kernels is None:
            pool.close()
    return result
