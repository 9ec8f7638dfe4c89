"""The `grade` command: grade a folder of submissions, or build the student notebooks."""

from __future__ import annotations

import atexit
import functools
import gc
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec

import click
from click_default_group import DefaultGroup
from rich.console import Console
from rich.markup import escape

from grader import timeline
from grader.authoring import course
from grader.grading.results import JUDGED
from grader.grading.wording import NOT_HANDED_IN
from grader.imports import import_uncollected
from grader.leave import run_and_leave
from grader.scale.interrupt import Interrupted, stopping_on_signals

if TYPE_CHECKING:
    from grader.audit.outcome import Audit
    from grader.authoring.config import Settings
    from grader.grading.results import Result
    from grader.outputs.gradebook import Person
    from grader.scale.batch import BatchReport

# Importing what grades costs seconds (torch): each command imports it only when it needs it,
# so `grade --help`, `--version` and usage errors answer at once.

console = Console(stderr=True)
# At exit, what a command made is left to the process's end rather than collected object by
# object: torch's heap took about a second to tear down, after the work was done.
atexit.register(gc.freeze)
P = ParamSpec("P")
ASSIGNMENT = click.option(
    "--assignment", multiple=True, metavar="NAME",
    help="Only this assignment (repeatable; default: every one in the course's assignments/).")
ROSTER = click.option(
    "--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="A roster CSV (Canvas's gradebook export, Moodle's grading worksheet or user export, "
         "or a plain CSV with an id, login or email column): the class as the LMS knows it. "
         "Every submission is matched to one row (by the LMS id of the download's names, "
         "then by id) or named before grading; gradebook.csv carries its rows.")
LMS = click.option(
    "--lms", type=click.Choice(["canvas", "moodle", "plain"]), default="canvas",
    show_default=True,
    help="The form of gradebook.csv: Canvas's gradebook import, Moodle's grade import (no "
         "points row, one column to map users by), or a plain table.")
CONFIG = click.option(
    "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="One assignment's settings file, instead of the course's assignments/.")


@click.group(cls=DefaultGroup, default="run", default_if_no_args=False)
@click.version_option(package_name="dl-grader")
@click.option("--course", "course_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The course folder (default: the current folder if it is a "
                                 "course, else the bundled course).")
def main(course_dir: Path | None) -> None:
    """Autograder for Dive-into-Deep-Learning PyTorch notebooks.

    `grade SUBMISSIONS/` grades every notebook in a folder (same as `grade run`);
    `grade init DIR` starts a course of your own from the bundled one.
    """
    if course_dir is not None:
        try:
            course.use(course_dir)
        except course.NotACourse as error:
            raise click.UsageError(str(error)) from None


def stops_on_signals(command: Callable[P, None]) -> Callable[P, None]:
    """A command that Ctrl-C or SIGTERM stops with what it did, how to go on and the
    signal's exit code (130, 143), instead of click's bare "Aborted!"."""

    @functools.wraps(command)
    def stopping(*args: P.args, **kwargs: P.kwargs) -> None:
        with stopping_on_signals():
            try:
                command(*args, **kwargs)
            except KeyboardInterrupt as stop:
                stopped = stop if isinstance(stop, Interrupted) else Interrupted()
                console.print(f"[yellow]{stopped.message}[/yellow]", highlight=False)
                sys.exit(stopped.exit_code)

    return stopping


def chosen_assignments(config: Path | None, only: tuple[str, ...]) -> list[Settings]:
    """The assignments to work on: the one `config` describes, or the course's (all, or
    those `only` names)."""
    from grader.authoring.config import load_assignments

    return load_assignments([config] if config else course.current().assignment_files(), only)


def require_data(assignments: list[Settings]) -> None:
    """Stop before any kernel starts when a data set the assignments' exercises read is not
    found here: DataNotFound says where its loader looked and what to set."""
    from grader.authoring.datasets import needed

    for data in needed(name for settings in assignments for name in settings.exercises):
        data.find()


@main.command()
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where reports go (default: FOLDER-graded next to FOLDER).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Submissions graded in parallel.")
@click.option("--timeout", type=click.FloatRange(1), default=None,
              help="Total seconds a notebook may run (cells are also capped each).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Where the timed steps run (default: each assignment's, auto).")
@ASSIGNMENT
@CONFIG
@click.option("--force", is_flag=True, help="Regrade submissions already graded.")
@click.option("--only", multiple=True, metavar="STUDENT", help="Grade only these students.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@ROSTER
@LMS
@click.option("--scheduler", metavar="ADDRESS|local", default=None,
              help="Grade on a Dask cluster: its scheduler's address (tcp://HOST:8786), or "
                   "local for a LocalCluster of --jobs workers on this machine.")
@click.option("--profile", is_flag=True,
              help="Say where the seconds went: the grader's imports, the kernels' warm "
                   "parent, the reference, each kernel's run, the checks, the reports "
                   "(this process's phases: at --jobs 1, every one).")
@click.option("--shard", metavar="K/N", default=None,
              help="Grade only the K-th of N slices of the students (auto/N: K from "
                   "$SLURM_ARRAY_TASK_ID, or $JOB_COMPLETION_INDEX + 1); `grade collect` "
                   "merges the outputs.")
@stops_on_signals
def run(folder: Path, out: Path | None, jobs: int, timeout: float | None, device: str | None,
        assignment: tuple[str, ...], config: Path | None, force: bool, only: tuple[str, ...],
        as_json: bool, roster: Path | None, lms: str, scheduler: str | None,
        shard: str | None, profile: bool) -> None:
    """Grade every submission in FOLDER (a notebook per student, a folder per student, or an
    LMS's download: Canvas, Moodle, Gradescope) on each of the course's assignments; FOLDER
    may also be one notebook (or .zip). Ctrl-C stops it; the same command resumes."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from grader.students.intake import require_notebooks

    named = folder.resolve().stem if folder.is_file() else folder.resolve().name
    out = out or folder.parent / f"{named}-graded"
    try:  # before the imports of torch: an empty folder is told at once
        folder = staged(folder) if folder.is_file() else folder
        require_notebooks(folder)
    except (LookupError, OSError) as error:
        raise click.UsageError(str(error)) from None

    if profile:
        timeline.enable()
    with started_early(jobs, scheduler):
        import_uncollected("grader.authoring.datasets", "grader.scale.batch")
        from grader.authoring.datasets import DataNotFound
        from grader.scale.batch import grade_folder
        from grader.scale.shard import parse_shard
        from grader.students.overrides import OverrideError

        timeline.record("the grader's imports", timeline.STARTED)

        try:
            assignments = [overridden(settings, device, timeout).resolved()
                           for settings in chosen_assignments(config, assignment)]
            require_data(assignments)
            people = roster_of(roster)
            slice_ = None if shard is None else parse_shard(shard)
        except (ValueError, DataNotFound) as error:
            raise click.UsageError(str(error)) from None
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task("grading", total=None)
            try:
                report = grade_folder(
                    folder, out, assignments, jobs=jobs, force=force, only=set(only) or None,
                    on_progress=lambda done, total, running: progress.update(
                        task, completed=done, total=total,
                        description=f"grading {', '.join(running)}" if running else "done"),
                    # Without a terminal there is no bar: a line per submission says it moves.
                    on_result=(lambda *_: None) if console.is_terminal else print_finished,
                    roster=people, scheduler=scheduler, shard=slice_, lms=lms,
                )
            except (LookupError, NotADirectoryError, OverrideError,
                    *cluster_errors(scheduler)) as error:
                raise click.UsageError(str(error)) from None
        print_summary(report, out)
        spans = timeline.spans()
        timeline.enable(False)
        if profile:
            print_profile(spans, timeline.elapsed())
        if as_json:
            found = summary_json(report, out)
            if profile:
                found["profile"] = [asdict(span) for span in spans]
            click.echo(json.dumps(found, indent=2))
        if report.faults:
            console.print(f"[red]grader fault on {len(report.faults)} submission(s)[/red]; "
                          "details above. They have no score yet: run the same command again "
                          "to grade them again.")
            sys.exit(2)


@contextmanager
def started_early(jobs: int, scheduler: str | None) -> Iterator[None]:
    """What grading here needs, started before this process imports torch, which it then
    imports meanwhile: the kernels' warm parent (--jobs 1) or the workers (--jobs N); what
    the batch did not take is stopped when the command ends, however it ends."""
    if scheduler is not None:
        yield
        return
    if jobs == 1:
        from grader.sandbox import forkserver

        forkserver.start_early()
        stop = forkserver.stop_untaken
    else:
        from grader.scale import pool

        pool.start_early(jobs)
        stop = pool.stop_untaken
    try:
        yield
    finally:
        stop()


def staged(file: Path) -> Path:
    """A folder of the grader's own holding a copy of one handed-in file, graded as a class
    of one: the file's own folder may hold anything (the course, the package) and kernels
    must not see the submissions' folder."""
    from grader.students.submissions import UnsafeFile, read_submitted

    if file.suffix.lower() not in (".ipynb", ".zip"):
        raise LookupError(f"{file} is not a notebook (.ipynb) nor a .zip of one: give a "
                          "notebook, or a folder of submissions")
    try:
        data = read_submitted(file)
    except UnsafeFile as error:
        raise LookupError(f"{file} cannot be graded: {error}") from None
    folder = Path(tempfile.mkdtemp(prefix="grade-one-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / file.name).write_bytes(data)
    return folder


def cluster_errors(scheduler: str | None) -> tuple[type[Exception], ...]:
    """What a cluster raises when it cannot grade (Dask is imported only to use it)."""
    if scheduler is None:
        return ()
    from grader.scale.distributed import ClusterError

    return (ClusterError,)


def roster_of(path: Path | None) -> list[Person] | None:
    from grader.outputs.gradebook import read_roster

    return None if path is None else read_roster(path)


def print_finished(label: str, result: Result | None) -> None:
    """One line for a finished submission: its score and how long its notebook ran."""
    if result is None:
        console.print(f"{label}: grader fault (details at the end)", highlight=False)
        return
    if result.missing:
        console.print(f"{label}: {NOT_HANDED_IN}", highlight=False)
        return
    failed = sum(not test.passed for test in result.tests)
    console.print(f"{label}: {points(result.score):g} / {points(result.max_score):g}, "
                  f"{failed} failed, ran {result.execution_seconds:.1f} s", highlight=False)


def points(value: float) -> float:
    """Every score the command prints or writes as JSON: a float, two decimals."""
    return float(round(value, 2))


def overridden(settings: Settings, device: str | None, timeout: float | None) -> Settings:
    """The settings with the command line's --device and --timeout applied."""
    if device is not None:
        settings = replace(settings, device=device)
    if timeout is not None:
        settings = replace(settings, total_timeout=timeout,
                           cell_timeout=min(settings.cell_timeout, timeout))
    return settings


def print_summary(report: BatchReport, out: Path) -> None:
    from rich.table import Table

    table = Table(title="Grades")
    table.add_column("student", overflow="fold")  # a name cut short could be another's
    table.add_column("assignment", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("failed tests", justify="right")
    table.add_column("timed steps", justify="right")
    for result in sorted(report.results, key=lambda r: (r.assignment, r.student.casefold(),
                                                        r.student)):
        table.add_row(escape(result.student), result.assignment, score_cell(result),
                      "-" if result.missing else str(sum(
                          t.state == JUDGED and not t.passed for t in result.tests)),
                      timing_summary(result))
    console.print(table)
    if report.problems:  # one block, after the table: what to read before importing grades
        console.print(f"[yellow]to read ({len(report.problems)}):[/yellow]")
        for problem in report.problems:
            console.print(f"  - {escape(problem)}", highlight=False)  # names a file: "[bold]x"
    for student, fault in report.faults.items():
        console.print(f"[red]grader fault grading {escape(student)}:[/red]\n{escape(fault)}")
    absent = {f"{r.student}/{r.assignment}" for r in report.results if r.missing}
    console.print(f"graded {len(set(report.graded) - absent)}, unchanged "
                  f"{len(set(report.reused) - absent)}"
                  + (f", {NOT_HANDED_IN} {len(absent)}" if absent else "")
                  + f"; reports in {out}/ (summary.html, grades.csv, gradebook.csv)")


def print_profile(spans: list[timeline.Span], total: float) -> None:
    """Each phase's start and length, in seconds from the grader's start."""
    from rich.table import Table

    table = Table(title=f"Where the {total:.2f} s went (this process)")
    for column in ("phase", "from", "seconds"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for span in spans:
        table.add_row(span.name, f"{span.start:.2f}", f"{span.seconds:.2f}")
    console.print(table)


def score_cell(result: Result) -> str:
    """A result's score as the end table shows it: adjusted scores say so."""
    if not result.scored:
        return NOT_HANDED_IN
    mark = "*" if result.adjustments else ""
    return f"{points(result.score):g}{mark} / {points(result.max_score):g}"


def timing_summary(result: Result) -> str:
    """Each timed step's ratio to the reference, by name."""
    return ", ".join(f"{t.step} " + ("-" if t.ratio is None else f"{t.ratio:.2f}×")
                     for t in result.timings) or "-"


def summary_json(report: BatchReport, out: Path) -> dict:
    return {
        "out": str(out),
        "graded": report.graded,
        "unchanged": report.reused,
        "faults": sorted(report.faults),
        "problems": report.problems,
        "students": {student: {r.assignment: result_json(r)
                               for r in report.results if r.student == student}
                     for student in dict.fromkeys(r.student for r in report.results)},
    }


def result_json(result: Result) -> dict:
    """One result for scripts: its score (None for work not handed in, never a 0)."""
    return {"score": points(result.score) if result.scored else None,
            "max_score": points(result.max_score), "missing": result.missing,
            "adjustments": [a.reason for a in result.adjustments]}


@main.command(name="gradebook")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@ROSTER
@LMS
def gradebook_command(out: Path, roster: Path | None, lms: str) -> None:
    """Write OUT/gradebook.csv again from the results a run left in OUT, with the roster,
    overrides.csv and late policies as they are now (say, a roster obtained since, or an
    override added), regrading nothing."""
    from grader.scale.batch import rewrite_gradebook
    from grader.students.overrides import OverrideError

    try:
        count, problems = rewrite_gradebook(out, chosen_assignments(None, ()), roster_of(roster),
                                            lms)
    except (LookupError, OverrideError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    for problem in problems:
        click.echo(f"note: {problem}")
    click.echo(f"wrote {out / 'gradebook.csv'} ({count} results, for {lms})")


@main.command(name="release")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write the feedback into.")
@click.option("--lms", type=click.Choice(["canvas", "moodle", "plain"]), default="plain",
              show_default=True, help="The form the LMS takes feedback back in.")
def release_command(out: Path, dest: Path, lms: str) -> None:
    """Write each student's report from the results in OUT, theirs alone and without hidden
    values, in the form the LMS takes back: Canvas's re-upload zip, Moodle's feedback-files
    zip, or DEST/STUDENT/ASSIGNMENT.html. Work not handed in and grader faults get none."""
    from grader.outputs.release import ReleaseError, release

    try:
        released = release(out, dest, lms)
    except ReleaseError as error:
        raise click.UsageError(str(error)) from None
    for problem in released.problems:
        click.echo(f"note: {problem}")
    click.echo(f"wrote {released.reports} report(s) into {len(released.written)} file(s) in "
               f"{dest}/; {released.missing} result(s) had no work handed in, so no report")
    where = {"canvas": "on the assignment's page in Canvas, with 'Re-Upload Submissions'",
             "moodle": "in Moodle's assignment, 'View all submissions' > 'Upload multiple "
                       "feedback files in a zip' (feedback files must be enabled)"}
    for path in released.written if lms in where else ():
        click.echo(f"upload {path} {where[lms]}")
    if released.problems:
        sys.exit(2)  # some results got no report: named above


@main.command(name="collect")
@click.argument("outs", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "merged", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to merge into.")
def collect_command(outs: tuple[Path, ...], merged: Path) -> None:
    """Merge the output folders OUTS of a class's shards (`grade --shard K/N`) into one, with
    one grades.csv and summary.html; outputs of other grader versions or settings are
    refused."""
    from grader.scale.collect import CollectError, collect

    notes: list[str] = []
    try:
        results = collect(list(outs), merged, notes)
    except CollectError as error:
        raise click.UsageError(str(error)) from None
    for note in notes:
        click.echo(f"note: {note}")
    click.echo(f"merged {len(results)} results from {len(outs)} outputs into {merged}/ "
               "(grades.csv, gradebook.csv, similarity.csv, summary.html)")
    faults = [f"{r.student}/{r.assignment}" for r in results if r.fault is not None]
    if faults:
        console.print(f"[red]{len(faults)} result(s) are grader faults[/red], left out of the "
                      f"class files: {escape(', '.join(faults[:20]))}; run their shard again "
                      "to grade them, then collect again.", highlight=False)
        sys.exit(2)


@main.command(name="assign")
@ASSIGNMENT
@CONFIG
def assign_command(assignment: tuple[str, ...], config: Path | None) -> None:
    """Build the student notebooks (exercises/) of the course's assignments from their
    solutions (reference/), and the public tests of their self-check (public/)."""
    from grader.authoring.assign import assign
    from grader.authoring.public import write_public

    try:
        assignments = chosen_assignments(config, assignment)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    current = course.current()
    for settings in assignments:
        try:
            written = [assign(current.reference, current.exercises, settings.notebook),
                       write_public(settings)]
        except FileNotFoundError as error:
            raise click.UsageError(f"{settings.notebook}: {error}") from None
        for path in written:
            click.echo(f"wrote {path}")


@main.command(name="audit")
@ASSIGNMENT
@CONFIG
@click.option("--exercise", default=None, metavar="NAME",
              help="Only this exercise, or this student function.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("audit"), show_default=True,
              help="Where audit.html, audit.json and each mutant's report go.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Mutants graded in parallel.")
@click.option("--scheduler", metavar="ADDRESS|local", default=None,
              help="Grade the mutants on a Dask cluster, as `grade --scheduler` does.")
@click.option("--limit", type=click.IntRange(1), default=None, metavar="N",
              help="At most N mutants per function, drawn with --seed (default: all).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="The seed --limit draws with.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the audit's JSON to this file.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None, metavar="S",
              help="Exit 1 when the share of mutants killed is below S (e.g. 0.9).")
@stops_on_signals
def audit_command(assignment: tuple[str, ...], config: Path | None, exercise: str | None,
                  out: Path, jobs: int, scheduler: str | None, limit: int | None, seed: int,
                  json_file: Path | None, min_score: float | None) -> None:
    """Measure how many bugs the tests catch: grade mutants of the reference (one plausible
    bug each) and report the ones every test lets through."""
    from grader.audit.report import write_audit
    from grader.audit.run import audit, targets
    from grader.authoring.datasets import DataNotFound

    try:
        assignments = [s.resolved() for s in chosen_assignments(config, assignment)]
        require_data(assignments)
    except (ValueError, DataNotFound) as error:
        raise click.UsageError(str(error)) from None
    if exercise and not any(targets(s, exercise) for s in assignments):
        names = ", ".join(settings.notebook for settings in assignments)
        raise click.UsageError(f"no student function of {names} is {exercise!r} or graded "
                               "by an exercise of that name")
    out.mkdir(parents=True, exist_ok=True)
    with console.status("grading mutants"):
        found = audit(assignments, out, exercise, jobs, scheduler, limit, seed)
    page, data = write_audit(found, out)
    if json_file is not None:
        json_file.write_text(data.read_text(encoding="utf-8"), encoding="utf-8")
    print_audit(found, page)
    if min_score is not None and (found.score() or 0.0) < min_score:
        raise SystemExit(1)


def print_audit(found: Audit, page: Path) -> None:
    """The audit per function, on the terminal."""
    from rich.table import Table

    table = Table(title="Mutants killed")
    table.add_column("function", overflow="fold")
    for column in ("made", "likely equivalent", "killed", "survived", "score"):
        table.add_column(column, justify="right")
    for row in found.functions():
        table.add_row(f"{row.assignment}/{row.function}", str(row.made), str(row.equivalent),
                      str(row.killed), str(row.survived),
                      "-" if row.score is None else f"{row.score:.0%}")
    console.print(table)
    for note in found.notes:
        console.print(f"  - {escape(note)}")
    score = found.score()
    console.print(f"score {'-' if score is None else f'{score:.1%}'}; report in {page}")


@main.command(name="gradescope")
@ASSIGNMENT
@CONFIG
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("autograder.zip"), show_default=True, help="The zip to write.")
def gradescope_command(assignment: tuple[str, ...], config: Path | None, out: Path) -> None:
    """Build the zip to upload as a Gradescope assignment's autograder: it grades each
    student's submission on the course's assignments (all, or those named)."""
    from grader.authoring.autograder import build_autograder, memory_advice
    from grader.authoring.datasets import DataNotFound

    try:  # the zip carries the data sets it needs: a missing one stops it before it is written
        assignments = chosen_assignments(config, assignment)
        built = build_autograder(course.current(), assignments, out)
    except (ValueError, DataNotFound, FileNotFoundError) as error:
        raise click.UsageError(str(error)) from None
    names = ", ".join(settings.notebook for settings in assignments)
    click.echo(f"wrote {built} ({built.stat().st_size / 2**20:.1f} MiB) for {names}: upload it "
               "as the autograder (Ubuntu 22.04 image or later)")
    click.echo(memory_advice())


@main.command(name="init")
@click.argument("folder", type=click.Path(path_type=Path))
def init_command(folder: Path) -> None:
    """Start a course in FOLDER from the bundled one: edit it, never the package."""
    try:
        made = course.init(folder)
    except course.NotACourse as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"a course in {made.root}: edit reference/, assignments/ and plugins/, then "
               f"`grade assign` and `grade SUBMISSIONS/` from inside it")


def entry() -> None:
    """The `grade` command: click's, then out of the process at once (grader/leave.py)."""
    run_and_leave(main)
