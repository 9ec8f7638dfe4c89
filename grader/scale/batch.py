"""Grading a folder: every submission, in parallel, resumable, then the class outputs.

Each submission's report.html and then its results.json are written atomically as soon as
it is graded, so an interrupted batch resumes where it stopped: a finished submission is
graded again only if its content, the grader version or the settings changed, or if its
result was a fault of the grader's. A signal (grader/scale/interrupt.py) stops the batch without
saving any unit it did not finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader import __version__, timeline
from grader.authoring import course
from grader.authoring.config import Settings
from grader.grading.grade import grade_submission
from grader.grading.results import Result, load_result
from grader.outputs.class_files import GRADEBOOK, ClassFiles, write_class_outputs
from grader.outputs.similarity import (
    SimilarPair,
    failure_marks,
    handout_digests,
    similar_pairs,
    write_fingerprints,
)
from grader.scale import interrupt
from grader.scale.shard import Shard, mark
from grader.scale.units import Unit, grade_here, result_path, save_outputs
from grader.students.intake import discover, require_notebooks
from grader.students.late import unknown_extensions
from grader.students.overrides import (
    Override,
    apply,
    by_roster,
    override_files,
    read_overrides,
    unused,
)
from grader.students.roster import Claim, Person, match_roster
from grader.students.submissions import Submission, match_notebooks


@dataclass
class BatchReport:
    """What a batch did, for the CLI's summary and exit code; graded, reused and faults are
    by "student/assignment". A unit whose result is a grader fault is in `faults`, not in
    `results`: it is no student's score, and the next run grades it again."""

    results: list[Result] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, label: str, result: Result | None, fault: str | None) -> Result | None:
        """A unit this run finished: its result, or None for a grader fault (a result that
        is one was saved, for its report, but is no score)."""
        if result is not None and result.fault is None:
            self.results.append(result)
            self.graded.append(label)
            return result
        self.faults[label] = (result.fault if result else fault) or "unknown fault"
        return None


def up_to_date(unit: Unit, out: Path) -> Result | None:
    """The earlier result for this unit, if nothing that decides its score changed and it
    was no fault of the grader's (a kernel that could not start is graded again)."""
    path = result_path(out, unit.submission.student, unit.settings.notebook)
    try:
        previous = load_result(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    same = (previous.fault is None
            and previous.digest == unit.submission.digest()
            and previous.grader_version == __version__
            and previous.config_digest == unit.settings.digest())
    return previous if same else None


def run_all(pending: list[Unit], out: Path, jobs: int, hidden: tuple[Path, ...],
            scheduler: str | None = None, notes: list[str] | None = None,
            ) -> Iterator[tuple[Unit, Result | None, str | None]]:
    """Yield (unit, result, fault) as each finishes; a fault is the grader's bug. With a
    `scheduler`, a Dask cluster's workers grade (refused workers go to `notes`)."""
    if scheduler is None:
        return grade_here(pending, out, jobs, hidden)
    from grader.scale.distributed import grade_on_cluster  # Dask is loaded only for a cluster

    return grade_on_cluster(pending, out, hidden, scheduler, jobs,
                            [] if notes is None else notes)


def units_of(submissions: list[Submission], assignments: list[Settings]) -> list[Unit]:
    """Every assignment of every submission, each submitted file matched to its assignment
    once (by metadata, then name)."""
    names = [settings.notebook for settings in assignments]
    units = []
    for submission in submissions:
        matched = match_notebooks(submission, names)
        units += [Unit(submission, settings, matched) for settings in assignments]
    return units


def earlier_results(units: list[Unit], report: BatchReport, out: Path) -> list[Result]:
    """Results already on disk for units this run left alone (--only), for the class files
    (a grader fault is no score)."""
    done = {f"{r.student}/{r.assignment}" for r in report.results} | set(report.faults)
    earlier = []
    for unit in units:
        if unit.label not in done:
            try:
                previous = load_result(result_path(out, unit.submission.student,
                                                   unit.settings.notebook))
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if previous.fault is None:
                earlier.append(previous)
    return earlier


def grade_folder(folder: Path, out: Path, assignments: list[Settings], jobs: int = 1,
                 force: bool = False, only: set[str] | None = None,
                 on_progress: Callable[[int, int, list[str]], None] = lambda *_: None,
                 on_result: Callable[[str, Result | None], None] = lambda *_: None,
                 roster: list[Person] | None = None, scheduler: str | None = None,
                 shard: Shard | None = None, lms: str = "canvas") -> BatchReport:
    """Grade every assignment of every submission in `folder` into `out`, then write the
    class outputs (grader/outputs/class_files.py: grades.csv, the gradebook, similarity, the
    summary).

    A `scheduler` (a Dask scheduler's address, or "local") has a cluster's workers grade;
    a `shard` grades only its slice of the students; `lms` is the gradebook's flavour.

    `on_result` hears of each unit as it finishes (its result, None for a grader fault);
    a `roster` is matched before anything is graded, what it leaves out told as problems.
    A signal raises Interrupted, saying how many units were graded and how many are left
    (each file written is whole; the next run writes the class files again)."""
    assignments = [settings.resolved() for settings in assignments]
    submissions, problems = discover(folder)
    require_notebooks(folder, submissions)
    overrides = read_overrides(override_files(out))  # a bad row stops it before grading
    if roster is not None:  # the source of truth: every file matched, or told, before grading
        match = match_roster([Claim(s.student, s.lms_id, s.path.name) for s in submissions],
                             roster)
        problems += match.problems()
        for submission in submissions:
            person = match.rows.get(submission.student)
            if person is not None and person.student:
                submission.name = person.student
        overrides = by_roster(overrides, match.rows)
    if only:
        unknown = only - {s.student for s in submissions}
        if unknown:
            raise LookupError(f"no submission for: {', '.join(sorted(unknown))}")
    if shard is not None:
        outside = sorted(student for student in only or () if not shard.holds(student))
        if outside:
            raise LookupError(f"not in shard {shard}: {', '.join(outside)}")
        submissions = [s for s in submissions if shard.holds(s.student)]
    units = units_of(submissions, assignments)
    chosen = [u for u in units if not only or u.submission.student in only]
    report = BatchReport(problems=problems)
    report.problems.extend(dict.fromkeys(p for u in chosen for p in u.submission.problems))
    pending = []
    for unit in chosen:
        previous = None if force else up_to_date(unit, out)
        if previous is None:
            pending.append(unit)
        else:
            report.results.append(previous)
            report.reused.append(unit.label)
    out.mkdir(parents=True, exist_ok=True)  # made now, so the kernels' sandbox can hide it
    mark(out, shard)
    for unit in (u for u in pending if u.absent):
        result = grade_submission(unit.submission, unit.settings, matched=unit.matched)
        save_outputs(result, out)
        on_result(unit.label, report.add(unit.label, result, None))
    pending = [u for u in pending if not u.absent]
    unfinished = [u.label for u in pending]
    on_progress(0, len(pending), unfinished[:jobs])
    try:  # closed on an interrupt here too: its workers and kernels stop with it
        with closing(run_all(pending, out, jobs, (folder, out), scheduler,
                             report.problems)) as finished:
            for unit, result, fault in finished:
                on_result(unit.label, report.add(unit.label, result, fault))
                unfinished.remove(unit.label)
                # Workers take units in order: the next `jobs` unfinished are the ones running.
                on_progress(len(pending) - len(unfinished), len(pending), unfinished[:jobs])
        report.results.extend(earlier_results(units, report, out))
        report.results = adjusted(report.results, assignments, overrides, out,
                                  {s.student: s.name for s in submissions})
        report.problems += adjustment_problems(report.results, assignments, overrides)
        report.results.sort(key=lambda r: (r.student, r.assignment))
        with timeline.span("the class files (summary, gradebook, similarity)"):
            write_class_files(report.results, units, out, roster, lms)
    except KeyboardInterrupt as stop:
        raise interrupt.Interrupted(interrupt.signal_of(stop), len(report.graded),
                                    len(unfinished)) from None
    return report


def adjusted(results: list[Result], assignments: list[Settings], overrides: list[Override],
             out: Path, names: dict[str, str] | None = None) -> list[Result]:
    """Each result with its adjustments made afresh (the instructor's overrides, the late
    penalty) and its student's name as `names` gives it now (a roster given since), on
    every run: one that changed is saved again, with its report, so a regrade never loses
    an override and neither an edited overrides.csv nor a new roster needs a regrade."""
    policies = {settings.notebook: settings.late for settings in assignments}
    fresh = []
    for result in results:
        now = replace(apply(result, overrides, policies.get(result.assignment)),
                      name=(names or {}).get(result.student, result.name))
        if (now.adjustments, now.name) != (result.adjustments, result.name):
            save_outputs(now, out)
        fresh.append(now)
    return fresh


def adjustment_problems(results: list[Result], assignments: list[Settings],
                        overrides: list[Override]) -> list[str]:
    """Overrides and extensions that name no one graded: a typo must not pass silently."""
    return unused(overrides, results) + [
        problem for settings in assignments for problem in unknown_extensions(
            settings.late, settings.notebook,
            [key for r in results if r.assignment == settings.notebook
             for key in (r.student, r.lms_id) if key])]


def rewrite_gradebook(out: Path, assignments: list[Settings], roster: list[Person] | None,
                      lms: str) -> tuple[int, list[str]]:
    """gradebook.csv again from the results in `out`, with the overrides, late policy and
    roster as they are now, regrading nothing; (results read, problems)."""
    paths = sorted(out.glob("*/*/results.json"))
    if not paths:
        raise LookupError(f"{out} holds no results (looked for STUDENT/ASSIGNMENT/"
                          "results.json): grade a folder into it first")
    results = [result for result in map(load_result, paths) if result.fault is None]
    overrides = read_overrides(override_files(out))
    if roster is not None:
        claims = {r.student: Claim(r.student, r.lms_id, Path(r.source).name) for r in results}
        overrides = by_roster(overrides, match_roster(list(claims.values()), roster).rows)
    results = adjusted(results, assignments, overrides, out)
    problems = GRADEBOOK.write(ClassFiles(results, out, roster=roster, lms=lms,
                                          columns=columns_of(assignments)))
    return len(paths), problems + adjustment_problems(results, assignments, overrides)


def write_class_files(results: list[Result], units: list[Unit], out: Path,
                      roster: list[Person] | None, lms: str) -> None:
    """What covers the whole class (grader/outputs/class_files.py), with the similar pairs of the
    notebooks handed in. The gradebook's problems are the roster's, told before grading
    from the submissions; told again from the results, a unit a fault left out would read
    as not handed in."""
    write_class_outputs(ClassFiles(results, out, class_pairs(units, out, results), roster, lms,
                                   columns_of([unit.settings for unit in units])))


def class_pairs(units: list[Unit], out: Path, results: list[Result]) -> list[SimilarPair]:
    """The similar pairs of each assignment, from the fingerprints kept in `out` of the
    notebooks handed in for it (a collect of shards compares through them too) and the
    failed tests of its `results`."""
    pairs = []
    for name in dict.fromkeys(unit.settings.notebook for unit in units):
        stored = write_fingerprints(
            out, name, {u.submission.student: u.matched[name] for u in units
                        if u.settings.notebook == name and name in u.matched},
            handout_digests(course.current().reference / f"{name}.ipynb"))
        pairs += similar_pairs(name, stored, failures={
            r.student: failure_marks(r) for r in results if r.assignment == name})
    return pairs


def columns_of(assignments: list[Settings]) -> dict[str, str]:
    """Each assignment's gradebook column, where its settings name one."""
    return {s.notebook: s.gradebook_column for s in assignments if s.gradebook_column}
