"""The `grade` command: grade a folder of submissions, or build the student notebooks."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click_default_group import DefaultGroup
from rich.console import Console

from grader import course

if TYPE_CHECKING:
    from grader.batch import BatchReport
    from grader.config import Settings
    from grader.results import Result

# Importing what grades costs seconds (torch): each command imports it only when it needs it,
# so `grade --help`, `--version` and usage errors answer at once.

console = Console(stderr=True)
ASSIGNMENT = click.option(
    "--assignment", multiple=True, metavar="NAME",
    help="Only this assignment (repeatable; default: every one in the course's assignments/).")
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


def chosen_assignments(config: Path | None, only: tuple[str, ...]) -> list[Settings]:
    """The assignments to work on: the one `config` describes, or the course's (all, or
    those `only` names)."""
    from grader.config import load_assignments

    return load_assignments([config] if config else course.current().assignment_files(), only)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
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
def run(folder: Path, out: Path | None, jobs: int, timeout: float | None, device: str | None,
        assignment: tuple[str, ...], config: Path | None, force: bool, only: tuple[str, ...],
        as_json: bool) -> None:
    """Grade every submission in FOLDER (a notebook per student or a folder per student) on
    each of the course's assignments."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from grader.batch import grade_folder
    from grader.kernel.data import DataNotFound, find_data_dir

    try:
        assignments = [overridden(settings, device, timeout).resolved()
                       for settings in chosen_assignments(config, assignment)]
        find_data_dir()
    except (ValueError, DataNotFound) as error:
        raise click.UsageError(str(error)) from None
    out = out or folder.parent / f"{folder.resolve().name}-graded"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("grading", total=None)
        try:
            report = grade_folder(
                folder, out, assignments, jobs=jobs, force=force, only=set(only) or None,
                on_progress=lambda done, total, running: progress.update(
                    task, completed=done, total=total,
                    description=f"grading {', '.join(running)}" if running else "done"),
            )
        except (LookupError, NotADirectoryError) as error:
            raise click.UsageError(str(error)) from None
    print_summary(report, out)
    if as_json:
        click.echo(json.dumps(summary_json(report, out), indent=2))
    if report.faults:
        console.print(f"[red]grader fault on {len(report.faults)} submission(s)[/red]; "
                      "details above. Their students have no result yet.")
        sys.exit(2)


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
    table.add_column("student")
    table.add_column("assignment")
    table.add_column("score", justify="right")
    table.add_column("failed tests", justify="right")
    table.add_column("timed steps", justify="right")
    for result in sorted(report.results, key=lambda r: (r.assignment, r.student)):
        table.add_row(result.student, result.assignment,
                      f"{result.score:g} / {result.max_score:g}",
                      str(sum(not t.passed for t in result.tests)),
                      timing_summary(result))
    console.print(table)
    for problem in report.problems:
        console.print(f"[yellow]note:[/yellow] {problem}")
    for student, fault in report.faults.items():
        console.print(f"[red]grader fault grading {student}:[/red]\n{fault}")
    console.print(f"graded {len(report.graded)}, unchanged {len(report.reused)}; "
                  f"reports in {out}/ (summary.html, grades.csv)")


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
        "students": {student: {r.assignment: {"score": r.score, "max_score": r.max_score}
                               for r in report.results if r.student == student}
                     for student in dict.fromkeys(r.student for r in report.results)},
    }


@main.command(name="assign")
@ASSIGNMENT
@CONFIG
def assign_command(assignment: tuple[str, ...], config: Path | None) -> None:
    """Build the student notebooks (exercises/) of the course's assignments from their
    solutions (reference/), and the public tests of their self-check (public/)."""
    from grader.assign import assign
    from grader.public import write_public

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


@main.command(name="gradescope")
@ASSIGNMENT
@CONFIG
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("autograder.zip"), show_default=True, help="The zip to write.")
def gradescope_command(assignment: tuple[str, ...], config: Path | None, out: Path) -> None:
    """Build the zip to upload as a Gradescope assignment's autograder: it grades each
    student's submission on the course's assignments (all, or those named)."""
    from grader.autograder import build_autograder
    from grader.kernel.data import DataNotFound, find_data_dir

    try:
        assignments = chosen_assignments(config, assignment)
        find_data_dir()
        built = build_autograder(course.current(), assignments, out)
    except (ValueError, DataNotFound, FileNotFoundError) as error:
        raise click.UsageError(str(error)) from None
    names = ", ".join(settings.notebook for settings in assignments)
    click.echo(f"wrote {built} ({built.stat().st_size / 2**20:.1f} MiB) for {names}: upload it "
               "as the autograder (Ubuntu 22.04 image or later)")


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
