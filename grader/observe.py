"""Running one notebook and the probes in fresh kernels, and what comes back.

The kernel gets its inputs in the source of the grader's cells and hands observations back
on its channel (grader/observations.py reads them within bounds); the grader writes nothing
into, and reads nothing from, the kernel's folder. A cell or a probe that stops the kernel
is passed over in a fresh one, at most MAX_RESTARTS times.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

from grader import course
from grader.config import Settings
from grader.execute import KernelRun
from grader.exercise import Exercise
from grader.inputs import kernel_inputs
from grader.kernel.probing import COURSE_PACKAGE, encode
from grader.kernels import KernelPool, LaunchedKernel
from grader.notebook import without_cells
from grader.plan import StepWork, left_to_run, planned_work, step_timeout, stopped_by
from grader.results import CellRecord, Result, cpu_key, runnable_key

# A failed cell's traceback (sys.last_*) can pin gigabytes: freed in a cell of its own, as
# the next one's source (the inputs, a megabyte) is compiled before any of its lines run.
FREE_MEMORY = ("import gc, sys\nsys.last_type = sys.last_value = sys.last_traceback = None\n"
               "gc.collect()")
OPEN_PROBE = (
    "import grader.kernel.probing as _grader_probing\n{course}"
    "_grader_probe = _grader_probing.open_probe(get_ipython().user_ns, {inputs!r}, {timeout!r})"
)
COURSE_MODULES = "_grader_probing.course_modules({folder!r})\n"
RUN_STEP = ("_grader_probing.run_table(_grader_probe, {module!r}, {table!r}, {keys!r}, "
            "{timeout!r}, {late!r})")
GRACE_SECONDS = 15.0
MAX_RESTARTS = 2  # fresh kernels after a cell or probe stops one; each reruns the notebook
STOPPED = "not run again: this cell stopped the kernel"
DEMO = "a given demo, left as given: not run while grading"
RUN_WHOLE = ("A NameError said a name that only a given demo cell defines was needed; the "
             "grader ran the notebook again with its demo cells.")


@dataclass
class KernelProbing:
    """What one kernel gave back and, if something killed it (`dead` says how), where: in a
    notebook cell (`stopped_cell`) or in a probe (`stopped_probing`)."""

    observations: dict
    seconds: dict[str, float]  # by timed step
    errors: list[CellRecord]
    notes: list[str]
    dead: str | None
    stopped_cell: int | None
    stopped_probing: bool


def course_modules(work: list[StepWork]) -> str:
    """The line that lets the kernel import the course's own probe modules, if any run."""
    if any(item.module.split(".")[0] == COURSE_PACKAGE for item in work):
        return COURSE_MODULES.format(folder=str(course.current().plugins))
    return ""


def probe_in_kernel(notebook: nbformat.NotebookNode, work: list[StepWork], inputs: dict,
                    late: dict[str, int], settings: Settings,
                    kernel: LaunchedKernel) -> KernelProbing:
    """Run the notebook and then the probes of `work` in one fresh kernel.

    A timed step is timed from outside, as the whole cell: a hook the notebook set on
    cells can only add to its time, and its observations count only if they come back
    within that cell."""
    seconds: dict[str, float] = {}
    notes: list[str] = []
    with KernelRun(notebook, kernel, settings.cell_timeout, settings.total_timeout) as run:
        run.run_notebook()
        run.run_code(FREE_MEMORY, GRACE_SECONDS)
        opened = run.run_code(OPEN_PROBE.format(course=course_modules(work),
                                                inputs=encode(kernel_inputs(inputs, late)),
                                                timeout=settings.probe_timeout),
                              GRACE_SECONDS + 30)
        if opened.error:
            notes.append(f"The grader could not start its probes: {opened.error}")
        for item in work:
            timeout = step_timeout(item.step, settings)
            step_late = {key: late[key] for key in item.step.late}
            cpu_before = kernel.group.cpu_seconds() if kernel.group else None
            runnable_before = kernel.group.runnable() if kernel.group else {}
            outcome = run.run_code(
                RUN_STEP.format(module=item.module, table=item.step.table, keys=item.keys,
                                timeout=timeout, late=encode(step_late) if step_late else None),
                timeout * len(item.keys) + GRACE_SECONDS, expect=item.keys)
            if item.step.timed and outcome.error is None:
                seconds[item.name] = outcome.seconds
                cpu_after = kernel.group.cpu_seconds() if kernel.group else None
                if cpu_before is not None and cpu_after is not None:
                    seconds[cpu_key(item.name)] = cpu_after - cpu_before
                    seconds[runnable_key(item.name)] = sum(
                        ns - runnable_before.get(tid, 0)
                        for tid, ns in kernel.group.runnable().items()) / 1e9
        if run.dead:
            notes.append(f"Grading stopped early: {run.dead}.")
        if run.client.output_dropped:
            notes.append("The notebook printed more output than the grader keeps; "
                         "the rest was dropped.")
        notes.extend(dict.fromkeys(run.reader.problems))
    return KernelProbing(run.reader.observations, seconds, run.errors, notes, run.dead,
                         run.stopped_cell, stopped_probing=bool(run.dead) and not opened.error)


def observe(notebook: nbformat.NotebookNode, exercises: list[Exercise], inputs: dict,
            late: dict[str, int], settings: Settings, result: Result, kernels: KernelPool,
            demos: set[int] | None = None) -> tuple[dict, dict[str, float]]:
    """Run the notebook and the probes in a fresh kernel; return what came back.

    The given demo cells `demos` are left out (grader/handout.py); if a NameError, in a cell or
    a probe, says a name one of them binds was looked up at run time, the notebook runs
    again with them, as if they had never been left out."""
    if demos:
        errors, notes = list(result.errors), list(result.notes)
        observations, seconds = observe_runs(notebook, exercises, inputs, late, settings,
                                             result, kernels, dict.fromkeys(demos, DEMO))
        if not name_missing(observations, result.errors):
            return observations, seconds
        result.errors, result.notes = errors, [*notes, RUN_WHOLE]
    return observe_runs(notebook, exercises, inputs, late, settings, result, kernels, {})


def name_missing(observations: dict, errors: list[CellRecord]) -> bool:
    return (any(o.get("error") == "NameError" for o in observations.values())
            or any(e.error.startswith("NameError") for e in errors))


def observe_runs(notebook: nbformat.NotebookNode, exercises: list[Exercise], inputs: dict,
                 late: dict[str, int], settings: Settings, result: Result, kernels: KernelPool,
                 left_out: dict[int, str]) -> tuple[dict, dict[str, float]]:
    """Run the notebook (less the cells `left_out`) and the probes in fresh kernels.

    A notebook cell that kills the kernel (or hangs it past an interrupt) is left out of a
    rerun in a fresh kernel, as a cell that times out is passed over; a probe that does so
    fails with the probes that depend on its function, and a fresh kernel runs the rest. At
    most MAX_RESTARTS reruns: one bad cell or function does not cost every later mark.
    """
    work, observations, seconds = planned_work(exercises), {}, {}
    uses = {key: functions for e in exercises for key, functions in e.probe_uses.items()}
    for attempt in range(MAX_RESTARTS + 1):
        try:
            run = probe_in_kernel(without_cells(notebook, left_out), work, inputs, late,
                                  settings, kernels.take())
        except RuntimeError as error:
            if attempt == 0:
                raise
            result.notes.append(f"The fresh kernel could not start: {error}")
            result.fault = f"a fresh kernel could not start: {error}"  # graded again on resume
            break
        known = {record.index for record in result.errors}
        result.errors.extend(e for e in run.errors if e.index not in known)
        observations.update(run.observations)
        seconds = {**run.seconds, **seconds}  # a step timed in an earlier kernel stands
        work = left_to_run(work, observations)
        rerun = None
        if work and attempt < MAX_RESTARTS and run.stopped_cell is not None:
            left_out = {**left_out, run.stopped_cell: STOPPED}
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
