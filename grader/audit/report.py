"""The audit's report for a course author: audit.html (what to read first: the score, the weak
functions, then every survivor with its diff) and audit.json (every figure and mutant).

Strings from grading (a diff, a test's message) go through the grader's autoescaping Jinja
environment, and the page loads nothing from elsewhere: it opens offline, as the other
reports do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from grader.audit.outcome import (
    EQUIVALENT,
    KILLED,
    NOT_GRADED,
    SURVIVED,
    Audit,
    FunctionScore,
    Outcome,
)
from grader.grading.results import write_atomically
from grader.grading.wording import shorten
from grader.outputs.report import ENV, format_points, strip_ansi

WEAK = 0.9  # a function whose tests kill fewer of its mutants needs stronger tests
MESSAGE_LIMIT = 160  # characters of a killing test's message in the killed table


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff, with the class that colours it."""

    kind: str  # "added", "removed", "hunk", "file" or "context"
    text: str


def percent(score: float | None) -> str:
    """A score as a whole percentage, rounded down: 89.6% must not read as the 90% bar."""
    return "—" if score is None else f"{math.floor(100 * score + 1e-9)}%"


def is_weak(score: float | None) -> bool:
    return score is not None and score < WEAK


def diff_lines(diff: str) -> list[DiffLine]:
    """The diff's lines, each marked as added, removed or kept, for the <pre> to colour."""
    lines = []
    for text in strip_ansi(diff).splitlines():
        if text.startswith(("+++", "---")):
            kind = "file"
        elif text.startswith("@@"):
            kind = "hunk"
        elif text.startswith("+"):
            kind = "added"
        elif text.startswith("-"):
            kind = "removed"
        else:
            kind = "context"
        lines.append(DiffLine(kind, text))
    return lines


def graded_as(outcome: Outcome) -> str:
    """What the grader gave the mutant, in points: "full marks: 33 / 33"."""
    if outcome.score is None or outcome.max_score is None:
        return "no score recorded"
    points = f"{format_points(outcome.score)} / {format_points(outcome.max_score)}"
    return f"full marks: {points}" if outcome.score >= outcome.max_score else points


def first_message(outcome: Outcome) -> str:
    """The first killing test's message, on one line and short, for the killed table."""
    for test in outcome.killed_by:
        if outcome.messages.get(test):
            return shorten(" ".join(strip_ansi(outcome.messages[test]).split()), MESSAGE_LIMIT)
    return ""


def worst_first(functions: list[FunctionScore]) -> list[FunctionScore]:
    """Lowest score first; functions with nothing judged (score None) last."""
    return sorted(functions, key=lambda f: (f.score is None, f.score or 0.0))


def by_assignment(audit: Audit) -> dict[str, list[FunctionScore]]:
    tables: dict[str, list[FunctionScore]] = {}
    for function in audit.functions():
        tables.setdefault(function.assignment, []).append(function)
    return {name: worst_first(rows) for name, rows in tables.items()}


def by_function(outcomes: list[Outcome], state: str) -> dict[tuple[str, str, str], list[Outcome]]:
    """The outcomes in `state`, grouped by (assignment, exercise, function)."""
    groups: dict[tuple[str, str, str], list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.state == state:
            groups.setdefault((outcome.assignment, outcome.exercise, outcome.function),
                              []).append(outcome)
    return groups


def render_audit(audit: Audit) -> str:
    """The page, whole; every string escaped by the environment."""
    outcomes = audit.outcomes
    functions = audit.functions()
    return ENV.get_template("audit.html.j2").render(
        audit=audit,
        score=audit.score(),
        killed=sum(f.killed for f in functions),
        judged=sum(f.killed + f.survived for f in functions),
        counts={state: sum(o.state == state for o in outcomes)
                for state in (KILLED, SURVIVED, EQUIVALENT, NOT_GRADED)},
        tables=by_assignment(audit),
        survivors=by_function(outcomes, SURVIVED),
        equivalent=[o for o in outcomes if o.state == EQUIVALENT],
        killed_mutants=[o for o in outcomes if o.state == KILLED],
        not_graded=[o for o in outcomes if o.state == NOT_GRADED],
        idle={exercise: tests for exercise, tests in audit.idle_tests().items() if tests},
        percent=percent, is_weak=is_weak, diff_lines=diff_lines, graded_as=graded_as,
        first_message=first_message, weak_bar=percent(WEAK),
    )


def write_audit(audit: Audit, out: Path) -> tuple[Path, Path]:
    """audit.html and audit.json in `out` (created), each written whole (a temporary file in
    `out`, then a rename), so a course's CI never reads half a report; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    html, data = out / "audit.html", out / "audit.json"
    write_atomically(html, render_audit(audit))
    write_atomically(data, json.dumps(audit.as_dict(), indent=1, ensure_ascii=False))
    return html, data
