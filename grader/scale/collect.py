"""`grade collect`: the output folders of a class's shards (or of runs over parts of it)
merged into one, with the class outputs (grader/outputs/class_files.py) one run over the whole class
writes: students graded in different shards are compared through the cells each output
keeps of them (grader/outputs/similarity.py), never through the submissions.

Results are merged only when they can be compared: the same grader version, one settings
digest per assignment, every shard of one split present once, no student graded twice.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from grader.grading.results import Result, load_result, save_result
from grader.outputs.class_files import ClassFiles, write_class_outputs
from grader.outputs.report import report_path
from grader.outputs.similarity import (
    FOLDER,
    SimilarPair,
    copy_fingerprints,
    failure_marks,
    fingerprint_path,
    similar_pairs,
)
from grader.scale.shard import ShardError, read_marker
from grader.scale.units import result_path
from grader.students.identity import shown


class CollectError(ValueError):
    """Outputs that cannot be merged, with the reason."""


def check_shards(outs: list[Path]) -> None:
    """Shards of one split, each once and none missing; or no shards at all."""
    try:
        shards = {out: read_marker(out) for out in outs}
    except ShardError as error:
        raise CollectError(str(error)) from None
    marked = {out: shard for out, shard in shards.items() if shard is not None}
    if not marked:
        return
    whole = [str(out) for out, shard in shards.items() if shard is None]
    if whole:
        raise CollectError(f"{', '.join(whole)} holds no shard (graded without --shard) "
                           "while the others hold shards: collect the shards of one split")
    counts = sorted({shard.count for shard in marked.values()})
    if len(counts) > 1:
        raise CollectError("the outputs are shards of different splits ("
                           + ", ".join(f"{out}: {shard}" for out, shard in marked.items())
                           + "): collect the shards of one split")
    by_index: dict[int, list[str]] = {}
    for out, shard in marked.items():
        by_index.setdefault(shard.index, []).append(str(out))
    twice = {index: outs for index, outs in by_index.items() if len(outs) > 1}
    if twice:
        raise CollectError("the same shard is given twice: " + "; ".join(
            f"{index}/{counts[0]} in {', '.join(outs)}" for index, outs in twice.items()))
    missing = [f"{index}/{counts[0]}" for index in range(1, counts[0] + 1)
               if index not in by_index]
    if missing:
        raise CollectError(f"shard(s) {', '.join(missing)} missing: grade them "
                           "(`grade SUBMISSIONS/ --shard K/N --out DIR`) and collect them too")


def results_of(outs: list[Path]) -> dict[str, tuple[Path, Result]]:
    """Every result in the outputs, by student/assignment; one found twice is refused."""
    found: dict[str, tuple[Path, Result]] = {}
    for out in outs:
        paths = sorted(out.glob("*/*/results.json"))
        if not paths:
            raise CollectError(f"{out} holds no results (STUDENT/ASSIGNMENT/results.json): "
                               "is it an output folder of `grade`?")
        for path in paths:
            try:
                result = load_result(path)
            except (OSError, ValueError, TypeError, KeyError) as error:
                raise CollectError(f"{path} cannot be read ({error}): grade that "
                                   "submission again") from None
            label = f"{result.student}/{result.assignment}"
            if (path.parent.parent.name, path.parent.name) != (result.student, result.assignment):
                raise CollectError(f"{path} holds the result of {shown(label)}, not of its "
                                   "folder's: grade that output again")
            if label in found:
                raise CollectError(f"{label} is graded in both {found[label][0]} and {out}: "
                                   "collect outputs of disjoint parts of the class")
            found[label] = (out, result)
    return found


def check_alike(found: dict[str, tuple[Path, Result]]) -> None:
    """One grader version over all results, one settings digest per assignment."""
    check_one("grader version", found, lambda result: result.grader_version,
              "grade every shard with the same grader")
    for assignment in sorted({result.assignment for _, result in found.values()}):
        check_one(f"settings of {assignment}",
                  {k: v for k, v in found.items() if v[1].assignment == assignment},
                  lambda result: result.config_digest,
                  "grade every shard with the same settings file, --device and --timeout")


def check_one(what: str, found: dict[str, tuple[Path, Result]],
              value: Callable[[Result], str], advice: str) -> None:
    outs_by_value: dict[str, set[str]] = {}
    for out, result in found.values():
        outs_by_value.setdefault(value(result), set()).add(str(out))
    if len(outs_by_value) > 1:
        raise CollectError(f"the outputs differ in their {what}: " + "; ".join(
            f"{shown} in {', '.join(sorted(outs))}" for shown, outs in outs_by_value.items())
            + f": {advice}")


def stored_cells(found: dict[str, tuple[Path, Result]], assignment: str,
                 notes: list[str]) -> dict[str, Path]:
    """Where each output keeps the cells of its students who handed in `assignment`; an
    output that keeps none (graded before the grader kept them) is told in `notes`."""
    stored: dict[str, Path] = {}
    unkept: dict[str, int] = {}
    for out, result in found.values():
        if result.assignment != assignment or result.missing is not None:
            continue
        if not (out / FOLDER / assignment).is_dir():
            unkept[str(out)] = unkept.get(str(out), 0) + 1
            continue
        try:
            path = fingerprint_path(out, assignment, result.student)
        except ValueError as error:
            notes.append(f"{error}: it is compared with no one.")
            continue
        if os.path.lexists(path):  # none: no notebook was compared (a refused submission)
            stored[result.student] = path
    notes.extend(f"{out} keeps no similarity fingerprints of {assignment} (it was graded "
                 f"before `grade` kept them): its {count} student(s) are compared with no "
                 "one; grade it again with this grader, then collect again."
                 for out, count in sorted(unkept.items()))
    return stored


def class_pairs(found: dict[str, tuple[Path, Result]], merged: Path,
                notes: list[str]) -> list[SimilarPair]:
    """The similar pairs of the whole class, from the cells the outputs keep, which are
    copied into `merged` as one run over the class would have kept them."""
    pairs = []
    for assignment in sorted({result.assignment for _, result in found.values()}):
        kept = copy_fingerprints(stored_cells(found, assignment, notes), merged, assignment,
                                 notes)
        failures = {result.student: failure_marks(result) for _, result in found.values()
                    if result.assignment == assignment}
        pairs += similar_pairs(assignment, kept, failures=failures, notes=notes)
    return pairs


def collect(outs: list[Path], merged: Path, notes: list[str] | None = None) -> list[Result]:
    """Merge `outs` into `merged`: each result and report, then the class outputs
    (grader/outputs/class_files.py); what could not be compared is told in `notes`.
    A result that is a grader fault is copied, and left out of the class files: the shard
    that holds it grades it again when run again."""
    resolved = {out.resolve() for out in outs}
    if merged.resolve() in resolved:
        raise CollectError(f"--out {merged} is one of the outputs collected: merge into a "
                           "folder of its own")
    check_shards(outs)
    found = results_of(outs)
    check_alike(found)
    results = sorted((result for _, result in found.values()),
                     key=lambda r: (r.student, r.assignment))
    for out, result in found.values():
        save_result(result, result_path(merged, result.student, result.assignment))
        report = report_path(out, result.student, result.assignment)
        if report.is_file():
            shutil.copyfile(report, report_path(merged, result.student, result.assignment))
    pairs = class_pairs(found, merged, [] if notes is None else notes)
    scored = [result for result in results if result.fault is None]  # a fault is no score
    write_class_outputs(ClassFiles(scored, merged, pairs))  # no roster: nothing to tell
    return results
