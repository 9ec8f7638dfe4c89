"""Running one notebook and the probes in fresh kernels, and what comes back.

The kernel gets its inputs in the source of the grader's cells and hands observations back
on its channel (grader/sandbox/observations.py reads them within bounds); the grader writes nothing
into, and reads nothing from, the kernel's folder. A cell or a probe that stops the kernel
is passed over in a fresh one, at most MAX_RESTARTS times a submission, and every kernel run
of it draws on one time budget (grader/sandbox/budget.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nbformat

from grader.authoring import course
from grader.grading.assignment import Attempt
from grader.grading.handout import names
from grader.grading.inputs import kernel_inputs
from grader.grading.plan import StepWork, left_to_run, step_timeout, stopped_by
from grader.grading.results import CellRecord, cpu_key, runnable_key
from grader.grading.timings import flattered, timing_of
from grader.kernel.probing import COURSE_PACKAGE, encode, failure
from grader.sandbox.budget import OUT_OF_TIME
from grader.sandbox.execute import KernelRun
from grader.sandbox.kernels import LaunchedKernel

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
MAX_RESTARTS = 2  # fresh kernels, a submission, after a cell or probe stops one
STOPPED = "not run again: this cell stopped the kernel"
DEMO = "a given demo, left as given: not run while grading"
RUN_WHOLE = ("A NameError said a name that only a given demo cell defines was needed; the "
             "grader ran the notebook again with its demo cells.")
DEMOS_LEFT_OUT, DEMOS_GIVEN_BACK = "given demos left out", "with the given demos"
NOT_DEFINED = re.compile(r"name '(\w+)' is not defined")  # a NameError's message


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
    terminal: str  # what its processes wrote to their stdout and stderr, escaped


def course_modules(work: list[StepWork]) -> str:
    """The line that lets the kernel import the course's own probe modules, if any run."""
    if any(item.module.split(".")[0] == COURSE_PACKAGE for item in work):
        return COURSE_MODULES.format(folder=str(course.current().plugins))
    return ""


def probe_in_kernel(attempt: Attempt, notebook: nbformat.NotebookNode, work: list[StepWork],
                    kernel: LaunchedKernel) -> KernelProbing:
    """Run `notebook` (the attempt's, less what a rerun leaves out) and then the probes of
    `work` in one fresh kernel, on the attempt's budget.

    A timed step is timed from outside, as the whole cell: a hook the notebook set on
    cells can only add to its time, and its observations count only if they come back
    within that cell. The reference's timed steps start beside the first, in the grader."""
    settings, late = attempt.settings, attempt.late
    seconds: dict[str, float] = {}
    notes: list[str] = []
    with KernelRun(notebook, kernel, settings.cell_timeout, settings.total_timeout,
                   budget=attempt.budget) as run:
        run.run_notebook()
        run.run_code(FREE_MEMORY, GRACE_SECONDS)
        opened = run.run_code(OPEN_PROBE.format(course=course_modules(work),
                                                inputs=encode(kernel_inputs(attempt.inputs,
                                                                            late)),
                                                timeout=settings.probe_timeout),
                              GRACE_SECONDS + 30)
        # A dead kernel is said below, a spent budget by observe: each once.
        if opened.error and not run.dead and not opened.error.startswith(OUT_OF_TIME):
            notes.append(f"The grader could not start its probes: {opened.error}")
        for item in work:
            if item.step.part_of and not parts_timed(attempt, item.step.part_of,
                                                     run.reader.observations, seconds):
                continue
            timeout = step_timeout(item.step, settings)
            step_late = {key: late[key] for key in item.step.late}
            if item.step.timed:  # first: the kernel's clocks below start after the wait
                with attempt.budget.paused():
                    attempt.reference.start()
            cpu_before = kernel.group.cpu_seconds() if kernel.group else None
            runnable_before = kernel.group.runnable() if kernel.group else {}
            outcome = run.run_code(
                RUN_STEP.format(module=item.module, table=item.table, keys=item.keys,
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
                         run.stopped_cell, stopped_probing=bool(run.dead) and not opened.error,
                         terminal=kernel.terminal_output())


def parts_timed(attempt: Attempt, whole: str, observations: dict,
                seconds: dict[str, float]) -> bool:
    """Whether the parts of the step `whole` are timed, here and by the reference: only
    where its verdict may read them, to say which function is slow (timing beside the
    reference may have flattered the step, grader/grading/timings.py). Each part cost
    both sides an epoch's batches: 0.2 s of CPU time a submission. Decided once, when both
    figures of the step are in; the grader's wait for the reference's is given back."""
    reference = attempt.reference
    decided = reference.decided(whole)
    if decided is not None:
        return decided
    with attempt.budget.paused():
        reference.start()  # already, unless the step was timed in a kernel before this one
        figures = reference.figures_of(whole)
    step = next(work for work in attempt.assignment.timed if work.name == whole)
    wanted = bool(figures) and flattered(timing_of(step, observations, seconds, figures,
                                                   attempt.settings))
    reference.explain(whole, wanted)
    return bool(reference.decided(whole))


def observe(attempt: Attempt, demos: set[int] | None = None) -> tuple[dict, dict[str, float]]:
    """Run the notebook and the probes in fresh kernels, all on one budget; return what came
    back, and what did not as failures once the budget is spent.

    The given demo cells `demos` are left out (grader/grading/handout.py); if a NameError, in a
    cell or a probe, names a name one of them binds, the notebook runs again with them, as if they
    had never been left out. No other NameError does: a typo, or a failed import that
    leaves a module's name unbound, raises the same with the demos run."""
    unit, result, notebook = Unit(attempt), attempt.result, attempt.notebook
    before = list(result.errors)
    observations, seconds = unit.run_pass(dict.fromkeys(demos or (), DEMO),
                                          DEMOS_LEFT_OUT if demos else "")
    if demos and not attempt.budget.spent() and (
            missing_names(observations, result.errors) & bound_by(notebook, demos)):
        # The cells that stopped a kernel stay left out, and their records stay.
        result.errors = [*before, *(e for e in result.errors if e.index in unit.stopped)]
        unit.say(RUN_WHOLE)
        again, again_seconds = unit.run_pass({}, DEMOS_GIVEN_BACK)
        observations, seconds = {**observations, **again}, {**seconds, **again_seconds}
    if attempt.budget.spent():
        unit.say(f"Grading stopped: {attempt.budget.note()}; what was not observed by then "
                 "fails.")
        observations = {**dict.fromkeys(attempt.assignment.keys, failure(
            OUT_OF_TIME, attempt.budget.note())), **observations}
    result.notes.extend(unit.labelled(unit.notes))
    result.kernel_output = "\n".join(unit.labelled(unit.terminal))
    return observations, seconds


def missing_names(observations: dict, errors: list[CellRecord]) -> set[str]:
    """The names NameErrors said were not defined, in the notebook's cells or in probes."""
    said = [str(entry.get("message", "")) for entry in observations.values()
            if entry.get("error") == "NameError"]
    said += [error.error for error in errors if error.error.startswith("NameError:")]
    return {name for text in said for name in NOT_DEFINED.findall(text)}


def bound_by(notebook: nbformat.NotebookNode, cells: set[int]) -> set[str]:
    """The names the given cells bind (the course's own cells, matched by digest: safe to
    parse)."""
    return set().union(*(names(notebook.cells[index].source)[1] for index in cells))


def runnable(notebook: nbformat.NotebookNode, left_out: dict[int, str]) -> nbformat.NotebookNode:
    """The notebook one kernel run goes through, with the cells `left_out` replaced by a
    comment saying why (indices kept). Its list of cells is its own and KernelRun runs a
    fresh node of each cell: no copy of the submission, whose outputs may be megabytes."""
    cells = list(notebook.cells)
    for index, why in left_out.items():
        cells[index] = nbformat.NotebookNode(cell_type="code", source=f"# {why}",
                                             metadata=nbformat.NotebookNode(), outputs=[])
    return nbformat.NotebookNode(nbformat=4, nbformat_minor=5,
                                 metadata=nbformat.NotebookNode(), cells=cells)


@dataclass
class Unit:
    """One attempt's kernel runs, and what they learn as they go: the restarts left, the
    cells and probes known to stop a kernel, and the notes."""

    attempt: Attempt
    restarts: int = MAX_RESTARTS
    stopped: dict[int, str] = field(default_factory=dict)  # cells that stopped a kernel
    killed: dict = field(default_factory=dict)  # failed probes: one stopped a kernel
    notes: list[tuple[str, str]] = field(default_factory=list)  # (kernel run or "", note)
    terminal: list[tuple[str, str]] = field(default_factory=list)  # (kernel run, its output)

    def say(self, note: str) -> None:
        self.notes.append(("", note))

    def labelled(self, entries: list[tuple[str, str]]) -> list[str]:
        """Every run's notes (or output) in order, each labelled by its kernel run where
        there were several."""
        return [f"{run}: {text}" if run and self.attempt.budget.runs > 1 else text
                for run, text in entries]

    def run_pass(self, demos: dict[int, str], label: str) -> tuple[dict, dict[str, float]]:
        """Run the notebook (less `demos` and the cells known to stop a kernel) and the
        probes in fresh kernels.

        A notebook cell that kills the kernel (or hangs it past an interrupt) is left out of
        a rerun in a fresh kernel, as a cell that times out is passed over; a probe that does
        so fails with the probes that depend on its function, and a fresh kernel runs the
        rest: one bad cell or function does not cost every later mark."""
        attempt, budget = self.attempt, self.attempt.budget
        work = left_to_run(list(attempt.assignment.work), self.killed)
        observations, seconds = dict(self.killed), {}
        while True:
            budget.runs += 1
            run_label = f"Kernel run {budget.runs}" + (f" ({label})" if label else "")
            try:
                run = probe_in_kernel(attempt, runnable(attempt.notebook,
                                                        {**demos, **self.stopped}),
                                      work, attempt.kernels.take())
            except RuntimeError as error:
                if budget.runs == 1:
                    raise
                self.say(f"The fresh kernel could not start: {error}")
                attempt.result.fault = f"a fresh kernel could not start: {error}"  # graded again
                break
            known = {record.index for record in attempt.result.errors}
            attempt.result.errors.extend(e for e in run.errors if e.index not in known)
            observations.update(run.observations)
            seconds = {**run.seconds, **seconds}  # a step timed in an earlier kernel stands
            self.notes.extend((run_label, note) for note in run.notes)
            if run.terminal:
                self.terminal.append((run_label, run.terminal))
            work = left_to_run(work, observations)
            if not work or budget.spent():
                break
            if run.stopped_cell is not None:
                self.stopped[run.stopped_cell] = STOPPED
                rerun = (f"Cell {run.stopped_cell} stopped the kernel ({run.dead}); the grader "
                         f"ran the notebook again in a fresh kernel without it.")
            elif run.stopped_probing:
                culprit = work[0].keys[0]
                self.killed.update(stopped_by(culprit, work, run.dead, attempt.assignment.uses))
                observations.update(self.killed)
                work = left_to_run(work, observations)
                rerun = (f"The probe {culprit} stopped the kernel; the grader ran the notebook "
                         f"again in a fresh kernel for the probes after it.") if work else None
            else:
                break
            if rerun is None or not self.restarts:
                break
            self.restarts -= 1
            self.say(rerun)
        return observations, seconds
