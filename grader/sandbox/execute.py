"""Running a notebook in a fresh kernel with nbclient, then the grader's probe cells.

Every failure of the student's code is recorded, never raised: a cell error, a cell that
runs past its timeout (the kernel is interrupted and grading goes on), a kernel that dies,
a notebook that runs past the total timeout or past what is left of the unit's budget
(grader/sandbox/budget.py). Callers see one small class, `KernelRun`.
Observations come back on the kernel's channel, as display messages of the grader's own
type sent while a grader cell runs; they go to `KernelRun.reader`, never into the notebook.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from grader.grading.results import CellRecord
from grader.kernel.probing import OBSERVATION_MIME
from grader.sandbox.budget import OUT_OF_TIME, Budget
from grader.sandbox.kernels import LaunchedKernel
from grader.sandbox.observations import ObservationReader

MAX_OUTPUT_CHARS = 2_000_000
MAX_SOURCE_CHARS = 4_000
PING_SECONDS = 10
SELF_CHECK_TAG = "selfcheck"  # students' own checks: advice, not needed for grading
# How jupyter_client's errors for a message whose signature does not verify begin.
FORGED_MESSAGE = ("Invalid Signature", "Duplicate Signature")
TIMED_OUT = ("CellTimeout", OUT_OF_TIME)  # how the error of an interrupted cell begins


def fresh(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A node to run `cell` in, of its type, source and tags alone: a run writes its outputs
    into nothing of the submission's, and no other metadata of the student's reaches
    nbclient."""
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return nbformat.NotebookNode(
        cell_type=cell.get("cell_type"), source=cell.get("source", ""), outputs=[],
        metadata=nbformat.NotebookNode(tags=[tag for tag in tags if isinstance(tag, str)]
                                       if isinstance(tags, list) else []))


class CappedClient(NotebookClient):
    """An nbclient that keeps at most MAX_OUTPUT_CHARS of output, so 100 MB of prints
    cannot exhaust the grader's memory, and hands observations sent during the grader's
    own cells (index `first_grader_cell` on) to `reader`."""

    output_chars = 0
    output_dropped = False
    first_grader_cell = 0
    reader: ObservationReader | None = None

    def output(self, outs, msg, display_id, cell_index):
        data = msg.get("content", {}).get("data")
        if isinstance(data, dict) and OBSERVATION_MIME in data:
            if self.reader is not None and cell_index >= self.first_grader_cell:
                self.reader.receive(data[OBSERVATION_MIME])
            return None
        size = len(str(msg.get("content", "")))
        if self.output_chars + size > MAX_OUTPUT_CHARS:
            self.output_dropped = True
            return None
        self.output_chars += size
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class Outcome:
    """How one cell went: None error means it completed without raising."""

    error: str | None
    seconds: float


class KernelRun:
    """One kernel for one notebook: run its cells, then run grader code in the same kernel;
    with a `budget`, nothing runs past its end."""

    def __init__(self, notebook: nbformat.NotebookNode, kernel: LaunchedKernel,
                 cell_timeout: float, total_timeout: float, skip_tag: str | None = SELF_CHECK_TAG,
                 budget: Budget | None = None):
        self.notebook = notebook
        self.kernel = kernel
        self.workdir = kernel.workdir
        self.cell_timeout = cell_timeout
        self.total_timeout = total_timeout
        self.budget = budget or Budget(math.inf, math.inf)
        self.deadline = time.monotonic() + total_timeout
        self.student_cells = len(notebook.cells)
        self.errors: list[CellRecord] = []
        self.last_error: str | None = None
        self.dead: str | None = None
        self.stopped_cell: int | None = None  # the notebook cell the kernel died in
        self.client = CappedClient(
            notebook,
            km=kernel.manager,
            timeout=cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": "CellTimeout", "evalue": "", "traceback": []},
            kernel_name="python3",
            shutdown_kernel="immediate",
            skip_cells_with_tag=skip_tag or "",
            resources={"metadata": {"path": str(kernel.workdir)}},
            on_cell_error=self.record_error,
        )
        self.reader = self.client.reader = ObservationReader()
        self.client.first_grader_cell = self.student_cells
        self.stack = ExitStack()

    def __enter__(self) -> KernelRun:
        self.stack.callback(self.kernel.close)
        try:
            self.kernel.started()
            # The manager is ours, not nbclient's: ask it to shut the kernel down anyway.
            self.stack.enter_context(self.client.setup_kernel(cleanup_kc=True))
            # First at exit: nbclient's shutdown, next, would otherwise wait to see it die.
            self.stack.callback(self.kernel.kill)
            # The kernel has bound its sockets: from now on it may run student code, so
            # it may no longer rename what the grader connects to.
            self.kernel.lock_channels()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.stack.close()
        except Exception:  # noqa: BLE001 - a kernel that will not shut down is already dead
            pass

    def record_error(self, cell, cell_index, execute_reply) -> None:
        content = execute_reply["content"]
        name = content.get("ename", "Error")
        message = content.get("evalue", "")
        if name == "CellTimeout" and self.budget.spent():
            name, message = OUT_OF_TIME, f"{self.budget.note()}; the cell was interrupted"
        elif name == "CellTimeout":
            message = f"the cell ran longer than {self.client.timeout:g} s and was interrupted"
        self.last_error = f"{name}: {message}".strip(": ")
        if cell_index < self.student_cells:
            self.errors.append(CellRecord(
                index=cell_index,
                source=str(cell.source)[:MAX_SOURCE_CHARS],
                error=self.last_error,
                traceback="\n".join(content.get("traceback") or [])[-20_000:],
            ))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def execute(self, index: int, timeout: float | None = None) -> Outcome:
        """Run cell `index`: a notebook cell within the cell and the total timeout, a grader
        cell within its own `timeout`; either within what is left of the budget."""
        started = time.monotonic()
        self.last_error = None
        if self.dead:
            return Outcome(self.dead, 0.0)
        cell = self.notebook.cells[index] = fresh(self.notebook.cells[index])
        limit = min(timeout if timeout is not None else min(self.cell_timeout, self.remaining()),
                    self.budget.left())
        if limit <= 0:
            return Outcome(f"{OUT_OF_TIME}: {self.budget.note()}", 0.0)
        self.client.timeout = max(1, math.ceil(limit))
        try:
            self.client.execute_cell(cell, index)
            if self.kernel.sandbox_lost():  # the cell killed it; the kernel is yet to die
                self.kernel.kill()
                raise DeadKernelError("Kernel died")
            # Once the budget is spent nothing more runs here: the kernel is only closed.
            if self.last_error and self.last_error.startswith("CellTimeout"):
                self.expect_responsive()
        except DeadKernelError as error:
            self.stop(index, str(error) if str(error) != "Kernel died" else (
                "the kernel died: it crashed, exited, or hit a resource limit "
                "(memory, CPU time, processes or file size)"))
        except ValueError as error:  # jupyter_client's verdict on a message's signature
            if not str(error).startswith(FORGED_MESSAGE):
                raise
            self.kernel.kill()
            self.stop(index, "the kernel sent a message the grader could not authenticate "
                             "(forged, replayed or cut short as it died), and was stopped")
        elapsed = time.monotonic() - started
        if self.dead:
            return Outcome(self.dead, elapsed)
        return Outcome(self.last_error, elapsed)

    def stop(self, index: int, why: str) -> None:
        """The kernel is gone: say why, and in which notebook cell if it was one."""
        self.dead = why
        if index < self.student_cells:
            self.stopped_cell = index
            self.errors.append(CellRecord(index, str(self.notebook.cells[index].source)[
                :MAX_SOURCE_CHARS], "DeadKernel: " + why, ""))

    def expect_responsive(self) -> None:
        """After a timeout the kernel was interrupted; one that ignores it is killed, or every
        later cell would wait out its own timeout too."""
        self.notebook.cells.append(nbformat.v4.new_code_cell("None"))
        self.client.timeout = PING_SECONDS
        saved, self.last_error = self.last_error, None
        self.client.execute_cell(self.notebook.cells[-1], len(self.notebook.cells) - 1)
        if self.last_error and self.last_error.startswith(TIMED_OUT):
            self.kernel.kill()
            raise DeadKernelError("the kernel ignored the interrupt after a timeout")
        self.last_error = saved

    def run_notebook(self) -> None:
        """Every code cell in order, going on past failures until the kernel is gone or the
        total time (or the budget) is spent."""
        self.deadline = min(time.monotonic() + self.total_timeout, self.budget.ends)
        for index, cell in enumerate(list(self.notebook.cells)):
            if cell.cell_type != "code":
                continue
            if self.remaining() <= 0:
                why = f"{OUT_OF_TIME}: {self.budget.note()}" if self.budget.spent() else (
                    f"TotalTimeout: the notebook ran past its total limit of "
                    f"{self.total_timeout:g} s")
                self.errors.append(CellRecord(
                    index, str(cell.source)[:MAX_SOURCE_CHARS],
                    f"{why}; this cell and the ones after it were not run", ""))
                return
            self.execute(index)
            if self.dead:
                return

    def run_code(self, source: str, timeout: float, expect: list[str] | None = None) -> Outcome:
        """Run grader code in the student's kernel as one more cell, taking the observations
        of the keys in `expect` that it sends back (and no others)."""
        self.notebook.cells.append(nbformat.v4.new_code_cell(source))
        self.reader.expect(expect or [])
        try:
            return self.execute(len(self.notebook.cells) - 1, timeout)
        finally:
            self.reader.expect([])
